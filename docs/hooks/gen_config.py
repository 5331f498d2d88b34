"""The configuration reference: every field of rpkit's configuration classes, from the code.

Names, types and docstrings (the string literal under each field) are read from the source with
:mod:`ast`, because attribute docstrings do not exist at runtime; defaults are read from the
imported class (msgspec or dataclass fields), so they are the values rpkit really uses. Only
what a user passes to the constructor is listed: a dataclass field with ``init=False`` is derived
at construction (``ProtectedResource.metadata_url``) and is no option. A field without a
docstring is an error: the docstring is where its security trade-off is stated.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

__all__ = [
    "CLASSES",
    "ConfigDocError",
    "FieldDoc",
    "defaults",
    "fields_from_source",
    "markdown_text",
    "render",
    "render_class",
]

CLASSES = (
    "rpkit.config.ProviderConfig",
    "rpkit.config.Endpoints",
    "rpkit.config.TenantPolicy",
    "rpkit.hooks.ProviderHooks",
    "rpkit.litestar.config.RPKitConfig",
    "rpkit.access_token.AccessTokenPolicy",
    "rpkit.litestar.protected_resource.ProtectedResource",
    "rpkit.dpop_verify.DPoPPolicy",
)
"""The classes the generated page documents, in page order."""

REQUIRED = "required"
_ROLE = re.compile(r":[a-z]+:`(~?)([^`]+)`")
_DOUBLE_BACKTICKS = re.compile(r"``(.+?)``")
_CODE_SPAN = re.compile(r"(`[^`]*`)")


class ConfigDocError(Exception):
    """A documented class or field cannot be found, or a field has no docstring."""


@dataclass(frozen=True)
class FieldDoc:
    """One configuration field as the source declares it."""

    name: str
    annotation: str
    docstring: str
    default_source: str | None
    """The default expression as written, or None when the field has none."""


def _class_node(tree: ast.Module, name: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise ConfigDocError(f"class {name} not found")


def fields_from_source(source: str, class_name: str) -> list[FieldDoc]:
    """The annotated fields of ``class_name`` in ``source``, in order, with their docstrings.

    ``ClassVar`` annotations are skipped. Raises :class:`ConfigDocError` for a field without a
    docstring.
    """
    body = _class_node(ast.parse(source), class_name).body
    found = []
    for index, node in enumerate(body):
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        annotation = ast.unparse(node.annotation)
        if annotation.startswith(("ClassVar", "typing.ClassVar")):
            continue
        following = body[index + 1] if index + 1 < len(body) else None
        if not (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            msg = f"{class_name}.{node.target.id} has no docstring: say what it does and costs"
            raise ConfigDocError(msg)
        default = ast.unparse(node.value) if node.value is not None else None
        found.append(
            FieldDoc(node.target.id, annotation, inspect.cleandoc(following.value.value), default)
        )
    return found


def _show(value: Any) -> str:
    """A default value as Python source, with sets sorted so the page is stable."""
    if isinstance(value, frozenset | set):
        items = ", ".join(_show(item) for item in sorted(value))
        return f"frozenset({{{items}}})" if value else "frozenset()"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple):
        inner = ", ".join(_show(item) for item in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def defaults(cls: type) -> dict[str, str]:
    """Constructor field name → the default as shown on the page (``required`` when there is
    none). Every field of a msgspec ``Struct`` is a constructor argument; a dataclass field
    with ``init=False`` is not, and is left out."""
    shown: dict[str, str] = {}
    if isinstance(cls, type) and issubclass(cls, msgspec.Struct):
        for info in msgspec.structs.fields(cls):
            if info.default is not msgspec.NODEFAULT:
                shown[info.name] = _show(info.default)
            elif info.default_factory is not msgspec.NODEFAULT:
                shown[info.name] = _show(info.default_factory())
            else:
                shown[info.name] = REQUIRED
        return shown
    for item in dataclasses.fields(cls):
        if not item.init:
            continue
        if item.default is not dataclasses.MISSING:
            shown[item.name] = _show(item.default)
        elif item.default_factory is not dataclasses.MISSING:
            shown[item.name] = _show(item.default_factory())
        else:
            shown[item.name] = REQUIRED
    return shown


def markdown_text(docstring: str) -> str:
    """A reST-flavoured docstring as one line of Markdown for a table cell."""
    text = " ".join(docstring.split())
    text = _ROLE.sub(lambda m: f"``{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}``", text)
    text = _DOUBLE_BACKTICKS.sub(r"`\1`", text)
    # Pipes outside code spans would split the table cell; inside them they are fine.
    return "".join(
        part if part.startswith("`") else part.replace("|", "\\|")
        for part in _CODE_SPAN.split(text)
    )


def _import(dotted: str) -> type:
    module_name, _, class_name = dotted.rpartition(".")
    cls: type = getattr(importlib.import_module(module_name), class_name)
    return cls


def render_class(dotted: str) -> str:
    """One section: a heading and a table of the class's fields."""
    cls = _import(dotted)
    source = Path(inspect.getfile(cls)).read_text(encoding="utf-8")
    documented = fields_from_source(source, cls.__name__)
    shown = defaults(cls)
    missing = sorted(set(shown) - {f.name for f in documented})
    if missing:
        raise ConfigDocError(f"{dotted}: fields {missing} were not found in the source")
    summary = markdown_text((cls.__doc__ or "").strip().split("\n\n")[0])
    lines = [
        f"## `{cls.__name__}`",
        "",
        f"`{dotted}`: {summary} See the [API reference][{dotted}].",
        "",
        "| Option | Type | Default | What it does, and the trade-off |",
        "|---|---|---|---|",
    ]
    for item in (f for f in documented if f.name in shown):
        default = shown[item.name]
        default_cell = default if default == REQUIRED else f"`{default}`"
        written = item.default_source
        expression = ast.parse(written, mode="eval").body if written else None
        if isinstance(expression, ast.Name):
            default_cell = f"`{written}` = {default_cell}"  # a named constant
        elif isinstance(expression, ast.BinOp):
            default_cell += f" (`{written}`)"  # arithmetic, e.g. 8 * 3600
        cells = (f"`{item.name}`", f"`{item.annotation}`", default_cell)
        lines.append(f"| {' | '.join(cells)} | {markdown_text(item.docstring)} |")
    return "\n".join([*lines, ""])


def render(classes: Iterable[str] = CLASSES) -> str:
    """The Markdown of every class's section, in order."""
    return "\n".join(render_class(dotted) for dotted in classes)
