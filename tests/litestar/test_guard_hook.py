"""rpkit's guards run from ``before_request`` when all of a route's guards are rpkit's (no
Litestar copy of the handler per guard), and stay Litestar guards whenever moving them could
change what runs first: the checks and answers are the same either way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar, Request, Router, WebSocket, get, websocket
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.exceptions import WebSocketDisconnect
from litestar.handlers import HTTPRouteHandler
from litestar.handlers.base import BaseRouteHandler
from litestar.testing import AsyncTestClient

from rpkit.litestar import RPKitPlugin, requires_claim, requires_login
from rpkit.litestar.bearer import requires_scopes
from rpkit.testing import FakeOP
from tests.litestar.conftest import BASE, Browser, make_app

API = {"accept": "application/json"}
calls: list[str] = []


async def user_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A user's guard that relies on requires_login() having run before it."""
    plugin = connection.app.plugins.get(RPKitPlugin)
    session = await plugin.runtime.current_session(connection)  # type: ignore[arg-type]
    calls.append(f"user_guard:{session.subject}")  # type: ignore[union-attr]


async def remember_request(request: Request[Any, Any, Any]) -> None:
    calls.append("before_request")


async def answer_early(request: Request[Any, Any, Any]) -> str:
    calls.append("answer_early")
    return "from before_request"


@get("/login-only", guards=[requires_login()])
async def login_only() -> str:
    calls.append("handler")
    return "login-only"


@get("/mixed", guards=[requires_login(), user_guard])
async def mixed() -> str:
    return "mixed"


@get("/cached", guards=[requires_login()], cache=60)
async def cached() -> str:
    calls.append("cached-handler")
    return "cached page"


@get("/hooked", guards=[requires_login()], before_request=remember_request)
async def hooked() -> str:
    calls.append("handler")
    return "hooked"


@get("/early", guards=[requires_login()], before_request=answer_early)
async def early() -> str:
    calls.append("handler")
    return "handler"


async def spy_dependency() -> str:
    calls.append("dependency")
    return "resolved"


@get("/with-dependency", guards=[requires_login()], dependencies={"spy": Provide(spy_dependency)})
async def with_dependency(spy: NamedDependency[str]) -> str:
    return spy


@get("/admins", guards=[requires_claim("groups", "admins")])
async def admins() -> str:
    return "admins"


@get("/scoped", guards=[requires_scopes("orders:read")], exclude_from_auth=True)
async def scoped() -> str:
    return "scoped"


@websocket("/ws", guards=[requires_login()])
async def socket(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    await socket.send_text("hello")
    await socket.close()


class CustomHandler(HTTPRouteHandler):
    """A handler class that resolves guards its own way: left to Litestar."""

    def resolve_guards(self) -> list[Any]:
        return super().resolve_guards()


custom = CustomHandler("/custom", http_method="GET", guards=[requires_login()])(login_only.fn)

HANDLERS = [login_only, mixed, cached, hooked, early, with_dependency, admins, scoped, socket]
HANDLERS += [custom]


def handler_at(app: Litestar, path: str) -> Any:
    route = next(r for r in app.routes if r.path == path)
    return getattr(route, "route_handler", None) or route.route_handlers[0]  # type: ignore[attr-defined]


@pytest.fixture
async def app(fake_op: FakeOP) -> Litestar:
    built, _ = make_app(fake_op)
    built.register(Router("/team", route_handlers=[login_only], guards=[requires_login()]))
    built.register(Router("/admin", route_handlers=[admins], guards=[requires_login()]))
    for handler in HANDLERS:
        built.register(handler)
    return built


@pytest.fixture
async def browser(app: Litestar, fake_op: FakeOP) -> AsyncIterator[Browser]:
    calls.clear()
    async with AsyncTestClient(app, base_url=BASE) as client:
        client.follow_redirects = False
        yield Browser(client, fake_op)


def test_only_routes_whose_guards_are_all_rpkits_are_moved(app: Litestar):
    moved = {"/login-only", "/hooked", "/early", "/admins", "/team/login-only", "/admin/admins"}
    moved |= {"/scoped", "/with-dependency"}
    for path in moved:
        handler = handler_at(app, path)
        assert handler.resolve_guards() == [], path
        assert getattr(handler.resolve_before_request(), "__rpkit_guards_hook__", False), path
    for path in ("/mixed", "/cached", "/custom", "/ws"):
        assert len(handler_at(app, path).resolve_guards()) >= 1, path


async def test_a_moved_guard_refuses_as_a_guard_does_and_nothing_else_runs(browser: Browser):
    api = await browser.client.get("/login-only", headers=API)
    page = await browser.client.get("/hooked", headers={"accept": "text/html"})
    early_ = await browser.client.get("/early", headers=API)

    assert api.status_code == 401
    assert api.json()["code"] == "login_required"
    assert page.status_code == 303
    assert page.headers["location"].startswith("/auth/login/fake?return_to=%2Fhooked")
    assert early_.status_code == 401
    assert calls == []  # neither the route's own before_request nor the handler ran


async def test_a_refused_request_resolves_no_dependency(browser: Browser):
    anonymous = await browser.client.get("/with-dependency", headers=API)
    await browser.login()
    signed_in = await browser.client.get("/with-dependency", headers=API)

    assert anonymous.status_code == 401
    assert signed_in.text == "resolved"
    assert calls == ["dependency"]  # once, for the signed-in request only


async def test_a_signed_in_request_runs_the_routes_own_before_request_after_the_checks(
    browser: Browser,
):
    await browser.login()

    hooked_ = await browser.client.get("/hooked", headers=API)
    early_ = await browser.client.get("/early", headers=API)

    assert hooked_.text == "hooked"
    assert early_.text == "from before_request"  # its answer still replaces the handler's
    assert calls == ["before_request", "handler", "answer_early"]


async def test_router_and_handler_guards_keep_their_order(browser: Browser):
    anonymous = await browser.client.get("/admin/admins", headers=API)
    await browser.login()
    signed_in = await browser.client.get("/admin/admins", headers=API)
    team = await browser.client.get("/team/login-only", headers=API)

    assert anonymous.status_code == 401  # requires_login (router) before requires_claim
    assert signed_in.status_code == 403
    assert signed_in.json()["code"] == "forbidden"
    assert team.text == "login-only"


async def test_a_users_guard_after_requires_login_still_runs_after_it(browser: Browser):
    anonymous = await browser.client.get("/mixed", headers=API)
    await browser.login()
    signed_in = await browser.client.get("/mixed", headers=API)
    subject = (await browser.client.get("/me", headers=API)).json()["subject"]

    assert anonymous.status_code == 401  # not a 500 from user_guard reading no session
    assert signed_in.text == "mixed"
    assert calls == [f"user_guard:{subject}"]


async def test_a_cached_page_is_never_served_to_a_signed_out_request(
    browser: Browser, app: Litestar
):
    await browser.login()
    first = await browser.client.get("/cached", headers=API)
    browser.client.cookies.clear()
    anonymous = await browser.client.get("/cached", headers=API)

    assert first.text == "cached page"
    assert anonymous.status_code == 401
    assert calls == ["cached-handler"]


async def test_the_bearer_scope_guard_moves_and_still_refuses(browser: Browser):
    response = await browser.client.get("/scoped", headers=API)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_websocket_and_custom_handler_guards_stay_with_litestar(browser: Browser):
    session = await browser.client.websocket_connect("/ws")
    with pytest.raises(WebSocketDisconnect), session:
        session.receive_text()
    custom_ = await browser.client.get("/custom", headers=API)

    assert custom_.status_code == 401
    assert calls == []
