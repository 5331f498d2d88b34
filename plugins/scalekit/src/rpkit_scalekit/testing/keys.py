"""The fake Scalekit's signing keys: RSA-2048, RS256 only, ``kid`` shaped ``snk_<digits>``.

A :class:`rpkit.testing.KeyRing` with one algorithm, so rpkit's
:class:`~rpkit.testing.TokenMinter` (and its :class:`~rpkit.testing.Tamper` modes) signs for
the fake. Rotation can keep the previous key published, as a graceful rollover does, or drop it
at once, to test an RP's refetch on an unknown ``kid`` (scalekit-sdk.md §8.1).
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from rpkit.testing import JWKSLayout, KeyRing, generate_key

__all__ = ["ScalekitKeys"]

_Key = RSAKey | ECKey | OKPKey


def _new_kid() -> str:
    return f"snk_{secrets.randbelow(10**18):018d}"


class ScalekitKeys(KeyRing):
    """The environment's key set, as served at ``/keys``.

    Args:
        initial: a ready RSA private key to start with (its ``kid`` is kept, or one is made),
            so a test suite can share one key among many fakes instead of paying for RSA
            generation each time; a fresh key when None. Rotation always generates.

    Attributes:
        previous: keys rotated away but still published (newest last).
    """

    def __init__(self, initial: RSAKey | None = None) -> None:
        self.previous: list[_Key] = []
        self._initial = initial
        super().__init__()

    def _generate(self) -> None:
        # KeyRing's hook for a fresh set of active keys: Scalekit signs RS256 only.
        initial, self._initial = self._initial, None
        if initial is not None:
            kid = initial.kid or _new_kid()
            key = RSAKey.import_key(initial.as_dict(private=True), {"kid": kid})
            self.active = {"RS256": key}
            return
        self.active = {"RS256": generate_key("RS256", _new_kid())}

    def rotate(self, *, keep_previous: bool = True) -> None:
        """Make a fresh key the signing key.

        Args:
            keep_previous: keep publishing the replaced key, so tokens it signed still verify;
                False drops it from ``/keys`` at once.
        """
        replaced = self.active["RS256"]
        super().rotate()
        if keep_previous:
            self.previous.append(replaced)

    def unpublish_previous(self) -> None:
        """Stop publishing every rotated-away key."""
        self.previous.clear()

    @property
    def signing_kid(self) -> str:
        """The ``kid`` of the active key."""
        return self.kid("RS256")

    def published(self) -> list[_Key]:
        """The keys ``/keys`` serves: the active one first, then kept previous ones."""
        return [self.active["RS256"], *reversed(self.previous)]

    def jwks(
        self,
        layout: JWKSLayout = JWKSLayout.STANDARD,
        *,
        key_params: dict[str, dict[str, Any]] | None = None,
        extra_keys: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The ``/keys`` document: ``{"keys": [{"kty","use","alg","kid","n","e"}, …]}``.

        ``layout`` and ``key_params`` are ignored (Scalekit has one layout); ``extra_keys`` are
        appended as given.
        """
        keys = [_public(key) for key in self.published()]
        return {"keys": keys + list(extra_keys or [])}

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of ``token`` if a published key signed it (RS256), else None. Expiry is
        not checked."""
        try:
            header = json.loads(_b64decode(token.split(".", maxsplit=1)[0]))
            key = next((k for k in self.published() if k.kid == header.get("kid")), None)
            if key is None:
                return None
            public = RSAKey.import_key(_public(key))
            payload = jws.deserialize_compact(token, public, algorithms=["RS256"]).payload
            claims: dict[str, Any] = json.loads(payload)
        except (JoseError, ValueError, IndexError, AttributeError):
            return None
        return claims


def _public(key: _Key) -> dict[str, Any]:
    jwk = dict(key.as_dict(private=False))
    return {"kty": jwk["kty"], "use": "sig", "alg": "RS256", "kid": key.kid} | {
        name: jwk[name] for name in ("n", "e")
    }


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
