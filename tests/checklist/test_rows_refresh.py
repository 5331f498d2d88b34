"""Checklist group R (rows 55–60): refreshing a session's tokens through ``RelyingParty.refresh``,
end to end against the fake OP.

A rejected refresh is asserted as: the typed error, the one refresh request and nothing after it
(no UserInfo call, no retry), and no result to store.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rpkit.client import LoginResult, RefreshResult
from rpkit.errors import (
    IDTokenValidationError,
    RefreshContinuityError,
    SessionExpiredError,
    TokenValidationError,
)
from rpkit.testing import ABSENT, DEFAULT_CLIENT_ID, Tamper
from tests.checklist.conftest import Harness

SESSION = "session-1"


def refresh_requests(harness: Harness) -> list[str | None]:
    """The refresh token presented by each refresh request, in order."""
    return [
        r.param("refresh_token")
        for r in harness.op.oracle.of("token")
        if r.param("grant_type") == "refresh_token"
    ]


async def refresh(harness: Harness, login: LoginResult | RefreshResult) -> RefreshResult:
    return await harness.rp.refresh("fake", login.tokens, login.id_token, key=SESSION)


async def refresh_rejected(
    harness: Harness, login: LoginResult, error: type[TokenValidationError], reason: str
) -> None:
    """Refresh and assert a REJECT: ``error`` with ``reason``, exactly one refresh request and
    no later UserInfo or token request."""
    before = harness.counts()
    with pytest.raises(error) as caught:
        await refresh(harness, login)
    after = harness.counts()
    assert caught.value.reason == reason
    assert after["token"] - before["token"] == 1, "one refresh request, no retry"
    assert after["userinfo"] == before["userinfo"], "rpkit called UserInfo after the refresh"


# -- row 55 -----------------------------------------------------------------------------------
@pytest.mark.checklist(55)
async def test_refresh_uses_the_new_access_token_and_the_rotated_refresh_token(harness: Harness):
    login = await harness.login()
    assert login.tokens.refresh_token is not None

    first = await refresh(harness, login)
    second = await refresh(harness, first)

    assert first.tokens.access_token != login.tokens.access_token
    assert first.tokens.refresh_token not in (None, login.tokens.refresh_token)
    assert second.tokens.refresh_token not in (None, first.tokens.refresh_token)
    # Each refresh presented the latest refresh token; the OP accepted both.
    assert refresh_requests(harness) == [login.tokens.refresh_token, first.tokens.refresh_token]
    assert [r.outcome for r in harness.op.oracle.of("token")][-2:] == ["ok", "ok"]
    assert first.id_token.sub == second.id_token.sub == "alice"


@pytest.mark.checklist(55)
async def test_the_refreshed_access_token_is_the_one_the_op_accepts(harness: Harness):
    login = await harness.login()

    refreshed = await refresh(harness, login)

    grants = harness.op.access_tokens
    assert grants[refreshed.tokens.access_token].revoked is False
    assert refreshed.tokens.access_token in grants
    assert refreshed.tokens.expires_at >= login.tokens.expires_at


@pytest.mark.checklist(55)
async def test_the_old_refresh_token_is_dead_after_rotation(harness: Harness):
    login = await harness.login()
    await refresh(harness, login)

    with pytest.raises(SessionExpiredError):
        await harness.rp.refresh("fake", login.tokens, login.id_token, key="another-session")


@pytest.mark.checklist(55)
async def test_concurrent_refreshes_of_one_session_make_one_token_request(harness: Harness):
    login = await harness.login()
    harness.op.misbehave.latency = {"token": 0.05}
    before = harness.counts()["token"]

    results = await asyncio.gather(*(refresh(harness, login) for _ in range(3)))

    assert harness.counts()["token"] - before == 1
    assert refresh_requests(harness) == [login.tokens.refresh_token]
    assert results[0] is results[1] is results[2]
    # The flight is over: the next refresh of the session is a new request with the new token.
    await refresh(harness, results[0])
    assert refresh_requests(harness)[-1] == results[0].tokens.refresh_token


@pytest.mark.checklist(55)
async def test_concurrent_callers_share_the_failure_of_a_refresh(harness: Harness):
    login = await harness.login()
    harness.op.misbehave.refresh_error = "invalid_grant"
    harness.op.misbehave.latency = {"token": 0.05}

    results = await asyncio.gather(
        refresh(harness, login), refresh(harness, login), return_exceptions=True
    )

    assert all(isinstance(r, SessionExpiredError) for r in results)
    assert len(refresh_requests(harness)) == 1


# -- rows 56–58 -------------------------------------------------------------------------------
@pytest.mark.checklist(56)
async def test_refreshed_id_token_with_another_issuer_is_rejected(harness: Harness):
    login = await harness.login()
    harness.op.misbehave.refresh_id_token_claims = {"iss": lambda c: c["iss"] + "1"}

    await refresh_rejected(harness, login, RefreshContinuityError, "iss")


@pytest.mark.checklist(57)
@pytest.mark.parametrize("sub", ["mallory", "alice ", "Alice"])
async def test_refreshed_id_token_with_another_subject_is_rejected(harness: Harness, sub: str):
    login = await harness.login()
    harness.op.misbehave.refresh_id_token_claims = {"sub": sub}

    await refresh_rejected(harness, login, RefreshContinuityError, "sub")


@pytest.mark.checklist(58)
@pytest.mark.parametrize(
    ("edits", "reason"),
    [
        pytest.param({"aud": "other-client"}, "aud", id="aud-changed"),
        pytest.param({"aud": [DEFAULT_CLIENT_ID, "other-client"]}, "aud", id="aud-widened"),
        pytest.param({"azp": "other-client"}, "azp", id="azp-appears-other"),
        pytest.param({"azp": DEFAULT_CLIENT_ID}, "azp", id="azp-appears-own-client"),
        pytest.param({"auth_time": lambda c: c["auth_time"] - 60}, "auth_time", id="auth-time"),
    ],
)
async def test_refreshed_id_token_that_changes_the_login_is_rejected(
    harness: Harness, edits: dict[str, Any], reason: str
):
    login = await harness.login()
    assert login.id_token.azp is None
    harness.op.misbehave.refresh_id_token_claims = edits

    await refresh_rejected(harness, login, RefreshContinuityError, reason)


@pytest.mark.checklist(58)
@pytest.mark.parametrize(
    ("knobs", "reason"),
    [
        pytest.param({"refresh_id_token_tamper": Tamper.BAD_SIGNATURE}, "signature", id="bad-sig"),
        pytest.param({"refresh_id_token_tamper": Tamper.UNKNOWN_KEY}, "key", id="unknown-key"),
        pytest.param({"refresh_id_token_tamper": Tamper.ALG_NONE}, "alg", id="alg-none"),
        pytest.param(
            {"refresh_id_token_claims": {"exp": lambda c: c["iat"] - 360}}, "exp", id="expired"
        ),
    ],
)
async def test_refreshed_id_token_failing_validation_is_rejected(
    harness: Harness, knobs: dict[str, Any], reason: str
):
    login = await harness.login()
    for name, value in knobs.items():
        setattr(harness.op.misbehave, name, value)

    await refresh_rejected(harness, login, IDTokenValidationError, reason)


@pytest.mark.checklist(58)
async def test_refreshed_id_token_with_the_same_login_is_accepted(harness: Harness):
    login = await harness.login()

    refreshed = await refresh(harness, login)

    renewed, original = refreshed.id_token, login.id_token
    assert renewed.iat >= original.iat
    assert (renewed.iss, renewed.sub, renewed.aud) == (original.iss, original.sub, original.aud)
    assert (renewed.azp, renewed.auth_time) == (original.azp, original.auth_time)
    assert renewed.nonce is None
    assert refreshed.tokens.id_token is not None
    assert refreshed.tokens.id_token != login.tokens.id_token


# -- row 59 -----------------------------------------------------------------------------------
@pytest.mark.checklist(59)
async def test_minimal_refresh_keeps_the_refresh_token_and_the_identity(harness: Harness):
    login = await harness.login()
    harness.op.misbehave.refresh_minimal = True

    first = await refresh(harness, login)
    second = await refresh(harness, first)

    assert first.tokens.access_token != login.tokens.access_token
    assert first.tokens.refresh_token == login.tokens.refresh_token
    assert first.tokens.id_token is None
    assert first.id_token == login.id_token
    assert first.tokens.scope == login.tokens.scope
    # The next refresh presents the kept (old) refresh token, and the OP still takes it.
    assert refresh_requests(harness) == [login.tokens.refresh_token] * 2
    assert harness.op.oracle.last("token").outcome == "ok"
    assert second.id_token == login.id_token


# -- row 60 -----------------------------------------------------------------------------------
@pytest.mark.checklist(60)
async def test_refresh_refused_with_invalid_grant_expires_the_session_without_retrying(
    harness: Harness,
):
    login = await harness.login()
    harness.op.misbehave.refresh_error = "invalid_grant"
    before = harness.counts()

    with pytest.raises(SessionExpiredError) as caught:
        await refresh(harness, login)

    after = harness.counts()
    assert caught.value.error == "invalid_grant"
    assert after["token"] - before["token"] == 1
    assert after["userinfo"] == before["userinfo"]
    assert refresh_requests(harness) == [login.tokens.refresh_token]


@pytest.mark.checklist(60)
async def test_refresh_with_a_revoked_refresh_token_expires_the_session(harness: Harness):
    login = await harness.login()
    harness.op.refresh_tokens[login.tokens.refresh_token or ""].revoked = True

    with pytest.raises(SessionExpiredError):
        await refresh(harness, login)

    assert len(refresh_requests(harness)) == 1


@pytest.mark.checklist(59)
async def test_refresh_response_without_scope_keeps_the_scope_granted_at_login(harness: Harness):
    harness.op.misbehave.token_fields = {"scope": "openid offline_access"}  # narrower than asked
    login = await harness.login()
    harness.op.misbehave.token_fields = {"scope": ABSENT}  # RFC 6749 §5.1: unchanged
    harness.op.misbehave.refresh_minimal = True

    refreshed = await refresh(harness, login)

    assert login.tokens.scope == ("openid", "offline_access")
    assert refreshed.tokens.scope == login.tokens.scope
