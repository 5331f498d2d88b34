"""Checklist group D (rows 1–5): rpkit takes everything from a validated discovery document,
refuses one that is wrong, and never starts a login on a document it did not validate."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rpkit.client import RelyingParty
from rpkit.discovery import DiscoveryCache
from rpkit.errors import ConfigurationError, DiscoveryError, IssuerMismatchError
from rpkit.store import MemoryStore
from rpkit.testing import ABSENT, Canned, FakeOP
from tests.checklist.conftest import Harness, provider_config


def harness_for(op: FakeOP, **changes: Any) -> Harness:
    """A harness against ``op`` rather than the ``fake_op`` fixture."""
    http = httpx.AsyncClient(transport=op.transport(), timeout=5.0)
    return Harness(op, http, MemoryStore(), provider_config(op, **changes))


async def assert_no_login_starts(harness: Harness, error: type[Exception]) -> Exception:
    """The configuration is refused: ``begin_login`` raises ``error`` (so no authorization URL
    exists), the OP's authorization endpoint is never reached, nothing is stored, and nothing
    from the bad document is cached."""
    with pytest.raises(error) as caught:
        await harness.start()
    assert harness.op.oracle.count("authorize") == 0
    assert len(harness.store) == 0, "a transaction was stored for a login that cannot start"
    assert harness.rp.discovery.cached(harness.config.issuer) is None
    return caught.value


# -- row 1 ----------------------------------------------------------------------------------------
@pytest.mark.checklist(1)
async def test_endpoints_and_jwks_uri_come_from_discovery_before_the_first_authorization():
    op = FakeOP(random_paths=True)
    harness = harness_for(op)

    result = await harness.login()

    endpoints = [r.endpoint for r in op.oracle]
    assert result.identity.subject == "alice"
    assert op.endpoints["jwks"] != op.issuer + "/jwks", "the paths were not randomised"
    assert endpoints.index("discovery") < endpoints.index("authorize")
    assert endpoints.count("discovery") == 1
    assert op.oracle.last("jwks").url == op.endpoints["jwks"]
    assert op.oracle.last("token").url == op.endpoints["token"]
    assert None not in endpoints, "rpkit guessed a path instead of reading discovery"


# -- row 2 ----------------------------------------------------------------------------------------
@pytest.mark.checklist(2)
@pytest.mark.parametrize(
    "issuer",
    [lambda m: m["issuer"] + "INVALID", "https://example.com"],
    ids=["suite_appends_INVALID", "legacy_other_host"],
)
async def test_discovery_naming_another_issuer_refuses_the_configuration(
    harness: Harness, fake_op: FakeOP, issuer
):
    fake_op.misbehave.metadata = {"issuer": issuer}

    error = await assert_no_login_starts(harness, IssuerMismatchError)

    assert harness.config.issuer in error.detail  # the operator sees what was expected
    assert fake_op.oracle.count("discovery") == 1


@pytest.mark.checklist(2)
async def test_a_refused_discovery_document_is_not_cached(harness: Harness, fake_op: FakeOP):
    fake_op.misbehave.metadata = {"issuer": "https://example.com"}
    await assert_no_login_starts(harness, IssuerMismatchError)

    with pytest.raises(IssuerMismatchError):
        await harness.start()

    assert fake_op.oracle.count("discovery") == 2, "the refused document was served from cache"
    assert fake_op.oracle.count("authorize") == 0


# -- row 3 ----------------------------------------------------------------------------------------
@pytest.mark.checklist(3)
@pytest.mark.parametrize(
    ("op_issuer", "configured", "advertised"),
    [
        ("https://op.rpkit.test", None, "https://op.rpkit.test/"),
        ("https://op.rpkit.test", "https://op.rpkit.test/", None),
        ("https://op.rpkit.test", None, "https://OP.rpkit.test"),
        ("https://op.rpkit.test", None, "https://op.rpkit.test:443"),
        ("https://op.rpkit.test/t~1", None, "https://op.rpkit.test/t%7E1"),
    ],
    ids=[
        "advertised_trailing_slash",
        "configured_trailing_slash",
        "host_case",
        "explicit_port_443",
        "percent_encoding",
    ],
)
async def test_issuer_equal_only_after_url_normalisation_is_refused(
    op_issuer, configured, advertised
):
    op = FakeOP(op_issuer)
    if advertised is not None:
        op.misbehave.metadata = {"issuer": advertised}
    harness = harness_for(op, issuer=configured or op_issuer)

    await assert_no_login_starts(harness, IssuerMismatchError)

    assert op.oracle.count("discovery") == 1, "the document was never fetched"


# -- row 4 ----------------------------------------------------------------------------------------
DISCOVERY_FAILURES = {
    "http_500": {"respond": {"discovery": Canned.error(500)}},
    "html": {"respond": {"discovery": Canned.html()}},
    "json_array": {"respond": {"discovery": Canned.json(["not", "an", "object"])}},
    "no_authorization_endpoint": {"metadata": {"authorization_endpoint": ABSENT}},
    "no_token_endpoint": {"metadata": {"token_endpoint": ABSENT}},
    "no_jwks_uri": {"metadata": {"jwks_uri": ABSENT}},
    "no_id_token_algs": {"metadata": {"id_token_signing_alg_values_supported": ABSENT}},
    "http_endpoints": {"http_endpoints": True},
}


@pytest.mark.checklist(4)
@pytest.mark.parametrize("knobs", DISCOVERY_FAILURES.values(), ids=DISCOVERY_FAILURES.keys())
async def test_failed_or_invalid_discovery_starts_no_login(
    harness: Harness, fake_op: FakeOP, knobs
):
    with fake_op.misbehaving(**knobs):
        await assert_no_login_starts(harness, DiscoveryError)

    assert fake_op.oracle.count("discovery") == 1


@pytest.mark.checklist(4)
@pytest.mark.parametrize("knobs", DISCOVERY_FAILURES.values(), ids=DISCOVERY_FAILURES.keys())
async def test_bad_discovery_refresh_keeps_the_last_good_document(
    harness: Harness, fake_op: FakeOP, knobs
):
    now = [0.0]
    harness.rp = RelyingParty(
        [harness.config],
        http=harness.http,
        store=harness.store,
        discovery=DiscoveryCache(harness.http, ttl=3600, clock=lambda: now[0]),
    )
    await harness.login()
    good = harness.rp.discovery.cached(harness.config.issuer)
    now[0] += 3601  # the good document is due for a refresh

    with fake_op.misbehaving(**knobs):
        request, callback = await harness.start()
    result = await harness.finish(callback)

    assert fake_op.oracle.count("discovery") == 2, "the refresh was never attempted"
    assert harness.rp.discovery.cached(harness.config.issuer) is good, "the bad one merged in"
    assert request.url.startswith(fake_op.endpoints["authorize"] + "?")
    assert result.identity.subject == "alice"


@pytest.mark.checklist(4)
async def test_http_issuer_on_loopback_needs_the_explicit_development_flag():
    op = FakeOP("http://127.0.0.1:8808")

    with pytest.raises(ConfigurationError, match="allow_insecure_http"):
        provider_config(op)
    result = await harness_for(op, allow_insecure_http=True).login()

    assert result.identity.issuer == "http://127.0.0.1:8808"
    assert op.oracle.last("token").url.startswith("http://127.0.0.1:8808/")


@pytest.mark.checklist(4)
async def test_development_flag_does_not_allow_http_endpoints_off_loopback():
    op = FakeOP("https://op.rpkit.test")
    op.misbehave.http_endpoints = True

    await assert_no_login_starts(harness_for(op, allow_insecure_http=True), DiscoveryError)


# -- row 5 ----------------------------------------------------------------------------------------
@pytest.mark.checklist(5)
@pytest.mark.parametrize(
    "advertised", [ABSENT, ["plain"]], ids=["pkce_not_advertised", "only_plain_advertised"]
)
async def test_pkce_s256_state_and_nonce_are_sent_even_when_pkce_is_not_advertised(
    harness: Harness, fake_op: FakeOP, advertised
):
    fake_op.misbehave.metadata = {"code_challenge_methods_supported": advertised}

    result = await harness.login()

    authorize = fake_op.oracle.last("authorize")
    assert result.identity.subject == "alice"
    assert authorize.param("code_challenge_method") == "S256"
    assert len(authorize.param("code_challenge") or "") == 43
    assert authorize.param("state")
    assert authorize.param("nonce") == result.id_token.nonce
    assert fake_op.oracle.last("token").param("code_verifier")
