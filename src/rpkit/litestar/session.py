"""Server-side sessions: the cookie holds an opaque id, the tokens stay on the server.

A new id is issued at every login (session fixation, row 64); the access token is refreshed
shortly before it expires, single-flight per session; a refused refresh ends the session.
Sessions are indexed by the provider's ``sid`` and ``sub`` so a back-channel logout can end them.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

import msgspec

from rpkit._frozen import freeze
from rpkit._log import get_logger
from rpkit.authz import bound_paths, kept_claims
from rpkit.client import Identity, LoginResult, RefreshResult, RelyingParty
from rpkit.dpop import DPoPKey
from rpkit.errors import RPKitError, SessionExpiredError, SessionTooLargeError, TokenValidationError
from rpkit.id_token import IDToken, id_token_from_claims
from rpkit.litestar._cookies import HandleCodec
from rpkit.litestar.config import RPKitConfig
from rpkit.store import KeyValueStore
from rpkit.tokens import TokenSet

__all__ = [
    "SESSION_MEMO_SIZE",
    "CookieSessionManager",
    "SessionData",
    "SessionManager",
    "SessionView",
]

_SESSION = "rpkit:session:"
_BY_SID = "rpkit:session-sid:"
_BY_SUB = "rpkit:session-sub:"
_ENDED_SID = "rpkit:session-ended-sid:"
"""Cookie sessions: a provider's ``sid`` that a logout ended."""


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
    email: str | None = None
    email_verified: bool = False
    name: str | None = None
    tenant: str | None = None
    organization: str | None = None
    external_organization_id: str | None = None
    external_user_id: str | None = None
    access_claims: dict[str, Any] | None = None
    """What the provider's claim paths read in the access token, when rpkit verified it (a JWT
    of the provider's, checked with the provider's keys and audience rules; see
    :mod:`rpkit.authz`): only those values, nested as in the token. Replaced on every refresh;
    None when the provider reads no access tokens or the current one failed verification."""
    dpop_jwk: dict[str, Any] | None = None
    """The private DPoP key (a JWK) the session's tokens are bound to, when its provider uses
    DPoP (RFC 9449): kept here, in the server-side store, so every worker can refresh and call
    APIs with it (:meth:`dpop_key`, :class:`~rpkit.dpop.DPoPAuth`); never sent to the browser.
    Cookie sessions keep no tokens, so they keep no key either."""

    def dpop_key(self) -> DPoPKey | None:
        """The key the session's tokens are bound to; None without DPoP."""
        return DPoPKey.from_private_jwk(self.dpop_jwk) if self.dpop_jwk else None

    @property
    def identity(self) -> Identity:
        """Who is signed in, as the provider's identity mapping settled at login. Its claims
        are a read-only copy, deeply: nested objects read-only mappings, arrays tuples."""
        return Identity(
            provider_id=self.provider_id,
            issuer=self.issuer,
            subject=self.subject,
            claims=freeze(self.claims),
            email=self.email,
            email_verified=self.email_verified,
            name=self.name,
            tenant=self.tenant,
            organization=self.organization,
            external_organization_id=self.external_organization_id,
            external_user_id=self.external_user_id,
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

    def id_token_struct(self) -> IDToken | None:
        """The validated ID token the session stands on, for refresh continuity checks; None
        for OAuth 2.0-only providers."""
        return id_token_from_claims(self.id_token_claims) if self.id_token_claims else None


_decode_session = msgspec.json.Decoder(SessionData).decode
"""Decodes a stored session; built once, as this runs on every signed-in request."""

SESSION_MEMO_SIZE: Final = 1024
"""Sessions whose identity a :class:`SessionManager` remembers by their stored bytes
(:meth:`SessionManager.load_view`). Measured with ``tracemalloc`` for 1,024 sessions of 2.6 KiB
(a login through the fake OP, ID and access tokens included): 1.7 KiB per entry while the
in-process store holds the same bytes, plus those 2.6 KiB once it no longer does (or for a
store such as Redis, which returns a copy): about 4.4 MiB at most."""


class SessionView:
    """A request's session as :meth:`SessionManager.load_view` read it: who is signed in
    (:attr:`identity`, deeply read-only, so one object serves every request of an unchanged
    session) and the whole :class:`SessionData` (:meth:`data`), decoded from the same stored
    bytes on first use, once per request, and this request's own."""

    __slots__ = ("_data", "_raw", "identity")

    def __init__(self, identity: Identity, raw: bytes, data: SessionData | None) -> None:
        self.identity: Final = identity
        self._raw = raw
        self._data = data

    @classmethod
    def of(cls, data: SessionData) -> SessionView:
        """The view of a session already decoded (a refreshed one, a cookie session)."""
        return cls(data.identity, b"", data)

    def data(self) -> SessionData:
        """The whole session: decoded from the bytes the identity came from, on first use."""
        data = self._data
        if data is None:
            data = self._data = _decode_session(self._raw)
        return data


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
        self._heads: OrderedDict[bytes, tuple[Identity, int, bool]] = OrderedDict()
        """Stored bytes → who they sign in, their ``expires_at``, and whether they hold a
        refresh token (:meth:`load_view`); least recently used first."""

    async def create(self, result: LoginResult, *, previous_id: str | None = None) -> str:
        """Store a session for ``result`` under a new id and return it; ``previous_id`` (the
        pre-login session, if any) is destroyed so a planted id never becomes authenticated."""
        kept = _kept_access_claims(self.rp, result.identity.provider_id, result.access_claims)
        data = _from_login(result, now=int(self.clock()), access_claims=kept)
        sid = result.id_token.sid if result.id_token else None
        return await self._start(data, sid, previous_id)

    async def create_for_identity(
        self, identity: Identity, *, previous_id: str | None = None
    ) -> str:
        """Store a session for an identity verified without an OpenID login (a passwordless
        email, say) under a new id and return it. It holds no tokens, so it is never refreshed
        and lives ``session_lifetime``; ``previous_id`` is destroyed as in :meth:`create`."""
        data = _from_identity(
            identity, now=int(self.clock()), lifetime=self.config.session_lifetime
        )
        return await self._start(data, None, previous_id)

    async def _start(self, data: SessionData, sid: str | None, previous_id: str | None) -> str:
        """Store ``data`` under a new id, indexed for back-channel logout, and return the id."""
        if previous_id:
            await self.destroy(previous_id)
        session_id = secrets.token_urlsafe(32)
        await self._save(session_id, data)
        await self._index(session_id, data, sid)
        return session_id

    async def peek(self, session_id: str | None) -> SessionData | None:
        """The session under ``session_id`` as stored, without refreshing it."""
        if not session_id:
            return None
        raw = await self.store.get(_SESSION + session_id)
        return None if raw is None else _decode_session(raw)

    async def load(self, session_id: str | None) -> SessionData | None:
        """The session under ``session_id``, refreshed if its access token is about to expire;
        None when there is none or it just ended."""
        view = await self.load_view(session_id)
        return None if view is None else view.data()

    async def load_view(self, session_id: str | None) -> SessionView | None:
        """:meth:`load` as a :class:`SessionView`: who is signed in at once, the whole session
        decoded only if asked for. Who is signed in is a function of the stored bytes alone, so
        it is remembered for the last :data:`SESSION_MEMO_SIZE` sessions' bytes (and the bytes
        themselves): a signed-in request whose session is unchanged decodes nothing. The store
        is read on every call, so an ended or replaced session is never served from memory."""
        if not session_id:
            return None
        raw = await self.store.get(_SESSION + session_id)
        if raw is None:
            return None
        if type(raw) is not bytes:  # a store of one's own may answer a bytearray: not a key
            raw = bytes(raw)
        heads = self._heads
        head = heads.get(raw)
        data = None
        if head is None:
            data = _decode_session(raw)
            head = heads[raw] = (data.identity, data.expires_at, bool(data.refresh_token))
            if len(heads) > SESSION_MEMO_SIZE:
                heads.popitem(last=False)
        else:
            heads.move_to_end(raw)
        identity, expires_at, refreshable = head
        if refreshable and expires_at - self.clock() <= self.config.refresh_before:
            fresh = await self._refresh(session_id, _decode_session(raw) if data is None else data)
            return None if fresh is None else SessionView.of(fresh)
        return SessionView(identity, raw, data)

    async def destroy(self, session_id: str) -> None:
        """End a session (its index entries expire on their own)."""
        await self.store.delete(_SESSION + session_id)

    async def end_for_logout(self, provider_id: str, sid: str | None, sub: str | None) -> int:
        """End the sessions a back- or front-channel logout names (every session of this
        provider's ``sid``, every session of its ``sub``); returns how many ended."""
        ended = 0
        if sid:
            by_sid = await self.store.consume(f"{_BY_SID}{provider_id}:{sid}")
            for session_id in _session_ids(by_sid):
                await self.destroy(session_id)
                ended += 1
        if sub:
            listed = await self.store.consume(f"{_BY_SUB}{provider_id}:{sub}")
            for session_id in msgspec.json.decode(listed or b"[]", type=list[str]):
                await self.destroy(session_id)
                ended += 1
        return ended

    async def _refresh(self, session_id: str, data: SessionData) -> SessionData | None:
        stored: dict[str, SessionData] = {}
        try:
            fresh = await self.rp.refresh(
                data.provider_id,
                data.tokens(),
                data.id_token_struct(),
                key=session_id,
                reload=lambda: self._reload(session_id, stored),
                dpop_key=data.dpop_key(),
            )
        except _SessionEndedError:  # logged out, or refused elsewhere, while this one waited
            return None
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
        if fresh.tokens.access_token in stored:  # another worker refreshed and saved it
            return stored[fresh.tokens.access_token]
        kept = _kept_access_claims(self.rp, data.provider_id, fresh.access_claims)
        updated = _refreshed(data, fresh, kept)
        await self._save(session_id, updated)
        return updated

    async def _reload(self, session_id: str, seen: dict[str, SessionData]) -> RefreshResult:
        """The session's tokens as stored now, read under the refresh lock: another worker may
        have refreshed them, or ended the session, while this one waited for the lock."""
        current = await self.peek(session_id)
        if current is None:
            raise _SessionEndedError
        seen[current.access_token] = current
        return RefreshResult(tokens=current.tokens(), id_token=current.id_token_struct())

    async def _save(self, session_id: str, data: SessionData) -> None:
        remaining = data.created_at + self.config.session_lifetime - int(self.clock())
        if remaining > 0:
            await self.store.set(_SESSION + session_id, msgspec.json.encode(data), remaining)

    async def _index(self, session_id: str, data: SessionData, sid: str | None) -> None:
        ttl = self.config.session_lifetime
        if sid:  # the same OP session may sign this browser in more than once
            key = f"{_BY_SID}{data.provider_id}:{sid}"
            listed = _session_ids(await self.store.get(key))
            await self.store.set(key, msgspec.json.encode([*listed[-15:], session_id]), ttl)
        # Logout tokens name the ID token's sub, which an identity mapping may have replaced.
        sub = data.id_token_claims.get("sub", data.subject)
        key = f"{_BY_SUB}{data.provider_id}:{sub}"
        listed = msgspec.json.decode(await self.store.get(key) or b"[]", type=list[str])
        await self.store.set(key, msgspec.json.encode([*listed[-15:], session_id]), ttl)


COOKIE_SESSION_LIMIT = 3800
"""Most bytes of a client-side session's ``name=value``: browsers keep at least 4096 per cookie
(RFC 6265 §6.1), attributes included."""
_COOKIE_SESSION_ID_TOKEN_CLAIMS = ("iss", "sub", "aud", "iat", "auth_time", "acr", "amr", "sid")


class CookieSessionManager(SessionManager):
    """Client-side sessions (``RPKitConfig.session_backend="cookie"``): the "session id" is the
    sealed session itself, holding identity claims only; the store keeps only the provider
    session ids (``sid``) that logouts ended.

    Nothing on the server can delete such a session: ``destroy`` only lets the caller delete
    the cookie. A back- or front-channel logout naming the session's ``sid`` is remembered in
    the store, and the cookie refused from then on; one naming only the user ends none (logged).
    """

    def __init__(
        self,
        config: RPKitConfig,
        rp: RelyingParty,
        store: KeyValueStore,
        *,
        cookie_name: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(config, rp, store, clock=clock)
        self._codec = HandleCodec(config.secret)
        self._cookie_name = cookie_name

    async def _start(self, data: SessionData, sid: str | None, previous_id: str | None) -> str:
        """The cookie value for ``data``'s identity, its tokens left out (a fresh nonce, so never
        the previous value).

        Raises:
            SessionTooLargeError: the sealed claims exceed :data:`COOKIE_SESSION_LIMIT`.
        """
        kept = {
            k: v for k, v in data.id_token_claims.items() if k in _COOKIE_SESSION_ID_TOKEN_CLAIMS
        }
        identity_only = msgspec.structs.replace(
            data,
            id_token="",
            id_token_claims=kept,
            access_token="",
            refresh_token=None,
            dpop_jwk=None,
            expires_at=data.created_at + self.config.session_lifetime,
        )
        encoded = msgspec.json.encode(identity_only).decode()
        sealed = self._codec.seal(
            encoded, self._cookie_name, self.config.session_lifetime, now=self.clock()
        )
        size = len(self._cookie_name) + 1 + len(sealed)
        if size > COOKIE_SESSION_LIMIT:
            self._log.error(
                "rpkit.session.cookie_too_large",
                size=size,
                limit=COOKIE_SESSION_LIMIT,
                provider=data.provider_id,
            )
            msg = (
                f"the client-side session cookie would take {size} bytes, above "
                f"{COOKIE_SESSION_LIMIT}: use server-side sessions (session_backend='server', "
                "the default) or ask the provider for fewer claims (scopes)"
            )
            raise SessionTooLargeError(msg, size=size, limit=COOKIE_SESSION_LIMIT)
        return sealed

    async def peek(self, session_id: str | None) -> SessionData | None:
        """The session sealed in a cookie value; None when absent, forged or expired."""
        opened = self._codec.open(
            session_id, self._cookie_name, now=self.clock(), limit=COOKIE_SESSION_LIMIT
        )
        if opened is None:
            return None
        try:
            data = msgspec.json.decode(opened, type=SessionData)
        except msgspec.ValidationError:  # sealed by another rpkit version: sign in again
            return None
        sid = data.id_token_claims.get("sid")
        if isinstance(sid, str) and await self.store.get(f"{_ENDED_SID}{data.provider_id}:{sid}"):
            return None  # a logout from the provider named this session
        return data

    async def load(self, session_id: str | None) -> SessionData | None:
        """As :meth:`peek`: a cookie session has no tokens to refresh."""
        return await self.peek(session_id)

    async def load_view(self, session_id: str | None) -> SessionView | None:
        """:meth:`load` as a :class:`SessionView` (nothing remembered: the cookie is the
        session, and opening it checks the store for a logout of its ``sid``)."""
        data = await self.load(session_id)
        return None if data is None else SessionView.of(data)

    async def destroy(self, session_id: str) -> None:
        """Nothing to delete on the server; the caller deletes the cookie."""

    async def end_for_logout(self, provider_id: str, sid: str | None, sub: str | None) -> int:
        """Remember ``sid`` as ended (in the store, for as long as a cookie session lives), so
        a cookie carrying it is refused from its next request on; returns 0, since which
        browsers hold such a cookie is unknown. A logout naming only ``sub`` ends none, and a
        warning says so."""
        if sid:
            key = f"{_ENDED_SID}{provider_id}:{sid}"
            await self.store.set(key, b"1", self.config.session_lifetime)
        else:
            self._log.warning(
                "rpkit.session.backchannel_unsupported", provider=provider_id, backend="cookie"
            )
        return 0


def _session_ids(indexed: bytes | None) -> list[str]:
    """The session ids under an index entry: a JSON list, or one bare id (older entries)."""
    if not indexed:
        return []
    if indexed.startswith(b"["):
        return msgspec.json.decode(indexed, type=list[str])
    return [indexed.decode()]


def _kept_access_claims(
    rp: RelyingParty, provider_id: str, claims: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """What a session keeps of verified access-token claims: only what the provider's claim
    paths read (:func:`rpkit.authz.kept_claims`), so a session stays small; None when the
    access token was not verified (then guards reading it deny)."""
    config = rp.providers.get(provider_id)
    if claims is None or config is None:
        return None
    if config.claim_paths is None:
        return {}
    return kept_claims(claims, bound_paths(config.claim_paths, config.client_id))


def _from_login(
    result: LoginResult, *, now: int, access_claims: dict[str, Any] | None = None
) -> SessionData:
    tokens = result.tokens
    id_token_claims = _plain(result.id_token.claims) if result.id_token else {}
    return _new_session(
        result.identity,
        now=now,
        access_claims=access_claims,
        id_token=tokens.id_token or "",
        id_token_claims=id_token_claims,
        access_token=tokens.access_token,
        token_type=tokens.token_type,
        expires_at=tokens.expires_at,
        refresh_token=tokens.refresh_token,
        scope=tokens.scope,
        dpop_jwk=result.dpop_key.to_private_jwk() if result.dpop_key else None,
    )


def _from_identity(identity: Identity, *, now: int, lifetime: int) -> SessionData:
    return _new_session(identity, now=now, expires_at=now + lifetime)


def _new_session(identity: Identity, *, now: int, **tokens: Any) -> SessionData:
    fields: dict[str, Any] = {
        "id_token": "",
        "id_token_claims": {},
        "access_token": "",
        "token_type": "",
        "refresh_token": None,
        "scope": (),
    }
    return SessionData(
        provider_id=identity.provider_id,
        issuer=identity.issuer,
        subject=identity.subject,
        claims=_plain(identity.claims),
        email=identity.email,
        email_verified=identity.email_verified,
        name=identity.name,
        tenant=identity.tenant,
        organization=identity.organization,
        external_organization_id=identity.external_organization_id,
        external_user_id=identity.external_user_id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        **(fields | tokens),
    )


def _refreshed(
    data: SessionData, fresh: RefreshResult, access_claims: dict[str, Any] | None = None
) -> SessionData:
    """The session after a refresh: the new tokens, and the new access token's kept claims,
    which replace the old ones (None when it failed verification: what it no longer proves is
    not kept)."""
    tokens = fresh.tokens
    return msgspec.structs.replace(
        data,
        access_claims=access_claims,
        access_token=tokens.access_token,
        token_type=tokens.token_type,
        expires_at=tokens.expires_at,
        refresh_token=tokens.refresh_token,
        scope=tokens.scope,
        id_token=tokens.id_token or data.id_token,
        id_token_claims=_plain(fresh.id_token.claims) if fresh.id_token else {},
    )


def _plain(value: Any) -> Any:
    """Read-only claims back into plain JSON for storage."""
    if isinstance(value, MappingProxyType | dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


class _SessionEndedError(Exception):
    """The session was gone when its refresh got the lock: nothing to refresh, nothing to say."""
