"""``litestar rpkit providers`` and ``litestar rpkit check`` against fake OPs."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner
from litestar.cli.main import litestar_group

from rpkit.errors import ConfigurationError
from rpkit.litestar.cli import DUMMY_CODE, install_error_hook
from tests.litestar import cli_app

APP = "tests.litestar.cli_app:app"


def run(*args: str):
    return CliRunner().invoke(litestar_group, ["--app", APP, "rpkit", *args])


@pytest.fixture(autouse=True)
def _honest_oracles():
    fakes = (cli_app.op, cli_app.broken, cli_app.wrong_secret, cli_app.unregistered)
    for fake in fakes:
        fake.oracle.clear()
    return fakes


def _lines(output: str, prefix: str) -> list[str]:
    return [line.removeprefix(prefix) for line in output.splitlines() if line.startswith(prefix)]


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
    assert "broken: discovery failed (issuer_mismatch)" in _lines(result.output, "problem: ")
    assert not [line for line in _lines(result.output, "problem: ") if line.startswith("fake:")]


def test_check_passes_the_right_client_credentials_and_redirect_uri():
    result = run("check")

    ok = _lines(result.output, "ok: ")
    assert "fake: client credentials accepted (only the dummy code was refused)" in ok
    assert (
        "fake: redirect URI https://app.rpkit.test/auth/callback/fake accepted "
        "(the provider sent the browser back)" in ok
    )
    token = cli_app.op.oracle.of("token")
    assert [r.param("code") for r in token] == [DUMMY_CODE]  # one probe, with the dummy code


def test_check_tells_a_wrong_client_secret_from_a_right_one():
    result = run("check")

    problems = _lines(result.output, "problem: ")
    assert result.exit_code == 1
    assert any(
        line.startswith("wrongsecret: the token endpoint refused the client credentials")
        and "(invalid_client)" in line
        for line in problems
    ), problems
    assert cli_app.wrong_secret.oracle.count("token") == 1


def test_check_reports_a_redirect_uri_the_provider_refuses():
    result = run("check")

    problems = _lines(result.output, "problem: ")
    assert (
        "unregistered: the provider refused an authorization request at once (HTTP 400): is "
        "https://app.rpkit.test/auth/callback/unregistered registered as a redirect URI of "
        "client 'rpkit-test-client'?" in problems
    ), problems


def test_check_says_what_it_cannot_check_without_a_login():
    cli_app.op.choose_user = True  # a sign-in page instead of a redirect: nothing to read
    try:
        result = run("check")
    finally:
        cli_app.op.choose_user = False

    unconfirmed = _lines(result.output, "unconfirmed: ")
    assert any(
        line.startswith("fake: redirect URI https://app.rpkit.test/") for line in unconfirmed
    )
    assert "nor the redirect URIs marked unconfirmed: only a real sign-in" in result.output


def test_check_without_probes_sends_no_token_or_authorization_request():
    result = run("check", "--no-probes")

    assert result.exit_code == 1  # broken's discovery still fails
    assert cli_app.op.oracle.count("token") == 0
    assert cli_app.op.oracle.count("authorize") == 0


def test_a_configuration_error_under_the_cli_prints_one_line(capsys):
    previous = sys.excepthook
    try:
        installed = install_error_hook(["/venv/bin/litestar", "--app", "app:app", "rpkit", "check"])
        error = ConfigurationError("provider 'x': issuer must use https")
        sys.excepthook(ConfigurationError, error, None)
    finally:
        sys.excepthook = previous

    assert installed
    assert capsys.readouterr().err == (
        "rpkit: configuration_invalid: provider 'x': issuer must use https\n"
    )


@pytest.mark.parametrize(
    "argv",
    [["/venv/bin/litestar", "run"], ["/venv/bin/uvicorn", "app:app"], ["pytest", "rpkit"]],
)
def test_the_error_hook_stays_away_from_other_command_lines(argv):
    previous = sys.excepthook
    try:
        assert install_error_hook(argv) is False
        assert sys.excepthook is previous
    finally:
        sys.excepthook = previous


def test_a_configuration_error_while_the_app_loads_is_one_line_not_a_traceback(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "badapp.py").write_text(
        "from litestar import Litestar\n"
        "from rpkit import ProviderConfig\n"
        "from rpkit.litestar import RPKitConfig, RPKitPlugin\n"
        "bad = ProviderConfig(id='dev', issuer='http://idp.example', client_id='a', "
        "client_secret='s')\n"
        "app = Litestar(plugins=[RPKitPlugin(RPKitConfig(providers=[bad], secret='x' * 32))])\n"
    )
    litestar = Path(sys.executable).parent / "litestar"
    done = subprocess.run(  # noqa: S603 - the venv's own litestar command
        [str(litestar), "--app", "badapp:app", "rpkit", "check"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("rpkit: configuration_invalid: provider 'dev': issuer must use")
