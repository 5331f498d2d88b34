"""Headless passwordless on the fake Scalekit: the wire shapes, the outbox, and every
documented limit and policy, each shown misbehaving as documented."""

from __future__ import annotations

import pytest

from .conftest import PlainRP, envelope_code


async def sent(rp: PlainRP, email: str = "ada@example.com", **body) -> dict:
    response = await rp.send(email, **body)
    assert response.status_code == 200, response.text
    return response.json()


async def test_send_answers_snake_case_with_int64_as_string(rp):
    before = rp.fake.now()

    body = await sent(rp, template="SIGNUP", state="xyz")

    assert set(body) == {"auth_request_id", "expires_at", "expires_in", "passwordless_type"}
    assert isinstance(body["expires_at"], str)
    assert int(body["expires_at"]) - before in (300, 301)
    assert body["expires_in"] == 300
    assert body["passwordless_type"] == "OTP"
    assert 40 <= len(body["auth_request_id"]) <= 200


async def test_open_answers_switch_case_and_expires_at_type(rp):
    rp.fake.answers.response_case = "camel"
    rp.fake.answers.expires_at_as_string = False

    body = await sent(rp)

    assert set(body) == {"authRequestId", "expiresAt", "expiresIn", "passwordlessType"}
    assert isinstance(body["expiresAt"], int)


async def test_outbox_holds_the_otp_email(rp):
    body = await sent(rp, "Ada@Example.com", template_variables={"app_name": "Demo"})

    email = rp.fake.outbox.last("ada@example.com")
    assert email.email == "Ada@Example.com"
    assert email.otp is not None
    assert len(email.otp) == 6
    assert email.otp.isdigit()
    assert email.link is None
    assert email.template == "SIGNIN"
    assert email.template_variables == {"app_name": "Demo"}
    assert email.auth_request_id == body["auth_request_id"]


@pytest.mark.parametrize(("method", "has_otp"), [("LINK", False), ("LINK_OTP", True)])
async def test_magic_link_methods_put_link_token_on_the_uri(rp, method, has_otp):
    rp.fake.passwordless.method = method

    body = await sent(rp, magiclink_auth_uri="https://app.test/verify?lang=en")

    email = rp.fake.outbox.last()
    assert body["passwordless_type"] == method
    assert email.link == f"https://app.test/verify?lang=en&link_token={email.link_token}"
    assert email.link_token.endswith("_l")
    assert (email.otp is not None) is has_otp


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a" * 310 + "@example.com"}, "email"),
        ({"template": "WELCOME"}, "template"),
        ({"state": "s" * 1001}, "state"),
        ({"magiclink_auth_uri": "https://x.test/" + "a" * 1000}, "magiclink_auth_uri"),
        ({"expires_in": -5}, "expires_in"),
        ({"template_variables": {f"key{i}": "v" for i in range(31)}}, "template_variables"),
        ({"template_variables": {"k": "v"}}, "template_variables[k]"),
        ({"template_variables": {"long_value": "v" * 257}}, "template_variables[long_value]"),
        ({"template_variables": {"otp": "123456"}}, "template_variables[otp]"),
    ],
)
async def test_send_validation_errors_carry_field_violations(rp, body, field):
    response = await rp.send(**({"email": "ada@example.com"} | body))

    info = response.json()["details"][0]
    assert response.status_code == 400
    assert envelope_code(response) == (3, "INVALID_ARGUMENT")
    assert field in [v["field"] for v in info["validation_error_info"]["field_violations"]]
    assert (
        info["request_info"]["request_id"] == rp.fake.recording.last("passwordless_send").request_id
    )
    assert len(rp.fake.outbox) == 0


async def test_link_methods_require_magiclink_auth_uri(rp):
    rp.fake.passwordless.method = "LINK"

    response = await rp.send()

    assert response.status_code == 400
    assert (
        response.json()["details"][0]["validation_error_info"]["field_violations"][0]["field"]
        == "magiclink_auth_uri"
    )


async def test_third_email_within_a_minute_is_429_counting_resends(rp):
    first = await sent(rp, "ada@example.com")
    resend = await rp.resend(first["auth_request_id"])
    third = await rp.send("ADA@example.com")
    other_address = await rp.send("bob@example.com")
    rp.fake.advance(60)
    after_window = await rp.send("ada@example.com")

    assert resend.status_code == 200
    assert third.status_code == 429
    assert envelope_code(third) == (8, "RESOURCE_EXHAUSTED")
    assert other_address.status_code == 200
    assert after_window.status_code == 200
    assert [e.kind for e in rp.fake.outbox.to("ada@example.com")] == ["send", "resend", "send"]
    assert [c.status for c in rp.fake.recording.sends_to("ada@example.com")] == [200, 429, 200]


async def test_send_limit_is_a_knob(rp):
    rp.fake.passwordless.send_limit = 1
    rp.fake.passwordless.send_window = 10

    await sent(rp)
    refused = await rp.send()
    rp.fake.advance(10)
    allowed = await rp.send()

    assert refused.status_code == 429
    assert allowed.status_code == 200


async def test_verify_by_otp_returns_the_documented_shape_once(rp):
    body = await sent(rp, template="SIGNUP", state="opaque-state")
    code = rp.fake.outbox.last().otp

    ok = await rp.verify(code=code, auth_request_id=body["auth_request_id"])
    again = await rp.verify(code=code, auth_request_id=body["auth_request_id"])

    assert ok.status_code == 200
    assert ok.json() == {
        "email": "ada@example.com",
        "template": "SIGNUP",
        "passwordless_type": "OTP",
        "state": "opaque-state",
    }
    assert again.status_code == 400
    assert envelope_code(again) == (9, "AUTH_REQUEST_ALREADY_USED")


async def test_verify_omits_state_when_none_was_sent(rp):
    body = await sent(rp)

    ok = await rp.verify(code=rp.fake.outbox.last().otp, auth_request_id=body["auth_request_id"])

    assert "state" not in ok.json()


async def test_five_wrong_otps_lock_the_request_even_for_the_right_code(rp):
    body = await sent(rp)
    right = rp.fake.outbox.last().otp
    wrong = "000000" if right != "000000" else "111111"

    answers = [
        await rp.verify(code=wrong, auth_request_id=body["auth_request_id"]) for _ in range(5)
    ]
    locked = await rp.verify(code=right, auth_request_id=body["auth_request_id"])

    assert [a.status_code for a in answers] == [400] * 5
    assert envelope_code(answers[0]) == (3, "INVALID_CODE")
    assert locked.status_code == 429
    assert envelope_code(locked)[0] == 8
    assert len(rp.fake.auth_requests[body["auth_request_id"]].failed_attempts) == 5
    assert rp.fake.auth_requests[body["auth_request_id"]].used is False


async def test_attempts_are_counted_over_ten_minutes_and_limits_are_knobs(rp):
    rp.fake.passwordless.max_attempts = 2
    body = await sent(rp, expires_in=3600)
    right = rp.fake.outbox.last().otp
    wrong = "000000" if right != "000000" else "111111"

    for _ in range(2):
        await rp.verify(code=wrong, auth_request_id=body["auth_request_id"])
    locked = await rp.verify(code=right, auth_request_id=body["auth_request_id"])
    rp.fake.advance(600)
    unlocked = await rp.verify(code=right, auth_request_id=body["auth_request_id"])

    assert locked.status_code == 429
    assert unlocked.status_code == 200


async def test_credentials_expire_after_300_seconds_by_default(rp):
    body = await sent(rp)
    code = rp.fake.outbox.last().otp
    rp.fake.advance(300)

    expired = await rp.verify(code=code, auth_request_id=body["auth_request_id"])
    resend = await rp.resend(body["auth_request_id"])

    assert expired.status_code == resend.status_code == 400
    assert "auth request expired" in expired.json()["message"]
    assert envelope_code(resend) == (9, "AUTH_REQUEST_EXPIRED")


async def test_custom_expiry_and_the_expire_knob(rp):
    long_lived = await sent(rp, expires_in=900)
    rp.fake.advance(600)
    still_valid = await rp.verify(
        code=rp.fake.outbox.last().otp, auth_request_id=long_lived["auth_request_id"]
    )
    other = await sent(rp, "bob@example.com")
    rp.fake.expire_passwordless(other["auth_request_id"])
    expired = await rp.verify(
        code=rp.fake.outbox.last("bob@example.com").otp, auth_request_id=other["auth_request_id"]
    )

    assert long_lived["expires_in"] == 900
    assert still_valid.status_code == 200
    assert expired.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"code": "123456", "link_token": "x_l", "auth_request_id": "a"},
        {"code": "123456"},
        {"code": "1" * 21, "auth_request_id": "a"},
    ],
)
async def test_verify_needs_exactly_one_credential_and_an_id_for_codes(rp, body):
    response = await rp.verify(**body)

    assert response.status_code == 400
    assert envelope_code(response) == (3, "INVALID_ARGUMENT")


async def test_magic_link_verifies_without_id_unless_same_browser_is_enforced(rp):
    rp.fake.passwordless.method = "LINK"
    await sent(rp, magiclink_auth_uri="https://app.test/verify")
    token = rp.fake.outbox.last().link_token

    rp.fake.passwordless.enforce_same_browser = True
    refused = await rp.verify(link_token=token)
    rp.fake.passwordless.enforce_same_browser = False
    accepted = await rp.verify(link_token=token)

    assert refused.status_code == 400
    assert "same-browser" in refused.text
    assert accepted.status_code == 200
    assert accepted.json()["passwordless_type"] == "LINK"


async def test_same_browser_link_with_its_auth_request_id_verifies(rp):
    rp.fake.passwordless.method = "LINK_OTP"
    rp.fake.passwordless.enforce_same_browser = True
    body = await sent(rp, magiclink_auth_uri="https://app.test/verify")

    ok = await rp.verify(
        link_token=rp.fake.outbox.last().link_token, auth_request_id=body["auth_request_id"]
    )

    assert ok.status_code == 200


async def test_resend_repeats_credentials_unless_new_ones_are_configured(rp):
    first = await sent(rp)
    original = rp.fake.outbox.last().otp
    await rp.resend(first["auth_request_id"])
    repeated = rp.fake.outbox.last().otp

    rp.fake.passwordless.new_credentials_on_resend = True
    second = await sent(rp, "bob@example.com")
    old = rp.fake.outbox.last("bob@example.com").otp
    await rp.resend(second["auth_request_id"])
    new = rp.fake.outbox.last("bob@example.com").otp
    stale = (
        await rp.verify(code=old, auth_request_id=second["auth_request_id"]) if old != new else None
    )
    fresh = await rp.verify(code=new, auth_request_id=second["auth_request_id"])

    assert repeated == original
    assert stale is None or stale.status_code == 400
    assert fresh.status_code == 200
    assert [e.kind for e in rp.fake.outbox.to("bob@example.com")] == ["send", "resend"]


async def test_resend_resets_expiry(rp):
    body = await sent(rp)
    rp.fake.advance(200)

    resent = (await rp.resend(body["auth_request_id"])).json()

    assert int(resent["expires_at"]) == rp.fake.now() + 300


async def test_unknown_auth_request_is_404_and_bad_ids_400(rp):
    unknown = await rp.resend("nope")
    too_long = await rp.resend("x" * 201)
    verify_unknown = await rp.verify(code="123456", auth_request_id="nope")

    assert unknown.status_code == verify_unknown.status_code == 404
    assert envelope_code(unknown) == (5, "NOT_FOUND")
    assert too_long.status_code == 400


async def test_error_answers_are_configurable(rp):
    rp.fake.answers.invalid_code.error_code = "PASSWORDLESS_INVALID"
    rp.fake.answers.invalid_code.grpc_code = 9
    body = await sent(rp)

    wrong = await rp.verify(code="not-it", auth_request_id=body["auth_request_id"])

    assert envelope_code(wrong) == (9, "PASSWORDLESS_INVALID")


async def test_send_503_once_then_recovers_and_the_recording_shows_both(rp):
    rp.fake.fail_next("passwordless_send", 503)

    failed = await rp.send()
    recovered = await rp.send()

    assert failed.status_code == 503
    assert envelope_code(failed) == (14, "UNAVAILABLE")
    assert recovered.status_code == 200
    assert [c.outcome for c in rp.fake.recording.of("passwordless_send")] == ["injected 503", "ok"]
    assert len(rp.fake.outbox) == 1


async def test_verify_can_fail_every_time(rp):
    rp.fake.fail_next("passwordless_verify", 500, times=None, message="boom")
    body = await sent(rp)

    answers = [
        await rp.verify(code="123456", auth_request_id=body["auth_request_id"]) for _ in range(3)
    ]

    assert [a.status_code for a in answers] == [500, 500, 500]
    assert envelope_code(answers[0]) == (13, "INTERNAL")
    assert rp.fake.auth_requests[body["auth_request_id"]].failed_attempts == []


async def test_dev_outbox_pages_list_emails_escaped(rp):
    await sent(rp, '"<script>"@example.com')

    page = await rp.http.get(f"{rp.fake.issuer}/_dev/outbox")
    data = await rp.http.get(f"{rp.fake.issuer}/_dev/outbox.json")

    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert data.json()["emails"][0]["otp"] == rp.fake.outbox.last().otp


async def test_default_expiry_and_attempts_window_are_knobs(rp):
    rp.fake.passwordless.default_expires_in = 30
    rp.fake.passwordless.attempts_window = 20
    rp.fake.passwordless.max_attempts = 1
    body = await sent(rp)
    right = rp.fake.outbox.last().otp
    wrong = "000000" if right != "000000" else "111111"

    await rp.verify(code=wrong, auth_request_id=body["auth_request_id"])
    locked = await rp.verify(code=right, auth_request_id=body["auth_request_id"])
    rp.fake.advance(20)
    unlocked = await rp.verify(code=right, auth_request_id=body["auth_request_id"])
    other = await sent(rp, "bob@example.com")
    rp.fake.advance(30)
    expired = await rp.verify(
        code=rp.fake.outbox.last("bob@example.com").otp, auth_request_id=other["auth_request_id"]
    )

    assert body["expires_in"] == 30
    assert locked.status_code == 429
    assert unlocked.status_code == 200
    assert expired.status_code == 400
    outcomes = [c.status for c in rp.fake.recording.of("passwordless_verify")]
    assert outcomes == [400, 429, 200, 400]


async def test_rate_limit_and_attempts_answers_are_configurable(rp):
    from rpkit_scalekit.testing import ErrorAnswer

    rp.fake.passwordless.send_limit = 1
    rp.fake.passwordless.max_attempts = 1
    rp.fake.answers.send_rate_limited = ErrorAnswer(429, "slow down", "RATE_LIMITED")
    rp.fake.answers.attempts_exhausted = ErrorAnswer(400, "locked", "ATTEMPTS_EXHAUSTED", 9)
    body = await sent(rp)

    limited = await rp.send()
    await rp.verify(code="not-it", auth_request_id=body["auth_request_id"])
    locked = await rp.verify(code="not-it", auth_request_id=body["auth_request_id"])

    assert envelope_code(limited) == (8, "RATE_LIMITED")
    assert (locked.status_code, *envelope_code(locked)) == (400, 9, "ATTEMPTS_EXHAUSTED")


async def test_latency_on_send_is_recorded_before_the_answer(rp):
    rp.fake.knobs.latency = {"passwordless_send": 0.05}

    response = await rp.send()

    call = rp.fake.recording.last("passwordless_send")
    assert response.status_code == 200
    assert call.status == 200
    assert call.json == {"email": "ada@example.com"}
