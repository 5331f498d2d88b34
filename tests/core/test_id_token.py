"""ID token validation (Core §3.1.3.7, §12.2): checklist rows 20–44 and 56–58, unit-level.

Tokens come from the fake OP's minter; keys come from a real :class:`JWKSCache` over the fake OP,
so the JWKS rows (38–44) go through the validator too. Every rejection asserts the stable
``reason`` of the check that failed.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from joserfc.jws import JWSRegistry
from structlog.testing import capture_logs

from rpkit.config import ProviderConfig
from rpkit.discovery import DiscoveryCache, ProviderMetadata
from rpkit.errors import (
    ConfigurationError,
    IDTokenValidationError,
    JWKSError,
    RefreshContinuityError,
    UserInfoError,
)
from rpkit.id_token import IDToken, TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.testing import (
    ABSENT,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    Canned,
    FakeOP,
    JWKSLayout,
    Tamper,
)
from rpkit.testing._jose import b64url, half_hash, json_b64
from rpkit.testing.knobs import ClaimEdits, apply_edits

CLIENT = DEFAULT_CLIENT_ID
NONCE = "n-0S6_WzA2Mj-nonce-of-this-transaction"
ACCESS = "an-opaque-access-token-from-the-same-response"
DAY = 86400


# -- fixtures and helpers ------------------------------------------------------------------------


def provider(op: FakeOP, **changes: Any) -> ProviderConfig:
    return op.provider_config(**changes)


def honest_claims(op: FakeOP, alg: str = "RS256") -> dict[str, Any]:
    now = op.now()
    claims: dict[str, Any] = {
        "iss": op.issuer,
        "sub": "alice",
        "aud": CLIENT,
        "iat": now,
        "exp": now + 300,
        "auth_time": now - 30,
        "nonce": NONCE,
        "sid": "op-session-1",
    }
    if alg != "none":
        claims["at_hash"] = half_hash(ACCESS, alg)
    return claims


@dataclass
class RP:
    """The validator under test, with the fake OP's provider configuration and metadata.

    ``validate`` passes the transaction's nonce and the response's access token unless told
    otherwise; ``reason`` expects a rejection and returns its ``reason``.
    """

    op: FakeOP
    jwks: JWKSCache
    validator: TokenValidator
    config: ProviderConfig
    metadata: ProviderMetadata

    def mint(self, edits: ClaimEdits | None = None, *, alg: str = "RS256", **sign: Any) -> str:
        """An ID token for the default client with claim ``edits`` (value, ABSENT, callable)."""
        claims = apply_edits(honest_claims(self.op, alg), edits or {})
        return self.op.minter.sign(claims, alg=alg, secret=DEFAULT_CLIENT_SECRET, **sign)

    def configured(self, **changes: Any) -> RP:
        return replace(self, config=provider(self.op, **changes))

    async def validate(self, token: str, **options: Any) -> IDToken:
        options = {"expected_nonce": NONCE, "access_token": ACCESS} | options
        return await self.validator.validate_id_token(
            token, config=self.config, metadata=self.metadata, **options
        )

    async def reason(self, token: str, **options: Any) -> str:
        with pytest.raises(IDTokenValidationError) as caught:
            await self.validate(token, **options)
        return caught.value.reason

    def jwks_requests(self) -> int:
        return self.op.oracle.count("jwks")


@pytest.fixture
async def rp(fake_op: FakeOP, fake_op_http: httpx.AsyncClient) -> RP:
    config = provider(fake_op)
    metadata = await DiscoveryCache(fake_op_http).get(config)
    jwks = JWKSCache(fake_op_http)
    return RP(fake_op, jwks, TokenValidator(jwks), config, metadata)


# -- I: ID token (rows 20–37) --------------------------------------------------------------------


async def test_valid_rs256_id_token_is_accepted_with_its_claims(rp: RP) -> None:
    token = rp.mint({"acr": "urn:example:loa:2", "amr": ["pwd"]})

    id_token = await rp.validate(token)

    assert (id_token.iss, id_token.sub, id_token.aud) == (rp.op.issuer, "alice", (CLIENT,))
    assert (id_token.nonce, id_token.sid, id_token.azp) == (NONCE, "op-session-1", None)
    assert (id_token.acr, id_token.amr) == ("urn:example:loa:2", ("pwd",))
    assert id_token.at_hash == half_hash(ACCESS, "RS256")
    assert id_token.exp - id_token.iat == 300
    assert id_token.auth_time == id_token.iat - 30
    assert id_token.claims["amr"] == ("pwd",)
    with pytest.raises(TypeError):
        id_token.claims["sub"] = "mallory"  # type: ignore[index]


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
async def test_each_asymmetric_algorithm_is_accepted_when_it_is_the_configured_one(
    rp: RP, alg: str
) -> None:
    # Runs with warnings as errors: EdDSA must not leak joserfc's RFC 9864 SecurityWarning.
    rp = rp.configured(id_token_signed_response_alg=alg)

    id_token = await rp.validate(rp.mint(alg=alg))

    assert id_token.at_hash == half_hash(ACCESS, alg)


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_corrupted_signature_is_rejected(rp: RP, alg: str) -> None:
    rp = rp.configured(id_token_signed_response_alg=alg)

    assert await rp.reason(rp.mint(alg=alg, tamper=Tamper.BAD_SIGNATURE)) == "signature"


async def test_algorithm_comes_from_the_configuration_not_the_metadata(rp: RP) -> None:
    assert "ES256" in rp.metadata.id_token_signing_alg_values_supported

    assert await rp.reason(rp.mint(alg="ES256")) == "alg"
    assert rp.jwks_requests() == 0  # refused before any key was looked up


async def test_token_signed_by_a_key_outside_the_jwks_is_rejected(rp: RP) -> None:
    with pytest.raises(IDTokenValidationError) as caught:
        await rp.validate(rp.mint(tamper=Tamper.UNKNOWN_KEY))

    assert caught.value.reason == "key"
    assert isinstance(caught.value.__cause__, JWKSError)


async def test_hs256_keyed_by_the_client_secret_is_accepted_when_configured(rp: RP) -> None:
    rp = rp.configured(id_token_signed_response_alg="HS256")

    assert (await rp.validate(rp.mint(alg="HS256"))).sub == "alice"
    assert (await rp.validate(rp.mint({"aud": [CLIENT]}, alg="HS256"))).aud == (CLIENT,)
    assert rp.jwks_requests() == 0


@pytest.mark.parametrize(
    ("edits", "sign", "expected"),
    [
        pytest.param({}, {"tamper": Tamper.BAD_SIGNATURE}, "signature", id="a-corrupted-mac"),
        pytest.param({}, {"secret": "another-clients-secret-0123456789"}, "signature", id="key"),
        pytest.param({"aud": [CLIENT, "trusted"], "azp": CLIENT}, {}, "aud", id="b-multi-aud"),
    ],
)
async def test_bad_hs256_tokens_are_rejected(
    rp: RP, edits: ClaimEdits, sign: dict[str, Any], expected: str
) -> None:
    rp = rp.configured(
        id_token_signed_response_alg="HS256", trusted_audiences=frozenset({"trusted"})
    )
    claims = apply_edits(honest_claims(rp.op, "HS256"), edits)
    token = rp.op.minter.sign(claims, alg="HS256", **({"secret": DEFAULT_CLIENT_SECRET} | sign))

    assert await rp.reason(token) == expected


async def test_algorithm_confusion_hs256_with_the_rsa_public_key_is_rejected_before_key_use(
    rp: RP,
) -> None:
    assert await rp.reason(rp.mint(tamper=Tamper.HS256_PUBLIC_KEY)) == "alg"
    assert rp.jwks_requests() == 0


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_any_hs_token_on_an_asymmetric_client_is_rejected(rp: RP, alg: str) -> None:
    assert await rp.reason(rp.mint(alg=alg)) == "alg"


async def test_unsigned_token_is_rejected_by_default(rp: RP) -> None:
    assert await rp.reason(rp.mint(alg="none")) == "alg"
    assert await rp.reason(rp.mint(tamper=Tamper.ALG_NONE)) == "alg"


async def test_unsigned_token_is_accepted_only_when_none_is_configured(rp: RP) -> None:
    rp = rp.configured(id_token_signed_response_alg="none")
    unsigned = rp.mint(alg="none")

    assert (await rp.validate(unsigned)).sub == "alice"
    assert await rp.reason(unsigned + "c2lnbmF0dXJl") == "signature"
    assert await rp.reason(rp.mint()) == "alg"


@pytest.mark.parametrize(
    "iss",
    [
        pytest.param(lambda c: c["iss"] + "1", id="issuer-plus-1"),
        pytest.param("https://example.org/", id="another-issuer"),
        pytest.param(lambda c: c["iss"] + "/", id="trailing-slash"),
        pytest.param(ABSENT, id="absent"),
    ],
)
async def test_wrong_or_missing_issuer_is_rejected(rp: RP, iss: Any) -> None:
    assert await rp.reason(rp.mint({"iss": iss})) == "iss"


@pytest.mark.parametrize(
    "aud",
    [
        pytest.param(lambda c: c["aud"] + "1", id="client-id-plus-1"),
        pytest.param(ABSENT, id="absent"),
        pytest.param([], id="empty-array"),
        pytest.param(42, id="not-a-string"),
        pytest.param([CLIENT, 7], id="array-with-a-number"),
    ],
)
async def test_wrong_or_missing_audience_is_rejected(rp: RP, aud: Any) -> None:
    assert await rp.reason(rp.mint({"aud": aud})) == "aud"


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param({"aud": [CLIENT, "untrusted"]}, "aud", id="a-untrusted-no-azp"),
        pytest.param({"aud": [CLIENT, "untrusted"], "azp": CLIENT}, "aud", id="b-untrusted-azp"),
        pytest.param({"aud": [CLIENT, "trusted"]}, "azp", id="trusted-without-azp"),
    ],
)
async def test_secondary_audiences_need_trust_and_azp(
    rp: RP, edits: ClaimEdits, expected: str
) -> None:
    rp = rp.configured(trusted_audiences=frozenset({"trusted"}))

    assert await rp.reason(rp.mint(edits)) == expected


async def test_trusted_secondary_audience_with_azp_and_single_aud_array_are_accepted(
    rp: RP,
) -> None:
    rp = rp.configured(trusted_audiences=frozenset({"trusted"}))

    assert (await rp.validate(rp.mint({"aud": [CLIENT, "trusted"], "azp": CLIENT}))).azp == CLIENT
    assert (await rp.validate(rp.mint({"aud": [CLIENT]}))).aud == (CLIENT,)


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param({"aud": "other-client", "azp": CLIENT}, "aud", id="a-azp-cannot-stand-in"),
        pytest.param({"azp": "other-client"}, "azp", id="b-azp-of-another-client"),
        pytest.param({"azp": None}, "azp", id="azp-null"),
    ],
)
async def test_azp_never_replaces_aud_and_must_be_the_client(
    rp: RP, edits: ClaimEdits, expected: str
) -> None:
    assert await rp.reason(rp.mint(edits)) == expected


@pytest.mark.parametrize("sub", [ABSENT, 42, ""], ids=["absent", "number", "empty"])
async def test_missing_or_invalid_subject_is_rejected(rp: RP, sub: Any) -> None:
    assert await rp.reason(rp.mint({"sub": sub})) == "sub"


@pytest.mark.parametrize(
    "iat",
    [
        pytest.param(ABSENT, id="absent"),
        pytest.param("yesterday", id="a-string"),
        pytest.param(True, id="a-bool"),
        pytest.param([1_700_000_000], id="an-array"),
        pytest.param(lambda c: c["iat"] + 3600, id="an-hour-ahead"),
        pytest.param(lambda c: c["iat"] - 7 * DAY, id="row-31-a-week-old"),
    ],
)
async def test_missing_invalid_future_or_stale_iat_is_rejected(rp: RP, iat: Any) -> None:
    assert await rp.reason(rp.mint({"iat": iat})) == "iat"


async def test_fractional_numeric_dates_are_accepted_as_rfc_7519_allows(rp: RP) -> None:
    token = rp.mint(
        {
            "iat": lambda c: c["iat"] + 0.25,
            "exp": lambda c: c["exp"] + 0.5,
            "auth_time": lambda c: c["auth_time"] + 0.75,
        }
    )

    validated = await rp.validate(token)

    assert validated.exp == int(validated.claims["exp"])
    assert isinstance(validated.iat, int)


async def test_iat_within_clock_skew_and_age_window_is_accepted(rp: RP) -> None:
    slightly_ahead = rp.mint({"iat": lambda c: c["iat"] + 30})
    fairly_old = rp.mint({"iat": lambda c: c["iat"] - rp.config.max_iat_age + 30})

    assert await rp.validate(slightly_ahead)
    assert await rp.validate(fairly_old)


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param({"exp": lambda c: c["iat"] - 360}, "exp", id="six-minutes-ago"),
        pytest.param({"exp": ABSENT}, "exp", id="absent"),
        pytest.param({"exp": lambda c: str(c["exp"])}, "exp", id="a-string"),
        pytest.param({"nbf": lambda c: c["iat"] + 3600}, "nbf", id="nbf-an-hour-ahead"),
        pytest.param({"nbf": "now"}, "nbf", id="nbf-a-string"),
    ],
)
async def test_expired_or_not_yet_valid_token_is_rejected(
    rp: RP, edits: ClaimEdits, expected: str
) -> None:
    assert await rp.reason(rp.mint(edits)) == expected


async def test_exp_and_nbf_tolerate_the_configured_leeway(rp: RP) -> None:
    token = rp.mint({"exp": lambda c: c["iat"] - 30, "nbf": lambda c: c["iat"] + 30})

    assert await rp.validate(token)
    assert await rp.configured(leeway=0).reason(token) == "exp"


@pytest.mark.parametrize(
    "nonce",
    [
        pytest.param(lambda c: c["nonce"] + "1", id="sent-value-plus-1"),
        pytest.param(ABSENT, id="absent"),
        pytest.param("n-of-another-transaction", id="row-34-another-transactions-nonce"),
        pytest.param(7, id="a-number"),
    ],
)
async def test_wrong_or_missing_nonce_is_rejected(rp: RP, nonce: Any) -> None:
    assert await rp.reason(rp.mint({"nonce": nonce})) == "nonce"


async def test_nonce_is_rejected_when_none_was_sent(rp: RP) -> None:
    assert await rp.reason(rp.mint({"nonce": "unexpected"}), expected_nonce=None) == "nonce"
    without = await rp.validate(rp.mint({"nonce": ABSENT}), expected_nonce=None)
    assert without.nonce is None


@pytest.mark.parametrize(
    "auth_time",
    [
        pytest.param(ABSENT, id="a-absent"),
        pytest.param(lambda c: c["iat"] - DAY, id="b-a-day-old"),
        pytest.param(lambda c: str(c["auth_time"]), id="c-a-string"),
        pytest.param(lambda c: c["iat"] + 3600, id="in-the-future"),
    ],
)
async def test_auth_time_is_required_and_recent_when_max_age_was_sent(
    rp: RP, auth_time: Any
) -> None:
    assert await rp.reason(rp.mint({"auth_time": auth_time}), max_age=300) == "auth_time"


@pytest.mark.parametrize(
    ("changes", "edits"),
    [
        pytest.param({"require_auth_time": True}, {"auth_time": ABSENT}, id="require-auth-time"),
        pytest.param({"max_age": 300}, {"auth_time": lambda c: c["iat"] - DAY}, id="max-age"),
    ],
)
async def test_configured_auth_time_policy_applies_without_an_argument(
    rp: RP, changes: dict[str, Any], edits: ClaimEdits
) -> None:
    assert await rp.configured(**changes).reason(rp.mint(edits)) == "auth_time"


async def test_max_age_argument_overrides_the_configured_one(rp: RP) -> None:
    rp = rp.configured(max_age=60)
    ten_minutes_old = rp.mint({"auth_time": lambda c: c["iat"] - 600})

    assert await rp.reason(ten_minutes_old) == "auth_time"
    id_token = await rp.validate(ten_minutes_old, max_age=3600)
    assert id_token.auth_time == id_token.iat - 600


async def test_without_max_age_an_old_or_missing_auth_time_is_accepted(rp: RP) -> None:
    old = await rp.validate(rp.mint({"auth_time": lambda c: c["iat"] - DAY}))
    missing = await rp.validate(rp.mint({"auth_time": ABSENT}))

    assert old.auth_time == old.iat - DAY
    assert missing.auth_time is None


async def test_wrong_at_hash_is_rejected_and_a_missing_one_accepted(rp: RP) -> None:
    assert await rp.reason(rp.mint({"at_hash": lambda c: c["at_hash"][::-1]})) == "at_hash"
    assert (await rp.validate(rp.mint({"at_hash": ABSENT}))).at_hash is None


async def test_at_hash_for_eddsa_is_the_left_half_of_sha512(rp: RP) -> None:
    rp = rp.configured(id_token_signed_response_alg="EdDSA")
    sha256_half = b64url(hashlib.sha256(ACCESS.encode()).digest()[:16])

    assert await rp.validate(rp.mint(alg="EdDSA"))  # the kit hashes EdDSA with SHA-512
    assert await rp.reason(rp.mint({"at_hash": sha256_half}, alg="EdDSA")) == "at_hash"


async def test_unknown_critical_header_is_rejected(rp: RP) -> None:
    header = {"crit": ["urn:example:unknown"], "urn:example:unknown": True}

    assert await rp.reason(rp.mint(header=header)) == "crit"


async def test_encrypted_id_token_is_rejected(rp: RP) -> None:
    token = rp.mint(tamper=Tamper.JWE)

    assert token.count(".") == 4
    assert await rp.reason(token) == "jwe"


async def test_unknown_claims_and_unrequested_acr_amr_are_accepted(rp: RP) -> None:
    edits = {"acr": "urn:example:loa:3", "amr": ["pwd", "otp"], "x_unknown": {"nested": [1]}}

    id_token = await rp.validate(rp.mint(edits))

    assert (id_token.acr, id_token.amr) == ("urn:example:loa:3", ("pwd", "otp"))
    assert id_token.claims["x_unknown"]["nested"] == (1,)


@pytest.mark.parametrize(
    ("edits", "expected"),
    [({"amr": "pwd"}, "amr"), ({"acr": 3}, "acr"), ({"sid": ["s"]}, "sid")],
)
async def test_malformed_optional_claims_are_rejected(
    rp: RP, edits: ClaimEdits, expected: str
) -> None:
    assert await rp.reason(rp.mint(edits)) == expected


@pytest.mark.parametrize("typ", ["JWT", "jwt", "application/jwt"])
async def test_id_token_typed_jwt_is_accepted(rp: RP, typ: str) -> None:
    assert await rp.validate(rp.mint(typ=typ))


@pytest.mark.parametrize("typ", ["logout+jwt", "at+jwt", "application/at+jwt"])
async def test_token_of_another_type_is_not_an_id_token(rp: RP, typ: str) -> None:
    assert await rp.reason(rp.mint(typ=typ)) == "typ"


def _signed(op: FakeOP, payload: bytes) -> str:
    header = json_b64({"alg": "RS256", "kid": op.keys.kid("RS256")})
    signing_input = f"{header}.{b64url(payload)}"
    signature = JWSRegistry.algorithms["RS256"].sign(
        signing_input.encode(), op.keys.active["RS256"]
    )
    return f"{signing_input}.{b64url(signature)}"


MALFORMED = {
    "empty": lambda op, t: "",
    "one-part": lambda op, t: "abc",
    "two-parts": lambda op, t: t.rsplit(".", 1)[0],
    "four-parts": lambda op, t: t + ".x",
    "non-ascii": lambda op, t: t + "é",
    "longer-than-64-kib": lambda op, t: t + "A" * 65536,
    "padded-signature": lambda op, t: t + "==",
    "standard-alphabet": lambda op, t: t[:-2] + "+/",
    "header-not-json": lambda op, t: "e30x" + t[t.index(".") :],
    "header-an-array": lambda op, t: json_b64(["RS256"]) + t[t.index(".") :],
    "header-without-alg": lambda op, t: json_b64({"kid": "k"}) + t[t.index(".") :],
    "alg-not-a-string": lambda op, t: json_b64({"alg": ["RS256"]}) + t[t.index(".") :],
    "payload-an-array": lambda op, t: _signed(op, b'["alice"]'),
    "payload-not-json": lambda op, t: _signed(op, b"not json"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_tokens_are_rejected(rp: RP, case: str) -> None:
    token = MALFORMED[case](rp.op, rp.mint())

    assert await rp.reason(token) == "malformed"


async def test_rejections_are_logged_with_provider_and_reason_but_never_token_or_nonce(
    rp: RP,
) -> None:
    token = rp.mint({"nonce": "a-nonce-that-must-not-be-logged"})

    with capture_logs() as logs:
        await rp.reason(token)

    rejected = [entry for entry in logs if entry["event"] == "rpkit.token.rejected"]
    assert len(rejected) == 1
    assert rejected[0] | {"detail": None} == {
        "event": "rpkit.token.rejected",
        "log_level": "warning",
        "provider": "fake",
        "issuer": rp.op.issuer,
        "kind": "id_token_invalid",
        "reason": "nonce",
        "detail": None,
    }
    text = repr(logs)
    for secret in (token, token.split(".")[2], "a-nonce-that-must-not-be-logged", NONCE):
        assert secret not in text


# -- K: JWKS and keys, through the validator (rows 38–44) ----------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
async def test_token_without_kid_and_one_matching_key_is_accepted(rp: RP, alg: str) -> None:
    rp.op.misbehave.jwks_layout = JWKSLayout.SINGLE_NO_KID
    rp = rp.configured(id_token_signed_response_alg=alg)

    assert await rp.validate(rp.mint(alg=alg, layout=JWKSLayout.SINGLE_NO_KID))


async def test_token_without_kid_and_several_matching_keys_is_rejected_without_refetch(
    rp: RP,
) -> None:
    rp.op.misbehave.jwks_layout = JWKSLayout.MULTIPLE_NO_KID
    token = rp.mint(layout=JWKSLayout.MULTIPLE_NO_KID)

    assert await rp.reason(token) == "key"
    assert await rp.reason(token) == "key"
    assert rp.jwks_requests() == 1


async def test_key_rotation_is_followed_with_one_refetch(rp: RP) -> None:
    assert await rp.validate(rp.mint())
    rp.op.keys.rotate()

    assert await rp.validate(rp.mint())
    assert rp.jwks_requests() == 2


async def test_forged_kids_are_rejected_with_at_most_one_forced_refetch(rp: RP) -> None:
    for _ in range(20):
        assert await rp.reason(rp.mint(tamper=Tamper.RANDOM_KID)) == "key"

    assert rp.jwks_requests() == 2  # the first fetch and one forced refetch


@pytest.mark.parametrize(
    "outage", [Canned.error(500), Canned.json({"keys": []})], ids=["http-500", "empty-set"]
)
async def test_jwks_outage_keeps_cached_keys_and_rejects_unknown_ones(
    rp: RP, outage: Canned
) -> None:
    assert await rp.validate(rp.mint())
    rp.op.misbehave.respond = {"jwks": outage}

    assert await rp.validate(rp.mint())
    assert await rp.reason(rp.mint(tamper=Tamper.UNKNOWN_KEY)) == "key"
    assert rp.jwks_requests() == 2  # the outage was seen: one forced refetch, which failed


@pytest.mark.parametrize(
    "params",
    [{"use": "enc"}, {"use": None, "key_ops": ["encrypt"]}, {"alg": "PS256"}],
    ids=["use-enc", "key-ops-without-verify", "declared-alg-ps256"],
)
async def test_key_not_meant_for_this_signature_is_not_used(rp: RP, params: dict[str, Any]) -> None:
    rp.op.misbehave.jwks_key_params = {"RS256": params}

    assert await rp.reason(rp.mint()) == "key"


async def test_key_of_unknown_type_in_the_jwks_is_ignored(rp: RP) -> None:
    rp.op.misbehave.jwks_extra_keys = [
        {"kty": "AKP", "alg": "ML-DSA-44", "kid": "pq-1", "pub": "AAAA"}
    ]

    assert await rp.validate(rp.mint())


@pytest.mark.parametrize(
    "tamper",
    [Tamper.HEADER_JWK, Tamper.HEADER_JKU, Tamper.HEADER_X5U, Tamper.HEADER_X5C],
    ids=["jwk", "jku", "x5u", "x5c"],
)
async def test_keys_announced_in_the_header_are_never_used_or_fetched(
    rp: RP, tamper: Tamper
) -> None:
    attacker = FakeOP("https://attacker.example")
    http = httpx.AsyncClient(transport=rp.op.transport(attacker), timeout=5.0)
    rp = replace(rp, validator=TokenValidator(JWKSCache(http)))

    assert await rp.reason(rp.mint(tamper=tamper)) == "signature"
    assert attacker.oracle.count() == 0


# -- R: refresh continuity (rows 56–58) ----------------------------------------------------------


@pytest.fixture
async def original(rp: RP) -> IDToken:
    return await rp.validate(rp.mint())


def refreshed(rp: RP, original: IDToken, edits: ClaimEdits | None = None, **sign: Any) -> str:
    """A refreshed ID token: same login, new iat/exp, no nonce (as the fake OP issues it)."""
    base = {"nonce": ABSENT, "auth_time": original.auth_time, "sid": original.sid}
    return rp.mint({**base, **(edits or {})}, **sign)


async def test_honest_refreshed_id_token_is_accepted(rp: RP, original: IDToken) -> None:
    same_nonce = refreshed(rp, original, {"nonce": NONCE})
    aud_as_array = refreshed(rp, original, {"aud": [CLIENT]})

    for token in (refreshed(rp, original), same_nonce, aud_as_array):
        id_token = await rp.validate(token, expected_nonce=None, original=original)
        assert (id_token.sub, id_token.auth_time) == (original.sub, original.auth_time)


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param({"iss": lambda c: c["iss"] + "1"}, "iss", id="row-56-issuer"),
        pytest.param({"sub": "mallory"}, "sub", id="row-57-subject"),
        pytest.param({"aud": "other-client"}, "aud", id="audience"),
        pytest.param({"aud": [CLIENT, "other-client"]}, "aud", id="extra-audience"),
        pytest.param({"azp": "other-client"}, "azp", id="azp-changed"),
        pytest.param({"azp": CLIENT}, "azp", id="azp-newly-present"),
        pytest.param({"auth_time": lambda c: c["auth_time"] - 60}, "auth_time", id="auth-time"),
        pytest.param({"nonce": "another-nonce"}, "nonce", id="another-nonce"),
    ],
)
async def test_refreshed_id_token_that_changes_identity_is_a_continuity_error(
    rp: RP, original: IDToken, edits: ClaimEdits, expected: str
) -> None:
    token = refreshed(rp, original, edits)

    with pytest.raises(RefreshContinuityError) as caught:
        await rp.validate(token, expected_nonce=None, original=original)

    assert caught.value.reason == expected


async def test_refresh_keeps_an_azp_the_original_had(rp: RP) -> None:
    login = await rp.validate(rp.mint({"azp": CLIENT}))

    kept = refreshed(rp, login, {"azp": CLIENT})
    assert (await rp.validate(kept, expected_nonce=None, original=login)).azp == CLIENT
    with pytest.raises(RefreshContinuityError) as caught:
        await rp.validate(refreshed(rp, login), expected_nonce=None, original=login)
    assert caught.value.reason == "azp"


@pytest.mark.parametrize(
    ("edits", "sign", "expected"),
    [
        pytest.param({}, {"tamper": Tamper.BAD_SIGNATURE}, "signature", id="bad-signature"),
        pytest.param({"exp": lambda c: c["iat"] - 360}, {}, "exp", id="expired"),
    ],
)
async def test_refreshed_id_token_gets_the_full_validation(
    rp: RP, original: IDToken, edits: ClaimEdits, sign: dict[str, Any], expected: str
) -> None:
    token = refreshed(rp, original, edits, **sign)

    with pytest.raises(IDTokenValidationError) as caught:
        await rp.validate(token, expected_nonce=None, original=original)

    assert caught.value.reason == expected
    assert not isinstance(caught.value, RefreshContinuityError)


async def test_refresh_hours_after_login_keeps_the_original_auth_time_under_max_age(
    rp: RP,
) -> None:
    rp = rp.configured(max_age=300)
    login = await rp.validate(rp.mint())
    rp.op.misbehave.clock_offset = 3 * 3600
    later = replace(rp, validator=TokenValidator(rp.jwks, clock=lambda: time.time() + 3 * 3600))

    id_token = await later.validate(refreshed(rp, login), expected_nonce=None, original=login)

    assert id_token.auth_time == login.auth_time
    assert await later.reason(rp.mint({"auth_time": login.auth_time})) == "auth_time"


async def test_refresh_with_an_expected_nonce_is_a_programming_error(
    rp: RP, original: IDToken
) -> None:
    with pytest.raises(ConfigurationError):
        await rp.validate(refreshed(rp, original), original=original)


# -- U: signed UserInfo (row 48), on the same core -----------------------------------------------


def userinfo_jwt(rp: RP, edits: ClaimEdits | None = None, **sign: Any) -> str:
    honest = {"iss": rp.op.issuer, "aud": CLIENT, "sub": "alice", "email": "alice@example.com"}
    return rp.op.minter.sign(apply_edits(honest, edits or {}), **sign)


async def userinfo_reason(rp: RP, token: str) -> str:
    with pytest.raises(UserInfoError) as caught:
        await rp.validator.validate_userinfo_jwt(token, config=rp.config, metadata=rp.metadata)
    return caught.value.reason


async def test_signed_userinfo_is_verified_and_its_claims_returned(rp: RP) -> None:
    rp = rp.configured(userinfo_signed_response_alg="RS256")

    claims = await rp.validator.validate_userinfo_jwt(
        userinfo_jwt(rp), config=rp.config, metadata=rp.metadata
    )

    assert (claims["sub"], claims["email"]) == ("alice", "alice@example.com")


@pytest.mark.parametrize(
    ("edits", "sign", "expected"),
    [
        pytest.param({}, {"tamper": Tamper.BAD_SIGNATURE}, "signature", id="bad-signature"),
        pytest.param({}, {"alg": "ES256"}, "alg", id="another-algorithm"),
        pytest.param({"iss": "https://other.example"}, {}, "iss", id="wrong-issuer"),
        pytest.param({"aud": "other-client"}, {}, "aud", id="aud-without-client-id"),
        pytest.param({"aud": ABSENT}, {}, "aud", id="no-aud"),
    ],
)
async def test_bad_signed_userinfo_is_rejected(
    rp: RP, edits: ClaimEdits, sign: dict[str, Any], expected: str
) -> None:
    rp = rp.configured(userinfo_signed_response_alg="RS256")

    assert await userinfo_reason(rp, userinfo_jwt(rp, edits, **sign)) == expected


async def test_signed_userinfo_without_configuration_is_a_programming_error(rp: RP) -> None:
    with pytest.raises(ConfigurationError):
        await rp.validator.validate_userinfo_jwt(
            userinfo_jwt(rp), config=rp.config, metadata=rp.metadata
        )
