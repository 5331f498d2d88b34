"""What a newcomer meets around docs/howto/front-channel-logout.md.

``litestar rpkit check`` for an Entra ID provider with front-channel logout: Entra's app
registration has no ``frontchannel_logout_uri`` / ``frontchannel_logout_session_required``
client metadata; it has a "Front-channel logout URL" it calls with ``sid`` only, and ``sid`` in
the ID token is an optional claim
(https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#single-sign-out,
https://learn.microsoft.com/entra/identity-platform/optional-claims-reference). The check must
name what an Entra user can actually register.

Also the guide's cookie-session claims, with two app instances sharing the stores (a restart
is the same): the ended ``sid`` is found by the other instance, and the log says
``sessions_ended=0``.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, get
from litestar.di import NamedDependency
from litestar.stores.memory import MemoryStore
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from rpkit import ProviderConfig
from rpkit.client import Identity
from rpkit.errors import ConfigurationError
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.litestar.cli import run_check
from rpkit.testing import FakeClient, FakeOP
from rpkit.testing.providers import FakeEntra

pytestmark = pytest.mark.authz

BASE = "https://app.example"
CONTOSO = "72f988bf-86f1-41af-91ab-2d7cd011db47"


async def _front_lines(plugin: RPKitPlugin) -> list[str]:
    report = await run_check(plugin, Litestar(plugins=[plugin]), probes=False)
    assert report.problems == []
    return [line for line in report.passed if "front-channel" in line]


async def test_check_tells_an_entra_user_what_to_register_in_the_app_registration():
    fake = FakeEntra()
    provider = fake.provider_config(tenant=CONTOSO, frontchannel_logout=True)
    plugin = RPKitPlugin(
        RPKitConfig(providers=[provider], secret="s" * 32, base_url=BASE),
        http_transport=fake.transport(),
    )

    [line] = await _front_lines(plugin)

    route = f"{BASE}/auth/frontchannel-logout/{provider.id}"
    assert line.startswith(f"{provider.id}: front-channel logout at {route}: ")
    assert "frontchannel_logout_session_required" not in line
    assert "Front-channel logout URL" in line
    assert "optional claim sid" in line
    assert "frontchannel_logout_without_iss" in line


async def test_check_still_names_the_spec_metadata_for_a_spec_provider(fake_op: FakeOP):
    plugin = RPKitPlugin(
        RPKitConfig(
            providers=[fake_op.provider_config(frontchannel_logout=True)],
            secret="s" * 32,
            base_url=BASE,
        ),
        http_transport=fake_op.transport(),
    )

    assert await _front_lines(plugin) == [
        f"fake: front-channel logout at {BASE}/auth/frontchannel-logout/fake: register it as "
        "frontchannel_logout_uri with frontchannel_logout_session_required=true"
    ]


@get("/me")
async def me(rpkit_user: NamedDependency[Identity | None]) -> dict[str, str | None]:
    return {"subject": rpkit_user.subject if rpkit_user else None}


def _instance(fake_op: FakeOP, stores: dict[str, Any]) -> Litestar:
    plugin = RPKitPlugin(
        RPKitConfig(
            providers=[fake_op.provider_config(frontchannel_logout=True)],
            secret="s" * 32,
            base_url=BASE,
            session_backend="cookie",
        ),
        http_transport=fake_op.transport(),
    )
    return Litestar([me], plugins=[plugin], stores=stores)


async def test_a_cookie_session_ended_through_another_instance_says_sessions_ended_0(
    fake_op: FakeOP,
):
    fake_op.register_client(
        FakeClient(
            redirect_uris=(f"{BASE}/auth/callback/fake",),
            frontchannel_logout_uri=f"{BASE}/auth/frontchannel-logout/fake",
        )
    )
    stores = {"rpkit_sessions": MemoryStore(), "rpkit_flows": MemoryStore()}
    async with (
        AsyncTestClient(_instance(fake_op, stores), base_url=BASE) as browser,
        AsyncTestClient(_instance(fake_op, stores), base_url=BASE) as frame,
    ):
        started = await browser.get("/auth/login/fake", follow_redirects=False)
        callback = await fake_op.approve(started.headers["location"])
        await browser.get(callback.location, follow_redirects=False)
        assert (await browser.get("/me")).json() == {"subject": "alice"}
        [sid] = [sid for sid, (sub, _) in fake_op.sessions.items() if sub == "alice"]

        with capture_logs() as logs:
            framed = await frame.get(
                "/auth/frontchannel-logout/fake", params={"iss": fake_op.issuer, "sid": sid}
            )

        assert framed.status_code == 200
        [done] = [e for e in logs if e["event"] == "rpkit.logout.frontchannel"]
        assert done["sessions_ended"] == 0
        assert (await browser.get("/me")).json() == {"subject": None}


def test_frame_ancestors_given_as_one_string_say_so():
    """A newcomer writes ``frontchannel_logout_frame_ancestors="https://auth.example.org"``;
    the error listed each character as a bad origin (``['h', 't', 't', 'p', ...]``)."""
    with pytest.raises(ConfigurationError) as refused:
        ProviderConfig(
            id="lemon",
            issuer="https://auth.example.org",
            client_id="my-app",
            client_secret="s",
            frontchannel_logout=True,
            frontchannel_logout_frame_ancestors="https://auth.example.org",  # type: ignore[arg-type]
        )
    assert "must be a tuple of origins, not one string" in str(refused.value)
    assert "('https://auth.example.org',)" in str(refused.value)
    assert "'h', 't'" not in str(refused.value)
