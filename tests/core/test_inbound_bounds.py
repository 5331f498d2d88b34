"""Bounds on everything a browser sends into the core (issue 13, section 1): callback and login
parameters are refused with a typed error before the store is asked about them and before any
request reaches the provider; ID and logout tokens' ``sub``, ``sid``, ``jti`` and ``nonce`` are
bounded as OpenID Connect Core §2 bounds ``sub``.

Each refusal asserts the error, that the fake OP's oracle saw no token request (nor any other),
and what became of the pending login: a code response of this browser's login clears it (as a
duplicated parameter does, row 14); an error response leaves it (row 13).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from rpkit._jwt import MAX_CLAIM_LENGTH, Rejected, string_claim, subject
from rpkit.client import LoginRequest
from rpkit.config import ProviderConfig
from rpkit.errors import (
    AuthorizationResponseError,
    ConfigurationError,
    IDTokenValidationError,
    InvalidGrantError,
    InvalidStateError,
    LogoutTokenValidationError,
    MalformedParameterError,
    OversizedParameterError,
    TokenEndpointError,
)
from rpkit.flow import check_callback_params, is_issued_state, printable, validate_params
from rpkit.store import MemoryStore
from rpkit.testing import AuthorizationResponse, FakeOP
from tests.checklist.conftest import Harness, provider_config

TXN_PREFIX = "rpkit:txn:"


class RecordingStore(MemoryStore):
    """A memory store that remembers every key it was asked to read, take or delete."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    async def get(self, key: str) -> bytes | None:
        self.asked.append(key)
        return await super().get(key)

    async def consume(self, key: str) -> bytes | None:
        self.asked.append(key)
        return await super().consume(key)

    async def delete(self, key: str) -> None:
        self.asked.append(key)
        await super().delete(key)


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore()


@pytest.fixture
def harness(fake_op: FakeOP, fake_op_http: httpx.AsyncClient, store: RecordingStore) -> Harness:
    return Harness(fake_op, fake_op_http, store, provider_config(fake_op))


def replaced(callback: AuthorizationResponse, **values: str) -> list[tuple[str, str]]:
    """The callback's parameters with ``values`` in place of (or added to) its own."""
    params = [(name, values.pop(name, value)) for name, value in callback.params]
    return params + list(values.items())


async def refused(
    harness: Harness,
    error: type[Exception],
    params: Sequence[tuple[str, str]],
    request: LoginRequest,
    *,
    login_left: bool,
) -> Exception:
    """Deliver ``params``: ``error``, no request at all to the OP, the pending login kept or
    cleared as said, and no store key asked about but the pending login's own."""
    store = harness.store
    assert isinstance(store, RecordingStore)
    before = harness.counts()
    store.asked.clear()
    with pytest.raises(error) as caught:
        await harness.finish(params)
    asked = list(store.asked)
    assert harness.counts() == before, "a request reached the provider"
    assert await harness.transaction_exists(request.state) == login_left
    assert set(asked) <= {TXN_PREFIX + request.state}, asked
    store.asked = asked
    return caught.value


# -- the authorization code --------------------------------------------------------------------


async def test_an_oversized_code_is_refused_before_the_token_request(harness: Harness) -> None:
    request, callback = await harness.start()

    await refused(
        harness,
        OversizedParameterError,
        replaced(callback, code="c" * 2049),
        request,
        login_left=False,
    )


@pytest.mark.parametrize(
    "code", ["c0de\n", "c0de\r\n", "\tc0de", "c\x00de", "c\x7fde", "cödé", "c\u2028de"]
)
async def test_a_code_outside_vschar_is_refused_before_the_token_request(
    harness: Harness, code: str
) -> None:
    request, callback = await harness.start()

    error = await refused(
        harness, MalformedParameterError, replaced(callback, code=code), request, login_left=False
    )

    assert error.code == "parameter_malformed"  # type: ignore[attr-defined]
    assert code not in str(error)


async def test_a_code_at_the_bound_reaches_the_token_endpoint(harness: Harness) -> None:
    _, callback = await harness.start()

    with pytest.raises(InvalidGrantError):  # never issued: the OP refuses it, once
        await harness.finish(replaced(callback, code="c" * 2048))

    assert harness.op.oracle.count("token") == 1


async def test_max_code_length_lets_a_provider_with_longer_codes_through(harness: Harness) -> None:
    harness.reconfigure(max_code_length=4096)
    _, callback = await harness.start()

    with pytest.raises(TokenEndpointError):
        await harness.finish(replaced(callback, code="c" * 4096))

    assert harness.op.oracle.count("token") == 1


@pytest.mark.parametrize("length", [0, -1, 65537])
def test_max_code_length_out_of_range_is_a_configuration_error(
    fake_op: FakeOP, length: int
) -> None:
    with pytest.raises(ConfigurationError, match="max_code_length"):
        provider_config(fake_op, max_code_length=length)


# -- state, iss, error and the rest --------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    [
        lambda s: s + "A",  # 44 characters
        lambda s: s[:-1],  # 42
        lambda s: s[:-1] + "+",  # the standard base64 alphabet
        lambda s: s[:-1] + "=",
        lambda s: s + "\n",  # where a `$` anchor would have matched
        lambda s: s[:-1] + "é",
    ],
    ids=["44", "42", "plus", "padding", "newline", "non-ascii"],
)
async def test_a_state_not_of_the_shape_rpkit_mints_is_never_looked_up(
    harness: Harness, shape: Any
) -> None:
    request, callback = await harness.start()
    forged = shape(request.state)
    assert not is_issued_state(forged)

    await refused(
        harness, InvalidStateError, replaced(callback, state=forged), request, login_left=True
    )

    assert harness.store.asked == []  # type: ignore[attr-defined]
    assert (await harness.finish(callback)).identity.subject == "alice"


async def test_an_oversized_state_is_refused_without_a_lookup(harness: Harness) -> None:
    request, callback = await harness.start()

    await refused(
        harness,
        OversizedParameterError,
        replaced(callback, state="s" * 100_000),
        request,
        login_left=True,
    )

    assert harness.store.asked == []  # type: ignore[attr-defined]


async def test_an_oversized_iss_is_refused_before_it_is_compared(harness: Harness) -> None:
    request, callback = await harness.start()
    iss = harness.op.issuer + "/" + "x" * 2048

    await refused(
        harness, OversizedParameterError, replaced(callback, iss=iss), request, login_left=False
    )


@pytest.mark.parametrize("error", ['access_denied"', "access\\denied", "accès_refusé", "a\nb"])
async def test_an_op_error_outside_nqschar_is_refused_and_leaves_the_login_pending(
    harness: Harness, error: str
) -> None:
    request, callback = await harness.start()
    forged = [("error", error), ("state", request.state), ("iss", harness.op.issuer)]

    await refused(harness, MalformedParameterError, forged, request, login_left=True)

    assert (await harness.finish(callback)).identity.subject == "alice"


async def test_an_oversized_error_description_is_refused(harness: Harness) -> None:
    request, _ = await harness.start()
    forged = [
        ("error", "access_denied"),
        ("error_description", "d" * 4097),
        ("state", request.state),
        ("iss", harness.op.issuer),
    ]

    await refused(harness, OversizedParameterError, forged, request, login_left=True)


async def test_an_entra_style_error_description_with_line_breaks_is_still_a_denial(
    harness: Harness,
) -> None:
    request, _ = await harness.start()
    description = "AADSTS65004: User declined to consent.\r\nTrace ID: 0f\r\nTimestamp: 2024"
    denied = [
        ("error", "access_denied"),
        ("error_description", description),
        ("state", request.state),
        ("iss", harness.op.issuer),
    ]

    error = await refused(harness, AuthorizationResponseError, denied, request, login_left=False)

    assert error.description == description  # type: ignore[attr-defined]


async def test_a_callback_with_too_many_parameters_is_refused(harness: Harness) -> None:
    request, callback = await harness.start()
    padded = [*callback.params, *((f"p{n}", "x") for n in range(64))]

    await refused(harness, OversizedParameterError, padded, request, login_left=False)


async def test_a_callback_with_an_oversized_parameter_name_is_refused(harness: Harness) -> None:
    request, callback = await harness.start()

    await refused(
        harness,
        OversizedParameterError,
        [*callback.params, ("n" * 129, "x")],
        request,
        login_left=False,
    )


async def test_an_oversized_unknown_parameter_is_refused_and_not_named(harness: Harness) -> None:
    request, callback = await harness.start()

    error = await refused(
        harness,
        OversizedParameterError,
        [*callback.params, ("session_stat\u0435", "x" * 4097)],
        request,
        login_left=False,
    )

    assert "session_stat" not in str(error)


def test_callback_params_within_bounds_pass_unchanged(fake_op: FakeOP) -> None:
    config = provider_config(fake_op)
    params = [
        ("code", "c" * 2048),
        ("state", "s" * 43),
        ("iss", fake_op.issuer),
        ("session_state", "x" * 4096),
    ]

    assert check_callback_params(config, params) == dict(params)


# -- login parameters ------------------------------------------------------------------------------


async def test_a_login_hint_at_its_bound_is_passed_on(harness: Harness) -> None:
    hint = "a" * 308 + "@example.org"
    assert len(hint) == 320

    await harness.start(params={"login_hint": hint})

    assert harness.op.oracle.last("authorize").param("login_hint") == hint


async def test_an_oversized_login_hint_is_refused_before_anything_is_stored(
    harness: Harness,
) -> None:
    with pytest.raises(OversizedParameterError):
        await harness.rp.begin_login(
            "fake", redirect_uri=harness.redirect_uri, params={"login_hint": "a" * 321}
        )

    assert len(harness.store) == 0
    assert harness.counts() == {}


@pytest.mark.parametrize(
    "hint", ["bob\n", "bob\r", "bob\r\nX-Injected: 1", "\nbob", "bob\x85", "bob\u2028", "bob\x00"]
)
async def test_a_login_hint_with_a_control_character_is_refused(
    harness: Harness, hint: str
) -> None:
    with pytest.raises(MalformedParameterError):
        await harness.rp.begin_login(
            "fake", redirect_uri=harness.redirect_uri, params={"login_hint": hint}
        )

    assert len(harness.store) == 0
    assert harness.counts() == {}


@pytest.mark.parametrize(
    "prompt", ["login\xa0consent", "login  consent", " login", "login\n", "login\u2003consent"]
)
def test_a_prompt_not_made_of_single_spaced_words_is_refused(fake_op: FakeOP, prompt: str) -> None:
    with pytest.raises(MalformedParameterError, match="prompt"):
        validate_params(provider_config(fake_op), {"prompt": prompt})


@pytest.mark.parametrize("prompt", ["login", "login consent", "select_account", "none"])
def test_a_prompt_of_the_specifications_words_is_passed_on(fake_op: FakeOP, prompt: str) -> None:
    assert validate_params(provider_config(fake_op), {"prompt": prompt}) == {"prompt": prompt}


def test_an_acr_values_over_512_characters_is_refused(fake_op: FakeOP) -> None:
    with pytest.raises(OversizedParameterError):
        validate_params(provider_config(fake_op), {"acr_values": "x" * 513})


def test_a_malformed_configured_parameter_stays_a_configuration_error(fake_op: FakeOP) -> None:
    config = provider_config(fake_op, extra_authorization_params={"ui_locales": "fr\nde"})

    with pytest.raises(ConfigurationError, match="extra_authorization_params"):
        validate_params(config, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("bob@example.org", True), ("Zoë", True), ("bob\n", False), ("\x9b", False), ("", True)],
)
def test_printable_refuses_control_characters_and_separators(value: str, expected: bool) -> None:
    assert printable(value) is expected


# -- claims: OpenID Connect Core §2 ---------------------------------------------------------------


async def id_token_refusal(harness: Harness, **claims: Any) -> str:
    harness.op.misbehave.id_token_claims = claims
    request, callback = await harness.start()
    before = harness.counts()
    with pytest.raises(IDTokenValidationError) as caught:
        await harness.finish(callback)
    assert harness.counts()["userinfo"] == before["userinfo"]
    assert not await harness.transaction_exists(request.state)
    return caught.value.reason


@pytest.mark.parametrize(
    "sub", ["a" * 256, "alicé", "alice\n", "al\x00ice", "\u0430lice"], ids=repr
)
async def test_an_id_token_sub_beyond_core_section_2_is_refused(harness: Harness, sub: str) -> None:
    assert await id_token_refusal(harness, sub=sub) == "sub"


async def test_an_id_token_sid_over_255_characters_is_refused(harness: Harness) -> None:
    assert await id_token_refusal(harness, sid="s" * 256) == "sid"


def test_a_sub_of_255_printable_ascii_characters_is_accepted() -> None:
    sub = "".join(chr(0x20 + n % 95) for n in range(255))

    assert subject({"sub": sub}) == sub


@pytest.mark.parametrize("name", ["jti", "sid", "sub"])
def test_string_claims_are_bounded_for_every_token_kind(name: str) -> None:
    assert string_claim({name: "x" * MAX_CLAIM_LENGTH}, name) == "x" * MAX_CLAIM_LENGTH
    with pytest.raises(Rejected) as caught:
        string_claim({name: "x" * (MAX_CLAIM_LENGTH + 1)}, name)
    assert caught.value.reason == name


def test_an_access_token_subject_may_be_any_string_within_the_bound() -> None:
    # RFC 9068 takes sub from RFC 7519: an Okta access token's sub is the user's login.
    assert string_claim({"sub": "josé@example.org"}) == "josé@example.org"


async def logout_refusal(harness: Harness, **claims: Any) -> str:
    await harness.login()
    token = harness.op.minter.mint_logout_token(
        audience=harness.config.client_id, subject="alice", sid="s1", claims=claims
    )
    with pytest.raises(LogoutTokenValidationError) as caught:
        await harness.rp.backchannel_logout("fake", token)
    return caught.value.reason


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"sub": "a" * 256}, "sub"),
        ({"sub": "alicé"}, "sub"),
        ({"sid": "s" * 256}, "sid"),
        ({"jti": "j" * 256}, "jti"),
    ],
    ids=["long-sub", "non-ascii-sub", "long-sid", "long-jti"],
)
async def test_a_logout_token_with_an_unbounded_claim_is_refused(
    harness: Harness, claims: dict[str, Any], reason: str
) -> None:
    assert await logout_refusal(harness, **claims) == reason


def test_provider_config_keeps_the_default_code_bound(fake_op: FakeOP) -> None:
    config: ProviderConfig = provider_config(fake_op)

    assert config.max_code_length == 2048
