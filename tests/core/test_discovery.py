"""Discovery: metadata comes only from the issuer's well-known document, is used only after it
passes every check, and is cached without ever letting a bad document replace a good one
(checklist rows 1–5)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from rpkit.config import ProviderConfig
from rpkit.discovery import DiscoveryCache, ProviderMetadata, discovery_url
from rpkit.errors import DiscoveryError, IssuerMismatchError
from rpkit.jwks import JWKSCache
from rpkit.testing import ABSENT, Canned, FakeOP

ENDPOINTS = {
    "authorization_endpoint": "authorize",
    "token_endpoint": "token",
    "userinfo_endpoint": "userinfo",
    "jwks_uri": "jwks",
    "end_session_endpoint": "end_session",
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def config_for(op: FakeOP, **changes: Any) -> ProviderConfig:
    return op.provider_config(**changes)


def client_for(op: FakeOP, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=op.transport(), **kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config(fake_op: FakeOP) -> ProviderConfig:
    return config_for(fake_op)


@pytest.fixture
def discovery(fake_op_http: httpx.AsyncClient, clock: Clock) -> DiscoveryCache:
    return DiscoveryCache(fake_op_http, ttl=3600, clock=clock)


# -- row 1: endpoints come from the document ---------------------------------------------------
async def test_endpoints_and_jwks_uri_are_taken_from_the_randomised_document():
    op = FakeOP(random_paths=True)
    http = client_for(op)

    metadata = await DiscoveryCache(http).get(config_for(op))
    await JWKSCache(http).warm(metadata.jwks_uri)

    for member, endpoint in ENDPOINTS.items():
        assert getattr(metadata, member) == op.endpoints[endpoint]
    assert [r.endpoint for r in op.oracle] == ["discovery", "jwks"]
    assert op.oracle.last("discovery").url == f"{op.issuer}/.well-known/openid-configuration"
    assert op.oracle.last("jwks").url == op.endpoints["jwks"]
    assert op.oracle.count(None) == 2  # no guessed path was requested


def test_discovery_url_strips_exactly_one_trailing_slash():
    assert discovery_url("https://op.example") == "https://op.example" + WELL_KNOWN
    assert discovery_url("https://op.example/") == "https://op.example" + WELL_KNOWN
    assert discovery_url("https://op.example/t/") == "https://op.example/t" + WELL_KNOWN


WELL_KNOWN = "/.well-known/openid-configuration"


@pytest.mark.parametrize("issuer", ["https://op.rpkit.test/tenant-a", "https://op.rpkit.test/"])
async def test_an_issuer_with_a_path_or_a_trailing_slash_is_discovered_under_it(issuer):
    op = FakeOP(issuer)

    metadata = await DiscoveryCache(client_for(op)).get(config_for(op))

    assert metadata.issuer == issuer
    assert op.oracle.last("discovery").outcome == "ok"


async def test_the_typed_metadata_keeps_unknown_members_in_a_read_only_raw_document(
    fake_op, config, discovery
):
    fake_op.misbehave.metadata = {"x_vendor_flag": {"nested": [1, 2]}, "raw": "not a field"}

    metadata = await discovery.get(config)

    assert isinstance(metadata, ProviderMetadata)
    assert metadata.raw["x_vendor_flag"]["nested"] == (1, 2)
    assert metadata.raw["raw"] == "not a field"
    with pytest.raises(TypeError):
        metadata.raw["issuer"] = "https://evil.example"  # type: ignore[index]
    with pytest.raises(TypeError):
        metadata.raw["x_vendor_flag"]["nested"] = []  # type: ignore[index]
    with pytest.raises(AttributeError):
        metadata.issuer = "https://evil.example"  # type: ignore[misc]
    assert metadata.authorization_response_iss_parameter_supported is True
    assert metadata.code_challenge_methods_supported == ("S256",)


async def test_optional_members_take_their_specified_defaults(fake_op, config, discovery):
    fake_op.misbehave.metadata = {
        "authorization_response_iss_parameter_supported": ABSENT,
        "backchannel_logout_supported": ABSENT,
        "code_challenge_methods_supported": ABSENT,
        "response_modes_supported": ABSENT,
        "token_endpoint_auth_methods_supported": ABSENT,
        "token_endpoint_auth_signing_alg_values_supported": ABSENT,
    }

    metadata = await discovery.get(config)

    assert metadata.authorization_response_iss_parameter_supported is False
    assert metadata.backchannel_logout_supported is False
    assert metadata.code_challenge_methods_supported == ()
    assert metadata.response_modes_supported == ("query", "fragment")
    assert metadata.token_endpoint_auth_methods_supported == ("client_secret_basic",)


@pytest.mark.parametrize("methods", [ABSENT, ["plain"]])
async def test_a_document_without_s256_pkce_is_still_accepted(fake_op, config, discovery, methods):
    # Row 5: discovery accepts it; the flow sends S256 regardless.
    fake_op.misbehave.metadata = {"code_challenge_methods_supported": methods}

    metadata = await discovery.get(config)

    assert "S256" not in metadata.code_challenge_methods_supported


# -- rows 2 and 3: the issuer must match exactly -------------------------------------------------
@pytest.mark.parametrize(
    "issuer",
    [
        "https://op.rpkit.testINVALID",
        "https://op.rpkit.test/INVALID",
        "https://other.example",
        "https://op.rpkit.test/",
        "https://OP.rpkit.test",
        "https://op.rpkit.test:443",
        "HTTPS://op.rpkit.test",
        ABSENT,
    ],
)
async def test_a_document_naming_another_issuer_is_rejected_and_not_cached(
    fake_op, config, discovery, issuer
):
    fake_op.misbehave.metadata = {"issuer": issuer}

    with pytest.raises(IssuerMismatchError) as caught:
        await discovery.get(config)
    with pytest.raises(IssuerMismatchError):
        await discovery.get(config)

    assert caught.value.code == "issuer_mismatch"
    assert fake_op.oracle.count("discovery") == 2  # nothing from the first document was cached
    assert fake_op.oracle.count(None) == 2  # and nothing else was requested
    assert discovery.cached(config.issuer) is None


@pytest.mark.parametrize(
    ("configured", "published"),
    [
        ("https://op.rpkit.test/tenant", "https://op.rpkit.test/tenant/"),
        ("https://op.rpkit.test/", "https://op.rpkit.test"),
        ("https://op.rpkit.test/tenant-a", "https://op.rpkit.test/tenant%2Da"),
        ("https://op.rpkit.test/Tenant", "https://op.rpkit.test/tenant"),
    ],
)
async def test_issuers_equal_only_after_normalisation_are_rejected(configured, published):
    op = FakeOP(configured)
    op.misbehave.metadata = {"issuer": published}

    with pytest.raises(IssuerMismatchError):
        await DiscoveryCache(client_for(op)).get(config_for(op))

    assert op.oracle.count("discovery") == 1


# -- row 4: fail closed --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "canned",
    [
        Canned.error(500),
        Canned.error(404),
        Canned.html(),
        Canned.json(["not", "an", "object"]),
        Canned.json("a string"),
        Canned(200, b"{truncated", "application/json"),
        Canned(302, b"", None, {"Location": "https://other.example/.well-known/x"}),
    ],
    ids=["500", "404", "html", "array", "string", "truncated", "redirect"],
)
async def test_an_unusable_response_is_a_discovery_error(fake_op, config, discovery, canned):
    fake_op.misbehave.respond = {"discovery": canned}

    with pytest.raises(DiscoveryError) as caught:
        await discovery.get(config)

    assert type(caught.value) is DiscoveryError
    assert fake_op.oracle.count(None) == 1  # the redirect was not followed


async def test_a_network_error_is_a_discovery_error_with_the_cause_chained(config):
    unreachable = httpx.AsyncClient(transport=FakeOP("https://elsewhere.example").transport())

    with pytest.raises(DiscoveryError) as caught:
        await DiscoveryCache(unreachable).get(config)

    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_an_http_error_status_is_chained_as_the_cause(fake_op, config, discovery):
    fake_op.misbehave.respond = {"discovery": Canned.error(500)}

    with pytest.raises(DiscoveryError) as caught:
        await discovery.get(config)

    assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)
    assert caught.value.__cause__.response.status_code == 500


async def test_a_timeout_is_a_discovery_error(fake_op, config):
    fake_op.misbehave.latency = {"discovery": 1.0}
    impatient = client_for(fake_op, timeout=0.02)

    with pytest.raises(DiscoveryError) as caught:
        await DiscoveryCache(impatient).get(config)

    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


@pytest.mark.parametrize(
    "member",
    [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "id_token_signing_alg_values_supported",
        "response_types_supported",
        "subject_types_supported",
    ],
)
async def test_a_document_missing_a_required_member_is_rejected(fake_op, config, discovery, member):
    fake_op.misbehave.metadata = {member: ABSENT}

    with pytest.raises(DiscoveryError, match=member):
        await discovery.get(config)

    assert discovery.cached(config.issuer) is None


@pytest.mark.parametrize(
    "edit",
    [
        {"response_types_supported": ["id_token", "token id_token"]},
        {"authorization_endpoint": 42},
        {"jwks_uri": ["https://op.rpkit.test/jwks"]},
        {"id_token_signing_alg_values_supported": "RS256"},
        {"subject_types_supported": ["nobody-knows"]},
        {"authorization_response_iss_parameter_supported": "yes"},
        {"token_endpoint_auth_signing_alg_values_supported": ["none"]},
        {"scopes_supported": "openid"},
    ],
    ids=lambda edit: next(iter(edit)),
)
async def test_a_document_with_an_invalid_member_is_rejected(fake_op, config, discovery, edit):
    fake_op.misbehave.metadata = edit

    with pytest.raises(DiscoveryError):
        await discovery.get(config)

    assert discovery.cached(config.issuer) is None


@pytest.mark.parametrize("member", [*ENDPOINTS, "registration_endpoint", "revocation_endpoint"])
async def test_an_http_endpoint_is_rejected(fake_op, config, discovery, member):
    fake_op.misbehave.metadata = {member: f"http://op.rpkit.test/{member}"}

    with pytest.raises(DiscoveryError, match=member):
        await discovery.get(config)


async def test_the_http_endpoints_knob_is_rejected(fake_op, config, discovery):
    fake_op.misbehave.http_endpoints = True

    with pytest.raises(DiscoveryError, match="https"):
        await discovery.get(config)


async def test_loopback_http_endpoints_need_the_development_flag(fake_op, discovery):
    fake_op.misbehave.metadata = {"token_endpoint": "http://127.0.0.1:8080/token"}

    with pytest.raises(DiscoveryError, match="allow_insecure_http"):
        await discovery.get(config_for(fake_op))
    metadata = await discovery.get(config_for(fake_op, allow_insecure_http=True))

    assert metadata.token_endpoint == "http://127.0.0.1:8080/token"


async def test_the_development_flag_never_allows_http_on_other_hosts(fake_op, discovery):
    fake_op.misbehave.metadata = {"token_endpoint": "http://op.rpkit.test/token"}

    with pytest.raises(DiscoveryError, match="token_endpoint"):
        await discovery.get(config_for(fake_op, allow_insecure_http=True))


async def test_a_loopback_http_provider_is_accepted_with_the_development_flag():
    op = FakeOP("http://127.0.0.1:9")

    metadata = await DiscoveryCache(client_for(op)).get(config_for(op, allow_insecure_http=True))

    assert metadata.issuer == "http://127.0.0.1:9"
    assert metadata.token_endpoint == "http://127.0.0.1:9/token"


# -- caching -----------------------------------------------------------------------------------
async def test_a_fresh_document_is_served_from_the_cache_until_the_ttl(
    fake_op, config, discovery, clock
):
    first = await discovery.get(config)
    clock.now += 3599
    second = await discovery.get(config)
    clock.now += 2
    third = await discovery.get(config)

    assert second is first
    assert third is not first
    assert fake_op.oracle.count("discovery") == 2


async def test_the_providers_cache_control_never_lengthens_the_ttl(config, clock):
    op = FakeOP(metadata_max_age=10**7)
    discovery = DiscoveryCache(client_for(op), ttl=60, clock=clock)

    await discovery.get(config)
    clock.now += 61
    await discovery.get(config)

    assert op.oracle.count("discovery") == 2


async def test_concurrent_gets_for_one_issuer_share_one_request(fake_op, config, discovery):
    fake_op.misbehave.latency = {"discovery": 0.01}

    results = await asyncio.gather(*(discovery.get(config) for _ in range(10)))

    assert all(result is results[0] for result in results)
    assert fake_op.oracle.count("discovery") == 1


async def test_concurrent_gets_share_one_failure_too(fake_op, config, discovery):
    fake_op.misbehave.latency = {"discovery": 0.01}
    fake_op.misbehave.respond = {"discovery": Canned.error(500)}

    results = await asyncio.gather(
        *(discovery.get(config) for _ in range(10)), return_exceptions=True
    )

    assert all(isinstance(result, DiscoveryError) for result in results)
    assert fake_op.oracle.count("discovery") == 1


async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch(fake_op, config, discovery):
    fake_op.misbehave.latency = {"discovery": 0.02}
    impatient = asyncio.create_task(discovery.get(config))
    patient = asyncio.create_task(discovery.get(config))
    await asyncio.sleep(0)

    impatient.cancel()
    metadata = await patient

    assert metadata.issuer == config.issuer
    assert fake_op.oracle.count("discovery") == 1


async def test_a_first_failure_raises_and_caches_nothing(fake_op, config, discovery):
    fake_op.misbehave.respond = {"discovery": Canned.error(503)}
    with pytest.raises(DiscoveryError):
        await discovery.get(config)

    fake_op.misbehave.respond = {}
    metadata = await discovery.get(config)

    assert metadata.issuer == config.issuer
    assert fake_op.oracle.count("discovery") == 2


async def test_a_failed_refresh_keeps_serving_the_last_good_document(
    fake_op, config, discovery, clock
):
    good = await discovery.get(config)
    clock.now += 3601
    fake_op.misbehave.respond = {"discovery": Canned.error(500)}

    with capture_logs() as logs:
        stale = await discovery.get(config)

    assert stale is good
    assert fake_op.oracle.count("discovery") == 2
    warning = next(e for e in logs if e["event"] == "rpkit.discovery.serving_stale")
    assert warning["log_level"] == "warning"


async def test_a_failed_refresh_is_retried_after_retry_after_not_on_every_get(
    fake_op, config, clock
):
    discovery = DiscoveryCache(httpx.AsyncClient(transport=fake_op.transport()), clock=clock)
    good = await discovery.get(config)
    clock.now += 3601
    fake_op.misbehave.respond = {"discovery": Canned.error(500)}
    await discovery.get(config)

    clock.now += 29
    assert await discovery.get(config) is good
    assert fake_op.oracle.count("discovery") == 2
    fake_op.misbehave.respond = {}
    clock.now += 2
    fresh = await discovery.get(config)

    assert fresh is not good
    assert fake_op.oracle.count("discovery") == 3


@pytest.mark.parametrize(
    "edit",
    [
        {"issuer": "https://op.rpkit.test/"},
        {"jwks_uri": ABSENT},
        {"token_endpoint": "http://op.rpkit.test/token"},
        {"jwks_uri": "https://attacker.example/jwks"} | {"response_types_supported": ["token"]},
    ],
    ids=["issuer", "missing", "http", "mixed"],
)
async def test_a_bad_document_never_replaces_a_good_one(fake_op, config, discovery, clock, edit):
    good = await discovery.get(config)
    clock.now += 3601
    fake_op.misbehave.metadata = edit

    served = await discovery.get(config)

    assert served is good
    assert served.jwks_uri == fake_op.endpoints["jwks"]
    assert discovery.cached(config.issuer) is good
    assert fake_op.oracle.count("discovery") == 2


async def test_invalidate_forces_the_next_get_to_refetch(fake_op, config, discovery):
    first = await discovery.get(config)

    discovery.invalidate(config.issuer)
    second = await discovery.get(config)

    assert second is not first
    assert fake_op.oracle.count("discovery") == 2


def test_a_nonsensical_ttl_is_refused(fake_op_http):
    with pytest.raises(ValueError, match="ttl"):
        DiscoveryCache(fake_op_http, ttl=0)


async def test_private_key_jwt_without_its_signing_algorithms_is_accepted(
    fake_op, config, discovery
):
    """Entra ID's real document lists private_key_jwt without
    token_endpoint_auth_signing_alg_values_supported; rpkit takes the assertion algorithm from
    its own configuration, so the document is usable."""
    fake_op.misbehave.metadata = {
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ABSENT,
    }
    metadata = await discovery.get(config)
    assert metadata.token_endpoint_auth_signing_alg_values_supported == ()


@pytest.mark.parametrize("algs", [["RS256", "none"], "RS256"])
async def test_client_assertion_algorithms_with_none_or_not_a_list_are_rejected(
    fake_op, config, discovery, algs
):
    fake_op.misbehave.metadata = {"token_endpoint_auth_signing_alg_values_supported": algs}
    with pytest.raises(DiscoveryError, match="token_endpoint_auth_signing_alg_values_supported"):
        await discovery.get(config)
