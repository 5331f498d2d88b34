"""An independent JWS signature check for the kit's own tests, written with ``cryptography``
alone so that the kit's JOSE helpers never vouch for themselves."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

USAGE_MEMBERS = ("use", "key_ops", "alg")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def header_of(token: str) -> dict[str, Any]:
    header: dict[str, Any] = json.loads(unb64(token.split(".", maxsplit=1)[0]))
    return header


def public_key(jwk: Mapping[str, Any]) -> Any:
    """The ``cryptography`` public key of a JWK, ignoring usage members (row 43 publishes mixes
    that joserfc refuses to import)."""
    material = {name: value for name, value in jwk.items() if name not in USAGE_MEMBERS}
    return JWKRegistry.import_key(material).public_key


def verifies_with(token: str, key: Any) -> bool:
    """Whether ``token``'s signature checks out with a ``cryptography`` public key."""
    head, payload, signature = token.split(".")
    alg = header_of(token)["alg"]
    data, sig = f"{head}.{payload}".encode(), unb64(signature)
    try:
        if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        elif alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            r, s = int.from_bytes(sig[:32]), int.from_bytes(sig[32:])
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        elif alg == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(sig, data)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def verifies(token: str, jwk: Mapping[str, Any]) -> bool:
    """Whether ``token``'s signature checks out with a published JWK."""
    try:
        key = public_key(jwk)
    except JoseError:
        return False
    return verifies_with(token, key)
