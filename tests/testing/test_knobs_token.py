"""The fake OP's token endpoint authenticates clients strictly (row 16) and its knobs produce each
artefact of checklist group T (rows 17–19), as seen on the wire by a plain httpx client."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

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

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
POST_CLIENT_ID = "post-client"
JWT_CLIENT_ID = "jwt-client"
RP_KID = "rp-key-1"


async def exchange(rp, code: str, headers: dict[str, str] | None = None, **auth: str):
    """The code exchange with the caller's choice of client authentication only."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": DEFAULT_REDIRECT_URI,
        "code_verifier": rp.verifier,
        **auth,
    }
    response: httpx.Response = await rp.http.post(
        rp.op.endpoints["token"], data=data, headers=headers or {}
    )
    return response


def naive_basic(client_id: str, secret: str, encoding: str = "utf-8") -> str:
    """``Basic`` of ``id:secret`` without the form-urlencoding RFC 6749 §2.3.1 requires."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode(encoding)).decode()


def assert_refused(response: httpx.Response, status: int, error: str) -> None:
    assert (response.status_code, response.json()["error"]) == (status, error), response.text
    assert "access_token" not in response.json()


# -- row 16: client_secret_basic, encoded as RFC 6749 §2.3.1 says -----------------------------
def test_row_16_default_secret_holds_every_character_form_encoding_must_escape():
    assert set(":" + " +/%=é") <= set(DEFAULT_CLIENT_SECRET)
    assert quote_plus(DEFAULT_CLIENT_SECRET) != DEFAULT_CLIENT_SECRET


async def test_row_16_basic_with_form_urlencoded_secret_is_accepted(fake_op: FakeOP, rp):
    response = await exchange(rp, await rp.code(), {"Authorization": rp.basic_auth()})

    assert rp.basic_auth() != naive_basic(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"
    assert fake_op.oracle.last("token").param("client_secret") is None


async def test_row_16_basic_form_urlencodes_the_client_id_too(fake_op: FakeOP, rp):
    odd = fake_op.register_client(FakeClient("app:one+two 3/%"))

    response = await exchange(
        rp,
        await rp.code(client_id=odd.client_id),
        {"Authorization": rp.basic_auth(odd.client_id)},
    )

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "header",
    [
        naive_basic(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        naive_basic(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, "latin-1"),
        naive_basic(DEFAULT_CLIENT_ID, "wrong"),
    ],
    ids=["unencoded_utf8", "unencoded_latin1_as_authlib", "wrong_secret"],
)
async def test_row_16_basic_with_an_unencoded_or_wrong_secret_is_refused(rp, header):
    code = await rp.code()

    refused = await exchange(rp, code, {"Authorization": header})
    retried = await exchange(rp, code, {"Authorization": rp.basic_auth()})

    assert_refused(refused, 401, "invalid_client")
    assert retried.status_code == 200  # the refusal was about the client, not the code


async def test_row_16_client_secret_post_is_refused_for_a_basic_client(rp):
    response = await exchange(
        rp, await rp.code(), client_id=DEFAULT_CLIENT_ID, client_secret=DEFAULT_CLIENT_SECRET
    )

    assert_refused(response, 401, "invalid_client")
    assert "client_secret_basic" in response.json()["error_description"]


async def test_row_16_two_authentication_methods_at_once_are_refused(rp):
    response = await exchange(
        rp, await rp.code(), {"Authorization": rp.basic_auth()}, client_secret=DEFAULT_CLIENT_SECRET
    )

    assert_refused(response, 400, "invalid_request")
    assert "more than one" in response.json()["error_description"]


async def test_row_16_no_client_authentication_is_refused(rp):
    response = await exchange(rp, await rp.code(), client_id=DEFAULT_CLIENT_ID)

    assert_refused(response, 401, "invalid_client")


# -- row 16: client_secret_post ---------------------------------------------------------------
@pytest.fixture
def post_client(fake_op: FakeOP) -> FakeClient:
    return fake_op.register_client(
        FakeClient(POST_CLIENT_ID, token_endpoint_auth_method="client_secret_post")
    )


@pytest.mark.usefixtures("post_client")
async def test_row_16_client_secret_post_client_is_accepted_with_the_secret_in_the_body(rp):
    response = await exchange(
        rp,
        await rp.code(client_id=POST_CLIENT_ID),
        client_id=POST_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
    )

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("variant", ["basic_instead", "wrong_secret", "no_secret"])
@pytest.mark.usefixtures("post_client")
async def test_row_16_client_secret_post_client_is_refused_otherwise(rp, variant):
    code = await rp.code(client_id=POST_CLIENT_ID)
    headers, form = {
        "basic_instead": ({"Authorization": rp.basic_auth(POST_CLIENT_ID)}, {}),
        "wrong_secret": ({}, {"client_id": POST_CLIENT_ID, "client_secret": "wrong"}),
        "no_secret": ({}, {"client_id": POST_CLIENT_ID}),
    }[variant]

    response = await exchange(rp, code, headers, **form)

    assert_refused(response, 401, "invalid_client")


# -- row 16: private_key_jwt ------------------------------------------------------------------
@pytest.fixture
def rp_key() -> RSAKey:
    key = generate_key("RS256", RP_KID)
    assert isinstance(key, RSAKey)
    return key


@pytest.fixture
def jwt_client(fake_op: FakeOP, rp_key: RSAKey) -> FakeClient:
    return fake_op.register_client(
        FakeClient(
            JWT_CLIENT_ID,
            client_secret=None,
            token_endpoint_auth_method="private_key_jwt",
            jwks={"keys": [rp_key.as_dict(private=False)]},
        )
    )


def assertion(key: RSAKey, audience: Any, kid: str = RP_KID, **edits: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": JWT_CLIENT_ID,
        "sub": JWT_CLIENT_ID,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    } | edits
    return jwt.encode({"alg": "RS256", "kid": kid}, claims, key)


@pytest.mark.parametrize(
    "audience",
    ["token_endpoint", "issuer", "list_with_token_endpoint"],
)
@pytest.mark.usefixtures("jwt_client")
async def test_row_16_private_key_jwt_good_assertion_is_accepted(
    fake_op: FakeOP, rp_key, rp, audience
):
    token_endpoint = fake_op.endpoints["token"]
    aud = {
        "token_endpoint": token_endpoint,
        "issuer": fake_op.issuer,
        "list_with_token_endpoint": ["https://other.example", token_endpoint],
    }[audience]

    response = await exchange(
        rp,
        await rp.code(client_id=JWT_CLIENT_ID),
        client_assertion_type=JWT_BEARER,
        client_assertion=assertion(rp_key, aud),
    )

    assert response.status_code == 200, response.text
    assert fake_op.oracle.last("token").param("client_id") is None


REFUSED_ASSERTIONS = {
    "wrong_aud": "aud must name",
    "expired": "exp missing or passed",
    "too_long_lived": "exp too far ahead",
    "iss_not_client": "iss and sub",
    "no_jti": "jti missing",
    "bad_signature": "signature invalid",
    "unknown_kid": "key not found",
    "wrong_assertion_type": "client_assertion_type",
}


@pytest.mark.parametrize(
    ("variant", "reason"), list(REFUSED_ASSERTIONS.items()), ids=list(REFUSED_ASSERTIONS)
)
@pytest.mark.usefixtures("jwt_client")
async def test_row_16_private_key_jwt_bad_assertion_is_refused(
    fake_op: FakeOP, rp_key, rp, variant, reason
):
    now = int(time.time())
    aud = fake_op.endpoints["token"]
    token = {
        "wrong_aud": lambda: assertion(rp_key, "https://elsewhere.example/token"),
        "expired": lambda: assertion(rp_key, aud, iat=now - 120, exp=now - 60),
        "too_long_lived": lambda: assertion(rp_key, aud, exp=now + 3600),
        "iss_not_client": lambda: assertion(rp_key, aud, iss="someone-else"),
        "no_jti": lambda: assertion(rp_key, aud, jti=None),
        "bad_signature": lambda: assertion(generate_key("RS256", RP_KID), aud),
        "unknown_kid": lambda: assertion(rp_key, aud, kid="nobody"),
        "wrong_assertion_type": lambda: assertion(rp_key, aud),
    }[variant]()
    kind = "urn:example:other" if variant == "wrong_assertion_type" else JWT_BEARER

    response = await exchange(
        rp,
        await rp.code(client_id=JWT_CLIENT_ID),
        client_assertion_type=kind,
        client_assertion=token,
    )

    assert_refused(response, 401, "invalid_client")
    assert reason in response.json()["error_description"]


@pytest.mark.usefixtures("jwt_client")
async def test_row_16_private_key_jwt_reused_jti_is_refused(fake_op: FakeOP, rp_key, rp):
    jti = secrets.token_urlsafe(16)
    first = await exchange(
        rp,
        await rp.code(client_id=JWT_CLIENT_ID),
        client_assertion_type=JWT_BEARER,
        client_assertion=assertion(rp_key, fake_op.endpoints["token"], jti=jti),
    )
    replayed = await exchange(
        rp,
        await rp.code(client_id=JWT_CLIENT_ID),
        client_assertion_type=JWT_BEARER,
        client_assertion=assertion(rp_key, fake_op.endpoints["token"], jti=jti),
    )

    assert first.status_code == 200, first.text
    assert_refused(replayed, 401, "invalid_client")
    assert "jti" in replayed.json()["error_description"]


# -- rows 17–19: the token response ---------------------------------------------------------
async def test_row_17_token_response_can_lack_the_id_token(fake_op: FakeOP, rp):
    fake_op.misbehave.token_fields = {"id_token": ABSENT}

    response = await rp.exchange(await rp.code())

    assert response.status_code == 200
    assert "id_token" not in response.json()
    assert response.json()["access_token"]
    assert "openid" in fake_op.oracle.last("authorize").param("scope").split()


async def test_row_18a_token_endpoint_can_answer_invalid_grant(fake_op: FakeOP, rp):
    fake_op.misbehave.token_error = "invalid_grant"

    response = await rp.exchange(await rp.code())

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "invalid_grant"
    assert set(response.json()) <= {"error", "error_description"}


async def test_row_18b_token_endpoint_can_answer_200_with_html(fake_op: FakeOP, rp):
    fake_op.misbehave.respond = {"token": Canned.html()}

    response = await rp.exchange(await rp.code())

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert fake_op.oracle.last("token").outcome == "canned 200"


@pytest.mark.parametrize(
    ("edits", "check"),
    [
        ({"access_token": ABSENT}, lambda body: "access_token" not in body),
        ({"token_type": ABSENT}, lambda body: "token_type" not in body),
        ({"token_type": "mac"}, lambda body: body["token_type"] == "mac"),
    ],
    ids=["c_no_access_token", "c_no_token_type", "d_token_type_mac"],
)
async def test_row_18cd_token_response_can_lack_members_or_have_unknown_token_type(
    fake_op: FakeOP, rp, edits, check
):
    fake_op.misbehave.token_fields = edits

    response = await rp.exchange(await rp.code())

    assert response.status_code == 200
    assert check(response.json())
    assert response.json()["id_token"]


@pytest.mark.parametrize(
    ("edits", "member", "served"),
    [
        ({"token_type": "bEARER"}, "token_type", "bEARER"),
        ({"expires_in": ABSENT}, "expires_in", None),
        ({"scope": ABSENT}, "scope", None),
        ({"scope": lambda body: body["scope"].split()[0]}, "scope", "openid"),
    ],
    ids=["token_type_mixed_case", "no_expires_in", "no_scope", "narrower_scope"],
)
async def test_row_19_token_response_can_vary_within_the_spec(
    fake_op: FakeOP, rp, edits, member, served
):
    fake_op.misbehave.token_fields = edits

    response = await rp.exchange(await rp.code())

    body = response.json()
    assert response.status_code == 200
    assert body.get(member) == served
    assert body["access_token"]
    assert body["id_token"]
