"""DPoP proofs received by a protected resource (RFC 9449): checked, bound and never replayed.

:class:`DPoPVerifier` applies the checks of RFC 9449 §4.3 to the ``DPoP`` header of a request
that presents an access token with the ``DPoP`` scheme (§7.1): one header, a compact JWS typed
``dpop+jwt`` (§11.5) under an allowed asymmetric algorithm (§11.6), signed by the public key in
its own ``jwk`` header (never a private key), ``htm`` and ``htu`` equal to the request's method
and URI (normalised per RFC 3986 §6.2.2 and §6.2.3), ``iat`` within a short window (§11.1),
``ath`` equal to the hash of the presented token (§4.2) and, when the server hands out nonces
(§9), a current ``nonce``. :meth:`~DPoPVerifier.confirm` then checks the token's ``cnf.jkt``
against the proof key's RFC 7638 thumbprint (§6.1) and records the proof's ``jti`` in a
:class:`~rpkit.store.KeyValueStore` with an atomic set-if-absent, so a proof is accepted once
across every worker sharing the store (§11.1). Failures raise
:class:`~rpkit.errors.DPoPProofError` with a stable ``reason``.

Nothing here reads an ``X-Forwarded-*`` header: the URI a proof must name is the request's own
(scheme and ``Host``) unless :attr:`DPoPPolicy.base_url` states the URL clients use.

Example:
    >>> from rpkit.dpop_verify import DPoPPolicy, DPoPVerifier
    >>> from rpkit.store import MemoryStore
    >>> verifier = DPoPVerifier(DPoPPolicy(base_url="https://api.example.com"), MemoryStore())
    >>> verifier.expected_htu("http", "10.0.0.7:8000", b"/orders")
    'https://api.example.com/orders'
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import string
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple
from urllib.parse import SplitResult, urlsplit

import msgspec
from joserfc.jwk import JWKRegistry

from rpkit._jwt import MAX_CLAIM_LENGTH, Compact, Rejected, integer, parse_compact, show
from rpkit.errors import ConfigurationError, DPoPProofError
from rpkit.jwks import KEY_TYPES, MIN_RSA_BITS, VerificationKey, modulus_bits
from rpkit.store import KeyValueStore

__all__ = [
    "DEFAULT_DPOP_ALGORITHMS",
    "MAX_PROOF_LENGTH",
    "DPoPPolicy",
    "DPoPProof",
    "DPoPVerifier",
    "access_token_hash",
    "normalize_htu",
]

DEFAULT_DPOP_ALGORITHMS: Final = ("ES256", "PS256", "RS256", "EdDSA", "Ed25519")
"""Proof algorithms accepted by default: ES256 (what clients use first, RFC 9449 examples), the
RSA ones for clients with RSA keys, and Ed25519 under both of its names (RFC 9864)."""
MAX_PROOF_LENGTH: Final = 8192
"""Longer ``DPoP`` headers are refused before decoding; a proof with a 4096-bit RSA key is
about 1.5 KiB."""
MAX_HTU_LENGTH: Final = 4096
_MAX_MEMBERS: Final = 32
"""Most members a proof's header, ``jwk`` or payload may have (it needs fewer than 10)."""
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_TYPE: Final = "dpop+jwt"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")
_UNRESERVED: Final = frozenset((string.ascii_letters + string.digits + "-._~").encode())
_NONCE_CONTEXT: Final = b"rpkit DPoP nonce v1 "
_JTI_PREFIX: Final = "rpkit:dpop-jti:"


class DPoPPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """What a protected resource accepts in a DPoP proof. Refused at construction when unsafe.

    Example:
        >>> DPoPPolicy(base_url="https://api.example.com", algorithms=("ES256",)).max_age
        60
    """

    algorithms: tuple[str, ...] = DEFAULT_DPOP_ALGORITHMS
    """Accepted proof ``alg`` values, advertised in the ``algs`` of ``WWW-Authenticate: DPoP``
    challenges (§7.1). Asymmetric only: ``none`` and HS* are refused here (§11.6)."""
    max_age: int = 60
    """Seconds a proof is accepted after its ``iat`` (§11.1: "on the order of seconds or
    minutes"); its ``jti`` is remembered that long. Longer windows let a captured request be
    replayed for longer where the replay store is not shared."""
    clock_skew: int = 5
    """Seconds a proof's ``iat`` may lie in the future (a client clock slightly ahead)."""
    base_url: str | None = None
    """The URL clients address this API by (``https://api.example.com``, with a path prefix a
    proxy strips, if any): proofs must name it in ``htu``. Set it behind a TLS-terminating or
    rewriting proxy. When None, the request's own scheme and ``Host`` header are used: correct
    without a proxy, and ``X-Forwarded-*`` headers are never trusted."""
    nonce_secret: bytes | None = None
    """Turns server nonces on (§9): proofs must carry a ``nonce`` this API handed out in a
    ``DPoP-Nonce`` header, which limits how far ahead a client can pre-compute proofs (§11.2).
    Nonces are derived from this secret and the time, so every worker given the same secret
    (at least 32 random bytes, kept out of source control) accepts every other's nonces. None:
    no nonces, ``iat`` alone bounds a proof's age."""
    nonce_lifetime: int = 300
    """Seconds between nonce rotations; a nonce is accepted for one to two lifetimes."""

    def __post_init__(self) -> None:
        problem = _policy_problem(self)
        if problem is not None:
            raise ConfigurationError(f"DPoPPolicy: {problem}")
        if self.base_url is not None:
            msgspec.structs.force_setattr(self, "base_url", self.base_url.rstrip("/"))


def _policy_problem(policy: DPoPPolicy) -> str | None:
    weak = [alg for alg in policy.algorithms if alg not in KEY_TYPES]
    if weak or not policy.algorithms:
        return f"algorithms must be asymmetric JWS algorithms, not {weak or 'an empty list'}"
    if not 1 <= policy.max_age <= 600 or not 0 <= policy.clock_skew <= 120:
        return "max_age must be 1..600 seconds and clock_skew 0..120 seconds"
    if policy.nonce_secret is not None and len(policy.nonce_secret) < 32:
        return "nonce_secret must be at least 32 random bytes"
    if not 10 <= policy.nonce_lifetime <= 86400:
        return "nonce_lifetime must be 10..86400 seconds"
    if policy.base_url is not None:
        parts = _split(policy.base_url)
        if parts is None or parts.query or parts.fragment or "?" in policy.base_url:
            return f"base_url {policy.base_url!r} is not an http(s) URL without query"
    return None


class DPoPProof(NamedTuple):
    """A proof that passed :meth:`DPoPVerifier.check` (RFC 9449 §4.3), not yet confirmed."""

    jkt: str
    """The RFC 7638 SHA-256 thumbprint of the proof's public key (what ``cnf.jkt`` names)."""
    jti: str
    htm: str
    htu: str
    """As the proof names it (before normalisation)."""
    iat: int
    alg: str
    nonce: str | None
    """The server nonce the proof carried, when nonces are on."""


class DPoPVerifier:
    """Checks DPoP proofs for one protected resource.

    Args:
        policy: what proofs may look like.
        store: where seen ``jti`` values are remembered: shared by every worker (Redis) for
            replays to be refused across workers; a :class:`~rpkit.store.MemoryStore` covers
            one process only.
        clock: the current time in seconds since the epoch (injectable for tests).
    """

    __slots__ = ("_clock", "_store", "policy")

    def __init__(
        self,
        policy: DPoPPolicy,
        store: KeyValueStore,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self._store = store
        self._clock = clock

    def expected_htu(self, scheme: str, host: str | None, raw_path: bytes) -> str:
        """The URI a proof for this request must name: :attr:`DPoPPolicy.base_url` (or
        ``scheme://host``) followed by the request's path as received, without its query.

        Raises:
            DPoPProofError: ``htu`` when there is no base URL and no ``Host`` header.
        """
        path = raw_path.decode("latin-1")
        base = self.policy.base_url
        if base is None:
            if not host:
                raise DPoPProofError("htu", "the request has no Host header to check htu against")
            base = f"{scheme}://{host}"
        return base + path

    def check(
        self,
        proofs: Sequence[str],
        *,
        method: str,
        htu: str,
        access_token: str | None,
    ) -> DPoPProof:
        """Every check of RFC 9449 §4.3 that needs no store: ``proofs`` are the values of the
        request's ``DPoP`` headers, ``htu`` its URI (see :meth:`expected_htu`).

        Raises:
            DPoPProofError: the proof is refused (``reason`` says why; ``use_dpop_nonce``
                carries the nonce to use).
        """
        if not proofs:
            raise DPoPProofError("missing", "the request carries no DPoP proof header")
        if len(proofs) > 1:
            raise DPoPProofError("multiple", "the request carries more than one DPoP header")
        proof = proofs[0]
        if len(proof) > MAX_PROOF_LENGTH:
            raise DPoPProofError("malformed", f"the DPoP proof is over {MAX_PROOF_LENGTH} bytes")
        try:
            compact = parse_compact(proof)
            key = self._proof_key(compact)
            compact.verify(key)
            claims = compact.claims()
        except Rejected as exc:
            raise DPoPProofError(_proof_reason(exc.reason), exc.detail) from exc
        now = self._clock()
        checked = _checked_claims(
            claims, self.policy, now, method=method, htu=htu, access_token=access_token
        )
        nonce = self._check_nonce(claims, now)
        return DPoPProof(key.thumbprint(), *checked, compact.alg, nonce)

    async def confirm(self, proof: DPoPProof, bound_to: str | None) -> None:
        """The last checks, once the access token is validated: its ``cnf.jkt`` (``bound_to``)
        names the proof's key (§4.3 item 12, §6), then the ``jti`` was never seen (§11.1).

        The ``jti`` is recorded only for a proof that passed everything else, so forged
        requests never fill the store. It is remembered, keyed by the SHA-256 of the key's
        thumbprint and the ``jti`` (bounded keys, §11.1), while the proof's ``iat`` is in the
        window.

        Raises:
            DPoPProofError: ``unbound``, ``jkt`` or ``replay``.
            StoreError: the store failed (the request must not be served).
        """
        if bound_to is None:
            raise DPoPProofError("unbound", "the access token is not DPoP-bound (no cnf.jkt)")
        if not hmac.compare_digest(bound_to.encode(), proof.jkt.encode()):
            raise DPoPProofError("jkt", "the access token is bound to another key (cnf.jkt)")
        digest = hashlib.sha256(f"{proof.jkt} {proof.jti}".encode()).digest()
        key = _JTI_PREFIX + _b64(digest)
        remember_for = max(1, math.ceil(proof.iat + self.policy.max_age - self._clock()) + 1)
        if not await self._store.add(key, b"1", remember_for):
            raise DPoPProofError("replay", "this DPoP proof (its jti) was already used")

    def nonce(self) -> str | None:
        """The nonce clients should use now (for a ``DPoP-Nonce`` header), or None when nonces
        are off."""
        secret = self.policy.nonce_secret
        if secret is None:
            return None
        return _nonce(secret, int(self._clock() // self.policy.nonce_lifetime))

    def _check_nonce(self, claims: Mapping[str, Any], now: float) -> str | None:
        """With nonces on, the proof's ``nonce`` is the current one or the one before (§9,
        §11.3): a missing or stale one is ``use_dpop_nonce`` with the current nonce."""
        secret = self.policy.nonce_secret
        if secret is None:
            return None
        epoch = int(now // self.policy.nonce_lifetime)
        current = _nonce(secret, epoch)
        nonce = claims.get("nonce")
        if type(nonce) is str and (
            hmac.compare_digest(nonce.encode(), current.encode())
            or hmac.compare_digest(nonce.encode(), _nonce(secret, epoch - 1).encode())
        ):
            return nonce
        detail = "the DPoP proof carries no nonce" if nonce is None else "the nonce is stale"
        raise DPoPProofError("use_dpop_nonce", detail, nonce=current)

    def _proof_key(self, compact: Compact) -> VerificationKey:
        """§4.3 items 4–7: ``typ``, ``alg`` and the public key of the ``jwk`` header."""
        header = compact.header
        if len(header) > _MAX_MEMBERS:
            raise Rejected("malformed", "the DPoP proof header has too many members")
        typ = header.get("typ")
        if type(typ) is not str or typ.lower() != _TYPE:
            raise Rejected("typ", f"the proof is typed {show(typ)}, not dpop+jwt")
        if compact.alg not in self.policy.algorithms:
            raise Rejected("alg", f"proof algorithm {show(compact.alg)} is not accepted")
        return _public_key(header.get("jwk"), compact.alg)


def _public_key(jwk: Any, alg: str) -> VerificationKey:
    if type(jwk) is not dict or len(jwk) > _MAX_MEMBERS:
        raise Rejected("jwk", "the proof's jwk header is not a JSON object")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise Rejected("private_key", "the proof's jwk header holds a private key")
    kty, curves = KEY_TYPES[alg]
    if jwk.get("kty") != kty or (curves is not None and jwk.get("crv") not in curves):
        raise Rejected("jwk", f"the proof's jwk is not a {kty} key for {alg}")
    # Checked before importing: joserfc warns about (and the suite turns into errors) short keys.
    if kty == "RSA" and _modulus_bits(jwk.get("n")) < MIN_RSA_BITS:
        raise Rejected("jwk", f"the proof's RSA key is shorter than {MIN_RSA_BITS} bits")
    try:
        key = JWKRegistry.import_key(dict(jwk))
    # Remote input: whatever joserfc or cryptography raise for it is a refusal.
    except Exception as exc:
        raise Rejected("jwk", f"the proof's jwk cannot be imported: {type(exc).__name__}") from exc
    if not isinstance(key, VerificationKey) or key.is_private:
        raise Rejected("jwk", "the proof's jwk is not an asymmetric public key")
    return key


def _modulus_bits(n: Any) -> int:
    # 2048 base64url characters: a 12288-bit modulus; longer is refused unread
    if type(n) is not str or len(n) > 2048:
        return 0
    return modulus_bits(n)


def _checked_claims(
    claims: Mapping[str, Any],
    policy: DPoPPolicy,
    now: float,
    *,
    method: str,
    htu: str,
    access_token: str | None,
) -> tuple[str, str, str, int]:
    """§4.2 and §4.3 items 3, 8, 9, 11, 12: ``jti``, ``htm``, ``htu``, ``iat`` and ``ath``."""
    if len(claims) > _MAX_MEMBERS:
        raise DPoPProofError("malformed", "the DPoP proof has too many claims")
    jti = claims.get("jti")
    if type(jti) is not str or not jti or len(jti) > MAX_CLAIM_LENGTH:
        raise DPoPProofError("jti", f"jti is missing or not a string of 1..{MAX_CLAIM_LENGTH}")
    htm = claims.get("htm")
    if type(htm) is not str or htm != method:  # methods are case-sensitive (RFC 9110 §9.1)
        raise DPoPProofError("htm", f"htm {show(htm)} is not the request method {method}")
    claimed = claims.get("htu")
    if type(claimed) is not str or len(claimed) > MAX_HTU_LENGTH:
        raise DPoPProofError("htu", "htu is missing or not a string of acceptable length")
    normalized = normalize_htu(claimed)
    if normalized is None or normalized != normalize_htu(htu):
        raise DPoPProofError("htu", f"htu {show(claimed)} is not this request's URI")
    iat = _iat(claims, policy, now)
    if access_token is not None:
        ath = claims.get("ath")
        if type(ath) is not str or not hmac.compare_digest(
            ath.encode(), access_token_hash(access_token).encode()
        ):
            raise DPoPProofError("ath", "ath is missing or not the hash of the access token")
    return jti, htm, claimed, iat


def _iat(claims: Mapping[str, Any], policy: DPoPPolicy, now: float) -> int:
    try:
        iat = integer(claims, "iat")
    except Rejected as exc:
        raise DPoPProofError("iat", exc.detail) from exc
    if iat > now + policy.clock_skew:
        raise DPoPProofError("iat", "the DPoP proof's iat is in the future")
    if now - iat > policy.max_age:
        raise DPoPProofError("iat", f"the DPoP proof is more than {policy.max_age} s old")
    return iat


def _proof_reason(reason: str) -> str:
    """A parse or signature rejection's reason as a proof reason (``jwe``/``crit`` are
    malformed proofs here)."""
    return "malformed" if reason in ("jwe", "crit") else reason


def access_token_hash(token: str) -> str:
    """``ath``: base64url of the SHA-256 of the token's ASCII bytes (RFC 9449 §4.2)."""
    return _b64(hashlib.sha256(token.encode("ascii", "replace")).digest())


def normalize_htu(uri: str) -> str | None:
    """``uri`` without query and fragment, normalised for comparison (RFC 9449 §4.3: syntax-
    and scheme-based normalisation, RFC 3986 §6.2.2 and §6.2.3): scheme and host lower-cased,
    the default port dropped, an empty path made ``/``, percent-encodings upper-cased with
    unreserved characters decoded, and dot segments removed. None when ``uri`` is not an
    absolute http(s) URI with a host (or carries user information)."""
    parts = _split(uri)
    if parts is None:
        return None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port  # validated by _split
    netloc = host if port is None or port == _DEFAULT_PORTS[parts.scheme] else f"{host}:{port}"
    path = _remove_dot_segments(_normalize_percent(parts.path or "/"))
    return f"{parts.scheme}://{netloc}{path}"


def _split(uri: str) -> SplitResult | None:
    try:
        parts = urlsplit(uri if uri.isascii() else "")
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    return parts._replace(scheme=scheme)


def _normalize_percent(path: str) -> str:
    def one(match: re.Match[bytes]) -> bytes:
        byte = int(match.group(1), 16)
        return bytes([byte]) if byte in _UNRESERVED else b"%" + match.group(1).upper()

    return _PERCENT.sub(one, path.encode("ascii")).decode("ascii")


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, over the segments of an absolute path."""
    output: list[str] = []
    segments = path.split("/")[1:]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        elif segment == ".":
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output)


def _nonce(secret: bytes, epoch: int) -> str:
    mac = hmac.new(secret, _NONCE_CONTEXT + str(epoch).encode(), hashlib.sha256).digest()
    return _b64(mac[:24])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
