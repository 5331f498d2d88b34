"""The fake OP's authorization-endpoint knobs produce each artefact of checklist group A
(rows 6–15), as a browser would receive it; and the endpoint refuses bad requests honestly."""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from rpkit.testing import (
    ABSENT,
    DEFAULT_CLIENT_ID,
    DEFAULT_ISSUER,
    DEFAULT_REDIRECT_URI,
    AuthorizationResponse,
    Bounce,
    FakeClient,
    FakeOP,
)

ATTACKER_ISSUER = "https://attacker.rpkit.test"
ATTACKER_CLIENT_ID = "rp-at-attacker"


def s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def without(url: str, *names: str) -> str:
    """``url`` with the query parameters ``names`` removed."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query) if k not in names]
    return parts._replace(query=urlencode(kept)).geturl()


async def id_token_claims(http: httpx.AsyncClient, op: FakeOP, token: str) -> dict:
    keys = KeySet.import_key_set((await http.get(op.endpoints["jwks"])).json())
    return dict(jwt.decode(token, keys, algorithms=["RS256"]).claims)


# -- the endpoint itself ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override",
    [
        {"client_id": "nobody"},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": DEFAULT_REDIRECT_URI + "/"},
    ],
    ids=["unknown_client", "unregistered_redirect_uri", "redirect_uri_trailing_slash"],
)
async def test_bad_client_or_redirect_uri_gets_an_error_page_and_no_redirect(
    fake_op: FakeOP, rp, override
):
    response = await fake_op.handle(httpx.Request("GET", rp.authorization_url(**override)))

    callback = AuthorizationResponse.from_response(response)

    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert (callback.method, callback.url, callback.params) == ("NONE", "", ())
    assert "invalid_request" in callback.body
    assert fake_op.codes == {}
    assert fake_op.oracle.last("authorize").outcome.startswith("invalid_request")


async def test_request_without_pkce_is_refused_by_default(fake_op: FakeOP, rp):
    url = without(rp.authorization_url(), "code_challenge", "code_challenge_method")

    callback = await fake_op.approve(url)

    assert callback.url == DEFAULT_REDIRECT_URI
    assert callback.get("error") == "invalid_request"
    assert callback.get("state") == rp.state
    assert callback.get("code") is None
    assert fake_op.codes == {}


async def test_request_without_pkce_gets_a_code_when_pkce_is_not_required(fake_op: FakeOP, rp):
    fake_op.require_pkce = False
    url = without(rp.authorization_url(), "code_challenge", "code_challenge_method")

    callback = await fake_op.approve(url)
    code = callback.get("code") or ""
    exchanged = await rp.http.post(
        fake_op.endpoints["token"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": DEFAULT_REDIRECT_URI,
        },
        headers={"Authorization": rp.basic_auth()},
    )

    assert fake_op.codes[code].code_challenge is None
    assert exchanged.status_code == 200, exchanged.text


# -- row 6: the OP records what the RP sent, and flags reuse ------------------------------------
async def test_row_06_oracle_records_the_authorization_and_token_requests(fake_op: FakeOP, rp):
    await rp.tokens()

    authorize, token = fake_op.oracle.last("authorize"), fake_op.oracle.last("token")

    assert authorize.method == "GET"
    assert authorize.param("response_type") == "code"
    assert authorize.param("scope") == "openid profile email"
    assert authorize.param("client_id") == DEFAULT_CLIENT_ID
    assert authorize.param("redirect_uri") == DEFAULT_REDIRECT_URI
    assert authorize.param("state") == rp.state
    assert authorize.param("nonce") == rp.nonce
    assert authorize.param("code_challenge") == s256(rp.verifier)
    assert authorize.param("code_challenge_method") == "S256"
    assert token.method == "POST"
    assert token.param("redirect_uri") == DEFAULT_REDIRECT_URI
    assert token.param("code_verifier") == rp.verifier
    assert token.headers["authorization"] == rp.basic_auth()
    assert [r.outcome for r in fake_op.oracle] == ["ok", "ok"]


async def test_row_06_two_honest_runs_reuse_nothing(fake_op: FakeOP, rp):
    await rp.tokens()
    await rp.tokens()

    assert fake_op.oracle.count("authorize") == 2
    assert fake_op.oracle.reused_values() == {}


@pytest.mark.parametrize("name", ["state", "nonce", "code_challenge"])
async def test_row_06_oracle_flags_a_value_reused_across_two_runs(fake_op: FakeOP, rp, name):
    constant = "c" * 43

    await rp.code(**{name: constant})
    await rp.code(**{name: constant})

    assert fake_op.oracle.reused_values() == {name: [constant]}


# -- row 7: state altered or removed ------------------------------------------------------------
@pytest.mark.parametrize("response_mode", ["query", "form_post"])
@pytest.mark.parametrize(
    ("mode", "suffix"),
    [("echo", ""), ("altered", "1"), ("missing", None)],
    ids=["echo", "altered", "missing"],
)
async def test_row_07_callback_state_can_be_altered_or_removed(
    fake_op: FakeOP, rp, response_mode, mode, suffix
):
    fake_op.misbehave.callback_state = mode

    callback = await fake_op.approve(rp.authorization_url(response_mode=response_mode))

    expected = None if suffix is None else rp.state + suffix
    assert callback.method == ("POST" if response_mode == "form_post" else "GET")
    assert [v for k, v in callback.params if k == "state"] == (
        [] if expected is None else [expected]
    )
    assert callback.get("code") in fake_op.codes


# -- row 8: a callback replayed, or delivered after its time ------------------------------------
async def test_row_08_replayed_callback_code_is_refused_the_second_time(rp):
    code = await rp.code()

    first, replayed = await rp.exchange(code), await rp.exchange(code)

    assert first.status_code == 200
    assert (replayed.status_code, replayed.json()["error"]) == (400, "invalid_grant")
    assert "access_token" not in replayed.json()


async def test_row_08_code_delivered_after_its_lifetime_is_refused(fake_op: FakeOP, rp):
    code = await rp.code()
    fake_op.misbehave.clock_offset = fake_op.code_lifetime + 1

    late = await rp.exchange(code)

    assert (late.status_code, late.json()["error"]) == (400, "invalid_grant")


# -- row 9: a code from the attacker's browser --------------------------------------------------
async def test_row_09_callback_from_another_browser_logs_into_the_attackers_account(
    fake_op: FakeOP, fake_op_http, rp
):
    attacker_tokens = await rp.tokens(login_hint="bob")
    attacker_state = rp.state
    rp.authorization_url()  # the victim's own pending transaction

    claims = await id_token_claims(fake_op_http, fake_op, attacker_tokens["id_token"])

    assert fake_op.oracle.last("authorize").param("state") == attacker_state != rp.state
    assert claims["sub"] == "bob"


async def test_row_09_injected_code_fails_pkce_with_the_victims_verifier(fake_op: FakeOP, rp):
    attacker_code = await rp.code(login_hint="bob")
    rp.authorization_url()  # the victim's transaction: another verifier

    injected = await rp.exchange(attacker_code)

    assert (injected.status_code, injected.json()["error"]) == (400, "invalid_grant")
    assert "code_verifier" in injected.json()["error_description"]


# -- row 10: the RFC 9207 iss parameter ---------------------------------------------------------
@pytest.mark.parametrize(
    ("callback_iss", "flag", "expected_iss"),
    [
        ("wrong", True, DEFAULT_ISSUER + "1"),
        ("missing", True, None),
        ("missing", ABSENT, None),
        ("correct", ABSENT, DEFAULT_ISSUER),
    ],
    ids=["a_wrong_iss", "b_advertised_but_missing", "c_silent_and_missing", "d_silent_correct"],
)
async def test_row_10_callback_iss_can_be_wrong_or_missing_with_the_flag_advertised_or_silent(
    fake_op: FakeOP, rp, callback_iss, flag, expected_iss
):
    fake_op.misbehave.callback_iss = callback_iss
    fake_op.misbehave.metadata = {"authorization_response_iss_parameter_supported": flag}

    metadata = (await rp.http.get(fake_op.endpoints["discovery"])).json()
    callback = await fake_op.approve(rp.authorization_url())

    advertised = metadata.get("authorization_response_iss_parameter_supported")
    assert advertised is (True if flag is True else None)
    assert [v for k, v in callback.params if k == "iss"] == (
        [] if expected_iss is None else [expected_iss]
    )
    assert callback.get("code") in fake_op.codes


# -- row 11: mix-up, an attacker's OP bounces the browser to the honest one --------------------
@pytest.fixture
def attacker() -> FakeOP:
    """OP-B: the attacker's OP, where the RP is registered as another client with the same
    callback, and which bounces every authorization to the honest OP (``fake_op``)."""
    return FakeOP(ATTACKER_ISSUER, clients=[FakeClient(ATTACKER_CLIENT_ID)])


def at_attacker(rp, attacker: FakeOP) -> str:
    url = rp.authorization_url(client_id=ATTACKER_CLIENT_ID)
    return url.replace(rp.op.endpoints["authorize"], attacker.endpoints["authorize"])


@pytest.mark.parametrize(
    ("honest_iss", "expected_iss"),
    [("correct", [DEFAULT_ISSUER]), ("missing", [])],
    ids=["variant1_iss_of_honest_op", "variant2_no_iss"],
)
async def test_row_11_bounce_sends_the_browser_to_the_honest_op_with_the_rps_client_id(
    fake_op: FakeOP, attacker: FakeOP, rp, honest_iss, expected_iss
):
    attacker.misbehave.authorize_bounce = Bounce(fake_op.endpoints["authorize"], DEFAULT_CLIENT_ID)
    fake_op.misbehave.callback_iss = honest_iss

    url = at_attacker(rp, attacker)

    bounced = await attacker.approve(url)
    callback = await fake_op.approve(bounced.location)

    sent = dict(parse_qsl(urlsplit(url).query))
    assert sent["client_id"] == ATTACKER_CLIENT_ID
    assert (bounced.status, bounced.method) == (302, "GET")
    assert bounced.url == fake_op.endpoints["authorize"]
    assert dict(bounced.params) == {**sent, "client_id": DEFAULT_CLIENT_ID}
    assert bounced.get("state") == rp.state
    assert callback.url == DEFAULT_REDIRECT_URI
    assert [v for k, v in callback.params if k == "iss"] == expected_iss
    assert fake_op.codes[callback.get("code") or ""].client_id == DEFAULT_CLIENT_ID
    assert attacker.codes == {}
    assert [r.endpoint for r in attacker.oracle] == ["authorize"]


async def test_row_11_bounce_can_replace_the_redirect_uri_too(fake_op: FakeOP, attacker, rp):
    other = "https://app.rpkit.test/auth/callback/other"
    attacker.misbehave.authorize_bounce = Bounce(
        fake_op.endpoints["authorize"], DEFAULT_CLIENT_ID, redirect_uri=other
    )

    bounced = await attacker.approve(at_attacker(rp, attacker))

    assert bounced.get("redirect_uri") == other
    assert bounced.get("client_id") == DEFAULT_CLIENT_ID


# -- row 12: form_post error --------------------------------------------------------------------
async def test_row_12_form_post_error_page_auto_posts_login_required_with_the_state(
    fake_op: FakeOP, rp
):
    fake_op.misbehave.authorize_error = "login_required"

    callback = await fake_op.approve(
        rp.authorization_url(response_mode="form_post", prompt="none", max_age="0")
    )

    assert (callback.status, callback.method, callback.url) == (200, "POST", DEFAULT_REDIRECT_URI)
    assert dict(callback.params) == {
        "error": "login_required",
        "state": rp.state,
        "iss": DEFAULT_ISSUER,
    }
    assert 'method="post"' in callback.body
    assert ".submit()" in callback.body
    assert fake_op.codes == {}


# -- row 13: an error that is not bound to the transaction --------------------------------------
@pytest.mark.parametrize(
    ("knobs", "state_suffix", "iss"),
    [
        ({"callback_state": "altered"}, "1", DEFAULT_ISSUER),
        ({"callback_state": "missing"}, None, DEFAULT_ISSUER),
        ({"callback_iss": "wrong"}, "", DEFAULT_ISSUER + "1"),
    ],
    ids=["unknown_state", "missing_state", "wrong_iss"],
)
async def test_row_13_error_response_can_carry_an_unknown_state_or_wrong_iss(
    fake_op: FakeOP, rp, knobs, state_suffix, iss
):
    with fake_op.misbehaving(authorize_error="access_denied", **knobs):
        callback = await fake_op.approve(rp.authorization_url())

    assert callback.url == DEFAULT_REDIRECT_URI
    assert callback.get("error") == "access_denied"
    assert callback.get("state") == (None if state_suffix is None else rp.state + state_suffix)
    assert callback.get("iss") == iss
    assert callback.get("code") is None


# -- row 14: duplicated parameters --------------------------------------------------------------
@pytest.mark.parametrize("how", ["same", "different"])
@pytest.mark.parametrize("name", ["code", "state", "iss"])
async def test_row_14_callback_parameter_can_be_duplicated(fake_op: FakeOP, rp, name, how):
    fake_op.misbehave.callback_duplicates = {name: how}

    callback = await fake_op.approve(rp.authorization_url())

    honest = {"code": next(iter(fake_op.codes)), "state": rp.state, "iss": DEFAULT_ISSUER}
    values = [v for k, v in callback.params if k == name]
    assert Counter(k for k, _ in callback.params) == {**dict.fromkeys(honest, 1), name: 2}
    assert values[0] == honest[name]
    assert (values[1] == values[0]) is (how == "same")


# -- row 15: tokens in the front channel --------------------------------------------------------
@pytest.mark.parametrize("where", ["query", "fragment"])
@pytest.mark.parametrize(
    "kinds",
    [{"id_token"}, {"access_token"}, {"id_token", "access_token"}],
    ids=["id_token", "access_token", "both"],
)
async def test_row_15_code_flow_callback_can_carry_tokens(
    fake_op: FakeOP, fake_op_http, rp, kinds, where
):
    fake_op.misbehave.front_channel_tokens = frozenset(kinds)
    fake_op.misbehave.front_channel_in = where

    callback = await fake_op.approve(rp.authorization_url())

    carrier = dict(callback.params if where == "query" else callback.fragment)
    other = dict(callback.fragment if where == "query" else callback.params)
    assert set(carrier) & {"id_token", "access_token"} == kinds
    assert not set(other) & {"id_token", "access_token"}
    assert callback.get("code") in fake_op.codes
    if "id_token" in kinds:
        claims = await id_token_claims(fake_op_http, fake_op, carrier["id_token"])
        assert (claims["nonce"], claims["aud"]) == (rp.nonce, DEFAULT_CLIENT_ID)
    if "access_token" in kinds:
        userinfo = await fake_op_http.get(
            fake_op.endpoints["userinfo"],
            headers={"Authorization": f"Bearer {carrier['access_token']}"},
        )
        assert userinfo.json()["sub"] == "alice"
