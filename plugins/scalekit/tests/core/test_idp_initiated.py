"""IdP-initiated login: the idp_initiated_login JWT is verified (signature from the JWKS cache,
exact iss, aud, exp) before it becomes an SP-initiated login; relay_state survives only as a
safe relative path."""

from __future__ import annotations

from typing import Any

import pytest

from rpkit.jwks import JWKSCache
from rpkit.testing import Tamper
from rpkit_scalekit.errors import IdPInitiatedLoginError
from rpkit_scalekit.idp_initiated import IdPInitiatedVerifier
from rpkit_scalekit.provider import documented_metadata, scalekit

from .conftest import CLIENT_ID, CLIENT_SECRET, ENV

CONFIG = scalekit(ENV, CLIENT_ID, CLIENT_SECRET)
METADATA = documented_metadata(CONFIG)


@pytest.fixture
def verifier(http, clock) -> IdPInitiatedVerifier:
    return IdPInitiatedVerifier(JWKSCache(http), clock=clock)


def claims(minter, **changes: Any) -> dict[str, Any]:
    now = minter.now()
    base = {
        "iss": ENV,
        "aud": [CLIENT_ID],
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "connection_id": "conn_1",
        "organization_id": "org_1",
        "login_hint": "ada@example.com",
        "relay_state": "/reports?year=2026",
    }
    return {name: value for name, value in (base | changes).items() if value is not None}


async def verify(verifier, token: str):
    return await verifier.verify(token, config=CONFIG, metadata=METADATA)


def only_keys_were_fetched(mock) -> bool:
    return all(call.request.url.path == "/keys" for call in mock.calls)


async def test_a_valid_token_becomes_an_sp_initiated_route(verifier, minter, keys_route, mock):
    login = await verify(verifier, minter.sign(claims(minter)))

    assert login.route.kind == "connection"
    assert login.route.reason == "idp_initiated"
    assert login.route.params() == {
        "connection_id": "conn_1",
        "organization_id": "org_1",
        "login_hint": "ada@example.com",
    }
    assert login.return_to == "/reports?year=2026"
    assert login.claims["connection_id"] == "conn_1"
    assert keys_route.call_count == 1
    assert only_keys_were_fetched(mock)


async def test_an_organization_only_token_routes_to_the_organization(verifier, minter, keys_route):
    token = minter.sign(claims(minter, connection_id=None, login_hint=None))

    login = await verify(verifier, token)

    assert (login.route.kind, login.route.organization_id) == ("organization", "org_1")


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (Tamper.BAD_SIGNATURE, {"signature"}),
        (Tamper.UNKNOWN_KEY, {"key"}),
        # joserfc already refuses an embedded key while parsing; either way it is never used.
        (Tamper.HEADER_JWK, {"signature", "malformed"}),
        (Tamper.HEADER_JKU, {"signature"}),
    ],
)
@pytest.mark.usefixtures("keys_route")
async def test_a_bad_signature_is_refused(verifier, minter, mock, tamper, reason):
    token = minter.sign(claims(minter), tamper=tamper)

    with pytest.raises(IdPInitiatedLoginError) as caught:
        await verify(verifier, token)

    assert caught.value.reason in reason
    assert only_keys_were_fetched(mock)


@pytest.mark.parametrize("tamper", [Tamper.ALG_NONE, Tamper.HS256_PUBLIC_KEY])
async def test_other_algorithms_are_refused_before_any_key_is_fetched(
    verifier, minter, keys_route, mock, tamper
):
    token = minter.sign(claims(minter), tamper=tamper)

    with pytest.raises(IdPInitiatedLoginError) as caught:
        await verify(verifier, token)

    assert caught.value.reason == "alg"
    assert len(mock.calls) == 0


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://evil.example"}, "iss"),
        ({"iss": ENV + "/"}, "iss"),
        ({"iss": None}, "iss"),
        ({"aud": ["someone_else"]}, "aud"),
        ({"aud": None}, "aud"),
        ({"exp": None}, "exp"),
        ({"exp": "tomorrow"}, "exp"),
        ({"iat": 10**10}, "iat"),
        ({"nbf": 10**10}, "nbf"),
    ],
)
@pytest.mark.usefixtures("keys_route")
async def test_claims_are_checked(verifier, minter, mock, changes, reason):
    token = minter.sign(claims(minter, **changes))

    with pytest.raises(IdPInitiatedLoginError) as caught:
        await verify(verifier, token)

    assert caught.value.reason == reason
    assert only_keys_were_fetched(mock)


async def test_expiry_allows_the_configured_leeway_and_no_more(verifier, minter, keys_route):
    recent = minter.sign(claims(minter, exp=minter.now() - 30))
    expired = minter.sign(claims(minter, exp=minter.now() - 61))

    await verify(verifier, recent)
    with pytest.raises(IdPInitiatedLoginError) as caught:
        await verify(verifier, expired)

    assert caught.value.reason == "exp"


async def test_a_configured_audience_replaces_the_client_id(verifier, minter, keys_route):
    token = minter.sign(claims(minter, aud="skc_other"))

    login = await verifier.verify(token, config=CONFIG, metadata=METADATA, audience=("skc_other",))

    assert login.route.connection_id == "conn_1"


async def test_an_id_token_of_the_same_issuer_is_not_an_idp_initiated_login(
    verifier, minter, keys_route
):
    id_token = minter.mint_id_token(audience=CLIENT_ID, subject="usr_1", claims={"oid": "org_1"})

    with pytest.raises(IdPInitiatedLoginError) as caught:
        await verify(verifier, id_token)

    assert caught.value.reason == "claims"


@pytest.mark.parametrize(
    "changes",
    [{"login_hint": "not an email", "connection_id": None}, {"connection_id": ["conn_1"]}],
)
async def test_malformed_routing_claims_are_refused(verifier, minter, keys_route, changes):
    with pytest.raises(IdPInitiatedLoginError) as caught:
        await verify(verifier, minter.sign(claims(minter, **changes)))

    assert caught.value.reason == "claims"


@pytest.mark.parametrize(
    "relay_state",
    [
        "https://evil.example/steal",
        "//evil.example",
        "/\\evil.example",
        "%2F%2Fevil.example",
        "javascript:alert(1)",
        "/ok\r\nSet-Cookie: x=1",
    ],
)
async def test_an_unsafe_relay_state_is_dropped(verifier, minter, keys_route, relay_state):
    login = await verify(verifier, minter.sign(claims(minter, relay_state=relay_state)))

    assert login.return_to is None
    assert login.route.connection_id == "conn_1"


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b.c", "a.b.c.d.e", "é.é.é", "x" * 9000],
    ids=["empty", "one_part", "garbage", "five_parts", "non_ascii", "too_long"],
)
async def test_malformed_tokens_are_refused_without_any_request(verifier, mock, token):
    with pytest.raises(IdPInitiatedLoginError) as caught:
        await verify(verifier, token)

    assert caught.value.reason == "malformed"
    assert len(mock.calls) == 0


async def test_a_jwe_is_refused(verifier, minter, mock):
    token = minter.sign(claims(minter), tamper=Tamper.JWE)

    with pytest.raises(IdPInitiatedLoginError):
        await verify(verifier, token)

    assert len(mock.calls) == 0
