"""The README's demo command serves the app, the fake OP and the fake Scalekit on 127.0.0.1, signs
people in with either (the fake OP lets them choose alice or bob), logs in one format, and stops
cleanly on Ctrl-C."""

from __future__ import annotations

import html
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rpkit.providers import PRESET_NAMES

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "run.py"
BANNER = re.compile(r"\s+(demo app|dev mailbox|fake OP|OP JWKS|fake Scalekit):\s+(\S+)")
USER_LINK = re.compile(r'<a class="fake-op-user" data-sub="([^"]+)" href="([^"]+)"')
LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d \[(debug|info|warning|error|critical)\s*\] \S")


def _read_urls(process: subprocess.Popen[str], deadline: float) -> dict[str, str]:
    urls: dict[str, str] = {}
    assert process.stdout is not None
    while len(urls) < 5 and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        match = BANNER.match(line)
        if match:
            urls[match.group(1)] = match.group(2)
    return urls


def start_demo(log: Path, **env: str) -> subprocess.Popen[str]:
    """``run.py`` on free ports, logs (stderr) into ``log``; the banner stays on stdout."""
    with log.open("w") as stderr:
        return subprocess.Popen(  # noqa: S603 - our own demo script
            [sys.executable, str(DEMO), "--port", "0", "--op-port", "0", "--scalekit-port", "0"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, **env},
        )


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo") / "stderr.log"


@pytest.fixture(scope="module")
def demo(demo_log: Path) -> Iterator[tuple[dict[str, str], subprocess.Popen[str]]]:
    process = start_demo(demo_log)
    try:
        yield _read_urls(process, time.monotonic() + 30), process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=15)


def _app(urls: dict[str, str]) -> str:
    return urls["demo app"].rstrip("/")


def _sign_in(client: httpx.Client, app: str, start: str, user: str = "alice") -> httpx.Response:
    """Start a login and follow it; on the fake OP's login page, click ``user``."""
    answer = client.get(f"{app}{start}", follow_redirects=True)
    links = {sub: html.unescape(href) for sub, href in USER_LINK.findall(answer.text)}
    if links:
        answer = client.get(links[user], follow_redirects=True)
    return answer


def test_demo_serves_both_fake_providers_and_the_app_on_loopback(demo):
    urls, _ = demo
    discovery = httpx.get(urls["fake OP"], timeout=5)
    scalekit = httpx.get(urls["fake Scalekit"], timeout=5)
    home = httpx.get(urls["demo app"], timeout=5)
    health = httpx.get(_app(urls) + "/health", timeout=5)

    issuer = urls["fake OP"].removesuffix("/.well-known/openid-configuration")
    assert urls["fake OP"].startswith("http://127.0.0.1:")
    assert discovery.json()["issuer"] == issuer
    assert discovery.json()["jwks_uri"] == urls["OP JWKS"]
    assert scalekit.json()["issuer"] == urls["fake Scalekit"].split("/.well-known")[0]
    assert 'id="email-form"' in home.text
    assert "Sign in with the fake OP" in home.text
    assert "Sign in with Scalekit" in home.text
    assert health.json()["issuers"][0] == issuer


def test_signing_in_with_the_fake_op_shows_the_profile_and_calls_the_api(demo):
    urls, _ = demo
    app = _app(urls)
    with httpx.Client(timeout=5) as client:
        profile = _sign_in(client, app, "/auth/login/fake?return_to=/profile")
        called = client.get(f"{app}/profile/api")

    assert profile.url.path == "/profile"
    assert "alice@wonderland.test" in profile.text
    assert "&quot;status&quot;: 200" in called.text
    assert "&quot;subject&quot;: &quot;alice&quot;" in called.text


def test_an_sso_domain_email_signs_in_through_the_fake_scalekit(demo):
    urls, _ = demo
    app = _app(urls)
    with httpx.Client(timeout=5) as client:
        profile = _sign_in(client, app, "/auth/login/scalekit?login_hint=carol@sso.example")
        shown = client.get(f"{app}/profile")

    assert profile.status_code == 200
    assert "Signed in with <b>Scalekit</b> as <b>carol@sso.example</b>" in shown.text


SWITCH_LINK = re.compile(r'<a class="switch-organization" href="([^"]+)">([^<]+)</a>')


def test_an_sso_sign_in_can_switch_organization_from_the_profile(demo):
    urls, _ = demo
    app = _app(urls)
    with httpx.Client(timeout=5) as client:
        _sign_in(client, app, "/auth/login/scalekit?login_hint=alice@sso.example")
        before = client.get(f"{app}/profile")
        links = [(html.unescape(href), label) for href, label in SWITCH_LINK.findall(before.text)]
        [(href, label)] = links
        switched = client.get(f"{app}{href}", follow_redirects=True)

    assert 'id="organization">Signed in to Example Corp' in before.text
    assert label == "Switch organization: Example Labs"
    assert href.startswith("/auth/scalekit/organizations/switch?")
    assert "organization_id=org_300000000000000002" in href
    assert switched.status_code == 200
    assert str(switched.url) == f"{app}/profile"
    assert 'id="organization">Signed in to Example Labs' in switched.text
    assert "&quot;organization&quot;: &quot;org_300000000000000002&quot;" in switched.text
    assert "Switch organization: Example Corp" in switched.text, "and back again"


def test_a_passwordless_sign_in_offers_no_organization_switch(demo):
    urls, _ = demo
    app = _app(urls)
    with httpx.Client(timeout=5) as client:
        sent = client.post(f"{app}/auth/scalekit/start", json={"email": "erin@example.org"})
        assert sent.status_code == 200, sent.text
        mailbox = client.get(urls["dev mailbox"]).text
        code = re.search(r'erin@example.org</td><td><code class="otp">(\d{6})<', mailbox)
        assert code is not None
        verified = client.post(
            f"{app}/auth/scalekit/passwordless/verify", json={"code": code.group(1)}
        )
        shown = client.get(f"{app}/profile")

    assert verified.json()["signed_in"] is True
    assert "Signed in with <b>Scalekit</b> as <b>erin@example.org</b>" in shown.text
    assert "switch-organization" not in shown.text


def test_a_passwordless_code_read_from_the_dev_mailbox_signs_in(demo):
    urls, _ = demo
    app = _app(urls)
    with httpx.Client(timeout=5) as client:
        sent = client.post(f"{app}/auth/scalekit/start", json={"email": "dora@example.org"})
        mailbox = client.get(urls["dev mailbox"])
        code = re.search(
            r'<td class="to">dora@example.org</td><td><code class="otp">(\d{6})<', mailbox.text
        )
        assert code is not None
        verified = client.post(
            f"{app}/auth/scalekit/passwordless/verify", json={"code": code.group(1)}
        )
        profile = client.get(f"{app}/profile")

    assert sent.json()["next"] == "verify"
    assert verified.json()["signed_in"] is True
    assert "Signed in with <b>Scalekit</b> as <b>dora@example.org</b>" in profile.text


def test_the_fake_op_lets_the_person_choose_alice_or_bob(demo):
    urls, _ = demo
    app = _app(urls)
    with httpx.Client(timeout=5) as client:
        page = client.get(f"{app}/auth/login/fake?return_to=/profile", follow_redirects=True)
        profile = _sign_in(client, app, "/auth/login/fake?return_to=/profile", user="bob")
        called = client.get(f"{app}/profile/api")

    assert str(page.url).startswith(urls["fake OP"].split("/.well-known")[0] + "/authorize?")
    assert [sub for sub, _ in USER_LINK.findall(page.text)] == ["alice", "bob"]
    assert profile.url.path == "/profile"
    assert "Signed in with <b>the fake OP</b> as <b>bob@builders.test</b>" in profile.text
    assert "&quot;subject&quot;: &quot;bob&quot;" in called.text


def test_the_profile_names_the_provider_and_shows_readable_times(demo):
    urls, _ = demo
    app = _app(urls)
    with httpx.Client(timeout=5) as client:
        profile = _sign_in(client, app, "/auth/login/github?return_to=/profile")

    times = re.search(r'<table id="times">(.*?)</table>', profile.text)
    assert "Signed in with <b>GitHub</b>" in profile.text
    assert times is not None
    assert re.search(
        r"Signed in here</th><td><time [^>]*>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC<", times[1]
    )


def test_the_api_button_is_a_plain_link_and_every_page_has_a_viewport(demo):
    urls, _ = demo
    app = _app(urls)
    with httpx.Client(timeout=5) as client:
        profile = _sign_in(client, app, "/auth/login/fake?return_to=/profile")
        pages = [client.get(f"{app}{path}") for path in ("/", "/mailbox", "/verify")]

    assert '<a class="button" id="call-api" href="/profile/api">' in profile.text
    assert 'action="/profile/api"' not in profile.text  # a GET form would add a stray "?"
    for page in [profile, *pages]:
        assert "<meta name='viewport' content='width=device-width, initial-scale=1'>" in page.text


def test_the_api_refuses_a_request_without_a_bearer_token(demo):
    urls, _ = demo
    answer = httpx.get(_app(urls) + "/api/me", timeout=5)

    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")


def test_logout_ends_the_session_at_the_op_and_comes_back_to_the_app(demo):
    urls, _ = demo
    app = _app(urls)
    with httpx.Client(timeout=5) as client:
        profile = _sign_in(client, app, "/auth/login/fake?return_to=/profile")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', profile.text)
        assert csrf is not None
        back = client.post(
            f"{app}/auth/logout",
            data={"csrf_token": csrf.group(1), "return_to": "/?signed_out=1"},
            follow_redirects=True,
        )
        after = client.get(f"{app}/profile", headers={"Accept": "text/html"})

    hops = [str(r.url) for r in back.history]
    assert any(hop.startswith(urls["fake OP"].split("/.well-known")[0]) for hop in hops)
    assert "You are signed out." in back.text
    assert after.status_code == 303
    assert after.headers["location"].startswith("/?return_to=")


def test_the_home_page_naming_the_signed_in_user_is_not_stored(demo):
    urls, _ = demo
    app = _app(urls)
    with httpx.Client(timeout=5) as client:
        anonymous = client.get(f"{app}/")
        _sign_in(client, app, "/auth/login/fake?return_to=/profile")
        home = client.get(f"{app}/")

    assert "Signed in as" in home.text
    assert home.headers["cache-control"] == "private, no-store"
    assert "no-store" not in anonymous.headers.get("cache-control", "")


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_every_preset_fake_on_the_home_page_signs_in_and_out(demo, preset):
    urls, _ = demo
    app = _app(urls)
    home = httpx.get(urls["demo app"], timeout=5)
    assert f'id="login-{preset}"' in home.text
    with httpx.Client(timeout=5) as client:
        profile = _sign_in(client, app, f"/auth/login/{preset}?return_to=/profile")
        assert profile.url.path == "/profile", profile.text[:300]
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', profile.text)
        assert csrf is not None
        out = client.post(f"{app}/auth/logout", data={"csrf_token": csrf[1]}, follow_redirects=True)
        html = {"Accept": "text/html"}
        after = client.get(f"{app}/profile", headers=html, follow_redirects=False)

    assert out.status_code == 200
    assert out.url.host == "127.0.0.1"
    assert str(out.url).startswith(app)  # back on the demo, whatever the provider's logout kind
    assert after.status_code in (302, 303)  # signed out: the guard turns the browser away


def test_the_console_has_one_log_format_and_no_request_lines(demo, demo_log):
    urls, _ = demo
    with httpx.Client(timeout=5) as client:
        _sign_in(client, _app(urls), "/auth/login/fake?return_to=/profile")
    time.sleep(0.2)  # the log handler writes from the server threads

    lines = [line for line in demo_log.read_text().splitlines() if line.strip()]
    assert any("rpkit.login.completed" in line for line in lines)
    assert [line for line in lines if not LOG_LINE.match(line)] == []
    assert not [line for line in lines if "HTTP Request:" in line]  # httpx's INFO lines


@pytest.mark.parametrize("secret", ["", "   "])
def test_an_empty_secret_counts_as_unset(tmp_path, secret):
    process = start_demo(tmp_path / "log", RPKIT_DEMO_SECRET=secret, RPKIT_DEMO_PRESETS="0")
    try:
        urls = _read_urls(process, time.monotonic() + 30)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)

    assert "demo app" in urls
    assert process.returncode == 0


def test_a_too_short_secret_is_refused_in_one_line(tmp_path):
    log = tmp_path / "log"
    process = start_demo(log, RPKIT_DEMO_SECRET="short", RPKIT_DEMO_PRESETS="0")
    output, _ = process.communicate(timeout=30)

    assert process.returncode == 2
    assert output == ""
    assert log.read_text().splitlines() == [
        "rpkit demo: RPKIT_DEMO_SECRET has 5 characters, 32 at least are needed; unset it for a "
        "fresh random secret per run"
    ]


def test_ctrl_c_stops_the_demo_cleanly(demo):
    _, process = demo
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=15)

    assert process.returncode == 0
    assert "rpkit demo stopped" in output
