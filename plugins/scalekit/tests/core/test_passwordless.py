"""Passwordless send, resend and verify: the exact REST wire, local input checks against
Scalekit's limits, typed refusals, and never an automatic retry."""

from __future__ import annotations

import httpx
import pytest

from rpkit_scalekit.errors import (
    InvalidEmailError,
    PasswordlessAttemptsExhaustedError,
    PasswordlessExpiredError,
    PasswordlessInvalidCredentialError,
    PasswordlessRateLimitedError,
    PasswordlessUsedError,
    ScalekitAPIError,
    ScalekitInputError,
    ScalekitUnavailableError,
)
from rpkit_scalekit.passwordless import PasswordlessClient, SendResult, VerifyResult

from .conftest import json_body, status_envelope, token_answer

SEND = "/api/v1/passwordless/email/send"
RESEND = "/api/v1/passwordless/email/resend"
VERIFY = "/api/v1/passwordless/email/verify"
AUTH_ID = "ar_" + "x" * 47
SENT = {
    "auth_request_id": AUTH_ID,
    "expires_at": "1800000300",
    "expires_in": 300,
    "passwordless_type": "LINK_OTP",
}


@pytest.fixture
def client(api) -> PasswordlessClient:
    return PasswordlessClient(api)


@pytest.fixture
def send(mock, token_route):
    return mock.post(SEND)


@pytest.fixture
def verify(mock, token_route):
    return mock.post(VERIFY)


@pytest.fixture
def resend(mock, token_route):
    return mock.post(RESEND)


async def test_send_posts_the_documented_json_and_reads_the_answer(client, send):
    send.respond(200, json=SENT)

    result = await client.send(
        "Ada@Example.com",
        template="SIGNUP",
        magiclink_auth_uri="https://app.test/auth/magic?x=1",
        state="browser-state",
        expires_in=600,
        template_variables={"app_name": "Acme"},
    )

    assert json_body(send.calls.last.request) == {
        "email": "Ada@example.com",
        "template": "SIGNUP",
        "magiclink_auth_uri": "https://app.test/auth/magic?x=1",
        "state": "browser-state",
        "expires_in": 600,
        "template_variables": {"app_name": "Acme"},
    }
    assert send.calls.last.request.headers["authorization"] == "Bearer m2m-1"
    assert result == SendResult(
        auth_request_id=AUTH_ID,
        expires_at=1_800_000_300,
        expires_in=300,
        passwordless_type="LINK_OTP",
    )


async def test_a_minimal_send_omits_unset_fields(client, send):
    send.respond(200, json=SENT)

    await client.send("ada@example.com")

    assert json_body(send.calls.last.request) == {"email": "ada@example.com", "template": "SIGNIN"}


@pytest.mark.parametrize(
    "answer",
    [
        SENT | {"expires_at": 1_800_000_300},
        {
            "authRequestId": AUTH_ID,
            "expiresAt": "1800000300",
            "expiresIn": 300,
            "passwordlessType": "LINK_OTP",
        },
    ],
    ids=["expires_at_as_number", "camel_case"],
)
async def test_send_accepts_numbers_and_camel_case(client, send, answer):
    send.respond(200, json=answer)

    result = await client.send("ada@example.com")

    assert (result.auth_request_id, result.expires_at) == (AUTH_ID, 1_800_000_300)


@pytest.mark.parametrize(
    "failure",
    [
        status_envelope(503, 14, "unavailable", "UNAVAILABLE"),
        status_envelope(500, 13, "internal", "INTERNAL"),
        httpx.ConnectTimeout("slow"),
        httpx.ReadTimeout("slow"),
    ],
    ids=["503", "500", "connect_timeout", "read_timeout"],
)
async def test_send_is_never_retried(client, send, failure):
    send.mock(side_effect=[failure, httpx.Response(200, json=SENT)])

    with pytest.raises(ScalekitUnavailableError):
        await client.send("ada@example.com")

    assert send.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [status_envelope(503, 14, "unavailable", "UNAVAILABLE"), httpx.ReadTimeout("slow")],
    ids=["503", "read_timeout"],
)
async def test_verify_is_never_retried(client, verify, failure):
    verify.mock(side_effect=[failure, httpx.Response(200, json={"email": "ada@example.com"})])

    with pytest.raises(ScalekitUnavailableError):
        await client.verify_code("123456", auth_request_id=AUTH_ID)

    assert verify.call_count == 1


async def test_resend_is_never_retried(client, resend):
    resend.mock(return_value=status_envelope(503, 14, "unavailable", "UNAVAILABLE"))

    with pytest.raises(ScalekitUnavailableError):
        await client.resend(AUTH_ID)

    assert resend.call_count == 1


async def test_a_401_is_repeated_once_with_a_fresh_token_because_nothing_was_done(
    client, send, token_route
):
    token_route.side_effect = [token_answer("m2m-1"), token_answer("m2m-2")]
    send.mock(
        side_effect=[
            status_envelope(401, 16, "Token expired", "UNAUTHENTICATED"),
            httpx.Response(200, json=SENT),
        ]
    )

    await client.send("ada@example.com")

    assert [c.request.headers["authorization"] for c in send.calls] == [
        "Bearer m2m-1",
        "Bearer m2m-2",
    ]


async def test_send_rate_limit_is_typed_with_retry_after(client, send):
    send.mock(
        return_value=status_envelope(
            429, 8, "too many emails", "RESOURCE_EXHAUSTED", headers={"Retry-After": "42"}
        )
    )

    with pytest.raises(PasswordlessRateLimitedError) as caught:
        await client.send("ada@example.com")

    error = caught.value
    assert (error.retry_after, error.local, error.status) == (42, False, 429)
    assert (error.error_code, error.request_id) == ("RESOURCE_EXHAUSTED", "req_42")


async def test_resend_rate_limit_is_typed(client, resend):
    resend.mock(return_value=status_envelope(429, 8, "too many", "RESOURCE_EXHAUSTED"))

    with pytest.raises(PasswordlessRateLimitedError) as caught:
        await client.resend(AUTH_ID)

    assert caught.value.retry_after is None
    assert json_body(resend.calls.last.request) == {"auth_request_id": AUTH_ID}


async def test_verify_429_means_attempts_exhausted(client, verify):
    verify.mock(return_value=status_envelope(429, 8, "too many attempts", "RESOURCE_EXHAUSTED"))

    with pytest.raises(PasswordlessAttemptsExhaustedError) as caught:
        await client.verify_code("123456", auth_request_id=AUTH_ID)

    assert not caught.value.local


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            status_envelope(400, 3, "INVALID_CODE: the code is invalid", "INVALID_CODE"),
            PasswordlessInvalidCredentialError,
        ),
        (
            status_envelope(400, 9, "auth request expired", "FAILED_PRECONDITION"),
            PasswordlessExpiredError,
        ),
        (
            status_envelope(400, 9, "auth request already used", "AUTH_REQUEST_ALREADY_USED"),
            PasswordlessUsedError,
        ),
        (
            status_envelope(404, 5, "auth request not found", "NOT_FOUND"),
            PasswordlessInvalidCredentialError,
        ),
    ],
    ids=["invalid", "expired", "used", "unknown"],
)
async def test_verify_refusals_are_typed(client, verify, answer, error):
    verify.mock(return_value=answer)

    with pytest.raises(error) as caught:
        await client.verify_code("123456", auth_request_id=AUTH_ID)

    assert caught.value.request_id == "req_42"
    assert verify.call_count == 1


async def test_resend_of_an_expired_request_is_typed(client, resend):
    resend.mock(
        return_value=status_envelope(400, 9, "auth request expired", "AUTH_REQUEST_EXPIRED")
    )

    with pytest.raises(PasswordlessExpiredError):
        await client.resend(AUTH_ID)


async def test_a_server_side_validation_refusal_is_not_mistaken_for_a_wrong_code(client, verify):
    verify.mock(
        return_value=status_envelope(
            400,
            3,
            "validation error",
            "INVALID_ARGUMENT",
            violations=[{"field": "code", "description": "x", "constraint": "string.max_len"}],
        )
    )

    with pytest.raises(ScalekitAPIError) as caught:
        await client.verify_code("123456", auth_request_id=AUTH_ID)

    assert caught.value.violations == (("code", "string.max_len"),)


async def test_verify_by_code_and_by_link(client, verify):
    verify.mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "email": "ada@example.com",
                    "template": "SIGNIN",
                    "passwordless_type": "OTP",
                    "state": "s1",
                },
            ),
            httpx.Response(200, json={"email": "ada@example.com", "template": "SIGNUP"}),
        ]
    )

    by_code = await client.verify_code("123456", auth_request_id=AUTH_ID)
    by_link = await client.verify_link("a4143d8f-uuid_l")

    assert by_code == VerifyResult(
        email="ada@example.com", template="SIGNIN", passwordless_type="OTP", state="s1"
    )
    assert by_link.state is None
    assert json_body(verify.calls[0].request) == {"code": "123456", "auth_request_id": AUTH_ID}
    assert json_body(verify.calls[1].request) == {"link_token": "a4143d8f-uuid_l"}


async def test_same_browser_origin_needs_the_auth_request_id_for_links(api, mock):
    client = PasswordlessClient(api, same_browser_origin=True)

    with pytest.raises(ScalekitInputError) as caught:
        await client.verify_link("a4143d8f-uuid_l")

    assert caught.value.field == "auth_request_id"
    assert len(mock.calls) == 0


TOO_MANY = {f"k{i:02d}": "v" for i in range(31)}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"template_variables": TOO_MANY}, "template_variables"),
        ({"template_variables": {"k": "v"}}, "template_variables"),
        ({"template_variables": {"k" * 26: "v"}}, "template_variables"),
        ({"template_variables": {"otp": "000000"}}, "template_variables"),
        ({"template_variables": {"expiry_time": "never"}}, "template_variables"),
        ({"template_variables": {"name": "v" * 257}}, "template_variables"),
        ({"template": "LOGIN"}, "template"),
        ({"magiclink_auth_uri": "/relative/path"}, "magiclink_auth_uri"),
        ({"magiclink_auth_uri": "https://app.test/" + "x" * 1000}, "magiclink_auth_uri"),
        ({"state": "s" * 1001}, "state"),
        ({"state": ""}, "state"),
        ({"expires_in": 0}, "expires_in"),
        ({"expires_in": 2**32}, "expires_in"),
    ],
)
async def test_send_input_is_checked_locally_against_scalekits_limits(client, mock, kwargs, field):
    with pytest.raises(ScalekitInputError) as caught:
        await client.send("ada@example.com", **kwargs)

    assert caught.value.field == field
    assert len(mock.calls) == 0


async def test_thirty_template_variables_within_limits_are_sent(client, send):
    send.respond(200, json=SENT)
    variables = {f"k{i:02d}": "v" * 256 for i in range(30)}

    await client.send("ada@example.com", template_variables=variables)

    assert json_body(send.calls.last.request)["template_variables"] == variables


async def test_a_bad_email_is_refused_before_any_request(client, mock):
    with pytest.raises(InvalidEmailError):
        await client.send("not an email")

    assert len(mock.calls) == 0


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.verify_code("1" * 21, auth_request_id=AUTH_ID), "code"),
        (lambda c: c.verify_code("", auth_request_id=AUTH_ID), "code"),
        (lambda c: c.verify_code("123456", auth_request_id="x" * 201), "auth_request_id"),
        (lambda c: c.verify_link("l" * 101), "link_token"),
        (lambda c: c.resend(""), "auth_request_id"),
    ],
)
async def test_verify_and_resend_input_is_checked_locally(client, mock, call, field):
    with pytest.raises(ScalekitInputError) as caught:
        await call(client)

    assert caught.value.field == field
    assert len(mock.calls) == 0


async def test_an_unexpected_success_body_is_unavailable_not_a_crash(client, send):
    send.respond(200, json={"unexpected": True})

    with pytest.raises(ScalekitUnavailableError):
        await client.send("ada@example.com")
