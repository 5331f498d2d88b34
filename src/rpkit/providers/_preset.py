"""What every preset shares: its self-description (:class:`PresetInfo`) and the way a preset
builds its configuration (:func:`build`)."""

from __future__ import annotations

from importlib import import_module
from typing import Any, Literal

import msgspec

from rpkit.config import ProviderConfig

__all__ = ["PRESET_NAMES", "PresetInfo", "Quirk", "build", "preset_infos"]

PRESET_NAMES = (
    "entra",
    "google",
    "apple",
    "github",
    "gitlab",
    "okta",
    "auth0",
    "keycloak",
    "cognito",
    "linkedin",
)
"""Every preset module of :mod:`rpkit.providers`, in the order the docs list them."""


class Quirk(msgspec.Struct, frozen=True, kw_only=True):
    """One way the provider differs from a plain OpenID Provider, and what the preset does."""

    what: str
    """The behaviour, and how the preset handles it, in one sentence."""
    source: str
    """Where it is documented: the provider's page (a URL) or a peer's provider file."""
    confirmed: bool = True
    """False when no source could be read for it and the preset assumes it."""


class PresetInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A preset's self-description, for the generated provider matrix."""

    name: str
    """The module name (``entra``)."""
    title: str
    """The provider's name for people (``Microsoft Entra ID``)."""
    kind: Literal["oidc", "oauth2"]
    refresh: str
    """How refresh tokens are had, or ``no``."""
    logout: tuple[str, ...]
    """Logout kinds: ``rp-initiated``, ``local``, ``back-channel``."""
    bearer: bool
    """Whether the preset builds an :class:`~rpkit.access_token.AccessTokenPolicy` for APIs."""
    quirks: tuple[Quirk, ...]
    relaxations: tuple[str, ...] = ()
    """The named relaxations the preset turns on, each logged at startup."""


def build(settings: dict[str, Any], changes: dict[str, Any]) -> ProviderConfig:
    """The preset's ``settings`` with the caller's ``changes`` applied last."""
    return ProviderConfig(**(settings | changes))


def preset_infos() -> dict[str, PresetInfo]:
    """The :class:`PresetInfo` of every preset, by name (imports each preset module)."""
    infos: dict[str, PresetInfo] = {}
    for name in PRESET_NAMES:
        info = import_module(f"rpkit.providers.{name}").INFO
        if not isinstance(info, PresetInfo) or info.name != name:
            msg = f"rpkit.providers.{name}.INFO must be a PresetInfo named {name!r}"
            raise TypeError(msg)
        infos[name] = info
    return infos
