"""Bearer access tokens for APIs: what an :class:`AccessTokenPolicy` accepts and refuses.

The tokens are the fake OP's RFC 9068 access tokens (``typ: at+jwt``), validated with keys from a
real :class:`JWKSCache` over the fake OP. ``reason="scope"`` (HTTP 403) is kept apart from every
other reason (HTTP 401).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rpkit.access_token import AccessTokenPolicy
from rpkit.errors import AccessTokenValidationError, ConfigurationError, JWKSError
from rpkit.id_token import AccessToken, TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.testing import ABSENT, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeOP, Tamper
from rpkit.testing.knobs import ClaimEdits, apply_edits

API = "https://api.rpkit.test"
CLIENT = DEFAULT_CLIENT_ID


@pytest.fixture
def jwks(fake_op_http: httpx.AsyncClient) -> JWKSCache:
    return JWKSCache(fake_op_http)


@pytest.fixture
def validator(jwks: JWKSCache) -> TokenValidator:
    return TokenValidator(jwks)


def policy_for(op: FakeOP, **changes: Any) -> AccessTokenPolicy:
    settings: dict[str, Any] = {
        "issuers": (op.issuer,),
        "jwks_uri": op.endpoints["jwks"],
        "audience": (API,),
    }
    return AccessTokenPolicy(**(settings | changes))


def mint(op: FakeOP, claims: dict[str, Any] | None = None, **sign: Any) -> str:
    return op.minter.mint_access_token(
        subject="alice",
        audience=API,
        client_id=CLIENT,
        scope="orders:read profile",
        claims=claims,
        **sign,
    )


def edited(op: FakeOP, edits: ClaimEdits) -> str:
    """An access token with claim ``edits`` (value, ABSENT or callable) applied."""
    now = op.now()
    honest = {
        "iss": op.issuer,
        "sub": "alice",
        "aud": API,
        "client_id": CLIENT,
        "scope": "orders:read",
        "iat": now,
        "exp": now + 3600,
        "jti": "at-1",
    }
    return op.minter.sign(apply_edits(honest, edits), typ="at+jwt")


async def reason(validator: TokenValidator, token: str, policy: AccessTokenPolicy) -> str:
    with pytest.raises(AccessTokenValidationError) as caught:
        await validator.validate_access_token(token, policy)
    return caught.value.reason


# -- accepted ------------------------------------------------------------------------------------


async def test_valid_access_token_is_accepted_with_its_scopes(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    policy = policy_for(fake_op, required_scopes=("orders:read",))

    token = await validator.validate_access_token(mint(fake_op), policy)

    assert isinstance(token, AccessToken)
    assert (token.iss, token.sub, token.aud) == (fake_op.issuer, "alice", (API,))
    assert token.scopes == frozenset({"orders:read", "profile"})
    assert token.client_id == CLIENT
    assert token.exp - token.iat == 3600
    assert token.claims["client_id"] == CLIENT
    with pytest.raises(TypeError):
        token.claims["scope"] = "admin"  # type: ignore[index]


async def test_second_configured_issuer_is_accepted(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    resource_issuer = f"{fake_op.issuer}/resources/res_123"
    policy = policy_for(fake_op, issuers=(fake_op.issuer, resource_issuer))

    token = await validator.validate_access_token(mint(fake_op, {"iss": resource_issuer}), policy)

    assert token.iss == resource_issuer


async def test_audience_array_containing_one_of_the_apis_audiences_is_accepted(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    policy = policy_for(fake_op, audience=("https://other-api.rpkit.test", API))

    token = await validator.validate_access_token(
        mint(fake_op, {"aud": ["https://unrelated.example", API]}), policy
    )

    assert token.aud == ("https://unrelated.example", API)


@pytest.mark.parametrize(
    ("claims", "granted"),
    [
        pytest.param({"scope": ABSENT, "scopes": ["a", "b"]}, {"a", "b"}, id="scopes-array"),
        pytest.param({"scope": ABSENT, "scp": ["a", "b"]}, {"a", "b"}, id="scp-array"),
        pytest.param({"scope": ABSENT, "scp": "a b"}, {"a", "b"}, id="scp-string"),
        pytest.param({"scope": "a", "scp": ["b"]}, {"a", "b"}, id="scope-and-scp"),
        pytest.param({"scope": ""}, set(), id="empty-scope"),
    ],
)
async def test_scopes_are_read_from_scope_scopes_and_scp(
    fake_op: FakeOP, validator: TokenValidator, claims: dict[str, Any], granted: set[str]
) -> None:
    token = await validator.validate_access_token(edited(fake_op, claims), policy_for(fake_op))

    assert token.scopes == granted


async def test_type_header_is_compared_case_insensitively(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    policy = policy_for(fake_op, accepted_types=("AT+JWT",))

    assert policy.accepted_types == ("at+jwt",)
    assert await validator.validate_access_token(mint(fake_op, typ="At+Jwt"), policy)
    assert await validator.validate_access_token(mint(fake_op, header={"typ": None}), policy)


async def test_client_id_falls_back_to_azp(fake_op: FakeOP, validator: TokenValidator) -> None:
    claims = {"client_id": ABSENT, "azp": "spa-client"}

    token = await validator.validate_access_token(edited(fake_op, claims), policy_for(fake_op))

    assert token.client_id == "spa-client"


async def test_steady_state_validation_fetches_the_jwks_once(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    policy = policy_for(fake_op)
    token = mint(fake_op)

    for _ in range(50):
        await validator.validate_access_token(token, policy)

    assert fake_op.oracle.count("jwks") == 1


# -- rejected ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param({"iss": "https://op.rpkit.test/"}, "iss", id="wrong-issuer"),
        pytest.param({"iss": ABSENT}, "iss", id="no-issuer"),
        pytest.param({"aud": "https://other-api.rpkit.test"}, "aud", id="wrong-audience"),
        pytest.param({"aud": ABSENT}, "aud", id="no-audience"),
        pytest.param({"exp": lambda c: c["iat"] - 360}, "exp", id="expired"),
        pytest.param({"exp": ABSENT}, "exp", id="no-exp"),
        pytest.param({"iat": ABSENT}, "iat", id="no-iat"),
        pytest.param({"iat": lambda c: c["iat"] + 3600}, "iat", id="iat-in-the-future"),
        pytest.param({"nbf": lambda c: c["iat"] + 3600}, "nbf", id="not-yet-valid"),
        pytest.param({"sub": ABSENT}, "sub", id="no-subject"),
        pytest.param({"scope": 7}, "malformed", id="scope-not-a-string"),
        pytest.param({"scp": [1]}, "malformed", id="scp-not-strings"),
        pytest.param({"client_id": 7}, "malformed", id="client-id-not-a-string"),
    ],
)
async def test_token_with_bad_claims_is_rejected(
    fake_op: FakeOP, validator: TokenValidator, edits: ClaimEdits, expected: str
) -> None:
    assert await reason(validator, edited(fake_op, edits), policy_for(fake_op)) == expected


async def test_missing_scope_is_a_scope_rejection(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    policy = policy_for(fake_op, required_scopes=("orders:read", "orders:write"))

    with pytest.raises(AccessTokenValidationError) as caught:
        await validator.validate_access_token(mint(fake_op), policy)

    assert caught.value.reason == "scope"
    assert "orders:write" in caught.value.detail


async def test_corrupted_signature_is_rejected(fake_op: FakeOP, validator: TokenValidator) -> None:
    token = mint(fake_op, tamper=Tamper.BAD_SIGNATURE)

    assert await reason(validator, token, policy_for(fake_op)) == "signature"


async def test_unknown_key_is_rejected_with_the_jwks_error_chained(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    with pytest.raises(AccessTokenValidationError) as caught:
        await validator.validate_access_token(
            mint(fake_op, tamper=Tamper.UNKNOWN_KEY), policy_for(fake_op)
        )

    assert caught.value.reason == "key"
    assert isinstance(caught.value.__cause__, JWKSError)


@pytest.mark.parametrize(
    "sign",
    [
        pytest.param({"alg": "ES256"}, id="asymmetric-but-not-allowed"),
        pytest.param({"alg": "HS256", "secret": DEFAULT_CLIENT_SECRET}, id="hs256"),
        pytest.param({"tamper": Tamper.HS256_PUBLIC_KEY}, id="hs256-keyed-by-the-rsa-key"),
        pytest.param({"alg": "none"}, id="none"),
    ],
)
async def test_token_with_an_algorithm_outside_the_policy_is_rejected_before_key_use(
    fake_op: FakeOP, validator: TokenValidator, sign: dict[str, Any]
) -> None:
    assert await reason(validator, mint(fake_op, **sign), policy_for(fake_op)) == "alg"
    assert fake_op.oracle.count("jwks") == 0


@pytest.mark.parametrize("typ", ["logout+jwt", "application/logout+jwt", "secevent+jwt"])
async def test_token_of_another_type_is_refused(
    fake_op: FakeOP, validator: TokenValidator, typ: str
) -> None:
    assert await reason(validator, mint(fake_op, typ=typ), policy_for(fake_op)) == "typ"


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [(Tamper.JWE, "jwe"), (Tamper.RANDOM_KID, "key")],
)
async def test_encrypted_or_unknown_kid_tokens_are_rejected(
    fake_op: FakeOP, validator: TokenValidator, tamper: Tamper, expected: str
) -> None:
    assert await reason(validator, mint(fake_op, tamper=tamper), policy_for(fake_op)) == expected


# -- an ID token presented as an access token ----------------------------------------------------


def id_token(op: FakeOP) -> str:
    """What a client might forward by mistake: ``aud`` is the client id, no scope, ``typ: JWT``."""
    return op.minter.mint_id_token(audience=CLIENT, subject="alice", nonce="n-1")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"audience": (CLIENT,), "required_scopes": ("openid",)}, "id_token", id="scope"
        ),
        pytest.param({"audience": (CLIENT,), "accepted_types": ("at+jwt",)}, "typ", id="rfc9068"),
        pytest.param({}, "aud", id="api-audience"),
    ],
)
async def test_id_token_is_not_accepted_as_an_access_token(
    fake_op: FakeOP, validator: TokenValidator, changes: dict[str, Any], expected: str
) -> None:
    # Its nonce marks it as an ID token (reason "id_token", a 401) before any scope is read;
    # RFC 9068's ``typ: at+jwt`` only, or an audience naming the API, stop it even earlier.
    policy = policy_for(fake_op, **changes)

    assert await reason(validator, id_token(fake_op), policy) == expected


# -- the policy itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"algorithms": ("HS256",)}, id="hs256"),
        pytest.param({"algorithms": ("RS256", "none")}, id="none"),
        pytest.param({"algorithms": ("RSA-OAEP",)}, id="not-a-signature-algorithm"),
        pytest.param({"algorithms": ()}, id="no-algorithm"),
        pytest.param({"issuers": ()}, id="no-issuer"),
        pytest.param({"audience": ()}, id="no-audience"),
        pytest.param({"leeway": 600}, id="leeway-too-large"),
    ],
)
def test_contradictory_policy_is_refused_at_construction(
    fake_op: FakeOP, changes: dict[str, Any]
) -> None:
    with pytest.raises(ConfigurationError):
        policy_for(fake_op, **changes)


def test_default_policy_accepts_rs256_and_the_common_access_token_types(fake_op: FakeOP) -> None:
    policy = policy_for(fake_op)

    assert policy.algorithms == ("RS256",)
    assert policy.accepted_types == ("at+jwt", "application/at+jwt", "jwt")
    assert (policy.leeway, policy.required_scopes) == (60, ())
