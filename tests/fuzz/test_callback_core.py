"""The core's callback checks against any list of parameters: every outcome is the one the
documented order of checks predicts (duplicates, size and shape bounds, ``iss``, ``state``, the
OP's ``error``, front-channel tokens, ``code``), raised as that exact :class:`CallbackError`
subclass, and the stored transaction is kept, consumed or discarded exactly as documented."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rpkit.config import ProviderConfig
from rpkit.discovery import ProviderMetadata, parse_metadata
from rpkit.errors import (
    AuthorizationResponseError,
    CallbackError,
    DuplicateParameterError,
    FrontChannelTokenError,
    InvalidStateError,
    MalformedParameterError,
    OversizedParameterError,
    ResponseIssuerError,
)
from rpkit.flow import TRANSACTION_TTL, Callback, check_callback, new_transaction, store_transaction
from rpkit.store import MemoryStore
from rpkit.testing import FakeOP
from tests.core.test_inbound_bounds import RecordingStore
from tests.fuzz._budget import fuzz
from tests.fuzz.strategies import FRONT_CHANNEL_TOKENS, param_lists

NOW = 1_700_000_000
KEY_PREFIX = "rpkit:txn:"
# The documented bounds, written out again rather than imported: the model must not share a bug.
LIMITS = {"code": 2048, "iss": 2048, "error": 128}
OTHER_LIMIT = 4096
VSCHAR = {chr(c) for c in range(0x20, 0x7F)}
NQSCHAR = VSCHAR - {'"', "\\"}
B64URL = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class Setup:
    config: ProviderConfig
    metadata: ProviderMetadata


@pytest.fixture(scope="module")
def setup() -> Setup:
    op = FakeOP()
    config = op.provider_config()
    return Setup(config, parse_metadata(json.dumps(op.metadata()).encode(), config))


@dataclass(frozen=True)
class Scenario:
    stored: bool
    """A transaction is pending under the real state."""
    owner: str
    """``ours``, or ``other-provider``/``other-issuer`` when it belongs to another login."""
    stored_binding: str | None
    binding: str | None
    """The binding the callback arrives with."""
    expired: bool
    advertised: bool
    """The metadata advertises RFC 9207 ``iss``."""
    params: tuple[tuple[str, str], ...]


REAL_STATE = "\x00real-state"  # replaced by the transaction's state when the scenario runs


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    planted = []
    for name, choices in (
        ("state", [None, REAL_STATE, REAL_STATE, "", "not-a-stored-state"]),
        ("iss", [None, "https://op.rpkit.test", "https://op.rpkit.test/", ""]),
        ("code", [None, "", "c0de", "c0de", "c" * 2048, "c" * 2049, "c0de\n", "c\x7f", "c é"]),
    ):
        value = draw(st.sampled_from(choices))
        if value is not None:
            planted.append((name, value))
    extra = draw(param_lists.map(lambda params: params[:4]))
    params = draw(st.permutations(planted + extra))
    return Scenario(
        stored=draw(st.booleans()),
        owner=draw(st.sampled_from(["ours", "ours", "other-provider", "other-issuer"])),
        stored_binding=draw(st.sampled_from([None, "browser-a"])),
        binding=draw(st.sampled_from([None, "browser-a", "browser-b"])),
        expired=draw(st.booleans()),
        advertised=draw(st.booleans()),
        params=tuple(params),
    )


@dataclass(frozen=True)
class Expected:
    error: type[CallbackError] | None
    transaction_left: bool


def out_of_bounds(values: dict[str, str]) -> type[CallbackError] | None:
    """The bound a callback's values break first, if any (``check_callback_params``)."""
    if any(len(value) > LIMITS.get(name, OTHER_LIMIT) for name, value in values.items()):
        return OversizedParameterError
    code, error = values.get("code"), values.get("error")
    if (code and not set(code) <= VSCHAR) or (error and not set(error) <= NQSCHAR):
        return MalformedParameterError
    return None


def expected(  # noqa: PLR0911 - one return per documented check, in their order
    scenario: Scenario, params: list[tuple[str, str]], state: str
) -> Expected:
    """What the documented order of checks (``check_callback``'s docstring) predicts."""
    belongs = scenario.owner == "ours" and scenario.stored_binding in (None, scenario.binding)
    values = dict(params)
    repeated = any(n > 1 for n in Counter(name for name, _ in params).values())
    unbounded = None if repeated else out_of_bounds(values)
    iss = values.get("iss")
    bad_iss = iss != "https://op.rpkit.test" if iss is not None else scenario.advertised
    if repeated or unbounded or bad_iss:
        error = DuplicateParameterError if repeated else unbounded or ResponseIssuerError
        # A code response clears this browser's login; an error response proves nothing.
        sent_states = {value for name, value in params if name == "state"}
        pending = scenario.stored and state in sent_states and belongs
        cleared = "error" not in values and pending
        if error is ResponseIssuerError and not pending:
            error = InvalidStateError  # no login in progress here: said so, not "wrong iss"
        return Expected(error, scenario.stored and not cleared)
    sent = values.get("state", "")
    if len(sent) != 43 or not set(sent) <= B64URL:  # never issued: not looked up
        return Expected(InvalidStateError, scenario.stored)
    if not scenario.stored or sent != state or not belongs:
        return Expected(InvalidStateError, scenario.stored)
    if scenario.expired:
        return Expected(InvalidStateError, False)
    if "error" in values:
        return Expected(AuthorizationResponseError, False)
    if any(name in values for name in FRONT_CHANNEL_TOKENS):
        return Expected(FrontChannelTokenError, False)
    if not values.get("code"):
        return Expected(CallbackError, False)
    return Expected(None, False)


def issued_shape(key: str) -> bool:
    state = key.removeprefix(KEY_PREFIX)
    return len(state) == 43 and set(state) <= B64URL


async def outcome(
    store: MemoryStore,
    config: ProviderConfig,
    metadata: ProviderMetadata,
    params: list[tuple[str, str]],
    binding: str | None,
) -> Callback | CallbackError:
    try:
        return await check_callback(store, config, metadata, params, now=NOW, binding=binding)
    except CallbackError as exc:
        return exc


@given(scenario=scenarios())
@fuzz(500)
async def test_any_callback_parameters_give_the_documented_outcome(
    setup: Setup, scenario: Scenario
):
    store = RecordingStore()
    created = NOW - TRANSACTION_TTL - 1 if scenario.expired else NOW
    transaction = new_transaction(
        setup.config,
        redirect_uri="https://app.rpkit.test/auth/callback/fake",
        now=created,
        binding=scenario.stored_binding,
    )
    if scenario.owner == "other-provider":
        transaction = msgspec.structs.replace(transaction, provider_id="other")
    elif scenario.owner == "other-issuer":
        transaction = msgspec.structs.replace(transaction, issuer="https://op.rpkit.test/")
    if scenario.stored:
        await store_transaction(store, transaction)
    params = [(name, transaction.state if v == REAL_STATE else v) for name, v in scenario.params]
    metadata = msgspec.structs.replace(
        setup.metadata, authorization_response_iss_parameter_supported=scenario.advertised
    )
    want = expected(scenario, params, transaction.state)

    result = await outcome(store, setup.config, metadata, params, scenario.binding)

    if isinstance(result, CallbackError):
        assert type(result) is want.error, (result, params)
        if isinstance(result, AuthorizationResponseError):
            assert result.error == dict(params)["error"][:64]
    else:
        assert want.error is None, params
        assert result.transaction == transaction
        assert result.code == dict(params)["code"]
    assert all(issued_shape(key) for key in store.asked), store.asked  # junk is never looked up
    left = await store.get(KEY_PREFIX + transaction.state) is not None
    assert left == want.transaction_left, params
