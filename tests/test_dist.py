"""``make dist`` builds the wheels of rpkit and of the Scalekit plugin; both install in a fresh
virtualenv (their dependencies from the package index) and import, entry points included."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from tests.fresh_install import fresh_venv, run, wheels

IMPORTS = """
import json, importlib.metadata as md
import rpkit, rpkit.litestar, rpkit.providers.github, rpkit.testing, rpkit_scalekit
print(json.dumps({
    "rpkit": rpkit.__file__,
    "rpkit_scalekit": rpkit_scalekit.__file__,
    "providers": sorted(e.name for e in md.entry_points(group="rpkit.providers")),
    "pytest11": sorted(e.name for e in md.entry_points(group="pytest11")),
}))
"""


def test_make_dist_builds_the_core_and_the_plugin_wheel_with_their_type_markers():
    built = wheels()

    assert sorted(built) == ["rpkit", "rpkit_scalekit"]
    core = zipfile.ZipFile(built["rpkit"]).namelist()
    plugin = zipfile.ZipFile(built["rpkit_scalekit"]).namelist()
    assert "rpkit/py.typed" in core
    assert "rpkit/litestar/cli.py" in core
    assert "rpkit/providers/github.py" in core
    assert "rpkit_scalekit/py.typed" in plugin
    assert not [name for name in core + plugin if name.startswith("tests/")]


def test_the_wheels_install_and_import_in_a_fresh_virtualenv(tmp_path: Path):
    built = wheels()
    bin_dir = fresh_venv(tmp_path / "venv")

    run(bin_dir, "python", "-m", "pip", "install", "--quiet", *map(str, built.values()))
    found = json.loads(run(bin_dir, "python", "-c", IMPORTS, cwd=tmp_path).splitlines()[-1])

    site = str(tmp_path / "venv")
    assert found["rpkit"].startswith(site)  # the installed wheel, not the checkout
    assert found["rpkit_scalekit"].startswith(site)
    assert found["providers"] == ["scalekit"]
    assert {"rpkit", "rpkit_scalekit"} <= set(found["pytest11"])
