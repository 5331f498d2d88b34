"""``FakeOP(choose_user=True)``: with no ``login_hint``, the fake shows a login page listing its
users; each link signs that user in, and ``approve()`` still picks the current user."""

from __future__ import annotations

import httpx
import pytest

from rpkit.testing import DEFAULT_CLIENT_ID, FakeOP
from tests.testing.conftest import PlainRP


@pytest.fixture
def chooser() -> FakeOP:
    return FakeOP(choose_user=True)


@pytest.fixture
def chooser_rp(chooser: FakeOP) -> PlainRP:
    return PlainRP(chooser, httpx.AsyncClient(transport=chooser.transport()))


def _link(page: str, sub: str) -> str:
    marker = f'data-sub="{sub}" href="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)].replace("&amp;", "&")


async def test_a_request_without_login_hint_shows_a_page_listing_every_user(chooser, chooser_rp):
    page = await chooser.handle(httpx.Request("GET", chooser_rp.authorization_url()))

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert 'id="user-alice"' in page.text
    assert 'id="user-bob"' in page.text
    assert "bob@example.org" in page.text
    assert DEFAULT_CLIENT_ID in page.text
    assert chooser.codes == {}  # nothing issued before a user is picked
    assert chooser.sessions == {}


async def test_following_bobs_link_signs_bob_in(chooser, chooser_rp):
    url = chooser_rp.authorization_url()
    page = await chooser.handle(httpx.Request("GET", url))

    answer = await chooser.approve(_link(page.text, "bob"))
    tokens = await chooser_rp.exchange(answer.get("code") or "")

    assert answer.get("state") == chooser_rp.state
    assert tokens.status_code == 200
    assert chooser.access_tokens[tokens.json()["access_token"]].user.sub == "bob"
    assert [r.outcome for r in chooser.oracle.of("authorize")] == ["chooser", "ok"]


async def test_approve_picks_the_current_user_on_the_page(chooser, chooser_rp):
    chooser.login_as("bob")

    answer = await chooser.approve(chooser_rp.authorization_url())

    assert answer.method == "GET"
    assert chooser.codes[answer.get("code") or ""].user.sub == "bob"
    assert chooser.oracle.count("authorize") == 2


async def test_a_login_hint_or_prompt_none_skips_the_page(chooser, chooser_rp):
    hinted = await chooser.handle(
        httpx.Request("GET", chooser_rp.authorization_url(login_hint="bob"))
    )
    silent = await chooser.handle(httpx.Request("GET", chooser_rp.authorization_url(prompt="none")))

    assert hinted.status_code == 302
    assert silent.status_code == 302
    assert chooser.oracle.count("authorize") == 2


async def test_a_bad_request_is_refused_before_any_page(chooser, chooser_rp):
    url = chooser_rp.authorization_url(scope="profile")  # no openid

    answer = await chooser.approve(url)

    assert answer.get("error") == "invalid_scope"
    assert chooser.oracle.count("authorize") == 1


async def test_without_the_option_the_fake_still_auto_approves(rp, fake_op):
    answer = await fake_op.approve(rp.authorization_url())

    assert answer.get("code")
    assert fake_op.oracle.count("authorize") == 1
