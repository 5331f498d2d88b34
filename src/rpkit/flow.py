"""The authorization request and the callback: where ``state``, ``nonce``, PKCE and the
authorization response checks live.

:func:`new_transaction` and :func:`authorization_url` start a login; the transaction is stored
under its ``state`` in a :class:`~rpkit.store.KeyValueStore` for ten minutes and consumed exactly
once. :func:`check_callback` runs the front-channel checks in the order RFC 9207 and
``rp-conformance.md`` §4 prescribe — duplicate parameters, ``iss``, ``state`` (lookup, browser
binding, consume), the OP's ``error``, tokens in the front channel — before any token request,
after bounding every parameter's size and shape: nothing a browser sent is looked up, stored or
forwarded before it passed those bounds.
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlencode

import msgspec

from rpkit._client_auth import new_code_verifier, s256_challenge
from rpkit.config import RESERVED_AUTHORIZATION_PARAMS, ProviderConfig
from rpkit.discovery import ProviderMetadata
from rpkit.errors import (
    AuthorizationResponseError,
    CallbackError,
    ConfigurationError,
    DuplicateParameterError,
    FrontChannelTokenError,
    InvalidStateError,
    MalformedParameterError,
    OversizedParameterError,
    ResponseIssuerError,
)
from rpkit.store import KeyValueStore
from rpkit.tenants import is_allowed_issuer

__all__ = [
    "MAX_CALLBACK_PARAMETERS",
    "MAX_CALLBACK_VALUE_LENGTH",
    "MAX_ISSUER_LENGTH",
    "MAX_LOGIN_HINT_LENGTH",
    "MAX_PARAMETER_LENGTH",
    "MAX_RETURN_TO_LENGTH",
    "TRANSACTION_TTL",
    "Callback",
    "Transaction",
    "authorization_params",
    "authorization_url",
    "check_callback",
    "check_callback_params",
    "check_hook_params",
    "is_issued_state",
    "new_transaction",
    "printable",
    "read_response",
    "safe_return_to",
    "take_transaction",
    "validate_params",
]

TRANSACTION_TTL = 600
"""Seconds a login transaction lives (ten minutes)."""
_KEY_PREFIX = "rpkit:txn:"
_NO_LOGIN = (
    "no sign-in is in progress in this browser for this provider (a bookmarked, reloaded or "
    "forwarded callback)"
)
_FRONT_CHANNEL_TOKENS = ("id_token", "access_token", "token", "refresh_token")
_PROMPTS = frozenset({"none", "login", "consent", "select_account", "create"})
_PROMPT = re.compile(r"[a-z_]{1,14}(?: [a-z_]{1,14}){0,4}")
_MAX_AGE = re.compile(r"[0-9]{1,9}")

MAX_PARAMETER_LENGTH = 512
"""Longest value of an extra authorization parameter (``acr_values``, ``ui_locales``...)."""
MAX_LOGIN_HINT_LENGTH = 320
"""Longest ``login_hint``: an email address is at most 320 characters (RFC 3696 errata)."""
MAX_RETURN_TO_LENGTH = 2048
"""Longest ``return_to`` (and ``target_link_uri``) a login or logout accepts."""
MAX_CALLBACK_PARAMETERS = 64
"""Most parameters a callback may carry (an OP sends a handful)."""
MAX_ISSUER_LENGTH = 2048
"""Longest ``iss`` in a callback or third-party login."""
MAX_CALLBACK_VALUE_LENGTH = 4096
"""Longest value of any other callback parameter (``error_description``, ``session_state``,
an unknown one); a provider-defined extra has its own limit."""
_MAX_NAME_LENGTH = 128
_MAX_ERROR_LENGTH = 128
_STATE = re.compile(r"[A-Za-z0-9_-]{43}")
"""What :func:`new_transaction` mints: ``secrets.token_urlsafe(32)``."""
_VSCHAR = re.compile(r"[\x20-\x7e]+")
"""RFC 6749 Appendix A: an authorization ``code`` is 1*VSCHAR."""
_NQSCHAR = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")
"""RFC 6749 Appendix A: an ``error`` is 1*NQSCHAR."""
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]*")
"""No C0 or C1 control character, line or paragraph separator, or lone surrogate."""


class Transaction(msgspec.Struct, frozen=True, kw_only=True):
    """One pending login, stored server-side under its ``state``; never sent to the browser."""

    state: str
    nonce: str
    code_verifier: str
    provider_id: str
    issuer: str
    """The issuer the login started with: the code is only ever exchanged there (row 11)."""
    redirect_uri: str
    return_to: str
    """A validated same-origin relative path (row 65)."""
    max_age: int | None
    created_at: int
    flow_id: str
    """A short random id for correlating log events; not a secret."""
    binding: str | None = None
    """A value tied to the browser (the adapter's transaction-cookie handle, hashed): a callback
    from another browser does not match and cannot consume this transaction (row 9)."""
    dpop_jwk: dict[str, Any] | None = None
    """The login's private DPoP key (RFC 9449) as a JWK, when the provider uses DPoP: its
    thumbprint went out as ``dpop_jkt``, and the code exchange must be proven with it."""
    pushed_until: int | None = None
    """When the login's pushed ``request_uri`` (RFC 9126) expires; None without PAR."""


class Callback(msgspec.Struct, frozen=True, kw_only=True):
    """A callback that passed every front-channel check: the code and its transaction."""

    code: str
    transaction: Transaction
    extras: Mapping[str, Any] = msgspec.field(default_factory=dict)
    """What the provider's :class:`~rpkit.hooks.CallbackExtras` read from the callback:
    browser-supplied, never evidence of an email."""


def safe_return_to(value: str | None, default: str = "/") -> str:
    """``value`` if it is a same-origin relative path, else ``default`` (row 65).

    Refused: absolute URLs, scheme-relative ``//host``, ``/\\host``, backslashes, control
    characters, and anything that decodes (once or twice) into one of those.
    """
    if not value or len(value) > MAX_RETURN_TO_LENGTH:
        return default
    for candidate in (value, unquote(value), unquote(unquote(value))):
        if not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
            return default
        if "\\" in candidate or any(ord(c) < 0x20 or ord(c) == 0x7F for c in candidate):
            return default
    return value


def printable(value: str) -> bool:
    """Whether ``value`` has no control character (C0, DEL, C1), no line or paragraph separator
    and no lone surrogate: what may go into a URL, a header or a log line."""
    return _PRINTABLE.fullmatch(value) is not None


def is_issued_state(value: str) -> bool:
    """Whether ``value`` has the shape of the ``state`` rpkit mints (43 base64url characters);
    anything else was never issued and is not looked up."""
    return _STATE.fullmatch(value) is not None


def validate_params(config: ProviderConfig, params: Mapping[str, str] | None) -> dict[str, str]:
    """Extra authorization parameters for one login, checked against the provider's allowlist
    and bounded: ``login_hint`` at most :data:`MAX_LOGIN_HINT_LENGTH` characters, any other
    value at most :data:`MAX_PARAMETER_LENGTH`, none with a control character; ``prompt`` made
    of the OpenID Connect values, ``max_age`` of 1 to 9 ASCII digits.

    Raises:
        ConfigurationError: a reserved or unlisted parameter, or a malformed configured value.
        OversizedParameterError: an asked value over its bound.
        MalformedParameterError: an asked value of the wrong shape.
    """
    asked = dict(params or {})
    merged = {**config.extra_authorization_params, **asked}
    _refuse_reserved(merged)
    unknown = sorted(set(merged) - config.allowed_authorization_params)
    if unknown:
        raise ConfigurationError(
            f"authorization parameters {unknown} are not allowed for {config.id!r}"
        )
    _check_values(asked)
    _check_configured_values(config.extra_authorization_params, "extra_authorization_params")
    return merged


def check_hook_params(config: ProviderConfig, params: dict[str, str]) -> dict[str, str]:
    """Parameters from the provider's ``hooks.authorization_params``: well-formed and never
    reserved; the allowlist does not apply (the provider's author wrote them).

    Raises:
        ConfigurationError: a reserved parameter or a malformed value.
    """
    _refuse_reserved(params)
    _check_configured_values(params, "hooks.authorization_params")
    return params


def _refuse_reserved(params: Mapping[str, str]) -> None:
    reserved = sorted(RESERVED_AUTHORIZATION_PARAMS & set(params))
    if reserved:
        raise ConfigurationError(f"authorization parameters {reserved} are set by rpkit only")


def _check_configured_values(params: Mapping[str, str], source: str) -> None:
    """The bounds of :func:`_check_values` on values the application or a provider's author
    wrote, not a browser: a ConfigurationError."""
    try:
        _check_values(params)
    except CallbackError as exc:
        raise ConfigurationError(f"{source}: {exc.detail}") from exc


def _check_values(params: Mapping[str, Any]) -> None:
    for name, value in params.items():
        if not isinstance(value, str) or not value:
            msg = f"authorization parameter {name!r} is empty or not a string"
            raise MalformedParameterError(msg)
        limit = MAX_LOGIN_HINT_LENGTH if name == "login_hint" else MAX_PARAMETER_LENGTH
        if len(value) > limit:
            msg = f"authorization parameter {name!r} exceeds {limit} characters"
            raise OversizedParameterError(msg)
        if not printable(value):
            msg = f"authorization parameter {name!r} has a control character"
            raise MalformedParameterError(msg)
    prompt = params.get("prompt")
    if prompt is not None and not (
        _PROMPT.fullmatch(prompt) and set(prompt.split(" ")) <= _PROMPTS
    ):
        raise MalformedParameterError(f"prompt must be made of {sorted(_PROMPTS)}")
    # Not str.isdigit(), which is true for '²' that int() refuses; 9 digits is 31 years.
    if "max_age" in params and not _MAX_AGE.fullmatch(params["max_age"]):
        raise MalformedParameterError("max_age must be a number of seconds (1 to 9 ASCII digits)")


def new_transaction(
    config: ProviderConfig,
    *,
    redirect_uri: str,
    now: int,
    return_to: str | None = None,
    max_age: int | None = None,
    binding: str | None = None,
    flow_id: str | None = None,
) -> Transaction:
    """Fresh ``state`` and ``nonce`` (256 bits each) and a PKCE verifier from 32 random bytes."""
    return Transaction(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        code_verifier=new_code_verifier(),
        provider_id=config.id,
        issuer=config.issuer,
        redirect_uri=redirect_uri,
        return_to=safe_return_to(return_to),
        max_age=config.max_age if max_age is None else max_age,
        created_at=now,
        flow_id=flow_id or secrets.token_hex(6),
        binding=binding,
    )


def authorization_url(
    config: ProviderConfig,
    metadata: ProviderMetadata,
    transaction: Transaction,
    extra: Mapping[str, str],
    *,
    dpop_jkt: str | None = None,
) -> str:
    """The authorization request (Core §3.1.2.1) as the browser's URL: the parameters of
    :func:`authorization_params`."""
    params = authorization_params(config, transaction, extra, dpop_jkt=dpop_jkt)
    endpoint = metadata.authorization_endpoint
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"


def authorization_params(
    config: ProviderConfig,
    transaction: Transaction,
    extra: Mapping[str, str],
    *,
    dpop_jkt: str | None = None,
) -> dict[str, str]:
    """The authorization request's parameters (Core §3.1.2.1): S256 PKCE always, even when the
    OP does not advertise it (row 5), unless the named ``skip_pkce`` relaxation is set;
    ``state`` always; ``nonce`` for OpenID Connect providers; ``dpop_jkt`` (RFC 9449 §10) when
    the login has a DPoP key. The browser's URL (:func:`authorization_url`) or a pushed
    request (:mod:`rpkit.par`) carries them."""
    params = dict(extra)
    params.update(
        response_type="code",
        client_id=config.client_id,
        redirect_uri=transaction.redirect_uri,
        scope=" ".join(config.scopes),
        state=transaction.state,
    )
    if not config.skip_pkce:
        params["code_challenge"] = s256_challenge(transaction.code_verifier)
        params["code_challenge_method"] = "S256"
    if not config.is_oauth2:  # OAuth 2.0 has no nonce; state and PKCE protect the flow
        params["nonce"] = transaction.nonce
    if config.response_mode == "form_post":
        params["response_mode"] = "form_post"
    if transaction.max_age is not None:
        params["max_age"] = str(transaction.max_age)
    if dpop_jkt is not None:
        params["dpop_jkt"] = dpop_jkt
    return params


async def store_transaction(store: KeyValueStore, transaction: Transaction) -> None:
    """Keep ``transaction`` under its ``state`` for :data:`TRANSACTION_TTL` seconds."""
    await store.set(
        _KEY_PREFIX + transaction.state, msgspec.json.encode(transaction), TRANSACTION_TTL
    )


async def check_callback(
    store: KeyValueStore,
    config: ProviderConfig,
    metadata: ProviderMetadata,
    params: Sequence[tuple[str, str]],
    *,
    now: int,
    binding: str | None = None,
) -> Callback:
    """Run every front-channel check of a callback that arrived on ``config``'s redirect URI:
    :func:`take_transaction`, then :func:`read_response`.

    Raises:
        OversizedParameterError: more than :data:`MAX_CALLBACK_PARAMETERS` parameters, a
            parameter over its bound (see :func:`check_callback_params`), or a provider-defined
            extra (``hooks.callback_extras``) over its limit.
        DuplicateParameterError: a parameter appears twice (row 14).
        MalformedParameterError: a ``code`` outside VSCHAR or an ``error`` outside NQSCHAR.
        ResponseIssuerError: ``iss`` wrong, or missing while advertised (row 10).
            For these four, a code response's transaction (found by its ``state``, when that has
            the shape rpkit mints, for this provider and browser) is cleared; an error
            response's is left alone (row 13).
        InvalidStateError: ``state`` missing, not of the shape rpkit mints (refused before the
            store is asked), unknown, expired, used, for another provider or another browser
            (rows 7–9, 11, 13); nothing is consumed in these cases.
        AuthorizationResponseError: the OP's ``error`` (row 12); the transaction is consumed.
        FrontChannelTokenError: tokens in a code-flow callback (row 15); consumed.
        CallbackError: no ``code``; consumed.
    """
    transaction, values = await take_transaction(
        store, config, metadata, params, now=now, binding=binding
    )
    return read_response(config, transaction, values)


async def take_transaction(
    store: KeyValueStore,
    config: ProviderConfig,
    metadata: ProviderMetadata,
    params: Sequence[tuple[str, str]],
    *,
    now: int,
    binding: str | None = None,
) -> tuple[Transaction, dict[str, str]]:
    """The first half of :func:`check_callback`: the bounds, ``iss`` and ``state`` checks, and
    the consumed transaction with the callback's values. What the provider answered is not
    judged yet (:func:`read_response`), so a caller learns the login's ``flow_id`` first.

    Raises:
        CallbackError: as :func:`check_callback`, up to and including ``InvalidStateError``.
    """
    try:
        values = check_callback_params(config, params)
        _check_issuer(config, metadata, values.get("iss"))
        _check_extra_sizes(config, values)
    except (
        DuplicateParameterError,
        MalformedParameterError,
        OversizedParameterError,
        ResponseIssuerError,
    ) as exc:
        # A code response bound to this browser's login is a failed login: clear it. An error
        # response proves nothing about who sent it and must not cancel the login (row 13).
        if not any(name == "error" for name, _ in params):
            found = await _discard_bound(store, config, params, binding)
        else:
            found = await _bound_pending(store, config, params, binding)
        if isinstance(exc, ResponseIssuerError) and not found:
            # A bookmarked or reloaded callback: say that no login is in progress, not that
            # the issuer was wrong (both refuse it before any token request).
            raise InvalidStateError(_NO_LOGIN) from exc
        raise
    transaction = await _take_transaction(store, config, values.get("state"), now, binding)
    return transaction, values


def read_response(
    config: ProviderConfig, transaction: Transaction, values: Mapping[str, str]
) -> Callback:
    """The second half of :func:`check_callback`, on the values of a callback whose
    transaction :func:`take_transaction` consumed: the provider's ``error``, front-channel
    tokens, the ``code`` and the provider's extras.

    Raises:
        AuthorizationResponseError: the OP's ``error`` (row 12).
        FrontChannelTokenError: tokens in a code-flow callback (row 15).
        CallbackError: no ``code``, or unreadable extras.
    """
    if "error" in values:
        raise AuthorizationResponseError(values["error"][:64], values.get("error_description"))
    leaked = [name for name in _FRONT_CHANNEL_TOKENS if name in values]
    if leaked:
        raise FrontChannelTokenError(f"the callback carried {leaked} in the front channel")
    code = values.get("code")
    if not code:
        raise CallbackError("the callback carried no authorization code")
    return Callback(code=code, transaction=transaction, extras=_extras(config, values))


def check_callback_params(
    config: ProviderConfig, params: Sequence[tuple[str, str]]
) -> dict[str, str]:
    """The callback's parameters as a dict, once their number, names and values are within
    bounds; a pure function, run before anything is looked up or sent.

    Bounds: at most :data:`MAX_CALLBACK_PARAMETERS` parameters, names of at most 128
    characters; ``code`` at most ``config.max_code_length`` characters of RFC 6749's VSCHAR;
    ``iss`` at most :data:`MAX_ISSUER_LENGTH`; ``error`` at most 128 characters of NQSCHAR;
    any other value at most :data:`MAX_CALLBACK_VALUE_LENGTH` (a provider-defined extra: its own
    limit, checked later). ``state`` is checked when it is looked up.

    Raises:
        OversizedParameterError: a count, name or value over its bound.
        DuplicateParameterError: a parameter appears twice (row 14).
        MalformedParameterError: a ``code`` or ``error`` of the wrong shape.
    """
    if len(params) > MAX_CALLBACK_PARAMETERS:
        msg = f"the callback carries more than {MAX_CALLBACK_PARAMETERS} parameters"
        raise OversizedParameterError(msg)
    if any(len(name) > _MAX_NAME_LENGTH for name, _ in params):
        msg = f"a callback parameter's name exceeds {_MAX_NAME_LENGTH} characters"
        raise OversizedParameterError(msg)
    values = single_values(params)
    extras = config.hooks.callback_extras
    limits = _callback_limits(config)
    for name, value in values.items():
        if extras is not None and name in extras.limits:
            continue
        limit = limits.get(name, MAX_CALLBACK_VALUE_LENGTH)
        if len(value) > limit:  # an unknown name is the sender's text: not repeated
            what = f"the callback's {name!r}" if name in limits else "a callback parameter"
            raise OversizedParameterError(f"{what} exceeds {limit} characters")
    _check_shape(values, "code", _VSCHAR, "RFC 6749 VSCHAR")
    _check_shape(values, "error", _NQSCHAR, "RFC 6749 NQSCHAR")
    return values


def _callback_limits(config: ProviderConfig) -> dict[str, int]:
    return {
        "code": config.max_code_length,
        "iss": MAX_ISSUER_LENGTH,
        "error": _MAX_ERROR_LENGTH,
        "state": MAX_CALLBACK_VALUE_LENGTH,
        "error_description": MAX_CALLBACK_VALUE_LENGTH,
        "error_uri": MAX_CALLBACK_VALUE_LENGTH,
        "session_state": MAX_CALLBACK_VALUE_LENGTH,
    }


def _check_shape(values: Mapping[str, str], name: str, shape: re.Pattern[str], what: str) -> None:
    value = values.get(name)
    if value and not shape.fullmatch(value):  # an empty one is absent: refused later
        raise MalformedParameterError(f"the callback's {name!r} is not {what}")


def _check_extra_sizes(config: ProviderConfig, values: Mapping[str, str]) -> None:
    reader = config.hooks.callback_extras
    if reader is None:
        return
    for name, limit in reader.limits.items():
        if len(values.get(name, "")) > limit:
            raise OversizedParameterError(f"the callback's {name!r} exceeds {limit} characters")


def _extras(config: ProviderConfig, values: Mapping[str, str]) -> Mapping[str, Any]:
    reader = config.hooks.callback_extras
    if reader is None:
        return {}
    sent = {name: values[name] for name in reader.limits if name in values}
    try:
        return reader.parse(sent)
    except ValueError as exc:  # msgspec's DecodeError and json's errors are ValueErrors
        raise CallbackError(f"the callback's {sorted(sent)} could not be read") from exc


def single_values(params: Sequence[tuple[str, str]], what: str = "callback") -> dict[str, str]:
    """``params`` as a dict, refusing any name sent more than once (row 14).

    Raises:
        DuplicateParameterError: a parameter appears twice.
    """
    repeated = sorted(name for name, n in Counter(name for name, _ in params).items() if n > 1)
    if repeated:
        raise DuplicateParameterError(f"{what} parameters {repeated} appear more than once")
    return dict(params)


async def _discard_bound(
    store: KeyValueStore,
    config: ProviderConfig,
    params: Sequence[tuple[str, str]],
    binding: str | None,
) -> bool:
    """Clear this browser's pending login the callback names; whether there was one."""
    states = await _bound_states(store, config, params, binding)
    for state in states:
        await store.delete(_KEY_PREFIX + state)
    return bool(states)


async def _bound_pending(
    store: KeyValueStore,
    config: ProviderConfig,
    params: Sequence[tuple[str, str]],
    binding: str | None,
) -> bool:
    """Whether the callback names a login of this provider and browser still in progress."""
    return bool(await _bound_states(store, config, params, binding))


async def _bound_states(
    store: KeyValueStore,
    config: ProviderConfig,
    params: Sequence[tuple[str, str]],
    binding: str | None,
) -> list[str]:
    found = []
    for state in {value for name, value in params if name == "state" and is_issued_state(value)}:
        stored = await store.get(_KEY_PREFIX + state)
        if stored is None:
            continue
        if _belongs(msgspec.json.decode(stored, type=Transaction), config, binding):
            found.append(state)
    return found


def _belongs(transaction: Transaction, config: ProviderConfig, binding: str | None) -> bool:
    same_login = transaction.provider_id == config.id and transaction.issuer == config.issuer
    return same_login and transaction.binding in (None, binding)


def _check_issuer(config: ProviderConfig, metadata: ProviderMetadata, iss: str | None) -> None:
    if iss is None:
        if metadata.authorization_response_iss_parameter_supported:
            raise ResponseIssuerError("the provider advertises RFC 9207 but sent no iss")
        return
    if not is_allowed_issuer(iss, config.issuer, config.tenants):
        raise ResponseIssuerError("the callback's iss is not this provider's issuer")


async def _take_transaction(
    store: KeyValueStore, config: ProviderConfig, state: str | None, now: int, binding: str | None
) -> Transaction:
    if not state:
        raise InvalidStateError("the callback carried no state")
    if not is_issued_state(state):  # never issued: the store is not asked
        raise InvalidStateError("the state is not of the shape rpkit issues")
    key = _KEY_PREFIX + state
    stored = await store.get(key)
    if stored is None:
        raise InvalidStateError("unknown, expired or already used state")
    transaction = msgspec.json.decode(stored, type=Transaction)
    if not _belongs(transaction, config, binding):
        raise InvalidStateError("the state belongs to a login with another provider or browser")
    if await store.consume(key) is None:
        raise InvalidStateError("the state was used by a concurrent callback")
    if now - transaction.created_at > TRANSACTION_TTL:
        raise InvalidStateError("the login took longer than the transaction lifetime")
    return transaction
