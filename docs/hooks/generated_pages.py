"""MkDocs hook: fill the generated parts of the docs from the code, so they cannot drift.

A page asks for generated Markdown with an HTML comment on a line of its own::

    <!-- rpkit-docgen: configuration -->

The names are the keys of :data:`GENERATORS`. Every generator runs before each build, so a
failure (a checklist row without a test, a configuration field without a docstring) fails the
build even if no page asks for it; an unknown name, or a generator no page uses, fails it too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gen_config
import gen_conformance
import gen_errors
import gen_providers
from mkdocs.exceptions import PluginError

__all__ = [
    "GENERATORS",
    "PLACEHOLDER",
    "DocgenError",
    "on_page_markdown",
    "on_post_build",
    "on_pre_build",
    "on_serve",
]

PLACEHOLDER = re.compile(r"^<!-- rpkit-docgen: ([a-z-]+) -->$", re.MULTILINE)


class DocgenError(PluginError):
    """A generated page could not be built; MkDocs prints the message and stops."""


def _repo_root(config: Any) -> Path:
    return Path(config.config_file_path).resolve().parent


def _conformance(config: Any) -> str:
    rows_file = Path(config.docs_dir) / "conformance-rows.toml"
    return gen_conformance.render(_repo_root(config), rows_file)


GENERATORS: dict[str, Callable[[Any], str]] = {
    "conformance": _conformance,
    "configuration": lambda _: gen_config.render(),
    "errors": lambda _: gen_errors.render("errors"),
    "bearer-errors": lambda _: gen_errors.render("bearer"),
    "scalekit-errors": lambda _: gen_errors.render("scalekit"),
    "providers": lambda _: gen_providers.render(),
}
"""Placeholder name → a function of the MkDocs config returning Markdown."""

_rendered: dict[str, str] = {}
_used: set[str] = set()


def on_pre_build(config: Any) -> None:
    """Run every generator; any failure stops the build with the generator's message."""
    _rendered.clear()
    _used.clear()
    for name, generate in GENERATORS.items():
        try:
            _rendered[name] = generate(config)
        except Exception as exc:
            raise DocgenError(f"generated section {name!r}: {exc}") from exc


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each placeholder with its generated Markdown."""

    def fill(match: re.Match[str]) -> str:
        name = match[1]
        if name not in _rendered:
            known = sorted(GENERATORS)
            msg = f"{page.file.src_uri}: unknown generated section {name!r}; use one of {known}"
            raise DocgenError(msg)
        _used.add(name)
        return _rendered[name]

    return PLACEHOLDER.sub(fill, markdown)


def on_post_build(config: Any) -> None:
    """Fail when a generated section is not on any page (a placeholder was deleted)."""
    unused = sorted(set(GENERATORS) - _used)
    if unused:
        raise DocgenError(f"no page includes the generated sections {unused}")


def on_serve(server: Any, config: Any, builder: Any) -> Any:
    """``mkdocs serve`` rebuilds when the code or the tests the pages come from change."""
    root = _repo_root(config)
    for path in ("src", "tests", "plugins"):
        server.watch(str(root / path))
    return server
