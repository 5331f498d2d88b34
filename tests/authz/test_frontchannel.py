"""Front-channel logout (OpenID Connect Front-Channel Logout 1.0) against the fake OP: the OP's
logout page frames ``/auth/frontchannel-logout/fake?iss=...&sid=...`` cross-site, so the request
carries no cookie of the app; rpkit ends the sessions of that ``sid`` and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from litestar import Litestar
from litestar.events import listener
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from rpkit.config import ProviderConfig, TenantPolicy
from rpkit.errors import ConfigurationError
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.testing import FakeClient, FakeOP
from rpkit.testing.registry import ALICE_TENANT_ID, BOB_TENANT_ID
from tests.litestar.conftest import BASE, BROWSER_ACCEPT, SECRET, Browser, home, me, set_cookies

pytestmark = pytest.mark.authz

SESSION_COOKIE = "__Host-rpkit_session"
ROUTE = "/auth/frontchannel-logout/fake"
OP_ORIGIN = "https://op.rpkit.test"


class App:
    """The app with front-channel logout on, its browser-like client and the events it sent."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.client = browser.client
        self.op = browser.op

    async def sign_in(self, user: str) -> str:
        """Sign ``user`` in from a fresh browser; the session cookie's value."""
        self.client.cookies.clear()
        landed = await self.browser.login(login_hint=user)
        return set_cookies(landed)[SESSION_COOKIE].value

    async def who(self, cookie: str) -> str | None:
        """Who the app sees signed in with this session cookie."""
        self.client.cookies.clear()
        self.client.cookies.set(SESSION_COOKIE, cookie)
        subject: str | None = (await self.client.get("/me")).json()["subject"]
        return subject

    def sid_of(self, user: str) -> str:
        """The OP session id of ``user``'s latest login."""
        return [sid for sid, (sub, _) in self.op.sessions.items() if sub == user][-1]

    def framed(self, url: str, *, accept: str = BROWSER_ACCEPT) -> httpx.Response:
        """GET ``url`` as the OP's iframe does: a cross-site frame, so no cookie of the app."""

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.client.app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as frame:
                return await frame.get(url, headers={"accept": accept})

        return self.client.blocking_portal.call(send)

    def logout_url(self, **params: str) -> str:
        return f"{ROUTE}?{urlencode(params)}" if params else ROUTE


Events = list[dict[str, Any]]
OpenApp = Callable[..., Awaitable[tuple[App, Events]]]


async def emitted(events: Events, count: int) -> Events:
    """``events`` once ``count`` have arrived: Litestar runs listeners in the background."""
    for _ in range(100):
        if len(events) >= count:
            break
        await asyncio.sleep(0.01)
    return events


@pytest.fixture
async def open_app(fake_op: FakeOP) -> AsyncIterator[OpenApp]:
    """Start the app (``provider`` changes the provider, the rest ``RPKitConfig``)."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_(
            provider: dict[str, Any] | None = None, op: FakeOP | None = None, **config: Any
        ) -> Any:
            fake = op or fake_op
            events: Events = []

            @listener("rpkit.provider_logout")
            async def record(**kwargs: Any) -> None:
                events.append(kwargs)

            fake.register_client(
                FakeClient(
                    redirect_uris=(f"{BASE}/auth/callback/fake",),
                    post_logout_redirect_uris=(f"{BASE}/auth/logout/callback",),
                    backchannel_logout_uri=f"{BASE}/auth/backchannel-logout/fake",
                    frontchannel_logout_uri=f"{BASE}{ROUTE}",
                )
            )
            changes = {"frontchannel_logout": True} | (provider or {})
            settings = {"providers": [fake.provider_config(**changes)], "secret": SECRET}
            plugin = RPKitPlugin(
                RPKitConfig(**(settings | {"base_url": BASE} | config)),
                http_transport=fake.transport(),
            )
            app = Litestar([home, me], plugins=[plugin], listeners=[record])
            client = await stack.enter_async_context(AsyncTestClient(app, base_url=BASE))
            client.headers["accept"] = BROWSER_ACCEPT
            return App(Browser(client, fake)), events

        yield open_


# -- the happy path -------------------------------------------------------------------------------
async def test_sid_ends_exactly_that_session_and_not_another_users(open_app: OpenApp):
    app, events = await open_app()
    alice = await app.sign_in("alice")
    bob = await app.sign_in("bob")

    framed = app.framed(app.logout_url(iss=app.op.issuer, sid=app.sid_of("alice")))

    assert framed.status_code == 200
    assert await app.who(alice) is None
    assert await app.who(bob) == "bob"
    assert await emitted(events, 1) == [
        {"provider_id": "fake", "channel": "front-channel", "sessions_ended": 1}
    ]


async def test_two_browsers_of_one_user_end_one_at_a_time(open_app: OpenApp):
    app, _ = await open_app()
    first = await app.sign_in("alice")
    first_sid = app.sid_of("alice")
    second = await app.sign_in("alice")
    second_sid = app.sid_of("alice")
    assert first_sid != second_sid

    app.framed(app.logout_url(iss=app.op.issuer, sid=first_sid))

    assert await app.who(first) is None
    assert await app.who(second) == "alice"
    app.framed(app.logout_url(iss=app.op.issuer, sid=second_sid))
    assert await app.who(second) is None


async def test_the_ops_logout_page_frames_the_route_and_it_works_without_the_cookie(
    open_app: OpenApp,
):
    """The user signs out at the OP (say, from another tab): the fake OP's end-session page
    frames each RP of that OP session with ``iss`` and ``sid`` (Front-Channel Logout §3)."""
    app, _ = await open_app()
    alice = await app.sign_in("alice")
    plugin = app.client.app.plugins.get(RPKitPlugin)
    id_token = (await plugin.runtime.sessions.peek(alice)).id_token  # type: ignore[union-attr]

    page = await app.op.handle(
        httpx.Request("GET", app.op.endpoints["end_session"], params={"id_token_hint": id_token})
    )
    frames = [unescape(src) for src in re.findall(r"<iframe src='([^']*)'", page.text)]

    assert len(frames) == 1
    assert urlsplit(frames[0])._replace(query="").geturl() == f"{BASE}{ROUTE}"
    framed = app.framed(frames[0])
    assert framed.status_code == 200
    assert "set-cookie" not in framed.headers
    assert await app.who(alice) is None


async def test_a_repeated_logout_is_a_200_with_nothing_left_to_end(open_app: OpenApp):
    app, events = await open_app()
    await app.sign_in("alice")
    url = app.logout_url(iss=app.op.issuer, sid=app.sid_of("alice"))

    first, again = app.framed(url), app.framed(url)

    assert (first.status_code, again.status_code) == (200, 200)
    assert [e["sessions_ended"] for e in await emitted(events, 2)] == [1, 0]


# -- the answer's headers -------------------------------------------------------------------------
async def test_only_the_providers_origin_may_frame_the_answer_and_it_is_not_cached(
    open_app: OpenApp,
):
    app, _ = await open_app()
    await app.sign_in("alice")

    framed = app.framed(app.logout_url(iss=app.op.issuer, sid=app.sid_of("alice")))

    assert framed.headers["content-security-policy"] == f"frame-ancestors {OP_ORIGIN}"
    assert framed.headers["cache-control"] == "no-cache, no-store"
    assert framed.headers["pragma"] == "no-cache"
    assert framed.headers["referrer-policy"] == "no-referrer"
    assert "x-frame-options" not in framed.headers
    assert framed.headers["content-type"].startswith("text/html")


async def test_configured_frame_ancestors_replace_the_discovered_ones(open_app: OpenApp):
    ancestors = ("https://login.example", "https://sso.example:8443")
    app, _ = await open_app({"frontchannel_logout_frame_ancestors": ancestors})
    await app.sign_in("alice")

    framed = app.framed(app.logout_url(iss=app.op.issuer, sid=app.sid_of("alice")))

    assert framed.headers["content-security-policy"] == (
        "frame-ancestors https://login.example https://sso.example:8443"
    )


async def test_the_end_session_endpoints_origin_may_frame_it_too(
    fake_op: FakeOP, open_app: OpenApp
):
    fake_op.misbehave.metadata = {"end_session_endpoint": "https://logout.rpkit.test/end"}
    app, _ = await open_app()
    await app.sign_in("alice")

    framed = app.framed(app.logout_url(iss=app.op.issuer, sid=app.sid_of("alice")))

    assert framed.headers["content-security-policy"] == (
        f"frame-ancestors {OP_ORIGIN} https://logout.rpkit.test"
    )


# -- refusals -------------------------------------------------------------------------------------
REFUSED = {
    "no iss": ({"sid": "S"}, "logout_invalid"),
    "no sid": ({"iss": "ISS"}, "logout_invalid"),
    "neither": ({}, "logout_invalid"),
    "wrong iss": ({"iss": "ISS1", "sid": "S"}, "logout_invalid"),
    "another issuer": ({"iss": "https://evil.example", "sid": "S"}, "logout_invalid"),
    "oversized sid": ({"iss": "ISS", "sid": "S" + "x" * 255}, "parameter_too_large"),
    "control character in sid": ({"iss": "ISS", "sid": "S\n"}, "parameter_malformed"),
}


@pytest.mark.parametrize(("params", "code"), REFUSED.values(), ids=REFUSED.keys())
async def test_a_request_not_naming_one_session_of_this_provider_is_a_400_ending_nothing(
    open_app: OpenApp, params: dict[str, str], code: str
):
    app, events = await open_app()
    alice = await app.sign_in("alice")
    sid = app.sid_of("alice")
    sent = {k: v.replace("ISS", app.op.issuer).replace("S", sid, 1) for k, v in params.items()}
    seen = len(app.op.oracle)

    refused = app.framed(app.logout_url(**sent), accept="*/*")

    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == code
    assert refused.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert refused.headers["cache-control"] == "no-cache, no-store"
    assert len(app.op.oracle) == seen  # nothing fetched from the provider
    assert await app.who(alice) == "alice"
    # The same session is ended by a request naming it properly, and only that one is reported.
    assert app.framed(app.logout_url(iss=app.op.issuer, sid=sid)).status_code == 200
    assert [e["sessions_ended"] for e in await emitted(events, 1)] == [1]
    assert await app.who(alice) is None


async def test_a_repeated_sid_is_refused(open_app: OpenApp):
    app, _ = await open_app()
    alice = await app.sign_in("alice")
    sid = app.sid_of("alice")

    query = urlencode([("iss", app.op.issuer), ("sid", "other"), ("sid", sid)])
    refused = app.framed(f"{ROUTE}?{query}", accept="*/*")

    assert refused.status_code == 400
    assert await app.who(alice) == "alice"


async def test_a_browser_gets_a_small_html_page_for_a_refusal(open_app: OpenApp):
    app, _ = await open_app()

    refused = app.framed(app.logout_url(sid="abc"))

    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("text/html")
    assert "logout_invalid" in refused.text


async def test_a_provider_without_front_channel_logout_has_no_such_route(open_app: OpenApp):
    app, events = await open_app({"frontchannel_logout": False})
    alice = await app.sign_in("alice")

    framed = app.framed(app.logout_url(iss=app.op.issuer, sid=app.sid_of("alice")), accept="*/*")

    assert framed.status_code == 404
    assert framed.json()["code"] == "unknown_provider"
    assert await app.who(alice) == "alice"
    assert events == []


async def test_a_tenant_issuer_must_name_an_allowed_tenant(open_app: OpenApp):
    """A multi-tenant issuer template (Entra ID's ``/{tenantid}/v2.0``): ``iss`` is the template
    filled with an allowed tenant, as in tokens (rpkit.tenants)."""
    op = FakeOP("https://login.rpkit.test", multi_tenant=True)
    policy = TenantPolicy(allowed=frozenset({ALICE_TENANT_ID}))
    app, _ = await open_app({"tenants": policy}, op=op)
    alice = await app.sign_in("alice")
    sid = app.sid_of("alice")
    tenant_issuer = f"https://login.rpkit.test/{ALICE_TENANT_ID}/v2.0"

    for iss in (
        op.issuer_template,
        f"https://login.rpkit.test/{BOB_TENANT_ID}/v2.0",
        f"https://login.rpkit.test/{ALICE_TENANT_ID.upper()}/v2.0",
    ):
        refused = app.framed(app.logout_url(iss=iss, sid=sid), accept="*/*")
        assert refused.status_code == 400, iss
        assert await app.who(alice) == "alice"

    framed = app.framed(app.logout_url(iss=tenant_issuer, sid=sid))
    assert framed.status_code == 200
    assert framed.headers["content-security-policy"] == "frame-ancestors https://login.rpkit.test"
    assert await app.who(alice) is None


async def test_the_fake_ops_logout_page_names_the_tenants_issuer(open_app: OpenApp):
    op = FakeOP("https://login.rpkit.test", multi_tenant=True)
    app, _ = await open_app({"tenants": TenantPolicy(any_tenant=True)}, op=op)
    bob = await app.sign_in("bob")
    plugin = app.client.app.plugins.get(RPKitPlugin)
    id_token = (await plugin.runtime.sessions.peek(bob)).id_token  # type: ignore[union-attr]

    page = await op.handle(
        httpx.Request("GET", op.endpoints["end_session"], params={"id_token_hint": id_token})
    )
    [frame] = [unescape(src) for src in re.findall(r"<iframe src='([^']*)'", page.text)]

    assert parse_qs(urlsplit(frame).query)["iss"] == [
        f"https://login.rpkit.test/{BOB_TENANT_ID}/v2.0"
    ]
    assert app.framed(frame).status_code == 200
    assert await app.who(bob) is None


# -- cookie sessions ------------------------------------------------------------------------------
async def test_a_cookie_session_named_by_sid_is_refused_from_its_next_request(open_app: OpenApp):
    app, events = await open_app(session_backend="cookie")
    alice = await app.sign_in("alice")
    bob = await app.sign_in("bob")

    framed = app.framed(app.logout_url(iss=app.op.issuer, sid=app.sid_of("alice")))

    assert framed.status_code == 200
    assert await app.who(alice) is None
    assert await app.who(bob) == "bob"
    assert (await emitted(events, 1))[0]["channel"] == "front-channel"


async def test_back_channel_logout_by_sid_ends_a_cookie_session_too(open_app: OpenApp):
    app, events = await open_app(session_backend="cookie")
    alice = await app.sign_in("alice")
    token = app.op.logout_token(sid=app.sid_of("alice"))

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app.client.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as op_http:
            return await app.op.send_backchannel_logout(op_http, token)

    assert app.client.blocking_portal.call(send).status_code == 200
    assert await app.who(alice) is None
    assert await emitted(events, 1) == [
        {"provider_id": "fake", "channel": "back-channel", "sessions_ended": 0}
    ]


# -- configuration and startup --------------------------------------------------------------------
async def test_startup_logs_who_may_frame_the_route(open_app: OpenApp):
    with capture_logs() as logs:
        await open_app()

    started = [e for e in logs if e["event"] == "rpkit.startup.frontchannel_logout"]
    assert started == [
        {
            "event": "rpkit.startup.frontchannel_logout",
            "log_level": "info",
            "provider": "fake",
            "frame_ancestors": [OP_ORIGIN],
            "session_required": True,
            "iss_required": True,
        }
    ]


BAD_CONFIG = {
    "a path": ({"frontchannel_logout_frame_ancestors": ("https://op.example/logout",)}, "origins"),
    "a wildcard": ({"frontchannel_logout_frame_ancestors": ("https://*.example",)}, "origins"),
    "a CSP keyword": ({"frontchannel_logout_frame_ancestors": ("'self'",)}, "origins"),
    "more CSP": ({"frontchannel_logout_frame_ancestors": ("https://a.example;x",)}, "origins"),
    "http": ({"frontchannel_logout_frame_ancestors": ("http://op.example",)}, "origins"),
    "ancestors while off": (
        {"frontchannel_logout": False, "frontchannel_logout_frame_ancestors": ("https://a.b",)},
        "needs frontchannel_logout=True",
    ),
}


@pytest.mark.parametrize(("changes", "message"), BAD_CONFIG.values(), ids=BAD_CONFIG.keys())
def test_frame_ancestors_must_be_plain_origins(changes: dict[str, Any], message: str):
    settings = {"frontchannel_logout": True} | changes
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        ProviderConfig(id="op", issuer=OP_ORIGIN, client_id="c", client_secret="s", **settings)


def test_a_tenant_in_the_issuers_host_needs_configured_frame_ancestors():
    template = dict(
        id="op",
        issuer="https://{tenantid}.login.example",
        client_id="c",
        client_secret="s",
        discovery_url="https://common.login.example/.well-known/openid-configuration",
        tenants=TenantPolicy(allowed=frozenset({"00000000-0000-4000-8000-000000000000"})),
        frontchannel_logout=True,
    )
    with pytest.raises(ConfigurationError, match="frontchannel_logout_frame_ancestors"):
        ProviderConfig(**template)
    ok = ProviderConfig(**template, frontchannel_logout_frame_ancestors=("https://a.example",))
    assert ok.frontchannel_logout_frame_ancestors == ("https://a.example",)


# -- litestar rpkit check -------------------------------------------------------------------------
async def test_check_names_the_uri_to_register_as_frontchannel_logout_uri(fake_op: FakeOP):
    from rpkit.litestar.cli import run_check

    providers = [
        fake_op.provider_config(frontchannel_logout=True),
        fake_op.provider_config("plain"),
    ]
    plugin = RPKitPlugin(
        RPKitConfig(providers=providers, secret=SECRET, base_url=BASE),
        http_transport=fake_op.transport(),
    )
    app = Litestar(plugins=[plugin])

    report = await run_check(plugin, app, probes=False)

    fronts = [line for line in report.passed if "front-channel" in line]
    assert fronts == [
        f"fake: front-channel logout at {BASE}{ROUTE}: register it as frontchannel_logout_uri "
        "with frontchannel_logout_session_required=true"
    ]
    assert report.problems == []
