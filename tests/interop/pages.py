"""A person in headless Chromium: rpkit's login link, oidc-provider's own login, consent and
logout pages, and the app's profile page; a screenshot after every step."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import BrowserContext, Page, Request, Response

STEP_TIMEOUT_MS = 10_000


@dataclass
class Visit:
    """One browser context (its own cookies) and what it sent and received."""

    context: BrowserContext
    page: Page
    screenshots: Path
    sent: list[Request] = field(default_factory=list)
    received: list[Response] = field(default_factory=list)
    _step: int = 0

    @classmethod
    def open(cls, context: BrowserContext, screenshots: Path) -> Visit:
        context.set_default_timeout(STEP_TIMEOUT_MS)
        page = context.new_page()
        visit = cls(context, page, screenshots)
        page.on("request", visit._on_request)
        page.on("response", visit._on_response)
        return visit

    # Methods, not ``list.append``: Playwright tags each listener with an attribute, which a
    # builtin's bound method cannot take.
    def _on_request(self, request: Request) -> None:
        self.sent.append(request)

    def _on_response(self, response: Response) -> None:
        self.received.append(response)

    def shot(self, label: str) -> None:
        self._step += 1
        self.page.screenshot(
            path=self.screenshots / f"{self._step:02d}-{label}.png", full_page=True
        )

    def requests_to(self, url: str) -> list[Request]:
        """Requests the browser sent to ``url`` (query ignored)."""
        return [r for r in self.sent if r.url.split("?")[0] == url]

    def set_cookie_headers(self, url: str) -> list[str]:
        """``Set-Cookie`` values of the responses to ``url`` (query ignored)."""
        return [
            header["value"]
            for response in self.received
            if response.url.split("?")[0] == url
            for header in response.headers_array()
            if header["name"].lower() == "set-cookie"
        ]

    def cookie(self, name: str) -> dict[str, Any] | None:
        return next((dict(c) for c in self.context.cookies() if c["name"] == name), None)

    def profile(self, origin: str) -> dict[str, Any]:
        """What the app's profile page shows (after loading it)."""
        self.page.goto(f"{origin}/profile")
        self.shot("app-profile")
        return shown_profile(self.page)


def shown_profile(page: Page) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(page.text_content("#profile") or "null")
    return shown


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


@dataclass(frozen=True)
class SignIn:
    """What one login went through."""

    authorization: Request
    """The browser's request to the provider's authorization endpoint."""
    callback: Request
    """The browser's request to rpkit's callback (GET or form_post POST)."""
    landed: str
    """The URL the browser ended on."""

    @property
    def authorization_params(self) -> dict[str, list[str]]:
        return query_of(self.authorization.url)

    @property
    def callback_params(self) -> dict[str, list[str]]:
        if self.callback.method == "POST":
            return parse_qs(self.callback.post_data or "", keep_blank_values=True)
        return query_of(self.callback.url)


def sign_in(
    visit: Visit,
    origin: str,
    provider_id: str,
    issuer: str,
    *,
    login: str = "alice",
    expect_profile: bool = True,
    **params: str,
) -> SignIn:
    """Start rpkit's login for ``provider_id``, sign in and consent on oidc-provider's dev
    pages, and return once the browser is back at the app: on ``/profile`` unless
    ``expect_profile`` is False (a login that should fail)."""
    page = visit.page
    query = "&".join(f"{k}={v}" for k, v in {"return_to": "/profile", **params}.items())
    page.goto(f"{origin}/auth/login/{provider_id}?{query}")
    page.wait_for_selector("input[name=login]")
    visit.shot(f"{provider_id}-op-login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    page.wait_for_selector("button:has-text('Continue')")
    visit.shot(f"{provider_id}-op-consent")
    page.click("button:has-text('Continue')")
    page.wait_for_url(f"{origin}/**")
    page.wait_for_load_state()
    visit.shot(f"{provider_id}-back-at-app")
    landed = page.url
    if expect_profile:
        shown = page.text_content("body")
        assert landed == f"{origin}/profile", f"login ended on {landed}: {shown}"
    authorization = visit.requests_to(f"{issuer}/auth")[-1]
    callback = visit.requests_to(f"{origin}/auth/callback/{provider_id}")[-1]
    return SignIn(authorization, callback, landed)


def confirm_logout_at_op(visit: Visit, label: str) -> None:
    """Answer oidc-provider's "Do you want to sign-out?" page with yes."""
    page = visit.page
    page.wait_for_selector("button:has-text('Yes, sign me out')")
    visit.shot(f"{label}-op-logout-prompt")
    page.click("button:has-text('Yes, sign me out')")
    page.wait_for_load_state()
    visit.shot(f"{label}-after-op-logout")
