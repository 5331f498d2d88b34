"""The transaction cookie: an encrypted, authenticated handle and nothing else.

The handle ties pending logins and logouts to one browser (their ``binding``); the transactions
themselves stay server-side. AES-GCM with the cookie's name as associated data, and the expiry
inside the ciphertext, so a cookie cannot be moved to another name or outlive its lifetime.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import struct
import time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["HandleCodec", "binding_of", "new_handle"]

_NONCE_BYTES = 12


def new_handle() -> str:
    """A fresh random browser handle (256 bits)."""
    return secrets.token_urlsafe(32)


def binding_of(handle: str) -> str:
    """The value stored with a transaction: a hash, so the store never holds the handle."""
    return hashlib.sha256(handle.encode()).hexdigest()


class HandleCodec:
    """Seal and open handles with a key derived from the configured secret."""

    def __init__(self, secret: str) -> None:
        key = hashlib.sha256(b"rpkit transaction cookie\x00" + secret.encode()).digest()
        self._aead = AESGCM(key)

    def seal(self, handle: str, name: str, lifetime: int, now: float | None = None) -> str:
        """The cookie value for ``handle`` under cookie ``name``, valid for ``lifetime`` s."""
        expires = int((time.time() if now is None else now) + lifetime)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        plain = struct.pack(">Q", expires) + handle.encode()
        sealed = nonce + self._aead.encrypt(nonce, plain, name.encode())
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()

    def open(
        self, value: str | None, name: str, now: float | None = None, *, limit: int = 512
    ) -> str | None:
        """The handle in a cookie value, or None when absent, longer than ``limit``, forged,
        moved or expired."""
        if not value or len(value) > limit:
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], name.encode())
        except (ValueError, InvalidTag):
            return None
        (expires,) = struct.unpack(">Q", plain[:8])
        if expires < (time.time() if now is None else now):
            return None
        return plain[8:].decode()
