"""Checklist group A (rows 6–15), and concurrent transactions (row 63): what rpkit puts in the
authorization request, and which authorization responses it refuses before any token request.

Two kinds of refusal appear here. A response that *is* bound to the pending transaction (right
``state``, ``iss`` and browser) but unusable (an OP error, front-channel tokens, a replay) is a
REJECT in the harness's sense: the transaction is consumed. A response that is *not* bound to it
(wrong or missing ``state`` or ``iss``, another browser, duplicated parameters) proves nothing
about who sent it, so it must neither use nor cancel the browser's real pending transaction
(row 13): the genuine response still completes the login afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from rpkit.client import LoginRequest, LoginResult, RelyingParty
from rpkit.errors import (
    AuthorizationResponseError,
    DuplicateParameterError,
    FrontChannelTokenError,
    InvalidStateError,
    ResponseIssuerError,
)
from rpkit.flow import TRANSACTION_TTL
from rpkit.store import MemoryStore
from rpkit.testing import (
    ABSENT,
    DEFAULT_CLIENT_ID,
    DEFAULT_REDIRECT_URI,
    AuthorizationResponse,
    Bounce,
    FakeClient,
    FakeOP,
)
from tests.checklist.conftest import Harness, provider_config

_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")
SILENT_ABOUT_ISS = {"authorization_response_iss_parameter_supported": ABSENT}


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def entropy_bits(value: str | None) -> int:
    """Bits carried by a base64url value (6 per character)."""
    assert value is not None
    assert _BASE64URL.match(value), f"{value!r} is not base64url"
    return 6 * len(value)


async def refused_unbound(
    harness: Harness,
    error: type[Exception],
    callback: AuthorizationResponse | Sequence[tuple[str, str]],
    request: LoginRequest,
    **kwargs: Any,
) -> Exception:
    """Deliver a response that is not bound to ``request``'s transaction and assert the refusal:
    ``error`` raised, no token or UserInfo request, and the pending transaction left in place."""
    before = harness.counts()
    with pytest.raises(error) as caught:
        await harness.finish(callback, **kwargs)
    after = harness.counts()
    assert (after["token"], after["userinfo"]) == (before["token"], before["userinfo"])
    assert await harness.transaction_exists(request.state), "an unbound response cancelled it"
    return caught.value


async def genuine_response_completes(
    harness: Harness, request: LoginRequest, **kwargs: Any
) -> LoginResult:
    """The honest OP answers ``request`` again, and that callback completes the login."""
    callback = await harness.op.approve(request.url)
    return await harness.finish(callback, **kwargs)


def with_clock(harness: Harness, offset: list[float]) -> None:
    """Give the harness a RelyingParty whose clock runs ``offset[0]`` seconds off real time."""
    harness.rp = RelyingParty(
        [harness.config],
        http=harness.http,
        store=harness.store,
        clock=lambda: time.time() + offset[0],
    )


# -- row 6 ----------------------------------------------------------------------------------------
@pytest.mark.checklist(6)
async def test_code_flow_requests_carry_fresh_state_nonce_and_pkce_on_every_run(
    harness: Harness, fake_op: FakeOP
):
    results = [await harness.login(), await harness.login()]

    authorizes, tokens = fake_op.oracle.of("authorize"), fake_op.oracle.of("token")
    assert len(authorizes) == len(tokens) == 2
    for authorize, token, result in zip(authorizes, tokens, results, strict=True):
        assert result.identity.subject == "alice"
        assert authorize.param("response_type") == "code"
        assert "openid" in (authorize.param("scope") or "").split()
        assert authorize.param("client_id") == DEFAULT_CLIENT_ID
        assert authorize.params("redirect_uri") == [DEFAULT_REDIRECT_URI]
        assert entropy_bits(authorize.param("state")) >= 128
        assert entropy_bits(authorize.param("nonce")) >= 128
        assert result.id_token.nonce == authorize.param("nonce")
        assert authorize.param("code_challenge_method") == "S256"
        verifier = token.param("code_verifier") or ""
        assert len(verifier) == 43
        assert s256(verifier) == authorize.param("code_challenge")
        assert token.param("grant_type") == "authorization_code"
        assert token.params("redirect_uri") == [DEFAULT_REDIRECT_URI]
        assert token.outcome == "ok"
    assert fake_op.oracle.reused_values() == {}
    assert tokens[0].param("code_verifier") != tokens[1].param("code_verifier")


# -- row 7 ----------------------------------------------------------------------------------------
@pytest.mark.checklist(7)
@pytest.mark.parametrize("mode", ["altered", "missing"])
async def test_callback_with_altered_or_missing_state_is_rejected_before_any_token_request(
    harness: Harness, fake_op: FakeOP, mode
):
    with fake_op.misbehaving(callback_state=mode):
        request, callback = await harness.start()

    await refused_unbound(harness, InvalidStateError, callback, request)

    assert fake_op.oracle.count("token") == 0
    assert (await genuine_response_completes(harness, request)).identity.subject == "alice"


# -- row 8 ----------------------------------------------------------------------------------------
@pytest.mark.checklist(8)
async def test_replayed_callback_is_rejected_after_its_first_use(harness: Harness, fake_op: FakeOP):
    request, callback = await harness.start()
    first = await harness.finish(callback)

    await harness.rejected(InvalidStateError, callback, request)

    assert first.identity.subject == "alice"
    assert fake_op.oracle.count("token") == 1


@pytest.mark.checklist(8)
async def test_callback_after_the_transaction_lifetime_is_rejected(
    harness: Harness, fake_op: FakeOP
):
    offset = [-(TRANSACTION_TTL + 1.0)]
    with_clock(harness, offset)
    request, callback = await harness.start()
    offset[0] = 0.0  # the user comes back ten minutes and a second later

    await harness.rejected(InvalidStateError, callback, request)

    assert fake_op.oracle.count("token") == 0


@pytest.mark.checklist(8)
async def test_callback_within_the_transaction_lifetime_is_accepted(harness: Harness):
    offset = [-(TRANSACTION_TTL - 60.0)]
    with_clock(harness, offset)
    _, callback = await harness.start()
    offset[0] = 0.0

    assert (await harness.finish(callback)).identity.subject == "alice"


@pytest.mark.checklist(8)
async def test_callback_after_the_store_expired_the_transaction_is_rejected(
    harness: Harness, fake_op: FakeOP
):
    now = [0.0]
    harness.store = MemoryStore(clock=lambda: now[0])
    harness.rp = RelyingParty([harness.config], http=harness.http, store=harness.store)
    request, callback = await harness.start()
    now[0] = TRANSACTION_TTL + 1.0

    await harness.rejected(InvalidStateError, callback, request)

    assert fake_op.oracle.count("token") == 0


# -- row 9 ----------------------------------------------------------------------------------------
@pytest.mark.checklist(9)
async def test_login_csrf_code_from_another_browser_is_rejected(harness: Harness, fake_op: FakeOP):
    attacker, attacker_callback = await harness.start(
        binding="browser-x", params={"login_hint": "bob"}
    )
    victim, victim_callback = await harness.start(binding="browser-y")

    await refused_unbound(
        harness, InvalidStateError, attacker_callback, attacker, binding="browser-y"
    )

    assert fake_op.oracle.count("token") == 0
    assert await harness.transaction_exists(victim.state), "the victim's own login was touched"
    result = await harness.finish(victim_callback, binding="browser-y")
    assert result.identity.subject == "alice"


@pytest.mark.checklist(9)
@pytest.mark.parametrize("victim_binding", [None, "browser-y"], ids=["no_cookie", "other_cookie"])
async def test_login_csrf_into_a_browser_without_a_pending_login_is_rejected(
    harness: Harness, fake_op: FakeOP, victim_binding
):
    attacker, attacker_callback = await harness.start(
        binding="browser-x", params={"login_hint": "bob"}
    )

    await refused_unbound(
        harness, InvalidStateError, attacker_callback, attacker, binding=victim_binding
    )

    assert fake_op.oracle.count("token") == 0


# -- row 10 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(10)
@pytest.mark.parametrize(
    "knobs",
    [
        {"callback_iss": "wrong"},
        {"callback_params": {"iss": lambda p: p["iss"] + "/"}},
        {"callback_iss": "missing"},
    ],
    ids=["a_issuer_plus_1", "a_issuer_plus_slash", "b_advertised_but_missing"],
)
async def test_callback_with_wrong_or_missing_advertised_iss_is_rejected(
    harness: Harness, fake_op: FakeOP, knobs
):
    with fake_op.misbehaving(**knobs):
        request, callback = await harness.start()

    await harness.rejected(ResponseIssuerError, callback, request)

    assert fake_op.oracle.count("token") == 0
    assert fake_op.oracle.count("userinfo") == 0


@pytest.mark.checklist(10)
@pytest.mark.parametrize("iss", ["missing", "correct"], ids=["c_iss_omitted", "d_iss_sent"])
async def test_callback_from_an_op_silent_about_iss_is_accepted(
    harness: Harness, fake_op: FakeOP, iss
):
    fake_op.misbehave.metadata = dict(SILENT_ABOUT_ISS)
    fake_op.misbehave.callback_iss = iss

    request, callback = await harness.start()
    result = await harness.finish(callback)

    assert callback.get("iss") == (fake_op.issuer if iss == "correct" else None)
    assert result.identity.issuer == fake_op.issuer
    assert not await harness.transaction_exists(request.state)


# -- row 11 ---------------------------------------------------------------------------------------
ATTACKER_ISSUER = "https://attacker.rpkit.test"
ATTACKER_CLIENT_ID = "rp-at-attacker"
ATTACKER_REDIRECT_URI = "https://app.rpkit.test/auth/callback/attacker"


@pytest.mark.checklist(11)
@pytest.mark.parametrize(
    "honest_knobs",
    [{}, {"callback_iss": "missing", "metadata": dict(SILENT_ABOUT_ISS)}],
    ids=["variant_1_iss_of_honest_op", "variant_2_no_iss"],
)
async def test_mix_up_response_never_reaches_either_token_endpoint(
    fake_op: FakeOP, store: MemoryStore, honest_knobs
):
    attacker = FakeOP(
        ATTACKER_ISSUER,
        clients=[FakeClient(ATTACKER_CLIENT_ID, redirect_uris=(ATTACKER_REDIRECT_URI,))],
    )
    attacker.misbehave.authorize_bounce = Bounce(
        fake_op.endpoints["authorize"], DEFAULT_CLIENT_ID, redirect_uri=DEFAULT_REDIRECT_URI
    )
    for name, value in honest_knobs.items():
        setattr(fake_op.misbehave, name, value)
    http = httpx.AsyncClient(transport=fake_op.transport(attacker), timeout=5.0)
    rp = RelyingParty(
        [
            provider_config(fake_op),
            provider_config(attacker, id="attacker", client_id=ATTACKER_CLIENT_ID),
        ],
        http=http,
        store=store,
    )

    login = await rp.begin_login("attacker", redirect_uri=ATTACKER_REDIRECT_URI)
    bounced = await attacker.approve(login.url)
    callback = await fake_op.approve(bounced.location)
    assert bounced.url == fake_op.endpoints["authorize"]
    assert callback.url == DEFAULT_REDIRECT_URI  # the honest provider's own callback
    with pytest.raises(InvalidStateError):
        await rp.complete_login("fake", callback.params)

    assert attacker.oracle.count("token") == 0, "the honest OP's code reached the attacker"
    assert fake_op.oracle.count("token") == 0
    assert fake_op.oracle.count("userinfo") == attacker.oracle.count("userinfo") == 0


# -- row 12 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(12)
async def test_form_post_error_response_is_rejected_and_clears_the_transaction(
    harness: Harness, fake_op: FakeOP
):
    harness.reconfigure(response_mode="form_post")
    fake_op.misbehave.authorize_error = "login_required"

    request, callback = await harness.start(params={"prompt": "none", "max_age": "0"})
    error = await harness.rejected(AuthorizationResponseError, callback, request)

    authorize = fake_op.oracle.last("authorize")
    assert (authorize.param("response_mode"), authorize.param("prompt")) == ("form_post", "none")
    assert authorize.param("max_age") == "0"
    assert (callback.method, callback.url) == ("POST", DEFAULT_REDIRECT_URI)
    assert isinstance(error, AuthorizationResponseError)
    assert error.error == "login_required"
    assert fake_op.oracle.count("token") == 0


# -- row 13 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(13)
@pytest.mark.parametrize(
    ("knobs", "error"),
    [
        ({"callback_state": "altered"}, InvalidStateError),
        ({"callback_state": "missing"}, InvalidStateError),
        ({"callback_iss": "wrong"}, ResponseIssuerError),
    ],
    ids=["unknown_state", "missing_state", "wrong_iss"],
)
async def test_unsolicited_error_does_not_cancel_the_pending_login(
    harness: Harness, fake_op: FakeOP, knobs, error
):
    with fake_op.misbehaving(authorize_error="access_denied", **knobs):
        request, callback = await harness.start()
    assert callback.get("error") == "access_denied"

    refusal = await refused_unbound(harness, error, callback, request)

    assert not isinstance(refusal, AuthorizationResponseError), "the OP's error was believed"
    assert (await genuine_response_completes(harness, request)).identity.subject == "alice"


@pytest.mark.checklist(13)
async def test_hand_made_error_with_an_unknown_state_does_not_cancel_the_pending_login(
    harness: Harness, fake_op: FakeOP
):
    request, callback = await harness.start()
    forged = [
        ("error", "access_denied"),
        ("state", "not-" + request.state),
        ("iss", fake_op.issuer),
    ]

    await refused_unbound(harness, InvalidStateError, forged, request)

    assert (await harness.finish(callback)).identity.subject == "alice"


# -- row 14 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(14)
@pytest.mark.parametrize("how", ["same", "different"])
@pytest.mark.parametrize("name", ["code", "state", "iss"])
async def test_callback_with_a_repeated_parameter_is_rejected(
    harness: Harness, fake_op: FakeOP, name, how
):
    with fake_op.misbehaving(callback_duplicates={name: how}):
        request, callback = await harness.start()
    assert [k for k, _ in callback.params].count(name) == 2

    await harness.rejected(DuplicateParameterError, callback, request)

    assert fake_op.oracle.count("token") == 0


# -- row 15 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(15)
@pytest.mark.parametrize("where", ["query", "fragment"])
@pytest.mark.parametrize(
    "tokens",
    [frozenset({"id_token"}), frozenset({"access_token"}), frozenset({"id_token", "access_token"})],
    ids=["id_token", "access_token", "both"],
)
async def test_tokens_in_the_front_channel_are_rejected(
    harness: Harness, fake_op: FakeOP, tokens, where
):
    with fake_op.misbehaving(front_channel_tokens=tokens, front_channel_in=where):
        request, callback = await harness.start()
    # A browser keeps the fragment to itself; deliver it too, as a page script forwarding it
    # would, to show that rpkit refuses the tokens wherever they come from.
    delivered = [*callback.params, *callback.fragment]
    assert {name for name, _ in delivered} >= tokens

    await harness.rejected(FrontChannelTokenError, delivered, request)

    assert fake_op.oracle.count("token") == 0


# -- row 63 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(63)
async def test_two_concurrent_logins_complete_in_reverse_order_without_mixing(
    harness: Harness, fake_op: FakeOP
):
    alice_login, alice_callback = await harness.start(params={"login_hint": "alice"})
    bob_login, bob_callback = await harness.start(params={"login_hint": "bob"})

    bob = await harness.finish(bob_callback)
    alice = await harness.finish(alice_callback)

    assert (alice.identity.subject, bob.identity.subject) == ("alice", "bob")
    assert alice.identity.claims["email"] == "alice@example.com"
    assert bob.identity.claims["email"] == "bob@example.org"
    alice_authorize, bob_authorize = fake_op.oracle.of("authorize")
    bob_token, alice_token = fake_op.oracle.of("token")
    assert s256(alice_token.param("code_verifier") or "") == alice_authorize.param("code_challenge")
    assert s256(bob_token.param("code_verifier") or "") == bob_authorize.param("code_challenge")
    assert alice.id_token.nonce == alice_authorize.param("nonce") != bob.id_token.nonce
    assert not await harness.transaction_exists(alice_login.state)
    assert not await harness.transaction_exists(bob_login.state)


SECOND_ISSUER = "https://op2.rpkit.test"
SECOND_REDIRECT_URI = "https://app.rpkit.test/auth/callback/second"


@pytest.mark.checklist(63)
async def test_two_concurrent_logins_at_two_providers_complete_in_reverse_order(
    fake_op: FakeOP, store: MemoryStore
):
    second = FakeOP(SECOND_ISSUER, clients=[FakeClient(redirect_uris=(SECOND_REDIRECT_URI,))])
    http = httpx.AsyncClient(transport=fake_op.transport(second), timeout=5.0)
    rp = RelyingParty(
        [provider_config(fake_op), provider_config(second, id="second")], http=http, store=store
    )

    first_login = await rp.begin_login(
        "fake", redirect_uri=DEFAULT_REDIRECT_URI, params={"login_hint": "alice"}
    )
    second_login = await rp.begin_login(
        "second", redirect_uri=SECOND_REDIRECT_URI, params={"login_hint": "bob"}
    )
    first_callback = await fake_op.approve(first_login.url)
    second_callback = await second.approve(second_login.url)
    bob = await rp.complete_login("second", second_callback.params)
    alice = await rp.complete_login("fake", first_callback.params)

    assert (alice.identity.issuer, alice.identity.subject) == (fake_op.issuer, "alice")
    assert (bob.identity.issuer, bob.identity.subject) == (SECOND_ISSUER, "bob")
    for op in (fake_op, second):
        authorize, token = op.oracle.last("authorize"), op.oracle.last("token")
        assert s256(token.param("code_verifier") or "") == authorize.param("code_challenge")
        assert token.param("redirect_uri") == authorize.param("redirect_uri")
    assert fake_op.oracle.count("token") == second.oracle.count("token") == 1


@pytest.mark.checklist(10)
@pytest.mark.checklist(9)
async def test_bad_code_response_from_another_browser_leaves_the_pending_login_alone(
    harness: Harness, fake_op: FakeOP
):
    with fake_op.misbehaving(callback_iss="wrong"):
        request, callback = await harness.start(binding="browser-y")

    # Refused before the token endpoint; this browser has no login in progress, so it is told
    # that (invalid_state), not that the issuer was wrong.
    await refused_unbound(harness, InvalidStateError, callback, request, binding="browser-x")

    assert fake_op.oracle.count("token") == 0
    result = await genuine_response_completes(harness, request, binding="browser-y")
    assert result.identity.subject == "alice"
