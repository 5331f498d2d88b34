"""The provider matrix, from the presets' own data: :func:`rpkit.providers.preset_infos`.

Each preset module of :mod:`rpkit.providers` describes itself in ``INFO`` (a
:class:`~rpkit.providers.PresetInfo`): login kind, refresh, logout kinds, bearer support, quirks
with their sources, relaxations. The page cannot drift from the code: a preset without ``INFO``,
or a quirk without a source, fails the build.
"""

from __future__ import annotations

from rpkit.providers import PresetInfo, Quirk, preset_infos

__all__ = ["render"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(info: PresetInfo) -> str:
    relaxed = ", ".join(f"`{r}`" for r in info.relaxations) or "none"
    cells = [
        f"[`{info.name}`](#{info.name})",
        info.title,
        "OpenID Connect" if info.kind == "oidc" else "OAuth 2.0 only",
        info.refresh,
        ", ".join(info.logout),
        "yes" if info.bearer else "no",
        relaxed,
    ]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _quirk(quirk: Quirk) -> str:
    if not quirk.source.strip():
        msg = f"quirk {quirk.what!r} has no source"
        raise ValueError(msg)
    source = quirk.source
    link = f"<{source}>" if source.startswith("https://") else f"`{source}`"
    status = "confirmed" if quirk.confirmed else "assumed (no source read)"
    return f"- {_cell(quirk.what)} — {link} ({status})"


def _section(info: PresetInfo) -> str:
    lines = [
        f"### {info.name}",
        "",
        f"**{info.title}**: `from rpkit.providers import {info.name}`; its fake is "
        f"`rpkit.testing.providers`.",
        "",
        *(_quirk(q) for q in info.quirks),
        "",
    ]
    return "\n".join(lines)


def render() -> str:
    """The matrix table, then each preset's quirks with their sources."""
    infos = preset_infos()
    header = [
        "| Preset | Provider | Login | Refresh | Logout | Bearer policy | Relaxations |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = [_row(info) for info in infos.values()]
    sections = [_section(info) for info in infos.values()]
    return "\n".join([*header, *rows, "", "## Quirks and their sources", "", *sections])
