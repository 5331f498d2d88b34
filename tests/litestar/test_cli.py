"""``litestar rpkit providers`` and ``litestar rpkit check`` against fake OPs."""

from __future__ import annotations

from click.testing import CliRunner
from litestar.cli.main import litestar_group

APP = "tests.litestar.cli_app:app"


def run(*args: str):
    return CliRunner().invoke(litestar_group, ["--app", APP, "rpkit", *args])


def test_providers_lists_discovery_and_key_status_per_provider():
    result = run("providers")

    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "\t" in line]  # logs share stdout
    lines = dict(line.split("\t", 1) for line in rows)
    assert "discovery=ok\tkeys=4" in lines["fake"]
    assert "discovery=issuer_mismatch\tkeys=-" in lines["broken"]


def test_check_reports_the_issuer_mismatch_and_exits_non_zero():
    result = run("check")

    assert result.exit_code == 1
    assert "broken: discovery failed (issuer_mismatch)" in result.output
    assert "fake:" not in result.output
