"""Checklist group R (rows 55–60): the fake OP's refresh-token grant, honest and misbehaving,
observed by a client written with plain httpx."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from rpkit.testing import ABSENT, DEFAULT_CLIENT_ID, FakeOP, Tamper


def unverified_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(jws.extract_compact(token.encode()).payload)
    return claims


async def published_keys(op: FakeOP, http: httpx.AsyncClient) -> KeySet:
    return KeySet.import_key_set((await http.get(op.endpoints["jwks"])).json())


async def refreshed_body(rp: Any, refresh_token: str) -> dict[str, Any]:
    response = await rp.refresh(refresh_token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- row 55 -----------------------------------------------------------------------------------
async def test_row_55_refresh_rotates_and_revokes_the_old_token(fake_op: FakeOP, fake_op_http, rp):
    tokens = await rp.tokens()

    refreshed = await refreshed_body(rp, tokens["refresh_token"])
    replayed = await rp.refresh(tokens["refresh_token"])
    successor = await rp.refresh(refreshed["refresh_token"])

    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert refreshed["access_token"] != tokens["access_token"]
    assert refreshed["token_type"] == "Bearer"
    assert replayed.status_code == 400
    assert replayed.json()["error"] == "invalid_grant"
    assert successor.status_code == 200
    userinfo = await fake_op_http.get(
        fake_op.endpoints["userinfo"],
        headers={"Authorization": f"Bearer {refreshed['access_token']}"},
    )
    assert userinfo.json()["sub"] == "alice"


async def test_row_55_refreshed_id_token_keeps_the_identity_and_has_no_nonce(
    fake_op: FakeOP, fake_op_http, rp
):
    tokens = await rp.tokens()

    refreshed = await refreshed_body(rp, tokens["refresh_token"])

    keys = await published_keys(fake_op, fake_op_http)
    original = jwt.decode(tokens["id_token"], keys, ["RS256"]).claims
    renewed = jwt.decode(refreshed["id_token"], keys, ["RS256"]).claims
    for claim in ("iss", "sub", "aud", "auth_time", "sid"):
        assert renewed[claim] == original[claim], claim
    assert "azp" not in renewed
    assert "nonce" not in renewed
    assert original["nonce"] == rp.nonce


async def test_row_55_without_rotation_the_same_refresh_token_keeps_working(fake_op: FakeOP, rp):
    fake_op.misbehave.refresh_rotation = False
    tokens = await rp.tokens()

    first = await refreshed_body(rp, tokens["refresh_token"])
    second = await refreshed_body(rp, tokens["refresh_token"])

    assert "refresh_token" not in first
    assert "refresh_token" not in second
    assert first["access_token"] != second["access_token"]


# -- rows 56–58 -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param({"iss": lambda c: c["iss"] + "1"}, "https://op.rpkit.test1", id="row56-iss"),
        pytest.param({"sub": "mallory"}, "mallory", id="row57-sub"),
        pytest.param({"aud": lambda c: c["aud"] + "1"}, DEFAULT_CLIENT_ID + "1", id="row58-aud"),
        pytest.param({"azp": "other-client"}, "other-client", id="row58-azp-appears"),
        pytest.param(
            {"auth_time": lambda c: c["auth_time"] - 3600},
            lambda original: original["auth_time"] - 3600,
            id="row58-auth-time",
        ),
        pytest.param({"sid": ABSENT}, None, id="sid-absent"),
    ],
)
async def test_rows_56_to_58_refresh_id_token_claims_change_only_the_refreshed_token(
    fake_op: FakeOP, fake_op_http, rp, edits, expected
):
    (claim,) = edits
    fake_op.misbehave.refresh_id_token_claims = edits
    tokens = await rp.tokens()

    refreshed = await refreshed_body(rp, tokens["refresh_token"])

    keys = await published_keys(fake_op, fake_op_http)
    original = jwt.decode(tokens["id_token"], keys, ["RS256"]).claims
    renewed = jwt.decode(refreshed["id_token"], keys, ["RS256"]).claims
    assert original["iss"] == fake_op.issuer
    assert original["sub"] == "alice"
    assert original["aud"] == DEFAULT_CLIENT_ID
    assert "azp" not in original
    assert renewed.get(claim) == (expected(original) if callable(expected) else expected)
    for other in {"iss", "sub", "aud", "auth_time", "sid"} - {claim}:
        assert renewed[other] == original[other], other


async def test_row_58_refreshed_id_token_can_be_expired(fake_op: FakeOP, fake_op_http, rp):
    fake_op.misbehave.refresh_id_token_claims = {"exp": lambda c: c["iat"] - 60}
    tokens = await rp.tokens()

    refreshed = await refreshed_body(rp, tokens["refresh_token"])

    keys = await published_keys(fake_op, fake_op_http)
    original = jwt.decode(tokens["id_token"], keys, ["RS256"]).claims
    renewed = jwt.decode(refreshed["id_token"], keys, ["RS256"]).claims
    assert original["exp"] > fake_op.now()
    assert renewed["exp"] < fake_op.now()
    assert renewed["sub"] == original["sub"]


async def test_row_58_refresh_id_token_claims_do_not_touch_the_code_exchange(
    fake_op: FakeOP, fake_op_http, rp
):
    fake_op.misbehave.refresh_id_token_claims = {"sub": "mallory"}

    tokens = await rp.tokens()

    assert unverified_claims(tokens["id_token"])["sub"] == "alice"


@pytest.mark.parametrize("tamper", [Tamper.BAD_SIGNATURE, Tamper.UNKNOWN_KEY, Tamper.ALG_NONE])
async def test_row_58_refresh_id_token_tamper_breaks_only_the_refreshed_signature(
    fake_op: FakeOP, fake_op_http, rp, tamper
):
    fake_op.misbehave.refresh_id_token_tamper = tamper
    tokens = await rp.tokens()

    refreshed = await refreshed_body(rp, tokens["refresh_token"])

    keys = await published_keys(fake_op, fake_op_http)
    original = jwt.decode(tokens["id_token"], keys, ["RS256"]).claims
    with pytest.raises(JoseError):
        jwt.decode(refreshed["id_token"], keys, ["RS256"])
    renewed = unverified_claims(refreshed["id_token"])
    for claim in ("iss", "sub", "aud", "auth_time", "sid"):
        assert renewed[claim] == original[claim], claim


# -- row 59 -----------------------------------------------------------------------------------
async def test_row_59_minimal_refresh_has_neither_id_token_nor_refresh_token(
    fake_op: FakeOP, fake_op_http, rp
):
    fake_op.misbehave.refresh_minimal = True
    tokens = await rp.tokens()

    first = await refreshed_body(rp, tokens["refresh_token"])
    second = await refreshed_body(rp, tokens["refresh_token"])

    assert "id_token" not in first
    assert "refresh_token" not in first
    assert first["access_token"] != tokens["access_token"]
    assert first["token_type"] == "Bearer"
    assert second["access_token"] != first["access_token"]
    userinfo = await fake_op_http.get(
        fake_op.endpoints["userinfo"],
        headers={"Authorization": f"Bearer {first['access_token']}"},
    )
    assert userinfo.json()["sub"] == "alice"


# -- row 60 -----------------------------------------------------------------------------------
@pytest.mark.parametrize("error", ["invalid_grant", "invalid_client"])
async def test_row_60_refresh_can_be_refused_with_an_oauth_error(fake_op: FakeOP, rp, error):
    tokens = await rp.tokens()
    fake_op.misbehave.refresh_error = error

    response = await rp.refresh(tokens["refresh_token"])

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == error
    assert fake_op.oracle.last("token").outcome.startswith(error)


async def test_row_60_refresh_error_leaves_the_code_exchange_alone(fake_op: FakeOP, rp):
    fake_op.misbehave.refresh_error = "invalid_grant"

    tokens = await rp.tokens()

    assert tokens["refresh_token"]
    assert (await rp.refresh(tokens["refresh_token"])).json()["error"] == "invalid_grant"
