"""Presets for the identity providers teams use most: each a function returning the provider's
:class:`~rpkit.config.ProviderConfig` with its quirks filled in.

Import the one you need (``from rpkit.providers import entra``) and call it; every preset takes
``**changes`` that override any :class:`~rpkit.config.ProviderConfig` field last (an ``id``, the
scopes, ``allow_insecure_http`` for a fake served on 127.0.0.1). Each module also has ``INFO``,
a :class:`PresetInfo` describing the provider's login kind, refresh, logout, bearer support,
quirks (each with its source) and relaxations; the documentation's provider matrix is generated
from it. A fake of every provider is in :mod:`rpkit.testing.providers`.

Example:
    >>> from rpkit.providers import github
    >>> config = github.github(client_id="Iv1.abc", client_secret="s3cret")
    >>> config.kind
    'oauth2'
"""

from __future__ import annotations

from rpkit.providers._preset import PRESET_NAMES, PresetInfo, Quirk, preset_infos

__all__ = ["PRESET_NAMES", "PresetInfo", "Quirk", "preset_infos"]
