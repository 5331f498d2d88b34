"""Passwordless as an attacker tries it: email content from the browser, malformed codes and
link tokens, oversized input, and two verifies of one sign-in racing each other."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest
from litestar import Litestar, Request
from litestar.testing import AsyncTestClient

from rpkit_scalekit.litestar import ScalekitLitestarPlugin
from rpkit_scalekit.passwordless import PasswordlessEmail
from rpkit_scalekit.testing import FakeScalekit, new_webhook_secret

from .conftest import BASE, SK, Browser, make_app

EMAIL = "ada@example.com"
RACE = 0.2  # seconds the fake holds a verify, so two requests are in flight together


@contextlib.asynccontextmanager
async def racing(fake: FakeScalekit) -> AsyncIterator[Racer]:
    """A browser whose requests really run concurrently: httpx's ASGI transport runs the app
    in the test's event loop (Litestar's test client runs one request at a time). A context
    manager, not a fixture: the app's lifespan must end in the task that started it."""
    app, rpkit = make_app(fake, passwordless=True)
    transport = httpx.ASGITransport(app=app)
    async with app.lifespan(), httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield Racer(cast("AsyncTestClient[Litestar]", client), fake, rpkit, app)


@dataclass
class Racer(Browser):
    app: Litestar


def sessions(browser: Racer) -> list[str]:
    """The server-side sessions the app holds."""
    store = browser.app.stores.get(browser.rpkit.config.sessions_store)
    return [key for key in store._store if key.startswith("rpkit:session:")]  # type: ignore[attr-defined]


def nothing_sent(fake: FakeScalekit) -> bool:
    return fake.recording.count("passwordless_send") == 0 and len(fake.outbox) == 0


async def sent_code(browser: Browser) -> str:
    sent = await browser.post("/passwordless/send", email=EMAIL)
    assert sent.status_code == 200
    code = browser.fake.outbox.last(EMAIL).otp
    assert code is not None
    return code


# -- email content is the server's ------------------------------------------------------------
PHISHING = {"app_name": "Your bank", "support_url": "https://evil.example/login"}


@pytest.mark.parametrize(
    "content",
    [
        {"template_variables": PHISHING},
        {"template_variables": {}},
        {"template": "SIGNUP"},
        {"magiclink_auth_uri": "https://evil.example/magic"},
        {"state": "chosen-by-the-browser"},
        {"expires_in": 86400},
        {"app_name": "Your bank"},
        {"template_variables[app_name]": "Your bank"},
    ],
    ids=lambda c: next(iter(c)),
)
@pytest.mark.parametrize("path", ["/passwordless/send", "/start"])
async def test_browser_supplied_email_content_is_refused_and_nothing_is_sent(
    browser: Browser, path: str, content: dict[str, Any]
) -> None:
    refused = await browser.post(path, email=EMAIL, **content)

    assert refused.status_code == 400
    assert refused.json()["code"] == "passwordless_email_content_refused"
    assert nothing_sent(browser.fake)
    assert browser.fake.recording.count("connections") == 0, "refused before routing too"
    assert not browser.sets_session(refused)


async def test_email_content_in_a_form_is_refused_too(browser: Browser) -> None:
    token = (await browser.client.get(f"{SK}/csrf")).json()["csrf_token"]
    form = {"email": EMAIL, "csrf_token": token, "template_variables[app_name]": "Your bank"}

    refused = await browser.client.post(
        f"{SK}/passwordless/send", data=form, follow_redirects=False
    )

    assert refused.status_code == 400
    assert "passwordless_email_content_refused" in refused.text
    assert nothing_sent(browser.fake)


async def test_configured_email_content_is_what_scalekit_sends(
    open_browser: Callable[..., Awaitable[Browser]],
) -> None:
    email = PasswordlessEmail(template="SIGNUP", template_variables={"app_name": "Acme"})
    browser = await open_browser(passwordless=True, passwordless_email=email)

    sent = await browser.post("/passwordless/send", email=EMAIL)

    assert sent.status_code == 200
    mail = browser.fake.outbox.last(EMAIL)
    assert mail.template == "SIGNUP"
    assert mail.template_variables == {"app_name": "Acme"}


async def test_the_email_hook_decides_on_the_server(
    open_browser: Callable[..., Awaitable[Browser]],
) -> None:
    seen: list[str] = []

    async def greet(
        request: Request[Any, Any, Any], email: str, default: PasswordlessEmail
    ) -> PasswordlessEmail:
        seen.append(email)
        return PasswordlessEmail(template="SIGNUP", template_variables={"first_visit": "yes"})

    browser = await open_browser(passwordless=True, email_hook=greet)
    await browser.post("/passwordless/send", email="Ada@Example.COM")

    assert seen == ["Ada@example.com"], "the checked address, its domain lower-cased"
    assert browser.fake.outbox.last().template_variables == {"first_visit": "yes"}
    assert browser.fake.outbox.last().template == "SIGNUP"


# -- one-time codes in the provider's format --------------------------------------------------
@pytest.mark.parametrize(
    "code",
    [
        "١٢٣٤٥٦",  # Arabic-Indic digits
        "１２３４５６",  # fullwidth digits
        "¹²³⁴⁵⁶",  # superscripts: str.isdigit() says yes
        "12345",
        "1234567",
        "123456\n",
        " 123456",
        "12 456",
        "abcdef",
        "1" * 5000,
        123456,
    ],
    ids=lambda code: repr(code)[:12],
)
async def test_a_malformed_code_is_refused_locally_and_spends_no_attempt(
    browser: Browser, code: object
) -> None:
    right = await sent_code(browser)
    auth = browser.fake.auth_requests[browser.fake.outbox.last(EMAIL).auth_request_id]

    for _ in range(6):  # more than the five attempts Scalekit allows
        refused = await browser.post("/passwordless/verify", code=code)
        assert refused.status_code == 400
        assert refused.json()["code"] == "passwordless_credential_malformed"
        assert not browser.sets_session(refused)

    assert browser.fake.recording.count("passwordless_verify") == 0
    assert auth.failed_attempts == []
    done = await browser.post("/passwordless/verify", code=right)
    assert done.status_code == 200, "no attempt was spent, locally or at Scalekit"
    assert browser.sets_session(done)


async def test_a_malformed_code_is_refused_before_the_store_is_read(browser: Browser) -> None:
    """No pending sign-in in this browser: the shape is still what answers."""
    refused = await browser.post("/passwordless/verify", code="١٢٣٤٥٦")

    assert refused.json()["code"] == "passwordless_credential_malformed"
    assert browser.fake.recording.count("passwordless_verify") == 0


async def test_otp_length_follows_the_configuration(
    open_browser: Callable[..., Awaitable[Browser]],
) -> None:
    browser = await open_browser(passwordless=True, otp_length=8)
    code = await sent_code(browser)  # the fake issues 6 digits: an 8-digit app refuses them

    refused = await browser.post("/passwordless/verify", code=code)

    assert refused.json()["code"] == "passwordless_credential_malformed"
    assert browser.fake.recording.count("passwordless_verify") == 0


@pytest.mark.parametrize(
    "link_token",
    ["a" * 101, "token\n", "tok%0Aen", "tök_l", "../../x", "a b"],
    ids=repr,
)
async def test_a_malformed_link_token_is_refused_before_scalekit(
    browser: Browser, fake_scalekit: FakeScalekit, link_token: str
) -> None:
    fake_scalekit.passwordless.method = "LINK"
    await browser.post("/passwordless/send", email=EMAIL)

    refused = await browser.client.get(
        f"{SK}/passwordless/magic-link", params={"link_token": link_token}, follow_redirects=False
    )

    assert refused.status_code == 400
    assert "passwordless_credential_malformed" in refused.text
    assert fake_scalekit.recording.count("passwordless_verify") == 0
    assert not browser.sets_session(refused)


# -- bounds on everything else ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"email": "ada@example.com\n"}, "invalid_email"),
        ({"email": "ada\n@example.com"}, "invalid_email"),
        ({"email": "a" * 300 + "@" + "b" * 300 + ".com"}, "invalid_email"),
        ({"email": "ada@" + "x" * 5000 + ".com"}, "scalekit_invalid_input"),
        ({"email": EMAIL, "return_to": "/" + "r" * 3000}, "scalekit_invalid_input"),
        ({"email": EMAIL, "return_to": "/inbox\n"}, "scalekit_invalid_input"),
    ],
    ids=[
        "email-newline",
        "local-newline",
        "email-321",
        "email-huge",
        "return-to-long",
        "return-to-nl",
    ],
)
async def test_send_input_out_of_bounds_is_refused_before_scalekit(
    browser: Browser, fields: dict[str, str], code: str
) -> None:
    refused = await browser.post("/passwordless/send", **fields)

    assert refused.status_code == 400
    assert refused.json()["code"] == code
    assert nothing_sent(browser.fake)


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "ada@acme.test\n"},
        {"organization_id": "org_1\n"},
        {"connection_id": "conn_1\n"},
        {"connection_id": "c" * 129},
        {"domain_hint": "acme.test\n"},
        {"domain_hint": "a" * 300},
        {"provider": "google\n"},
        {"email": "ada@acme.test", "return_to": "/x\r\nSet-Cookie: a=b"},
    ],
    ids=repr,
)
async def test_start_input_out_of_bounds_is_refused_before_any_lookup(
    browser: Browser, fields: dict[str, str]
) -> None:
    refused = await browser.post("/start", **fields)

    assert refused.status_code == 400
    assert browser.fake.recording.count("connections") == 0
    assert browser.fake.recording.count("authorize") == 0
    assert "location" not in refused.json()


async def test_core_login_hint_ending_in_a_newline_is_refused(browser: Browser) -> None:
    started = await browser.client.get(
        "/auth/login/scalekit", params={"login_hint": "ada@acme.test\n"}, follow_redirects=False
    )

    assert started.status_code == 400
    assert browser.fake.recording.count("connections") == 0
    assert "location" not in started.headers


async def test_an_oversized_body_is_refused_while_streaming(browser: Browser) -> None:
    body = b'{"email": "ada@example.com", "pad": "' + b"x" * 20_000 + b'"}'

    refused = await browser.client.post(
        f"{SK}/passwordless/send",
        content=body,
        headers={"content-type": "application/json"},
        follow_redirects=False,
    )

    assert refused.status_code == 413
    assert nothing_sent(browser.fake)


async def test_an_oversized_webhook_is_refused_while_streaming(
    open_browser: Callable[..., Awaitable[Browser]],
) -> None:
    browser = await open_browser(webhook_secret=new_webhook_secret())

    refused = await browser.client.post(
        f"{SK}/webhooks",
        content=b"{" + b" " * (1 << 20) + b"}",
        headers={"content-type": "application/json"},
    )

    assert refused.status_code == 413


async def test_a_malformed_idp_initiated_token_fetches_nothing(browser: Browser) -> None:
    before = browser.fake.recording.count()

    refused = await browser.client.get(
        f"{SK}/idp-initiated",
        params={"idp_initiated_login": "a.b.c\n"},
        follow_redirects=False,
    )

    assert refused.status_code == 400
    assert browser.fake.recording.count() == before


# -- one sign-in, one session -------------------------------------------------------------------
async def test_two_concurrent_verifies_make_one_upstream_call_and_one_session(
    fake_scalekit: FakeScalekit,
) -> None:
    async with racing(fake_scalekit) as racer:
        code = await sent_code(racer)
        racer.fake.knobs.latency["passwordless_verify"] = RACE

        first, second = await asyncio.gather(
            racer.post("/passwordless/verify", code=code),
            racer.post("/passwordless/verify", code=code),
        )

        answers = sorted([first, second], key=lambda r: r.status_code)
        assert [r.status_code for r in answers] == [200, 400]
        assert racer.sets_session(answers[0])
        assert answers[1].json()["code"] in ("passwordless_invalid", "passwordless_used")
        assert not racer.sets_session(answers[1])
        assert racer.fake.recording.count("passwordless_verify") == 1
        assert len(sessions(racer)) == 1


async def test_two_concurrent_magic_link_visits_give_one_303_and_one_session(
    fake_scalekit: FakeScalekit,
) -> None:
    async with racing(fake_scalekit) as racer:
        fake_scalekit.passwordless.method = "LINK"
        await racer.post("/passwordless/send", email=EMAIL)
        link = fake_scalekit.outbox.last(EMAIL).link
        assert link
        fake_scalekit.knobs.latency["passwordless_verify"] = RACE

        visits = await asyncio.gather(
            racer.client.get(link, follow_redirects=False),
            racer.client.get(link, follow_redirects=False),
        )

        answers = sorted(visits, key=lambda r: r.status_code)
        assert [r.status_code for r in answers] == [303, 400]
        assert racer.sets_session(answers[0])
        assert not racer.sets_session(answers[1])
        assert fake_scalekit.recording.count("passwordless_verify") == 1
        assert len(sessions(racer)) == 1


async def test_single_use_holds_even_when_scalekit_says_yes_twice(
    fake_scalekit: FakeScalekit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both verifies reach a Scalekit that does not enforce single use, with no lock between
    them (as when a lock expired on a stalled worker): the atomic consume still lets one win."""
    async with racing(fake_scalekit) as racer:
        code = await sent_code(racer)
        racer.fake.knobs.passwordless_reusable = True
        racer.fake.knobs.latency["passwordless_verify"] = RACE
        no_lock = lambda self, app: lambda key: contextlib.nullcontext()  # noqa: E731
        monkeypatch.setattr(ScalekitLitestarPlugin, "locks", no_lock)

        first, second = await asyncio.gather(
            racer.post("/passwordless/verify", code=code),
            racer.post("/passwordless/verify", code=code),
        )

        answers = sorted([first, second], key=lambda r: r.status_code)
        assert racer.fake.recording.count("passwordless_verify") == 2
        assert [r.status_code for r in answers] == [200, 400]
        assert answers[1].json()["code"] == "passwordless_used"
        assert not racer.sets_session(answers[1])
        assert len(sessions(racer)) == 1


async def test_a_wrong_code_leaves_the_sign_in_pending(fake_scalekit: FakeScalekit) -> None:
    async with racing(fake_scalekit) as racer:
        right = await sent_code(racer)

        wrong = await racer.post(
            "/passwordless/verify", code="000000" if right != "000000" else "1" * 6
        )
        done = await racer.post("/passwordless/verify", code=right)

        assert wrong.status_code == 400
        assert done.status_code == 200
        assert len(sessions(racer)) == 1
