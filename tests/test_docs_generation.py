"""The generated documentation pages: the conformance page covers every checklist row and
follows the test markers, the configuration reference lists every field, the error table every
code. The generators are the MkDocs hook modules in ``docs/hooks``; the strict docs build runs
them too, and fails as these tests do."""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import msgspec
import pytest

from rpkit import errors

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HOOKS = DOCS / "hooks"
ROWS_FILE = DOCS / "conformance-rows.toml"
CHECKLIST_ROWS = 66


def hook(name: str) -> ModuleType:
    """A module from docs/hooks, imported as MkDocs imports it (its folder on sys.path)."""
    if str(HOOKS) not in sys.path:
        sys.path.insert(0, str(HOOKS))
    return importlib.import_module(name)


conformance = hook("gen_conformance")
config_docs = hook("gen_config")
error_docs = hook("gen_errors")


def write(root: Path, relative: str, source: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def rows_file(root: Path, count: int) -> Path:
    rows = "".join(
        f'\n[[row]]\nnumber = {n}\ngroup = "X"\ntitle = "row {n}"\n' for n in range(1, count + 1)
    )
    return write(root, "rows.toml", f'[groups]\nX = "Group X"\n{rows}')


# -- the conformance page ------------------------------------------------------------------------
def test_every_checklist_row_has_a_title_and_a_covering_test():
    _, rows = conformance.load_rows(ROWS_FILE)
    covered = conformance.by_row(conformance.scan(ROOT))

    assert [row.number for row in rows] == list(range(1, CHECKLIST_ROWS + 1))
    assert set(covered) == set(range(1, CHECKLIST_ROWS + 1))
    page = conformance.render(ROOT, ROWS_FILE)
    for row in rows:
        assert f"| {row.number} | {row.title} |" in page


def test_the_scanner_sees_the_markers_pytest_sees(tmp_path: Path):
    """The AST scanner and pytest's own collection agree, test by test, on the rows covered.

    pytest collects only the test files that mention ``checklist`` (collecting the whole suite
    imports every optional dependency); a marker in any other file would have to come from a
    ``conftest.py`` hook, which neither the scanner nor this test sees.
    """
    out = tmp_path / "collected.json"
    files = [
        path.relative_to(ROOT).as_posix()
        for path in conformance.find_test_files(ROOT)
        if "checklist" in path.read_text(encoding="utf-8")
    ]
    script = textwrap.dedent(
        f"""
        import json, pathlib, sys
        import pytest

        root = pathlib.Path({str(ROOT)!r})
        found = {{}}

        class Collect:
            def pytest_collection_modifyitems(self, items):
                for item in items:
                    rows = {{m.args[0] for m in item.iter_markers("checklist")}}
                    if not rows:
                        continue
                    path = pathlib.Path(item.path).resolve().relative_to(root).as_posix()
                    name = getattr(item, "originalname", item.name)
                    if item.cls is not None:
                        name = f"{{item.cls.__name__}}::{{name}}"
                    found.setdefault(f"{{path}}::{{name}}", set()).update(rows)

        code = pytest.main(
            ["--collect-only", "-q", "-p", "no:cacheprovider", "-m", "checklist", *{files!r}],
            plugins=[Collect()],
        )
        pathlib.Path({str(out)!r}).write_text(
            json.dumps({{k: sorted(v) for k, v in found.items()}})
        )
        sys.exit(int(code))
        """
    )
    run = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    collected = json.loads(out.read_text())
    scanned = {f"{c.path}::{c.test}": sorted(c.rows) for c in conformance.scan(ROOT)}

    assert scanned == collected


def test_a_removed_marker_fails_the_page(tmp_path: Path):
    test_file = write(
        tmp_path,
        "tests/test_rows.py",
        """
        import pytest

        @pytest.mark.checklist(1)
        def test_one():
            pass

        @pytest.mark.checklist(2)
        def test_two():
            pass
        """,
    )
    rows = rows_file(tmp_path, 2)
    assert "test_two" in conformance.render(tmp_path, rows)

    test_file.write_text(test_file.read_text().replace("@pytest.mark.checklist(2)\n", ""))

    with pytest.raises(conformance.ConformanceError, match=r"rows \[2\] have no test"):
        conformance.render(tmp_path, rows)


def test_a_marker_for_a_row_the_checklist_lacks_fails_the_page(tmp_path: Path):
    write(
        tmp_path,
        "tests/test_rows.py",
        """
        import pytest

        @pytest.mark.checklist(1)
        @pytest.mark.checklist(3)
        def test_one():
            pass
        """,
    )

    with pytest.raises(conformance.ConformanceError, match=r"rows \[3\] that the checklist lacks"):
        conformance.render(tmp_path, rows_file(tmp_path, 1))


def test_the_scanner_resolves_every_way_pytest_applies_a_marker(tmp_path: Path):
    write(
        tmp_path,
        "tests/test_forms.py",
        """
        import pytest
        from pytest import mark

        pytestmark = [pytest.mark.checklist(1), pytest.mark.slow]
        ROW_FIVE = 5
        FIVE = pytest.mark.checklist(ROW_FIVE)

        def case(row, value):
            return pytest.param(value, marks=pytest.mark.checklist(row))

        CASES = [case(6, "a"), pytest.param("b", marks=[mark.checklist(7)]), "plain"]

        @mark.checklist(2)
        def test_function():
            pass

        @FIVE
        def test_aliased_mark():
            pass

        @pytest.mark.parametrize("value", CASES)
        def test_parametrized(value):
            pass

        @pytest.mark.checklist(3)
        class TestGroup:
            pytestmark = pytest.mark.checklist(4)

            def test_method(self):
                pass

        def helper_that_is_not_a_test():
            pass
        """,
    )

    found = {c.test: set(c.rows) for c in conformance.scan(tmp_path)}

    assert found == {
        "test_function": {1, 2},
        "test_aliased_mark": {1, 5},
        "test_parametrized": {1, 6, 7},
        "TestGroup::test_method": {1, 3, 4},
    }


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            """
            import pytest

            @pytest.fixture
            @pytest.mark.checklist(1)
            def not_a_test():
                pass
            """,
            "apply to no test",
        ),
        (
            """
            import pytest

            @pytest.mark.checklist(len("ab"))
            def test_computed_row():
                pass
            """,
            "cannot resolve the checklist row",
        ),
    ],
    ids=["marker-on-a-fixture", "computed-row"],
)
def test_a_marker_the_scanner_cannot_attribute_is_an_error(
    tmp_path: Path, source: str, message: str
):
    write(tmp_path, "tests/test_bad.py", source)

    with pytest.raises(conformance.ConformanceError, match=message):
        conformance.scan(tmp_path)


def test_rows_must_be_numbered_in_order(tmp_path: Path):
    path = write(
        tmp_path,
        "rows.toml",
        """
        [groups]
        X = "Group X"

        [[row]]
        number = 2
        group = "X"
        title = "out of order"
        """,
    )

    with pytest.raises(conformance.ConformanceError, match="numbered"):
        conformance.load_rows(path)


# -- the configuration reference -----------------------------------------------------------------
def field_names(dotted: str) -> list[str]:
    module_name, _, name = dotted.rpartition(".")
    cls = getattr(importlib.import_module(module_name), name)
    if issubclass(cls, msgspec.Struct):
        return [f.name for f in msgspec.structs.fields(cls)]
    return [f.name for f in dataclasses.fields(cls) if f.init]  # init=False: derived, no option


@pytest.mark.parametrize("dotted", config_docs.CLASSES)
def test_every_configuration_field_is_in_the_reference(dotted: str):
    section = config_docs.render_class(dotted)

    for name in field_names(dotted):
        assert re.search(rf"^\| `{name}` \| `[^`]+` \| \S", section, re.MULTILINE), name


def test_the_reference_shows_the_real_defaults():
    section = config_docs.render_class("rpkit.litestar.config.RPKitConfig")

    assert '| `flows_store` | `str` | `"rpkit_flows"` |' in section
    assert "| `secret` | `str` | required |" in section
    assert "`28800` (`8 * 3600`)" in section


def test_derived_fields_are_not_listed_as_options():
    section = config_docs.render_class("rpkit.litestar.protected_resource.ProtectedResource")

    assert "| `resource` | `str` | required |" in section
    assert "| `serve_at_root` | `bool` | `False` |" in section
    for derived in ("metadata_url", "metadata_path"):  # field(init=False): set at construction
        assert f"| `{derived}` |" not in section


def test_a_configuration_field_without_a_docstring_fails_the_reference():
    source = textwrap.dedent(
        '''
        class Settings:
            documented: int = 1
            """What it does, and what it costs."""
            undocumented: bool = False
        '''
    )

    with pytest.raises(config_docs.ConfigDocError, match=r"Settings\.undocumented"):
        config_docs.fields_from_source(source, "Settings")


# -- the error-code table ------------------------------------------------------------------------
def test_every_error_code_is_in_the_table():
    table = error_docs.render("errors")
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.RPKitError)
    ]

    assert len(classes) == len(errors.__all__)
    for cls in classes:
        assert f"| `{cls.code}` | `{cls.__name__}`" in table


def test_the_table_follows_the_adapter():
    rows = {row.code: row for row in error_docs.error_rows()}

    assert (rows["invalid_state"].status, rows["unknown_provider"].status) == (400, 404)
    assert rows["login_required"].redirects_to_login
    assert not rows["forbidden"].redirects_to_login


def test_every_bearer_refusal_is_in_the_table():
    table = error_docs.render("bearer")

    refusals = error_docs.bearer_refusals()

    assert {"access_token_missing", "access_token_invalid", "insufficient_scope"} <= set(refusals)
    for code, (status, _, _) in refusals.items():
        assert f"| `{code}` | {status} |" in table
    for reason in error_docs.bearer_reasons():
        assert f"| `{reason}` |" in table


# -- the hand-written pages ----------------------------------------------------------------------
OPTION = re.compile(r"`(ProviderConfig|RPKitConfig|AccessTokenPolicy|OIDCBearerAuth)\.(\w+)`")
OWNERS = {
    "ProviderConfig": "rpkit.config.ProviderConfig",
    "RPKitConfig": "rpkit.litestar.config.RPKitConfig",
    "AccessTokenPolicy": "rpkit.access_token.AccessTokenPolicy",
    "OIDCBearerAuth": "rpkit.litestar.bearer.OIDCBearerAuth",
}


def test_every_option_the_pages_name_exists():
    named = {
        (page.relative_to(DOCS).as_posix(), owner, option)
        for page in DOCS.rglob("*.md")
        for owner, option in OPTION.findall(page.read_text(encoding="utf-8"))
    }
    assert named  # the security model names options this way

    unknown = [entry for entry in named if entry[2] not in field_names(OWNERS[entry[1]])]

    assert unknown == []


def test_every_generated_section_is_on_a_page_and_every_placeholder_is_known():
    generated = hook("generated_pages")
    used = [
        name
        for page in DOCS.rglob("*.md")
        for name in generated.PLACEHOLDER.findall(page.read_text(encoding="utf-8"))
    ]

    assert sorted(used) == sorted(generated.GENERATORS)
