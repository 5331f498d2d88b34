"""The fake OP's signing keys and the JWKS documents it publishes.

One active private key per asymmetric algorithm (RS256, PS256, ES256, EdDSA), replaced on
rotation, plus the key-set layouts of the OpenID Foundation RP tests for tokens without ``kid``.
:meth:`KeyRing.export` and :meth:`KeyRing.restore` carry the private keys across a restart, so a
fake served by a long-lived demo keeps verifying the tokens it issued before.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

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
        self.retired: list[AsymmetricKey] = []
        """Keys replaced by :meth:`rotate`, no longer published (tokens they signed still exist)."""
        self._spares: tuple[dict[str, list[AsymmetricKey]], list[AsymmetricKey]] | None = None
        self._tag = ""
        self._generate()

    def rotate(self) -> None:
        """Replace every key, and so every ``kid`` (checklist row 40)."""
        self.generation += 1
        self.retired.extend(self.active.values())
        self._generate()

    def _generate(self) -> None:
        self._tag = f"g{self.generation}-{secrets.token_hex(3)}"
        self.active = {
            alg: generate_key(alg, f"{alg.lower()}-{self._tag}") for alg in SIGNING_ALGORITHMS
        }
        self._spares = None  # RSA generation is slow: spares wait until a no-kid layout is used

    def _spare_keys(self) -> tuple[dict[str, list[AsymmetricKey]], list[AsymmetricKey]]:
        """A secp256k1 key and two spares per key type for the no-kid layouts, and the two
        encryption keys of the single layout; made on first use, replaced on rotation."""
        if self._spares is None:
            extras = {
                "RSA": [generate_key("RS256") for _ in range(2)],
                "EC": [generate_key("ES256") for _ in range(2)],
                "K1": [generate_key("ES256K") for _ in range(3)],
                "OKP": [generate_key("EdDSA") for _ in range(2)],
            }
            enc = [
                generate_key("RS256", f"enc-rsa-{self._tag}"),
                generate_key("ES256", f"enc-ec-{self._tag}"),
            ]
            self._spares = (extras, enc)
        return self._spares

    def export(self) -> dict[str, Any]:
        """The private keys as JSON-ready data (private JWKs): the active key of each
        algorithm, the retired keys and the rotation count, for :meth:`restore`.

        The result holds private keys: keep it where the fake's users cannot read it (a demo's
        own Redis or state file), never in a log.
        """
        return {
            "generation": self.generation,
            "active": {alg: dict(key.as_dict(private=True)) for alg, key in self.active.items()},
            "retired": [dict(key.as_dict(private=True)) for key in self.retired],
        }

    def restore(self, saved: Mapping[str, Any]) -> None:
        """Sign with the keys of an earlier :meth:`export` again, ``kid`` values included, so
        tokens issued before a restart still verify and the published JWKS is the same.

        Raises:
            ValueError: ``saved`` is not an export of a ring with the same algorithms, or a key
                in it is not a private key.
        """
        try:
            active = {str(alg): _private_key(jwk) for alg, jwk in saved["active"].items()}
            retired = [_private_key(jwk) for jwk in saved.get("retired", [])]
            generation = int(saved.get("generation", 0))
        except (KeyError, TypeError, AttributeError, ValueError, JoseError) as exc:
            msg = f"not a KeyRing export: {type(exc).__name__}"
            raise ValueError(msg) from exc
        if set(active) != set(self.active) or any(key.kid is None for key in active.values()):
            msg = f"the saved keys sign {sorted(active)}, this ring signs {sorted(self.active)}"
            raise ValueError(msg)
        self.generation, self.active, self.retired = generation, active, retired
        self._tag = f"g{generation}-{secrets.token_hex(3)}"
        self._spares = None

    def find(self, kid: Any, alg: str) -> AsymmetricKey | None:
        """The active or retired key with ``kid``; without a ``kid``, the active key for ``alg``."""
        if kid is None:
            return self.active.get(alg)
        return next((k for k in [*self.active.values(), *self.retired] if k.kid == kid), None)

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
                ``{"RS256": {"use": "enc"}}`` (checklist row 43). Giving ``key_ops`` drops the
                default ``use: sig``, since RFC 7517 §4.3 advises against publishing both.
            extra_keys: raw JWKs appended as they are, e.g. a key of an unknown ``kty``.
        """
        if layout is JWKSLayout.STANDARD:
            keys = [
                public_jwk(key, **_published_params(alg, (key_params or {}).get(alg, {})))
                for alg, key in self.active.items()
            ]
        else:
            keys = self._no_kid_keys(layout)
        return {"keys": keys + list(extra_keys or [])}

    def _no_kid_keys(self, layout: JWKSLayout) -> list[dict[str, Any]]:
        per_type = 1 if layout is JWKSLayout.SINGLE_NO_KID else 3
        extras, enc_keys = self._spare_keys()
        groups = [
            [self.active["RS256"], *extras["RSA"]],
            [self.active["ES256"], *extras["EC"]],
            extras["K1"],
            [self.active["EdDSA"], *extras["OKP"]],
        ]
        keys = [
            public_jwk(key, kid=None, use="sig") for group in groups for key in group[:per_type]
        ]
        if layout is JWKSLayout.SINGLE_NO_KID:
            keys += [public_jwk(key, use="enc") for key in enc_keys]
        return keys


def _private_key(jwk: Any) -> AsymmetricKey:
    if dict(jwk).get("kty") not in ("RSA", "EC", "OKP"):
        msg = "an exported key must be a private RSA, EC or OKP key"
        raise ValueError(msg)
    key = JWKRegistry.import_key(dict(jwk))
    if not isinstance(key, RSAKey | ECKey | OKPKey) or not key.is_private:
        msg = "an exported key must be a private RSA, EC or OKP key"
        raise ValueError(msg)
    return key


def _published_params(alg: str, params: dict[str, Any]) -> dict[str, Any]:
    defaults: dict[str, Any] = {"alg": alg} if "key_ops" in params else {"use": "sig", "alg": alg}
    return defaults | params
