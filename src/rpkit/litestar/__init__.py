"""rpkit for Litestar: a plugin with login, callback and logout routes, server-side sessions,
guards, and bearer-token authentication for APIs.

Register :class:`RPKitPlugin` with an :class:`RPKitConfig`; add :class:`OIDCBearerAuth` to
protect APIs with access tokens.
"""

from __future__ import annotations

from rpkit.litestar.authz import requires_org, requires_permission, requires_role
from rpkit.litestar.bearer import OIDCBearerAuth, requires_scopes
from rpkit.litestar.config import RPKitConfig
from rpkit.litestar.guards import (
    requires_acr,
    requires_claim,
    requires_login,
    requires_provider,
    requires_recent_auth,
    requires_tenant,
)
from rpkit.litestar.plugin import RPKitPlugin, RPKitRuntime
from rpkit.litestar.protected_resource import ProtectedResource
from rpkit.litestar.session import SessionData, SessionManager

__all__ = [
    "OIDCBearerAuth",
    "ProtectedResource",
    "RPKitConfig",
    "RPKitPlugin",
    "RPKitRuntime",
    "SessionData",
    "SessionManager",
    "requires_acr",
    "requires_claim",
    "requires_login",
    "requires_org",
    "requires_permission",
    "requires_provider",
    "requires_recent_auth",
    "requires_role",
    "requires_scopes",
    "requires_tenant",
]

# Under ``litestar ... rpkit ...`` only: a configuration error raised while Litestar loads the
# app module prints as one line (``rpkit: <code>: <detail>``), not a traceback.
from rpkit.litestar.cli import install_error_hook as _install_error_hook

_install_error_hook()
