"""Checklist group U (rows 45–49): rpkit's UserInfo handling, end to end against the fake OP.

A UserInfo failure fails the login (rpkit's policy: never continue with part of an identity). The
UserInfo request *was* made, exactly once, so the REJECT here is: the typed error, exactly one
UserInfo request and no retry or refresh, and the transaction gone.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rpkit.client import LoginRequest
from rpkit.errors import UserInfoError
from rpkit.testing import (
    ABSENT,
    DEFAULT_CLIENT_ID,
    AuthorizationResponse,
    Canned,
    FakeClient,
    FakeOP,
    KeyRing,
    Tamper,
    TokenMinter,
)
from tests.checklist.conftest import Harness, provider_config

CLAIMS_PROVIDER = "https://claims.example"


async def rejected_by_userinfo(
    harness: Harness, callback: AuthorizationResponse, request: LoginRequest, reason: str
) -> UserInfoError:
    """Deliver ``callback`` and assert the login failed at UserInfo: ``UserInfoError`` with
    ``reason``, one code exchange and one UserInfo request (no retry, no refresh), and the
    transaction gone."""
    assert await harness.transaction_exists(request.state), "no transaction to begin with"
    before = harness.counts()
    with pytest.raises(UserInfoError) as caught:
        await harness.finish(callback)
    after = harness.counts()
    assert caught.value.reason == reason
    assert after["token"] - before["token"] == 1, "only the code exchange: no refresh-and-retry"
    assert after["userinfo"] - before["userinfo"] == 1, "UserInfo is asked exactly once"
    assert not await harness.transaction_exists(request.state), "the transaction survived"
    return caught.value


def sign_up_for_signed_userinfo(harness: Harness) -> None:
    """Signed UserInfo (RS256), registered at the OP and configured in rpkit alike."""
    harness.op.register_client(FakeClient(userinfo_signed_response_alg="RS256"))
    harness.reconfigure(userinfo_signed_response_alg="RS256")


# -- row 45 -----------------------------------------------------------------------------------
@pytest.mark.checklist(45)
@pytest.mark.parametrize(
    "sub",
    [
        pytest.param(lambda c: c["sub"] + "invalid", id="sub-plus-invalid"),
        pytest.param("bob", id="another-user"),
        pytest.param(ABSENT, id="sub-absent"),
    ],
)
async def test_userinfo_naming_another_or_no_subject_fails_the_login(harness: Harness, sub: Any):
    harness.op.misbehave.userinfo_claims = {"sub": sub}
    request, callback = await harness.start()

    await rejected_by_userinfo(harness, callback, request, reason="sub")


@pytest.mark.checklist(45)
async def test_signed_userinfo_naming_another_subject_fails_the_login(harness: Harness):
    sign_up_for_signed_userinfo(harness)
    harness.op.misbehave.userinfo_claims = {"sub": lambda c: c["sub"] + "invalid"}
    request, callback = await harness.start()

    await rejected_by_userinfo(harness, callback, request, reason="sub")


# -- row 46 -----------------------------------------------------------------------------------
@pytest.mark.checklist(46)
async def test_userinfo_is_asked_with_the_bearer_header_only_and_its_claims_are_read(
    harness: Harness,
):
    result = await harness.login()

    asked = harness.op.oracle.last("userinfo")
    assert asked.outcome == "ok"
    assert asked.headers["authorization"] == f"Bearer {result.tokens.access_token}"
    assert asked.param("access_token") is None
    assert asked.method == "GET"
    assert result.userinfo is not None
    assert result.userinfo["email"] == "alice@example.com"
    assert result.userinfo["given_name"] == "Alice"
    assert result.identity.claims["email"] == "alice@example.com"
    assert result.identity.claims["name"] == "Alice Liddell"


@pytest.mark.checklist(46)
async def test_userinfo_claims_are_those_of_the_granted_scope(harness: Harness):
    harness.reconfigure(scopes=("openid", "email"))

    result = await harness.login()

    assert result.userinfo is not None
    assert set(result.userinfo) == {"sub", "email", "email_verified"}
    assert "name" not in result.identity.claims


@pytest.mark.checklist(46)
async def test_identity_issuer_and_subject_come_from_the_id_token_not_userinfo(
    harness: Harness,
):
    harness.op.misbehave.userinfo_claims = {"iss": "https://evil.example", "aud": "other-client"}

    result = await harness.login()

    assert result.userinfo is not None
    assert result.userinfo["iss"] == "https://evil.example"  # really said otherwise
    assert result.identity.issuer == harness.op.issuer == result.id_token.iss
    assert result.identity.subject == "alice" == result.id_token.sub
    assert result.identity.claims["iss"] == harness.op.issuer
    assert result.identity.claims["aud"] == result.id_token.claims["aud"]


# -- row 47 -----------------------------------------------------------------------------------
@pytest.mark.checklist(47)
@pytest.mark.parametrize(
    ("canned", "reason"),
    [
        pytest.param(Canned.bearer_error(), "unauthorized", id="401-invalid-token"),
        pytest.param(Canned.html(), "not_json", id="200-html"),
        pytest.param(Canned.json([{"sub": "alice"}]), "not_object", id="200-json-array"),
    ],
)
async def test_userinfo_error_html_or_array_fails_the_login(
    harness: Harness, canned: Any, reason: str
):
    harness.op.misbehave.respond = {"userinfo": canned}
    request, callback = await harness.start()

    await rejected_by_userinfo(harness, callback, request, reason=reason)


# -- row 48 -----------------------------------------------------------------------------------
@pytest.mark.checklist(48)
async def test_signed_userinfo_is_verified_and_accepted_when_configured(harness: Harness):
    sign_up_for_signed_userinfo(harness)

    result = await harness.login()

    asked = harness.op.oracle.last("userinfo")
    assert asked.outcome == "ok"
    assert asked.headers["accept"] == "application/jwt"
    assert result.userinfo is not None
    assert result.userinfo["email"] == "alice@example.com"
    assert result.userinfo["iss"] == harness.op.issuer
    assert result.userinfo["aud"] == DEFAULT_CLIENT_ID
    assert result.identity.subject == "alice"


@pytest.mark.checklist(48)
@pytest.mark.parametrize(
    ("knobs", "cause"),
    [
        pytest.param({"userinfo_tamper": Tamper.BAD_SIGNATURE}, "signature", id="bad-signature"),
        pytest.param({"userinfo_tamper": Tamper.UNKNOWN_KEY}, "key", id="unknown-key"),
        pytest.param({"userinfo_tamper": Tamper.ALG_NONE}, "alg", id="alg-none"),
        pytest.param({"userinfo_claims": {"iss": "https://other.example"}}, "iss", id="iss-other"),
        pytest.param({"userinfo_claims": {"iss": ABSENT}}, "iss", id="iss-absent"),
        pytest.param({"userinfo_claims": {"aud": "other-client"}}, "aud", id="aud-other"),
        pytest.param({"userinfo_claims": {"aud": ABSENT}}, "aud", id="aud-absent"),
        pytest.param(
            {"userinfo_claims": {"aud": ["other-client"]}}, "aud", id="aud-list-without-client"
        ),
    ],
)
async def test_signed_userinfo_with_a_bad_signature_iss_or_aud_fails_the_login(
    harness: Harness, knobs: dict[str, Any], cause: str
):
    sign_up_for_signed_userinfo(harness)
    for name, value in knobs.items():
        setattr(harness.op.misbehave, name, value)
    request, callback = await harness.start()

    error = await rejected_by_userinfo(harness, callback, request, reason="jwt")

    assert isinstance(error.__cause__, UserInfoError)
    assert error.__cause__.reason == cause


@pytest.mark.checklist(48)
async def test_unexpected_signed_userinfo_fails_the_login(harness: Harness):
    harness.op.misbehave.userinfo_signed = True
    request, callback = await harness.start()

    await rejected_by_userinfo(harness, callback, request, reason="unexpected_jwt")


@pytest.mark.checklist(48)
async def test_plain_json_userinfo_when_signed_is_configured_fails_the_login(harness: Harness):
    harness.reconfigure(userinfo_signed_response_alg="RS256")  # the OP still answers JSON
    request, callback = await harness.start()

    await rejected_by_userinfo(harness, callback, request, reason="not_jwt")


# -- row 49 -----------------------------------------------------------------------------------
def aggregated_and_distributed(claims_provider: TokenMinter) -> dict[str, Any]:
    aggregated = claims_provider.sign(
        {"iss": claims_provider.issuer, "sub": "alice", "address": {"country": "Wonderland"}}
    )
    return {
        "_claim_names": {"address": "src1", "credit_score": "src2"},
        "_claim_sources": {
            "src1": {"JWT": aggregated},
            "src2": {"endpoint": f"{CLAIMS_PROVIDER}/score", "access_token": "ksj3n283dke"},
        },
    }


@pytest.mark.checklist(49)
async def test_aggregated_and_distributed_claims_are_ignored_and_the_login_accepted(
    fake_op: FakeOP, store: Any
):
    claims_op = FakeOP(CLAIMS_PROVIDER)
    http = httpx.AsyncClient(transport=fake_op.transport(claims_op), timeout=5.0)
    harness = Harness(fake_op, http, store, provider_config(fake_op))
    fake_op.misbehave.userinfo_claims = aggregated_and_distributed(
        TokenMinter(CLAIMS_PROVIDER, KeyRing())
    )

    result = await harness.login()

    assert harness.op.oracle.last("userinfo").outcome == "ok"
    assert result.userinfo is not None
    assert result.userinfo["email"] == "alice@example.com"
    for name in ("_claim_names", "_claim_sources", "address", "credit_score"):
        assert name not in result.userinfo
        assert name not in result.identity.claims
    assert claims_op.oracle.count() == 0, "rpkit fetched from the claims provider"
