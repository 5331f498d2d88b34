"""Headless passwordless through the Litestar routes: OTP, magic link, limits and refusals."""

from __future__ import annotations

from rpkit_scalekit.testing import FakeScalekit

from .conftest import SK, Browser

EMAIL = "ada@example.com"


async def test_start_without_sso_sends_an_otp_and_the_code_signs_in(browser: Browser) -> None:
    started = await browser.post("/start", email=EMAIL, return_to="/inbox")

    assert started.status_code == 200
    assert started.json()["next"] == "verify"
    assert "auth_request_id" not in started.text
    code = browser.fake.outbox.last(EMAIL).otp
    assert code
    done = await browser.post("/passwordless/verify", code=code)
    assert done.status_code == 200
    assert done.json() == {"signed_in": True, "return_to": "/inbox"}
    assert browser.sets_session(done)
    txn = next(h for h in done.headers.get_list("set-cookie") if h.startswith("__Host-rpkit_txn="))
    assert "Max-Age=0" in txn, "the spent login's handle cookie is deleted"
    me = await browser.whoami()
    assert me == {"subject": f"email:{EMAIL}", "email": EMAIL}


async def test_magic_link_signs_in_the_browser_that_asked(
    browser: Browser, fake_scalekit: FakeScalekit
) -> None:
    fake_scalekit.passwordless.method = "LINK"
    sent = await browser.post("/passwordless/send", email=EMAIL)
    link = fake_scalekit.outbox.last(EMAIL).link

    assert sent.status_code == 200
    assert link
    assert link.startswith(f"https://app.rpkit.test{SK}/passwordless/magic-link/")
    done = await browser.client.get(link, follow_redirects=False)
    assert done.status_code == 303
    assert browser.sets_session(done)
    assert (await browser.whoami())["email"] == EMAIL


async def test_session_id_rotates_at_passwordless_sign_in(browser: Browser) -> None:
    browser.client.cookies.set(browser.session_cookie, "planted-id", domain="app.rpkit.test")
    await browser.post("/passwordless/send", email=EMAIL)
    done = await browser.post("/passwordless/verify", code=browser.fake.outbox.last(EMAIL).otp)

    assert browser.sets_session(done)
    assert "planted-id" not in done.headers["set-cookie"]


async def test_five_wrong_codes_then_even_the_right_code_is_429(browser: Browser) -> None:
    await browser.post("/passwordless/send", email=EMAIL)
    right = browser.fake.outbox.last(EMAIL).otp
    assert right is not None
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        refused = await browser.post("/passwordless/verify", code=wrong)
        assert refused.status_code == 400
        assert not browser.sets_session(refused)

    exhausted = await browser.post("/passwordless/verify", code=right)
    assert exhausted.status_code == 429
    assert exhausted.json()["code"] == "passwordless_attempts_exhausted"
    assert "retry-after" in exhausted.headers
    assert not browser.sets_session(exhausted)
    assert (await browser.whoami())["subject"] is None


async def test_third_email_within_a_minute_is_refused_without_calling_scalekit(
    browser: Browser,
) -> None:
    await browser.post("/passwordless/send", email=EMAIL)
    await browser.post("/passwordless/resend")
    sends = browser.fake.recording.count("passwordless_send")
    resends = browser.fake.recording.count("passwordless_resend")

    refused = await browser.post("/passwordless/send", email=EMAIL)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert browser.fake.recording.count("passwordless_send") == sends == 1
    assert browser.fake.recording.count("passwordless_resend") == resends == 1
    assert not browser.sets_session(refused)


async def test_expired_code_is_400(browser: Browser, fake_scalekit: FakeScalekit) -> None:
    await browser.post("/passwordless/send", email=EMAIL)
    fake_scalekit.expire_passwordless()
    refused = await browser.post("/passwordless/verify", code=fake_scalekit.outbox.last(EMAIL).otp)

    assert refused.status_code == 400
    assert refused.json()["code"] == "passwordless_expired"
    assert not browser.sets_session(refused)


async def test_reused_magic_link_is_refused(browser: Browser, fake_scalekit: FakeScalekit) -> None:
    fake_scalekit.passwordless.method = "LINK"
    await browser.post("/passwordless/send", email=EMAIL)
    link = fake_scalekit.outbox.last(EMAIL).link
    assert link
    await browser.client.get(link, follow_redirects=False)
    browser.client.cookies.delete(browser.session_cookie)

    again = await browser.client.get(link, follow_redirects=False)
    assert again.status_code == 400
    assert not browser.sets_session(again)


async def test_a_code_cannot_sign_in_twice(browser: Browser, fake_scalekit: FakeScalekit) -> None:
    """The pending record is spent at sign-in: the replay is refused before reaching Scalekit."""
    await browser.post("/passwordless/send", email=EMAIL)
    code = fake_scalekit.outbox.last(EMAIL).otp
    assert code
    await browser.post("/passwordless/verify", code=code)

    again = await browser.post("/passwordless/verify", code=code)
    assert again.status_code == 400
    assert not browser.sets_session(again)
    assert fake_scalekit.recording.count("passwordless_verify") == 1


async def test_verify_from_a_second_browser_is_refused(
    browser: Browser, fake_scalekit: FakeScalekit
) -> None:
    await browser.post("/passwordless/send", email=EMAIL)
    code = fake_scalekit.outbox.last(EMAIL).otp
    assert code
    first_browser_cookies = dict(browser.client.cookies)
    browser.client.cookies.clear()  # another browser: same app, none of the first's cookies

    refused = await browser.post("/passwordless/verify", code=code)
    assert refused.status_code == 400
    assert not browser.sets_session(refused)
    assert fake_scalekit.recording.count("passwordless_verify") == 0
    for name, value in first_browser_cookies.items():
        browser.client.cookies.set(name, value, domain="app.rpkit.test")
    assert browser.sets_session(await browser.post("/passwordless/verify", code=code))


async def test_a_503_on_send_is_surfaced_and_not_retried(
    browser: Browser, fake_scalekit: FakeScalekit
) -> None:
    fake_scalekit.fail_next("passwordless_send", 503)
    refused = await browser.post("/passwordless/send", email=EMAIL)

    assert refused.status_code == 503
    assert fake_scalekit.recording.count("passwordless_send") == 1
    assert len(fake_scalekit.outbox) == 0
    assert not browser.sets_session(refused)


async def test_a_form_post_needs_its_csrf_token(browser: Browser) -> None:
    refused = await browser.client.post(
        f"{SK}/passwordless/send", data={"email": EMAIL}, follow_redirects=False
    )
    assert refused.status_code == 403
    assert browser.fake.recording.count("passwordless_send") == 0

    token = (await browser.client.get(f"{SK}/csrf")).json()["csrf_token"]
    sent = await browser.client.post(
        f"{SK}/passwordless/send",
        data={"email": EMAIL, "csrf_token": token},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == "/verify"
    code = browser.fake.outbox.last(EMAIL).otp
    done = await browser.client.post(
        f"{SK}/passwordless/verify",
        data={"code": code, "csrf_token": token},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert browser.sets_session(done)


async def test_a_text_plain_post_is_refused_unread(browser: Browser) -> None:
    refused = await browser.client.post(
        f"{SK}/passwordless/send",
        content=f'{{"email": "{EMAIL}"}}',
        headers={"content-type": "text/plain"},
    )

    assert refused.status_code == 400
    assert browser.fake.recording.count("passwordless_send") == 0


async def test_the_routing_log_names_what_happened_passwordless_or_sso(browser: Browser) -> None:
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        await browser.post("/start", email=EMAIL, return_to="/inbox")
        await browser.post("/start", email="ada@acme.test")

    routed = [e for e in logs if e["event"] == "rpkit.scalekit.login_routed"]
    assert [e["kind"] for e in routed] == ["passwordless", "connection"]
    assert EMAIL not in repr(logs)
