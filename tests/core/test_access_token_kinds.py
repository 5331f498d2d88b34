"""An ID token is never accepted as an access token: one test per token shape seen at real OPs.

Each token is signed by the fake OP with the key its JWKS publishes and names the API's audience,
so only the kind check stands between it and the API. Refusals are ``reason="id_token"`` (HTTP
401 in the bearer integration), never ``scope`` (403). Access tokens of every shape the presets
and the Scalekit plugin meet still pass, including the ones labelled ``typ: JWT``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rpkit._jwt import Rejected
from rpkit.access_token import (
    ID_TOKEN_CLAIMS,
    RFC9068_TYPES,
    AccessTokenPolicy,
    check_access_token_claims,
)
from rpkit.errors import AccessTokenValidationError, ConfigurationError
from rpkit.id_token import AccessToken, TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.testing import DEFAULT_CLIENT_ID, FakeOP
from rpkit.testing.registry import TokenGrant

API = "https://api.rpkit.test"
CLIENT = DEFAULT_CLIENT_ID


@pytest.fixture
def validator(fake_op_http: httpx.AsyncClient) -> TokenValidator:
    return TokenValidator(JWKSCache(fake_op_http))


def policy_for(op: FakeOP, **changes: Any) -> AccessTokenPolicy:
    settings: dict[str, Any] = {
        "issuers": (op.issuer,),
        "jwks_uri": op.endpoints["jwks"],
        "audience": (API,),
    }
    return AccessTokenPolicy(**(settings | changes))


def base(op: FakeOP, **claims: Any) -> dict[str, Any]:
    """The registered claims every token here carries, naming the API; ``claims`` merged last."""
    now = op.now()
    registered = {"iss": op.issuer, "sub": "alice", "aud": [CLIENT, API], "iat": now}
    return registered | {"exp": now + 300} | claims


def signed(op: FakeOP, header_typ: str | None = "JWT", **claims: Any) -> str:
    """``base`` claims plus ``claims``, with header ``typ`` ``header_typ`` (None: no ``typ``)."""
    return op.minter.sign(base(op, **claims), header={"typ": header_typ})


async def accepted(validator: TokenValidator, token: str, policy: AccessTokenPolicy) -> AccessToken:
    return await validator.validate_access_token(token, policy)


async def refused(validator: TokenValidator, token: str, policy: AccessTokenPolicy) -> str:
    with pytest.raises(AccessTokenValidationError) as caught:
        await validator.validate_access_token(token, policy)
    return caught.value.reason


# -- ID tokens ---------------------------------------------------------------------------------


async def test_an_id_token_from_the_op_naming_the_api_is_refused(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    # The fake OP's own ID token (nonce, at_hash, auth_time, sid), with the API's audience added
    # as LemonLDAP::NG's "additional audiences" or a shared Entra app registration would.
    client, user = fake_op.clients[CLIENT], fake_op.users["alice"]
    access = fake_op.issue_access_token(client, user, "openid")
    grant = TokenGrant(CLIENT, user, "openid", fake_op.now(), "sid-1")
    fake_op.misbehave.id_token_claims = {"aud": [CLIENT, API]}
    id_token = fake_op.issue_id_token(client, grant, access, nonce="n-1", refreshing=False)

    assert await refused(validator, id_token, policy_for(fake_op)) == "id_token"


async def test_a_lemonldap_style_id_token_is_refused_on_an_api_requiring_no_scope(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    # LemonLDAP::NG 2.16: typ JWT, the API among the audiences, at_hash from the token endpoint,
    # no nonce (the client sent none), auth_time and acr as access tokens may carry too.
    token = signed(
        fake_op, azp=CLIENT, auth_time=fake_op.now(), acr="loa-2", at_hash="77QmUPtjPfzWtF2AnpK9RQ"
    )

    assert await refused(validator, token, policy_for(fake_op)) == "id_token"


@pytest.mark.parametrize("claim", ID_TOKEN_CLAIMS)
async def test_each_id_token_only_claim_alone_marks_an_id_token(
    fake_op: FakeOP, validator: TokenValidator, claim: str
) -> None:
    token = signed(fake_op, **{claim: "x"})

    assert await refused(validator, token, policy_for(fake_op)) == "id_token"


async def test_an_id_token_is_refused_as_such_before_its_missing_scope_is_noticed(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    token = fake_op.minter.mint_id_token(audience=[CLIENT, API], subject="alice", nonce="n-1")
    policy = policy_for(fake_op, required_scopes=("orders:read",))

    assert await refused(validator, token, policy) == "id_token"  # 401, not 403


@pytest.mark.parametrize("typ", ["ID", "Serialized-ID"])
async def test_a_keycloak_id_token_is_refused_by_its_payload_typ(
    fake_op: FakeOP, validator: TokenValidator, typ: str
) -> None:
    # No nonce, no at_hash (a refreshed Keycloak ID token): the declaration alone decides.
    token = signed(fake_op, typ=typ, azp=CLIENT, acr="1", sid="s-1", jti="j-1")

    assert await refused(validator, token, policy_for(fake_op)) == "id_token"


async def test_a_cognito_id_token_is_refused_by_its_token_use(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    # An API whose audience is the app client id, as Cognito ID tokens name it in aud.
    token = signed(fake_op, token_use="id", auth_time=fake_op.now(), **{"cognito:username": "a"})

    assert await refused(validator, token, policy_for(fake_op, audience=(CLIENT,))) == "id_token"


def test_an_access_token_declaration_does_not_outweigh_an_id_token_declaration(
    fake_op: FakeOP,
) -> None:
    claims = {**base(fake_op), "typ": "ID"}

    with pytest.raises(Rejected) as caught:
        check_access_token_claims(
            claims, policy_for(fake_op), fake_op.now(), header={"typ": "at+jwt"}
        )

    assert caught.value.reason == "id_token"


# -- access tokens that must keep passing ------------------------------------------------------


async def test_a_keycloak_access_token_is_accepted_even_with_the_nonce_keycloak_24_copied(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    # Keycloak before 25 put the authorization request's nonce in access tokens
    # (keycloak/keycloak#26893); its payload typ "Bearer" says what the token is.
    token = signed(
        fake_op,
        typ="Bearer",
        azp=CLIENT,
        nonce="n-1",
        scope="openid profile",
        auth_time=fake_op.now(),
        sid="s-1",
        realm_access={"roles": ["default-roles-rpkit"]},
    )

    assert (await accepted(validator, token, policy_for(fake_op))).client_id == CLIENT


async def test_a_cognito_access_token_is_accepted(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    now = fake_op.now()
    claims = {"iss": fake_op.issuer, "sub": "alice", "iat": now, "exp": now + 300}
    claims |= {"client_id": CLIENT, "token_use": "access", "scope": "openid", "auth_time": now}
    token = fake_op.minter.sign(claims, header={"typ": None})
    policy = policy_for(fake_op, audience=(CLIENT,), audience_claim="client_id")

    assert (await accepted(validator, token, policy)).claims["token_use"] == "access"


@pytest.mark.parametrize("require_rfc9068", [False, True], ids=["default", "require_rfc9068"])
async def test_an_rfc9068_access_token_is_accepted(
    fake_op: FakeOP, validator: TokenValidator, require_rfc9068: bool
) -> None:
    token = fake_op.minter.mint_access_token(
        subject="alice", audience=API, client_id=CLIENT, scope="orders:read"
    )
    policy = policy_for(fake_op, require_rfc9068=require_rfc9068)

    assert (await accepted(validator, token, policy)).scopes == {"orders:read"}


async def test_a_scalekit_shaped_access_token_labelled_jwt_is_accepted(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    # Scalekit's FSA access token: typ JWT, no nonce or at_hash, client_id, a scope string.
    token = signed(
        fake_op,
        aud=[API],
        client_id="skc_1",
        oid="org_1",
        sid="ses_1",
        jti="tkn_1",
        nbf=fake_op.now(),
        roles=["member"],
        permissions=[],
        scope="openid profile",
    )

    assert (await accepted(validator, token, policy_for(fake_op))).client_id == "skc_1"


async def test_a_scalekit_m2m_token_is_accepted(fake_op: FakeOP, validator: TokenValidator) -> None:
    token = signed(fake_op, aud=[API], sub="skc_1", client_id="skc_1", scopes=["orders:read"])

    assert (await accepted(validator, token, policy_for(fake_op))).scopes == {"orders:read"}


@pytest.mark.parametrize(
    "rights",
    [{"scp": "access_as_user"}, {"roles": ["Orders.Read"], "idtyp": "app"}],
    ids=["delegated", "app-only"],
)
async def test_entra_v2_access_tokens_labelled_jwt_are_accepted(
    fake_op: FakeOP, validator: TokenValidator, rights: dict[str, Any]
) -> None:
    token = signed(fake_op, aud=API, azp=CLIENT, azpacr="1", ver="2.0", **rights)

    assert (await accepted(validator, token, policy_for(fake_op))).client_id == CLIENT


# -- the RFC 9068 profile ----------------------------------------------------------------------


async def test_require_rfc9068_refuses_a_jwt_typed_token_without_client_id_or_jti(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    token = signed(fake_op, aud=API, scope="orders:read")
    policy = policy_for(fake_op, require_rfc9068=True)

    assert policy.accepted_types == RFC9068_TYPES
    assert await refused(validator, token, policy) == "typ"
    assert (await accepted(validator, token, policy_for(fake_op))).sub == "alice"  # default


@pytest.mark.parametrize("missing", ["client_id", "jti"])
async def test_require_rfc9068_refuses_an_at_jwt_token_without_a_required_claim(
    fake_op: FakeOP, validator: TokenValidator, missing: str
) -> None:
    claims = {"client_id": CLIENT, "jti": "j-1", "scope": "orders:read"}
    del claims[missing]
    token = signed(fake_op, header_typ="at+jwt", aud=API, **claims)

    assert await refused(validator, token, policy_for(fake_op, require_rfc9068=True)) == missing


def test_require_rfc9068_refuses_a_header_without_typ(fake_op: FakeOP) -> None:
    claims = base(fake_op, client_id=CLIENT, jti="j-1")
    policy = policy_for(fake_op, require_rfc9068=True)

    with pytest.raises(Rejected) as caught:
        check_access_token_claims(claims, policy, fake_op.now(), header={"alg": "RS256"})

    assert caught.value.reason == "typ"


async def test_require_rfc9068_refuses_a_token_without_typ_end_to_end(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    token = signed(fake_op, header_typ=None, aud=API, client_id=CLIENT, jti="j-1")

    assert await refused(validator, token, policy_for(fake_op, require_rfc9068=True)) == "typ"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"accepted_types": ("at+jwt", "jwt")}, id="jwt-type"),
        pytest.param({"audience_claim": "client_id"}, id="no-aud"),
    ],
)
def test_require_rfc9068_with_a_contradiction_is_refused_at_construction(
    fake_op: FakeOP, changes: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError, match="require_rfc9068"):
        policy_for(fake_op, require_rfc9068=True, **changes)


# -- the named relaxation ----------------------------------------------------------------------


async def test_ignored_id_token_claims_relaxes_only_the_claims_it_names(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    policy = policy_for(fake_op, ignored_id_token_claims=("nonce",))

    assert (await accepted(validator, signed(fake_op, nonce="n-1"), policy)).sub == "alice"
    assert await refused(validator, signed(fake_op, nonce="n", at_hash="h"), policy) == "id_token"
    assert await refused(validator, signed(fake_op, nonce="n", typ="ID"), policy) == "id_token"


def test_ignored_id_token_claims_must_name_id_token_claims(fake_op: FakeOP) -> None:
    with pytest.raises(ConfigurationError, match="ignored_id_token_claims"):
        policy_for(fake_op, ignored_id_token_claims=("auth_time",))
