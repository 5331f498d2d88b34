"""rpkit's testing kit: a fake OpenID Provider with a knob for every misbehaviour.

It is product code: test your own application against it, in-process or on 127.0.0.1.

* :class:`FakeOP` — the provider (discovery, JWKS, authorize, token, UserInfo, end-session,
  back-channel logout), with :attr:`FakeOP.misbehave` (:class:`Misbehaviour`) and an
  :class:`Oracle` of every request it received. It can also be an OAuth 2.0-only provider
  (``kind="oauth2"``, GitHub-style, with :func:`github_profile`), a multi-tenant issuer
  (``multi_tenant=True``, Entra ID-style), send Apple's first-login ``user`` field, or omit the
  nonce (LinkedIn).
* :class:`FakeOPTransport` and :func:`mock_with_respx` — reach it from a normal
  :class:`httpx.AsyncClient` without sockets; :func:`serve` — run it as a real server.
* :class:`TokenMinter` — mint ID, access and logout tokens, honest or :class:`Tamper`-ed.
* A pytest plugin (loaded automatically) with the ``fake_op``, ``fake_op_http`` and
  ``fake_op_server`` fixtures.
"""

from __future__ import annotations

from rpkit.testing._asgi import asgi_app
from rpkit.testing._logout import LogoutDefect
from rpkit.testing._oauth2 import JSONSource, github_profile
from rpkit.testing.browser import AuthorizationResponse
from rpkit.testing.keys import SIGNING_ALGORITHMS, JWKSLayout, KeyRing, generate_key
from rpkit.testing.knobs import ABSENT, Bounce, Canned, Endpoint, Misbehaviour
from rpkit.testing.minter import BACKCHANNEL_LOGOUT_EVENT, Tamper, TokenMinter
from rpkit.testing.op import DEFAULT_ISSUER, FakeOP, OPKind
from rpkit.testing.oracle import Oracle, RecordedRequest
from rpkit.testing.personality import Personality
from rpkit.testing.registry import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    DEFAULT_TENANT_ID,
    FakeClient,
    FakeUser,
)
from rpkit.testing.server import serve, serve_fake
from rpkit.testing.transport import FakeOPTransport, FakeServer, mock_with_respx

__all__ = [
    "ABSENT",
    "BACKCHANNEL_LOGOUT_EVENT",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_ISSUER",
    "DEFAULT_REDIRECT_URI",
    "DEFAULT_TENANT_ID",
    "SIGNING_ALGORITHMS",
    "AuthorizationResponse",
    "Bounce",
    "Canned",
    "Endpoint",
    "FakeClient",
    "FakeOP",
    "FakeOPTransport",
    "FakeServer",
    "FakeUser",
    "JSONSource",
    "JWKSLayout",
    "KeyRing",
    "LogoutDefect",
    "Misbehaviour",
    "OPKind",
    "Oracle",
    "Personality",
    "RecordedRequest",
    "Tamper",
    "TokenMinter",
    "asgi_app",
    "generate_key",
    "github_profile",
    "mock_with_respx",
    "serve",
    "serve_fake",
]
