"""The conformance page: which tests cover which row of the RP conformance checklist.

Rows are read from ``@pytest.mark.checklist(N)`` markers with :mod:`ast`, without importing the
tests. Markers count wherever pytest would apply them: on a test function or method, on its
class (decorator or ``pytestmark``), in a module-level ``pytestmark``, and on the cases of
``@pytest.mark.parametrize`` (``pytest.param(..., marks=...)``, directly or returned by a
module-level helper called with a literal row). A ``checklist`` marker the scanner cannot
attribute to a test is an error, never a silent miss.

Row titles live in ``docs/conformance-rows.toml``; :func:`render` raises
:class:`ConformanceError` when a row has no covering test or a marker names an unknown row.
"""

from __future__ import annotations

import ast
import html
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

__all__ = [
    "LONG_NAME",
    "TEST_DIRS",
    "ConformanceError",
    "Coverage",
    "Row",
    "by_row",
    "coverage_html",
    "find_test_files",
    "load_rows",
    "render",
    "scan",
    "scan_file",
]

TEST_DIRS = ("tests", "plugins/*/tests")
"""Where the scanner looks for ``test_*.py`` and ``*_test.py`` files (repo-relative globs)."""
MARKER = "checklist"


class ConformanceError(Exception):
    """A marker cannot be resolved, a row is uncovered, or the rows file is malformed."""


@dataclass(frozen=True)
class Row:
    """One checklist row as ``docs/conformance-rows.toml`` titles it."""

    number: int
    group: str
    title: str


@dataclass(frozen=True)
class Coverage:
    """One test function (all its parametrized cases together) and the rows it covers."""

    path: str
    """The test file, relative to the repository root, with ``/`` separators."""
    test: str
    """``test_name`` or ``TestClass::test_name``."""
    line: int
    rows: frozenset[int]


@dataclass
class _Module:
    """What the scanner resolves names against in one test module."""

    path: str
    names: dict[str, ast.expr] = field(default_factory=dict)
    helpers: dict[str, ast.FunctionDef] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)
    """``id()`` of each ``checklist`` call attributed to a test."""


Env = Mapping[str, ast.expr]


def _dotted(node: ast.expr) -> str:
    """``pytest.mark.checklist`` for that attribute chain, "" for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _is_marker_call(node: ast.AST, name: str) -> TypeGuard[ast.Call]:
    """``pytest.mark.<name>(...)``, also spelled ``mark.<name>(...)``."""
    return isinstance(node, ast.Call) and _dotted(node.func).endswith(f"mark.{name}")


def _where(module: _Module, node: ast.AST) -> str:
    return f"{module.path}:{getattr(node, 'lineno', '?')}"


def _lookup(module: _Module, env: Env, name: str) -> ast.expr | None:
    return env[name] if name in env else module.names.get(name)


def _row_number(module: _Module, env: Env, node: ast.expr, depth: int = 0) -> int:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Name) and depth < 8:
        bound = _lookup(module, env, node.id)
        if bound is not None:
            return _row_number(module, env, bound, depth + 1)
    msg = f"{_where(module, node)}: cannot resolve the checklist row {ast.unparse(node)!r}"
    raise ConformanceError(msg)


def _mark_rows(module: _Module, env: Env, node: ast.expr, depth: int = 0) -> set[int]:
    """Rows of a mark expression: one mark, a list or tuple of marks, or a name bound to one."""
    if _is_marker_call(node, MARKER):
        module.seen.add(id(node))
        return {_row_number(module, env, arg) for arg in node.args}
    if isinstance(node, ast.List | ast.Tuple):
        return {row for elt in node.elts for row in _mark_rows(module, env, elt, depth)}
    if isinstance(node, ast.Name) and depth < 8:
        bound = _lookup(module, env, node.id)
        return set() if bound is None else _mark_rows(module, env, bound, depth + 1)
    return set()


def _case_rows(module: _Module, env: Env, node: ast.expr, depth: int = 0) -> set[int]:
    """Rows of one parametrize case: ``pytest.param(..., marks=...)`` or a helper returning it."""
    if not isinstance(node, ast.Call) or depth > 8:
        return set()
    if _dotted(node.func).split(".")[-1] == "param":
        marks = [kw.value for kw in node.keywords if kw.arg == "marks"]
        return _mark_rows(module, env, marks[0]) if marks else set()
    helper = module.helpers.get(_dotted(node.func))
    if helper is None:
        return set()
    bound = _bind(helper, node)
    returns = [n.value for n in ast.walk(helper) if isinstance(n, ast.Return) and n.value]
    return {row for value in returns for row in _case_rows(module, bound, value, depth + 1)}


def _bind(helper: ast.FunctionDef, call: ast.Call) -> dict[str, ast.expr]:
    """The helper's parameters bound to the call's argument expressions."""
    params = [a.arg for a in (*helper.args.posonlyargs, *helper.args.args)]
    bound = dict(zip(params, call.args, strict=False))
    bound.update({kw.arg: kw.value for kw in call.keywords if kw.arg is not None})
    return bound


def _param_rows(module: _Module, node: ast.expr, depth: int = 0) -> set[int]:
    """Rows of a parametrize ``argvalues`` expression."""
    if isinstance(node, ast.List | ast.Tuple):
        return {row for elt in node.elts for row in _case_rows(module, {}, elt)}
    if isinstance(node, ast.Name) and depth < 8:
        bound = module.names.get(node.id)
        return set() if bound is None else _param_rows(module, bound, depth + 1)
    return set()


def _decorator_rows(module: _Module, decorators: Iterable[ast.expr]) -> set[int]:
    rows: set[int] = set()
    for decorator in decorators:
        if _is_marker_call(decorator, "parametrize"):
            values = [kw.value for kw in decorator.keywords if kw.arg == "argvalues"]
            argvalues = decorator.args[1] if len(decorator.args) > 1 else next(iter(values), None)
            if argvalues is not None:
                rows |= _param_rows(module, argvalues)
        else:
            rows |= _mark_rows(module, {}, decorator)
    return rows


def _pytestmark(module: _Module, body: Iterable[ast.stmt]) -> set[int]:
    rows: set[int] = set()
    for statement in body:
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in targets):
            rows |= _mark_rows(module, {}, value)
    return rows


def _tests(
    module: _Module, body: Iterable[ast.stmt], inherited: set[int], prefix: str
) -> Iterator[Coverage]:
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            rows = inherited | _decorator_rows(module, node.decorator_list)
            if rows:
                yield Coverage(module.path, prefix + node.name, node.lineno, frozenset(rows))
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            rows = inherited | _decorator_rows(module, node.decorator_list)
            rows |= _pytestmark(module, node.body)
            yield from _tests(module, node.body, rows, f"{prefix}{node.name}::")


def _module_scope(path: str, tree: ast.Module) -> _Module:
    module = _Module(path)
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if isinstance(target, ast.Name):
                module.names[target.id] = statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            if isinstance(statement.target, ast.Name):
                module.names[statement.target.id] = statement.value
        elif isinstance(statement, ast.FunctionDef) and not statement.name.startswith("test"):
            module.helpers[statement.name] = statement
    return module


def scan_file(path: Path, root: Path) -> list[Coverage]:
    """The tests in one file that carry checklist markers.

    Raises:
        ConformanceError: a ``checklist`` marker that no test picks up, or whose row is not a
            literal integer (or a name bound to one).
    """
    relative = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
    module = _module_scope(relative, tree)
    found = list(_tests(module, tree.body, _pytestmark(module, tree.body), ""))
    stray = [
        node
        for node in ast.walk(tree)
        if _is_marker_call(node, MARKER) and id(node) not in module.seen
    ]
    if stray:
        lines = ", ".join(str(node.lineno) for node in stray)
        msg = (
            f"{relative}: checklist marker(s) on line(s) {lines} apply to no test the docs "
            "scanner understands; put them on the test, its class, pytestmark or pytest.param"
        )
        raise ConformanceError(msg)
    return found


def find_test_files(root: Path, dirs: Iterable[str] = TEST_DIRS) -> list[Path]:
    """Test modules under ``dirs``, in a stable order."""
    files: set[Path] = set()
    for pattern in dirs:
        for directory in root.glob(pattern):
            files.update(directory.rglob("test_*.py"))
            files.update(directory.rglob("*_test.py"))
    return sorted(files)


def scan(root: Path, dirs: Iterable[str] = TEST_DIRS) -> list[Coverage]:
    """Every marked test under ``dirs``."""
    return [coverage for path in find_test_files(root, dirs) for coverage in scan_file(path, root)]


def by_row(coverages: Iterable[Coverage]) -> dict[int, list[Coverage]]:
    """Row number → the tests covering it, in scan order."""
    rows: dict[int, list[Coverage]] = {}
    for coverage in coverages:
        for row in sorted(coverage.rows):
            rows.setdefault(row, []).append(coverage)
    return rows


def load_rows(path: Path) -> tuple[dict[str, str], list[Row]]:
    """Group letters → names, and the rows, from the TOML data file.

    Raises:
        ConformanceError: rows not numbered 1..N in order, or naming an unknown group.
    """
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    groups: dict[str, str] = data["groups"]
    rows = [Row(int(r["number"]), str(r["group"]), str(r["title"])) for r in data["row"]]
    if [row.number for row in rows] != list(range(1, len(rows) + 1)):
        raise ConformanceError(f"{path.name}: rows must be numbered 1, 2, 3... in order")
    unknown = sorted({row.group for row in rows} - set(groups))
    if unknown:
        raise ConformanceError(f"{path.name}: rows name unknown groups {unknown}")
    return groups, rows


def _check(rows: list[Row], covered: Mapping[int, list[Coverage]]) -> None:
    numbers = {row.number for row in rows}
    missing = sorted(numbers - set(covered))
    unknown = sorted(set(covered) - numbers)
    problems = []
    if missing:
        problems.append(f"checklist rows {missing} have no test marked @pytest.mark.checklist(N)")
    if unknown:
        where = sorted({f"{c.path}::{c.test}" for n in unknown for c in covered[n]})
        problems.append(f"markers name rows {unknown} that the checklist lacks: {where}")
    if problems:
        raise ConformanceError("; ".join(problems))


LONG_NAME = 32
"""Test names longer than this may also wrap after an underscore (between two words)."""


def coverage_html(coverage: Coverage) -> str:
    """``path::test`` as inline code that a narrow column wraps only between words: after a
    ``/``, before a ``::`` and, in a long test name, after an ``_`` (``<wbr>``), never inside a
    word. Material's ``word-break: break-word`` on code would otherwise cut names anywhere."""
    path = "/<wbr>".join(html.escape(part) for part in coverage.path.split("/"))
    test = "<wbr>::".join(_name(part) for part in coverage.test.split("::"))
    return f'<code style="word-break:normal">{path}<wbr>::{test}</code>'


def _name(name: str) -> str:
    escaped = html.escape(name)
    return escaped.replace("_", "_<wbr>") if len(name) > LONG_NAME else escaped


def render(root: Path, rows_file: Path) -> str:
    """The Markdown of the coverage tables, one per group.

    Raises:
        ConformanceError: see :func:`scan_file`, :func:`load_rows`; or a row without a test.
    """
    groups, rows = load_rows(rows_file)
    coverages = scan(root)
    covered = by_row(coverages)
    _check(rows, covered)
    files = len({c.path for c in coverages})
    lines = [
        f"All {len(rows)} rows are covered, by {len(coverages)} test functions in {files} files "
        "(a parametrized test counts once).",
        "",
    ]
    for letter, name in groups.items():
        lines += [f"## {letter}: {name}", "", "| # | Case | Covered by |", "|---|---|---|"]
        for row in (r for r in rows if r.group == letter):
            tests = "<br>".join(coverage_html(c) for c in covered[row.number])
            lines.append(f"| {row.number} | {row.title} | {tests} |")
        lines.append("")
    return "\n".join(lines)
