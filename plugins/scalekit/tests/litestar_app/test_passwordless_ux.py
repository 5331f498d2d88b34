"""Passwordless as a person meets it through the application's own page: every refused form
POST comes back to ``passwordless_page`` (POST → 303 → GET) with what the page needs to say,
while JSON clients keep their typed problem responses."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar, Request, get
from litestar.testing import AsyncTestClient

from rpkit.errors import ConfigurationError
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit_scalekit import scalekit
from rpkit_scalekit.litestar import ScalekitLitestarPlugin, passwordless_status
from rpkit_scalekit.passwordless import mask_email
from rpkit_scalekit.testing import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeScalekit

from .conftest import BASE, SECRET, SK, me

EMAIL = "ada@example.com"
PAGE = "/sign-in/email"


@get(PAGE)
async def page(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The application's page, answering with what it would render."""
    status = await passwordless_status(request)
    again = await passwordless_status(request)
    assert again is status, "one answer per request"
    return msgspec.structs.asdict(status)


@dataclass
class Person:
    """One browser on the app: its cookies are the client's jar."""

    client: AsyncTestClient[Litestar]
    fake: FakeScalekit
    rpkit: RPKitPlugin

    async def form(self, path: str, **fields: str) -> httpx.Response:
        token = (await self.client.get(f"{SK}/csrf")).json()["csrf_token"]
        headers = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
        return await self.client.post(
            SK + path, data={**fields, "csrf_token": token}, headers=headers
        )

    async def json(self, path: str, **fields: Any) -> httpx.Response:
        return await self.client.post(SK + path, json=fields)

    async def status(self) -> dict[str, Any]:
        answer: dict[str, Any] = (await self.client.get(PAGE)).json()
        return answer

    async def subject(self) -> str | None:
        subject: str | None = (await self.client.get("/me")).json()["subject"]
        return subject

    def sets_session(self, response: httpx.Response) -> bool:
        name = self.rpkit.runtime.session_cookie
        return any(
            h.startswith(f"{name}=") and "Max-Age=0" not in h
            for h in response.headers.get_list("set-cookie")
        )

    def calls(self, endpoint: str) -> int:
        return self.fake.recording.count(endpoint)  # type: ignore[arg-type]

    def code(self) -> str:
        otp = self.fake.outbox.last(EMAIL).otp
        assert otp is not None
        return otp

    def wrong(self) -> str:
        return "000000" if self.code() != "000000" else "111111"

    def other_browser(self) -> dict[str, str]:
        """Become another browser (no cookies); returns the first one's cookies."""
        saved = dict(self.client.cookies)
        self.client.cookies.clear()
        return saved

    def back_to(self, cookies: dict[str, str]) -> None:
        self.client.cookies.clear()
        for name, value in cookies.items():
            self.client.cookies.set(name, value, domain="app.rpkit.test")


@pytest.fixture
async def open_person(
    fake_scalekit: FakeScalekit,
) -> AsyncIterator[Callable[..., Awaitable[Person]]]:
    async with contextlib.AsyncExitStack() as stack:

        async def open_(**options: Any) -> Person:
            provider = scalekit(fake_scalekit.issuer, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
            rpkit = RPKitPlugin(
                RPKitConfig(providers=[provider], secret=SECRET, base_url=BASE),
                http_transport=fake_scalekit.transport(),
            )
            settings = {"passwordless": True, "verify_page": PAGE, "passwordless_page": PAGE}
            plugin = ScalekitLitestarPlugin(**(settings | options))
            app = Litestar([me, page], plugins=[rpkit, plugin])
            client = await stack.enter_async_context(AsyncTestClient(app, base_url=BASE))
            client.follow_redirects = False
            return Person(client, fake_scalekit, rpkit)

        yield open_


@pytest.fixture
async def person(open_person: Callable[..., Awaitable[Person]]) -> Person:
    return await open_person()


def returns_to_the_page(response: httpx.Response) -> bool:
    """A 303 to the page itself: no address, code or error in the URL."""
    return response.status_code == 303 and response.headers["location"] == PAGE


# -- the code form -------------------------------------------------------------------------------
async def test_a_wrong_code_returns_to_the_code_form_then_the_right_one_signs_in(
    person: Person,
) -> None:
    sent = await person.form("/passwordless/send", email=EMAIL, return_to="/inbox")
    assert returns_to_the_page(sent)
    first = await person.status()
    assert first["sent"]
    assert first["pending"]
    assert first["code"] is None
    assert first["masked_email"] == "a***@example.com"
    assert first["message"] == "We sent an email to a***@example.com. Open it in this browser."

    refused = await person.form("/passwordless/verify", code=person.wrong())

    assert returns_to_the_page(refused)
    assert not person.sets_session(refused)
    status = await person.status()
    assert status["code"] == "passwordless_invalid"
    assert status["step"] == "verify"
    assert status["http_status"] == 400
    assert status["attempts_left"] == 4
    assert status["pending"], "one wrong code keeps the person on the code form"
    assert status["message"] == "That code is not valid. 4 attempts left."
    assert EMAIL not in str(status)
    reread = await person.status()
    assert reread["code"] is None, "the outcome is read once"
    assert reread["pending"]

    done = await person.form("/passwordless/verify", code=person.code())
    assert done.status_code == 303
    assert done.headers["location"] == "/inbox"
    assert person.sets_session(done)
    assert await person.subject() is not None
    assert person.calls("passwordless_verify") == 2


async def test_six_wrong_codes_exhaust_the_email_and_offer_a_new_one(person: Person) -> None:
    await person.form("/passwordless/send", email=EMAIL)
    wrong, left = person.wrong(), []
    for _ in range(5):
        assert returns_to_the_page(await person.form("/passwordless/verify", code=wrong))
        left.append((await person.status())["attempts_left"])
    assert left == [4, 3, 2, 1, 0]

    sixth = await person.form("/passwordless/verify", code=person.code())  # even the right one
    status = await person.status()
    assert returns_to_the_page(sixth)
    assert status["code"] == "passwordless_attempts_exhausted"
    assert status["http_status"] == 429
    assert status["restart"]
    assert status["attempts_left"] == 0
    assert person.calls("passwordless_verify") == 5, "the sixth was refused locally"
    assert not person.sets_session(sixth)

    again = await person.form("/passwordless/restart")
    assert returns_to_the_page(again)
    assert (await person.status())["step"] == "restart"
    assert len(person.fake.outbox.to(EMAIL)) == 2
    done = await person.form("/passwordless/verify", code=person.code())
    assert person.sets_session(done)


async def test_a_malformed_code_returns_to_the_page_and_spends_nothing(person: Person) -> None:
    await person.form("/passwordless/send", email=EMAIL)

    refused = await person.form("/passwordless/verify", code="12 456")

    assert returns_to_the_page(refused)
    status = await person.status()
    assert status["code"] == "passwordless_credential_malformed"
    assert status["pending"]
    assert person.calls("passwordless_verify") == 0


# -- resend ------------------------------------------------------------------------------------
async def test_resend_confirms_and_voids_the_previous_code_then_the_next_waits(
    open_person: Callable[..., Awaitable[Person]], fake_scalekit: FakeScalekit
) -> None:
    fake_scalekit.passwordless.new_credentials_on_resend = True
    person = await open_person(new_credentials_on_resend=True)
    await person.form("/passwordless/send", email=EMAIL)
    old = person.code()

    resent = await person.form("/passwordless/resend")
    status = await person.status()
    assert returns_to_the_page(resent)
    assert status["step"] == "resend"
    assert status["sent"]
    assert status["previous_voided"]
    assert status["message"] == (
        "We sent a new email to a***@example.com. "
        "The code and link of the previous email no longer work."
    )

    limited = await person.form("/passwordless/resend")
    status = await person.status()
    assert returns_to_the_page(limited)
    assert status["code"] == "passwordless_rate_limited"
    assert 0 < status["retry_after"] <= 60
    assert status["message"].startswith("Too many emails to a***@example.com in a short time.")
    assert f"wait {status['retry_after']} second" in status["message"]
    assert status["pending"], "the sign-in still waits for its code"
    assert len(person.fake.outbox) == 2, "the refused resend sent nothing"
    assert person.calls("passwordless_resend") == 1

    assert old != person.code()  # a new code (one chance in a million of a repeat)
    stale = await person.form("/passwordless/verify", code=old)
    assert (await person.status())["code"] == "passwordless_invalid"
    assert not person.sets_session(stale)
    assert person.sets_session(await person.form("/passwordless/verify", code=person.code()))


async def test_resend_without_a_sign_in_says_so(person: Person) -> None:
    refused = await person.form("/passwordless/resend")

    assert returns_to_the_page(refused)
    status = await person.status()
    assert status["code"] == "passwordless_no_login"
    assert status["message"].startswith("No sign-in is in progress in this browser.")
    assert not status["pending"]
    assert not status["restart"]
    assert person.calls("passwordless_resend") == 0

    answer = await person.json("/passwordless/resend")
    assert answer.status_code == 400
    assert answer.json()["code"] == "passwordless_no_login"


async def test_a_rate_limited_send_says_how_long_to_wait(person: Person) -> None:
    await person.form("/passwordless/send", email=EMAIL)
    await person.form("/passwordless/resend")

    refused = await person.form("/start", email=EMAIL)

    assert returns_to_the_page(refused)
    status = await person.status()
    assert status["step"] == "send"
    assert status["code"] == "passwordless_rate_limited"
    assert status["retry_after"] > 0
    assert status["masked_email"] == "a***@example.com"
    assert len(person.fake.outbox) == 2


async def test_an_invalid_email_returns_to_the_page_and_nothing_is_sent(person: Person) -> None:
    refused = await person.form("/start", email="not-an-address")

    assert returns_to_the_page(refused)
    status = await person.status()
    assert status["code"] == "invalid_email"
    assert status["masked_email"] is None
    assert not status["pending"]
    assert len(person.fake.outbox) == 0
    assert person.calls("passwordless_send") == 0


async def test_a_refused_restart_leaves_the_pending_sign_in_as_it_was(person: Person) -> None:
    await person.form("/passwordless/send", email=EMAIL)
    await person.form("/passwordless/resend")
    code = person.code()

    refused = await person.form("/passwordless/restart")

    assert returns_to_the_page(refused)
    status = await person.status()
    assert status["code"] == "passwordless_rate_limited"
    assert status["pending"]
    assert len(person.fake.outbox) == 2
    assert person.calls("passwordless_send") == 1
    assert person.sets_session(await person.form("/passwordless/verify", code=code))


async def test_restart_without_a_last_sign_in_says_so_and_sends_nothing(person: Person) -> None:
    refused = await person.json("/passwordless/restart")

    assert refused.status_code == 400
    assert refused.json()["code"] == "passwordless_no_login"
    assert person.calls("passwordless_send") == 0


# -- magic links -------------------------------------------------------------------------------
async def test_a_link_opened_in_another_browser_offers_a_link_for_that_browser(
    person: Person, fake_scalekit: FakeScalekit
) -> None:
    fake_scalekit.passwordless.method = "LINK"
    await person.form("/passwordless/send", email=EMAIL)
    link = fake_scalekit.outbox.last(EMAIL).link
    assert link
    first = person.other_browser()

    opened = await person.client.get(link)

    assert returns_to_the_page(opened)
    assert not person.sets_session(opened)
    assert person.calls("passwordless_verify") == 0, "never verified in the other browser"
    status = await person.status()
    assert status["code"] == "passwordless_other_browser"
    assert status["restart"]
    assert not status["pending"]
    assert status["masked_email"] == "a***@example.com"
    assert "only in the browser that asked for it" in status["message"]

    again = await person.form("/passwordless/restart")
    assert returns_to_the_page(again)
    assert (await person.status())["pending"]
    new_link = fake_scalekit.outbox.last(EMAIL).link
    assert new_link
    assert new_link != link
    done = await person.client.get(new_link)
    assert done.status_code == 303
    assert person.sets_session(done)

    person.back_to(first)
    assert person.sets_session(await person.client.get(link)), "the first browser's link works"


async def test_a_link_of_the_earlier_form_without_a_reference_still_signs_in(
    person: Person, fake_scalekit: FakeScalekit
) -> None:
    fake_scalekit.passwordless.method = "LINK"
    await person.form("/passwordless/send", email=EMAIL)
    token = fake_scalekit.outbox.last(EMAIL).link_token

    done = await person.client.get(f"{SK}/passwordless/magic-link", params={"link_token": token})

    assert done.status_code == 303
    assert person.sets_session(done)


async def test_reloading_the_callback_while_signed_in_lands_on_the_signed_in_page(
    person: Person, fake_scalekit: FakeScalekit
) -> None:
    fake_scalekit.passwordless.method = "LINK"
    await person.form("/passwordless/send", email=EMAIL, return_to="/inbox")
    link = fake_scalekit.outbox.last(EMAIL).link
    assert link
    assert person.sets_session(await person.client.get(link))

    reloaded = await person.client.get(link)

    assert reloaded.status_code == 303
    assert reloaded.headers["location"] == "/inbox"
    assert not person.sets_session(reloaded)
    assert person.calls("passwordless_verify") == 1
    assert await person.subject() is not None


async def test_a_used_link_without_a_session_says_it_was_used(
    person: Person, fake_scalekit: FakeScalekit
) -> None:
    fake_scalekit.passwordless.method = "LINK"
    await person.form("/passwordless/send", email=EMAIL)
    link = fake_scalekit.outbox.last(EMAIL).link
    assert link
    await person.client.get(link)
    person.other_browser()

    again = await person.client.get(link)

    assert returns_to_the_page(again)
    status = await person.status()
    assert status["code"] == "passwordless_used"
    assert status["restart"]
    assert person.calls("passwordless_verify") == 1


async def test_an_expired_link_returns_to_the_page_with_a_new_email_offered(
    person: Person, fake_scalekit: FakeScalekit
) -> None:
    fake_scalekit.passwordless.method = "LINK"
    await person.form("/passwordless/send", email=EMAIL)
    link = fake_scalekit.outbox.last(EMAIL).link
    assert link
    fake_scalekit.expire_passwordless()

    refused = await person.client.get(link)

    assert returns_to_the_page(refused)
    status = await person.status()
    assert status["code"] == "passwordless_expired"
    assert status["restart"]


async def test_a_code_posted_again_while_signed_in_lands_on_the_signed_in_page(
    person: Person,
) -> None:
    await person.form("/passwordless/send", email=EMAIL, return_to="/inbox")
    code = person.code()
    token = (await person.client.get(f"{SK}/csrf")).json()["csrf_token"]
    await person.client.post(f"{SK}/passwordless/verify", data={"code": code, "csrf_token": token})

    again = await person.form("/passwordless/verify", code=code)

    assert again.status_code == 303
    assert again.headers["location"] == "/"  # the default: this browser's login is gone
    assert person.calls("passwordless_verify") == 1


# -- what stays as it was ----------------------------------------------------------------------
async def test_json_clients_keep_their_typed_problems_and_no_outcome_is_kept(
    person: Person,
) -> None:
    await person.json("/passwordless/send", email=EMAIL)

    refused = await person.json("/passwordless/verify", code=person.wrong())

    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "passwordless_invalid"
    assert (await person.status())["code"] is None


async def test_a_form_from_a_client_that_asks_for_json_gets_json(person: Person) -> None:
    token = (await person.client.get(f"{SK}/csrf")).json()["csrf_token"]

    refused = await person.client.post(
        f"{SK}/passwordless/resend",
        data={"csrf_token": token},
        headers={"accept": "application/json"},
    )

    assert refused.status_code == 400
    assert refused.json()["code"] == "passwordless_no_login"


async def test_email_content_from_a_form_is_still_refused_outright(person: Person) -> None:
    refused = await person.form("/passwordless/send", email=EMAIL, template="SIGNUP")

    assert refused.status_code == 400
    assert "passwordless_email_content_refused" in refused.text
    assert len(person.fake.outbox) == 0


async def test_without_a_page_a_refused_form_gets_the_error_page(
    open_person: Callable[..., Awaitable[Person]],
) -> None:
    person = await open_person(passwordless_page=None)

    refused = await person.form("/passwordless/resend")

    assert refused.status_code == 400
    assert "passwordless_no_login" in refused.text


async def test_a_page_with_nothing_to_say_is_empty(person: Person) -> None:
    status = await person.status()

    assert status["step"] is None
    assert status["message"] is None
    assert not status["pending"]
    assert not status["restart"]


@pytest.mark.parametrize("page_path", ["verify", "https://evil.example/", "//evil.example/"])
def test_the_page_must_be_a_path_on_this_app(page_path: str) -> None:
    with pytest.raises(ConfigurationError, match="passwordless_page"):
        ScalekitLitestarPlugin(passwordless_page=page_path)


@pytest.mark.parametrize(
    ("email", "masked"),
    [("ada@example.com", "a***@example.com"), ("A@Example.COM", "A***@example.com"), ("x", "***")],
)
def test_addresses_are_masked(email: str, masked: str) -> None:
    assert mask_email(email) == masked


async def test_a_malformed_link_reference_is_refused_before_any_lookup(person: Person) -> None:
    before = person.fake.recording.count()

    refused = await person.client.get(
        f"{SK}/passwordless/magic-link/{'x' * 200}", params={"link_token": "abc_l"}
    )

    assert refused.status_code == 400
    assert person.fake.recording.count() == before


# -- the error-code page -----------------------------------------------------------------------
def _error_docs() -> Any:
    """``docs/hooks/gen_errors.py``, imported as MkDocs imports it."""
    hooks = Path(__file__).resolve().parents[4] / "docs" / "hooks"
    if str(hooks) not in sys.path:
        sys.path.insert(0, str(hooks))
    return importlib.import_module("gen_errors")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("passwordless_invalid", 400),
        ("passwordless_attempts_exhausted", 429),
        ("passwordless_rate_limited", 429),
        ("passwordless_no_login", 400),
        ("passwordless_other_browser", 400),
        ("passwordless_expired", 400),
        ("passwordless_used", 400),
        ("passwordless_credential_malformed", 400),
        ("passwordless_email_content_refused", 400),
        ("invalid_email", 400),
        ("scalekit_invalid_input", 400),
        ("scalekit_unavailable", 503),
        ("unsupported_body", 400),
    ],
)
def test_every_code_a_person_meets_is_on_the_error_code_page(code: str, status: int) -> None:
    table = _error_docs().render("scalekit")

    row = next(line for line in table.splitlines() if line.startswith(f"| `{code}` |"))
    cells = [cell.strip() for cell in row.split("|")]
    assert cells[4] == str(status)
    assert len(cells[3]) > 20, "its meaning"


def test_the_page_follows_the_plugins_table() -> None:
    """Every class of rpkit_scalekit.errors has a row, with the status the plugin answers."""
    from rpkit_scalekit import errors

    rows = {row.code: row for row in _error_docs().scalekit_rows()}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, errors.ScalekitError):
            assert value.code in rows
    assert rows["passwordless_no_login"].status == 400
    assert rows["passwordless_attempts_exhausted"].status == 429
