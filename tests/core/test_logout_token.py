"""Back-channel logout tokens (Back-Channel Logout §2.6): checklist rows 53 and 54.

Every malformed variant comes from ``fake_op.logout_token(defect=...)``; replay of a ``jti`` is the
flow layer's check, not the validator's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from rpkit.config import ProviderConfig
from rpkit.discovery import DiscoveryCache, ProviderMetadata
from rpkit.errors import LogoutTokenValidationError
from rpkit.id_token import LogoutToken, TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.testing import (
    ABSENT,
    BACKCHANNEL_LOGOUT_EVENT,
    DEFAULT_CLIENT_ID,
    FakeClient,
    FakeOP,
    LogoutDefect,
)
from rpkit.testing.knobs import ClaimEdits, apply_edits

CLIENT = DEFAULT_CLIENT_ID


def provider(op: FakeOP, **changes: Any) -> ProviderConfig:
    return op.provider_config(**changes)


@pytest.fixture
def config(fake_op: FakeOP) -> ProviderConfig:
    return provider(fake_op)


@pytest.fixture
async def metadata(fake_op_http: httpx.AsyncClient, config: ProviderConfig) -> ProviderMetadata:
    return await DiscoveryCache(fake_op_http).get(config)


Validate = Callable[..., Awaitable[LogoutToken]]


@pytest.fixture
def validate(
    fake_op_http: httpx.AsyncClient, config: ProviderConfig, metadata: ProviderMetadata
) -> Validate:
    """``await validate(token, config=...)``: the validator over the fake OP's keys."""
    validator = TokenValidator(JWKSCache(fake_op_http))

    async def run(token: str, config: ProviderConfig = config) -> LogoutToken:
        return await validator.validate_logout_token(token, config=config, metadata=metadata)

    return run


async def reason(validate: Validate, token: str, **options: Any) -> str:
    with pytest.raises(LogoutTokenValidationError) as caught:
        await validate(token, **options)
    return caught.value.reason


def edited(op: FakeOP, edits: ClaimEdits, **sign: Any) -> str:
    """A logout token for user alice and session sid-1, with claim ``edits``."""
    now = op.now()
    honest = {
        "iss": op.issuer,
        "aud": CLIENT,
        "iat": now,
        "exp": now + 120,
        "jti": "lt-1",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        "sub": "alice",
        "sid": "sid-1",
    }
    return op.minter.sign(apply_edits(honest, edits), **({"typ": "logout+jwt"} | sign))


async def test_valid_logout_token_is_accepted(fake_op: FakeOP, validate: Validate) -> None:
    token = fake_op.logout_token(sub="alice", sid="sid-1")

    logout = await validate(token)

    assert (logout.iss, logout.sub, logout.sid) == (fake_op.issuer, "alice", "sid-1")
    assert logout.jti
    assert logout.exp - logout.iat == 120


@pytest.mark.parametrize(
    ("names", "expected"),
    [({"sub": "alice"}, ("alice", None)), ({"sid": "sid-1"}, (None, "sid-1"))],
    ids=["sub-only", "sid-only"],
)
async def test_logout_token_naming_only_a_user_or_only_a_session_is_accepted(
    fake_op: FakeOP, validate: Validate, names: dict[str, str], expected: tuple[str | None, ...]
) -> None:
    logout = await validate(fake_op.logout_token(**names))

    assert (logout.sub, logout.sid) == expected


@pytest.mark.parametrize(
    ("defect", "expected"),
    [
        (LogoutDefect.ALG_NONE, "alg"),
        (LogoutDefect.WRONG_ALG, "alg"),
        (LogoutDefect.WRONG_ISSUER, "iss"),
        (LogoutDefect.WRONG_AUD, "aud"),
        (LogoutDefect.NO_EVENT, "events"),
        (LogoutDefect.WRONG_EVENT, "events"),
        (LogoutDefect.WITH_NONCE, "nonce"),
        (LogoutDefect.NO_SID_NO_SUB, "sub_or_sid"),
        (LogoutDefect.BAD_SIGNATURE, "signature"),
        (LogoutDefect.EXPIRED, "exp"),
    ],
    ids=str,
)
async def test_each_malformed_logout_token_is_rejected(
    fake_op: FakeOP, validate: Validate, defect: LogoutDefect, expected: str
) -> None:
    token = fake_op.logout_token(sub="alice", sid="sid-1", defect=defect)

    assert await reason(validate, token) == expected


def test_every_logout_defect_of_the_kit_is_covered() -> None:
    covered = {
        LogoutDefect.ALG_NONE,
        LogoutDefect.WRONG_ALG,
        LogoutDefect.WRONG_ISSUER,
        LogoutDefect.WRONG_AUD,
        LogoutDefect.NO_EVENT,
        LogoutDefect.WRONG_EVENT,
        LogoutDefect.WITH_NONCE,
        LogoutDefect.NO_SID_NO_SUB,
        LogoutDefect.BAD_SIGNATURE,
        LogoutDefect.EXPIRED,
    }

    assert covered == set(LogoutDefect)


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param({"jti": ABSENT}, "jti", id="no-jti"),
        pytest.param({"jti": ""}, "jti", id="empty-jti"),
        pytest.param({"iat": ABSENT}, "iat", id="no-iat"),
        pytest.param({"iat": lambda c: c["iat"] - 7 * 86400}, "iat", id="iat-a-week-old"),
        pytest.param({"exp": ABSENT}, "exp", id="no-exp"),
        pytest.param({"events": {BACKCHANNEL_LOGOUT_EVENT: "yes"}}, "events", id="event-not-obj"),
        pytest.param({"events": [BACKCHANNEL_LOGOUT_EVENT]}, "events", id="events-an-array"),
        pytest.param({"sub": ""}, "sub", id="empty-sub"),
        pytest.param({"sid": 7}, "sid", id="sid-not-a-string"),
        pytest.param({"aud": [CLIENT, "other-client"]}, "aud", id="untrusted-extra-aud"),
    ],
)
async def test_logout_token_with_bad_claims_is_rejected(
    fake_op: FakeOP, validate: Validate, edits: ClaimEdits, expected: str
) -> None:
    assert await reason(validate, edited(fake_op, edits)) == expected


async def test_logout_event_may_sit_beside_other_events(
    fake_op: FakeOP, validate: Validate
) -> None:
    events = {BACKCHANNEL_LOGOUT_EVENT: {}, "https://example.com/other-event": {"x": 1}}

    assert await validate(edited(fake_op, {"events": events}))


@pytest.mark.parametrize(
    ("typ", "accepted"),
    [
        ("logout+jwt", True),
        ("Logout+JWT", True),
        ("application/logout+jwt", True),
        (None, True),
        ("JWT", False),
        ("at+jwt", False),
    ],
)
async def test_type_header_when_present_must_be_logout_jwt(
    fake_op: FakeOP, validate: Validate, typ: str | None, accepted: bool
) -> None:
    token = edited(fake_op, {}, header={"typ": typ})

    if accepted:
        assert await validate(token)
    else:
        assert await reason(validate, token) == "typ"


async def test_id_token_is_not_a_logout_token(fake_op: FakeOP, validate: Validate) -> None:
    id_token = fake_op.minter.mint_id_token(audience=CLIENT, subject="alice")
    untyped = fake_op.minter.mint_id_token(audience=CLIENT, subject="alice", header={"typ": None})

    assert await reason(validate, id_token) == "typ"
    assert await reason(validate, untyped) == "jti"


async def test_hs256_client_verifies_logout_tokens_with_its_secret(
    fake_op: FakeOP, validate: Validate
) -> None:
    fake_op.register_client(FakeClient(id_token_signed_response_alg="HS256"))
    config = provider(fake_op, id_token_signed_response_alg="HS256")
    token = fake_op.logout_token(sub="alice")

    assert (await validate(token, config=config)).sub == "alice"
    rs256 = edited(fake_op, {})
    assert await reason(validate, rs256, config=config) == "alg"


async def test_client_accepting_unsigned_id_tokens_still_refuses_unsigned_logout_tokens(
    fake_op: FakeOP, validate: Validate
) -> None:
    config = provider(fake_op, id_token_signed_response_alg="none")
    unsigned = edited(fake_op, {}, alg="none")

    assert await reason(validate, unsigned, config=config) == "alg"


async def test_jti_replay_is_left_to_the_caller(fake_op: FakeOP, validate: Validate) -> None:
    token = fake_op.logout_token(sid="sid-1")

    first, second = await validate(token), await validate(token)

    assert first.jti == second.jti
