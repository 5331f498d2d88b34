"""Fakes of the providers :mod:`rpkit.providers` has presets for: the fake OpenID Provider with
each provider's personality (its discovery-document shape, claim names and types, token and
profile responses, endpoints and quirks), in-process and served.

Each fake's ``provider_config(**changes)`` returns the matching preset's configuration aimed at
the fake, so an application's tests run against "Entra ID" without an account.

Example:
    >>> from rpkit.testing.providers import FakeGitHub
    >>> github = FakeGitHub()
    >>> # http = httpx.AsyncClient(transport=github.transport())
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the lazy imports below, spelled out for type checkers
    from rpkit.testing.providers.apple import FakeApple
    from rpkit.testing.providers.auth0 import FakeAuth0
    from rpkit.testing.providers.cognito import FakeCognito
    from rpkit.testing.providers.entra import FakeEntra
    from rpkit.testing.providers.github import FakeGitHub
    from rpkit.testing.providers.gitlab import FakeGitLab
    from rpkit.testing.providers.google import FakeGoogle
    from rpkit.testing.providers.keycloak import FakeKeycloak
    from rpkit.testing.providers.linkedin import FakeLinkedIn
    from rpkit.testing.providers.okta import FakeOkta

__all__ = [
    "FakeApple",
    "FakeAuth0",
    "FakeCognito",
    "FakeEntra",
    "FakeGitHub",
    "FakeGitLab",
    "FakeGoogle",
    "FakeKeycloak",
    "FakeLinkedIn",
    "FakeOkta",
]

_MODULES = {
    "FakeApple": "apple",
    "FakeAuth0": "auth0",
    "FakeCognito": "cognito",
    "FakeEntra": "entra",
    "FakeGitHub": "github",
    "FakeGitLab": "gitlab",
    "FakeGoogle": "google",
    "FakeKeycloak": "keycloak",
    "FakeLinkedIn": "linkedin",
    "FakeOkta": "okta",
}

_MODULES_BY_PRESET = {module: name for name, module in _MODULES.items()}
"""Preset name → the name of its fake's class."""


def __getattr__(name: str) -> Any:
    """Import a fake's module on first use (each fake is its own module)."""
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
