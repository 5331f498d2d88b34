"""The JWT core shared by every token rpkit validates: compact JWS and the registered claims.

A token is split, its segments decoded with a strict base64url decoder and its header parsed with
msgspec; the signature is then checked for the one algorithm the caller allows (RS256/384/512
straight with ``cryptography``, the others by joserfc's algorithm model), with a key the caller
got from :class:`~rpkit.jwks.JWKSCache` (or HMAC over the client secret). Nothing here reads a
key from the token itself. The claim helpers check the RFC 7519 registered claims in plain
Python. Failures raise :class:`Rejected`, which each validator turns into its own error class.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
from collections.abc import Container, Mapping
from types import MappingProxyType
from typing import Any, Final, NamedTuple

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc.jwk import OKPKey
from joserfc.jws import JWSRegistry
from pybase64 import b64decode as _b64decode

from rpkit._json import decode as decode_json
from rpkit.jwks import VerificationKey

__all__ = [
    "MAX_CLAIM_LENGTH",
    "MAX_NUMERIC_DATE",
    "MAX_TOKEN_LENGTH",
    "MISSING",
    "Compact",
    "Rejected",
    "audiences",
    "check_times",
    "check_type",
    "half_hash",
    "integer",
    "optional_str",
    "parse_compact",
    "show",
    "string_claim",
    "subject",
]

MISSING: Final = object()
"""Default for ``claims.get`` that tells an absent claim from a JSON ``null``."""
MAX_TOKEN_LENGTH = 65536
"""Longer tokens are refused before any decoding (bounds the work an attacker can cause)."""
MAX_NUMERIC_DATE: Final = 2**40
"""The largest NumericDate accepted (seconds, about year 36812); negative ones are refused too."""
MAX_CLAIM_LENGTH: Final = 255
"""Longest ``sub`` (OpenID Connect Core §2: at most 255 ASCII characters), ``sid``, ``jti`` and
``nonce`` accepted."""
_SUBJECT = re.compile(r"[\x20-\x7e]{1,255}")
"""OpenID Connect Core §2: at most 255 ASCII characters; control characters refused too."""

# base64url → the standard alphabet in one C-level pass; '+', '/' and '=' become '!', which the
# strict standard decoder refuses, so only the URL-safe alphabet without padding is accepted.
_B64URL_TO_STD = bytes.maketrans(b"-_+/=", b"+/!!!")
_HMAC_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_SHA_BY_BITS = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}
_HALF_HASHES = {
    **{
        f"{family}{bits}": sha
        for family in ("HS", "RS", "PS", "ES")
        for bits, sha in _SHA_BY_BITS.items()
    },
    "ES256K": hashlib.sha256,
}
# joserfc's algorithm models, taken from its registry table directly: the caller has already
# pinned the algorithm, so joserfc's allow-list lookup (``get_alg``, which also emits the RFC 9864
# ``SecurityWarning`` for "EdDSA") is never needed and no warning filter is either.
_MODELS = JWSRegistry.algorithms
# RS256/384/512 are RSASSA-PKCS1-v1_5 with SHA-2 (RFC 7518 §3.3), verified straight with
# ``cryptography`` (joserfc's model checks the key's ``key_ops`` on every call, which
# ``JWKSCache.key_for`` already did when it picked the key): the commonest access-token algorithm.
# The verification is RFC 8017 §8.2.2 by encoding comparison: OpenSSL applies the public key and
# checks the block type 1 padding (00 01, at least eight FF, 00), and the data after it must be
# exactly the DigestInfo of the expected hash (RFC 8017 §9.2 step 2 and its Note 1 prefixes, NULL
# parameters, the only form OpenSSL's own RSA_verify accepts) followed by hashlib's digest of the
# signing input; the signature must be exactly the modulus length (§8.2.2 step 1, which OpenSSL's
# recover path does not check). Measured against ``public_key.verify(..., Prehashed(...))``: 15.5
# against 16.3 µs per RSA-2048 signature; that call also fetches the digest for OpenSSL per call.
_PKCS1: Final = padding.PKCS1v15()
_RSA_PKCS1_HASHES: Final = {
    "RS256": (hashlib.sha256, bytes.fromhex("3031300d060960864801650304020105000420")),
    "RS384": (hashlib.sha384, bytes.fromhex("3041300d060960864801650304020205000430")),
    "RS512": (hashlib.sha512, bytes.fromhex("3051300d060960864801650304020305000440")),
}


class Rejected(Exception):
    """One failed check: ``reason`` is the stable short name, ``detail`` is safe to log.

    ``continuity`` marks a refreshed ID token that changed identity (Core §12.2).
    """

    def __init__(self, reason: str, detail: str, *, continuity: bool = False) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.continuity = continuity


class Compact(NamedTuple):
    """A compact JWS, split and decoded but not yet verified."""

    header: Mapping[str, Any]
    """Read-only (shared by every token with the same header segment)."""
    alg: str
    header_segment: bytes
    payload_segment: bytes
    signature: bytes

    @property
    def signing_input(self) -> bytes:
        """What the signature covers: the header and payload segments joined by a dot."""
        return self.header_segment + b"." + self.payload_segment

    def verify(self, key: VerificationKey) -> None:
        """Check the signature with an asymmetric ``key`` under :attr:`alg`.

        The key comes from ``JWKSCache.key_for(..., alg)``, which already matched its type,
        curve, ``use``, ``key_ops`` and ``alg`` to :attr:`alg`.

        Raises:
            Rejected: ``signature`` when it does not verify.
        """
        rsa = _RSA_PKCS1_HASHES.get(self.alg)
        try:
            if rsa is not None:
                sha, digest_info = rsa
                public: Any = key.public_key  # an RSAKey: key_for matched it to the RS* alg
                signature = self.signature
                # The signing input hashed in three updates rather than joined first: no copy
                # of it (a 600-byte allocation costs 0.2-0.6 µs on a busy server's cold cache).
                hashed = sha(self.header_segment)
                hashed.update(b".")
                hashed.update(self.payload_segment)
                if len(signature) != (public.key_size + 7) // 8 or (
                    public.recover_data_from_signature(signature, _PKCS1, None)
                    != digest_info + hashed.digest()
                ):
                    raise Rejected("signature", "the signature does not verify")
                return
            valid = _MODELS[self.alg].verify(self.signing_input, self.signature, key)
        # cryptography and joserfc raise on keys or signatures of the wrong shape (a key of
        # another type has no RSA method: AttributeError; key_for never returns one).
        except (InvalidSignature, ValueError, TypeError, AttributeError) as exc:
            raise Rejected("signature", "the signature does not verify") from exc
        if not valid:
            raise Rejected("signature", "the signature does not verify")

    def verify_hmac(self, secret: str) -> None:
        """Check an HS256/384/512 MAC keyed by the UTF-8 bytes of the client secret.

        Done here rather than with joserfc's ``OctKey``, which warns about short secrets that
        providers nevertheless issue.

        Raises:
            Rejected: ``signature`` when the MAC does not match.
        """
        digest = hmac.new(secret.encode(), self.signing_input, _HMAC_HASHES[self.alg]).digest()
        if not hmac.compare_digest(digest, self.signature):
            raise Rejected("signature", "the MAC does not verify with the client secret")

    def verify_unsigned(self) -> None:
        """Accept ``alg: none`` only with an empty signature part (RFC 7519 §6.1).

        Raises:
            Rejected: ``signature`` when an unsigned token carries a signature.
        """
        if self.signature:
            raise Rejected("signature", "an alg 'none' token must have an empty signature")

    def claims(self) -> dict[str, Any]:
        """The payload as a JSON object (call only after verifying).

        Raises:
            Rejected: ``malformed`` when it is not base64url JSON of an object.
        """
        return _json_object(_payload(self.payload_segment))

    def flat_claims(self) -> tuple[dict[str, Any], bool]:
        """:meth:`claims`, and whether they are flat: every value a string, number, boolean,
        null or an array of those (most access tokens). Flat claims come with those arrays
        already decoded as tuples, so ``MappingProxyType(claims)`` is deeply read-only, and
        they nest two levels at most, so no depth bound is needed. Any other payload is decoded
        as :meth:`claims` decodes it (arrays as lists), with False.

        Raises:
            Rejected: ``malformed`` when it is not base64url JSON of an object.
        """
        segment = self.payload_segment
        try:  # _payload, inline: this runs on every token's first sight
            payload = _b64decode(
                segment.translate(_B64URL_TO_STD) + b"=" * (-len(segment) % 4), None, True
            )
        except binascii.Error as exc:
            raise Rejected("malformed", "the payload is not base64url-encoded JSON") from exc
        try:
            return _decode_flat(payload), True
        except ValueError:  # not flat, or not JSON: decoded (or refused) the general way
            return _json_object(payload), False


_Scalar = str | int | float | bool | None
_decode_flat = msgspec.json.Decoder(dict[str, _Scalar | tuple[_Scalar, ...]]).decode
"""Flat claims (:meth:`Compact.flat_claims`); a nested object or array is a ValidationError
(a ValueError, like msgspec's DecodeError), which sends the payload to the general decoder."""


def _payload(segment: bytes) -> bytes:
    try:
        return _b64url(segment)
    except binascii.Error as exc:
        raise Rejected("malformed", "the payload is not base64url-encoded JSON") from exc


def _json_object(payload: bytes) -> dict[str, Any]:
    claims = decode_json(payload, _malformed_payload)
    if type(claims) is not dict:
        raise Rejected("malformed", "the payload is not a JSON object")
    return claims


def parse_compact(token: str | bytes) -> Compact:
    """Split and decode a compact JWS (text, or the bytes a header carried); refuse JWE,
    unknown ``crit`` and malformed input.

    Raises:
        Rejected: ``jwe`` for a five-part token, ``crit`` for any ``crit`` header (rpkit
            understands no JWS extension), ``malformed`` for anything else that is not a
            compact JWS with a string ``alg``.
    """
    kind = type(token)
    if (kind is not str and kind is not bytes) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise Rejected("malformed", "the token is not a string of acceptable length")
    if not token.isascii():  # O(1) for text; one fast pass over bytes
        raise Rejected("malformed", "the token contains non-ASCII characters")
    raw = token.encode("ascii") if isinstance(token, str) else token
    parts = raw.split(b".", 4)  # at most five parts, however many dots were sent
    if len(parts) != 3:
        if len(parts) == 5 and b"." not in parts[4]:
            raise Rejected("jwe", "the token is encrypted (JWE), which is not configured")
        raise Rejected("malformed", "the token is not a three-part compact JWS")
    head, payload, signature = parts
    header = _HEADERS.get(head)
    if header is None:
        header = _decode_header(head)
        if len(head) <= _MAX_REMEMBERED_HEADER:
            if len(_HEADERS) >= _MAX_REMEMBERED_HEADERS:
                _HEADERS.clear()
            _HEADERS[head] = header
    try:  # _b64url's two lines, inline: every token's first sight (TokenValidator._access)
        decoded_signature = _b64decode(
            signature.translate(_B64URL_TO_STD) + b"=" * (-len(signature) % 4), None, True
        )
    except binascii.Error as exc:
        raise Rejected("malformed", "the signature is not valid base64url") from exc
    # tuple.__new__ straight: what Compact(...) does, without NamedTuple's Python-level __new__
    return tuple.__new__(Compact, (header, header["alg"], head, payload, decoded_signature))


_HEADERS: dict[bytes, Any] = {}
"""Header segments already parsed, as their read-only header: every token of one issuer and
key carries the same header, so its decoding and checks (below) run once per distinct header,
not once per token. Only headers that passed them enter; at most
``_MAX_REMEMBERED_HEADERS`` of at most ``_MAX_REMEMBERED_HEADER`` bytes (about 128 KiB at
worst), cleared when full, so distinct headers sent in a flood cost what they cost before."""
_MAX_REMEMBERED_HEADERS: Final = 128
_MAX_REMEMBERED_HEADER: Final = 1024


def _decode_header(head: bytes) -> Mapping[str, Any]:
    """The header segment as a read-only mapping, checked as :func:`parse_compact` says."""
    try:
        raw_header = _b64url(head)
    except binascii.Error as exc:
        raise Rejected("malformed", "the header is not valid base64url") from exc
    header = decode_json(raw_header, _malformed_header)
    if type(header) is not dict or type(header.get("alg")) is not str:
        raise Rejected("malformed", "the header is not a JSON object with a string 'alg'")
    if "crit" in header:
        raise Rejected("crit", f"the header marks {show(header['crit'])} critical; none is known")
    return MappingProxyType(header)


def _malformed_header() -> Rejected:
    return Rejected("malformed", "the header is not JSON")


def _malformed_payload() -> Rejected:
    return Rejected("malformed", "the payload is not base64url-encoded JSON")


def _b64url(segment: bytes) -> bytes:
    """Strict base64url without padding: any other character is an error.

    Decoded by pybase64 (SIMD; https://pybase64.readthedocs.io) with ``validate=True``, which
    refuses what ``binascii.a2b_base64(..., strict_mode=True)`` refuses (any character outside
    the standard alphabet, wrong or excess padding) and raises the same ``binascii.Error``, at
    about a third of its cost on a 1 KiB token (this runs on every token's payload and signature).
    """
    padded = segment.translate(_B64URL_TO_STD) + b"=" * (-len(segment) % 4)
    # (altchars None, validate True) passed by position: the keywords cost this C function
    # 0.12 µs to parse, as much as decoding a 500-byte segment
    return _b64decode(padded, None, True)


def half_hash(value: str, alg: str, key: VerificationKey | None) -> str | None:
    """The ``at_hash``/``c_hash`` of ``value`` (Core §3.1.3.6), or None when ``alg`` defines no
    hash (``none``).

    The hash is the one named by the algorithm; EdDSA with an Ed25519 key uses SHA-512 and with
    an Ed448 key SHAKE256 with a 114-byte output (the OpenID Core errata set).
    """
    if alg in ("EdDSA", "Ed25519", "Ed448"):
        ed448 = alg == "Ed448" or (isinstance(key, OKPKey) and key.curve_name == "Ed448")
        digest = hashlib.shake_256(value.encode()).digest(114) if ed448 else _sha512(value)
    elif alg in _HALF_HASHES:
        digest = _HALF_HASHES[alg](value.encode()).digest()
    else:
        return None
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def _sha512(value: str) -> bytes:
    return hashlib.sha512(value.encode()).digest()


def show(value: Any) -> str:
    """A short ``repr`` of an untrusted header or claim value for an error detail."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- registered claims ---------------------------------------------------------------------------


def check_type(header: Mapping[str, Any], accepted: Container[str]) -> None:
    """``typ``, when present, is one of ``accepted`` (lower-case), compared case-insensitively."""
    typ = header.get("typ")
    if typ is not None and (type(typ) is not str or typ.lower() not in accepted):
        raise Rejected("typ", f"token type {show(typ)} is not accepted here")


def audiences(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """``aud`` as a tuple: a non-empty string or a non-empty array of them."""
    aud = claims.get("aud")
    if type(aud) is str and aud:
        return (aud,)
    if (type(aud) is list or type(aud) is tuple) and aud:
        for audience in aud:  # a loop, not all(): this runs on every bearer request
            if type(audience) is not str or not audience:
                break
        else:
            return tuple(aud)
    raise Rejected("aud", "aud is missing or not a string or array of strings")


def integer(claims: Mapping[str, Any], name: str) -> int:
    """A required NumericDate claim, in whole seconds. RFC 7519 §2 allows fractions, so a finite
    float is floored; bools, strings and other types are refused, and so is a value outside
    ``0..MAX_NUMERIC_DATE`` (arithmetic on it could overflow a float or a store's expiry)."""
    value = claims.get(name)
    if type(value) is int:  # the common case first; excludes bool
        seconds = int(value)
    elif type(value) is float and math.isfinite(value):
        seconds = math.floor(value)
    else:
        raise Rejected(name, f"{name} is missing or not a number")
    if not 0 <= seconds <= MAX_NUMERIC_DATE:
        raise Rejected(name, f"{name} is not a date between 1970 and year 36812")
    return seconds


def check_times(
    claims: Mapping[str, Any], now: float, leeway: int, max_iat_age: int | None
) -> tuple[int, int, int | None]:
    """``exp`` not passed, ``iat`` not in the future nor too old, ``nbf`` reached (rows 30–32).

    Returns ``iat``, ``exp`` and ``nbf`` (None when absent), in whole seconds."""
    exp = claims.get("exp")
    if type(exp) is not int or not 0 <= exp <= MAX_NUMERIC_DATE:  # else as integer() says
        exp = integer(claims, "exp")
    if now >= exp + leeway:
        raise Rejected("exp", "the token has expired")
    iat = claims.get("iat")
    if type(iat) is not int or not 0 <= iat <= MAX_NUMERIC_DATE:
        iat = integer(claims, "iat")
    if iat > now + leeway:
        raise Rejected("iat", "iat is in the future")
    if max_iat_age is not None and now - iat > max_iat_age + leeway:
        raise Rejected("iat", f"iat is more than {max_iat_age} s old")
    nbf = claims.get("nbf", MISSING)
    if nbf is MISSING:
        return iat, exp, None
    if type(nbf) is not int or not 0 <= nbf <= MAX_NUMERIC_DATE:
        nbf = integer(claims, "nbf")
    if nbf > now + leeway:
        raise Rejected("nbf", "the token is not valid yet (nbf)")
    return iat, exp, nbf


def string_claim(
    claims: Mapping[str, Any], name: str = "sub", *, max_length: int = MAX_CLAIM_LENGTH
) -> str:
    """A required non-empty string claim of at most ``max_length`` characters."""
    value = claims.get(name)
    if type(value) is not str or not value:
        raise Rejected(name, f"{name} is missing or not a non-empty string")
    if len(value) > max_length:
        raise Rejected(name, f"{name} is longer than {max_length} characters")
    return value


def subject(claims: Mapping[str, Any]) -> str:
    """The ``sub`` of an OpenID Connect token (ID or logout token): at most 255 printable ASCII
    characters (Core §2). Access tokens' subjects only get :func:`string_claim`'s bound: RFC 9068
    takes ``sub`` from RFC 7519, which allows any string."""
    sub = string_claim(claims, "sub")
    if not _SUBJECT.fullmatch(sub):
        raise Rejected("sub", "sub is not printable ASCII (OpenID Connect Core §2)")
    return sub


def optional_str(
    claims: Mapping[str, Any], name: str, *, max_length: int | None = None
) -> str | None:
    """An optional string claim; present with another type, or longer than ``max_length``
    characters, is a rejection."""
    value = claims.get(name, MISSING)
    if value is MISSING:
        return None
    if type(value) is not str:
        raise Rejected(name, f"{name} is not a string")
    if max_length is not None and len(value) > max_length:
        raise Rejected(name, f"{name} is longer than {max_length} characters")
    return value
