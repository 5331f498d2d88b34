"""Scalekit provider plugin for rpkit.

Registered through the ``rpkit.providers`` entry point. The plugin object is the single value
rpkit loads; everything Scalekit-specific hangs off it.
"""

from __future__ import annotations

from rpkit.plugins import ProviderPlugin

__all__ = ["ScalekitPlugin", "plugin"]


class ScalekitPlugin:
    """The Scalekit plugin as rpkit sees it through the ``rpkit.providers`` entry point."""

    name = "scalekit"
    """Identifier used in configuration and logs."""


plugin: ProviderPlugin = ScalekitPlugin()
"""The object the ``rpkit.providers`` entry point names."""
