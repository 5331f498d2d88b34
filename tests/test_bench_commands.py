"""Every benchmark command that ``bench/README.md`` documents runs as written, in smoke mode.

The commands are read from the README's ``sh`` blocks (each line starting with
``.venv/bin/python bench/``) and run through the shell from the project root, exactly as a
reader would paste them, with ``RPKIT_BENCH_SMOKE=1``: every script honours it by shrinking its
rounds, durations and counts to a few seconds, whatever its arguments. Each must exit 0 and
print one JSON object on stdout with the figures the README (and issue 17) name. Timing is not
checked; the correctness figures (no errors under load, no OP request during it, no JWKS fetch
in the steady state) are.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "bench" / "README.md"
PREFIX = ".venv/bin/python bench/"
KEYS = {
    "validate.py": {"rpkit_cold_over_raw", "rpkit_repeat_over_raw", "jwks_fetches_per_1000"},
    "routes.py": {
        "bearer_over_hello",
        "bearer_nocache_over_hello",
        "session_over_hello",
        "session_dependency_over_hello",
        "errors",
        "op_requests_during_load",
    },
    "scalekit.py": {"sdk_over_rpkit"},
    "logins.py": {
        "rpkit_over_authlib",
        "rpkit_ms_per_login",
        "kib_per_completed_login",
        "abandoned_plateau",
    },
}
"""Per script, the keys its JSON must have."""
COMMON = {"targets", "targets_met", "smoke"}


def documented_commands() -> list[str]:
    """The benchmark commands of the README's ``sh`` blocks, as written."""
    blocks = re.findall(r"^```sh\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)
    lines = (line.strip() for block in blocks for line in block.splitlines())
    return [line for line in lines if line.startswith(PREFIX)]


def script_of(command: str) -> str:
    return command.removeprefix(PREFIX).split()[0]


COMMANDS = documented_commands()


def test_the_readme_documents_every_benchmark():
    documented = {script_of(command) for command in COMMANDS}

    assert documented == set(KEYS)
    assert not (ROOT / "bench" / "http.py").exists()  # it shadowed the standard library's http


@pytest.mark.parametrize("command", COMMANDS, ids=[c.split("#")[0].strip() for c in COMMANDS])
def test_the_documented_command_runs_as_written(command: str):
    if script_of(command) == "routes.py" and shutil.which("wrk") is None:
        pytest.fail("bench/routes.py needs wrk on PATH (apt-get install wrk)")
    env = {**os.environ, "RPKIT_BENCH_SMOKE": "1"}

    run = subprocess.run(  # noqa: S602 - the README's own command, run as a reader would
        command,
        shell=True,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)  # the whole of stdout is one JSON object
    assert isinstance(result, dict)
    assert result.keys() >= KEYS[script_of(command)] | COMMON
    assert result["smoke"] is True
    if "errors" in result:
        assert result["errors"] == 0
        assert result["op_requests_during_load"] == {}
    if "jwks_fetches_per_1000" in result:
        assert result["jwks_fetches_per_1000"] == 0
