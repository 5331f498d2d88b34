"""Mint ID, access and logout tokens as an OP would, or broken in one named way.

Example:
    >>> from rpkit.testing import KeyRing, Tamper, TokenMinter
    >>> minter = TokenMinter("https://op.example", KeyRing())
    >>> token = minter.mint_id_token(audience="my-client", subject="alice", nonce="n-1")
    >>> forged = minter.mint_id_token(audience="my-client", subject="alice", tamper=Tamper.ALG_NONE)
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from joserfc import jwe
from joserfc.jwk import RSAKey

from rpkit.testing._jose import AsymmetricKey, corrupt_signature, half_hash, sign_compact
from rpkit.testing.keys import JWKSLayout, KeyRing, generate_key, public_jwk

__all__ = ["BACKCHANNEL_LOGOUT_EVENT", "Tamper", "TokenMinter"]

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
ATTACKER_ORIGIN = "https://attacker.example"


class Tamper(StrEnum):
    """One way to break a token's signature or header (checklist rows 21–24, 37, 41, 44)."""

    BAD_SIGNATURE = "bad_signature"
    """The signature bytes are corrupted (rows 21, 23a)."""
    UNKNOWN_KEY = "unknown_key"
    """Signed with a fresh key that the JWKS does not hold, under its own ``kid`` (row 22c)."""
    RANDOM_KID = "random_kid"
    """Signed with the real key, but the header names a random unknown ``kid`` (row 41)."""
    NO_KID = "no_kid"
    """The header carries no ``kid`` (rows 38, 39)."""
    ALG_NONE = "alg_none"
    """``alg: none`` and an empty signature (row 24)."""
    HS256_PUBLIC_KEY = "hs256_public_key"
    """HS256 keyed by the PEM of the OP's RSA public key: algorithm confusion (row 23c)."""
    JWE = "jwe"
    """The signed token wrapped in a five-part JWE the RP has no key for (row 37b)."""
    HEADER_JWK = "header_jwk"
    """Signed with an attacker's key that the header embeds as ``jwk`` (row 44)."""
    HEADER_JKU = "header_jku"
    """Signed with an attacker's key announced through ``jku`` (row 44)."""
    HEADER_X5U = "header_x5u"
    """Signed with an attacker's key announced through ``x5u`` (row 44)."""
    HEADER_X5C = "header_x5c"
    """Signed with an attacker's key whose self-signed certificate is in ``x5c`` (row 44)."""


class TokenMinter:
    """Signs tokens for one issuer with the keys of a :class:`KeyRing`.

    Args:
        issuer: the ``iss`` of every token.
        keys: the OP's key ring.
        clock: returns the current time in seconds; the fake OP shifts it by its clock offset.
    """

    def __init__(self, issuer: str, keys: KeyRing, clock: Callable[[], float] = time.time) -> None:
        self.issuer = issuer
        self.keys = keys
        self.clock = clock

    def now(self) -> int:
        """The minter's current time, in whole seconds."""
        return int(self.clock())

    def sign(
        self,
        claims: dict[str, Any],
        *,
        alg: str = "RS256",
        secret: str | None = None,
        header: dict[str, Any] | None = None,
        tamper: Tamper | None = None,
        layout: JWKSLayout = JWKSLayout.STANDARD,
        typ: str = "JWT",
    ) -> str:
        """Sign ``claims`` exactly as given.

        Args:
            claims: the payload.
            alg: the JWS algorithm; HS* needs ``secret`` (the client secret, as UTF-8).
            secret: the shared secret for HS*.
            header: members merged into the protected header last; None removes a member.
            tamper: one way to break the token.
            layout: the published JWKS layout; the no-kid layouts sign without ``kid``.
            typ: the ``typ`` header.
        """
        protected: dict[str, Any] = {"alg": alg, "typ": typ}
        key: AsymmetricKey | bytes | None = None
        if alg.startswith("HS"):
            key = _utf8(secret, alg)
        elif alg != "none":
            key = self.keys.signing_key(alg, layout)
            if layout is JWKSLayout.STANDARD:
                protected["kid"] = self.keys.kid(alg)
        if tamper is not None:
            key = self._tamper_header(tamper, protected, alg, key)
        protected.update(header or {})
        protected = {name: value for name, value in protected.items() if value is not None}
        token = sign_compact(protected, claims, key)
        if tamper is Tamper.BAD_SIGNATURE:
            token = corrupt_signature(token)
        elif tamper is Tamper.JWE:
            token = _wrap_in_jwe(token)
        return token

    def _tamper_header(
        self, tamper: Tamper, protected: dict[str, Any], alg: str, key: AsymmetricKey | bytes | None
    ) -> AsymmetricKey | bytes | None:
        if tamper is Tamper.NO_KID:
            protected.pop("kid", None)
        elif tamper is Tamper.RANDOM_KID:
            protected["kid"] = f"unknown-{secrets.token_hex(8)}"
        elif tamper is Tamper.UNKNOWN_KEY:
            key = generate_key(alg, f"unknown-{secrets.token_hex(8)}")
            protected["kid"] = key.kid
        elif tamper is Tamper.ALG_NONE:
            protected["alg"] = "none"
            protected.pop("kid", None)
        elif tamper is Tamper.HS256_PUBLIC_KEY:
            rsa = self.keys.active["RS256"]
            protected.update(alg="HS256", kid=self.keys.kid("RS256"))
            key = rsa.as_pem(private=False)
        elif tamper.name.startswith("HEADER_"):
            key = self._attacker_header(tamper, protected, alg)
        return key

    def _attacker_header(
        self, tamper: Tamper, protected: dict[str, Any], alg: str
    ) -> AsymmetricKey:
        attacker = generate_key("RS256" if alg.startswith("HS") else alg)
        protected["alg"] = "RS256" if alg.startswith("HS") else alg
        if tamper is Tamper.HEADER_JWK:
            protected["jwk"] = public_jwk(attacker)
        elif tamper is Tamper.HEADER_JKU:
            protected["jku"] = f"{ATTACKER_ORIGIN}/jwks.json"
        elif tamper is Tamper.HEADER_X5U:
            protected["x5u"] = f"{ATTACKER_ORIGIN}/cert.pem"
        else:
            protected["x5c"] = [_self_signed_der_b64(attacker)]
        return attacker

    def mint_id_token(
        self,
        *,
        audience: str | list[str],
        subject: str,
        nonce: str | None = None,
        auth_time: int | None = None,
        access_token: str | None = None,
        lifetime: int = 300,
        claims: dict[str, Any] | None = None,
        **sign: Any,
    ) -> str:
        """An ID token (Core §2) with ``iss``, ``sub``, ``aud``, ``iat``, ``exp``, ``auth_time``,
        ``nonce`` when given and ``at_hash`` when ``access_token`` is given; ``claims`` are merged
        last. Keyword arguments of :meth:`sign` pass through."""
        now = self.now()
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + lifetime,
            "auth_time": now if auth_time is None else auth_time,
        }
        if nonce is not None:
            payload["nonce"] = nonce
        if access_token is not None:
            payload["at_hash"] = half_hash(access_token, sign.get("alg", "RS256"))
        payload.update(claims or {})
        return self.sign(payload, **sign)

    def mint_access_token(
        self,
        *,
        subject: str,
        audience: str | list[str],
        client_id: str,
        scope: str = "",
        lifetime: int = 3600,
        claims: dict[str, Any] | None = None,
        **sign: Any,
    ) -> str:
        """A JWT access token in the RFC 9068 profile (``typ: at+jwt``)."""
        now = self.now()
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "client_id": client_id,
            "scope": scope,
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(12),
        }
        payload.update(claims or {})
        sign.setdefault("typ", "at+jwt")
        return self.sign(payload, **sign)

    def mint_logout_token(
        self,
        *,
        audience: str,
        subject: str | None = None,
        sid: str | None = None,
        lifetime: int = 120,
        claims: dict[str, Any] | None = None,
        **sign: Any,
    ) -> str:
        """A back-channel logout token (Back-Channel Logout §2.4, ``typ: logout+jwt``)."""
        now = self.now()
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": audience,
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(12),
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        }
        if subject is not None:
            payload["sub"] = subject
        if sid is not None:
            payload["sid"] = sid
        payload.update(claims or {})
        sign.setdefault("typ", "logout+jwt")
        return self.sign(payload, **sign)


def _utf8(secret: str | None, alg: str) -> bytes:
    if not secret:
        msg = f"{alg} is keyed by the client secret; this client has none"
        raise ValueError(msg)
    return secret.encode()


def _wrap_in_jwe(token: str) -> str:
    recipient = RSAKey.generate_key(2048)
    header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "cty": "JWT"}
    # joserfc's default registry refuses RSA-OAEP-256 as "not recommended"; allow it by name.
    algorithms = [header["alg"], header["enc"]]
    return jwe.encrypt_compact(header, token.encode(), recipient, algorithms=algorithms)


def _self_signed_der_b64(key: AsymmetricKey) -> str:
    private = key.private_key
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker.example")])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())  # type: ignore[union-attr]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    digest = None if key.key_type == "OKP" else hashes.SHA256()
    cert = builder.sign(private, digest)  # type: ignore[arg-type]
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
