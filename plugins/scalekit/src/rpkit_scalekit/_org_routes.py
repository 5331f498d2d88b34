"""The organization switch of :class:`~rpkit_scalekit.litestar.ScalekitLitestarPlugin`.

``GET {path}/organizations/switch?organization_id=org_...&return_to=/...`` starts a fresh login
(its own ``state``, ``nonce`` and PKCE, bound to this browser as rpkit's ``/login`` route binds
it) with ``prompt=select_account`` and ``organization_id``: Scalekit signs a member straight into
that organization and the new session's identity carries it as ``organization``
(https://docs.scalekit.com/authenticate/manage-users-orgs/organization-switching/). The
organization id is checked (``org_`` + letters and digits) before anything else: a malformed one
is refused with 400, and no login is pended, no cookie set. Without ``organization_id`` the route
shows Scalekit's organization switcher (``prompt=select_account`` alone).

A GET, like rpkit's own login route: a third-party page can start it, but the login can only end
in this browser, as the user Scalekit already knows, in an organization that user belongs to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request, Response, Router, get
from litestar.response import Redirect

from rpkit.litestar._cookies import binding_of, new_handle
from rpkit.litestar.responses import NO_STORE
from rpkit_scalekit._inbound import return_to
from rpkit_scalekit.errors import ScalekitInputError
from rpkit_scalekit.organizations import switch_organization_params

if TYPE_CHECKING:
    from rpkit_scalekit.litestar import ScalekitLitestarPlugin

__all__ = ["SWITCH_PATH", "build_org_router"]

AnyRequest = Request[Any, Any, Any]
SWITCH_PATH = "/organizations/switch"
"""Under the plugin's ``path``."""


def build_org_router(plugin: ScalekitLitestarPlugin) -> Router:
    """The organization-switch route under the plugin's ``path``."""
    opt = {"exclude_from_auth": True, "skip_session": True, "exclude_from_csrf": True}

    @get(SWITCH_PATH, name=f"rpkit-scalekit:{plugin.provider_id}:switch-organization", opt=opt)
    async def switch_organization(request: AnyRequest) -> Response[Any]:
        query = request.query_params
        named = query.getall("organization_id", [])
        if len(named) > 1:  # which one? refused, as rpkit refuses any repeated parameter
            msg = "organization_id must be sent at most once"
            raise ScalekitInputError(msg, field="organization_id")
        # A malformed organization_id is a 400 before any state.
        params = switch_organization_params(named[0]) if named else {"prompt": "select_account"}
        runtime = plugin.runtime(request.app)
        destination = return_to(dict(query.items()), runtime.config.default_return_to)
        provider_id = plugin.provider_id
        handle = runtime.browser_handle(request) or new_handle()
        started = await runtime.rp.begin_login(
            provider_id,
            redirect_uri=runtime.url_for(request, "rpkit:callback", provider_id=provider_id),
            return_to=destination,
            params=params,
            binding=binding_of(handle),
        )
        response: Response[Any] = Redirect(started.url, status_code=303, headers=NO_STORE)
        await runtime.pend_login(response, handle, started.state, runtime.rp.provider(provider_id))
        return response

    return Router(path=plugin.path, route_handlers=[switch_organization], include_in_schema=False)
