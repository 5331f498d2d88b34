"""Claims of the tokens the fake Scalekit signs, in the documented shapes (scalekit-sdk.md §2.3,
§8.4): FSA ID and access tokens, M2M tokens, ``idp_initiated_login`` JWTs and back-channel
logout tokens. Knob edits apply last; rpkit's :class:`~rpkit.testing.TokenMinter` signs."""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

from rpkit.testing import BACKCHANNEL_LOGOUT_EVENT, Tamper
from rpkit.testing.knobs import apply_edits
from rpkit_scalekit.testing.registry import FakeApplication, ScalekitSession, new_id

if TYPE_CHECKING:
    from rpkit_scalekit.testing.fake import FakeScalekit

PROFILE_CLAIMS = ("email", "email_verified", "name", "given_name", "family_name", "picture")


def half_hash(value: str) -> str:
    """``at_hash`` / ``c_hash`` for RS256 (Core §3.1.3.6)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def _compact(claims: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if v is not None}


def subject(fake: FakeScalekit, session: ScalekitSession) -> str:
    """``sub`` of a user token: the ``usr_...`` id with user management, else
    ``conn_<connection>;<email>`` (https://docs.scalekit.com/passwordless/oidc/: "A scalekit
    user ID is sent if user management is enabled")."""
    email = session.user.claims.get("email")
    if fake.user_management or not isinstance(email, str):
        return session.user.sub
    return f"{session.route.connection_id};{email}"


def external_ids(fake: FakeScalekit, session: ScalekitSession) -> dict[str, Any]:
    """``xoid`` (the organization's external id) and ``xuid`` (the user's, the ``xuid`` of its
    claims), when set."""
    organization = fake.organizations.get(session.route.organization_id or "")
    return {
        "xoid": organization.external_id if organization is not None else None,
        "xuid": session.user.claims.get("xuid"),
    }


def _sign(fake: FakeScalekit, claims: dict[str, Any], tamper: Tamper | None, typ: str) -> str:
    return fake.minter.sign(claims, tamper=tamper, typ=typ)


def id_token(
    fake: FakeScalekit,
    app: FakeApplication,
    session: ScalekitSession,
    access_token: str,
    *,
    code: str | None = None,
    nonce: str | None = None,
) -> str:
    """An ID token: ``iss aud azp sub amr oid sid client_id iat exp at_hash c_hash nonce`` plus
    the user's profile claims, after ``knobs.id_token_claims``."""
    now = fake.now()
    user = session.user
    honest = {k: user.claims[k] for k in PROFILE_CLAIMS if k in user.claims} | _compact(
        {
            "iss": fake.issuer,
            "aud": [app.client_id],
            "azp": app.client_id,
            "sub": subject(fake, session),
            "amr": [session.route.connection_id],
            "oid": session.route.organization_id,
            "sid": session.sid,
            "client_id": app.client_id,
            "iat": now,
            "exp": now + fake.knobs.id_token_lifetime,
            "at_hash": half_hash(access_token),
            "c_hash": half_hash(code) if code else None,
            "nonce": nonce if fake.answers.echo_nonce else None,
        }
        | external_ids(fake, session)
    )
    claims = apply_edits(honest, fake.knobs.id_token_claims)
    return _sign(fake, claims, fake.knobs.id_token_tamper, "JWT")


def access_token(
    fake: FakeScalekit, app: FakeApplication, session: ScalekitSession, scope: str
) -> str:
    """An FSA access token: ``iss aud sub oid sid jti iat nbf exp client_id roles permissions
    scope`` (``scope`` a string), after ``knobs.access_token_claims``."""
    now = fake.now()
    user = session.user
    honest = _compact(
        {
            "iss": fake.issuer,
            "aud": [app.client_id],
            "sub": subject(fake, session),
            "oid": session.route.organization_id,
            "sid": session.sid,
            "jti": new_id("tkn"),
            "iat": now,
            "nbf": now,
            "exp": now + fake.knobs.access_token_lifetime,
            "client_id": app.client_id,
            "roles": list(user.claims.get("roles", ["member"])),
            "permissions": list(user.claims.get("permissions", [])),
            "scope": scope,
        }
        | external_ids(fake, session)
    )
    claims = apply_edits(honest, fake.knobs.access_token_claims)
    return _sign(fake, claims, fake.knobs.access_token_tamper, "JWT")


def m2m_token(
    fake: FakeScalekit, app: FakeApplication, scopes: list[str], audience: str | None = None
) -> tuple[str, int]:
    """A client-credentials token (``sub`` = ``client_id``, ``scopes`` an array, ``aud`` the
    requested resource if any, RFC 8707 §2) and its ``exp``, after ``knobs.m2m_token_claims``."""
    now = fake.now()
    honest = _compact(
        {
            "iss": fake.issuer,
            "aud": [audience] if audience is not None else None,
            "sub": app.client_id,
            "client_id": app.client_id,
            "oid": app.organization_id,
            "jti": new_id("tkn"),
            "iat": now,
            "nbf": now,
            "exp": now + fake.knobs.m2m_token_lifetime,
            "scopes": scopes,
        }
    )
    claims = apply_edits(honest, fake.knobs.m2m_token_claims)
    token = _sign(fake, claims, fake.knobs.access_token_tamper, "JWT")
    return token, int(claims.get("exp", now + fake.knobs.m2m_token_lifetime))


def idp_initiated(
    fake: FakeScalekit,
    app: FakeApplication,
    *,
    connection_id: str | None,
    organization_id: str | None,
    login_hint: str | None,
    relay_state: str | None,
    edits: dict[str, Any] | None = None,
    tamper: Tamper | None = None,
) -> str:
    """An ``idp_initiated_login`` JWT; ``iss``, ``aud`` and ``exp`` follow ``fake.answers``."""
    answers = fake.answers
    now = fake.now()
    lifetime = answers.idp_initiated_lifetime
    honest = _compact(
        {
            "iss": answers.idp_initiated_issuer or fake.issuer,
            "aud": [app.client_id] if answers.idp_initiated_audience == "client_id" else None,
            "iat": now,
            "exp": now + lifetime if lifetime is not None else None,
            "connection_id": connection_id,
            "organization_id": organization_id,
            "login_hint": login_hint,
            "relay_state": relay_state,
        }
    )
    return _sign(fake, apply_edits(honest, edits or {}), tamper, "JWT")


def logout_token(fake: FakeScalekit, app: FakeApplication, session: ScalekitSession) -> str:
    """A back-channel logout token (Back-Channel Logout §2.4), after
    ``answers.logout_token_claims``."""
    now = fake.now()
    honest = {
        "iss": fake.issuer,
        "aud": app.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": new_id("tkn"),
        "sub": subject(fake, session),
        "sid": session.sid,
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }
    claims = apply_edits(honest, fake.answers.logout_token_claims)
    return _sign(fake, claims, None, "logout+jwt")
