"""A fake Microsoft Entra ID (v2.0 endpoints) for the :mod:`rpkit.providers.entra` preset.

It is :class:`~rpkit.testing.FakeOP` as a multi-tenant issuer, answering at Entra's URLs:

- discovery at ``{instance}/{tenant}/v2.0/.well-known/openid-configuration``: ``common`` and
  ``organizations`` publish the issuer template ``{instance}/{tenantid}/v2.0``, a tenant GUID (or
  ``consumers``) its own issuer, in the shape of Entra's document (``pairwise`` subjects, no
  PKCE methods, no RFC 9207 ``iss``, front-channel logout only, UserInfo on Microsoft Graph);
- ``{instance}/{tenant}/oauth2/v2.0/authorize``, ``/token``, ``/logout`` and
  ``{instance}/{tenant}/discovery/v2.0/keys`` for any tenant segment, and UserInfo at
  ``https://graph.microsoft.com/oidc/userinfo`` (a second origin in-process; the same origin
  when served);
- ID tokens with ``tid``, ``oid``, ``ver: 2.0`` and no ``email_verified``; v2.0 access tokens
  with ``typ: JWT``, ``scp`` (or ``roles``), ``azp`` and no ``client_id``; rotating refresh tokens;
- a logout page that frames each registered ``frontchannel_logout_uri`` with ``sid`` only, no
  ``iss``, as Entra calls the "Front-channel logout URL"
  (https://github.com/nginxinc/nginx-openid-connect/issues/117).

Not reproduced: consent, guest users, groups (and their overage), and tenant checks at the
authorization endpoint (any tenant segment signs in the chosen user). The knobs still apply.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlsplit

import httpx

from rpkit.config import GUID_PATTERN, ProviderConfig
from rpkit.providers.entra import CONSUMERS_TENANT, GRAPH, MICROSOFT_LOGIN, MULTI_TENANT, entra
from rpkit.testing.knobs import Endpoint
from rpkit.testing.op import FakeOP
from rpkit.testing.personality import Personality
from rpkit.testing.providers._common import client_of, preset_arguments
from rpkit.testing.registry import FakeClient, FakeUser
from rpkit.testing.transport import FakeOPTransport

__all__ = ["FakeEntra"]

_PATH = re.compile(
    r"/(?P<tenant>[^/]+)/(?P<what>oauth2/v2\.0/(?:authorize|token|logout)"
    r"|discovery/v2\.0/keys|v2\.0/\.well-known/openid-configuration)"
)
_ENDPOINT: dict[str, Endpoint] = {
    "oauth2/v2.0/authorize": "authorize",
    "oauth2/v2.0/token": "token",
    "oauth2/v2.0/logout": "end_session",
    "discovery/v2.0/keys": "jwks",
    "v2.0/.well-known/openid-configuration": "discovery",
}
_GUID = re.compile(GUID_PATTERN)
_ID_TOKEN_CLAIMS = frozenset(
    {"aud", "iss", "iat", "nbf", "exp", "auth_time", "nonce", "at_hash", "sid", "sub", "tid"}
    | {"oid", "name", "preferred_username", "email"}
)
_GRAPH_USERINFO = frozenset({"sub", "name", "family_name", "given_name", "picture", "email"})


class _AlsoAt:
    """Another origin of the same fake (Microsoft Graph's, for UserInfo)."""

    def __init__(self, origin: str, fake: FakeEntra) -> None:
        self.origin = origin
        self.fake = fake

    async def handle(self, request: httpx.Request) -> httpx.Response:
        return await self.fake.handle(request)


class FakeEntra(FakeOP):
    """Entra ID's shapes over a multi-tenant :class:`~rpkit.testing.FakeOP`.

    Args:
        instance: the login host (``https://login.microsoftonline.com``, or the base URL
            ``serve_fake`` gives).
        graph: Microsoft Graph's origin, where UserInfo is; the instance itself when the
            instance is not Microsoft's (served on 127.0.0.1).
        **options: :class:`~rpkit.testing.FakeOP` options (users, clients, lifetimes...).
    """

    def __init__(
        self, instance: str = MICROSOFT_LOGIN, *, graph: str | None = None, **options: Any
    ) -> None:
        options.setdefault("personality", self._personality())
        super().__init__(instance.rstrip("/"), multi_tenant=True, **options)
        default_graph = GRAPH if self.issuer == MICROSOFT_LOGIN else self.origin
        self.graph = (graph or default_graph).rstrip("/")
        self._internal = dict(self.endpoints)
        base = f"{self.issuer}/common"
        self.endpoints.update(
            {
                "authorize": f"{base}/oauth2/v2.0/authorize",
                "token": f"{base}/oauth2/v2.0/token",
                "end_session": f"{base}/oauth2/v2.0/logout",
                "jwks": f"{base}/discovery/v2.0/keys",
                "userinfo": f"{self.graph}/oidc/userinfo",
            }
        )

    def provider_config(
        self, id: str = "entra", *, client_id: str | None = None, **changes: Any
    ) -> ProviderConfig:
        """The :func:`~rpkit.providers.entra.entra` preset aimed at this fake, for one of its
        clients (the first by default). Unless ``changes`` name the tenants, it is
        ``organizations`` with every tenant of the fake's users allowed; ``changes`` take any
        argument of the preset (``tenant``, ``allowed_tenants``...) or configuration field."""
        client = client_of(self, client_id)
        keyless = client.token_endpoint_auth_method in ("none", "private_key_jwt")
        settings: dict[str, Any] = {
            "id": id,
            "tenant": "organizations",
            "client_id": client.client_id,
            "client_secret": None if keyless else client.client_secret,
            "client_auth": client.token_endpoint_auth_method,
            "instance": self.issuer,
            "graph": self.graph,
        }
        if not {"tenant", "allowed_tenants", "any_tenant"} & changes.keys():
            tenants = {user.tenant_id for user in self.users.values() if user.tenant_id}
            settings["allowed_tenants"] = sorted(tenants)
        return entra(**preset_arguments(self, changes, **settings))

    def transport(self, *others: FakeOP) -> FakeOPTransport:
        """An httpx transport to this fake, Microsoft Graph's origin included, and ``others``."""
        transport = super().transport(*others)
        if self.graph != self.origin:
            transport.add(_AlsoAt(self.graph, self))
        return transport

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer at Entra's URLs: each is moved onto the fake OP's own endpoint."""
        path = request.url.path
        match = _PATH.fullmatch(path)
        endpoint: Endpoint
        tenant: str | None
        if path == "/oidc/userinfo":
            endpoint, tenant = "userinfo", None
        elif match is not None:
            endpoint, tenant = _ENDPOINT[match["what"]], match["tenant"]
        else:
            return await super().handle(request)
        if endpoint == "discovery" and not (
            tenant in (*MULTI_TENANT, "consumers") or _GUID.fullmatch(tenant or "")
        ):
            return await super().handle(request)  # a domain name: not reproduced, 404
        target = self._internal[endpoint] + (
            f"?{request.url.query.decode()}" if request.url.query else ""
        )
        moved = httpx.Request(
            request.method, target, headers=request.headers, content=await request.aread()
        )
        response = await super().handle(moved)
        _record_as_sent(self, moved, request)
        if endpoint == "discovery" and tenant is not None and response.status_code == 200:
            return self._tenant_document(response, tenant)
        return response

    def _tenant_document(self, response: httpx.Response, tenant: str) -> httpx.Response:
        """``common``'s document as another tenant's: its endpoints, and for one tenant its
        own issuer."""
        document = response.json()
        if tenant not in MULTI_TENANT and document.get("issuer") == self.issuer_template:
            own = CONSUMERS_TENANT if tenant == "consumers" else tenant
            document["issuer"] = f"{self.issuer}/{own}/v2.0"
        for name, value in document.items():
            if isinstance(value, str) and name != "issuer":
                document[name] = value.replace(f"{self.issuer}/common/", f"{self.issuer}/{tenant}/")
        return httpx.Response(
            200, json=document, headers={"Cache-Control": response.headers.get("cache-control", "")}
        )

    # -- Entra's shapes ---------------------------------------------------------------------------
    def _personality(self) -> Personality:
        return Personality(
            metadata=self._metadata,
            id_token_claims=_id_token_claims,
            access_token_claims=_access_token_claims,
            access_token_typ="JWT",
            userinfo_claims=lambda claims, _u, _c: {
                k: v for k, v in claims.items() if k in _GRAPH_USERINFO
            },
            token_response=lambda body, _c: {**body, "ext_expires_in": body.get("expires_in")},
            frontchannel_logout_iss=False,
        )

    def _metadata(self, honest: dict[str, Any]) -> dict[str, Any]:
        """Entra's common document: its members, in its order."""
        base = f"{self.issuer}/common"
        return {
            "token_endpoint": honest["token_endpoint"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": honest["jwks_uri"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": honest["issuer"],
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": honest["userinfo_endpoint"],
            "authorization_endpoint": honest["authorization_endpoint"],
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": honest["end_session_endpoint"],
            "claims_supported": [
                *("sub", "iss", "cloud_instance_name", "cloud_instance_host_name"),
                *("cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time"),
                *("acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash"),
                *("c_hash", "email"),
            ],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": None,
            "cloud_instance_name": urlsplit(self.issuer).hostname,
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": urlsplit(self.graph).netloc,
            "rbac_url": "https://pas.windows.net",
        }


def _record_as_sent(fake: FakeOP, moved: httpx.Request, sent: httpx.Request) -> None:
    """Show the URL the client used in the oracle, not the endpoint it was moved onto."""
    for record in reversed(list(fake.oracle)):
        if record.url == str(moved.url):
            record.url = str(sent.url)
            return


def _opaque() -> str:
    return secrets.token_urlsafe(24)


def _id_token_claims(claims: dict[str, Any], _: FakeUser | None, __: FakeClient) -> dict[str, Any]:
    """v2.0 ID token: Entra's claims only (no ``email_verified``, no ``given_name``...)."""
    kept = {name: value for name, value in claims.items() if name in _ID_TOKEN_CLAIMS}
    return kept | {
        "nbf": claims["iat"],
        "ver": "2.0",
        "aio": _opaque(),
        "rh": _opaque(),
        "uti": _opaque(),
    }


def _access_token_claims(
    claims: dict[str, Any], user: FakeUser | None, client: FakeClient
) -> dict[str, Any]:
    """v2.0 access token: ``scp`` for a user (``roles`` for an app), ``azp``, no ``client_id``."""
    shaped = {k: v for k, v in claims.items() if k not in ("client_id", "scope", "jti")}
    granted = str(claims.get("scope") or "")
    rights = {"scp": granted} if user is not None else {"roles": granted.split(), "idtyp": "app"}
    return (
        shaped
        | rights
        | {
            "azp": client.client_id,
            "azpacr": "1",
            "ver": "2.0",
            "nbf": claims["iat"],
            "uti": _opaque(),
        }
    )
