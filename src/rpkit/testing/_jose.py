"""Low-level JOSE helpers for the fake OP: compact signing that can also produce broken tokens.

joserfc refuses to *produce* many of the artefacts a misbehaving OP must send (unknown ``crit``,
``alg: none``, HMAC keyed by a PEM), so the kit assembles compact JWS itself and uses joserfc only
for the signature primitives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

AsymmetricKey = RSAKey | ECKey | OKPKey

_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def json_b64(obj: Any) -> str:
    """Compact JSON, base64url-encoded."""
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def sign_compact(
    header: dict[str, Any], claims: dict[str, Any], key: AsymmetricKey | bytes | None
) -> str:
    """Sign ``claims`` with the algorithm named in ``header``.

    ``key`` is an asymmetric key for RS/PS/ES/EdDSA, raw bytes for HS*, and ignored for
    ``none`` (the signature part is then empty, as RFC 7519 §6.1 describes).
    """
    signing_input = f"{json_b64(header)}.{json_b64(claims)}"
    alg = header["alg"]
    if alg == "none":
        return signing_input + "."
    if alg.startswith("HS"):
        if not isinstance(key, bytes):
            msg = f"{alg} needs raw secret bytes"
            raise TypeError(msg)
        mac = hmac.new(key, signing_input.encode(), _HASHES[alg[2:]]).digest()
        return f"{signing_input}.{b64url(mac)}"
    if not isinstance(key, RSAKey | ECKey | OKPKey):
        msg = f"{alg} needs an asymmetric private key"
        raise TypeError(msg)
    signature = JWSRegistry.algorithms[alg].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64url(signature)}"


def corrupt_signature(token: str) -> str:
    """Flip bits in the signature part so it no longer verifies, keeping its length."""
    head, payload, signature = token.split(".")
    raw = bytearray(b64url_decode(signature) or b"\x00")
    raw[len(raw) // 2] ^= 0xFF
    raw[0] ^= 0x01
    return f"{head}.{payload}.{b64url(bytes(raw))}"


def half_hash(value: str, alg: str) -> str:
    """The ``at_hash`` / ``c_hash`` of ``value`` for a JWS algorithm (Core §3.1.3.6).

    The hash is the one in the algorithm's name; EdDSA (Ed25519) uses SHA-512.
    """
    digest_fn = hashlib.sha512 if alg == "EdDSA" else _HASHES.get(alg[-3:], hashlib.sha256)
    digest = digest_fn(value.encode("ascii")).digest()
    return b64url(digest[: len(digest) // 2])


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWS, without verifying anything (for the kit's oracle)."""
    head, payload, _ = token.split(".")
    header: dict[str, Any] = json.loads(b64url_decode(head))
    claims: dict[str, Any] = json.loads(b64url_decode(payload))
    return header, claims


def verify_compact(
    token: str, key: AsymmetricKey | OctKey | bytes, alg: str
) -> dict[str, Any] | None:
    """Claims of ``token`` when its signature verifies with ``key`` under ``alg``, else None.

    ``key`` is raw secret bytes for HS* (short client secrets included, which joserfc's
    ``OctKey`` would warn about)."""
    try:
        head, payload, signature = token.split(".")
        header = json.loads(b64url_decode(head))
        if header.get("alg") != alg or alg == "none":
            return None
        signing_input = f"{head}.{payload}".encode()
        if isinstance(key, bytes):
            mac = hmac.new(key, signing_input, _HASHES[alg[2:]]).digest()
            ok = alg.startswith("HS") and hmac.compare_digest(mac, b64url_decode(signature))
        else:
            ok = JWSRegistry.algorithms[alg].verify(signing_input, b64url_decode(signature), key)
    except (ValueError, KeyError, TypeError):
        return None
    if not ok:
        return None
    claims: dict[str, Any] = json.loads(b64url_decode(payload))
    return claims
