"""Checklist group L (rows 50–54): RP-initiated logout at the fake OP's end-session endpoint, and
the back-channel logout tokens it sends, honest and malformed."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from rpkit.testing import (
    ABSENT,
    BACKCHANNEL_LOGOUT_EVENT,
    DEFAULT_CLIENT_ID,
    DEFAULT_ISSUER,
    FakeClient,
    FakeOP,
    KeyRing,
    LogoutDefect,
    Tamper,
    TokenMinter,
)

SIGNED_OUT = "https://app.rpkit.test/signed-out"
BACKCHANNEL = "https://app.rpkit.test/auth/backchannel-logout"


@pytest.fixture
def logout_client(fake_op: FakeOP) -> FakeClient:
    """The default client, also registered for a post-logout return and back-channel logout."""
    return fake_op.register_client(
        FakeClient(post_logout_redirect_uris=(SIGNED_OUT,), backchannel_logout_uri=BACKCHANNEL)
    )


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    compact = jws.extract_compact(token.encode())
    claims: dict[str, Any] = json.loads(compact.payload)
    return dict(compact.headers()), claims


async def end_session(op: FakeOP, http: httpx.AsyncClient, **params: str | None) -> httpx.Response:
    query = {name: value for name, value in params.items() if value is not None}
    return await http.get(op.endpoints["end_session"], params=query)


def returned_state(response: httpx.Response) -> list[str] | None:
    """The ``state`` values in the redirect back to the RP (None when there is none)."""
    return parse_qs(urlsplit(response.headers["location"]).query).get("state")


# -- row 50 -----------------------------------------------------------------------------------
@pytest.mark.usefixtures("logout_client")
async def test_row_50_valid_logout_request_redirects_back_with_state_and_ends_the_session(
    fake_op: FakeOP, fake_op_http, rp
):
    tokens = await rp.tokens()
    sid = unverified(tokens["id_token"])[1]["sid"]
    assert sid in fake_op.sessions

    response = await end_session(
        fake_op,
        fake_op_http,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri=SIGNED_OUT,
        state="logout-state-1",
        client_id=DEFAULT_CLIENT_ID,
    )

    assert response.status_code == 302
    assert response.headers["location"] == f"{SIGNED_OUT}?state=logout-state-1"
    assert sid not in fake_op.sessions
    refreshed = await rp.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"


@pytest.mark.usefixtures("logout_client")
async def test_row_50_expired_id_token_hint_is_still_accepted(fake_op: FakeOP, fake_op_http, rp):
    fake_op.misbehave.id_token_claims = {
        "iat": lambda c: c["iat"] - 3600,
        "exp": lambda c: c["iat"] - 1800,
    }
    tokens = await rp.tokens()
    hint_claims = unverified(tokens["id_token"])[1]
    assert hint_claims["exp"] < time.time()

    response = await end_session(
        fake_op,
        fake_op_http,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri=SIGNED_OUT,
        state="s1",
    )

    assert response.status_code == 302
    assert response.headers["location"] == f"{SIGNED_OUT}?state=s1"
    assert hint_claims["sid"] not in fake_op.sessions


def forged_hint(op: FakeOP, how: str) -> str:
    claims = {"sid": next(iter(op.sessions))}
    if how == "other-issuer-keys":
        other = TokenMinter(op.issuer, KeyRing())
        return other.mint_id_token(audience=DEFAULT_CLIENT_ID, subject="alice", claims=claims)
    tamper = {"bad-signature": Tamper.BAD_SIGNATURE, "alg-none": Tamper.ALG_NONE}[how]
    return op.minter.mint_id_token(
        audience=DEFAULT_CLIENT_ID, subject="alice", claims=claims, tamper=tamper
    )


@pytest.mark.parametrize("how", ["bad-signature", "alg-none", "other-issuer-keys"])
@pytest.mark.usefixtures("logout_client")
async def test_row_50_forged_id_token_hint_gets_an_error_page_and_no_redirect(
    fake_op: FakeOP, fake_op_http, rp, how
):
    tokens = await rp.tokens()
    sid = unverified(tokens["id_token"])[1]["sid"]

    response = await end_session(
        fake_op,
        fake_op_http,
        id_token_hint=forged_hint(fake_op, how),
        post_logout_redirect_uri=SIGNED_OUT,
        state="s1",
    )

    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert sid in fake_op.sessions
    assert (await rp.refresh(tokens["refresh_token"])).status_code == 200


@pytest.mark.parametrize(
    ("target", "client_id"),
    [
        pytest.param("https://evil.example/signed-out", None, id="foreign-origin"),
        pytest.param(SIGNED_OUT + "/", None, id="trailing-slash"),
        pytest.param(SIGNED_OUT + "?next=x", None, id="extra-query"),
        pytest.param(SIGNED_OUT, "another-client", id="client-id-not-the-hint-audience"),
    ],
)
@pytest.mark.usefixtures("logout_client")
async def test_row_50_unregistered_return_uri_gets_an_error_page_and_no_redirect(
    fake_op: FakeOP, fake_op_http, rp, target, client_id
):
    tokens = await rp.tokens()

    response = await end_session(
        fake_op,
        fake_op_http,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri=target,
        state="s1",
        client_id=client_id,
    )

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "evil" not in response.text
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.usefixtures("logout_client")
async def test_row_50_return_uri_without_any_hint_or_client_id_is_refused(
    fake_op: FakeOP, fake_op_http
):
    response = await end_session(fake_op, fake_op_http, post_logout_redirect_uri=SIGNED_OUT)

    assert response.status_code == 400
    assert "location" not in response.headers


# -- row 51 -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param("echo", ["logout-state-1"], id="echo"),
        pytest.param("altered", ["logout-state-11"], id="altered"),
        pytest.param("missing", None, id="missing"),
    ],
)
@pytest.mark.usefixtures("logout_client")
async def test_row_51_logout_state_is_echoed_altered_or_dropped(
    fake_op: FakeOP, fake_op_http, rp, mode, expected
):
    fake_op.misbehave.logout_state = mode
    tokens = await rp.tokens()

    response = await end_session(
        fake_op,
        fake_op_http,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri=SIGNED_OUT,
        state="logout-state-1",
    )

    assert response.status_code == 302
    assert response.headers["location"].startswith(SIGNED_OUT)
    assert returned_state(response) == expected


@pytest.mark.usefixtures("logout_client")
async def test_row_51_other_logout_state_is_a_fresh_random_value(fake_op: FakeOP, fake_op_http, rp):
    fake_op.misbehave.logout_state = "other"
    tokens = await rp.tokens()

    states = [
        returned_state(
            await end_session(
                fake_op,
                fake_op_http,
                id_token_hint=tokens["id_token"],
                post_logout_redirect_uri=SIGNED_OUT,
                state="logout-state-1",
            )
        )
        for _ in range(2)
    ]

    assert all(s is not None and len(s) == 1 for s in states)
    values = [s[0] for s in states if s]
    assert "logout-state-1" not in values
    assert values[0] != values[1]


# -- row 52 -----------------------------------------------------------------------------------
async def test_row_52_metadata_can_omit_the_end_session_endpoint(fake_op: FakeOP, fake_op_http):
    discovery = f"{DEFAULT_ISSUER}/.well-known/openid-configuration"
    honest = (await fake_op_http.get(discovery)).json()
    fake_op.misbehave.metadata = {"end_session_endpoint": ABSENT}

    edited = (await fake_op_http.get(discovery)).json()

    assert honest["end_session_endpoint"] == fake_op.endpoints["end_session"]
    assert "end_session_endpoint" not in edited
    assert {k: v for k, v in honest.items() if k != "end_session_endpoint"} == edited


# -- row 53 -----------------------------------------------------------------------------------
@pytest.mark.usefixtures("logout_client")
async def test_row_53_logout_token_names_the_session_and_user(fake_op: FakeOP, fake_op_http, rp):
    tokens = await rp.tokens()
    id_claims = unverified(tokens["id_token"])[1]
    keys = KeySet.import_key_set((await fake_op_http.get(fake_op.endpoints["jwks"])).json())

    logout = jwt.decode(fake_op.logout_token(), keys, ["RS256"])

    assert logout.header["typ"] == "logout+jwt"
    assert logout.header["kid"] == fake_op.keys.kid("RS256")
    claims = logout.claims
    assert claims["sid"] == id_claims["sid"]
    assert claims["sub"] == id_claims["sub"] == "alice"
    assert claims["iss"] == fake_op.issuer
    assert claims["aud"] == DEFAULT_CLIENT_ID
    assert claims["events"] == {BACKCHANNEL_LOGOUT_EVENT: {}}
    assert "nonce" not in claims
    assert claims["jti"]
    assert claims["iat"] <= time.time() < claims["exp"]


@pytest.mark.usefixtures("logout_client")
async def test_row_53_logout_token_names_the_most_recent_session(fake_op: FakeOP, rp):
    await rp.tokens()
    fake_op.login_as("bob")
    latest = unverified((await rp.tokens())["id_token"])[1]

    _, claims = unverified(fake_op.logout_token())

    assert (claims["sid"], claims["sub"]) == (latest["sid"], "bob")


@pytest.mark.usefixtures("logout_client")
async def test_row_53_logout_tokens_have_unique_jti(fake_op: FakeOP, rp):
    await rp.tokens()

    first, second = (unverified(fake_op.logout_token())[1] for _ in range(2))

    assert first["jti"] != second["jti"]


@pytest.mark.usefixtures("logout_client")
async def test_row_53_backchannel_logout_is_posted_form_encoded_to_the_client(fake_op: FakeOP, rp):
    await rp.tokens()
    received: list[httpx.Request] = []

    def relying_party(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200, headers={"Cache-Control": "no-store"})

    token = fake_op.logout_token()
    async with httpx.AsyncClient(transport=httpx.MockTransport(relying_party)) as app:
        response = await fake_op.send_backchannel_logout(app, token)

    assert response.status_code == 200
    assert len(received) == 1
    request = received[0]
    assert request.method == "POST"
    assert str(request.url) == BACKCHANNEL
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {"logout_token": [token]}


async def test_row_53_backchannel_logout_needs_a_registered_uri(fake_op: FakeOP, rp):
    await rp.tokens()

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200))
    ) as app:
        with pytest.raises(ValueError, match="backchannel_logout_uri"):
            await fake_op.send_backchannel_logout(app, fake_op.logout_token())


# -- row 54 -----------------------------------------------------------------------------------
def logout_token_defects(
    token: str, keys: KeySet, *, issuer: str, client_id: str, alg: str
) -> set[str]:
    """Everything Back-Channel Logout §2.6 would reject in ``token``, named as LogoutDefect."""
    header, claims = unverified(token)
    return header_defects(token, header, keys, alg) | claim_defects(claims, issuer, client_id)


def header_defects(token: str, header: dict[str, Any], keys: KeySet, alg: str) -> set[str]:
    found: set[str] = set() if header.get("typ") == "logout+jwt" else {"wrong typ"}
    if header["alg"] == "none":
        return found | {LogoutDefect.ALG_NONE}
    if header["alg"] != alg:
        found.add(LogoutDefect.WRONG_ALG)
    try:
        jwt.decode(token, keys, [header["alg"]])
    except JoseError:
        found.add(LogoutDefect.BAD_SIGNATURE)
    return found


def claim_defects(claims: dict[str, Any], issuer: str, client_id: str) -> set[str]:
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    events = claims.get("events")
    checks = {
        LogoutDefect.WRONG_ISSUER: claims.get("iss") != issuer,
        LogoutDefect.WRONG_AUD: client_id not in audiences,
        LogoutDefect.NO_EVENT: events is None,
        LogoutDefect.WRONG_EVENT: events is not None and events != {BACKCHANNEL_LOGOUT_EVENT: {}},
        LogoutDefect.WITH_NONCE: "nonce" in claims,
        LogoutDefect.NO_SID_NO_SUB: "sid" not in claims and "sub" not in claims,
        LogoutDefect.EXPIRED: claims["exp"] <= time.time(),
        "missing iat": "iat" not in claims,
        "missing jti": "jti" not in claims,
    }
    return {str(name) for name, failed in checks.items() if failed}


@pytest.mark.parametrize("defect", [None, *LogoutDefect], ids=lambda d: str(d or "honest"))
@pytest.mark.usefixtures("logout_client")
async def test_row_54_each_logout_defect_breaks_exactly_one_thing(
    fake_op: FakeOP, fake_op_http, rp, defect
):
    await rp.tokens()
    keys = KeySet.import_key_set((await fake_op_http.get(fake_op.endpoints["jwks"])).json())

    token = fake_op.logout_token(defect=defect)

    found = logout_token_defects(
        token, keys, issuer=fake_op.issuer, client_id=DEFAULT_CLIENT_ID, alg="RS256"
    )
    assert found == ({defect} if defect else set())


@pytest.mark.parametrize("defect", sorted(set(LogoutDefect) - {LogoutDefect.NO_SID_NO_SUB}))
@pytest.mark.usefixtures("logout_client")
async def test_row_54_malformed_logout_token_still_names_the_session(fake_op: FakeOP, rp, defect):
    await rp.tokens()
    sid = next(reversed(fake_op.sessions))

    _, claims = unverified(fake_op.logout_token(defect=defect))

    assert (claims["sid"], claims["sub"]) == (sid, "alice")


@pytest.mark.usefixtures("logout_client")
async def test_row_54_wrong_alg_is_signed_with_a_published_key(fake_op: FakeOP, fake_op_http, rp):
    await rp.tokens()
    keys = KeySet.import_key_set((await fake_op_http.get(fake_op.endpoints["jwks"])).json())

    token = fake_op.logout_token(defect=LogoutDefect.WRONG_ALG)

    decoded = jwt.decode(token, keys, ["ES256"])
    assert decoded.header["alg"] == "ES256"
    assert decoded.header["kid"] == fake_op.keys.kid("ES256")


# -- sessions end cleanly, and only on a valid logout -------------------------------------------
@pytest.mark.usefixtures("logout_client")
async def test_refused_logout_leaves_the_op_session_alive(fake_op: FakeOP, fake_op_http, rp):
    tokens = await rp.tokens()

    response = await end_session(
        fake_op,
        fake_op_http,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri="https://evil.example/",
    )

    assert response.status_code == 400
    assert "location" not in response.headers
    assert len(fake_op.sessions) == 1
    assert (await rp.refresh(tokens["refresh_token"])).status_code == 200


@pytest.mark.usefixtures("logout_client")
async def test_logout_revokes_the_sessions_access_tokens_too(fake_op: FakeOP, fake_op_http, rp):
    tokens = await rp.tokens()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

    before = await fake_op_http.get(fake_op.endpoints["userinfo"], headers=bearer)
    await end_session(fake_op, fake_op_http, id_token_hint=tokens["id_token"])
    after = await fake_op_http.get(fake_op.endpoints["userinfo"], headers=bearer)

    assert before.status_code == 200
    assert after.status_code == 401


@pytest.mark.usefixtures("logout_client")
async def test_id_token_hint_signed_before_a_key_rotation_is_still_the_ops_own(
    fake_op: FakeOP, fake_op_http, rp
):
    tokens = await rp.tokens()
    fake_op.keys.rotate()

    response = await end_session(
        fake_op,
        fake_op_http,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri=SIGNED_OUT,
        state="s-1",
    )

    assert response.status_code == 302
    assert returned_state(response) == ["s-1"]
    assert fake_op.sessions == {}


async def test_hs256_id_token_hint_is_recognised_with_the_client_secret(
    fake_op: FakeOP, fake_op_http, rp, logout_client: FakeClient
):
    fake_op.misbehave.id_token_alg = "HS256"
    tokens = await rp.tokens()

    response = await end_session(
        fake_op, fake_op_http, id_token_hint=tokens["id_token"], post_logout_redirect_uri=SIGNED_OUT
    )

    assert response.status_code == 302
    assert fake_op.sessions == {}


def test_logout_token_without_a_session_or_subject_refuses_to_guess(fake_op: FakeOP):
    with pytest.raises(ValueError, match="no OP session"):
        fake_op.logout_token()
