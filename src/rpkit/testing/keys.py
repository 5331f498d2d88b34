"""The fake OP's signing keys and the JWKS documents it publishes.

One active private key per asymmetric algorithm (RS256, PS256, ES256, EdDSA), replaced on
rotation, plus the key-set layouts of the OpenID Foundation RP tests for tokens without ``kid``.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from typing import Any

from joserfc.jwk import ECKey, OKPKey, RSAKey

from rpkit.testing._jose import AsymmetricKey

__all__ = ["SIGNING_ALGORITHMS", "JWKSLayout", "KeyRing", "generate_key"]

SIGNING_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
"""Asymmetric algorithms the fake OP can sign with."""


class JWKSLayout(StrEnum):
    """Which key set ``jwks_uri`` serves (checklist rows 38, 39)."""

    STANDARD = "standard"
    """One signing key per algorithm, each with ``kid``, ``use: sig`` and ``alg``."""
    SINGLE_NO_KID = "single_no_kid"
    """One signing key each of RSA, EC P-256, EC secp256k1 and OKP, none with ``kid``, plus an
    RSA and an EC encryption key that do have one (``kid-absent-single-jwks``)."""
    MULTIPLE_NO_KID = "multiple_no_kid"
    """Three signing keys each of RSA, EC P-256, secp256k1 and OKP, none with ``kid``
    (``kid-absent-multiple-jwks``)."""


def generate_key(alg: str, kid: str | None = None) -> AsymmetricKey:
    """A fresh private key suitable for ``alg`` (RS*/PS* → RSA 2048, ES256 → P-256, EdDSA →
    Ed25519, ES256K → secp256k1)."""
    params: dict[str, Any] = {"kid": kid} if kid else {}
    if alg.startswith(("RS", "PS")):
        return RSAKey.generate_key(2048, parameters=params)  # type: ignore[arg-type]
    if alg == "ES256K":
        return ECKey.generate_key("secp256k1", parameters=params)  # type: ignore[arg-type]
    if alg.startswith("ES"):
        return ECKey.generate_key("P-256", parameters=params)  # type: ignore[arg-type]
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", parameters=params)  # type: ignore[arg-type]
    msg = f"no key type for algorithm {alg!r}"
    raise ValueError(msg)


def public_jwk(key: AsymmetricKey, **params: Any) -> dict[str, Any]:
    """The public JWK of ``key`` with ``params`` merged in (a value of None removes a member)."""
    jwk: dict[str, Any] = dict(key.as_dict(private=False))
    jwk.update(params)
    return {name: value for name, value in jwk.items() if value is not None}


class KeyRing:
    """The OP's private signing keys, by algorithm, and their published forms."""

    def __init__(self) -> None:
        self.generation = 0
        """How many rotations happened; part of every ``kid``."""
        self.active: dict[str, AsymmetricKey] = {}
        self._extras: dict[str, list[AsymmetricKey]] = {}
        self._enc_keys: list[AsymmetricKey] = []
        self._generate()

    def rotate(self) -> None:
        """Replace every key, and so every ``kid`` (checklist row 40)."""
        self.generation += 1
        self._generate()

    def _generate(self) -> None:
        tag = f"g{self.generation}-{secrets.token_hex(3)}"
        self.active = {alg: generate_key(alg, f"{alg.lower()}-{tag}") for alg in SIGNING_ALGORITHMS}
        # The no-kid layouts need a secp256k1 key and two spares per key type.
        self._extras = {
            "RSA": [generate_key("RS256") for _ in range(2)],
            "EC": [generate_key("ES256") for _ in range(2)],
            "K1": [generate_key("ES256K") for _ in range(3)],
            "OKP": [generate_key("EdDSA") for _ in range(2)],
        }
        self._enc_keys = [
            generate_key("RS256", f"enc-rsa-{tag}"),
            generate_key("ES256", f"enc-ec-{tag}"),
        ]

    def kid(self, alg: str) -> str:
        """The ``kid`` of the active key for ``alg``."""
        kid = self.active[alg].kid
        assert kid is not None  # noqa: S101 - every active key is generated with one
        return kid

    def signing_key(self, alg: str, layout: JWKSLayout = JWKSLayout.STANDARD) -> AsymmetricKey:
        """The private key that signs ``alg`` tokens under ``layout``.

        In the no-kid layouts one RSA key serves both RS256 and PS256, as in the OIDF suite.
        """
        if layout is not JWKSLayout.STANDARD and alg == "PS256":
            return self.active["RS256"]
        return self.active[alg]

    def jwks(
        self,
        layout: JWKSLayout = JWKSLayout.STANDARD,
        *,
        key_params: dict[str, dict[str, Any]] | None = None,
        extra_keys: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The public JWKS for ``layout``.

        Args:
            layout: which set to publish.
            key_params: per algorithm, members to set on (or, with None, remove from) that
                algorithm's published signing key in the standard layout, e.g.
                ``{"RS256": {"use": "enc"}}`` (checklist row 43).
            extra_keys: raw JWKs appended as they are, e.g. a key of an unknown ``kty``.
        """
        if layout is JWKSLayout.STANDARD:
            keys = [
                public_jwk(key, use="sig", alg=alg, **(key_params or {}).get(alg, {}))
                for alg, key in self.active.items()
            ]
        else:
            keys = self._no_kid_keys(layout)
        return {"keys": keys + list(extra_keys or [])}

    def _no_kid_keys(self, layout: JWKSLayout) -> list[dict[str, Any]]:
        per_type = 1 if layout is JWKSLayout.SINGLE_NO_KID else 3
        groups = [
            [self.active["RS256"], *self._extras["RSA"]],
            [self.active["ES256"], *self._extras["EC"]],
            self._extras["K1"],
            [self.active["EdDSA"], *self._extras["OKP"]],
        ]
        keys = [
            public_jwk(key, kid=None, use="sig") for group in groups for key in group[:per_type]
        ]
        if layout is JWKSLayout.SINGLE_NO_KID:
            keys += [public_jwk(key, use="enc") for key in self._enc_keys]
        return keys
