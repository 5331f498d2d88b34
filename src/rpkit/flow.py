"""The authorization request and the callback: where ``state``, ``nonce``, PKCE and the
authorization response checks live.

:func:`new_transaction` and :func:`authorization_url` start a login; the transaction is stored
under its ``state`` in a :class:`~rpkit.store.KeyValueStore` for ten minutes and consumed exactly
once. :func:`check_callback` runs the front-channel checks in the order RFC 9207 and
``rp-conformance.md`` §4 prescribe — duplicate parameters, ``iss``, ``state`` (lookup, browser
binding, consume), the OP's ``error``, tokens in the front channel — before any token request.
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
    OversizedParameterError,
    ResponseIssuerError,
)
from rpkit.store import KeyValueStore
from rpkit.tenants import is_allowed_issuer

__all__ = [
    "TRANSACTION_TTL",
    "Callback",
    "Transaction",
    "authorization_url",
    "check_callback",
    "check_hook_params",
    "new_transaction",
    "safe_return_to",
    "validate_params",
]

TRANSACTION_TTL = 600
"""Seconds a login transaction lives (ten minutes)."""
_KEY_PREFIX = "rpkit:txn:"
_FRONT_CHANNEL_TOKENS = ("id_token", "access_token", "token", "refresh_token")
_PROMPTS = frozenset({"none", "login", "consent", "select_account", "create"})
_PARAM_VALUE = re.compile(r"[^\x00-\x1f\x7f]{1,512}")
_MAX_AGE = re.compile(r"[0-9]{1,9}")


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
    if not value or len(value) > 2048:
        return default
    for candidate in (value, unquote(value), unquote(unquote(value))):
        if not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
            return default
        if "\\" in candidate or any(ord(c) < 0x20 or ord(c) == 0x7F for c in candidate):
            return default
    return value


def validate_params(config: ProviderConfig, params: Mapping[str, str] | None) -> dict[str, str]:
    """Extra authorization parameters for one login, checked against the provider's allowlist.

    Raises:
        ConfigurationError: a reserved or unlisted parameter, or a malformed value.
    """
    merged = {**config.extra_authorization_params, **(params or {})}
    _refuse_reserved(merged)
    unknown = sorted(set(merged) - config.allowed_authorization_params)
    if unknown:
        raise ConfigurationError(
            f"authorization parameters {unknown} are not allowed for {config.id!r}"
        )
    _check_values(merged)
    return merged


def check_hook_params(config: ProviderConfig, params: dict[str, str]) -> dict[str, str]:
    """Parameters from the provider's ``hooks.authorization_params``: well-formed and never
    reserved; the allowlist does not apply (the provider's author wrote them).

    Raises:
        ConfigurationError: a reserved parameter or a malformed value.
    """
    _refuse_reserved(params)
    _check_values(params)
    return params


def _refuse_reserved(params: Mapping[str, str]) -> None:
    reserved = sorted(RESERVED_AUTHORIZATION_PARAMS & set(params))
    if reserved:
        raise ConfigurationError(f"authorization parameters {reserved} are set by rpkit only")


def _check_values(merged: Mapping[str, str]) -> None:
    for name, value in merged.items():
        if not isinstance(value, str) or not _PARAM_VALUE.fullmatch(value):
            raise ConfigurationError(f"authorization parameter {name!r} has a malformed value")
    if "prompt" in merged and not set(merged["prompt"].split()) <= _PROMPTS:
        raise ConfigurationError(f"prompt must be made of {sorted(_PROMPTS)}")
    # Not str.isdigit(), which is true for '²' that int() refuses; 9 digits is 31 years.
    if "max_age" in merged and not _MAX_AGE.fullmatch(merged["max_age"]):
        raise ConfigurationError("max_age must be a number of seconds (1 to 9 ASCII digits)")


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
) -> str:
    """The authorization request (Core §3.1.2.1): S256 PKCE always, even when the OP does not
    advertise it (row 5), unless the named ``skip_pkce`` relaxation is set; ``state`` always;
    ``nonce`` for OpenID Connect providers."""
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
    endpoint = metadata.authorization_endpoint
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"


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
    """Run every front-channel check of a callback that arrived on ``config``'s redirect URI.

    Raises:
        DuplicateParameterError: a parameter appears twice (row 14).
        OversizedParameterError: a provider-defined extra (``hooks.callback_extras``) is over
            its limit.
        ResponseIssuerError: ``iss`` wrong, or missing while advertised (row 10).
            For these two, a code response's transaction (found by its ``state``, for this
            provider and browser) is cleared; an error response's is left alone (row 13).
        InvalidStateError: ``state`` missing, unknown, expired, used, for another provider or
            another browser (rows 7–9, 11, 13); nothing is consumed in these cases.
        AuthorizationResponseError: the OP's ``error`` (row 12); the transaction is consumed.
        FrontChannelTokenError: tokens in a code-flow callback (row 15); consumed.
        CallbackError: no ``code``; consumed.
    """
    try:
        values = single_values(params)
        _check_issuer(config, metadata, values.get("iss"))
        _check_extra_sizes(config, values)
    except (DuplicateParameterError, ResponseIssuerError, OversizedParameterError):
        # A code response bound to this browser's login is a failed login: clear it. An error
        # response proves nothing about who sent it and must not cancel the login (row 13).
        if not any(name == "error" for name, _ in params):
            await _discard_bound(store, config, params, binding)
        raise
    transaction = await _take_transaction(store, config, values.get("state"), now, binding)
    if "error" in values:
        raise AuthorizationResponseError(values["error"][:64], values.get("error_description"))
    leaked = [name for name in _FRONT_CHANNEL_TOKENS if name in values]
    if leaked:
        raise FrontChannelTokenError(f"the callback carried {leaked} in the front channel")
    code = values.get("code")
    if not code:
        raise CallbackError("the callback carried no authorization code")
    return Callback(code=code, transaction=transaction, extras=_extras(config, values))


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
) -> None:
    for state in {value for name, value in params if name == "state"}:
        stored = await store.get(_KEY_PREFIX + state)
        if stored is None:
            continue
        transaction = msgspec.json.decode(stored, type=Transaction)
        if _belongs(transaction, config, binding):
            await store.delete(_KEY_PREFIX + state)


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
