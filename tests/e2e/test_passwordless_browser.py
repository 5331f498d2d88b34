"""The demo's passwordless journeys when something goes wrong, in headless Chromium: a wrong
code then the right one, six wrong codes, asking for the email twice more, the magic link opened
in another browser, and the callback reloaded after signing in. Every refused step comes back
to the demo's own page (``/verify``) with an inline message; none ends on an error page.

Each journey saves numbered screenshots under pytest's tmp dir. With
``RPKIT_E2E_DOCS_IMAGES=1`` the key page of each journey is also written to
``docs/img/passwordless/`` (the images docs/scalekit.md shows)::

    RPKIT_E2E_DOCS_IMAGES=1 .venv/bin/pytest -q tests/e2e/test_passwordless_browser.py
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import STEP_TIMEOUT_MS, Demo, Person

pytestmark = pytest.mark.e2e

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img" / "passwordless"
VERIFY = re.compile(r"/verify$")
PROFILE = re.compile(r"/profile$")


@pytest.fixture(autouse=True)
def _passwordless_demo(person: Person) -> None:
    person.goto("/")
    if person.page.get_attribute("#email-form", "action") != "/auth/scalekit/start":
        pytest.skip("the demo runs without the Scalekit Litestar plugin: no passwordless pages")


@pytest.fixture
def other(chromium: Any, demo: Demo, person: Person) -> Iterator[Person]:
    """A second browser (its own cookies) of the same person, screenshots beside the first's."""
    context = chromium.new_context()
    context.set_default_timeout(STEP_TIMEOUT_MS)
    shots = person.screenshots / "other-browser"
    shots.mkdir()
    try:
        yield Person(context.new_page(), context, demo, shots)
    finally:
        context.close()


def key_shot(person: Person, name: str, *, docs: bool = False) -> None:
    """A numbered screenshot, and for the pages the docs show, the page's content alone in
    ``docs/img/passwordless/`` when asked."""
    person.shot(name)
    if docs and os.environ.get("RPKIT_E2E_DOCS_IMAGES") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        person.page.locator("body").screenshot(path=DOCS_IMAGES / f"{name}.png")


def latest(person: Person, address: str) -> tuple[str, str]:
    """The code and magic link of the newest email to ``address``, from the dev mailbox."""
    mailbox = person.context.new_page()
    try:
        mailbox.goto(person.demo.app + "/mailbox")
        row = mailbox.locator("tr.email").filter(has=mailbox.locator(".to", has_text=address))
        newest = row.first
        code = newest.locator(".otp").inner_text()
        link = newest.locator("a.magic-link").get_attribute("href")
    finally:
        mailbox.close()
    assert re.fullmatch(r"\d{6}", code)
    assert link
    return code, link


def emails_to(person: Person, address: str) -> int:
    mailbox = person.context.new_page()
    try:
        mailbox.goto(person.demo.app + "/mailbox")
        return mailbox.locator("tr.email .to", has_text=address).count()
    finally:
        mailbox.close()


def submit(person: Person, form: str) -> None:
    """Submit ``form`` (its script fetches the CSRF token first) and wait for the next page."""
    with person.page.expect_navigation():
        person.page.click(f"{form} button[type=submit]")


def start(person: Person, address: str) -> None:
    person.goto("/")
    person.page.fill("#email", address)
    submit(person, "#email-form")
    person.page.wait_for_url(VERIFY)
    assert person.page.locator("#otp").is_visible()


def type_code(person: Person, code: str) -> None:
    person.page.fill("#otp", code)
    submit(person, "#otp-form")


def message(person: Person) -> tuple[str, str]:
    """The inline message: its code (empty for good news) and its text."""
    box = person.page.locator("#passwordless-message")
    return box.get_attribute("data-code") or "", box.inner_text()


def wrong_for(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def test_a_wrong_code_keeps_the_code_form_and_the_right_one_signs_in(person: Person):
    address = "wrong-then-right@example.org"
    start(person, address)
    code, _ = latest(person, address)
    assert message(person) == ("", "We sent an email to w***@example.org. Open it in this browser.")

    type_code(person, wrong_for(code))

    assert person.page.url.endswith("/verify")
    assert message(person) == ("passwordless_invalid", "That code is not valid. 4 attempts left.")
    assert person.page.locator("#otp").is_visible(), "still on the code form"
    assert "rpkit_session" not in person.cookies()
    key_shot(person, "wrong-code", docs=True)

    type_code(person, code)
    person.page.wait_for_url(PROFILE)
    person.shot("profile")
    assert address in person.text("#who")


def test_six_wrong_codes_end_the_email_and_a_new_one_signs_in(person: Person):
    address = "six-wrong@example.org"
    start(person, address)
    code, _ = latest(person, address)
    left = []
    for _ in range(5):
        type_code(person, wrong_for(code))
        left.append(message(person))
    assert [text for _, text in left] == [
        "That code is not valid. 4 attempts left.",
        "That code is not valid. 3 attempts left.",
        "That code is not valid. 2 attempts left.",
        "That code is not valid. 1 attempt left.",
        "That code is not valid. No attempts are left: ask for a new email.",
    ]

    type_code(person, code)  # the sixth, even the right one, is refused

    assert message(person)[0] == "passwordless_attempts_exhausted"
    assert not person.page.locator("#otp").is_visible()
    restart = person.page.locator("#restart-form button")
    assert restart.inner_text() == "Send a new email to s***@example.org"
    key_shot(person, "attempts-exhausted", docs=True)

    submit(person, "#restart-form")
    assert message(person) == ("", "We sent an email to s***@example.org. Open it in this browser.")
    assert emails_to(person, address) == 2
    new_code, _ = latest(person, address)
    type_code(person, new_code)
    person.page.wait_for_url(PROFILE)
    person.shot("profile")


def test_asking_for_the_email_twice_more_confirms_then_says_how_long_to_wait(person: Person):
    address = "resend-twice@example.org"
    start(person, address)
    first_code, _ = latest(person, address)

    submit(person, "#resend-form")
    assert message(person) == (
        "",
        "We sent a new email to r***@example.org. "
        "The code and link of the previous email no longer work.",
    )
    key_shot(person, "resent")
    second_code, _ = latest(person, address)

    submit(person, "#resend-form")
    code, text = message(person)
    assert code == "passwordless_rate_limited"
    wait = re.search(r"Please wait (\d+) seconds? and try again\.", text)
    assert wait, text
    assert 0 < int(wait.group(1)) <= 60
    assert text.startswith("Too many emails to r***@example.org in a short time.")
    assert emails_to(person, address) == 2, "the third email was not sent"
    key_shot(person, "resend-rate-limited", docs=True)

    assert first_code != second_code  # new credentials on resend (a repeat: 1 in a million)
    type_code(person, first_code)
    assert message(person)[0] == "passwordless_invalid"
    type_code(person, second_code)
    person.page.wait_for_url(PROFILE)


def test_a_link_opened_in_another_browser_explains_and_sends_one_for_it(
    person: Person, other: Person
):
    address = "two-browsers@example.org"
    start(person, address)
    _, link = latest(person, address)

    other.page.goto(link)
    other.page.wait_for_url(VERIFY)

    code, text = message(other)
    assert code == "passwordless_other_browser"
    assert "works only in the browser that asked for it" in text
    assert "rpkit_session" not in other.cookies()
    button = other.page.locator("#restart-form button")
    assert button.inner_text() == "Send a new link to this browser"
    key_shot(other, "other-browser", docs=True)

    submit(other, "#restart-form")
    assert message(other) == ("", "We sent an email to t***@example.org. Open it in this browser.")
    _, new_link = latest(other, address)
    assert new_link != link
    other.page.goto(new_link)
    other.page.wait_for_url(PROFILE)
    other.shot("profile")
    assert address in other.text("#who")

    person.page.goto(link)  # the first browser's own link still signs it in
    person.page.wait_for_url(PROFILE)
    person.shot("first-browser-profile")


def test_reloading_the_callback_after_signing_in_shows_the_signed_in_page(person: Person):
    address = "reload-callback@example.org"
    start(person, address)
    _, link = latest(person, address)
    person.page.goto(link)
    person.page.wait_for_url(PROFILE)

    person.navigations.clear()
    person.page.goto(link)  # the link again: a reload of the callback, or a second click
    person.page.wait_for_url(PROFILE)

    assert address in person.text("#who")
    assert any("/passwordless/magic-link/" in url for url in person.navigations)
    key_shot(person, "reloaded-callback")
