"""DPoP proofs for the relying party (RFC 9449): the per-session key, proof creation, server
nonces, and an :class:`httpx.Auth` for the application's own calls with a DPoP-bound token.

A :class:`DPoPKey` is generated for each login (ES256 by default) and kept server-side with the
transaction, then with the session; only its public half ever leaves the server, in a proof's
``jwk`` header. :meth:`DPoPKey.proof` makes one proof JWT (RFC 9449 §4.2): header ``typ``
``dpop+jwt``, ``alg`` and the public ``jwk``; claims ``jti``, ``htm``, ``htu`` (the target URI
without query and fragment), ``iat``, ``ath`` (base64url SHA-256 of the access token, §4.2) when
a token goes along, and the server's ``nonce`` (§8, §9) when one was supplied. Nonces are kept
per origin in :class:`DPoPNonces` and a request refused with ``use_dpop_nonce`` is sent again
once with the new nonce (:func:`nonce_challenge`, :func:`is_nonce_error`).

Example:
    >>> from rpkit.dpop import DPoPKey
    >>> key = DPoPKey.generate()
    >>> proof = key.proof("POST", "https://op.example/token", now=1_700_000_000)
    >>> proof.count(".")
    2
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from rpkit.config import DPOP_ALGS
from rpkit.errors import ConfigurationError

__all__ = [
    "DPOP_JWT_TYPE",
    "MAX_NONCE_LENGTH",
    "DPoPAuth",
    "DPoPKey",
    "DPoPNonces",
    "access_token_hash",
    "htu_of",
    "is_nonce_error",
    "nonce_challenge",
]

DPOP_JWT_TYPE = "dpop+jwt"
"""The ``typ`` of every proof (RFC 9449 §4.2)."""
MAX_NONCE_LENGTH = 512
"""Longest server nonce kept; a longer ``DPoP-Nonce`` is ignored (no retry)."""
_NQCHAR = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
"""RFC 9449 §8.1: a nonce is 1*NQCHAR."""
_DPOP_ERROR = re.compile(r'(?:^|[\s,])error="?use_dpop_nonce"?(?:$|[\s,])')
_KEYS: dict[str, tuple[type[ECKey | RSAKey | OKPKey], Any]] = {
    "ES256": (ECKey, "P-256"),
    "ES384": (ECKey, "P-384"),
    "ES512": (ECKey, "P-521"),
    "PS256": (RSAKey, 2048),
    "RS256": (RSAKey, 2048),
    "EdDSA": (OKPKey, "Ed25519"),
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(document: Mapping[str, Any]) -> str:
    return _b64url(json.dumps(document, separators=(",", ":")).encode())


def access_token_hash(access_token: str) -> str:
    """The ``ath`` claim: base64url of the SHA-256 of the token's ASCII bytes (§4.2)."""
    return _b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def htu_of(url: str) -> str:
    """The ``htu`` of a request to ``url``: scheme, authority and path, without query and
    fragment (RFC 9449 §4.2); userinfo is dropped too, so no password ends up in a claim."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    netloc = f"{host}:{parts.port}" if parts.port not in (None, default) else host
    return urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class DPoPKey:
    """One DPoP key pair. Its ``repr`` shows the thumbprint only; the private half is exported
    only by :meth:`to_private_jwk`, for the server-side store.

    Args:
        key: a joserfc private key of the type ``alg`` needs.
        alg: one of :data:`rpkit.config.DPOP_ALGS`.
    """

    __slots__ = ("_alg", "_key", "_public", "_thumbprint")

    def __init__(self, key: ECKey | RSAKey | OKPKey, alg: str) -> None:
        if alg not in DPOP_ALGS:
            raise ConfigurationError(f"dpop_alg must be one of {list(DPOP_ALGS)}, not {alg!r}")
        if not key.is_private:
            raise ConfigurationError("a DPoP key needs its private half to sign proofs")
        self._key = key
        self._alg = alg
        self._public = {k: v for k, v in key.as_dict(private=False).items() if k != "kid"}
        self._thumbprint = key.thumbprint()

    @classmethod
    def generate(cls, alg: str = "ES256") -> DPoPKey:
        """A fresh key pair for ``alg`` (P-256 for ES256, 2048-bit RSA for PS256/RS256,
        Ed25519 for EdDSA)."""
        if alg not in _KEYS:
            raise ConfigurationError(f"dpop_alg must be one of {list(DPOP_ALGS)}, not {alg!r}")
        kind, size = _KEYS[alg]
        return cls(kind.generate_key(size, private=True), alg)

    @classmethod
    def from_private_jwk(cls, jwk: Mapping[str, Any]) -> DPoPKey:
        """The key :meth:`to_private_jwk` stored (the algorithm travels as the JWK's ``alg``).

        Raises:
            ConfigurationError: not a private key of a DPoP algorithm.
        """
        alg = str(jwk.get("alg", ""))
        kind = _KEYS.get(alg, (None, None))[0]
        if kind is None:
            raise ConfigurationError("a stored DPoP key names no DPoP algorithm")
        try:
            key = kind.import_key(dict(jwk))
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise ConfigurationError(
                f"a stored DPoP key is unusable: {type(exc).__name__}"
            ) from exc
        return cls(key, alg)

    def to_private_jwk(self) -> dict[str, Any]:
        """The private JWK with ``alg``: for the server-side store only, never for a cookie,
        a log line or the browser."""
        return {**self._key.as_dict(private=True), "alg": self._alg}

    @property
    def alg(self) -> str:
        return self._alg

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public JWK a proof carries in its header (a copy)."""
        return dict(self._public)

    @property
    def thumbprint(self) -> str:
        """The JWK SHA-256 thumbprint (RFC 7638): ``dpop_jkt`` (§10) and the token's
        ``cnf.jkt`` (§6.1)."""
        return self._thumbprint

    def __repr__(self) -> str:
        return f"DPoPKey(alg={self._alg!r}, jkt={self._thumbprint!r})"

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        now: float | None = None,
    ) -> str:
        """A fresh proof JWT for one request (RFC 9449 §4.2): a new ``jti`` every time.

        Args:
            method: the request's HTTP method (``htm``).
            url: the request's URL; its query and fragment are left out of ``htu``.
            access_token: the token sent with the request; adds ``ath``.
            nonce: the server's latest ``DPoP-Nonce`` for this origin, if any.
            now: epoch seconds for ``iat`` (the current time when None).
        """
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(24),
            "htm": method.upper(),
            "htu": htu_of(url),
            "iat": int(time.time() if now is None else now),
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        header = {"typ": DPOP_JWT_TYPE, "alg": self._alg, "jwk": self._public}
        signing_input = f"{_segment(header)}.{_segment(claims)}"
        # The algorithm model straight from joserfc's table: the key's algorithm is fixed, so
        # the allow-list lookup (and its RFC 9864 warning for "EdDSA") has nothing to add.
        signature = JWSRegistry.algorithms[self._alg].sign(signing_input.encode(), self._key)
        return f"{signing_input}.{_b64url(signature)}"


class DPoPNonces:
    """The latest server nonce per origin (RFC 9449 §8, §9), shared by every request rpkit makes
    and by :class:`DPoPAuth`. Bounded: the oldest origin is forgotten past ``max_origins``."""

    def __init__(self, max_origins: int = 256) -> None:
        self._nonces: OrderedDict[str, str] = OrderedDict()
        self._max = max_origins

    def get(self, url: str) -> str | None:
        """The nonce to put in a proof for ``url``, if its origin supplied one."""
        return self._nonces.get(_origin(url))

    def learn(self, url: str, response: httpx.Response) -> str | None:
        """Keep the ``DPoP-Nonce`` of ``response`` (a request to ``url``) when it is a
        well-formed nonce; return it (None when absent or malformed)."""
        nonce: str | None = response.headers.get("dpop-nonce")
        if nonce is None or len(nonce) > MAX_NONCE_LENGTH or not _NQCHAR.fullmatch(nonce):
            return None
        origin = _origin(url)
        self._nonces[origin] = nonce
        self._nonces.move_to_end(origin)
        while len(self._nonces) > self._max:
            self._nonces.popitem(last=False)
        return nonce


def is_nonce_error(response: httpx.Response) -> bool:
    """Whether ``response`` asks for a (new) DPoP nonce: a 400 whose JSON ``error`` is
    ``use_dpop_nonce`` (an authorization server, §8), or a 401 whose ``WWW-Authenticate``
    challenge says ``error="use_dpop_nonce"`` (a resource server, §9)."""
    if response.status_code == 401:
        challenge = response.headers.get("www-authenticate", "")
        return challenge.lower().startswith("dpop") and bool(_DPOP_ERROR.search(challenge))
    if response.status_code != 400:
        return False
    try:
        document = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(document, dict) and document.get("error") == "use_dpop_nonce"


def nonce_challenge(nonces: DPoPNonces, url: str, response: httpx.Response) -> str | None:
    """The nonce to retry with once: the fresh ``DPoP-Nonce`` of a ``use_dpop_nonce``
    refusal; None when ``response`` is no such refusal or carries no usable nonce (then the
    refusal stands: no retry)."""
    nonce = nonces.learn(url, response)
    return nonce if nonce is not None and is_nonce_error(response) else None


class _Session(Protocol):
    access_token: str
    dpop_jwk: dict[str, Any] | None


class DPoPAuth(httpx.Auth):
    """Send a DPoP-bound access token to the application's own APIs (RFC 9449 §7): every request
    gets ``Authorization: DPoP <token>`` and a fresh proof with ``htm``, ``htu`` and ``ath``; a
    ``use_dpop_nonce`` challenge is answered once with the nonce it supplied.

    Example:
        >>> import httpx
        >>> from rpkit.dpop import DPoPAuth, DPoPKey
        >>> auth = DPoPAuth("access-token", DPoPKey.generate())
        >>> client = httpx.AsyncClient(auth=auth)  # or per request: client.get(url, auth=auth)

    Args:
        access_token: the DPoP-bound access token.
        key: the key it is bound to (the session's).
        nonces: where server nonces are kept between requests; shared with rpkit's own
            (``RelyingParty.dpop_nonces``) when given, else private to this object.
        clock: epoch seconds for ``iat``.
    """

    requires_request_body = True  # a retry with a nonce sends the body again

    def __init__(
        self,
        access_token: str,
        key: DPoPKey,
        *,
        nonces: DPoPNonces | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token = access_token
        self._key = key
        self._nonces = nonces if nonces is not None else DPoPNonces()
        self._clock = clock

    @classmethod
    def for_session(cls, session: _Session, *, nonces: DPoPNonces | None = None) -> DPoPAuth:
        """The auth of a signed-in session (``rpkit.litestar.SessionData``) whose provider
        uses DPoP.

        Raises:
            ConfigurationError: the session holds no DPoP key (its provider has ``dpop`` off,
                or it is a cookie session, which keeps no tokens).
        """
        if not session.dpop_jwk or not session.access_token:
            msg = "this session has no DPoP-bound token: set dpop=True on its provider"
            raise ConfigurationError(msg)
        return cls(session.access_token, DPoPKey.from_private_jwk(session.dpop_jwk), nonces=nonces)

    def _sign(self, request: httpx.Request) -> None:
        url = str(request.url)
        request.headers["Authorization"] = f"DPoP {self._token}"
        request.headers["DPoP"] = self._key.proof(
            request.method,
            url,
            access_token=self._token,
            nonce=self._nonces.get(url),
            now=self._clock(),
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._sign(request)
        response = yield request
        if nonce_challenge(self._nonces, str(request.url), response) is not None:
            self._sign(request)  # a new proof (new jti) with the nonce just learnt
            yield request
