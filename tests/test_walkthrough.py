"""A newcomer follows ``docs/getting-started.md`` ("Add sign-in to a Litestar app" onwards) in a
fresh virtualenv: installs what it says, writes the files it shows, runs their test, serves the
fake OP as it says and runs ``litestar rpkit check`` against it. The page's code blocks are read
from the page itself, so the page cannot drift from what works."""

from __future__ import annotations

import re
import secrets
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.fresh_install import REPO, fresh_venv, run

PAGE = REPO / "docs" / "getting-started.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def walkthrough() -> str:
    text = PAGE.read_text(encoding="utf-8")
    return text[text.index("## Add sign-in to a Litestar app") :]


def blocks(kind: str) -> list[str]:
    return [body for lang, body in FENCE.findall(walkthrough()) if lang == kind]


def files() -> dict[str, str]:
    """Every python or toml block that starts with ``# <file name>``."""
    found = {}
    for lang in ("python", "toml"):
        for body in blocks(lang):
            first = body.splitlines()[0]
            if re.fullmatch(r"# [\w.]+\.(py|toml)", first):
                found[first[2:]] = body
    return found


def commands(program: str) -> list[list[str]]:
    """The ``$ <program> ...`` lines of the console blocks, split as a shell would."""
    lines = [line[2:] for body in blocks("console") for line in body.splitlines()]
    return [shlex.split(line) for line in lines if line.startswith(f"{program} ")]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The newcomer's project folder with the page's files, and its virtualenv's ``bin``."""
    root = tmp_path_factory.mktemp("newcomer")
    bin_dir = fresh_venv(root / ".venv")
    installs = commands("pip")
    assert installs, "the page shows no pip install"
    for command in installs:
        args = [arg.replace("path/to/rpkit", str(REPO)) for arg in command]
        run(bin_dir, *args, "--quiet", cwd=root)
    for name, body in files().items():
        (root / name).write_text(body, encoding="utf-8")
    return root, bin_dir


def test_the_page_shows_the_app_its_test_and_the_pytest_settings():
    assert {"app.py", "test_app.py", "pyproject.toml"} <= set(files())
    assert 'asyncio_mode = "auto"' in files()["pyproject.toml"]
    assert commands("pip")[0][:3] == ["pip", "install", "-e"]
    assert ["pytest", "-q"] in commands("pytest")


def test_the_pages_test_passes_in_a_fresh_virtualenv(project):
    root, bin_dir = project

    output = run(bin_dir, "pytest", "-q", "-p", "no:cacheprovider", cwd=root)

    assert re.search(r"\b1 passed\b", output), output


def test_rpkit_check_passes_against_the_fake_op_the_page_serves(project):
    root, bin_dir = project
    serve = next(c for c in commands("python") if c[1:4] == ["-m", "rpkit.testing", "serve"])
    serve = [("0" if arg == "9400" else arg) for arg in serve]  # any free port, not 9400
    check = next(c for c in commands("litestar") if c[-2:] == ["rpkit", "check"])
    exported = [item for c in commands("export") for item in c[1:]]
    env = dict(i.split("=", 1) for i in exported if re.match(r"[A-Z_]+=[^$]", i))
    served = subprocess.Popen(  # noqa: S603 - the page's own command
        [str(bin_dir / "python"), *serve[1:]],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        printed = _printed(served)
        env |= {
            "OIDC_ISSUER": printed["issuer"],
            "OIDC_CLIENT_SECRET": printed["client_secret"],
            "RPKIT_SECRET": secrets.token_urlsafe(32),
        }
        output = run(bin_dir, *check, cwd=root, **env)
    finally:
        served.send_signal(signal.SIGINT)
        served.communicate(timeout=15)

    assert env["OIDC_CLIENT_ID"] == printed["client_id"]
    assert "ok: main: client credentials accepted" in output
    assert "ok: main: redirect URI http://127.0.0.1:8000/auth/callback/main accepted" in output
    assert "rpkit: configuration looks right" in output


def _printed(process: subprocess.Popen[str]) -> dict[str, str]:
    assert process.stdout is not None
    lines: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while "users" not in lines and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if match := re.match(r"\s+(\w+):\s+(.+)$", line):
            lines[match[1]] = match[2].strip()
    assert "issuer" in lines, lines
    return lines
