"""A Litestar API protected by ``OIDCBearerAuth``: what it accepts, and how it refuses.

Tokens are the fake OP's RFC 9068 access tokens; the app fetches the OP's keys in-process through
``fake_op.transport()``. Every refusal is checked for its status, its RFC 6750 challenge and its
RFC 9457 body, and no refusal echoes the token.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, Response, get
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from rpkit import _jwt
from rpkit.access_token import AccessToken, AccessTokenPolicy
from rpkit.errors import ConfigurationError
from rpkit.id_token import TokenValidator
from rpkit.litestar._bearer_middleware import OIDCBearerMiddleware
from rpkit.litestar._dpop import DPoPGate
from rpkit.litestar.bearer import BearerError, OIDCBearerAuth, requires_scopes
from rpkit.testing import DEFAULT_CLIENT_ID, Canned, FakeOP, FakeOPTransport, Tamper
from rpkit.testing.server import ServerThread, bind_loopback
from tests.core.test_access_token_cache import CountingVerifier

API = "https://api.rpkit.test"
REALM = "orders-api"
CHALLENGE = f'Bearer realm="{REALM}"'


@get("/me")
async def me(request: Request[Any, AccessToken, Any]) -> dict[str, Any]:
    return {
        "sub": request.auth.sub,
        "iss": request.auth.iss,
        "user_is_token": request.user is request.auth,
        "user": request.user if isinstance(request.user, dict) else None,
    }


@get("/orders", guards=[requires_scopes("orders:read")])
async def orders() -> list[str]:
    return ["order-1"]


@get("/orders/admin", guards=[requires_scopes("orders:read", "orders:write")])
async def admin() -> list[str]:
    return []


@get("/health", exclude_from_auth=True)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/public/guarded", guards=[requires_scopes("orders:read")])
async def guarded_but_public() -> list[str]:
    return []


HANDLERS = [me, orders, admin, health, guarded_but_public]


def policy_for(op: FakeOP, **changes: Any) -> AccessTokenPolicy:
    settings: dict[str, Any] = {
        "issuers": (op.issuer,),
        "jwks_uri": op.endpoints["jwks"],
        "audience": (API,),
    }
    return AccessTokenPolicy(**(settings | changes))


def mint(op: FakeOP, scope: str = "orders:read profile", **options: Any) -> str:
    options.setdefault("audience", API)
    return op.minter.mint_access_token(
        subject="alice", client_id=DEFAULT_CLIENT_ID, scope=scope, **options
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def api(
    *ops: FakeOP, policies: list[AccessTokenPolicy] | None = None, **config: Any
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The API with its own in-process client to the OPs; the lifespan runs (and warms)."""
    http = httpx.AsyncClient(transport=FakeOPTransport(*ops), timeout=5.0)
    auth = OIDCBearerAuth(
        policies=policies or [policy_for(op) for op in ops],
        http=http,
        realm=REALM,
        exclude=["^/schema", "^/public/"],
        **config,
    )
    app = Litestar(HANDLERS, on_app_init=[auth.on_app_init])
    async with http, AsyncTestClient(app) as client:
        yield client


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"https://rpkit.dev/errors/{code}"
    assert body["title"]
    assert body["detail"]
    return dict(body)


def assert_invalid_token(response: httpx.Response, token: str) -> None:
    assert_problem(response, 401, "access_token_invalid")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(f'{CHALLENGE}, error="invalid_token", error_description="')
    assert token not in response.text
    signature = token.rsplit(".", maxsplit=1)[-1]
    assert not signature or signature not in challenge + response.text


# -- accepted ------------------------------------------------------------------------------------


async def claims_answer(op: FakeOP, token: str, **app_options: Any) -> httpx.Response:
    """What a handler returning ``request.auth.claims`` answers, in an app of its own (Litestar
    keeps a handler's resolved encoders: one handler object per app)."""

    @get("/claims")
    async def claims(request: Request[Any, AccessToken, Any]) -> Any:
        return request.auth.claims  # read-only mappings, deeply

    http = httpx.AsyncClient(transport=FakeOPTransport(op), timeout=5.0)
    auth = OIDCBearerAuth(policies=[policy_for(op)], http=http, realm=REALM)
    app = Litestar([claims], on_app_init=[auth.on_app_init], **app_options)
    async with http, AsyncTestClient(app) as client:
        return await client.get("/claims", headers=bearer(token))


async def test_a_handler_may_return_the_tokens_read_only_claims_as_json(fake_op: FakeOP) -> None:
    nested = {"address": {"country": "UK", "lines": ["1 Main St"]}, "groups": ["staff"]}
    token = mint(fake_op, claims=nested)

    response = await claims_answer(fake_op, token)

    assert response.status_code == 200
    assert {k: response.json()[k] for k in nested} == nested
    assert response.json()["sub"] == "alice"


async def test_an_apps_own_encoder_for_read_only_mappings_wins(fake_op: FakeOP) -> None:
    token = mint(fake_op, claims={"groups": ["staff"]})

    response = await claims_answer(fake_op, token, type_encoders={MappingProxyType: sorted})

    payload = token.split(".")[1]
    names = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert response.status_code == 200
    assert response.json() == sorted(names)  # the app's encoder: the claim names, sorted


async def test_a_valid_token_is_accepted_and_becomes_user_and_auth(fake_op: FakeOP) -> None:
    async with api(fake_op) as client:
        response = await client.get("/me", headers=bearer(mint(fake_op)))

    assert response.status_code == 200
    assert response.json() == {
        "sub": "alice",
        "iss": fake_op.issuer,
        "user_is_token": True,
        "user": None,
    }


async def test_a_token_seen_again_is_served_from_the_cache_without_a_second_verification(
    fake_op: FakeOP, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The middleware looks the header's bytes up in the verified-token cache: the same token
    again (any spelling of the scheme) is not verified again; other bytes, such as the token
    followed by a non-ASCII byte, are not taken for it."""
    verifications = CountingVerifier(_jwt.Compact.verify)
    monkeypatch.setattr(_jwt.Compact, "verify", verifications)
    decoded: list[str | bytes] = []  # tokens that missed the cache and were parsed
    validate = TokenValidator._access

    def counted(self: TokenValidator, token: str | bytes, *args: Any) -> Any:
        decoded.append(token)
        return validate(self, token, *args)

    monkeypatch.setattr(TokenValidator, "_access", counted)
    token = mint(fake_op)
    async with api(fake_op) as client:
        first = await client.get("/me", headers=bearer(token))
        parsed_first = list(decoded)  # twice: once more after waiting for the key's selection
        again = await client.get("/me", headers={"Authorization": f"bEaReR  {token} "})
        parsed_again = decoded[len(parsed_first) :]
        suffixed = await client.get(
            "/me", headers=[(b"authorization", b"Bearer " + token.encode() + b"\xe9")]
        )
        parsed_suffixed = decoded[len(parsed_first) :]

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["sub"] == "alice"
    assert verifications.calls == 1
    assert parsed_first
    assert set(parsed_first) == {token.encode()}
    assert parsed_again == []  # the cached token was not parsed again
    assert len(parsed_suffixed) == 1  # the suffixed one was (and refused)
    assert parsed_suffixed[0] != token.encode()
    assert bytes(parsed_suffixed[0]).startswith(token.encode())
    assert_invalid_token(suffixed, token)


@pytest.mark.parametrize("cache_size", [10, 0], ids=["cache", "no-cache"])
async def test_the_steady_state_lane_answers_as_the_full_parse_and_serves_only_the_plain_form(
    fake_op: FakeOP, monkeypatch: pytest.MonkeyPatch, cache_size: int
) -> None:
    """The middleware answers ``Authorization: Bearer <token>`` in one pass, without the full
    parse of the credentials (from the cache, or validated at once with the cache off); every
    other spelling goes through the full parse. Each request is answered exactly as with the
    lane turned off."""
    token, dpop_bound = mint(fake_op), mint(fake_op, claims={"cnf": {"jkt": "x" * 43}})
    plain = [(b"authorization", b"Bearer " + token.encode())]
    variants: dict[str, list[tuple[bytes, bytes]]] = {
        "plain": plain,
        "lower-case scheme": [(b"authorization", b"bearer " + token.encode())],
        "two spaces": [(b"authorization", b"Bearer  " + token.encode())],
        "trailing space": [(b"authorization", b"Bearer " + token.encode() + b" ")],
        "comma": [(b"authorization", b"Bearer " + token.encode() + b",Bearer x")],
        "two headers": plain + plain,
        "with a DPoP header": [*plain, (b"dpop", b"x.y.z")],
        "empty": [(b"authorization", b"Bearer ")],
        "another token": [(b"authorization", b"Bearer " + mint(fake_op).encode())],
        "bad signature": [
            (b"authorization", b"Bearer " + mint(fake_op, tamper=Tamper.BAD_SIGNATURE).encode())
        ],
        "non-ASCII": [(b"authorization", b"Bearer " + token.encode() + b"\xe9")],
        "DPoP-bound, as Bearer": [(b"authorization", b"Bearer " + dpop_bound.encode())],
        "Basic": [(b"authorization", b"Basic YWxpY2U6c2VjcmV0")],
    }
    parses: list[str] = []
    credentials = DPoPGate.credentials

    def counted(self: DPoPGate, scope: Any) -> Any:
        parses.append(scope["path"])
        return credentials(self, scope)

    monkeypatch.setattr(DPoPGate, "credentials", counted)

    async def answers() -> dict[str, tuple[int, str, str | None]]:
        seen = {}
        async with api(fake_op, token_cache_size=cache_size) as client:
            for _ in range(2):  # the second round finds the accepted tokens in the cache
                for name, headers in variants.items():
                    response = await client.get("/me", headers=headers)
                    seen[name] = (
                        response.status_code,
                        response.text,
                        response.headers.get("www-authenticate"),
                    )
        return seen

    with_lane = await answers()
    parsed_with_lane = len(parses)
    monkeypatch.setattr(
        OIDCBearerMiddleware, "_authenticate", OIDCBearerMiddleware._presented
    )  # the full parse alone
    parses.clear()
    without_lane = await answers()

    assert with_lane == without_lane
    assert with_lane["plain"][0] == 200
    assert [name for name, answer in with_lane.items() if answer[0] == 200] == [
        "plain",
        "lower-case scheme",
        "two spaces",
        "trailing space",
        "with a DPoP header",  # ignored: DPoP is off
        "another token",
    ]
    assert with_lane["DPoP-bound, as Bearer"][0] == 401
    # The lane took the plain spellings of a token: the accepted ones, and the refused ones
    # (bad signature, non-ASCII, DPoP-bound).
    assert len(parses) - parsed_with_lane == 2 * 5


async def test_the_scheme_name_is_case_insensitive(fake_op: FakeOP) -> None:
    async with api(fake_op) as client:
        response = await client.get("/me", headers={"Authorization": f"bearer {mint(fake_op)}"})

    assert response.status_code == 200


async def test_steady_state_requests_fetch_the_keys_once(fake_op: FakeOP) -> None:
    token = mint(fake_op)
    async with api(fake_op) as client:
        for _ in range(20):
            assert (await client.get("/me", headers=bearer(token))).status_code == 200

    assert fake_op.oracle.count("jwks") == 1


async def test_a_token_granting_the_routes_scope_passes_its_guard(fake_op: FakeOP) -> None:
    async with api(fake_op) as client:
        response = await client.get("/orders", headers=bearer(mint(fake_op)))

    assert response.status_code == 200
    assert response.json() == ["order-1"]


async def test_retrieve_user_handler_maps_the_token_to_the_user(fake_op: FakeOP) -> None:
    def lookup(token: AccessToken, _: object) -> dict[str, str]:
        return {"name": token.sub.title()}

    async with api(fake_op, retrieve_user_handler=lookup) as client:
        response = await client.get("/me", headers=bearer(mint(fake_op)))

    assert response.status_code == 200
    assert response.json()["user"] == {"name": "Alice"}
    assert response.json()["sub"] == "alice"


async def test_a_user_the_handler_does_not_know_is_refused(fake_op: FakeOP) -> None:
    async def nobody(token: AccessToken, _: object) -> None:
        return None

    token = mint(fake_op)
    async with api(fake_op, retrieve_user_handler=nobody) as client:
        response = await client.get("/me", headers=bearer(token))

    assert_invalid_token(response, token)


# -- no usable credentials -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic YWxpY2U6c2VjcmV0"}, {"Authorization": "Bearertoken"}],
    ids=["no-header", "basic-scheme", "no-space-after-scheme"],
)
async def test_a_request_without_bearer_credentials_gets_a_bare_challenge(
    fake_op: FakeOP, headers: dict[str, str]
) -> None:
    async with api(fake_op) as client:
        response = await client.get("/me", headers=headers)

    assert_problem(response, 401, "access_token_missing")
    assert response.headers["www-authenticate"] == CHALLENGE  # no error code (RFC 6750 §3.1)


async def test_a_token_in_the_query_string_is_ignored(fake_op: FakeOP) -> None:
    token = mint(fake_op)
    async with api(fake_op) as client:
        response = await client.get("/me", params={"access_token": token})

    assert_problem(response, 401, "access_token_missing")
    assert response.headers["www-authenticate"] == CHALLENGE
    assert token not in response.text


async def test_the_bearer_scheme_without_a_token_is_an_invalid_token(fake_op: FakeOP) -> None:
    async with api(fake_op) as client:
        response = await client.get("/me", headers={"Authorization": "Bearer "})

    assert_problem(response, 401, "access_token_invalid")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_two_authorization_headers_are_an_invalid_request(fake_op: FakeOP) -> None:
    # Litestar's test client merges repeated headers, so this one goes through a real server.
    token = mint(fake_op)
    http = httpx.AsyncClient(transport=fake_op.transport())
    auth = OIDCBearerAuth(policies=[policy_for(fake_op)], http=http, realm=REALM)
    server = ServerThread(Litestar(HANDLERS, on_app_init=[auth.on_app_init]), bind_loopback())
    server.start()
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer other")]
    try:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
            response = await client.get("/me", headers=headers)
            alone = await client.get("/me", headers=headers[:1])
    finally:
        server.stop()
        await http.aclose()

    assert_problem(response, 400, "access_token_ambiguous")
    assert response.headers["www-authenticate"].startswith(f'{CHALLENGE}, error="invalid_request"')
    assert token not in response.text
    assert alone.status_code == 200


# -- invalid tokens ------------------------------------------------------------------------------


def _expired(op: FakeOP) -> str:
    return mint(op, lifetime=-3600)


def _wrong_audience(op: FakeOP) -> str:
    return mint(op, audience="https://other-api.rpkit.test")


def _tampered(tamper: Tamper) -> Any:
    return lambda op: mint(op, tamper=tamper)


def _logout_typed(op: FakeOP) -> str:
    return mint(op, typ="logout+jwt")


def _id_token(op: FakeOP) -> str:
    return op.minter.mint_id_token(audience=API, subject="alice")


def _garbage(_: FakeOP) -> str:
    return "not-a-jwt"


INVALID = {
    "expired": (_expired, "expired"),
    "wrong-audience": (_wrong_audience, "not meant for this API"),
    "bad-signature": (_tampered(Tamper.BAD_SIGNATURE), "signature does not verify"),
    "alg-none": (_tampered(Tamper.ALG_NONE), "algorithm"),
    "hs256-with-public-key": (_tampered(Tamper.HS256_PUBLIC_KEY), "algorithm"),
    "unknown-kid": (_tampered(Tamper.UNKNOWN_KEY), "No trusted key"),
    "header-jwk": (_tampered(Tamper.HEADER_JWK), "signature does not verify"),
    "jwe": (_tampered(Tamper.JWE), "Encrypted"),
    "typ-logout+jwt": (_logout_typed, "type (typ)"),
    "id-token": (_id_token, "type (typ)"),
    "not-a-jwt": (_garbage, "well-formed"),
}


@pytest.mark.parametrize(("make", "described"), INVALID.values(), ids=INVALID.keys())
async def test_an_invalid_token_is_refused_with_invalid_token(
    fake_op: FakeOP, make: Any, described: str
) -> None:
    token = make(fake_op)
    async with api(fake_op, policies=[policy_for(fake_op, accepted_types=("at+jwt",))]) as client:
        response = await client.get("/me", headers=bearer(token))

    assert_invalid_token(response, token)
    assert described in response.json()["detail"]
    assert described in response.headers["www-authenticate"]


async def test_a_token_from_an_unlisted_issuer_is_refused_before_any_key_lookup(
    fake_op: FakeOP,
) -> None:
    stranger = FakeOP("https://stranger.rpkit.test")
    token = mint(stranger)
    async with api(fake_op, stranger, policies=[policy_for(fake_op)]) as client:
        before = fake_op.oracle.count("jwks")
        response = await client.get("/me", headers=bearer(token))

    assert_invalid_token(response, token)
    assert "issuer" in response.json()["detail"]
    assert fake_op.oracle.count("jwks") == before
    assert stranger.oracle.count("jwks") == 0


# -- several issuers -----------------------------------------------------------------------------


async def test_two_issuers_are_each_accepted_by_their_own_policy(fake_op: FakeOP) -> None:
    partner = FakeOP("https://partner.rpkit.test")
    async with api(fake_op, partner) as client:
        ours = await client.get("/me", headers=bearer(mint(fake_op)))
        theirs = await client.get("/me", headers=bearer(mint(partner)))

    assert (ours.status_code, ours.json()["iss"]) == (200, fake_op.issuer)
    assert (theirs.status_code, theirs.json()["iss"]) == (200, partner.issuer)


async def test_a_token_is_checked_only_with_the_keys_of_the_issuer_it_names(
    fake_op: FakeOP,
) -> None:
    partner = FakeOP("https://partner.rpkit.test")
    # Signed with our OP's key, but claiming to come from the partner: the partner's keys decide.
    forged = mint(fake_op, claims={"iss": partner.issuer})
    async with api(fake_op, partner) as client:
        response = await client.get("/me", headers=bearer(forged))

    assert_invalid_token(response, forged)
    assert "No trusted key" in response.json()["detail"]


def test_an_issuer_listed_in_two_policies_is_refused(fake_op: FakeOP) -> None:
    with pytest.raises(ConfigurationError, match="two policies"):
        OIDCBearerAuth(policies=[policy_for(fake_op), policy_for(fake_op, audience=("x",))])


def test_a_config_without_policies_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least one"):
        OIDCBearerAuth(policies=[])


def test_a_realm_or_scope_that_cannot_be_quoted_is_refused(fake_op: FakeOP) -> None:
    with pytest.raises(ConfigurationError, match="realm"):
        OIDCBearerAuth(policies=[policy_for(fake_op)], realm='a"b')
    with pytest.raises(ConfigurationError, match="scope tokens"):
        OIDCBearerAuth(policies=[policy_for(fake_op, required_scopes=('a"b',))])


# -- scopes --------------------------------------------------------------------------------------


async def test_a_missing_route_scope_is_forbidden_with_insufficient_scope(
    fake_op: FakeOP,
) -> None:
    token = mint(fake_op, scope="orders:read")
    async with api(fake_op) as client:
        response = await client.get("/orders/admin", headers=bearer(token))

    body = assert_problem(response, 403, "insufficient_scope")
    assert response.headers["www-authenticate"] == (
        f'{CHALLENGE}, error="insufficient_scope", error_description="{body["detail"]}", '
        'scope="orders:read orders:write"'
    )
    assert token not in response.text


async def test_a_missing_policy_scope_is_forbidden_by_the_middleware(fake_op: FakeOP) -> None:
    policy = policy_for(fake_op, required_scopes=("orders:read", "api"))
    async with api(fake_op, policies=[policy]) as client:
        response = await client.get("/me", headers=bearer(mint(fake_op, scope="orders:read")))

    assert_problem(response, 403, "insufficient_scope")
    assert response.headers["www-authenticate"].endswith('scope="orders:read api"')


async def test_a_scope_guard_without_a_bearer_token_asks_for_one(fake_op: FakeOP) -> None:
    async with api(fake_op) as client:
        response = await client.get("/public/guarded")

    assert_problem(response, 401, "access_token_missing")
    assert response.headers["www-authenticate"] == CHALLENGE


@pytest.mark.parametrize("scopes", [(), ("two words",), ('quo"te',)])
def test_requires_scopes_refuses_what_is_not_a_scope_token(scopes: tuple[str, ...]) -> None:
    with pytest.raises(ConfigurationError, match="scope tokens"):
        requires_scopes(*scopes)


# -- exclusions, OpenAPI, errors -----------------------------------------------------------------


async def test_excluded_routes_and_preflights_need_no_token(fake_op: FakeOP) -> None:
    async with api(fake_op) as client:
        by_opt = await client.get("/health")
        preflight = await client.options("/me")
        schema = await client.get("/schema/openapi.json")

    assert by_opt.status_code == 200
    assert preflight.status_code == 204
    assert schema.status_code == 200


async def test_the_openapi_schema_declares_the_bearer_scheme(fake_op: FakeOP) -> None:
    async with api(fake_op) as client:
        schema = (await client.get("/schema/openapi.json")).json()

    scheme = schema["components"]["securitySchemes"]["BearerToken"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "bearer"
    assert scheme["bearerFormat"] == "JWT"
    assert {"BearerToken": []} in schema["security"]


async def test_keys_that_cannot_be_fetched_answer_503_not_invalid_token(fake_op: FakeOP) -> None:
    fake_op.misbehave.respond = {"jwks": Canned.error(500)}
    async with api(fake_op) as client:
        response = await client.get("/me", headers=bearer(mint(fake_op)))

    assert_problem(response, 503, "jwks_unavailable")
    assert "www-authenticate" not in response.headers


async def test_the_applications_own_error_handler_wins(fake_op: FakeOP) -> None:
    def teapot(_: Request[Any, Any, Any], exc: BearerError) -> Response[str]:
        return Response(exc.code, status_code=418)

    http = httpx.AsyncClient(transport=fake_op.transport())
    auth = OIDCBearerAuth(policies=[policy_for(fake_op)], http=http)
    app = Litestar(
        HANDLERS, on_app_init=[auth.on_app_init], exception_handlers={BearerError: teapot}
    )
    async with http, AsyncTestClient(app) as client:
        response = await client.get("/me")

    assert (response.status_code, response.text) == (418, "access_token_missing")


async def test_no_refusal_puts_the_token_in_a_body_or_a_log(
    fake_op: FakeOP, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = [make(fake_op) for make, _ in INVALID.values()]
    tokens += [mint(FakeOP("https://stranger.rpkit.test")), mint(fake_op, scope="profile")]
    with capture_logs() as logs:
        async with api(fake_op) as client:
            bodies = [
                (await client.get(path, headers=bearer(token))).text
                for token in tokens
                for path in ("/me", "/orders")
            ]

    logged = json.dumps(logs, default=str) + caplog.text
    assert any(event["event"] == "rpkit.token.rejected" for event in logs)
    for token in tokens:
        secret_part = token.split(".")[-1] or token
        for text in (*bodies, logged):
            assert token not in text
            assert secret_part not in text


# -- the client's lifecycle ----------------------------------------------------------------------


async def test_without_a_client_the_lifespan_opens_one_warms_the_keys_and_closes_it(
    fake_op_server: FakeOP,
) -> None:
    op = fake_op_server
    auth = OIDCBearerAuth(policies=[policy_for(op)])
    app = Litestar(HANDLERS, on_app_init=[auth.on_app_init])

    async with AsyncTestClient(app) as client:
        assert op.oracle.count("jwks") == 1  # warmed at startup
        response = await client.get("/me", headers=bearer(mint(op)))

    assert response.status_code == 200
    assert op.oracle.count("jwks") == 1
    with pytest.raises(RuntimeError, match="no HTTP client"):
        auth.validator  # noqa: B018 - closed with the app


async def test_a_callers_client_is_left_open(fake_op: FakeOP) -> None:
    http = httpx.AsyncClient(transport=fake_op.transport())
    auth = OIDCBearerAuth(policies=[policy_for(fake_op)], http=http)
    async with AsyncTestClient(Litestar(HANDLERS, on_app_init=[auth.on_app_init])):
        pass

    assert not http.is_closed
    await http.aclose()
