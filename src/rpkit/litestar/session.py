"""Server-side sessions: the cookie holds an opaque id, the tokens stay on the server.

A new id is issued at every login (session fixation, row 64); the access token is refreshed
shortly before it expires, single-flight per session; a refused refresh ends the session.
Sessions are indexed by the provider's ``sid`` and ``sub`` so a back-channel logout can end them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import msgspec

from rpkit._log import get_logger
from rpkit.client import Identity, LoginResult, RefreshResult, RelyingParty
from rpkit.errors import RPKitError, SessionExpiredError, TokenValidationError
from rpkit.id_token import IDToken, id_token_from_claims
from rpkit.litestar.config import RPKitConfig
from rpkit.store import KeyValueStore
from rpkit.tokens import TokenSet

__all__ = ["SessionData", "SessionManager"]

_SESSION = "rpkit:session:"
_BY_SID = "rpkit:session-sid:"
_BY_SUB = "rpkit:session-sub:"


class SessionData(msgspec.Struct, kw_only=True):
    """What the server keeps for a signed-in browser. Never sent to it."""

    provider_id: str
    issuer: str
    subject: str
    claims: dict[str, Any]
    id_token: str
    id_token_claims: dict[str, Any]
    access_token: str
    token_type: str
    expires_at: int
    refresh_token: str | None
    scope: tuple[str, ...]
    csrf_token: str
    """Proves a logout POST came from this app's own page."""
    created_at: int

    @property
    def identity(self) -> Identity:
        """Who is signed in (``issuer`` and ``subject`` from the ID token)."""
        return Identity(
            provider_id=self.provider_id,
            issuer=self.issuer,
            subject=self.subject,
            claims=MappingProxyType(self.claims),
        )

    def tokens(self) -> TokenSet:
        """The session's tokens, as the core's refresh takes them."""
        return TokenSet(
            access_token=self.access_token,
            token_type=self.token_type,
            expires_at=self.expires_at,
            refresh_token=self.refresh_token,
            id_token=self.id_token,
            scope=self.scope,
            raw=MappingProxyType({}),
        )

    def id_token_struct(self) -> IDToken:
        """The validated ID token the session stands on, for refresh continuity checks."""
        return id_token_from_claims(self.id_token_claims)


class SessionManager:
    """Create, load, refresh and end sessions in a :class:`~rpkit.store.KeyValueStore`."""

    def __init__(
        self,
        config: RPKitConfig,
        rp: RelyingParty,
        store: KeyValueStore,
        *,
        clock: Callable[[], float] = time.time,
        on_refresh_failed: Callable[[SessionData, RPKitError], None] | None = None,
    ) -> None:
        self.config = config
        self.rp = rp
        self.store = store
        self.clock = clock
        self._on_refresh_failed = on_refresh_failed
        self._log = get_logger()

    async def create(self, result: LoginResult, *, previous_id: str | None = None) -> str:
        """Store a session for ``result`` under a new id and return it; ``previous_id`` (the
        pre-login session, if any) is destroyed so a planted id never becomes authenticated."""
        if previous_id:
            await self.destroy(previous_id)
        session_id = secrets.token_urlsafe(32)
        data = _from_login(result, now=int(self.clock()))
        await self._save(session_id, data)
        await self._index(session_id, data, result.id_token.sid)
        return session_id

    async def peek(self, session_id: str | None) -> SessionData | None:
        """The session under ``session_id`` as stored, without refreshing it."""
        if not session_id:
            return None
        raw = await self.store.get(_SESSION + session_id)
        return None if raw is None else msgspec.json.decode(raw, type=SessionData)

    async def load(self, session_id: str | None) -> SessionData | None:
        """The session under ``session_id``, refreshed if its access token is about to expire;
        None when there is none or it just ended."""
        data = await self.peek(session_id)
        if data is None or session_id is None:
            return None
        if data.refresh_token and data.expires_at - self.clock() <= self.config.refresh_before:
            return await self._refresh(session_id, data)
        return data

    async def destroy(self, session_id: str) -> None:
        """End a session (its index entries expire on their own)."""
        await self.store.delete(_SESSION + session_id)

    async def end_for_logout(self, provider_id: str, sid: str | None, sub: str | None) -> int:
        """End the sessions a back-channel logout token names; returns how many ended."""
        ended = 0
        if sid:
            by_sid = await self.store.consume(f"{_BY_SID}{provider_id}:{sid}")
            if by_sid:
                await self.destroy(by_sid.decode())
                ended += 1
        if sub:
            listed = await self.store.consume(f"{_BY_SUB}{provider_id}:{sub}")
            for session_id in msgspec.json.decode(listed or b"[]", type=list[str]):
                await self.destroy(session_id)
                ended += 1
        return ended

    async def _refresh(self, session_id: str, data: SessionData) -> SessionData | None:
        try:
            fresh = await self.rp.refresh(
                data.provider_id, data.tokens(), data.id_token_struct(), key=session_id
            )
        except (SessionExpiredError, TokenValidationError) as exc:
            await self.destroy(session_id)
            self._log.warning(
                "rpkit.session.refresh_failed", code=exc.code, provider=data.provider_id
            )
            if self._on_refresh_failed:
                self._on_refresh_failed(data, exc)
            return None
        except RPKitError as exc:  # the OP is unreachable: keep the session, try again later
            self._log.warning(
                "rpkit.session.refresh_postponed", code=exc.code, provider=data.provider_id
            )
            return data
        updated = _refreshed(data, fresh)
        await self._save(session_id, updated)
        return updated

    async def _save(self, session_id: str, data: SessionData) -> None:
        remaining = data.created_at + self.config.session_lifetime - int(self.clock())
        if remaining > 0:
            await self.store.set(_SESSION + session_id, msgspec.json.encode(data), remaining)

    async def _index(self, session_id: str, data: SessionData, sid: str | None) -> None:
        ttl = self.config.session_lifetime
        if sid:
            await self.store.set(f"{_BY_SID}{data.provider_id}:{sid}", session_id.encode(), ttl)
        key = f"{_BY_SUB}{data.provider_id}:{data.subject}"
        listed = msgspec.json.decode(await self.store.get(key) or b"[]", type=list[str])
        await self.store.set(key, msgspec.json.encode([*listed[-15:], session_id]), ttl)


def _from_login(result: LoginResult, *, now: int) -> SessionData:
    tokens = result.tokens
    return SessionData(
        provider_id=result.identity.provider_id,
        issuer=result.identity.issuer,
        subject=result.identity.subject,
        claims=dict(result.identity.claims),
        id_token=tokens.id_token or "",
        id_token_claims=_plain(result.id_token.claims),
        access_token=tokens.access_token,
        token_type=tokens.token_type,
        expires_at=tokens.expires_at,
        refresh_token=tokens.refresh_token,
        scope=tokens.scope,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
    )


def _refreshed(data: SessionData, fresh: RefreshResult) -> SessionData:
    tokens = fresh.tokens
    return msgspec.structs.replace(
        data,
        access_token=tokens.access_token,
        token_type=tokens.token_type,
        expires_at=tokens.expires_at,
        refresh_token=tokens.refresh_token,
        scope=tokens.scope,
        id_token=tokens.id_token or data.id_token,
        id_token_claims=_plain(fresh.id_token.claims),
    )


def _plain(value: Any) -> Any:
    """Read-only claims back into plain JSON for storage."""
    if isinstance(value, MappingProxyType | dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
