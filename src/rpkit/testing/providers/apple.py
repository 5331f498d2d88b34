"""A fake of Sign in with Apple, for testing applications that use
:func:`rpkit.providers.apple.apple`.

:class:`FakeApple` is the fake OP with Apple's personality:

- Apple's discovery document: its members only (``revocation_endpoint``, ``pairwise``
  subjects, scopes ``openid email name``, ``client_secret_post``), no UserInfo and no
  ``end_session_endpoint``, and Apple's paths (``/auth/authorize``, ``/auth/token``,
  ``/auth/keys``); no RFC 9207 ``iss`` in the callback.
- The client secret is verified as Apple does: an ES256 JWT signed by the client's registered
  key (``kid``), ``iss`` the team id, ``sub`` the client id, ``aud`` Apple, not expired, and
  ``exp`` at most six months after ``iat``. :attr:`FakeApple.last_secret_problem` says why the
  last one was refused.
- ID tokens carry ``email_verified`` and ``is_private_email`` as the strings ``"true"`` /
  ``"false"``, ``nonce_supported``, and no name; subjects look like Apple's.
- The first authorization of each user at each client posts the ``user`` form field (name and
  email as JSON); later ones do not.
- Token responses have no ``scope``; the refresh token is reused, not rotated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from rpkit.config import ProviderConfig
from rpkit.providers.apple import (
    APPLE_ISSUER,
    CLIENT_SECRET_AUDIENCE,
    MAX_SECRET_LIFETIME,
    apple,
)
from rpkit.testing._jose import decode_unverified, verify_compact
from rpkit.testing.keys import generate_key, public_jwk
from rpkit.testing.knobs import Endpoint
from rpkit.testing.op import FakeOP
from rpkit.testing.personality import Personality
from rpkit.testing.providers._common import client_of, preset_arguments
from rpkit.testing.registry import DEFAULT_REDIRECT_URI, FakeClient, FakeUser, default_users

__all__ = ["APPLE_CLIENT_ID", "APPLE_KEY_ID", "APPLE_TEAM_ID", "FakeApple", "apple_users"]

APPLE_TEAM_ID = "FAKETEAM01"
APPLE_KEY_ID = "FAKEKEY001"
APPLE_CLIENT_ID = "test.rpkit.web"
"""The Services ID of the fake's default client."""
CLOCK_SKEW = 60
"""Seconds a client secret's ``iat`` may lie in the future."""
_PATHS: dict[Endpoint, str | None] = {
    "authorize": "/auth/authorize",
    "token": "/auth/token",
    "jwks": "/auth/keys",
    "userinfo": None,
    "end_session": None,
}
_CLAIMS_SUPPORTED = [
    "aud", "email", "email_verified", "exp", "iat", "is_private_email", "iss", "nonce",
    "nonce_supported", "real_user_status", "sub", "transfer_sub",
]  # fmt: skip


def apple_users() -> list[FakeUser]:
    """Alice and Bob (:func:`~rpkit.testing.registry.default_users`) with subjects shaped like
    Apple's (``000001.<32 hex digits>.0001``), the same in every run."""
    users = []
    for n, user in enumerate(default_users(), 1):
        digest = hashlib.sha256(user.sub.encode()).hexdigest()[:32]
        users.append(FakeUser(f"{n:06d}.{digest}.{n:04d}", dict(user.claims), user.tenant_id))
    return users


class FakeApple(FakeOP):
    """Sign in with Apple, in-process or served.

    Args:
        issuer: Apple's issuer by default, so the preset's own URLs reach the fake through
            :meth:`transport`; ``http://127.0.0.1:<port>`` when served.
        team_id: the developer team whose key signs client secrets.
        client_id: the default client's Services ID.
        redirect_uris: the default client's registered return URLs.
        **options: :class:`~rpkit.testing.FakeOP` options (``users`` defaults to
            :func:`apple_users`).
    """

    def __init__(
        self,
        issuer: str = APPLE_ISSUER,
        *,
        team_id: str = APPLE_TEAM_ID,
        client_id: str = APPLE_CLIENT_ID,
        redirect_uris: Sequence[str] = (DEFAULT_REDIRECT_URI,),
        **options: Any,
    ) -> None:
        self.team_id = team_id
        self.client_key = generate_key("ES256", APPLE_KEY_ID)
        """The team's Sign in with Apple key; Apple keeps only its public half."""
        self.last_secret_problem: str | None = None
        """Why the last client secret was refused, or None."""
        client = FakeClient(
            client_id=client_id,
            client_secret=None,
            redirect_uris=tuple(redirect_uris),
            token_endpoint_auth_method="client_secret_post",
            jwks={"keys": [public_jwk(self.client_key)]},
        )
        personality = Personality(
            metadata=_metadata,
            id_token_claims=_id_token_claims,
            token_response=_token_response,
            client_secret_verifier=self._accepts_secret,
        )
        options.setdefault("clients", [client])
        options.setdefault("users", apple_users())
        super().__init__(issuer, first_login_user_field=True, personality=personality, **options)
        self.authorization_response_iss = False
        self.misbehave.refresh_rotation = False
        if not options.get("random_paths"):
            self.serve_at(_PATHS)

    @property
    def private_key(self) -> str:
        """The PEM text of the team's key: the ``.p8`` file a developer downloads."""
        return self.client_key.as_pem(private=True).decode()

    def provider_config(
        self, id: str = "apple", *, client_id: str | None = None, **changes: Any
    ) -> ProviderConfig:
        """The :func:`~rpkit.providers.apple.apple` preset aimed at this fake and one of its
        clients; ``allow_insecure_http`` is set for a served (``http://127.0.0.1``) fake."""
        client = client_of(self, client_id)
        return apple(
            client_id=client.client_id,
            team_id=self.team_id,
            key_id=APPLE_KEY_ID,
            private_key=self.private_key,
            **preset_arguments(self, changes, id=id, issuer=self.issuer),
        )

    def reset(self) -> None:
        """Honest again (Apple's refresh tokens stay unrotated), and the oracle cleared."""
        super().reset()
        self.misbehave.refresh_rotation = False

    def _accepts_secret(self, client: FakeClient, secret: str) -> bool:
        self.last_secret_problem = self._secret_problem(client, secret)
        return self.last_secret_problem is None

    def _secret_problem(self, client: FakeClient, secret: str) -> str | None:
        try:
            header, _ = decode_unverified(secret)
            jwk = next(k for k in (client.jwks or {}).get("keys", []) if k["kid"] == header["kid"])
            claims = verify_compact(secret, ECKey.import_key(jwk), "ES256")
        except (ValueError, KeyError, TypeError, StopIteration, JoseError):
            return "not an ES256 JWT with a registered kid"
        if claims is None:
            return "signature"
        iat, exp, now = claims.get("iat"), claims.get("exp"), self.now()
        if not isinstance(iat, int) or not isinstance(exp, int) or iat > now + CLOCK_SKEW:
            return "iat/exp"
        if exp <= now or exp - iat > MAX_SECRET_LIFETIME:
            return "expired, or valid for more than six months"
        expected = {"iss": self.team_id, "sub": client.client_id, "aud": CLIENT_SECRET_AUDIENCE}
        wrong = sorted(name for name, value in expected.items() if claims.get(name) != value)
        return f"wrong {wrong}" if wrong else None


def _metadata(honest: dict[str, Any]) -> dict[str, Any]:
    token = honest["token_endpoint"]
    return {
        "issuer": honest["issuer"],
        "authorization_endpoint": honest["authorization_endpoint"],
        "token_endpoint": token,
        "revocation_endpoint": token.rsplit("/", 1)[0] + "/revoke",  # not served by the fake
        "jwks_uri": honest["jwks_uri"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "name"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "claims_supported": list(_CLAIMS_SUPPORTED),
    }


def _id_token_claims(claims: dict[str, Any], _: FakeUser | None, __: FakeClient) -> dict[str, Any]:
    shaped = {name: value for name, value in claims.items() if name != "sid"}
    if "email_verified" in shaped:
        shaped["email_verified"] = "true" if shaped["email_verified"] is True else "false"
    email = shaped.get("email")
    if isinstance(email, str):
        private = email.endswith("@privaterelay.appleid.com")
        shaped["is_private_email"] = "true" if private else "false"
    return shaped | {"nonce_supported": True}


def _token_response(body: dict[str, Any], _: FakeClient) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name != "scope"}
