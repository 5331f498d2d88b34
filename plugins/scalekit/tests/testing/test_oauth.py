"""The fake Scalekit's OAuth surface: discovery, /keys, authorize routing, the three grants,
logout, and the knobs that break each."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import quote_plus

import httpx
import jwt
import pytest

from rpkit.testing import ABSENT, Tamper
from rpkit_scalekit.testing import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    Connection,
    FakeScalekit,
)

from .conftest import verify_jwt

ACME_CONN = "conn_200000000000000001"
ACME_ORG = "org_300000000000000001"
GOOGLE_CONN = "conn_200000000000000003"
PASSWORDLESS_CONN = "conn_200000000000000004"


async def test_discovery_points_at_scalekit_paths(fake_scalekit, fake_scalekit_http):
    doc = (
        await fake_scalekit_http.get(f"{fake_scalekit.issuer}/.well-known/openid-configuration")
    ).json()

    assert doc["issuer"] == fake_scalekit.issuer
    assert doc["jwks_uri"] == f"{fake_scalekit.issuer}/keys"
    assert doc["end_session_endpoint"] == f"{fake_scalekit.issuer}/oidc/logout"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_post",
        "client_secret_basic",
    ]


async def test_discovery_can_omit_client_secret_basic(fake_scalekit, fake_scalekit_http):
    fake_scalekit.answers.discovery_lists_basic = False

    doc = (
        await fake_scalekit_http.get(f"{fake_scalekit.issuer}/.well-known/openid-configuration")
    ).json()

    assert doc["token_endpoint_auth_methods_supported"] == ["client_secret_post"]


async def test_resource_metadata_uses_env_keys_and_resource_keys_are_404(
    fake_scalekit, fake_scalekit_http
):
    base = f"{fake_scalekit.issuer}/resources/res_1"
    doc = (await fake_scalekit_http.get(f"{base}/.well-known/oauth-authorization-server")).json()
    keys = await fake_scalekit_http.get(f"{base}/keys")

    assert doc["issuer"] == base
    assert doc["jwks_uri"] == f"{fake_scalekit.issuer}/keys"
    assert keys.status_code == 404


async def test_keys_need_no_auth_tolerate_a_bearer_and_are_counted(
    fake_scalekit, fake_scalekit_http
):
    plain = await fake_scalekit_http.get(f"{fake_scalekit.issuer}/keys")
    bearer = await fake_scalekit_http.get(
        f"{fake_scalekit.issuer}/keys", headers={"Authorization": "Bearer whatever"}
    )

    key = plain.json()["keys"][0]
    assert plain.status_code == bearer.status_code == 200
    assert {key["kty"], key["use"], key["alg"]} == {"RSA", "sig", "RS256"}
    assert key["kid"].startswith("snk_")
    assert "cache-control" not in plain.headers
    assert fake_scalekit.recording.count("keys") == 2


async def test_keys_max_age_knob_sets_cache_control(fake_scalekit, fake_scalekit_http):
    fake_scalekit.knobs.keys_max_age = 120

    response = await fake_scalekit_http.get(f"{fake_scalekit.issuer}/keys")

    assert response.headers["cache-control"] == "max-age=120"


async def test_rotation_keeps_or_drops_the_previous_key(fake_scalekit, rp):
    old_token = (await rp.tokens())["access_token"]
    old_kid = fake_scalekit.keys.signing_kid

    new_kid = fake_scalekit.rotate_keys()
    kept = [k["kid"] for k in fake_scalekit.keys.jwks()["keys"]]
    new_token = (await rp.tokens())["access_token"]
    fake_scalekit.rotate_keys(keep_previous=False)
    dropped = [k["kid"] for k in fake_scalekit.keys.jwks()["keys"]]

    assert kept == [new_kid, old_kid]
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    assert verify_jwt(fake_scalekit, old_token)["sub"]
    assert new_kid not in dropped
    assert old_kid in dropped  # only the key rotated away this time goes


async def test_sdk_style_authorize_without_pkce_is_approved(rp):
    callback = await rp.fake.approve(
        rp.authorize_url(code_challenge=None, code_challenge_method=None)
    )

    assert callback.status == 302
    assert callback.url == DEFAULT_REDIRECT_URI
    assert callback.get("state") == rp.state
    assert callback.get("code")


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"client_id": "skc_unknown"}, "unknown client_id"),
        ({"redirect_uri": "https://evil.test/cb"}, "not registered"),
    ],
)
async def test_authorize_never_redirects_to_an_unverified_target(rp, params, why):
    callback = await rp.fake.approve(rp.authorize_url(**params))

    assert callback.status == 400
    assert callback.method == "NONE"
    assert why in callback.body
    assert rp.fake.codes == {}


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"response_type": "token"}, "invalid_request"),
        ({"scope": "profile email"}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"prompt": "consent"}, "invalid_request"),
    ],
)
async def test_authorize_validation_errors_redirect_back_with_state(rp, params, error):
    callback = await rp.fake.approve(rp.authorize_url(**params))

    assert callback.url == DEFAULT_REDIRECT_URI
    assert callback.get("error") == error
    assert callback.get("state") == rp.state
    assert callback.get("code") is None
    assert rp.fake.recording.last("authorize").outcome.startswith(error)


async def test_plain_pkce_error_is_configurable(rp):
    rp.fake.answers.plain_pkce_error = "invalid_code_challenge_method"

    callback = await rp.fake.approve(rp.authorize_url(code_challenge_method="plain"))

    assert callback.get("error") == "invalid_code_challenge_method"


async def test_require_pkce_knob_refuses_requests_without_challenge(rp):
    rp.fake.knobs.require_pkce = True

    callback = await rp.fake.approve(
        rp.authorize_url(code_challenge=None, code_challenge_method=None)
    )

    assert callback.get("error") == "invalid_request"
    assert "code_challenge" in (callback.get("error_description") or "")


async def test_prompt_none_without_session_answers_login_required(rp):
    rp.fake.knobs.no_session = True

    refused = await rp.fake.approve(rp.authorize_url(prompt="none"))
    rp.fake.answers.prompt_none_error = "interaction_required"
    other = await rp.fake.approve(rp.authorize_url(prompt="none"))
    allowed = await rp.fake.approve(rp.authorize_url(prompt="login"))

    assert refused.get("error") == "login_required"
    assert other.get("error") == "interaction_required"
    assert allowed.get("code")


@pytest.mark.parametrize("error", ["access_denied", "invalid_request", "server_error"])
async def test_authorize_error_knob_injects_callback_errors(rp, error):
    rp.fake.knobs.authorize_error = error

    callback = await rp.fake.approve(rp.authorize_url())

    assert callback.get("error") == error
    assert callback.get("error_description")
    assert callback.get("state") == rp.state


@pytest.mark.parametrize(
    ("params", "kind", "connection"),
    [
        (
            {
                "connection_id": GOOGLE_CONN,
                "organization_id": ACME_ORG,
                "login_hint": "a@acme.test",
            },
            "connection_id",
            GOOGLE_CONN,
        ),
        ({"organization_id": ACME_ORG, "provider": "google"}, "organization_id", ACME_CONN),
        ({"provider": "google", "login_hint": "a@acme.test"}, "provider", GOOGLE_CONN),
        ({"login_hint": "someone@ACME.test"}, "domain", ACME_CONN),
        ({"domain_hint": "acme.test"}, "domain", ACME_CONN),
        ({"domain": "acme.test"}, "domain", ACME_CONN),
        ({"login_hint": "x@globex.test"}, "default", PASSWORDLESS_CONN),  # inactive SAML
        ({}, "default", PASSWORDLESS_CONN),
    ],
)
async def test_routing_follows_the_documented_precedence(rp, params, kind, connection):
    code = await rp.code(**params)

    grant = rp.fake.codes[code]
    assert grant.session.route.kind == kind
    assert grant.session.route.connection_id == connection


async def test_routing_to_an_unknown_connection_is_refused(rp):
    callback = await rp.fake.approve(rp.authorize_url(connection_id="conn_nope"))

    assert callback.get("error") == "invalid_request"


async def test_a_connection_added_to_the_table_routes_and_signs_in_its_user(fake_scalekit, rp):
    fake_scalekit.add_connection(
        Connection("conn_9", "OKTA", "SAML", "org_9", "Initech", ("initech.test",))
    )

    tokens = await rp.tokens(login_hint="peter@initech.test")
    claims = verify_jwt(fake_scalekit, tokens["id_token"])

    assert claims["amr"] == ["conn_9"]
    assert claims["oid"] == "org_9"
    assert claims["email"] == "peter@initech.test"
    assert claims["sub"].startswith("usr_")


async def test_code_exchange_returns_documented_tokens_and_claims(fake_scalekit, rp):
    code = await rp.code(login_hint="alice@acme.test")
    response = await rp.exchange(code)

    body = response.json()
    id_claims = verify_jwt(fake_scalekit, body["id_token"])
    at_claims = verify_jwt(fake_scalekit, body["access_token"])
    assert response.headers["cache-control"] == "no-store"
    assert body["expires_in"] == 299
    assert body["token_type"] == "Bearer"
    assert body["refresh_token"]
    assert id_claims["iss"] == fake_scalekit.issuer
    assert id_claims["aud"] == [DEFAULT_CLIENT_ID]
    assert id_claims["azp"] == id_claims["client_id"] == DEFAULT_CLIENT_ID
    assert id_claims["amr"] == [ACME_CONN]
    assert id_claims["oid"] == ACME_ORG
    assert id_claims["sid"].startswith("ses_")
    assert id_claims["nonce"] == rp.nonce
    assert id_claims["email"] == "alice@acme.test"
    assert id_claims["at_hash"] == _half_hash(body["access_token"])
    assert id_claims["c_hash"] == _half_hash(code)
    assert at_claims["sub"] == id_claims["sub"]
    assert at_claims["jti"].startswith("tkn_")
    assert at_claims["exp"] - at_claims["iat"] == 300
    assert at_claims["scope"] == "openid profile email offline_access"
    assert at_claims["sid"] == id_claims["sid"]


def _half_hash(value: str) -> str:
    digest = hashlib.sha256(value.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def test_no_refresh_token_without_offline_access(rp):
    tokens = await rp.tokens(scope="openid email")

    assert "refresh_token" not in tokens


async def test_nonce_echo_is_an_open_answer(fake_scalekit, rp):
    fake_scalekit.answers.echo_nonce = False

    claims = verify_jwt(fake_scalekit, (await rp.tokens())["id_token"])

    assert "nonce" not in claims


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"code_verifier": "wrong-verifier-wrong-verifier-wrong-verifier-x"}, "code_verifier"),
        ({"redirect_uri": "https://app.rpkit.test/other"}, "redirect_uri"),
    ],
)
async def test_code_exchange_checks_pkce_and_redirect_uri(rp, form, reason):
    response = await rp.exchange(await rp.code(), **form)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert reason in response.json()["error_description"]


async def test_codes_are_single_use_and_expire_after_600_seconds(fake_scalekit, rp):
    code = await rp.code()
    first = await rp.exchange(code)
    replay = await rp.exchange(code)
    late = await rp.code()
    fake_scalekit.advance(600)
    expired = await rp.exchange(late)

    assert first.status_code == 200
    assert replay.json()["error"] == expired.json()["error"] == "invalid_grant"


async def test_client_authentication_post_basic_and_stray_bearer(fake_scalekit, rp):
    pair = f"{quote_plus(DEFAULT_CLIENT_ID)}:{quote_plus(DEFAULT_CLIENT_SECRET)}"
    basic = base64.b64encode(pair.encode()).decode()
    post_with_bearer = await rp.http.post(
        f"{fake_scalekit.issuer}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
        },
        headers={"Authorization": "Bearer stale-m2m-token"},
    )
    with_basic = await rp.http.post(
        f"{fake_scalekit.issuer}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    fake_scalekit.knobs.allow_client_secret_basic = False
    basic_refused = await rp.http.post(
        f"{fake_scalekit.issuer}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )

    assert post_with_bearer.status_code == 200
    assert with_basic.status_code == 200
    assert basic_refused.status_code == 401
    assert basic_refused.json()["error"] == "invalid_client"


async def test_wrong_secret_is_invalid_client_with_configurable_status(fake_scalekit, rp):
    first = await rp.token(grant_type="client_credentials", client_secret="nope")
    fake_scalekit.answers.invalid_client_status = 400
    second = await rp.token(grant_type="client_credentials", client_secret="nope")

    assert (first.status_code, first.json()["error"]) == (401, "invalid_client")
    assert second.status_code == 400


@pytest.mark.parametrize(
    ("grant", "error"), [(None, "invalid_request"), ("password", "unsupported_grant_type")]
)
async def test_missing_or_unknown_grant_type(rp, grant, error):
    response = await rp.token(grant_type=grant)

    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_client_credentials_token_has_the_m2m_shape(fake_scalekit, rp):
    response = await rp.token(grant_type="client_credentials", scope="read:users write:users")

    body = response.json()
    claims = verify_jwt(fake_scalekit, body["access_token"])
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86399
    assert body["scope"] == "read:users write:users"
    assert claims["sub"] == claims["client_id"] == DEFAULT_CLIENT_ID
    assert claims["scopes"] == ["read:users", "write:users"]
    assert claims["jti"].startswith("tkn_")
    assert fake_scalekit.recording.grant_counts() == {"client_credentials": 1}


async def test_refresh_rotates_and_rejects_replay(rp):
    tokens = await rp.tokens()

    first = await rp.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    replay = await rp.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    second = await rp.token(grant_type="refresh_token", refresh_token=first.json()["refresh_token"])

    assert first.status_code == 200
    assert first.json()["refresh_token"] != tokens["refresh_token"]
    assert first.json()["id_token"]
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert second.status_code == 200


async def test_refresh_grace_window_replays_the_same_pair(fake_scalekit, rp):
    fake_scalekit.knobs.refresh_grace_seconds = 30
    fake_scalekit.knobs.id_token_on_refresh = False
    refresh = (await rp.tokens())["refresh_token"]

    first = await rp.token(grant_type="refresh_token", refresh_token=refresh)
    within = await rp.token(grant_type="refresh_token", refresh_token=refresh)
    fake_scalekit.advance(31)
    after = await rp.token(grant_type="refresh_token", refresh_token=refresh)

    assert "id_token" not in first.json()
    assert within.json() == first.json()
    assert after.json()["error"] == "invalid_grant"


async def test_claim_edit_knobs_corrupt_tokens_as_asked(fake_scalekit, rp):
    fake_scalekit.knobs.id_token_claims = {
        "aud": ["someone_else"],
        "exp": ABSENT,
        "nonce": lambda c: c["nonce"] + "x",
    }
    fake_scalekit.knobs.access_token_claims = {"iss": "https://evil.example"}
    fake_scalekit.knobs.token_fields = {"token_type": "mac"}

    tokens = await rp.tokens()
    id_claims = verify_jwt(fake_scalekit, tokens["id_token"], verify_exp=False)
    at_claims = verify_jwt(fake_scalekit, tokens["access_token"])

    assert id_claims["aud"] == ["someone_else"]
    assert "exp" not in id_claims
    assert id_claims["nonce"] == rp.nonce + "x"
    assert at_claims["iss"] == "https://evil.example"
    assert tokens["token_type"] == "mac"


async def test_future_iat_via_clock_offset_is_rejected_by_a_strict_verifier(fake_scalekit, rp):
    fake_scalekit.knobs.id_token_claims = {"iat": lambda c: c["iat"] + 60}

    token = (await rp.tokens())["id_token"]

    with pytest.raises(jwt.ImmatureSignatureError):
        verify_jwt(fake_scalekit, token)


@pytest.mark.parametrize("tamper", [Tamper.BAD_SIGNATURE, Tamper.RANDOM_KID])
async def test_tamper_knobs_break_signatures(fake_scalekit, rp, tamper):
    fake_scalekit.knobs.id_token_tamper = tamper
    fake_scalekit.knobs.access_token_tamper = tamper

    tokens = await rp.tokens()

    for token in (tokens["id_token"], tokens["access_token"]):
        with pytest.raises((jwt.InvalidSignatureError, StopIteration)):
            verify_jwt(fake_scalekit, token)


async def test_token_failure_injection_answers_once_then_recovers(fake_scalekit, rp):
    fake_scalekit.fail_next("token", 503, headers={"Retry-After": "1"})

    failed = await rp.token(grant_type="client_credentials")
    recovered = await rp.token(grant_type="client_credentials")

    assert failed.status_code == 503
    assert failed.json()["error"] == "server_error"
    assert failed.headers["retry-after"] == "1"
    assert recovered.status_code == 200
    assert [c.outcome for c in fake_scalekit.recording.of("token")] == ["injected 503", "ok"]


async def test_latency_knob_times_out_a_short_client(fake_scalekit):
    fake_scalekit.knobs.latency = {"keys": 0.2}

    async with httpx.AsyncClient(transport=fake_scalekit.transport(), timeout=0.05) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(f"{fake_scalekit.issuer}/keys")

    assert fake_scalekit.recording.count("keys") == 1


async def test_logout_redirects_with_state_and_revokes_the_session(fake_scalekit, rp):
    tokens = await rp.tokens()
    params = {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": "https://app.rpkit.test/",
        "state": "bye",
    }

    response = await rp.http.get(f"{fake_scalekit.issuer}/oidc/logout", params=params)
    refresh = await rp.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])

    assert response.status_code == 302
    assert response.headers["location"] == "https://app.rpkit.test/?state=bye"
    assert refresh.json()["error"] == "invalid_grant"
    assert all(s.revoked for s in fake_scalekit.sessions.values())


async def test_logout_accepts_an_expired_hint_but_not_a_forged_one(fake_scalekit, rp):
    tokens = await rp.tokens()
    fake_scalekit.advance(3600)
    expired_ok = await rp.http.get(
        f"{fake_scalekit.issuer}/oidc/logout", params={"id_token_hint": tokens["id_token"]}
    )
    forged = tokens["id_token"][:-4] + "AAAA"
    refused = await rp.http.get(
        f"{fake_scalekit.issuer}/oidc/logout", params={"id_token_hint": forged}
    )

    assert expired_ok.status_code == 200
    assert refused.status_code == 400


async def test_logout_refuses_an_unregistered_post_logout_uri(fake_scalekit, rp):
    response = await rp.http.get(
        f"{fake_scalekit.issuer}/oidc/logout",
        params={"post_logout_redirect_uri": "https://evil.test/"},
    )

    assert response.status_code == 400
    assert "location" not in response.headers


async def test_logout_without_hint_ends_the_browser_session_by_cookie(fake_scalekit, rp):
    refresh = (await rp.tokens())["refresh_token"]
    sid = next(iter(fake_scalekit.sessions))

    rp.http.cookies.set("sk_fake_session", sid)
    response = await rp.http.get(f"{fake_scalekit.issuer}/oidc/logout")

    assert response.status_code == 200
    assert fake_scalekit.sessions[sid].revoked
    assert (await rp.token(grant_type="refresh_token", refresh_token=refresh)).status_code == 400


def test_misbehaving_restores_knobs_and_reset_clears_everything():
    fake = FakeScalekit()
    with fake.misbehaving(require_pkce=True, latency={"keys": 1.0}) as knobs:
        assert knobs.require_pkce
    fake.answers.echo_nonce = False
    fake.passwordless.send_limit = 9

    assert fake.knobs.require_pkce is False
    assert fake.knobs.latency == {}
    fake.reset()
    assert fake.answers.echo_nonce is True
    assert fake.passwordless.send_limit == 2
    with pytest.raises(TypeError), fake.misbehaving(not_a_knob=1):
        pass


async def test_lifetime_knobs_shape_expiries(fake_scalekit, rp):
    fake_scalekit.knobs.access_token_lifetime = 60
    fake_scalekit.knobs.id_token_lifetime = 120
    fake_scalekit.knobs.m2m_token_lifetime = 30
    fake_scalekit.knobs.code_lifetime = 5

    tokens = await rp.tokens()
    m2m = await rp.token(grant_type="client_credentials")
    late = await rp.code()
    fake_scalekit.advance(5)
    expired = await rp.exchange(late)

    at = verify_jwt(fake_scalekit, tokens["access_token"])
    it = verify_jwt(fake_scalekit, tokens["id_token"])
    m2m_claims = verify_jwt(fake_scalekit, m2m.json()["access_token"], verify_iat=False)
    assert tokens["expires_in"] == 59
    assert at["exp"] - at["iat"] == 60
    assert it["exp"] - it["iat"] == 120
    assert m2m.json()["expires_in"] == 30
    assert m2m_claims["exp"] - m2m_claims["iat"] == 30
    assert expired.json()["error"] == "invalid_grant"
    assert fake_scalekit.recording.last("token").outcome.startswith("400 invalid_grant")
