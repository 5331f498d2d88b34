"""The answers of a refused bearer request: :class:`BearerError`, its RFC 6750 ``WWW-Authenticate``
challenge and RFC 9457 problem-details body, and the fixed texts the client is told.

A challenge names the ``realm`` and, for a protected resource that publishes RFC 9728 metadata,
``resource_metadata`` (RFC 9728 §5.1); the bearer middleware and the exception handler fill both in
from the config, so code raising a :class:`BearerError` needs to know neither.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from litestar.plugins.problem_details import ProblemDetailsException

from rpkit.litestar.responses import BEARER_REFUSALS

__all__ = ["PROBLEM_TYPE_BASE", "BearerError"]

PROBLEM_TYPE_BASE: Final = "https://rpkit.dev/errors/"
"""Problem ``type`` URIs are this plus rpkit's stable ``code``."""

# RFC 6750 §3: realm and error_description are quoted strings without '"' and '\'; scope
# tokens (RFC 6749 §3.3) are the same characters without the space.
QUOTABLE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_NO_STORE = "no-store"

_INVALID = "The access token is not valid."
_DESCRIPTIONS: Final = {
    "malformed": "The access token is not a well-formed signed JWT.",
    "jwe": "Encrypted access tokens are not accepted.",
    "crit": "The access token marks a header parameter critical that is not supported.",
    "alg": "The access token's signing algorithm is not accepted.",
    "typ": "The access token's type (typ) is not accepted.",
    "key": "No trusted key verifies the access token.",
    "signature": "The access token's signature does not verify.",
    "iss": "The access token's issuer is not trusted.",
    "aud": "The access token is not meant for this API.",
    "sub": "The access token has no subject.",
    "exp": "The access token has expired.",
    "iat": "The access token's issue time is not valid.",
    "nbf": "The access token is not valid yet.",
    "user": "The access token's subject is not known here.",
    "id_token": "An ID token is not an access token: send the access token.",
    "client_id": "The access token names no client (client_id), which RFC 9068 requires.",
    "jti": "The access token has no identifier (jti), which RFC 9068 requires.",
}
"""Core ``reason`` → what the client is told. Fixed text, never the core's detail, which may
quote claim values from the token; the detail goes to the log instead."""


class BearerError(ProblemDetailsException):
    """A refused bearer request, rendered from
    :data:`~rpkit.litestar.responses.BEARER_REFUSALS` by its ``code``.

    The body is ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail``
    and rpkit's stable ``code``; 401, 403 and 400 carry an RFC 6750 ``WWW-Authenticate``
    challenge, which also names the RFC 9728 metadata URL (``resource_metadata``) when the
    config protects a :class:`~rpkit.litestar.protected_resource.ProtectedResource`.
    :class:`~rpkit.litestar.bearer.OIDCBearerAuth` registers the handler; an application's own
    handler for this class, or for the status code, wins.

    Attributes:
        code: ``access_token_missing`` (401), ``access_token_invalid`` (401),
            ``insufficient_scope`` (403), ``access_token_ambiguous`` (400),
            ``jwks_unavailable`` (503), or with DPoP ``dpop_proof_invalid`` (401),
            ``dpop_nonce_required`` (401) and ``store_unavailable`` (503).
        error: the RFC 6750 error code, or None.
        scope: for ``insufficient_scope``, the space-separated scopes required.
        realm: the challenge's realm; None until the middleware or handler names it.
        resource_metadata: the absolute URL of the RFC 9728 metadata document, or None.
        scheme: the challenge that carries the error: ``Bearer``, or ``DPoP`` for a request
            made with DPoP (RFC 9449 §7.2).
        dpop_algs: with DPoP on, the proof algorithms of the ``DPoP`` challenge (§7.1).
        dpop_nonce: the nonce sent in ``DPoP-Nonce`` with a ``use_dpop_nonce`` refusal (§9).
    """

    def __init__(
        self, code: str, description: str, *, scope: str | None = None, realm: str | None = None
    ) -> None:
        status, title, self.error = BEARER_REFUSALS[code]
        self.code, self.scope, self.realm = code, scope, realm
        self.resource_metadata: str | None = None
        self.scheme, self.offer_bearer = "Bearer", True
        self.dpop_algs: str | None = None
        self.dpop_nonce: str | None = None
        super().__init__(
            detail=description,
            status_code=status,
            extra={"code": code},
            type_=PROBLEM_TYPE_BASE + code,
            title=title,
        )
        self.headers = self._headers()

    def set_realm(self, realm: str, resource_metadata: str | None = None) -> None:
        """Name ``realm`` (and the RFC 9728 ``resource_metadata`` URL) in the challenge unless
        they are already named."""
        changed = False
        if self.realm is None:
            self.realm, changed = realm, True
        if self.resource_metadata is None and resource_metadata is not None:
            self.resource_metadata, changed = resource_metadata, True
        if changed:
            self.headers = self._headers()

    def dpop_scheme(self, scheme: str) -> None:
        """Put the error in the challenge of ``scheme`` (``Bearer`` or ``DPoP``), the one the
        request used (RFC 9449 §7.2)."""
        self.scheme = scheme
        self.headers = self._headers()

    def for_token(self, jkt: str | None) -> BearerError:
        """This refusal of a valid token, in the ``DPoP`` challenge when the token is
        DPoP-bound (``jkt``): such a token came with the DPoP scheme (RFC 9449 §7.1)."""
        if jkt is not None:
            self.dpop_scheme("DPoP")
        return self

    def set_dpop(self, algs: str, *, bearer: bool) -> None:
        """Add the ``DPoP`` challenge with ``algs`` (RFC 9449 §7.1); without ``bearer`` (DPoP
        required) the ``Bearer`` challenge is left out and the error goes to ``DPoP``."""
        self.dpop_algs, self.offer_bearer = algs, bearer
        self.headers = self._headers()

    def _headers(self) -> dict[str, str]:
        if self.status_code == 503:
            return {"Cache-Control": _NO_STORE}
        headers = {"WWW-Authenticate": self._challenges(), "Cache-Control": _NO_STORE}
        if self.dpop_nonce is not None:
            headers["DPoP-Nonce"] = self.dpop_nonce
        return headers

    def _challenges(self) -> str:
        schemes = ["Bearer"] if self.offer_bearer else []
        if self.dpop_algs is not None:
            schemes.append("DPoP")
        erring = self.scheme if self.scheme in schemes else schemes[-1]
        return ", ".join(self._challenge(scheme, scheme == erring) for scheme in schemes)

    def _challenge(self, scheme: str, erring: bool) -> str:
        params = [("realm", self.realm)]
        if erring and self.error is not None:
            params += [("error", self.error), ("error_description", self.detail)]
            params.append(("scope", self.scope))
        if scheme == "DPoP":
            params.append(("algs", self.dpop_algs))
        # RFC 9728 §5.1: the metadata URL in every challenge, so a client that holds no token
        # (or a bad one) can find the authorization server; MCP clients read it on 401 and 403.
        params.append(("resource_metadata", self.resource_metadata))
        challenge = ", ".join(f'{name}="{value}"' for name, value in params if value is not None)
        return f"{scheme} {challenge}".rstrip()


def missing() -> BearerError:
    """No bearer credentials: 401 with a bare challenge (RFC 6750 §3.1)."""
    return BearerError("access_token_missing", "Send an access token as 'Authorization: Bearer'.")


def invalid(reason: str) -> BearerError:
    """A refused token: 401 ``invalid_token`` with the fixed text for the core's ``reason``."""
    return BearerError("access_token_invalid", _DESCRIPTIONS.get(reason, _INVALID))


def insufficient(scopes: Iterable[str]) -> BearerError:
    """A valid token without ``scopes``: 403 ``insufficient_scope`` naming them."""
    wanted = " ".join(scopes)
    description = f"The access token lacks a required scope ({wanted})."
    return BearerError("insufficient_scope", description, scope=wanted)
