"""Checklist group U (rows 45–49): the fake OP's UserInfo endpoint, honest and misbehaving,
observed by a client written with plain httpx."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from rpkit.testing import (
    ABSENT,
    DEFAULT_CLIENT_ID,
    Canned,
    FakeClient,
    FakeOP,
    KeyRing,
    Tamper,
    TokenMinter,
)

ALICE_PROFILE = {"name", "given_name", "family_name", "preferred_username", "locale", "updated_at"}
ALICE_EMAIL = {"email", "email_verified"}


async def userinfo(
    op: FakeOP, http: httpx.AsyncClient, access_token: str, **kwargs: Any
) -> httpx.Response:
    return await http.get(
        op.endpoints["userinfo"], headers={"Authorization": f"Bearer {access_token}"}, **kwargs
    )


async def published_keys(op: FakeOP, http: httpx.AsyncClient) -> KeySet:
    return KeySet.import_key_set((await http.get(op.endpoints["jwks"])).json())


def unverified_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(jws.extract_compact(token.encode()).payload)
    return claims


def sign_up_for_signed_userinfo(op: FakeOP) -> None:
    op.register_client(FakeClient(userinfo_signed_response_alg="RS256"))


# -- row 45 -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("edits", "expected_sub"),
    [
        pytest.param(
            {"sub": lambda c: c["sub"] + "invalid"}, "aliceinvalid", id="sub-plus-invalid"
        ),
        pytest.param({"sub": "bob"}, "bob", id="another-user"),
        pytest.param({"sub": ABSENT}, None, id="sub-absent"),
    ],
)
async def test_row_45_userinfo_sub_can_differ_or_be_absent(
    fake_op: FakeOP, fake_op_http, rp, edits, expected_sub
):
    fake_op.misbehave.userinfo_claims = edits
    tokens = await rp.tokens()

    response = await userinfo(fake_op, fake_op_http, tokens["access_token"])

    assert response.status_code == 200
    body = response.json()
    assert body.get("sub") == expected_sub
    assert ("sub" in body) is (expected_sub is not None)
    assert unverified_claims(tokens["id_token"])["sub"] == "alice"
    assert body["email"] == "alice@example.com"


async def test_row_45_sub_edit_applies_once_in_signed_userinfo(fake_op: FakeOP, fake_op_http, rp):
    sign_up_for_signed_userinfo(fake_op)
    fake_op.misbehave.userinfo_claims = {"sub": lambda c: c["sub"] + "invalid"}
    tokens = await rp.tokens()

    response = await userinfo(fake_op, fake_op_http, tokens["access_token"])

    claims = jwt.decode(response.text, await published_keys(fake_op, fake_op_http)).claims
    assert claims["sub"] == "aliceinvalid"


# -- row 46 -----------------------------------------------------------------------------------
async def test_row_46_userinfo_accepts_the_bearer_header(fake_op: FakeOP, fake_op_http, rp):
    tokens = await rp.tokens()

    response = await userinfo(fake_op, fake_op_http, tokens["access_token"])

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["sub"] == "alice"
    assert fake_op.oracle.last("userinfo").outcome == "ok"


@pytest.mark.parametrize(
    "placement",
    ["query", "form-body", "query-and-header", "no-token", "basic-scheme", "unknown-token"],
)
async def test_row_46_userinfo_refuses_a_token_outside_the_bearer_header(
    fake_op: FakeOP, fake_op_http, rp, placement
):
    token = (await rp.tokens())["access_token"]
    url = fake_op.endpoints["userinfo"]
    bearer = {"Authorization": f"Bearer {token}"}
    requests = {
        "query": lambda: fake_op_http.get(url, params={"access_token": token}),
        "form-body": lambda: fake_op_http.post(url, data={"access_token": token}),
        "query-and-header": lambda: fake_op_http.get(
            url, params={"access_token": token}, headers=bearer
        ),
        "no-token": lambda: fake_op_http.get(url),
        "basic-scheme": lambda: fake_op_http.get(url, headers={"Authorization": f"Basic {token}"}),
        "unknown-token": lambda: fake_op_http.get(url, headers={"Authorization": "Bearer nope"}),
    }

    response = await requests[placement]()

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer error=")
    assert "sub" not in response.json()


@pytest.mark.parametrize(
    ("scope", "released"),
    [
        pytest.param("openid", set(), id="openid-only"),
        pytest.param("openid email", ALICE_EMAIL, id="email"),
        pytest.param("openid profile", ALICE_PROFILE, id="profile"),
        pytest.param("openid profile email", ALICE_PROFILE | ALICE_EMAIL, id="profile-email"),
    ],
)
async def test_row_46_userinfo_claims_follow_the_granted_scope(
    fake_op: FakeOP, fake_op_http, rp, scope, released
):
    tokens = await rp.tokens(scope=scope)

    response = await userinfo(fake_op, fake_op_http, tokens["access_token"])

    assert set(response.json()) == {"sub"} | released


# -- row 47 -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("canned", "expected"),
    [
        pytest.param(Canned.bearer_error(), (401, None), id="401-invalid-token"),
        pytest.param(Canned.html(), (200, "text/html; charset=utf-8"), id="200-html"),
        pytest.param(Canned.json([{"sub": "alice"}]), (200, "application/json"), id="200-array"),
    ],
)
async def test_row_47_userinfo_can_answer_with_an_error_html_or_an_array(
    fake_op: FakeOP, fake_op_http, rp, canned, expected
):
    status, content_type = expected
    fake_op.misbehave.respond = {"userinfo": canned}
    tokens = await rp.tokens()

    response = await userinfo(fake_op, fake_op_http, tokens["access_token"])

    assert response.status_code == status
    assert response.headers.get("content-type") == content_type
    assert response.content == canned.body
    assert fake_op.oracle.last("userinfo").outcome == f"canned {status}"


async def test_row_47_bearer_error_carries_the_rfc_6750_challenge(
    fake_op: FakeOP, fake_op_http, rp
):
    fake_op.misbehave.respond = {"userinfo": Canned.bearer_error()}
    tokens = await rp.tokens()

    response = await userinfo(fake_op, fake_op_http, tokens["access_token"])

    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_row_47_array_body_is_a_json_array(fake_op: FakeOP, fake_op_http, rp):
    fake_op.misbehave.respond = {"userinfo": Canned.json([{"sub": "alice"}])}
    tokens = await rp.tokens()

    response = await userinfo(fake_op, fake_op_http, tokens["access_token"])

    assert response.json() == [{"sub": "alice"}]


# -- row 48 -----------------------------------------------------------------------------------
async def test_row_48_registered_client_gets_a_signed_userinfo_jwt(
    fake_op: FakeOP, fake_op_http, rp
):
    sign_up_for_signed_userinfo(fake_op)
    tokens = await rp.tokens()

    response = await userinfo(fake_op, fake_op_http, tokens["access_token"])

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jwt"
    token = jwt.decode(response.text, await published_keys(fake_op, fake_op_http), ["RS256"])
    assert token.header["kid"] == fake_op.keys.kid("RS256")
    assert token.claims["iss"] == fake_op.issuer
    assert token.claims["aud"] == DEFAULT_CLIENT_ID
    assert token.claims["sub"] == "alice"
    assert token.claims["email"] == "alice@example.com"


async def test_row_48_unregistered_client_gets_json_unless_the_knob_is_set(
    fake_op: FakeOP, fake_op_http, rp
):
    tokens = await rp.tokens()
    plain = await userinfo(fake_op, fake_op_http, tokens["access_token"])
    fake_op.misbehave.userinfo_signed = True

    unexpected = await userinfo(fake_op, fake_op_http, tokens["access_token"])

    assert fake_op.clients[DEFAULT_CLIENT_ID].userinfo_signed_response_alg is None
    assert plain.headers["content-type"] == "application/json"
    assert unexpected.headers["content-type"] == "application/jwt"
    claims = jwt.decode(unexpected.text, await published_keys(fake_op, fake_op_http)).claims
    assert claims["sub"] == "alice"
    assert claims["iss"] == fake_op.issuer


@pytest.mark.parametrize("tamper", [Tamper.BAD_SIGNATURE, Tamper.UNKNOWN_KEY, Tamper.ALG_NONE])
async def test_row_48_userinfo_tamper_breaks_only_the_signature(
    fake_op: FakeOP, fake_op_http, rp, tamper
):
    sign_up_for_signed_userinfo(fake_op)
    fake_op.misbehave.userinfo_tamper = tamper
    tokens = await rp.tokens()

    response = await userinfo(fake_op, fake_op_http, tokens["access_token"])

    assert response.headers["content-type"] == "application/jwt"
    with pytest.raises(JoseError):
        jwt.decode(response.text, await published_keys(fake_op, fake_op_http), ["RS256"])
    claims = unverified_claims(response.text)
    assert (claims["iss"], claims["aud"], claims["sub"]) == (
        fake_op.issuer,
        DEFAULT_CLIENT_ID,
        "alice",
    )


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param({"iss": "https://evil.example"}, "https://evil.example", id="iss-other"),
        pytest.param({"iss": lambda c: c["iss"] + "1"}, "https://op.rpkit.test1", id="iss-plus-1"),
        pytest.param({"iss": ABSENT}, None, id="iss-absent"),
        pytest.param({"aud": "other-client"}, "other-client", id="aud-other"),
        pytest.param({"aud": ABSENT}, None, id="aud-absent"),
        pytest.param({"aud": lambda c: [c["aud"] + "1"]}, [DEFAULT_CLIENT_ID + "1"], id="aud-list"),
    ],
)
async def test_row_48_signed_userinfo_iss_and_aud_can_be_wrong(
    fake_op: FakeOP, fake_op_http, rp, edits, expected
):
    (member,) = edits
    sign_up_for_signed_userinfo(fake_op)
    fake_op.misbehave.userinfo_claims = edits
    tokens = await rp.tokens()

    response = await userinfo(fake_op, fake_op_http, tokens["access_token"])

    claims = jwt.decode(response.text, await published_keys(fake_op, fake_op_http)).claims
    assert claims.get(member) == expected
    assert (member in claims) is (expected is not None)
    assert claims["sub"] == "alice"


# -- row 49 -----------------------------------------------------------------------------------
def aggregated_and_distributed(claims_provider: TokenMinter) -> dict[str, Any]:
    address = {"country": "Wonderland"}
    aggregated = claims_provider.sign({"iss": claims_provider.issuer, "address": address})
    return {
        "_claim_names": {"address": "src1", "credit_score": "src2"},
        "_claim_sources": {
            "src1": {"JWT": aggregated},
            "src2": {"endpoint": "https://claims.example/score", "access_token": "ksj3n283dke"},
        },
    }


async def test_row_49_userinfo_can_carry_aggregated_and_distributed_claims(
    fake_op: FakeOP, fake_op_http, rp
):
    provider_keys = KeyRing()
    provider = TokenMinter("https://claims.example", provider_keys)
    fake_op.misbehave.userinfo_claims = aggregated_and_distributed(provider)
    tokens = await rp.tokens()

    body = (await userinfo(fake_op, fake_op_http, tokens["access_token"])).json()

    assert body["sub"] == "alice"
    assert body["email"] == "alice@example.com"
    assert "address" not in body
    assert body["_claim_names"] == {"address": "src1", "credit_score": "src2"}
    sources = body["_claim_sources"]
    assert sources["src2"] == {
        "endpoint": "https://claims.example/score",
        "access_token": "ksj3n283dke",
    }
    provider_jwks = KeySet.import_key_set(provider_keys.jwks())
    aggregated = jwt.decode(sources["src1"]["JWT"], provider_jwks, ["RS256"])
    assert aggregated.claims["address"] == {"country": "Wonderland"}
    with pytest.raises(JoseError):
        jwt.decode(sources["src1"]["JWT"], await published_keys(fake_op, fake_op_http), ["RS256"])
