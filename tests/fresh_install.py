"""Helpers for the tests that install rpkit as a user would: ``make dist``'s wheels, built once
per test run, and fresh virtualenvs (dependencies come from the package index pip is configured
with, through pip's cache)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAMP = REPO / ".venv" / ".rpkit-installed"
PIP_TIMEOUT = 240


@functools.cache
def wheels() -> dict[str, Path]:
    """``make dist`` into a temporary folder: distribution name → wheel. ``-o`` keeps make from
    reinstalling the development virtualenv first."""
    out = Path(tempfile.mkdtemp(prefix="rpkit-dist-"))
    subprocess.run(  # noqa: S603 - a fixed command line
        ["make", "-s", "-o", str(STAMP), "dist", f"DIST={out}"],  # noqa: S607 - make from PATH
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=PIP_TIMEOUT,
    )
    return {path.name.split("-")[0]: path for path in sorted(out.glob("*.whl"))}


def fresh_venv(path: Path) -> Path:
    """A new virtualenv of the running interpreter's base Python; its ``bin`` folder."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    python = base if base.exists() else Path(sys.executable)
    subprocess.run([str(python), "-m", "venv", str(path)], check=True, timeout=120)  # noqa: S603
    return path / "bin"


def run(bin_dir: Path, *args: str, cwd: Path | None = None, **env: str) -> str:
    """Run a program of the virtualenv; its output (stdout and stderr) when it succeeds."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    environment |= {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(  # noqa: S603 - the tests' own command lines
        [str(bin_dir / args[0]), *args[1:]],
        cwd=cwd,
        env=environment | env,
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{output[-3000:]}"
    return output
