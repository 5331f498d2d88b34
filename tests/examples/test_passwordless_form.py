"""examples/passwordless_form: the email form sends a code, the code form signs in; a form
without the CSRF token is refused."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from rpkit_scalekit.testing import FakeApplication, FakeScalekit
from tests.examples.conftest import APP_URL, load_example

example = load_example("passwordless_form/app.py")


def _app() -> tuple[object, FakeScalekit]:
    fake = FakeScalekit(
        apps=[FakeApplication(redirect_uris=(f"{APP_URL}/auth/callback/scalekit",))]
    )
    application = next(iter(fake.apps.values()))
    app = example.create_app(
        fake.issuer,
        application.client_id,
        application.client_secret,
        http_transport=fake.transport(),
    )
    return app, fake


async def test_the_code_from_the_email_signs_in():
    app, fake = _app()
    async with AsyncTestClient(app, base_url=APP_URL) as browser:
        token = (await browser.get("/auth/scalekit/csrf")).json()["csrf_token"]
        sent = await browser.post(
            "/auth/scalekit/passwordless/send",
            data={"email": "ada@example.org", "return_to": "/", "csrf_token": token},
            follow_redirects=False,
        )
        code = fake.outbox.last("ada@example.org").otp
        verified = await browser.post(
            "/auth/scalekit/passwordless/verify",
            data={"code": code, "csrf_token": token},
            follow_redirects=False,
        )
        home = await browser.get("/")

    assert sent.status_code == 303
    assert sent.headers["location"] == "/verify"
    assert verified.status_code == 303
    assert 'id="who">ada@example.org<' in home.text


async def test_a_form_without_its_csrf_token_sends_no_email():
    app, fake = _app()
    async with AsyncTestClient(app, base_url=APP_URL) as browser:
        refused = await browser.post(
            "/auth/scalekit/passwordless/send", data={"email": "ada@example.org"}
        )

    assert refused.status_code == 403
    assert len(fake.outbox) == 0


async def test_a_wrong_code_comes_back_to_the_code_form_with_the_attempts_left():
    app, fake = _app()
    async with AsyncTestClient(app, base_url=APP_URL) as browser:
        token = (await browser.get("/auth/scalekit/csrf")).json()["csrf_token"]
        await browser.post(
            "/auth/scalekit/passwordless/send",
            data={"email": "ada@example.org", "return_to": "/", "csrf_token": token},
        )
        code = fake.outbox.last("ada@example.org").otp
        refused = await browser.post(
            "/auth/scalekit/passwordless/verify",
            data={"code": "000000" if code != "000000" else "111111", "csrf_token": token},
            follow_redirects=False,
        )
        page = await browser.get("/verify")

    assert refused.status_code == 303
    assert refused.headers["location"] == "/verify"
    assert 'data-code="passwordless_invalid">That code is not valid. 4 attempts left.' in page.text
    assert 'id="verify"' in page.text
