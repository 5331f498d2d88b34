"""The provider preset: the environment as issuer, endpoints from discovery with the documented
paths only when the document is absent, and both issuers for resource access tokens."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from rpkit.client import RelyingParty
from rpkit.errors import (
    AccessTokenValidationError,
    ConfigurationError,
    DiscoveryError,
    IssuerMismatchError,
)
from rpkit.id_token import TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.store import MemoryStore
from rpkit_scalekit.provider import (
    ScalekitDiscoveryCache,
    documented_metadata,
    resource_token_policy,
    scalekit,
)
from rpkit_scalekit.routing import LoginRoute

from .conftest import CLIENT_ID, CLIENT_SECRET, ENV, Clock, discovery_document

WELL_KNOWN = "/.well-known/openid-configuration"


def config(**options):
    return scalekit(ENV, CLIENT_ID, CLIENT_SECRET, **options)


def test_preset_uses_the_environment_as_issuer_and_client_secret_post():
    preset = scalekit(ENV + "/", CLIENT_ID, CLIENT_SECRET)

    assert preset.issuer == ENV
    assert preset.client_auth == "client_secret_post"
    assert preset.scopes == ("openid", "profile", "email")
    assert preset.id_token_signed_response_alg == "RS256"
    assert not preset.fetch_userinfo
    assert {"organization_id", "connection_id", "provider", "domain", "domain_hint"} <= (
        preset.allowed_authorization_params
    )


def test_offline_access_is_requested_only_when_refresh_is_wanted():
    assert "offline_access" not in config().scopes
    assert config(offline_access=True).scopes[-1] == "offline_access"


def test_preset_refuses_plain_http_environments():
    with pytest.raises(ConfigurationError):
        scalekit("http://acme.scalekit.test", CLIENT_ID, CLIENT_SECRET)


async def test_endpoints_come_from_the_discovery_document_when_it_exists(http, mock):
    document = discovery_document(token_endpoint=f"{ENV}/oauth/v2/token")
    route = mock.get(WELL_KNOWN).respond(200, json=document)
    cache = ScalekitDiscoveryCache(http, fallback_for=[config()])

    metadata = await cache.get(config())

    assert metadata.token_endpoint == f"{ENV}/oauth/v2/token"
    assert route.call_count == 1


async def test_documented_paths_are_used_when_the_document_is_absent(http, mock):
    mock.get(WELL_KNOWN).respond(404)
    cache = ScalekitDiscoveryCache(http, fallback_for=[config()])

    metadata = await cache.get(config())

    assert metadata == documented_metadata(config())
    assert metadata.authorization_endpoint == f"{ENV}/oauth/authorize"
    assert metadata.token_endpoint == f"{ENV}/oauth/token"
    assert metadata.jwks_uri == f"{ENV}/keys"
    assert metadata.end_session_endpoint == f"{ENV}/oidc/logout"
    assert metadata.userinfo_endpoint is None


@pytest.mark.parametrize("status", [500, 503, 403])
async def test_other_discovery_failures_do_not_fall_back(http, mock, status):
    mock.get(WELL_KNOWN).respond(status)
    cache = ScalekitDiscoveryCache(http, fallback_for=[config()])

    with pytest.raises(DiscoveryError):
        await cache.get(config())


async def test_a_document_naming_another_issuer_does_not_fall_back(http, mock):
    mock.get(WELL_KNOWN).respond(200, json=discovery_document(issuer="https://evil.example"))
    cache = ScalekitDiscoveryCache(http, fallback_for=[config()])

    with pytest.raises(IssuerMismatchError):
        await cache.get(config())


async def test_providers_not_listed_never_fall_back(http, mock):
    mock.get(WELL_KNOWN).respond(404)
    cache = ScalekitDiscoveryCache(http, fallback_for=[])

    with pytest.raises(DiscoveryError):
        await cache.get(config())


async def test_the_fallback_is_rechecked_after_its_ttl(http, mock):
    clock = Clock(0.0)
    route = mock.get(WELL_KNOWN).mock(
        side_effect=[
            httpx.Response(404),
            httpx.Response(200, json=discovery_document(token_endpoint=f"{ENV}/t2")),
        ]
    )
    cache = ScalekitDiscoveryCache(http, fallback_for=[config()], fallback_ttl=100, clock=clock)

    first = await cache.get(config())
    clock.now = 50
    cached = await cache.get(config())
    clock.now = 101
    later = await cache.get(config())

    assert first.token_endpoint == cached.token_endpoint == f"{ENV}/oauth/token"
    assert later.token_endpoint == f"{ENV}/t2"
    assert route.call_count == 2


async def test_a_login_starts_at_the_documented_authorize_path_with_the_route(http, mock):
    mock.get(WELL_KNOWN).respond(404)
    preset = config()
    rp = RelyingParty(
        [preset],
        http=http,
        store=MemoryStore(),
        discovery=ScalekitDiscoveryCache(http, fallback_for=[preset]),
    )
    route = LoginRoute(
        kind="connection",
        reason="sso_connection",
        connection_id="conn_1",
        login_hint="ada@example.com",
        prompt="login",
    )

    login = await rp.begin_login(
        "scalekit", redirect_uri="https://app.test/cb", params=route.params()
    )

    url = urlsplit(login.url)
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{ENV}/oauth/authorize"
    assert query["connection_id"] == "conn_1"
    assert query["login_hint"] == "ada@example.com"
    assert query["prompt"] == "login"
    assert query["code_challenge_method"] == "S256"
    assert query["state"] == login.state
    assert query["nonce"]
    assert query["scope"] == "openid profile email"


async def test_resource_tokens_are_accepted_under_both_issuers(http, keys_route, minter):
    policy = resource_token_policy(ENV, audience="res_1", resource_id="res_1")
    validator = TokenValidator(JWKSCache(http), clock=minter.clock)

    for issuer in (ENV, f"{ENV}/resources/res_1"):
        minter.issuer = issuer
        token = minter.mint_access_token(
            subject="usr_1", audience="res_1", client_id="skc_9", typ="JWT"
        )
        assert (await validator.validate_access_token(token, policy)).iss == issuer

    assert policy.jwks_uri == f"{ENV}/keys"


async def test_resource_tokens_from_another_resource_issuer_are_refused(http, keys_route, minter):
    policy = resource_token_policy(
        ENV, audience="res_1", resource_id="res_1", accept_environment_issuer=False
    )
    validator = TokenValidator(JWKSCache(http), clock=minter.clock)

    for issuer in (ENV, f"{ENV}/resources/res_2"):
        minter.issuer = issuer
        token = minter.mint_access_token(subject="usr_1", audience="res_1", client_id="skc_9")
        with pytest.raises(AccessTokenValidationError) as caught:
            await validator.validate_access_token(token, policy)
        assert caught.value.reason == "iss"


def test_resource_policy_needs_some_issuer():
    with pytest.raises(ConfigurationError):
        resource_token_policy(ENV, audience="res_1", accept_environment_issuer=False)
