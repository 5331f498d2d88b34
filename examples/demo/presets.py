"""The fakes of rpkit's ten provider presets, served on 127.0.0.1 for the demo's home page.

Each fake (``rpkit.testing.providers``) gets this app as a client, and the matching preset
(``rpkit.providers``) is aimed at it: "Sign in with GitHub / Entra ID / Apple ..." works with no
account. The presets' APIs are not wired to the demo's bearer-protected ``/api/me``, which
trusts the generic fake OP and Scalekit only.
"""

from __future__ import annotations

import dataclasses
import secrets
import socket
from collections.abc import Callable
from typing import Any

import msgspec
from idps import IdentityProvider

from rpkit.providers import PRESET_NAMES, preset_infos
from rpkit.testing import providers as fakes
from rpkit.testing.server import bind_loopback

__all__ = ["preset_providers"]

_FORM_POST_NOTE = (
    "answers with query here: form_post needs a SameSite=None; Secure cookie, which a browser "
    "does not keep on http://127.0.0.1"
)


def preset_providers(
    app_url: str, port_for: Callable[[str], int] | None = None
) -> list[IdentityProvider]:
    """One served fake per preset, in the order of :data:`rpkit.providers.PRESET_NAMES`, each on
    ``port_for(name)`` when that port is free (a restart keeps the issuers), else on any."""
    infos = preset_infos()
    made = []
    for name in PRESET_NAMES:
        sock = _bind(port_for(name) if port_for else 0)
        fake = getattr(fakes, fakes._MODULES_BY_PRESET[name])(
            f"http://127.0.0.1:{sock.getsockname()[1]}"
        )
        config = fake.provider_config(**_client(fake, name, app_url))
        banner = {f"fake {name}": fake.origin}
        if config.response_mode == "form_post":
            config = msgspec.structs.replace(config, response_mode="query")
            banner[f"  ({name})"] = _FORM_POST_NOTE
        made.append(
            IdentityProvider(config, infos[name].title, None, fake.asgi, sock, banner, fake)
        )
    return made


def _bind(port: int) -> socket.socket:
    try:
        return bind_loopback(port)
    except OSError:  # taken since the last run: the preset's sessions cannot survive anyway
        return bind_loopback(0)


def _client(fake: Any, name: str, app_url: str) -> dict[str, Any]:
    """Register the demo at ``fake`` like the fake's own default client, with the demo's URLs;
    the preset's arguments that select it."""
    default = next(iter(fake.clients.values()))
    client = dataclasses.replace(
        default,
        client_id=f"rpkit-demo-{name}",
        client_secret=default.client_secret and secrets.token_urlsafe(24),
        redirect_uris=(f"{app_url}/auth/callback/{name}",),
        post_logout_redirect_uris=(f"{app_url}/auth/logout/callback",),
    )
    fake.register_client(client)
    return {
        "client_id": client.client_id,
        "post_logout_redirect_uri": f"{app_url}/auth/logout/callback",
    }
