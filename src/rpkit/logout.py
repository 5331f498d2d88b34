"""Logout: RP-initiated logout (the end-session request and its return) and back-channel logout
tokens with ``jti`` replay refused.

The relying party ends its own session first; :func:`begin_logout` then says where to send the
browser, or that there is nowhere (local-only logout when the OP has no
``end_session_endpoint``, row 52a).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from urllib.parse import urlencode

import msgspec

from rpkit.config import ProviderConfig
from rpkit.discovery import ProviderMetadata
from rpkit.errors import LogoutTokenValidationError
from rpkit.flow import safe_return_to
from rpkit.hooks import LogoutContext
from rpkit.id_token import LogoutToken, TokenValidator
from rpkit.store import KeyValueStore

__all__ = [
    "LOGOUT_TTL",
    "LogoutRequest",
    "LogoutReturn",
    "begin_logout",
    "check_logout_token",
    "complete_logout",
]

LOGOUT_TTL = 600
"""Seconds a logout ``state`` stays valid."""
_KEY_PREFIX = "rpkit:logout:"
_JTI_PREFIX = "rpkit:bcl-jti:"


class LogoutRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Where to send the browser after the local session is gone."""

    url: str | None
    """The OP's end-session URL, or None for a local-only logout."""
    state: str | None


class LogoutReturn(msgspec.Struct, frozen=True, kw_only=True):
    """The browser came back from the OP's end-session endpoint (row 51)."""

    matched: bool
    """``state`` was one this browser's logout stored; False for another, none or a replay."""
    return_to: str | None
    """The stored same-origin path when ``matched``; otherwise None: show a neutral page."""


class _PendingLogout(msgspec.Struct, frozen=True):
    provider_id: str
    return_to: str
    binding: str | None = None


async def begin_logout(
    store: KeyValueStore,
    config: ProviderConfig,
    metadata: ProviderMetadata,
    *,
    id_token_hint: str | None,
    return_to: str | None = None,
    binding: str | None = None,
) -> LogoutRequest:
    """The end-session request (RP-Initiated Logout §2): ``id_token_hint``, the configured
    ``post_logout_redirect_uri`` (never one from the request, row 52b), a fresh ``state`` bound
    to this logout, and ``client_id``; then the provider's ``hooks.logout_params``, if any,
    rewrites them. The ``state`` is stored only when the rewritten request still carries it."""
    if metadata.end_session_endpoint is None:
        return LogoutRequest(url=None, state=None)
    params = {"client_id": config.client_id}
    if id_token_hint:
        params["id_token_hint"] = id_token_hint
    if config.post_logout_redirect_uri:
        params["post_logout_redirect_uri"] = config.post_logout_redirect_uri
        params["state"] = secrets.token_urlsafe(32)
    params = _rewritten(config, params)
    state = params.get("state")
    if state is not None:
        pending = _PendingLogout(config.id, safe_return_to(return_to), binding)
        await store.set(_KEY_PREFIX + state, msgspec.json.encode(pending), LOGOUT_TTL)
    endpoint = metadata.end_session_endpoint
    return LogoutRequest(
        url=f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}", state=state
    )


def _rewritten(config: ProviderConfig, params: dict[str, str]) -> dict[str, str]:
    hook = config.hooks.logout_params
    if hook is None:
        return params
    context = LogoutContext(
        provider_id=config.id,
        client_id=config.client_id,
        post_logout_redirect_uri=config.post_logout_redirect_uri,
    )
    return dict(hook(params, context))


async def complete_logout(
    store: KeyValueStore, params: Sequence[tuple[str, str]], *, binding: str | None = None
) -> LogoutReturn:
    """Match the return from the OP: only a single, stored, unused ``state`` that this browser
    (``binding``) started yields the stored return path; anything else is treated as
    unauthenticated (row 51)."""
    states = [value for name, value in params if name == "state"]
    if len(states) != 1:
        return LogoutReturn(matched=False, return_to=None)
    key = _KEY_PREFIX + states[0]
    stored = await store.get(key)
    if stored is None:
        return LogoutReturn(matched=False, return_to=None)
    pending = msgspec.json.decode(stored, type=_PendingLogout)
    # Checked before consuming: another browser replaying this state must not spend it.
    if pending.binding is not None and pending.binding != binding:
        return LogoutReturn(matched=False, return_to=None)
    if await store.consume(key) is None:  # a concurrent return took it
        return LogoutReturn(matched=False, return_to=None)
    return LogoutReturn(matched=True, return_to=pending.return_to)


async def check_logout_token(
    validator: TokenValidator,
    store: KeyValueStore,
    config: ProviderConfig,
    metadata: ProviderMetadata,
    token: str,
    *,
    now: int,
) -> LogoutToken:
    """Validate a back-channel logout token (row 53) and refuse a replayed ``jti`` (row 54).

    Raises:
        LogoutTokenValidationError: any failed check, ``reason="replay"`` for a seen ``jti``.
    """
    logout = await validator.validate_logout_token(token, config=config, metadata=metadata)
    # The token is accepted only while now < min(exp, iat + max_iat_age) + leeway, so the jti
    # need not outlive that; an exp in year 30000 would overflow the store's expiry. Bounded by
    # max_iat_age + 2 * leeway + 60, since iat <= now + leeway.
    accepted_until = min(logout.exp, logout.iat + config.max_iat_age)
    remember_for = max(0, accepted_until - now) + config.leeway + 60
    if not await store.add(f"{_JTI_PREFIX}{logout.iss}:{logout.jti}", b"1", remember_for):
        raise LogoutTokenValidationError("replay", "this logout token was already used")
    return logout
