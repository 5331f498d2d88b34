"""The demo's identity providers: rpkit's fake OP and the fake Scalekit served on 127.0.0.1, or
real ones named by environment variables. The fake OP lets the person choose who signs in
(``choose_user``: alice or bob) unless the app sends a ``login_hint``.

Each provider yields the :class:`~rpkit.config.ProviderConfig` the app signs in with, the
:class:`~rpkit.access_token.AccessTokenPolicy` its API accepts, and (for the fakes) the ASGI
server to run and the lines ``run.py`` prints.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any

import httpx

from rpkit.access_token import AccessTokenPolicy
from rpkit.config import ProviderConfig, is_loopback_http
from rpkit.testing import FakeClient, FakeOP, FakeUser
from rpkit_scalekit import scalekit
from rpkit_scalekit.testing import Connection, FakeApplication, FakeOrganization, FakeScalekit

__all__ = ["SSO_DOMAIN", "IdentityProvider", "generic_provider", "scalekit_provider"]

SSO_DOMAIN = "sso.example"
"""The fake Scalekit routes this email domain to an enterprise SSO connection; every other
domain goes to passwordless."""
DEMO_CLIENT_ID = "rpkit-demo"
DEMO_API_AUDIENCE = "https://api.rpkit-demo.test"
SCALEKIT_CLIENT_ID = "skc_000000000000000001"
SCALEKIT_CLIENT_SECRET = "demo-scalekit-secret"  # noqa: S105 - the fake's, never a real one
ORGANIZATION = "org_300000000000000001"
"""The fake Scalekit's organization behind the ``@sso.example`` connection."""


@dataclass
class IdentityProvider:
    """One provider as the demo uses it."""

    config: ProviderConfig
    title: str
    api_policy: AccessTokenPolicy | None
    """What the demo's ``/api/me`` accepts from this provider; None: its tokens are not for it."""
    asgi: Any | None = None
    """The fake's ASGI app to serve, None for a real provider."""
    sock: socket.socket | None = None
    banner: dict[str, str] = field(default_factory=dict)
    """``label: url`` lines ``run.py`` prints."""
    fake: Any | None = None


def _logout_return(app_url: str) -> str:
    return f"{app_url}/auth/logout/callback"


def generic_provider(app_url: str, sock: socket.socket) -> IdentityProvider:
    """``RPKIT_DEMO_ISSUER`` (with client id and secret) or rpkit's fake OP on ``sock``."""
    issuer = os.environ.get("RPKIT_DEMO_ISSUER")
    if issuer:
        sock.close()
        return _real_generic(app_url, issuer)
    issuer = f"http://127.0.0.1:{sock.getsockname()[1]}"
    users = [
        FakeUser("alice", _person("Alice", "Liddell", "alice@wonderland.test")),
        FakeUser("bob", _person("Bob", "Builder", "bob@builders.test")),
    ]
    client = FakeClient(
        client_id=DEMO_CLIENT_ID,
        redirect_uris=(f"{app_url}/auth/callback/fake",),
        post_logout_redirect_uris=(_logout_return(app_url),),
        access_token_audience=DEMO_API_AUDIENCE,
    )
    op = FakeOP(issuer, clients=[client], users=users, choose_user=True)
    config = op.provider_config(
        "fake", post_logout_redirect_uri=_logout_return(app_url), allow_insecure_http=True
    )
    policy = AccessTokenPolicy(
        issuers=(issuer,), jwks_uri=op.endpoints["jwks"], audience=(DEMO_API_AUDIENCE,)
    )
    banner = {
        "fake OP": f"{issuer}/.well-known/openid-configuration",
        "OP JWKS": op.endpoints["jwks"],
    }
    return IdentityProvider(config, "the fake OP", policy, op.asgi, sock, banner, op)


def _real_generic(app_url: str, issuer: str) -> IdentityProvider:
    client_id = os.environ["RPKIT_DEMO_CLIENT_ID"]
    config = ProviderConfig(
        id="oidc",
        issuer=issuer,
        client_id=client_id,
        client_secret=os.environ.get("RPKIT_DEMO_CLIENT_SECRET"),
        post_logout_redirect_uri=_logout_return(app_url),
        allow_insecure_http=is_loopback_http(issuer),
    )
    discovery = httpx.get(f"{issuer.rstrip('/')}/.well-known/openid-configuration", timeout=10)
    discovery.raise_for_status()
    audience = os.environ.get("RPKIT_DEMO_API_AUDIENCE", client_id)
    policy = AccessTokenPolicy(
        issuers=(issuer,), jwks_uri=discovery.json()["jwks_uri"], audience=(audience,)
    )
    return IdentityProvider(config, issuer, policy, banner={"OIDC issuer": issuer})


def scalekit_provider(app_url: str, sock: socket.socket) -> IdentityProvider:
    """``SCALEKIT_ENV_URL`` (with client id and secret) or the fake Scalekit on ``sock``."""
    env_url = os.environ.get("SCALEKIT_ENV_URL")
    if env_url:
        sock.close()
        client_id = os.environ["SCALEKIT_CLIENT_ID"]
        config = _scalekit_config(app_url, env_url, client_id, os.environ["SCALEKIT_CLIENT_SECRET"])
        return IdentityProvider(
            config, "Scalekit", _scalekit_policy(config), banner={"Scalekit": env_url}
        )
    env_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    fake = FakeScalekit(
        env_url,
        apps=[
            FakeApplication(
                client_id=SCALEKIT_CLIENT_ID,
                client_secret=SCALEKIT_CLIENT_SECRET,
                redirect_uris=(f"{app_url}/auth/callback/scalekit",),
                post_logout_redirect_uris=(_logout_return(app_url),),
            )
        ],
        users=[
            FakeUser("usr_100000000000000001", _person("Alice", "Liddell", f"alice@{SSO_DOMAIN}")),
            FakeUser("usr_100000000000000002", _person("Bob", "Builder", "bob@example.org")),
        ],
        connections=_connections(),
        # Alice belongs to both: the profile's "Switch organization" moves her between them.
        organizations=[
            FakeOrganization(ORGANIZATION, "Example Corp", members={"usr_100000000000000001"}),
            FakeOrganization(
                "org_300000000000000002", "Example Labs", members={"usr_100000000000000001"}
            ),
        ],
    )
    fake.passwordless.method = "LINK_OTP"
    fake.passwordless.new_credentials_on_resend = True  # a resend voids the previous code
    config = _scalekit_config(app_url, env_url, SCALEKIT_CLIENT_ID, SCALEKIT_CLIENT_SECRET)
    banner = {"fake Scalekit": f"{env_url}/.well-known/openid-configuration"}
    return IdentityProvider(
        config, "Scalekit", _scalekit_policy(config), fake.asgi, sock, banner, fake
    )


def _scalekit_config(app_url: str, env_url: str, client_id: str, secret: str) -> ProviderConfig:
    return scalekit(
        env_url,
        client_id,
        secret,
        post_logout_redirect_uri=_logout_return(app_url),
        allow_insecure_http=is_loopback_http(env_url),
    )


def _scalekit_policy(config: ProviderConfig) -> AccessTokenPolicy:
    # Scalekit's access tokens name the client id as audience and are labelled ``JWT``.
    return AccessTokenPolicy(
        issuers=(config.issuer,), jwks_uri=f"{config.issuer}/keys", audience=(config.client_id,)
    )


def _connections() -> list[Connection]:
    return [
        Connection(
            "conn_200000000000000001",
            "OKTA",
            "OIDC",
            ORGANIZATION,
            "Example Corp",
            (SSO_DOMAIN,),
            ui_button_title="Example Corp SSO",
        ),
        Connection("conn_200000000000000004", "SCALEKIT", "PASSWORDLESS"),
    ]


def _person(given: str, family: str, email: str) -> dict[str, Any]:
    return {
        "name": f"{given} {family}",
        "given_name": given,
        "family_name": family,
        "email": email,
        "email_verified": True,
    }
