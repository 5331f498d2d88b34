"""Checklist group T (rows 16–19): how rpkit authenticates at the token endpoint, and which
token responses it refuses (once, without retrying the single-use code) or accepts."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import quote_plus

import pytest

from rpkit.client import RelyingParty
from rpkit.errors import InvalidGrantError, TokenExchangeError
from rpkit.testing import (
    ABSENT,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    Canned,
    FakeClient,
    FakeOP,
    generate_key,
)
from tests.checklist.conftest import Harness


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWS, unverified (the fake OP has verified it already)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def basic_credentials(header: str) -> str:
    assert header.startswith("Basic ")
    return base64.b64decode(header.removeprefix("Basic ")).decode("utf-8")


# -- row 16 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(16)
async def test_client_secret_basic_form_encodes_the_id_and_the_reserved_character_secret(
    harness: Harness, fake_op: FakeOP
):
    result = await harness.login()

    token = fake_op.oracle.last("token")
    assert result.identity.subject == "alice"
    assert token.outcome == "ok"
    credentials = basic_credentials(token.headers["authorization"])
    assert credentials == f"{quote_plus(DEFAULT_CLIENT_ID)}:{quote_plus(DEFAULT_CLIENT_SECRET)}"
    assert ":" in DEFAULT_CLIENT_SECRET
    assert credentials.count(":") == 1  # the secret's own colon travels as %3A
    assert token.param("client_secret") is None
    assert all(DEFAULT_CLIENT_SECRET not in value for _, value in token.form)
    assert token.param("grant_type") == "authorization_code"
    assert token.param("code")
    assert token.param("redirect_uri") == DEFAULT_REDIRECT_URI
    assert token.param("code_verifier")


@pytest.mark.checklist(16)
async def test_client_secret_post_sends_the_secret_only_in_the_body(
    harness: Harness, fake_op: FakeOP
):
    fake_op.register_client(
        FakeClient("rpkit-post-client", token_endpoint_auth_method="client_secret_post")
    )
    harness.reconfigure(client_id="rpkit-post-client", client_auth="client_secret_post")

    result = await harness.login()

    token = fake_op.oracle.last("token")
    assert result.id_token.aud == ("rpkit-post-client",)
    assert token.outcome == "ok"
    assert "authorization" not in token.headers
    assert token.params("client_id") == ["rpkit-post-client"]
    assert token.params("client_secret") == [DEFAULT_CLIENT_SECRET]


@pytest.mark.checklist(16)
@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_private_key_jwt_sends_a_short_lived_single_use_client_assertion(
    harness: Harness, fake_op: FakeOP, alg
):
    key = generate_key(alg, kid="rp-assertion-key")
    fake_op.register_client(
        FakeClient(
            "rpkit-jwt-client",
            client_secret=None,
            token_endpoint_auth_method="private_key_jwt",
            jwks={"keys": [dict(key.as_dict(private=False))]},
        )
    )
    harness.reconfigure(
        client_id="rpkit-jwt-client",
        client_secret=None,
        client_auth="private_key_jwt",
        private_key=dict(key.as_dict(private=True)),
        private_key_alg=alg,
    )

    results = [await harness.login(), await harness.login()]

    requests = fake_op.oracle.of("token")
    assertions = [jwt_claims(r.param("client_assertion") or "") for r in requests]
    assert [r.identity.subject for r in results] == ["alice", "alice"]
    assert [r.outcome for r in requests] == ["ok", "ok"]
    for request, claims in zip(requests, assertions, strict=True):
        assert "authorization" not in request.headers
        assert request.param("client_secret") is None
        assert claims["iss"] == claims["sub"] == "rpkit-jwt-client"
        assert claims["aud"] in (fake_op.endpoints["token"], fake_op.issuer)
        assert 0 < claims["exp"] - claims["iat"] <= 60
    assert assertions[0]["jti"] != assertions[1]["jti"]


# -- row 17 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(17)
async def test_token_response_without_id_token_is_rejected_without_calling_userinfo(
    harness: Harness, fake_op: FakeOP
):
    fake_op.misbehave.token_fields = {"id_token": ABSENT}

    request, callback = await harness.start()
    await harness.rejected(TokenExchangeError, callback, request, stop_before="userinfo")

    assert fake_op.oracle.last("token").outcome == "ok"  # a 200 with an access token
    assert fake_op.oracle.count("token") == 1
    assert fake_op.oracle.count("userinfo") == 0


# -- row 18 ---------------------------------------------------------------------------------------
TOKEN_FAILURES = {
    "a_invalid_grant": ({"token_error": "invalid_grant"}, InvalidGrantError),
    "b_html": ({"respond": {"token": Canned.html()}}, TokenExchangeError),
    "b_http_500": ({"respond": {"token": Canned.error(500)}}, TokenExchangeError),
    "b_json_array": (
        {"respond": {"token": Canned.json([{"access_token": "x"}])}},
        TokenExchangeError,
    ),
    "c_no_access_token": ({"token_fields": {"access_token": ABSENT}}, TokenExchangeError),
    "c_no_token_type": ({"token_fields": {"token_type": ABSENT}}, TokenExchangeError),
    "d_token_type_mac": ({"token_fields": {"token_type": "mac"}}, TokenExchangeError),
}


@pytest.mark.checklist(18)
@pytest.mark.parametrize(("knobs", "error"), TOKEN_FAILURES.values(), ids=TOKEN_FAILURES.keys())
async def test_failed_code_exchange_is_rejected_once_without_retry(
    harness: Harness, fake_op: FakeOP, knobs, error
):
    for name, value in knobs.items():
        setattr(fake_op.misbehave, name, value)

    request, callback = await harness.start()
    raised = await harness.rejected(error, callback, request, stop_before="userinfo")

    assert type(raised) is error
    assert fake_op.oracle.count("token") == 1, "the single-use code was sent again"
    assert fake_op.oracle.count("userinfo") == 0


# -- row 19 ---------------------------------------------------------------------------------------
REQUESTED = ("openid", "profile", "email", "offline_access")


@pytest.mark.checklist(19)
@pytest.mark.parametrize(
    ("fields", "scope", "lifetime"),
    [
        ({"token_type": "bEARER"}, REQUESTED, 3600),
        ({"expires_in": ABSENT}, REQUESTED, 123),
        ({"scope": ABSENT}, REQUESTED, 3600),
        ({"scope": "openid"}, ("openid",), 3600),
    ],
    ids=["token_type_bEARER", "no_expires_in", "no_scope", "narrower_scope"],
)
async def test_lenient_but_valid_token_response_is_accepted_with_the_granted_scope(
    harness: Harness, fake_op: FakeOP, fields, scope, lifetime
):
    fake_op.misbehave.token_fields = fields
    now = int(time.time())
    harness.reconfigure(default_token_lifetime=123)
    harness.rp = RelyingParty(
        [harness.config], http=harness.http, store=harness.store, clock=lambda: now
    )

    result = await harness.login()

    assert result.identity.subject == "alice"
    assert result.tokens.token_type == "bearer"
    assert result.tokens.scope == scope
    assert result.tokens.expires_at == now + lifetime
    assert fake_op.oracle.count("userinfo") == 1
