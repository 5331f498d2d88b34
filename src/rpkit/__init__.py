"""rpkit: a pluggable, strict OpenID Connect relying-party framework.

The core (this package, minus :mod:`rpkit.litestar` and :mod:`rpkit.testing`) is framework-free:
:class:`RelyingParty` signs users in with several providers over one caller-owned
``httpx.AsyncClient``, and :class:`ProviderConfig` describes each provider.
:mod:`rpkit.testing` ships a fake OpenID Provider for testing applications built on rpkit.
"""

from __future__ import annotations

from rpkit.access_token import AccessToken, AccessTokenPolicy
from rpkit.client import Identity, LoginRequest, LoginResult, RefreshResult, RelyingParty
from rpkit.client_credentials import ClientCredentials, ClientCredentialsAuth, MachineToken
from rpkit.config import ProviderConfig
from rpkit.dpop import DPoPAuth, DPoPKey
from rpkit.errors import RPKitError
from rpkit.id_token import IDToken, LogoutToken
from rpkit.logout import LogoutRequest, LogoutReturn
from rpkit.store import KeyValueStore, MemoryStore
from rpkit.tokens import TokenSet

__all__ = [
    "AccessToken",
    "AccessTokenPolicy",
    "ClientCredentials",
    "ClientCredentialsAuth",
    "DPoPAuth",
    "DPoPKey",
    "IDToken",
    "Identity",
    "KeyValueStore",
    "LoginRequest",
    "LoginResult",
    "LogoutRequest",
    "LogoutReturn",
    "LogoutToken",
    "MachineToken",
    "MemoryStore",
    "ProviderConfig",
    "RPKitError",
    "RefreshResult",
    "RelyingParty",
    "TokenSet",
    "__version__",
]

__version__ = "0.1.0"
