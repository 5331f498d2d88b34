"""JWT parsing and validation against anything: every token, whatever its shape, header or
claims, is either accepted with every documented check holding, or refused with the token kind's
own error class (``IDTokenValidationError``, ``AccessTokenValidationError``,
``LogoutTokenValidationError``). Nothing else escapes the validators."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from joserfc.jws import JWSRegistry

from rpkit.errors import (
    AccessTokenValidationError,
    IDTokenValidationError,
    LogoutTokenValidationError,
    TokenValidationError,
)
from rpkit.id_token import (
    BACKCHANNEL_LOGOUT_EVENT,
    AccessToken,
    AccessTokenPolicy,
    IDToken,
    LogoutToken,
)
from rpkit.logout import check_logout_token
from rpkit.store import MemoryStore
from rpkit.testing import ABSENT, FakeOP
from rpkit.testing.knobs import apply_edits
from tests.fuzz._budget import fuzz
from tests.fuzz.conftest import Core
from tests.fuzz.strategies import (
    DEEP,
    HUGE,
    Recipe,
    b64url,
    encode_json,
    json_values,
    token_recipes,
)

NONCE = "n-0S6_WzA2Mj"
API = "https://api.rpkit.test"
KINDS = ("id", "access", "logout")
ERRORS: dict[str, type[TokenValidationError]] = {
    "id": IDTokenValidationError,
    "access": AccessTokenValidationError,
    "logout": LogoutTokenValidationError,
}
TYPES = {"id": "JWT", "access": "at+jwt", "logout": "logout+jwt"}
ACCEPTED_TYPES = {
    "id": {"jwt", "application/jwt"},
    "access": {"at+jwt", "application/at+jwt", "jwt"},
    "logout": {"logout+jwt", "application/logout+jwt"},
}


def policy_for(core: Core) -> AccessTokenPolicy:
    return AccessTokenPolicy(
        issuers=(core.config.issuer,),
        jwks_uri=core.metadata.jwks_uri,
        audience=(API,),
        required_scopes=("read",),
    )


def honest_claims(op: FakeOP, kind: str) -> dict[str, Any]:
    now = op.now()
    client_id = op.provider_config().client_id
    claims: dict[str, Any] = {"iss": op.issuer, "sub": "alice", "iat": now, "exp": now + 300}
    if kind == "id":
        return claims | {"aud": client_id, "nonce": NONCE, "auth_time": now, "sid": "s1"}
    if kind == "access":
        return claims | {"aud": [API], "client_id": client_id, "scope": "read", "jti": "j1"}
    return claims | {
        "aud": client_id,
        "jti": "j1",
        "sid": "s1",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }


def honest_header(op: FakeOP, kind: str) -> dict[str, Any]:
    return {"alg": "RS256", "typ": TYPES[kind], "kid": op.keys.kid("RS256")}


def sign(op: FakeOP, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Sign exactly this header and these claims with the OP's published RS256 key."""
    signing_input = f"{b64url(encode_json(header))}.{b64url(encode_json(claims))}"
    key = op.keys.signing_key("RS256")
    signature = JWSRegistry.algorithms["RS256"].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64url(signature)}"


async def validate(core: Core, kind: str, token: str) -> Any:
    """The validated token, or the error the validator raised (any exception escapes)."""
    try:
        if kind == "id":
            return await core.validator.validate_id_token(
                token, config=core.config, metadata=core.metadata, expected_nonce=NONCE
            )
        if kind == "access":
            return await core.validator.validate_access_token(token, policy_for(core))
        return await check_logout_token(
            core.validator, MemoryStore(), core.config, core.metadata, token, now=core.op.now()
        )
    except TokenValidationError as exc:
        return exc


def assert_typed_refusal(kind: str, outcome: Any) -> None:
    assert type(outcome) is ERRORS[kind], outcome
    assert outcome.reason
    assert outcome.detail


def assert_every_check_held(core: Core, kind: str, outcome: Any) -> None:
    """An accepted token satisfies what the validator promises for its kind."""
    now, client_id = time.time(), core.config.client_id
    if kind == "access":
        assert isinstance(outcome, AccessToken)
        assert outcome.iss == core.config.issuer
        assert API in outcome.aud
        assert "read" in outcome.scopes
    else:
        assert isinstance(outcome, IDToken | LogoutToken)
        assert outcome.iss == core.config.issuer
        assert outcome.exp + core.config.leeway > now
        assert outcome.iat <= now + core.config.leeway
    if kind == "id":
        assert client_id in outcome.aud
        assert outcome.nonce == NONCE
        assert isinstance(outcome.sub, str)
        assert outcome.sub
        assert len(set(outcome.aud)) == 1 or outcome.azp == client_id
        assert outcome.sid is None or len(outcome.sid) <= 255
    if kind == "logout":
        assert isinstance(outcome.jti, str)
        assert outcome.jti
        assert len(outcome.jti) <= 255
        assert outcome.sub or outcome.sid
        assert outcome.sid is None or 0 < len(outcome.sid) <= 255
    if kind != "access" and outcome.sub is not None:  # OpenID Connect Core §2
        assert 0 < len(outcome.sub) <= 255
        assert all(0x20 <= ord(c) <= 0x7E for c in outcome.sub), outcome.sub
    if kind == "access":
        assert 0 < len(outcome.sub) <= 255


# -- any string ------------------------------------------------------------------------------


@given(recipe=token_recipes, kind=st.sampled_from(KINDS))
@fuzz(300)
async def test_any_string_is_refused_with_each_kinds_error_unless_it_verifies(
    core: Core, recipe: Recipe, kind: str
):
    honest = sign(core.op, honest_header(core.op, kind), honest_claims(core.op, kind))
    token = recipe.apply(honest)

    for validator in KINDS:
        outcome = await validate(core, validator, token.text)

        if isinstance(outcome, TokenValidationError):
            assert_typed_refusal(validator, outcome)
        else:
            # Only a one-character change to an honest signature that decodes to the same bytes.
            assert token.may_verify, token
            assert validator == kind, (validator, token)
            assert_every_check_held(core, validator, outcome)


# -- signed, with claims of any shape ----------------------------------------------------------

CLAIM_NAMES = (
    "iss",
    "aud",
    "sub",
    "exp",
    "iat",
    "nbf",
    "nonce",
    "azp",
    "auth_time",
    "at_hash",
    "sid",
    "acr",
    "amr",
    "jti",
    "events",
    "scope",
    "scp",
    "scopes",
    "client_id",
)


@dataclass(frozen=True)
class FromNow:
    """A time claim ``seconds`` from the moment the token is signed."""

    seconds: int | float


claim_values = st.one_of(
    json_values,
    st.just(ABSENT),
    st.builds(FromNow, st.one_of(st.integers(-(10**6), 10**6), st.floats(-1e6, 1e6))),
    st.sampled_from(
        [
            "",
            [],
            {},
            [""],
            "https://op.rpkit.test",
            "https://op.rpkit.test/",
            "rpkit-test-client",
            ["rpkit-test-client", "someone-else"],
            [API, "rpkit-test-client"],
            API,
            NONCE,
            "read",
            ["read", 7],
            {BACKCHANNEL_LOGOUT_EVENT: {}},
            {BACKCHANNEL_LOGOUT_EVENT: []},
            True,
            1.5,
            1e308,
            DEEP,
            *HUGE,
        ]
    ),
    # Around the claim bounds (Core §2: a sub is at most 255 ASCII characters).
    st.builds(lambda n, c: c * n, st.sampled_from([254, 255, 256, 4000]), st.sampled_from("aé")),
    st.sampled_from(["alice\n", "alice\x00", "\x7f", "ali ce", "alicé", "\u2028"]),
)
time_values = st.one_of(
    st.builds(FromNow, st.one_of(st.integers(-(10**12), 10**12), st.floats(-1e6, 1e6))),
    # In range (below MAX_NUMERIC_DATE) but past year 9999: a store's datetime expiry overflows.
    st.sampled_from([FromNow(3 * 10**11), FromNow(10**12)]),
    st.sampled_from(HUGE),
    st.floats(allow_nan=False, allow_infinity=False),
    json_values,
)
claim_edits = st.builds(
    lambda general, times: general | times,
    st.dictionaries(
        st.one_of(st.sampled_from(CLAIM_NAMES), st.text(max_size=6)), claim_values, max_size=4
    ),
    st.dictionaries(st.sampled_from(["exp", "iat", "nbf", "auth_time"]), time_values, max_size=2),
)


def edited(claims: dict[str, Any], edits: dict[str, Any], now: int) -> dict[str, Any]:
    timed = {k: now + v.seconds if isinstance(v, FromNow) else v for k, v in edits.items()}
    return apply_edits(claims, timed)


@given(kind=st.sampled_from(KINDS), edits=claim_edits)
@fuzz(250)
async def test_signed_claims_of_any_shape_are_checked_not_crashed_on(
    core: Core, kind: str, edits: dict[str, Any]
):
    now = core.op.now()
    claims = edited(honest_claims(core.op, kind), edits, now)
    token = sign(core.op, honest_header(core.op, kind), claims)

    outcome = await validate(core, kind, token)

    if isinstance(outcome, TokenValidationError):
        assert_typed_refusal(kind, outcome)
    else:
        assert_every_check_held(core, kind, outcome)


# -- signed, with a header of any shape ----------------------------------------------------------

HEADER_NAMES = ("alg", "typ", "kid", "crit", "jwk", "jku", "x5u", "x5c", "b64", "zip", "cty")
header_values = st.one_of(
    json_values,
    st.just(ABSENT),
    st.sampled_from(
        [
            "RS256",
            "rs256",
            "none",
            "HS256",
            "PS256",
            "ES256",
            "EdDSA",
            "JWT",
            "jwt",
            "at+jwt",
            "logout+jwt",
            "application/logout+jwt",
            "application/jwt",
            ["exp"],
            [],
            "rs256-unknown",
            {"kty": "RSA"},
            "https://attacker.example/jwks.json",
        ]
    ),
)


@given(
    kind=st.sampled_from(KINDS),
    edits=st.dictionaries(
        st.one_of(st.sampled_from(HEADER_NAMES), st.text(max_size=6)), header_values, max_size=4
    ),
)
@fuzz(200)
async def test_signed_headers_of_any_shape_are_checked_not_crashed_on(
    core: Core, kind: str, edits: dict[str, Any]
):
    header = apply_edits(honest_header(core.op, kind), edits)
    token = sign(core.op, header, honest_claims(core.op, kind))

    outcome = await validate(core, kind, token)

    if isinstance(outcome, TokenValidationError):
        assert_typed_refusal(kind, outcome)
        return
    assert_every_check_held(core, kind, outcome)
    assert header["alg"] == "RS256"  # the configured algorithm, never the token's choice
    assert "crit" not in header
    # No kid (absent, or JSON null) is fine when exactly one published key fits RS256.
    assert header.get("kid") in (None, core.op.keys.kid("RS256"))
    typ = header.get("typ")
    assert typ is None or typ.lower() in ACCEPTED_TYPES[kind]
