"""Client authentication at the token endpoint, and PKCE.

:func:`client_auth` turns a provider's ``client_auth`` method into the headers and form fields of
one token request. ``client_secret_basic`` is encoded here as RFC 6749 §2.3.1 requires (both
parts form-urlencoded before Base64), not by Authlib, which skips that step (gap G16).
This is the one module that calls Authlib's untyped client-assertion and PKCE helpers.
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any
from urllib.parse import quote_plus

from authlib.oauth2.rfc7523 import private_key_jwt_sign
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc.errors import JoseError

from rpkit.config import ProviderConfig
from rpkit.errors import ConfigurationError

__all__ = [
    "ASSERTION_LIFETIME",
    "JWT_BEARER_ASSERTION_TYPE",
    "basic_authorization",
    "client_assertion",
    "client_auth",
    "new_code_verifier",
    "s256_challenge",
]

JWT_BEARER_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 60
"""Seconds a ``private_key_jwt`` client assertion stays valid: one request's worth."""

_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def client_auth(
    config: ProviderConfig, token_endpoint: str, *, now: float, secret: str | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """The extra headers and form fields that authenticate ``config``'s client.

    Args:
        config: the provider; ``client_auth`` picks the method.
        token_endpoint: the audience of a ``private_key_jwt`` assertion.
        now: the current time (epoch seconds) for the assertion's ``iat`` and ``exp``.
        secret: a minted client secret (``hooks.client_secret``) used instead of
            ``config.client_secret``.

    Returns:
        ``(headers, form)``. The secret travels in exactly one place: the ``Authorization``
        header for ``client_secret_basic``, the body for ``client_secret_post``.

    Raises:
        ConfigurationError: the secret or private key the method needs is missing or unusable.

    Example:
        >>> from rpkit.config import ProviderConfig
        >>> config = ProviderConfig(
        ...     id="op", issuer="https://op.example", client_id="app", client_secret="a:b"
        ... )
        >>> client_auth(config, "https://op.example/token", now=0)
        ({'Authorization': 'Basic YXBwOmElM0Fi'}, {})
    """
    method = config.client_auth
    if method == "client_secret_basic":
        authorization = basic_authorization(config.client_id, secret or _secret(config))
        return {"Authorization": authorization}, {}
    if method == "client_secret_post":
        return {}, {"client_id": config.client_id, "client_secret": secret or _secret(config)}
    if method == "private_key_jwt":
        return {}, {
            "client_id": config.client_id,
            "client_assertion_type": JWT_BEARER_ASSERTION_TYPE,
            "client_assertion": client_assertion(config, token_endpoint, now=now),
        }
    return {}, {"client_id": config.client_id}


def basic_authorization(client_id: str, secret: str) -> str:
    """``Basic`` credentials as RFC 6749 §2.3.1 defines them: Base64 of the form-urlencoded
    client id, a colon, and the form-urlencoded secret (UTF-8)."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def client_assertion(config: ProviderConfig, token_endpoint: str, *, now: float) -> str:
    """A ``private_key_jwt`` client assertion (RFC 7523 §3): ``iss`` = ``sub`` = the client id,
    ``aud`` = the token endpoint, a fresh random ``jti``, and ``exp`` :data:`ASSERTION_LIFETIME`
    seconds after ``iat``.

    Raises:
        ConfigurationError: no private key, or it cannot sign with ``config.private_key_alg``.
    """
    key = config.private_key
    if not key:
        msg = f"provider {config.id!r}: client_auth='private_key_jwt' needs private_key"
        raise ConfigurationError(msg)
    issued_at = int(now)
    header = {"kid": str(key["kid"])} if key.get("kid") else {}
    try:
        return _authlib_private_key_jwt_sign(
            dict(key),
            client_id=config.client_id,
            token_endpoint=token_endpoint,
            alg=config.private_key_alg,
            claims={"jti": secrets.token_urlsafe(32)},
            header=header,
            issued_at=issued_at,
            expires_at=issued_at + ASSERTION_LIFETIME,
        )
    # Key import and signing raise ValueError, TypeError or JoseError subclasses for a bad key.
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        msg = (
            f"provider {config.id!r}: private_key cannot sign a client assertion with "
            f"{config.private_key_alg!r} ({type(exc).__name__})"
        )
        raise ConfigurationError(msg) from exc


def new_code_verifier() -> str:
    """A fresh PKCE ``code_verifier``: 32 random bytes, base64url without padding (43 chars),
    as RFC 7636 §4.1 recommends."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")


def s256_challenge(verifier: str) -> str:
    """The ``S256`` ``code_challenge`` of ``verifier`` (RFC 7636 §4.2).

    Raises:
        ValueError: ``verifier`` is not 43–128 unreserved characters (RFC 7636 §4.1).
    """
    if not _VERIFIER.fullmatch(verifier):
        msg = "a code_verifier is 43-128 characters of A-Z a-z 0-9 - . _ ~"
        raise ValueError(msg)
    return str(create_s256_code_challenge(verifier))


def _secret(config: ProviderConfig) -> str:
    if not config.client_secret:
        msg = f"provider {config.id!r}: client_auth={config.client_auth!r} needs client_secret"
        raise ConfigurationError(msg)
    return config.client_secret


def _authlib_private_key_jwt_sign(
    key: dict[str, Any],
    *,
    client_id: str,
    token_endpoint: str,
    alg: str,
    claims: dict[str, Any],
    header: dict[str, str],
    issued_at: int,
    expires_at: int,
) -> str:
    """Authlib's untyped ``private_key_jwt_sign``, typed; the key dict is imported by joserfc."""
    token = private_key_jwt_sign(
        key,
        client_id,
        token_endpoint,
        alg=alg,
        claims=claims,
        header=header,
        issued_at=issued_at,
        expires_at=expires_at,
    )
    return str(token)
