"""DPoP for :class:`~rpkit.litestar.bearer.OIDCBearerAuth`: reading ``Authorization: DPoP`` and
the ``DPoP`` proof header, checking the proof on every request, and refusing downgrades.

:class:`DPoPGate` reads every request's credentials and takes the ``DPoP`` requests past
them (the middleware takes ``Bearer`` ones itself). A ``DPoP`` request has its proof
checked before the token is validated (RFC 9449 §4.3: a bad proof costs no key lookup), then the
token's ``cnf.jkt`` is compared with the proof key and the proof's ``jti`` recorded in the
replay store (:meth:`rpkit.dpop_verify.DPoPVerifier.confirm`). This happens on every request,
after the verified-token cache has answered: the cache remembers a token's signature and
claims, never its proof. A DPoP-bound token presented as ``Bearer`` is refused whatever the
mode (§7.2; :func:`refuse_downgrade`, which the middleware calls). Refusals are
:class:`~rpkit.litestar._challenge.BearerError` with a ``DPoP`` challenge carrying ``algs``
(§7.1) when DPoP is on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Final, Literal, NamedTuple
from urllib.parse import quote

from litestar.openapi.spec import SecurityScheme

from rpkit._log import get_logger
from rpkit.dpop_verify import DPoPProof, DPoPVerifier
from rpkit.errors import DPoPProofError, StoreError
from rpkit.litestar._challenge import BearerError, invalid, missing
from rpkit.litestar._store import LitestarKeyValueStore

if TYPE_CHECKING:
    from litestar.types import Scope

    from rpkit.access_token import AccessToken
    from rpkit.litestar.bearer import OIDCBearerAuth

__all__ = ["DPOP_MODES", "DPoPGate", "DPoPMode", "Presented", "openapi_scheme", "refuse_downgrade"]

DPoPMode = Literal["off", "allowed", "required"]
DPOP_MODES: Final = ("off", "allowed", "required")

_PROOF: Final = {
    "missing": "Send a DPoP proof in a DPoP header with a DPoP access token.",
    "multiple": "Send exactly one DPoP header.",
    "malformed": "The DPoP proof is not a well-formed signed JWT.",
    "typ": "The DPoP proof is not typed dpop+jwt.",
    "alg": "The DPoP proof's signing algorithm is not accepted (see algs).",
    "jwk": "The DPoP proof's jwk header is not an acceptable public key.",
    "private_key": "The DPoP proof's jwk header must hold a public key only.",
    "signature": "The DPoP proof's signature does not verify with its jwk.",
    "jti": "The DPoP proof has no acceptable identifier (jti).",
    "htm": "The DPoP proof is for another HTTP method (htm).",
    "htu": "The DPoP proof is for another URI (htu).",
    "iat": "The DPoP proof is too old, or dated in the future (iat).",
    "ath": "The DPoP proof is for another access token (ath).",
    "replay": "The DPoP proof was already used: send a fresh proof with every request.",
}
"""Proof ``reason`` → what the client is told (fixed text: the core's detail may quote the
proof, and goes to the log)."""
_HTTP_SCHEMES: Final = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_NONCE: Final = "This API requires a nonce in the DPoP proof: use the DPoP-Nonce value."
_BINDING: Final = {
    "jkt": "Invalid DPoP key binding: the access token is bound to another key.",
    "unbound": "The access token is not DPoP-bound: send it as 'Authorization: Bearer'.",
    "bound_bearer": "The access token is DPoP-bound: send it as 'Authorization: DPoP' with a "
    "DPoP proof.",
}


class Presented(NamedTuple):
    """The credentials of a request: the scheme (``Bearer`` or ``DPoP``), the access token as
    sent (header bytes) and the values of its ``DPoP`` headers."""

    scheme: str
    raw_token: bytes
    """The token's bytes, which the verified-token cache hashes as they are: a cached token
    needs no text copy of itself."""
    proofs: tuple[str, ...]

    @property
    def token(self) -> str:
        """The token as text (each header byte one character, as ASGI headers are read)."""
        return self.raw_token.decode("latin-1")


class DPoPGate:
    """The DPoP side of one bearer middleware: made from the config, its replay store taken
    from the app's stores on the first DPoP request."""

    __slots__ = ("_algs", "_mode", "_policy", "_store_name", "_verifier")

    def __init__(self, config: OIDCBearerAuth) -> None:
        self._mode: DPoPMode = config.dpop
        self._policy = config.dpop_policy
        self._store_name = config.dpop_store
        self._algs = " ".join(self._policy.algorithms)
        self._verifier: DPoPVerifier | None = None

    async def with_proof(
        self,
        scope: Scope,
        presented: Presented,
        validate: Callable[[bytes], Awaitable[AccessToken]],
        now: Callable[[bytes], AccessToken | None],
    ) -> AccessToken:
        """The access token of a ``DPoP`` request: its proof checked first (a bad proof costs
        no key lookup), the token as ``now`` has it without waiting (cached, or verified with
        a key at hand) or else as ``validate`` awaits it, then bound to the proof's key and
        the proof recorded against replay, cached or not.

        Raises:
            BearerError: refused; the challenge names DPoP.
        """
        try:
            checked = self._check(scope, presented)
            try:
                access = now(presented.raw_token)
                if access is None:
                    access = await validate(presented.raw_token)
            except BearerError as exc:
                exc.dpop_scheme(presented.scheme)
                raise
            await self._confirm(checked, access)
        except BearerError as exc:
            self.challenge(exc)
            raise
        return access

    def challenge(self, exc: BearerError) -> None:
        """Add the ``DPoP`` challenge with ``algs`` (and drop the ``Bearer`` one when DPoP is
        required) to a refusal, when DPoP is on."""
        if self._mode != "off":
            exc.set_dpop(self._algs, bearer=self._mode == "allowed")

    def credentials(self, scope: Scope) -> Presented:
        """One pass over the raw headers: the one ``Authorization`` header, of a scheme this
        mode accepts (case-insensitive), and every ``DPoP`` header.

        Raises:
            BearerError: none of an accepted scheme (401, bare challenge), two
                ``Authorization`` headers (400) or a scheme without a token (401).
        """
        found: bytes | None = None
        proofs: tuple[str, ...] = ()
        for name, value in scope["headers"]:
            if name == b"authorization":  # ASGI lower-cases header names
                if found is not None:
                    raise BearerError("access_token_ambiguous", "Send one Authorization header.")
                found = value
            elif name == b"dpop":
                proofs = (*proofs, value.decode("latin-1"))
        if found is None:
            raise missing()
        # Bytes throughout: no latin-1 character lower-cases to ASCII, so the scheme compares
        # as the decoded text would.
        scheme, _, credentials = found.partition(b" ")
        scheme = b"bearer" if scheme == b"Bearer" else scheme.lower()  # case-insensitive
        if scheme == b"bearer" and self._mode != "required":
            used = "Bearer"
        elif scheme == b"dpop" and self._mode != "off":
            used = "DPoP"
        else:
            raise missing()  # another scheme is "no credentials", not a bad token
        token = credentials.strip(b" ")
        if token.find(b",") >= 0:  # (find: bytes.__contains__ does not use memchr)
            # Two Authorization headers joined by a proxy or client ("Bearer a, Bearer b"): a
            # comma is not in RFC 6750's b64token, so this is two credentials, not one token.
            raise BearerError("access_token_ambiguous", "Send one Authorization header.")
        if not token:
            error = invalid("malformed")
            error.dpop_scheme(used)
            raise error
        # tuple.__new__ straight: what Presented(...) does, without NamedTuple's Python __new__
        return tuple.__new__(Presented, (used, token, proofs))

    def _check(self, scope: Scope, presented: Presented) -> tuple[DPoPVerifier, DPoPProof]:
        """The checks of the proof alone, before the token is validated."""
        verifier = self._verifier_for(scope)
        try:
            # raw_path: the target as the client sent (and signed) it; path is percent-decoded
            path = scope.get("raw_path") or quote(scope["path"]).encode()
            # A WebSocket handshake is a GET to the http(s) URI (RFC 6455 §3, §4.1).
            scheme = _HTTP_SCHEMES.get(scope.get("scheme", "http"), "http")
            htu = verifier.expected_htu(scheme, _host(scope), path)
            method = str(scope.get("method") or "GET")
            proof = verifier.check(
                presented.proofs, method=method, htu=htu, access_token=presented.token
            )
        except DPoPProofError as exc:
            raise _refusal(exc, None) from exc
        return verifier, proof

    async def _confirm(self, checked: tuple[DPoPVerifier, DPoPProof], access: AccessToken) -> None:
        """The token's binding to the proof key, then the replay check (every request)."""
        try:
            verifier, proof = checked
            await verifier.confirm(proof, access.jkt)
        except DPoPProofError as exc:
            raise _refusal(exc, access.iss) from exc
        except StoreError as exc:
            get_logger(issuer=access.iss).warning("rpkit.dpop.store_failed", detail=exc.detail)
            description = "DPoP proofs cannot be checked for replay right now."
            raise BearerError("store_unavailable", description) from exc

    def _verifier_for(self, scope: Scope) -> DPoPVerifier:
        verifier = self._verifier
        if verifier is None:
            store = LitestarKeyValueStore(scope["app"].stores.get(self._store_name))
            verifier = self._verifier = DPoPVerifier(self._policy, store)
        return verifier


def openapi_scheme(mode: DPoPMode, algorithms: Sequence[str], description: str) -> SecurityScheme:
    """The OpenAPI HTTP security scheme of a bearer config in DPoP ``mode``.

    Off: ``bearer`` with format JWT. Allowed: the same (a Bearer client still works), its
    description naming the ``DPoP`` scheme and proof algorithms too. Required: the ``DPoP``
    scheme, which OpenAPI's ``scheme`` may name because it is in the IANA HTTP Authentication
    Schemes registry (RFC 9449 §12.4).
    """
    if mode == "off":
        return SecurityScheme(
            type="http", scheme="bearer", bearer_format="JWT", description=description
        )
    dpop = (
        "'Authorization: DPoP <token>' with a DPoP proof header (RFC 9449), the token bound to "
        f"the proof's key; proof algorithms: {', '.join(algorithms)}."
    )
    if mode == "required":
        return SecurityScheme(
            type="http", scheme="DPoP", description=f"{description} Send it as {dpop}"
        )
    return SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description=f"{description} Also accepted: {dpop}",
    )


def _host(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"host":
            return value.decode("latin-1")
    server = scope.get("server")
    if server is None:
        return None
    host, port = server
    return host if port is None else f"{host}:{port}"


def refuse_downgrade(access: AccessToken) -> None:
    """RFC 9449 §7.2: a DPoP-bound token sent as ``Bearer`` is refused, whatever the mode.

    Raises:
        BearerError: ``access`` is DPoP-bound (has a ``cnf.jkt``).
    """
    if access.jkt is not None:
        error = DPoPProofError("bound_bearer", "a DPoP-bound token sent as Bearer")
        raise _refusal(error, access.iss) from error


def _refusal(exc: DPoPProofError, issuer: str | None) -> BearerError:
    """The answer to a refused proof or binding; the core's detail goes to the log only."""
    get_logger(issuer=issuer).info("rpkit.dpop.rejected", reason=exc.reason, detail=exc.detail)
    if exc.reason == "use_dpop_nonce":
        error = BearerError("dpop_nonce_required", _NONCE)
        error.dpop_nonce = exc.nonce
    elif exc.reason in _BINDING:
        error = BearerError("access_token_invalid", _BINDING[exc.reason])
    else:
        error = BearerError("dpop_proof_invalid", _PROOF.get(exc.reason, _PROOF["malformed"]))
    error.dpop_scheme("Bearer" if exc.reason == "bound_bearer" else "DPoP")
    return error
