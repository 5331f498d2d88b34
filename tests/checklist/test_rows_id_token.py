"""Checklist group I (rows 20–37): the ID token from the code exchange, end to end.

Each login runs through :class:`~rpkit.client.RelyingParty` against the fake OP. An ACCEPT
completes the login (UserInfo included); a REJECT is the harness's triple — the typed
:class:`~rpkit.errors.IDTokenValidationError` with the ``reason`` of the failed check, no
UserInfo request after the bad ID token, and the transaction gone — and the token endpoint was
reached exactly once, so the refusal is about the ID token and not something earlier.
"""

from __future__ import annotations

from typing import Any

import pytest

from rpkit.errors import IDTokenValidationError
from rpkit.testing import ABSENT, DEFAULT_CLIENT_ID, FakeOP, Tamper
from tests.checklist.conftest import Harness, accepts_id_token, jose_header, rejects_id_token

DAY = 86400


def lists_none(metadata: dict[str, Any]) -> list[str]:
    return [*metadata["id_token_signing_alg_values_supported"], "none"]


# -- row 20 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(20)
async def test_rs256_id_token_with_kid_and_valid_claims_completes_the_login(
    harness: Harness, fake_op: FakeOP
):
    result = await accepts_id_token(harness)

    header = jose_header(result.tokens.id_token or "")
    assert header["alg"] == "RS256"
    assert header["kid"] == fake_op.keys.kid("RS256")
    token = result.id_token
    assert (token.iss, token.sub, token.aud) == (fake_op.issuer, "alice", (DEFAULT_CLIENT_ID,))
    assert token.nonce == fake_op.oracle.last("authorize").param("nonce")
    assert token.at_hash is not None
    assert fake_op.oracle.count("jwks") == 1


# -- row 21 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(21)
@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_id_token_with_corrupted_signature_is_rejected(
    harness: Harness, fake_op: FakeOP, alg: str
):
    harness.reconfigure(id_token_signed_response_alg=alg)
    fake_op.misbehave.id_token_alg = alg
    fake_op.misbehave.id_token_tamper = Tamper.BAD_SIGNATURE

    await rejects_id_token(harness, "signature")


# -- row 22 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(22)
async def test_es256_id_token_is_accepted_when_es256_is_configured(
    harness: Harness, fake_op: FakeOP
):
    harness.reconfigure(id_token_signed_response_alg="ES256")
    fake_op.misbehave.id_token_alg = "ES256"

    result = await accepts_id_token(harness)

    assert jose_header(result.tokens.id_token or "")["alg"] == "ES256"


@pytest.mark.checklist(22)
async def test_es256_id_token_is_rejected_for_an_rs256_client_although_the_op_lists_both(
    harness: Harness, fake_op: FakeOP
):
    advertised = fake_op.metadata()["id_token_signing_alg_values_supported"]
    assert {"RS256", "ES256"} <= set(advertised)
    fake_op.misbehave.id_token_alg = "ES256"

    await rejects_id_token(harness, "alg")


@pytest.mark.checklist(22)
async def test_rs256_id_token_signed_with_a_key_outside_the_jwks_is_rejected(
    harness: Harness, fake_op: FakeOP
):
    fake_op.misbehave.id_token_tamper = Tamper.UNKNOWN_KEY

    await rejects_id_token(harness, "key")


# -- row 23 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(23)
async def test_hs256_id_token_keyed_by_the_client_secret_is_accepted_when_configured(
    harness: Harness, fake_op: FakeOP
):
    harness.reconfigure(id_token_signed_response_alg="HS256")
    fake_op.misbehave.id_token_alg = "HS256"

    result = await accepts_id_token(harness)

    assert jose_header(result.tokens.id_token or "")["alg"] == "HS256"


MULTI_AUD = {"aud": [DEFAULT_CLIENT_ID, "partner-api"], "azp": DEFAULT_CLIENT_ID}


@pytest.mark.checklist(23)
@pytest.mark.parametrize(
    ("knobs", "trusted", "reason"),
    [
        pytest.param(
            {"id_token_tamper": Tamper.BAD_SIGNATURE}, frozenset(), "signature", id="corrupted-mac"
        ),
        pytest.param({"id_token_claims": MULTI_AUD}, frozenset(), "aud", id="multi-valued-aud"),
        # Even an audience the client trusts (row 27) is refused under a MAC.
        pytest.param(
            {"id_token_claims": MULTI_AUD},
            frozenset({"partner-api"}),
            "aud",
            id="multi-valued-aud-trusted",
        ),
    ],
)
async def test_defective_hs256_id_token_is_rejected_on_an_hs256_client(
    harness: Harness,
    fake_op: FakeOP,
    knobs: dict[str, Any],
    trusted: frozenset[str],
    reason: str,
):
    harness.reconfigure(id_token_signed_response_alg="HS256", trusted_audiences=trusted)
    fake_op.misbehave.id_token_alg = "HS256"
    for name, value in knobs.items():
        setattr(fake_op.misbehave, name, value)

    await rejects_id_token(harness, reason)


@pytest.mark.checklist(23)
@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"id_token_tamper": Tamper.HS256_PUBLIC_KEY}, id="keyed-by-rsa-public-key"),
        pytest.param({"id_token_alg": "HS256"}, id="keyed-by-client-secret"),
    ],
)
async def test_hs256_id_token_is_rejected_on_an_rs256_client(
    harness: Harness, fake_op: FakeOP, knobs: dict[str, Any]
):
    for name, value in knobs.items():
        setattr(fake_op.misbehave, name, value)

    await rejects_id_token(harness, "alg")

    # Refused on the header alone: no key was looked up for the confused token.
    assert fake_op.oracle.count("jwks") == 0


# -- row 24 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(24)
@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"id_token_alg": "none"}, id="op-signs-none"),
        pytest.param({"id_token_tamper": Tamper.ALG_NONE}, id="tampered-to-none"),
    ],
)
async def test_unsigned_id_token_is_rejected_by_default_even_when_the_metadata_lists_none(
    harness: Harness, fake_op: FakeOP, knobs: dict[str, Any]
):
    fake_op.misbehave.metadata = {"id_token_signing_alg_values_supported": lists_none}
    for name, value in knobs.items():
        setattr(fake_op.misbehave, name, value)
    assert "none" in fake_op.metadata()["id_token_signing_alg_values_supported"]

    await rejects_id_token(harness, "alg")


@pytest.mark.checklist(24)
async def test_unsigned_id_token_is_accepted_only_when_none_is_configured(
    harness: Harness, fake_op: FakeOP
):
    fake_op.misbehave.metadata = {"id_token_signing_alg_values_supported": lists_none}
    fake_op.misbehave.id_token_alg = "none"
    harness.reconfigure(id_token_signed_response_alg="none")

    result = await accepts_id_token(harness)

    assert jose_header(result.tokens.id_token or "")["alg"] == "none"
    assert (result.tokens.id_token or "").endswith(".")


# -- rows 25–33: one claim defect each ------------------------------------------------------------
def defect(row: int, edits: dict[str, Any], reason: str, *, id: str) -> Any:
    """One claim-edit variant of checklist ``row``, rejected for ``reason``."""
    return pytest.param(edits, reason, id=id, marks=pytest.mark.checklist(row))


CLAIM_DEFECTS = [
    # row 25: iss
    defect(25, {"iss": lambda c: c["iss"] + "1"}, "iss", id="25-iss-plus-1"),
    defect(25, {"iss": "https://example.org/"}, "iss", id="25-iss-other-issuer"),
    defect(25, {"iss": ABSENT}, "iss", id="25-iss-absent"),
    # row 26: aud
    defect(26, {"aud": lambda c: c["aud"] + "1"}, "aud", id="26-aud-plus-1"),
    defect(26, {"aud": ABSENT}, "aud", id="26-aud-absent"),
    # row 27: extra audiences
    defect(27, {"aud": lambda c: [c["aud"], "untrusted"]}, "aud", id="27a-untrusted-aud-no-azp"),
    defect(
        27,
        {"aud": lambda c: [c["aud"], "untrusted"], "azp": lambda c: c["aud"]},
        "aud",
        id="27b-untrusted-aud-with-azp",
    ),
    # row 28: azp
    defect(28, {"aud": "other-client", "azp": DEFAULT_CLIENT_ID}, "aud", id="28a-aud-other-azp-us"),
    defect(28, {"azp": "other-client"}, "azp", id="28b-azp-other"),
    # row 29: sub
    defect(29, {"sub": ABSENT}, "sub", id="29-sub-absent"),
    defect(29, {"sub": 42}, "sub", id="29-sub-number"),
    defect(29, {"sub": ""}, "sub", id="29-sub-empty"),
    # row 30: iat
    defect(30, {"iat": ABSENT}, "iat", id="30-iat-absent"),
    defect(30, {"iat": "yesterday"}, "iat", id="30-iat-string"),
    defect(30, {"iat": lambda c: c["iat"] + 3600}, "iat", id="30-iat-an-hour-ahead"),
    # row 31: iat a week old, exp still valid
    defect(31, {"iat": lambda c: c["iat"] - 7 * DAY}, "iat", id="31-iat-a-week-ago"),
    # row 32: exp and nbf
    defect(32, {"exp": lambda c: c["iat"] - 360}, "exp", id="32-exp-6-min-past"),
    defect(32, {"exp": ABSENT}, "exp", id="32-exp-absent"),
    defect(32, {"exp": lambda c: str(c["exp"])}, "exp", id="32-exp-string"),
    defect(32, {"nbf": lambda c: c["iat"] + 3600}, "nbf", id="32-nbf-an-hour-ahead"),
    # row 33: nonce
    defect(33, {"nonce": lambda c: c["nonce"] + "1"}, "nonce", id="33-nonce-plus-1"),
    defect(33, {"nonce": ABSENT}, "nonce", id="33-nonce-absent"),
]


@pytest.mark.parametrize(("edits", "reason"), CLAIM_DEFECTS)
async def test_id_token_with_a_defective_claim_is_rejected(
    harness: Harness, fake_op: FakeOP, edits: dict[str, Any], reason: str
):
    fake_op.misbehave.id_token_claims = edits

    await rejects_id_token(harness, reason)


@pytest.mark.checklist(27)
async def test_id_token_with_aud_as_a_one_element_array_is_accepted(
    harness: Harness, fake_op: FakeOP
):
    fake_op.misbehave.id_token_claims = {"aud": lambda c: [c["aud"]]}

    result = await accepts_id_token(harness)

    assert result.id_token.aud == (DEFAULT_CLIENT_ID,)


@pytest.mark.checklist(27)
async def test_extra_audience_on_the_trust_list_is_accepted_only_with_azp_equal_to_the_client(
    harness: Harness, fake_op: FakeOP
):
    harness.reconfigure(trusted_audiences=frozenset({"partner-api"}))
    fake_op.misbehave.id_token_claims = {"aud": lambda c: [c["aud"], "partner-api"]}
    await rejects_id_token(harness, "azp")

    fake_op.misbehave.id_token_claims = {
        "aud": lambda c: [c["aud"], "partner-api"],
        "azp": lambda c: c["aud"],
    }
    result = await accepts_id_token(harness)

    assert result.id_token.aud == (DEFAULT_CLIENT_ID, "partner-api")
    assert result.id_token.azp == DEFAULT_CLIENT_ID


@pytest.mark.checklist(30)
async def test_id_token_minted_on_a_clock_an_hour_ahead_is_rejected(
    harness: Harness, fake_op: FakeOP
):
    fake_op.misbehave.clock_offset = 3600  # before the login: auth_time, iat and exp all shift

    await rejects_id_token(harness, "iat")


@pytest.mark.checklist(31)
async def test_week_old_iat_is_refused_by_the_max_iat_age_window_not_by_exp(
    harness: Harness, fake_op: FakeOP
):
    fake_op.misbehave.id_token_claims = {"iat": lambda c: c["iat"] - 7 * DAY}
    await rejects_id_token(harness, "iat")

    # The same token passes once the window is widened: the refusal was max_iat_age's.
    harness.reconfigure(max_iat_age=8 * DAY)
    result = await accepts_id_token(harness)

    assert result.id_token.exp - result.id_token.iat > 7 * DAY


# -- row 34 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(34)
async def test_id_token_carrying_the_nonce_of_a_concurrent_transaction_is_rejected(
    harness: Harness, fake_op: FakeOP
):
    request_a, callback_a = await harness.start()
    nonce_a = fake_op.oracle.last("authorize").param("nonce")
    request_b, callback_b = await harness.start()
    assert fake_op.oracle.last("authorize").param("nonce") != nonce_a

    with fake_op.misbehaving(id_token_claims={"nonce": nonce_a}):
        error = await harness.rejected(
            IDTokenValidationError, callback_b, request_b, stop_before="userinfo"
        )

    assert isinstance(error, IDTokenValidationError)
    assert error.reason == "nonce"
    # Login A is untouched by B's refusal and still completes with its own nonce.
    assert await harness.transaction_exists(request_a.state)
    result = await harness.finish(callback_a)
    assert result.id_token.nonce == nonce_a


@pytest.mark.checklist(34)
async def test_id_token_replaying_the_nonce_of_an_earlier_completed_login_is_rejected(
    harness: Harness, fake_op: FakeOP
):
    earlier = await accepts_id_token(harness)
    fake_op.misbehave.id_token_claims = {"nonce": earlier.id_token.nonce}

    await rejects_id_token(harness, "nonce")


@pytest.mark.checklist(34)
async def test_unexpected_nonce_is_rejected_by_the_validator(harness: Harness, fake_op: FakeOP):
    """A nonce when none was sent cannot happen through :class:`RelyingParty`: every transaction
    sends one (asserted first). The check is therefore exercised on the validator it calls."""
    await harness.start()
    assert fake_op.oracle.last("authorize").param("nonce")
    token = fake_op.minter.mint_id_token(
        audience=DEFAULT_CLIENT_ID, subject="alice", nonce="unexpected"
    )
    metadata = await harness.rp.metadata(harness.config.id)

    with pytest.raises(IDTokenValidationError) as caught:
        await harness.rp.validator.validate_id_token(
            token, config=harness.config, metadata=metadata, expected_nonce=None
        )

    assert caught.value.reason == "nonce"
    # The same token passes without its nonce: the refusal was the nonce's.
    plain = fake_op.minter.mint_id_token(audience=DEFAULT_CLIENT_ID, subject="alice")
    await harness.rp.validator.validate_id_token(
        plain, config=harness.config, metadata=metadata, expected_nonce=None
    )


# -- row 35 ---------------------------------------------------------------------------------------
MAX_AGE_SOURCES = [
    pytest.param("login-param", id="max_age-login-param"),
    pytest.param("configured", id="max_age-configured"),
]
AUTH_TIME_DEFECTS = [
    pytest.param({"auth_time": ABSENT}, id="auth_time-absent"),
    pytest.param({"auth_time": lambda c: c["iat"] - DAY}, id="auth_time-a-day-old"),
    pytest.param({"auth_time": lambda c: str(c["auth_time"])}, id="auth_time-string"),
]


def ask_max_age(harness: Harness, source: str) -> dict[str, Any]:
    """Make the next login send ``max_age=300``; returns ``start`` keyword arguments."""
    if source == "configured":
        harness.reconfigure(max_age=300)
        return {}
    return {"params": {"max_age": "300"}}


@pytest.mark.checklist(35)
@pytest.mark.parametrize("edits", AUTH_TIME_DEFECTS)
@pytest.mark.parametrize("source", MAX_AGE_SOURCES)
async def test_max_age_login_with_bad_auth_time_is_rejected(
    harness: Harness, fake_op: FakeOP, source: str, edits: dict[str, Any]
):
    start = ask_max_age(harness, source)
    fake_op.misbehave.id_token_claims = edits

    await rejects_id_token(harness, "auth_time", **start)

    assert fake_op.oracle.last("authorize").param("max_age") == "300"


@pytest.mark.checklist(35)
@pytest.mark.parametrize("source", MAX_AGE_SOURCES)
async def test_max_age_login_with_a_fresh_auth_time_is_accepted(
    harness: Harness, fake_op: FakeOP, source: str
):
    start = ask_max_age(harness, source)

    result = await accepts_id_token(harness, **start)

    assert fake_op.oracle.last("authorize").param("max_age") == "300"
    assert result.id_token.auth_time is not None


@pytest.mark.checklist(35)
@pytest.mark.parametrize(
    "edits",
    [
        pytest.param({"auth_time": ABSENT}, id="auth_time-absent"),
        pytest.param({"auth_time": lambda c: str(c["auth_time"])}, id="auth_time-string"),
    ],
)
async def test_require_auth_time_rejects_a_missing_or_malformed_auth_time(
    harness: Harness, fake_op: FakeOP, edits: dict[str, Any]
):
    harness.reconfigure(require_auth_time=True)
    fake_op.misbehave.id_token_claims = edits

    await rejects_id_token(harness, "auth_time")


# -- row 36 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(36)
async def test_id_token_with_a_wrong_at_hash_is_rejected(harness: Harness, fake_op: FakeOP):
    fake_op.misbehave.id_token_claims = {"at_hash": lambda c: c["at_hash"][::-1]}

    await rejects_id_token(harness, "at_hash")


@pytest.mark.checklist(36)
async def test_id_token_without_at_hash_is_accepted(harness: Harness, fake_op: FakeOP):
    fake_op.misbehave.id_token_claims = {"at_hash": ABSENT}

    result = await accepts_id_token(harness)

    assert result.id_token.at_hash is None


# -- row 37 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(37)
@pytest.mark.parametrize(
    ("knobs", "reason"),
    [
        pytest.param(
            {"id_token_header": {"crit": ["urn:example:unknown"], "urn:example:unknown": True}},
            "crit",
            id="unknown-crit",
        ),
        pytest.param({"id_token_tamper": Tamper.JWE}, "jwe", id="jwe-not-configured"),
    ],
)
async def test_id_token_with_unsupported_jose_features_is_rejected(
    harness: Harness, fake_op: FakeOP, knobs: dict[str, Any], reason: str
):
    for name, value in knobs.items():
        setattr(fake_op.misbehave, name, value)

    await rejects_id_token(harness, reason)


@pytest.mark.checklist(37)
async def test_id_token_with_unknown_claims_and_unrequested_acr_amr_is_accepted(
    harness: Harness, fake_op: FakeOP
):
    fake_op.misbehave.id_token_claims = {
        "acr": "urn:example:loa:3",
        "amr": ["pwd", "otp"],
        "x_unknown": "ignored",
    }

    result = await accepts_id_token(harness)

    assert result.id_token.acr == "urn:example:loa:3"
    assert result.id_token.amr == ("pwd", "otp")
    assert result.id_token.claims["x_unknown"] == "ignored"
