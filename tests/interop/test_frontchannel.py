"""Front-channel logout against a real provider in headless Chromium.

oidc-provider 7.0.0 removed Front-Channel Logout ("front-channel becoming more and more
unreliable due to browsers blocking third-party cookie access", its CHANGELOG), so this test
runs oidc-provider 6.31.1, the newest release with ``features.frontchannelLogout``, from
``op_frontchannel/`` (pinned and locked there); the other interop tests keep version 9 in ``op/``.

The browser reaches the app as ``http://localhost:<port>`` and the provider as
``http://127.0.0.1:<port>``: the provider's logout page frames rpkit's route cross-site, so the
``SameSite=Lax`` session cookie is not sent with it, and rpkit must find the session by ``sid``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from rpkit.config import ProviderConfig
from tests.interop.harness import (
    AppUrls,
    OidcProvider,
    Registration,
    bind_app,
    ensure_node_modules,
    free_port,
    lines,
)
from tests.interop.pages import Visit, confirm_logout_at_op, sign_in

pytestmark = [pytest.mark.interop, pytest.mark.authz]

OP_FRONTCHANNEL_DIR = Path(__file__).parent / "op_frontchannel"
SESSION_COOKIE = "__Host-rpkit_session"


@dataclass(frozen=True)
class FrontChannelRegistration(Registration):
    """A client with ``frontchannel_logout_uri`` (and ``frontchannel_logout_session_required``)
    instead of a back-channel one, and rpkit's provider with ``frontchannel_logout`` on."""

    def op_client(self, app: AppUrls) -> dict[str, Any]:
        client = super().op_client(app)
        del client["backchannel_logout_uri"], client["backchannel_logout_session_required"]
        client["frontchannel_logout_uri"] = frontchannel_uri(app, self.provider_id)
        client["frontchannel_logout_session_required"] = True
        return client

    def provider_config(self, issuer: str, app: AppUrls) -> ProviderConfig:
        base = super().provider_config(issuer, app)
        return msgspec.structs.replace(base, frontchannel_logout=True)


def frontchannel_uri(app: AppUrls, provider_id: str) -> str:
    """Where the browser reaches rpkit's route: the redirect URI's origin (Front-Channel Logout
    §2: "The domain, port, and scheme of this URL MUST be the same as that of a registered
    Redirection URI value")."""
    return f"{app.origin}/auth/frontchannel-logout/{provider_id}"


@pytest.fixture(scope="module")
def frontchannel_op_version(oidc_provider_version: str) -> str:
    """oidc-provider 6 installed in op_frontchannel/node_modules (``npm ci`` on first use)."""
    return ensure_node_modules(OP_FRONTCHANNEL_DIR)


@pytest.fixture
def frontchannel_setup(
    frontchannel_op_version: str, tmp_path: Path
) -> Iterator[tuple[OidcProvider, Any]]:
    registration = FrontChannelRegistration("fc")
    pending = bind_app("localhost")
    op = OidcProvider(
        free_port(),
        [registration.op_client(pending.urls)],
        tmp_path,
        op_dir=OP_FRONTCHANNEL_DIR,
    )
    op.start()
    try:
        app = pending.start(op.issuer, [registration])
    except BaseException:
        pending.close()
        op.stop()
        raise
    try:
        yield op, app
    finally:
        app.stop()
        op.stop()


def test_signing_out_at_the_provider_ends_the_rp_session_through_its_framed_route(
    frontchannel_setup: tuple[OidcProvider, Any], open_visit: Callable[[str], Visit]
):
    op, app = frontchannel_setup
    visit = open_visit("frontchannel")
    sign_in(visit, app.origin, "fc", op.issuer)
    before = visit.profile(app.origin)
    assert before["subject"] == "alice"
    assert before["sid"], "oidc-provider puts sid in ID tokens of clients that require it"

    # The user signs out at the provider itself (its own end-session page, not rpkit's logout).
    visit.page.goto(f"{op.issuer}/session/end")
    confirm_logout_at_op(visit, "fc")
    visit.page.wait_for_url(f"{op.issuer}/session/end/success**")
    visit.shot("op-signed-out")

    page = op.wait_for("frontchannel.page")
    route = frontchannel_uri(app.urls, "fc")
    assert [frame.split("?")[0] for frame in page["frames"]] == [route], list(lines(op.records))
    framed = [r for r in visit.received if r.url.split("?")[0] == route]
    assert len(framed) == 1
    assert framed[0].status == 200
    assert framed[0].frame.parent_frame is not None  # loaded in the provider's iframe
    headers = framed[0].all_headers()
    assert headers["content-security-policy"] == f"frame-ancestors {op.issuer}"
    assert headers["cache-control"] == "no-cache, no-store"
    # Cross-site frame: the SameSite=Lax session cookie did not come along.
    assert SESSION_COOKIE not in framed[0].request.all_headers().get("cookie", "")
    assert visit.cookie(SESSION_COOKIE) is not None  # still in the browser, but worthless

    after = visit.profile(app.origin)
    assert after == {"subject": None}
