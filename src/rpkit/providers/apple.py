"""Sign in with Apple: an OpenID Provider whose client secret is an ES256 JWT the relying party
signs itself, and which tells the user's name only once, in a form field of the first callback.

:func:`apple` returns the configuration; its hooks are :class:`AppleClientSecret` (the secret,
minted on demand and cached by rpkit), :class:`AppleUserField` (the first-login ``user`` field)
and :func:`apple_identity` (claims to identity). Each quirk and its source is in :data:`INFO`.

Example:
    >>> from rpkit.providers.apple import apple
    >>> # config = apple(client_id="com.example.web", team_id="ABCDE12345",
    >>> #                key_id="KEY1234567", private_key=p8_file_text)
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import msgspec
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from rpkit.config import ProviderConfig
from rpkit.errors import ConfigurationError
from rpkit.hooks import ClientSecret, IdentityFields, IdentitySource, ProviderHooks
from rpkit.providers._mapping import ClaimsMapper
from rpkit.providers._preset import PresetInfo, Quirk, build
from rpkit.tokens import SECRET_RENEW_MARGIN

__all__ = [
    "APPLE_ISSUER",
    "CLIENT_SECRET_AUDIENCE",
    "INFO",
    "MAX_SECRET_LIFETIME",
    "USER_FIELD_LIMIT",
    "AppleClientSecret",
    "AppleUserField",
    "apple",
    "apple_identity",
]

APPLE_ISSUER = "https://appleid.apple.com"
CLIENT_SECRET_AUDIENCE = "https://appleid.apple.com"  # noqa: S105 - an audience, not a secret
"""The client secret's ``aud``: always Apple's issuer, whichever server the token request hits."""
MAX_SECRET_LIFETIME = 15_777_000
"""Apple refuses a client secret whose ``exp`` is more than six months after its ``iat``."""
USER_FIELD_LIMIT = 2048
"""Most characters of the ``user`` field read: a name and an address take a few hundred."""


class AppleClientSecret:
    """A :class:`~rpkit.hooks.ClientSecretFactory`: Apple's client secret is a JWT signed with
    ES256 by the team's Sign in with Apple key (header ``kid``; claims ``iss`` team id, ``iat``,
    ``exp``, ``aud`` Apple, ``sub`` the Services ID).

    Args:
        team_id: the Apple Developer team id (ten characters).
        key_id: the id of the Sign in with Apple key.
        client_id: the Services ID the web login uses.
        private_key: the key's private half: the ``.p8`` file's PEM text, or a private P-256 JWK.
        lifetime: seconds each secret is valid; short keeps a leaked one short-lived.

    Raises:
        ConfigurationError: an empty id, a key that is not a private P-256 key, or a lifetime
            outside 600 s to six months.
    """

    def __init__(
        self,
        *,
        team_id: str,
        key_id: str,
        client_id: str,
        private_key: str | Mapping[str, Any],
        lifetime: int = 3600,
    ) -> None:
        if not (team_id and key_id and client_id):
            raise ConfigurationError("apple: team_id, key_id and client_id are required")
        if not 2 * SECRET_RENEW_MARGIN <= lifetime <= MAX_SECRET_LIFETIME:
            msg = f"apple: lifetime must be {2 * SECRET_RENEW_MARGIN}..{MAX_SECRET_LIFETIME} s"
            raise ConfigurationError(msg)
        self.team_id = team_id
        self.key_id = key_id
        self.client_id = client_id
        self.lifetime = lifetime
        self._key = _p256_private_key(private_key)

    async def __call__(self, now: float) -> ClientSecret:
        issued = int(now)
        claims = {
            "iss": self.team_id,
            "iat": issued,
            "exp": issued + self.lifetime,
            "aud": CLIENT_SECRET_AUDIENCE,
            "sub": self.client_id,
        }
        value = jwt.encode({"alg": "ES256", "kid": self.key_id}, claims, self._key, ["ES256"])
        return ClientSecret(value=value, expires_at=issued + self.lifetime)


def _p256_private_key(private_key: str | Mapping[str, Any]) -> ECKey:
    try:
        key = ECKey.import_key(private_key if isinstance(private_key, str) else dict(private_key))
    except (JoseError, ValueError, TypeError) as exc:
        raise ConfigurationError("apple: private_key is not an EC key (PEM or JWK)") from exc
    if key.curve_name != "P-256" or not key.is_private:
        raise ConfigurationError("apple: private_key must be the private P-256 key (.p8)")
    return key


class AppleUserField:
    """A :class:`~rpkit.hooks.CallbackExtras` for the ``user`` form field Apple posts on a
    user's first authorization only: ``{"name": {"firstName", "lastName"}, "email"}``. Only the
    name is read; the email there is whatever the browser posted and is ignored."""

    limits: Mapping[str, int] = MappingProxyType({"user": USER_FIELD_LIMIT})

    def parse(self, values: Mapping[str, str]) -> Mapping[str, Any]:
        """``{"name": "First Last"}``, or ``{}`` without a field or a name.

        Raises:
            ValueError: not JSON, not an object, or a name part that is not a string.
        """
        raw = values.get("user")
        if raw is None:
            return {}
        document = msgspec.json.decode(raw)
        name = (document.get("name") or {}) if isinstance(document, dict) else None
        if not isinstance(name, dict):
            raise ValueError("Apple's user field must be an object whose name is an object")
        parts = [name.get("firstName"), name.get("lastName")]
        if any(part is not None and not isinstance(part, str) for part in parts):
            raise ValueError("Apple's firstName and lastName must be strings")
        full = " ".join(part.strip() for part in parts if part and part.strip())
        return {"name": full} if full else {}


_CLAIMS = ClaimsMapper(string_booleans=True)


async def apple_identity(source: IdentitySource) -> IdentityFields:
    """An :class:`~rpkit.hooks.IdentityMapper`: subject, email and ``email_verified`` (``"true"``
    or ``true``) from the ID token; the name only from :class:`AppleUserField`'s extras."""
    fields = await _CLAIMS(source)
    name = source.extras.get("name")
    return msgspec.structs.replace(fields, name=name if isinstance(name, str) else None)


def apple(
    *,
    client_id: str,
    team_id: str,
    key_id: str,
    private_key: str | Mapping[str, Any],
    secret_lifetime: int = 3600,
    **changes: Any,
) -> ProviderConfig:
    """Sign in with Apple for a web Services ID.

    Args:
        client_id: the Services ID (``com.example.web``), registered with the callback URL.
        team_id: the Apple Developer team id.
        key_id: the id of the Sign in with Apple key that signs the client secret.
        private_key: that key's private half, PEM (the ``.p8`` file) or a private JWK.
        secret_lifetime: seconds each minted client secret is valid (at most six months).
        **changes: any :class:`~rpkit.config.ProviderConfig` field, applied last.

    Raises:
        ConfigurationError: see :class:`AppleClientSecret` and :class:`ProviderConfig`.
    """
    secret = AppleClientSecret(
        team_id=team_id,
        key_id=key_id,
        client_id=client_id,
        private_key=private_key,
        lifetime=secret_lifetime,
    )
    settings: dict[str, Any] = {
        "id": "apple",
        "issuer": APPLE_ISSUER,
        "client_id": client_id,
        "client_auth": "client_secret_post",
        "scopes": ("openid", "name", "email"),
        "response_mode": "form_post",
        "fetch_userinfo": False,
        "hooks": ProviderHooks(
            client_secret=secret, callback_extras=AppleUserField(), identity=apple_identity
        ),
    }
    return build(settings, changes)


_DISCOVERY = "https://appleid.apple.com/.well-known/openid-configuration"
_FORUM = "https://developer.apple.com/forums/thread/"
INFO = PresetInfo(
    name="apple",
    title="Sign in with Apple",
    kind="oidc",
    refresh="yes: every code exchange returns one (no offline_access scope); not rotated",
    logout=("local",),
    bearer=False,
    quirks=(
        Quirk(
            what="response_mode=form_post: required once name or email is asked for (rpkit then "
            "makes the transaction cookie SameSite=None)",
            source=f"{_FORUM}704197",
        ),
        Quirk(
            what="scopes openid name email; no offline_access, yet every code exchange returns "
            "a refresh token; token endpoint auth client_secret_post only",
            source=_DISCOVERY,
        ),
        Quirk(
            what="the client secret is an ES256 JWT (kid; iss team, iat, exp within six months, "
            "aud Apple, sub Services ID), minted by AppleClientSecret and cached by rpkit",
            source="python-social-auth/social-core social_core/backends/apple.py",
        ),
        Quirk(
            what="the name comes once, in the first callback's user form field, never in a token: "
            "AppleUserField bounds and parses it, and ignores the email there",
            source="https://developer.apple.com/documentation/signinwithapplejs/useri",
        ),
        Quirk(
            what="email_verified and is_private_email may be 'true'/'false' strings ('false' for "
            "Apple at Work & School users): read with string_booleans",
            source=f"{_FORUM}746352",
        ),
        Quirk(
            what="no UserInfo and no end_session_endpoint: fetch_userinfo off, local logout",
            source=_DISCOVERY,
        ),
        Quirk(
            what="the refresh token is reused, not rotated; Apple asks for one validation a day at "
            "most, but rpkit refreshes whenever the one-hour access token nears expiry",
            source=f"{_FORUM}656845, {_FORUM}124454",
        ),
        Quirk(
            what="PKCE (S256) is sent as always though discovery advertises none: assumed accepted",
            source=_DISCOVERY,
            confirmed=False,
        ),
    ),
)
