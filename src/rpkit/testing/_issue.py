"""How the fake OP mints the tokens of a flow: access and ID tokens after the knobs, tokens
leaked to the front channel, and the check of a token it signed itself."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from rpkit.testing import _tenants
from rpkit.testing._jose import decode_unverified, half_hash, verify_compact
from rpkit.testing.knobs import apply_edits
from rpkit.testing.registry import CodeGrant, FakeClient, FakeUser, TokenGrant

if TYPE_CHECKING:
    from rpkit.testing.op import FakeOP


def access_token(
    op: FakeOP,
    client: FakeClient,
    user: FakeUser | None,
    scope: str,
    sid: str | None,
    *,
    jkt: str | None = None,
) -> str:
    """A JWT access token, remembered for UserInfo; ending OP session ``sid`` revokes it; bound
    to the DPoP key ``jkt`` names when given (RFC 9449 §6.1)."""
    now = op.now()
    honest: dict[str, Any] = {
        "iss": op.issuer,
        "sub": user.sub if user else client.client_id,
        "aud": client.access_token_audience or client.client_id,
        "client_id": client.client_id,
        "scope": scope,
        "iat": now,
        "exp": now + op.access_token_lifetime,
        "jti": secrets.token_urlsafe(12),
        **tenant_claims(op, user),
        **(user.access_token_claims if user is not None else {}),
    }
    if jkt is not None:
        honest["cnf"] = {"jkt": jkt}
    access = op.minter.sign(
        op.personality.access_token_claims(honest, user, client),
        header={"typ": op.personality.access_token_typ},
    )
    expires = op.now() + op.access_token_lifetime
    op.access_tokens[access] = TokenGrant(
        client.client_id, user, scope, 0, sid, expires, dpop_jkt=jkt
    )
    return access


def id_token(
    op: FakeOP,
    client: FakeClient,
    grant: TokenGrant,
    access: str,
    nonce: str | None,
    *,
    refreshing: bool,
) -> str:
    """An ID token for ``grant``, after the ID-token knobs (the ``refresh_*`` ones when
    ``refreshing``)."""
    knobs = op.misbehave
    if knobs.rotate_keys_before_signing:
        op.keys.rotate()
        knobs.rotate_keys_before_signing = False
    alg = knobs.id_token_alg or client.id_token_signed_response_alg
    honest = id_token_claims(op, client, grant, access, alg, nonce=nonce)
    edits = knobs.refresh_id_token_claims if refreshing else knobs.id_token_claims
    tamper = knobs.refresh_id_token_tamper if refreshing else knobs.id_token_tamper
    token = op.minter.sign(
        apply_edits(honest, edits),
        alg=alg,
        secret=client.client_secret,
        header=knobs.id_token_header,
        tamper=tamper,
        layout=knobs.jwks_layout,
    )
    grant.id_token = token
    return token


def id_token_claims(
    op: FakeOP, client: FakeClient, grant: TokenGrant, access: str, alg: str, *, nonce: str | None
) -> dict[str, Any]:
    """The honest claims of an ID token, before any knob; ``nonce`` only if the OP echoes it."""
    assert grant.user is not None  # noqa: S101 - only user grants get ID tokens
    now = op.now()
    claims = grant.user.released(grant.scope) | {
        "iss": op.issuer,
        "aud": client.client_id,
        "iat": now,
        "exp": now + op.id_token_lifetime,
        "auth_time": grant.auth_time,
        "at_hash": half_hash(access, alg) if alg != "none" else None,
        "sid": grant.sid,
        "nonce": nonce if op.echo_nonce else None,
    }
    claims |= tenant_claims(op, grant.user)
    kept = {name: value for name, value in claims.items() if value is not None}
    return op.personality.id_token_claims(kept, grant.user, client)


def tenant_claims(op: FakeOP, user: FakeUser | None) -> dict[str, Any]:
    """``iss``, ``tid`` and ``oid`` of a multi-tenant OP's tokens for ``user``, else nothing."""
    if op.issuer_template is None or user is None:
        return {}
    return _tenants.tenant_claims(op.issuer_template, user)


def front_channel_tokens(
    op: FakeOP, grant: CodeGrant, kinds: frozenset[str]
) -> list[tuple[str, str]]:
    """Tokens leaked into the authorization response (row 15)."""
    client = op.clients[grant.client_id]
    access = access_token(op, client, grant.user, grant.scope, grant.sid)
    token_grant = TokenGrant(client.client_id, grant.user, grant.scope, grant.auth_time, grant.sid)
    tokens = {"access_token": access}
    if "id_token" in kinds:
        tokens["id_token"] = id_token(
            op, client, token_grant, access, grant.nonce, refreshing=False
        )
    return [(kind, tokens[kind]) for kind in sorted(kinds)]


def verify_own_token(op: FakeOP, token: str) -> dict[str, Any] | None:
    """Claims of a token ``op`` signed, with a current or retired key or a client's secret for
    HS*, else None. Expiry is not checked (an expired ``id_token_hint`` is fine)."""
    try:
        header, claims = decode_unverified(token)
    except ValueError:
        return None
    alg = str(header.get("alg"))
    if alg.startswith("HS"):
        audience = claims.get("aud")
        client = op.clients.get(audience if isinstance(audience, str) else "")
        secret = client.client_secret if client else None
        key: Any = secret.encode() if secret else None
    else:
        key = op.keys.find(header.get("kid"), alg)
    return verify_compact(token, key, alg) if key is not None else None
