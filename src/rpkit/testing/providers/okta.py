"""A fake Okta org: the fake OP with Okta's URLs and token shapes, for either kind of
authorization server.

What it reproduces: the issuer of a custom authorization server (``{origin}/oauth2/{id}``) or of
the org one (``{origin}``); endpoints at Okta's paths (``/v1/authorize``, ``/v1/token``,
``/v1/userinfo``, ``/v1/keys``, ``/v1/logout``); a discovery document without back-channel logout
or RFC 9207 members; a refresh token only when ``offline_access`` was granted; ID tokens with
``ver``, ``jti``, ``amr``, ``idp`` and, when the user has ``groups``, a groups claim; access
tokens in Okta's shape (``ver``, ``cid``, ``uid``, an ``scp`` array, ``sub`` the user's login,
``aud`` the server's audience, no ``typ`` header). The access-token shape is taken from public
examples, not from Okta's reference (see the preset's INFO).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from rpkit.config import ProviderConfig
from rpkit.providers.okta import okta
from rpkit.testing.knobs import Endpoint
from rpkit.testing.op import FakeOP
from rpkit.testing.personality import Personality
from rpkit.testing.providers._common import client_of, preset_arguments
from rpkit.testing.registry import FakeClient, FakeUser

__all__ = ["DEFAULT_OKTA_ORIGIN", "FakeOkta"]

DEFAULT_OKTA_ORIGIN = "https://rpkit.okta.com"
_PATHS: dict[Endpoint, str] = {
    "authorize": "authorize",
    "token": "token",
    "userinfo": "userinfo",
    "jwks": "keys",
    "end_session": "logout",
}


class FakeOkta(FakeOP):
    """A fake Okta org (see the module docstring).

    Args:
        origin: the org's origin; ``http://127.0.0.1:<port>`` when served.
        authorization_server: ``default``, another custom server id, or None for the org
            authorization server.
        audience: ``aud`` of a custom server's access tokens (a client's
            ``access_token_audience`` wins).
        **options: :class:`~rpkit.testing.FakeOP` options.
    """

    def __init__(
        self,
        origin: str = DEFAULT_OKTA_ORIGIN,
        *,
        authorization_server: str | None = "default",
        audience: str = "api://default",
        **options: Any,
    ) -> None:
        prefix = f"/oauth2/{authorization_server}" if authorization_server else ""
        options.setdefault("clients", [FakeClient(client_id="0oarpkit0test0client")])
        options.setdefault(
            "personality",
            Personality(
                metadata=_metadata,
                id_token_claims=_id_token_claims,
                access_token_claims=self._access_token_claims,
                access_token_typ=None,
                token_response=_token_response,
            ),
        )
        super().__init__(origin.rstrip("/") + prefix, **options)
        self.authorization_server = authorization_server
        self.audience = audience if authorization_server else self.issuer
        self.authorization_response_iss = False
        base = f"{prefix or '/oauth2'}/v1/"
        self.serve_at({endpoint: base + name for endpoint, name in _PATHS.items()})

    def provider_config(
        self, id: str = "okta", *, client_id: str | None = None, **changes: Any
    ) -> ProviderConfig:
        """The ``okta`` preset aimed at this fake and one of its clients (the first by
        default); an ``http`` (served) fake also gets its issuer and ``allow_insecure_http``."""
        client = client_of(self, client_id)
        served = {"issuer": self.issuer} if self.issuer.startswith("http://") else {}
        return okta(
            urlsplit(self.origin).netloc,
            client.client_id,
            client.client_secret,
            authorization_server=self.authorization_server,
            **preset_arguments(self, changes, id=id, **served),
        )

    def _access_token_claims(
        self, claims: dict[str, Any], user: FakeUser | None, client: FakeClient
    ) -> dict[str, Any]:
        shaped = {
            "ver": 1,
            "jti": "AT." + str(claims["jti"]),
            "iss": claims["iss"],
            "aud": client.access_token_audience or self.audience,
            "iat": claims["iat"],
            "exp": claims["exp"],
            "cid": client.client_id,
            "scp": str(claims["scope"]).split(),
            "sub": client.client_id,
        }
        if user is not None:
            login = user.claims.get("preferred_username") or user.claims.get("email") or user.sub
            shaped |= {"uid": user.sub, "sub": login}
            if "groups" in user.claims:
                shaped["groups"] = user.claims["groups"]
        return shaped


def _metadata(document: dict[str, Any]) -> dict[str, Any]:
    for member in (
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
        "frontchannel_logout_supported",
    ):
        document.pop(member, None)
    document["id_token_signing_alg_values_supported"] = ["RS256"]
    document["response_modes_supported"] = ["query", "fragment", "form_post", "okta_post_message"]
    document["scopes_supported"] = [
        *("openid", "profile", "email", "address", "phone", "offline_access", "groups"),
    ]
    return document


def _id_token_claims(
    claims: dict[str, Any], user: FakeUser | None, client: FakeClient
) -> dict[str, Any]:
    shaped = {"ver": 1, "jti": "ID." + secrets.token_urlsafe(12), "amr": ["pwd"], **claims}
    shaped["idp"] = "00orpkitfakeorg"
    if user is not None and "groups" in user.claims:
        shaped["groups"] = user.claims["groups"]
    return shaped


def _token_response(body: dict[str, Any], _: FakeClient) -> dict[str, Any]:
    if "offline_access" not in str(body.get("scope", "")).split():
        body.pop("refresh_token", None)
    return body
