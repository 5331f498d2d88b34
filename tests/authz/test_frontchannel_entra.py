"""Front-channel logout the way Microsoft Entra ID sends it: ``?sid=...`` without ``iss``.

Entra calls the registration's "Front-channel logout URL" with ``sid`` only
(https://github.com/nginxinc/nginx-openid-connect/issues/117), which Front-Channel Logout 1.0 §2
does not allow ("if either is included, both MUST be"). rpkit refuses it unless the provider
names the relaxation ``frontchannel_logout_without_iss``, which the Entra preset sets with
``frontchannel_logout=True``: then the route's provider stands in for the missing issuer, and
exactly the sessions of that ``sid`` end. An ``iss`` that is sent must still match.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from rpkit.errors import ConfigurationError
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.providers import entra as preset
from rpkit.testing import FakeClient, FakeOP, FakeUser
from rpkit.testing.providers import FakeEntra
from tests.litestar.conftest import BASE, BROWSER_ACCEPT, SECRET, Browser, home, me, set_cookies
from tests.presets.conftest import (  # noqa: F401 - open_preset is a fixture
    LOGOUT_CALLBACK,
    PresetBrowser,
    callback_url,
    open_preset,
)

pytestmark = pytest.mark.authz

SESSION_COOKIE = "__Host-rpkit_session"
ROUTE = "/auth/frontchannel-logout/fake"
RELAXED = "frontchannel_logout_without_iss"
CONTOSO = "72f988bf-86f1-41af-91ab-2d7cd011db47"


class App:
    """An app with front-channel logout on for the fake OP, and a browser for it."""

    def __init__(self, browser: Browser, plugin: RPKitPlugin) -> None:
        self.browser = browser
        self.client = browser.client
        self.op = browser.op
        self.plugin = plugin

    async def sign_in(self, user: str) -> str:
        self.client.cookies.clear()
        landed = await self.browser.login(login_hint=user)
        return set_cookies(landed)[SESSION_COOKIE].value

    async def who(self, cookie: str) -> str | None:
        self.client.cookies.clear()
        self.client.cookies.set(SESSION_COOKIE, cookie)
        subject: str | None = (await self.client.get("/me")).json()["subject"]
        return subject

    def sid_of(self, user: str) -> str:
        return [sid for sid, (sub, _) in self.op.sessions.items() if sub == user][-1]

    def framed(self, **params: str | list[str]) -> httpx.Response:
        """GET the route as the provider's iframe does: cross-site, so without the app's cookie."""
        url = f"{ROUTE}?{urlencode(params, doseq=True)}"

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.client.app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as frame:
                return await frame.get(url, headers={"accept": "*/*"})

        return self.client.blocking_portal.call(send)


OpenApp = Callable[..., Awaitable[App]]


@pytest.fixture
async def open_app(fake_op: FakeOP) -> AsyncIterator[OpenApp]:
    """``await open_app(**provider_changes)``: the app over the fake OP, front-channel on."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_(**changes: Any) -> App:
            fake_op.register_client(
                FakeClient(
                    redirect_uris=(f"{BASE}/auth/callback/fake",),
                    frontchannel_logout_uri=f"{BASE}{ROUTE}",
                )
            )
            provider = fake_op.provider_config(**({"frontchannel_logout": True} | changes))
            settings = {"providers": [provider], "secret": SECRET, "base_url": BASE}
            plugin = RPKitPlugin(RPKitConfig(**settings), http_transport=fake_op.transport())
            app = Litestar([home, me], plugins=[plugin])
            client = await stack.enter_async_context(AsyncTestClient(app, base_url=BASE))
            client.headers["accept"] = BROWSER_ACCEPT
            return App(Browser(client, fake_op), plugin)

        yield open_


def assert_refused(app: App, response: httpx.Response, seen: int) -> None:
    """400 problem details framed by nobody, and no request reached the OP."""
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert len(app.op.oracle) == seen


# -- without the relaxation: the spec's rule ------------------------------------------------------
async def test_without_the_relaxation_a_sid_only_request_is_refused_and_ends_nothing(
    open_app: OpenApp,
):
    app = await open_app()
    alice = await app.sign_in("alice")
    seen = len(app.op.oracle)

    refused = app.framed(sid=app.sid_of("alice"))

    assert_refused(app, refused, seen)
    assert refused.json()["code"] == "logout_invalid"
    assert await app.who(alice) == "alice"


# -- with the relaxation --------------------------------------------------------------------------
async def test_with_the_relaxation_a_sid_only_request_ends_exactly_that_session(
    open_app: OpenApp,
):
    app = await open_app(frontchannel_logout_without_iss=True)
    alice_here = await app.sign_in("alice")
    alice_elsewhere = await app.sign_in("alice")  # a second browser: another OP session
    bob = await app.sign_in("bob")
    seen = len(app.op.oracle)

    framed = app.framed(sid=app.sid_of("alice"))

    assert framed.status_code == 200
    assert framed.headers["content-security-policy"] == f"frame-ancestors {app.op.issuer}"
    assert "set-cookie" not in framed.headers
    assert len(app.op.oracle) == seen  # discovery was cached: nothing fetched for a logout
    assert await app.who(alice_elsewhere) is None  # the newest alice session: that sid
    assert await app.who(alice_here) == "alice"
    assert await app.who(bob) == "bob"


async def test_with_the_relaxation_an_iss_that_is_sent_must_still_match(open_app: OpenApp):
    app = await open_app(frontchannel_logout_without_iss=True)
    alice = await app.sign_in("alice")
    sid = app.sid_of("alice")
    seen = len(app.op.oracle)

    wrong = app.framed(iss=app.op.issuer + "1", sid=sid)
    other = app.framed(iss="https://evil.example", sid=sid)
    right = app.framed(iss=app.op.issuer, sid=sid)  # the spec's request still works

    for refused in (wrong, other):
        assert_refused(app, refused, seen)
        assert refused.json()["code"] == "logout_invalid"
    assert right.status_code == 200
    assert await app.who(alice) is None


REFUSED = {
    "no sid": ({}, "logout_invalid"),
    "two sids": ({"sid": ["SID", "SID"]}, "logout_invalid"),
    "two issuers": ({"iss": ["ISS", "ISS"], "sid": "SID"}, "logout_invalid"),
    "empty sid": ({"sid": ""}, "parameter_malformed"),
    "oversized sid": ({"sid": "SID" + "x" * 255}, "parameter_too_large"),
    "control character in sid": ({"sid": "SID\n"}, "parameter_malformed"),
}


@pytest.mark.parametrize(("params", "code"), REFUSED.values(), ids=REFUSED.keys())
async def test_with_the_relaxation_sid_is_still_required_once_and_bounded(
    open_app: OpenApp, params: dict[str, Any], code: str
):
    app = await open_app(frontchannel_logout_without_iss=True)
    alice = await app.sign_in("alice")
    sid = app.sid_of("alice")

    def fill(value: str) -> str:
        return value.replace("ISS", app.op.issuer).replace("SID", sid)

    sent = {
        name: [fill(v) for v in value] if isinstance(value, list) else fill(value)
        for name, value in params.items()
    }
    seen = len(app.op.oracle)

    refused = app.framed(**sent)

    assert_refused(app, refused, seen)
    assert refused.json()["code"] == code
    assert await app.who(alice) == "alice"


async def test_the_startup_log_names_the_relaxation(open_app: OpenApp):
    with capture_logs() as logs:
        await open_app(frontchannel_logout_without_iss=True)

    relaxed = [e["setting"] for e in logs if e["event"] == "rpkit.startup.check_relaxed"]
    assert [s for s in relaxed if s.startswith(f"{RELAXED}:")] == [
        f"{RELAXED}: a front-channel logout request naming only sid (no iss) ends this "
        "provider's sessions of that sid"
    ]
    [started] = [e for e in logs if e["event"] == "rpkit.startup.frontchannel_logout"]
    assert started["iss_required"] is False
    assert started["session_required"] is True


def test_the_relaxation_needs_front_channel_logout(fake_op: FakeOP):
    with pytest.raises(ConfigurationError, match=f"{RELAXED} needs frontchannel_logout=True"):
        fake_op.provider_config(frontchannel_logout_without_iss=True)


# -- the Entra ID preset and its fake -------------------------------------------------------------
def test_the_entra_preset_relaxes_iss_only_with_front_channel_logout():
    def entra(**changes: Any) -> Any:
        return preset.entra(CONTOSO, "client", "secret", **changes)

    assert entra().relaxations() == ()
    assert entra().frontchannel_logout_without_iss is False
    on = entra(frontchannel_logout=True)
    assert on.frontchannel_logout_without_iss is True
    assert [r for r in on.relaxations() if r.startswith(RELAXED)]
    strict = entra(frontchannel_logout=True, frontchannel_logout_without_iss=False)
    assert strict.relaxations() == ()  # the caller's explicit choice wins


ALICE = FakeUser(
    "alice",
    {"name": "Alice", "email": "alice@example.com", "oid": "00000000-0000-4000-8000-0000000a11ce"},
    CONTOSO,
)
ENTRA_ROUTE = f"{BASE}/auth/frontchannel-logout/entra"


def fake_entra() -> FakeEntra:
    fake = FakeEntra(users=[ALICE])
    fake.register_client(
        FakeClient(
            redirect_uris=(callback_url("entra"),),
            post_logout_redirect_uris=(LOGOUT_CALLBACK,),
            frontchannel_logout_uri=ENTRA_ROUTE,
        )
    )
    return fake


async def signed_out_at_entra(browser: PresetBrowser) -> tuple[str, list[str]]:
    """Sign in, then sign out at (fake) Entra's logout page; the session cookie and the URLs
    the page frames."""
    landed = await browser.login()
    cookie = set_cookies(landed)[SESSION_COOKIE].value
    assert (await browser.me())["subject"] == f"{CONTOSO}:{ALICE.claims['oid']}"
    session = await browser.plugin.runtime.sessions.peek(cookie)
    assert session is not None
    page = await browser.fake.handle(
        httpx.Request(
            "GET",
            f"{preset.MICROSOFT_LOGIN}/organizations/oauth2/v2.0/logout",
            params={"id_token_hint": session.id_token},
        )
    )
    frames = [unescape(src) for src in re.findall(r"<iframe src='([^']*)'", page.text)]
    return cookie, frames


@pytest.mark.preset("entra")
async def test_entra_frames_sid_only_and_the_preset_ends_that_session(
    open_preset: Callable[..., Awaitable[PresetBrowser]],  # noqa: F811
):
    """End to end through the Litestar plugin: the preset with ``frontchannel_logout=True``,
    signed out at FakeEntra, whose logout page frames the URL with ``sid`` alone."""
    fake = fake_entra()
    with capture_logs() as logs:
        browser = await open_preset(
            fake, fake.provider_config(tenant=CONTOSO, frontchannel_logout=True)
        )
    cookie, frames = await signed_out_at_entra(browser)

    [frame] = frames
    assert urlsplit(frame)._replace(query="").geturl() == ENTRA_ROUTE
    assert set(parse_qs(urlsplit(frame).query)) == {"sid"}  # Entra's shape: no iss
    browser.client.cookies.clear()  # a cross-site frame carries none of the app's cookies
    framed = await browser.client.get(frame)
    assert framed.status_code == 200
    assert framed.headers["content-security-policy"] == (
        f"frame-ancestors {preset.MICROSOFT_LOGIN}"
    )
    browser.client.cookies.set(SESSION_COOKIE, cookie)
    assert await browser.me() == {}
    relaxed = [e["setting"] for e in logs if e["event"] == "rpkit.startup.check_relaxed"]
    assert any(setting.startswith(f"{RELAXED}:") for setting in relaxed)


@pytest.mark.preset("entra")
async def test_entras_sid_only_frame_is_refused_when_the_relaxation_is_turned_off(
    open_preset: Callable[..., Awaitable[PresetBrowser]],  # noqa: F811
):
    fake = fake_entra()
    config = fake.provider_config(
        tenant=CONTOSO, frontchannel_logout=True, frontchannel_logout_without_iss=False
    )
    browser = await open_preset(fake, config)
    cookie, [frame] = await signed_out_at_entra(browser)
    seen = len(fake.oracle)

    browser.client.cookies.clear()
    refused = await browser.client.get(frame, headers={"accept": "*/*"})

    assert refused.status_code == 400
    assert refused.json()["code"] == "logout_invalid"
    assert len(fake.oracle) == seen
    browser.client.cookies.set(SESSION_COOKIE, cookie)
    assert (await browser.me())["subject"] == f"{CONTOSO}:{ALICE.claims['oid']}"
