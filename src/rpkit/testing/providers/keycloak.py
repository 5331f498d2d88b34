"""A fake Keycloak realm: the fake OP with Keycloak's realm issuer, URLs and token shapes.

What it reproduces: the realm issuer ``{base_url}/realms/{realm}``; endpoints at
``/protocol/openid-connect/{auth,token,userinfo,certs,logout}``; a discovery document with
back-channel and front-channel logout and RFC 9207; ID tokens with the payload ``typ: ID``,
``azp``, ``acr`` and ``session_state``; access tokens with ``typ: Bearer``, ``azp``, ``scope``,
``realm_access`` and ``resource_access`` roles (the user's ``realm_access``/``resource_access``
claims, else the realm's defaults), ``aud`` ``["account"]`` plus a client's
``access_token_audience`` (an Audience mapper), no ``client_id`` and header ``typ: JWT``;
refresh tokens without ``offline_access`` and token responses with ``refresh_expires_in`` and
``not-before-policy``; logout tokens with ``typ: Logout``. Not reproduced: refresh tokens are
opaque here (Keycloak's are HS512 JWTs the client never reads).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from rpkit.config import ProviderConfig
from rpkit.providers.keycloak import keycloak
from rpkit.testing._jose import decode_unverified
from rpkit.testing._logout import LogoutDefect
from rpkit.testing.knobs import Endpoint
from rpkit.testing.op import FakeOP
from rpkit.testing.personality import Personality
from rpkit.testing.providers._common import client_of, preset_arguments
from rpkit.testing.registry import FakeClient, FakeUser

__all__ = ["DEFAULT_KEYCLOAK_URL", "FakeKeycloak"]

DEFAULT_KEYCLOAK_URL = "https://keycloak.rpkit.test"
_PATHS: dict[Endpoint, str] = {
    "authorize": "auth",
    "token": "token",
    "userinfo": "userinfo",
    "jwks": "certs",
    "end_session": "logout",
}
_ACCOUNT_ROLES = ["manage-account", "manage-account-links", "view-profile"]


class FakeKeycloak(FakeOP):
    """A fake Keycloak realm (see the module docstring).

    Args:
        base_url: the server's URL; ``http://127.0.0.1:<port>`` when served.
        realm: the realm's name.
        **options: :class:`~rpkit.testing.FakeOP` options.
    """

    def __init__(
        self, base_url: str = DEFAULT_KEYCLOAK_URL, *, realm: str = "rpkit", **options: Any
    ) -> None:
        options.setdefault("clients", [FakeClient(client_id="rpkit-web")])
        options.setdefault(
            "personality",
            Personality(
                metadata=_metadata,
                id_token_claims=_id_token_claims,
                access_token_claims=self._access_token_claims,
                access_token_typ="JWT",
                token_response=_token_response,
            ),
        )
        super().__init__(f"{base_url.rstrip('/')}/realms/{realm}", **options)
        self.base_url = base_url.rstrip("/")
        self.realm = realm
        base = urlsplit(self.issuer).path + "/protocol/openid-connect/"
        self.serve_at({endpoint: base + name for endpoint, name in _PATHS.items()})

    def provider_config(
        self, id: str = "keycloak", *, client_id: str | None = None, **changes: Any
    ) -> ProviderConfig:
        """The ``keycloak`` preset aimed at this fake and one of its clients (the first by
        default); an ``http`` (served) fake also gets ``allow_insecure_http``."""
        client = client_of(self, client_id)
        return keycloak(
            self.base_url,
            self.realm,
            client.client_id,
            client.client_secret,
            **preset_arguments(self, changes, id=id),
        )

    def logout_token(
        self,
        client_id: str | None = None,
        *,
        sub: str | None = None,
        sid: str | None = None,
        defect: LogoutDefect | None = None,
    ) -> str:
        """A logout token as Keycloak sends it (``typ: Logout`` in the payload); a defective one
        exactly as :meth:`FakeOP.logout_token` makes it."""
        token = super().logout_token(client_id, sub=sub, sid=sid, defect=defect)
        if defect is not None:
            return token
        client = self.clients[client_id or next(iter(self.clients))]
        _, claims = decode_unverified(token)
        return self.minter.sign(
            {**claims, "typ": "Logout"},
            alg=client.id_token_signed_response_alg,
            secret=client.client_secret,
            typ="logout+jwt",
        )

    def _access_token_claims(
        self, claims: dict[str, Any], user: FakeUser | None, client: FakeClient
    ) -> dict[str, Any]:
        granted = user.claims if user is not None else {}
        realm_roles = granted.get("realm_access", {}).get("roles")
        resources = {"account": {"roles": _ACCOUNT_ROLES}, **granted.get("resource_access", {})}
        audience = [name for name in (client.access_token_audience, "account") if name]
        shaped = {
            "exp": claims["exp"],
            "iat": claims["iat"],
            "jti": str(uuid.uuid4()),
            "iss": claims["iss"],
            "aud": audience if len(audience) > 1 else audience[0],
            "sub": claims["sub"],
            "typ": "Bearer",
            "azp": client.client_id,
            "acr": "1",
            "realm_access": {
                "roles": realm_roles or [f"default-roles-{self.realm}", "offline_access"],
            },
            "resource_access": resources,
            "scope": claims["scope"],
        }
        if user is not None:
            shaped |= {k: v for k, v in user.released(claims["scope"]).items() if k != "sub"}
        return shaped


def _metadata(document: dict[str, Any]) -> dict[str, Any]:
    document["frontchannel_logout_supported"] = True
    document["frontchannel_logout_session_supported"] = True
    document["claims_parameter_supported"] = True
    document["code_challenge_methods_supported"] = ["plain", "S256"]
    document["id_token_signing_alg_values_supported"] = [
        *("PS384", "ES384", "RS384", "HS256", "HS512", "ES256", "RS256", "HS384", "ES512"),
        *("PS256", "PS512", "RS512", "EdDSA"),
    ]
    return document


def _id_token_claims(
    claims: dict[str, Any], user: FakeUser | None, client: FakeClient
) -> dict[str, Any]:
    extra = {"jti": str(uuid.uuid4()), "typ": "ID", "azp": client.client_id, "acr": "1"}
    if "sid" in claims:
        extra["session_state"] = claims["sid"]
    return claims | extra


def _token_response(body: dict[str, Any], _: FakeClient) -> dict[str, Any]:
    body["refresh_expires_in"] = 1800 if "refresh_token" in body else 0
    body["not-before-policy"] = 0
    return body
