"""RFC 9728 metadata of a DPoP-protected resource: ``OIDCBearerAuth(resource=..., dpop=...)``.

The document's DPoP members (RFC 9728 §2) come from the bearer config, never from the
``ProtectedResource``: ``dpop_signing_alg_values_supported`` is the ``DPoPPolicy``'s algorithms
when DPoP is allowed or required, ``dpop_bound_access_tokens_required`` is ``true`` when it is
required, and ``bearer_methods_supported`` stays ``["header"]``. A client that picks an advertised
algorithm is served; one that picks another is refused before any key lookup. The OpenAPI
security scheme says the same.
"""

from __future__ import annotations

import json
import secrets
import time
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from rpkit.access_token import AccessTokenPolicy
from rpkit.dpop_verify import DEFAULT_DPOP_ALGORITHMS, DPoPPolicy, access_token_hash
from rpkit.litestar import OIDCBearerAuth, ProtectedResource
from rpkit.testing import DEFAULT_CLIENT_ID, FakeOP, FakeOPTransport

pytestmark = [pytest.mark.authz, pytest.mark.par_dpop]

HOST = "https://api.rpkit.test"
RESOURCE = f"{HOST}/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource/mcp"
KEYS: dict[str, Callable[[], Any]] = {
    "ES256": lambda: ECKey.generate_key("P-256"),
    "ES384": lambda: ECKey.generate_key("P-384"),
    "PS256": lambda: RSAKey.generate_key(2048),
    "RS256": lambda: RSAKey.generate_key(2048),
    "EdDSA": lambda: OKPKey.generate_key("Ed25519"),
    "Ed25519": lambda: OKPKey.generate_key("Ed25519"),
}
"""A key a client could sign a proof with under each algorithm."""

calls: list[str] = []


@get("/mcp")
async def tools() -> list[str]:
    calls.append("tools")
    return ["greet"]


@pytest.fixture(autouse=True)
def no_calls() -> None:
    calls.clear()


def resource_for(op: FakeOP) -> ProtectedResource:
    return ProtectedResource(
        resource=RESOURCE, authorization_servers=(op.issuer,), scopes_supported=("mcp:tools",)
    )


def auth_for(op: FakeOP, http: httpx.AsyncClient, **config: Any) -> OIDCBearerAuth:
    policy = AccessTokenPolicy(
        issuers=(op.issuer,), jwks_uri=op.endpoints["jwks"], audience=(RESOURCE,)
    )
    return OIDCBearerAuth(
        policies=[policy], http=http, realm="mcp", resource=resource_for(op), **config
    )


@asynccontextmanager
async def api(op: FakeOP, **config: Any) -> AsyncIterator[AsyncTestClient[Litestar]]:
    http = httpx.AsyncClient(transport=FakeOPTransport(op), timeout=5.0)
    auth = auth_for(op, http, **config)
    app = Litestar([tools], on_app_init=[auth.on_app_init])
    async with http, AsyncTestClient(app, base_url=HOST) as client:
        yield client


def bound_token(op: FakeOP, key: Any) -> str:
    return op.minter.mint_access_token(
        subject="alice",
        client_id=DEFAULT_CLIENT_ID,
        audience=RESOURCE,
        scope="mcp:tools",
        claims={"cnf": {"jkt": key.thumbprint()}},
    )


def dpop_request(op: FakeOP, alg: str) -> list[tuple[str, str]]:
    """``Authorization: DPoP`` with a token bound to a fresh ``alg`` key and its proof for
    ``GET /mcp``, as a client makes them (RFC 9449 §4.2, §7.1)."""
    key = KEYS[alg]()
    token = bound_token(op, key)
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False)}
    claims = {
        "jti": secrets.token_urlsafe(16),
        "htm": "GET",
        "htu": RESOURCE,
        "iat": int(time.time()),
        "ath": access_token_hash(token),
    }
    with warnings.catch_warnings():  # joserfc marks "EdDSA" deprecated in favour of "Ed25519"
        warnings.simplefilter("ignore")
        proof = jws.serialize_compact(header, json.dumps(claims).encode(), key, algorithms=[alg])
    return [("Authorization", f"DPoP {token}"), ("DPoP", proof)]


# -- the document --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "dpop_members"),
    [
        ("off", {}),
        ("allowed", {"dpop_signing_alg_values_supported": list(DEFAULT_DPOP_ALGORITHMS)}),
        (
            "required",
            {
                "dpop_signing_alg_values_supported": list(DEFAULT_DPOP_ALGORITHMS),
                "dpop_bound_access_tokens_required": True,
            },
        ),
    ],
)
async def test_the_document_publishes_the_dpop_members_of_the_bearer_config(
    fake_op: FakeOP, mode: str, dpop_members: dict[str, Any]
) -> None:
    async with api(fake_op, dpop=mode) as client:
        response = await client.get(METADATA_PATH)

    assert response.status_code == 200
    assert response.json() == {
        "resource": RESOURCE,
        "authorization_servers": [fake_op.issuer],
        "scopes_supported": ["mcp:tools"],
        "bearer_methods_supported": ["header"],
        **dpop_members,
    }


async def test_the_advertised_algorithms_are_the_dpop_policy_s(fake_op: FakeOP) -> None:
    policy = DPoPPolicy(algorithms=("ES384", "PS256"))
    async with api(fake_op, dpop="required", dpop_policy=policy) as client:
        document = (await client.get(METADATA_PATH)).json()
        challenge = (await client.get("/mcp")).headers["www-authenticate"]

    assert document["dpop_signing_alg_values_supported"] == ["ES384", "PS256"]
    assert document["dpop_bound_access_tokens_required"] is True
    assert 'algs="ES384 PS256"' in challenge  # the 401 names what the document names


async def test_a_config_mounted_as_middleware_gives_the_same_document(fake_op: FakeOP) -> None:
    """Mounted through ``middleware=[auth.middleware]`` instead of ``on_app_init``, the config
    hands out the document handlers itself, DPoP members included, so nobody restates them."""
    http = httpx.AsyncClient(transport=FakeOPTransport(fake_op), timeout=5.0)
    auth = auth_for(fake_op, http, dpop="allowed", dpop_policy=DPoPPolicy(algorithms=("ES256",)))
    app = Litestar([tools, *auth.resource_handlers()], middleware=[auth.middleware])
    async with http, AsyncTestClient(app, base_url=HOST) as client:
        document = (await client.get(METADATA_PATH)).json()

    assert document["dpop_signing_alg_values_supported"] == ["ES256"]
    assert "dpop_bound_access_tokens_required" not in document


# -- what the document advertises is what the API accepts ----------------------------------------


@pytest.mark.parametrize("mode", ["allowed", "required"])
async def test_a_proof_under_each_advertised_algorithm_is_accepted(
    fake_op: FakeOP, mode: str
) -> None:
    async with api(fake_op, dpop=mode) as client:
        advertised = (await client.get(METADATA_PATH)).json()["dpop_signing_alg_values_supported"]
        statuses = {
            alg: (await client.get("/mcp", headers=dpop_request(fake_op, alg))).status_code
            for alg in advertised
        }

    assert set(advertised) <= set(KEYS)  # every advertised one was tried
    assert statuses == dict.fromkeys(advertised, 200)
    assert calls == ["tools"] * len(advertised)


@pytest.mark.parametrize("mode", ["allowed", "required"])
async def test_a_proof_under_an_algorithm_not_advertised_is_refused(
    fake_op: FakeOP, mode: str
) -> None:
    policy = DPoPPolicy(algorithms=("ES384", "PS256"))
    async with api(fake_op, dpop=mode, dpop_policy=policy) as client:
        advertised = (await client.get(METADATA_PATH)).json()["dpop_signing_alg_values_supported"]
        accepted = await client.get("/mcp", headers=dpop_request(fake_op, "ES384"))
        refused = await client.get("/mcp", headers=dpop_request(fake_op, "ES256"))

    assert "ES256" not in advertised
    assert accepted.status_code == 200
    assert refused.status_code == 401
    assert refused.json()["code"] == "dpop_proof_invalid"
    challenge = refused.headers["www-authenticate"]
    assert 'error="invalid_dpop_proof"' in challenge
    assert f'algs="{" ".join(advertised)}"' in challenge
    assert calls == ["tools"]  # the refused request reached no handler
    assert fake_op.oracle.count("jwks") == 1  # the warm-up: a bad proof costs no key lookup


# -- the OpenAPI security scheme -----------------------------------------------------------------


async def schemes(op: FakeOP, **config: Any) -> dict[str, Any]:
    async with api(op, exclude="^/schema", **config) as client:
        schema = (await client.get("/schema/openapi.json")).json()
    found: dict[str, Any] = schema["components"]["securitySchemes"]
    assert schema["security"] == [{"BearerToken": []}]
    return found


async def test_the_openapi_scheme_is_bearer_without_dpop(fake_op: FakeOP) -> None:
    scheme = (await schemes(fake_op))["BearerToken"]

    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert scheme["bearerFormat"] == "JWT"
    assert "DPoP" not in scheme["description"]


async def test_the_openapi_scheme_names_dpop_when_allowed(fake_op: FakeOP) -> None:
    policy = DPoPPolicy(algorithms=("ES256", "PS256"))
    scheme = (await schemes(fake_op, dpop="allowed", dpop_policy=policy))["BearerToken"]

    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert "Authorization: DPoP <token>" in scheme["description"]
    assert "proof algorithms: ES256, PS256." in scheme["description"]


async def test_the_openapi_scheme_is_dpop_when_required(fake_op: FakeOP) -> None:
    scheme = (await schemes(fake_op, dpop="required"))["BearerToken"]

    assert (scheme["type"], scheme["scheme"]) == ("http", "DPoP")
    assert "bearerFormat" not in scheme
    assert f"proof algorithms: {', '.join(DEFAULT_DPOP_ALGORITHMS)}." in scheme["description"]
