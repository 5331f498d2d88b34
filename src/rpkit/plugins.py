"""Discovery of provider plugins through the ``rpkit.providers`` entry-point group.

A provider plugin is a separate distribution that names one object in that group. Importing
rpkit loads no plugin; :func:`provider_plugins` loads them all when asked, and a broken plugin
fails loudly there.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

__all__ = ["ENTRY_POINT_GROUP", "ProviderPlugin", "provider_plugins"]

ENTRY_POINT_GROUP = "rpkit.providers"
"""The entry-point group a provider plugin registers its plugin object in."""


@runtime_checkable
class ProviderPlugin(Protocol):
    """What every provider plugin object offers; the optional hooks grow with the core."""

    @property
    def name(self) -> str:
        """The plugin's identifier, equal to its entry-point name."""
        ...


def provider_plugins() -> dict[str, ProviderPlugin]:
    """Load every installed provider plugin, keyed by entry-point name.

    Raises:
        TypeError: an entry point names an object that is not a provider plugin, or whose
            ``name`` differs from the entry-point name.
    """
    found: dict[str, ProviderPlugin] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        plugin = entry.load()
        if not isinstance(plugin, ProviderPlugin) or plugin.name != entry.name:
            msg = (
                f"entry point {entry.name!r} in {ENTRY_POINT_GROUP!r} must name a provider "
                f"plugin whose name is {entry.name!r}; got {plugin!r}"
            )
            raise TypeError(msg)
        found[entry.name] = plugin
    return found
