"""Checklist group L, rows 50–54: RP-initiated logout and back-channel logout tokens, end to end
against the fake OP."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from rpkit.client import RelyingParty
from rpkit.errors import LogoutTokenValidationError
from rpkit.testing import ABSENT, DEFAULT_CLIENT_ID, FakeClient, LogoutDefect
from tests.checklist.conftest import Harness

SIGNED_OUT = "https://app.rpkit.test/signed-out"


@pytest.fixture
def logout_harness(harness: Harness) -> Harness:
    """The harness with a post-logout return registered at the OP and configured in rpkit."""
    harness.op.register_client(FakeClient(post_logout_redirect_uris=(SIGNED_OUT,)))
    harness.reconfigure(post_logout_redirect_uri=SIGNED_OUT)
    return harness


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def endpoint_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


# -- row 50 -----------------------------------------------------------------------------------
@pytest.mark.checklist(50)
async def test_rp_initiated_logout_is_accepted_by_the_op_and_its_return_is_matched(
    logout_harness: Harness,
):
    h = logout_harness
    login = await h.login()
    sid = login.id_token.sid
    assert sid in h.op.sessions

    request = await h.rp.begin_logout("fake", id_token_hint=login.tokens.id_token, return_to="/bye")

    assert request.url is not None
    assert request.state is not None
    assert endpoint_of(request.url) == h.op.endpoints["end_session"]
    assert query(request.url) == {
        "id_token_hint": [login.tokens.id_token],
        "post_logout_redirect_uri": [SIGNED_OUT],
        "state": [request.state],
        "client_id": [DEFAULT_CLIENT_ID],
    }
    back = await h.op.approve(request.url)
    assert h.op.oracle.last("end_session").outcome == "ok"
    assert sid not in h.op.sessions
    assert back.url == SIGNED_OUT
    assert back.params == (("state", request.state),)

    returned = await h.rp.complete_logout(back.params)

    assert returned.matched is True
    assert returned.return_to == "/bye"


@pytest.mark.checklist(50)
async def test_each_logout_has_a_fresh_state_used_once(logout_harness: Harness):
    h = logout_harness
    login = await h.login()
    hint = login.tokens.id_token

    first = await h.rp.begin_logout("fake", id_token_hint=hint)
    second = await h.rp.begin_logout("fake", id_token_hint=hint)
    back = await h.op.approve(first.url or "")
    once = await h.rp.complete_logout(back.params)
    again = await h.rp.complete_logout(back.params)

    assert first.state != second.state
    assert len(first.state or "") >= 43  # 32 random bytes
    assert (once.matched, once.return_to) == (True, "/")
    assert (again.matched, again.return_to) == (False, None)


@pytest.mark.checklist(50)
async def test_expired_id_token_hint_is_still_sent_and_accepted(logout_harness: Harness):
    h = logout_harness
    login = await h.login()
    later = time.time() + 7200
    assert login.id_token.exp < later
    h.op.misbehave.clock_offset = 7200
    rp = RelyingParty([h.config], http=h.http, store=h.store, clock=lambda: later)

    request = await rp.begin_logout("fake", id_token_hint=login.tokens.id_token)
    back = await h.op.approve(request.url or "")

    assert query(request.url or "")["id_token_hint"] == [login.tokens.id_token]
    assert h.op.oracle.last("end_session").outcome == "ok"
    assert (await rp.complete_logout(back.params)).matched is True


# -- row 51 -----------------------------------------------------------------------------------
@pytest.mark.checklist(51)
@pytest.mark.parametrize("mode", ["other", "missing", "altered"])
async def test_logout_return_with_another_or_no_state_is_not_matched(
    logout_harness: Harness, mode: str
):
    h = logout_harness
    login = await h.login()
    h.op.misbehave.logout_state = mode  # type: ignore[assignment]
    request = await h.rp.begin_logout(
        "fake", id_token_hint=login.tokens.id_token, return_to="/account"
    )
    back = await h.op.approve(request.url or "")
    assert h.op.oracle.last("end_session").outcome == "ok"
    assert back.url == SIGNED_OUT
    assert ("state", request.state) not in back.params

    returned = await h.rp.complete_logout(back.params)

    assert returned.matched is False
    assert returned.return_to is None


@pytest.mark.checklist(51)
async def test_logout_return_with_the_state_twice_is_not_matched(logout_harness: Harness):
    h = logout_harness
    login = await h.login()
    request = await h.rp.begin_logout("fake", id_token_hint=login.tokens.id_token)
    back = await h.op.approve(request.url or "")

    returned = await h.rp.complete_logout([*back.params, *back.params])

    assert (returned.matched, returned.return_to) == (False, None)


# -- row 52 -----------------------------------------------------------------------------------
@pytest.mark.checklist(52)
async def test_without_an_end_session_endpoint_logout_is_local_only(logout_harness: Harness):
    h = logout_harness
    h.op.misbehave.metadata = {"end_session_endpoint": ABSENT}
    login = await h.login()

    request = await h.rp.begin_logout(
        "fake", id_token_hint=login.tokens.id_token, return_to="/account"
    )

    assert request.url is None
    assert request.state is None
    assert h.op.oracle.count("end_session") == 0


@pytest.mark.checklist(52)
@pytest.mark.parametrize(
    "return_to",
    ["https://evil", "https://evil.example/", "//evil.example", "/\\evil.example", "%2F%2Fevil"],
)
async def test_unsafe_logout_return_to_is_replaced_by_the_root(
    logout_harness: Harness, return_to: str
):
    h = logout_harness
    login = await h.login()

    request = await h.rp.begin_logout(
        "fake", id_token_hint=login.tokens.id_token, return_to=return_to
    )
    back = await h.op.approve(request.url or "")
    returned = await h.rp.complete_logout(back.params)

    assert query(request.url or "")["post_logout_redirect_uri"] == [SIGNED_OUT]
    assert back.url == SIGNED_OUT
    assert (returned.matched, returned.return_to) == (True, "/")


@pytest.mark.checklist(52)
async def test_post_logout_redirect_uri_comes_only_from_config(harness: Harness):
    login = await harness.login()  # no post_logout_redirect_uri configured

    request = await harness.rp.begin_logout(
        "fake", id_token_hint=login.tokens.id_token, return_to="https://evil.example/"
    )

    assert request.url is not None
    params = query(request.url)
    assert "post_logout_redirect_uri" not in params
    assert "evil" not in request.url
    assert request.state is None
    await harness.op.approve(request.url)
    assert harness.op.oracle.last("end_session").outcome == "ok"


# -- row 53 -----------------------------------------------------------------------------------
@pytest.mark.checklist(53)
async def test_valid_backchannel_logout_token_names_the_session_and_user(harness: Harness):
    login = await harness.login()
    token = harness.op.logout_token()

    logout = await harness.rp.backchannel_logout("fake", token)

    assert logout.sid is not None
    assert logout.sid == login.id_token.sid
    assert logout.sub == login.identity.subject == "alice"
    assert logout.iss == harness.op.issuer


@pytest.mark.checklist(53)
async def test_backchannel_logout_token_may_name_only_the_user_or_only_the_session(
    harness: Harness,
):
    login = await harness.login()
    sid = login.id_token.sid
    assert sid is not None

    by_user = await harness.rp.backchannel_logout("fake", harness.op.logout_token(sub="alice"))
    by_session = await harness.rp.backchannel_logout("fake", harness.op.logout_token(sid=sid))

    assert (by_user.sub, by_user.sid) == ("alice", None)
    assert (by_session.sub, by_session.sid) == (None, sid)


# -- row 54 -----------------------------------------------------------------------------------
DEFECT_REASONS = {
    LogoutDefect.ALG_NONE: "alg",
    LogoutDefect.WRONG_ALG: "alg",
    LogoutDefect.WRONG_ISSUER: "iss",
    LogoutDefect.WRONG_AUD: "aud",
    LogoutDefect.NO_EVENT: "events",
    LogoutDefect.WRONG_EVENT: "events",
    LogoutDefect.WITH_NONCE: "nonce",
    LogoutDefect.NO_SID_NO_SUB: "sub_or_sid",
    LogoutDefect.BAD_SIGNATURE: "signature",
    LogoutDefect.EXPIRED: "exp",
}


@pytest.mark.checklist(54)
def test_every_logout_defect_has_an_expected_reason():
    assert set(DEFECT_REASONS) == set(LogoutDefect)


@pytest.mark.checklist(54)
@pytest.mark.parametrize("defect", list(LogoutDefect), ids=str)
async def test_malformed_backchannel_logout_token_is_rejected(
    harness: Harness, defect: LogoutDefect
):
    await harness.login()
    token = harness.op.logout_token(defect=defect)

    with pytest.raises(LogoutTokenValidationError) as caught:
        await harness.rp.backchannel_logout("fake", token)

    assert caught.value.reason == DEFECT_REASONS[defect]
    # The rejection burnt nothing: an honest token for the same session still works.
    assert (await harness.rp.backchannel_logout("fake", harness.op.logout_token())).sub == "alice"


@pytest.mark.checklist(54)
async def test_replayed_backchannel_logout_token_is_rejected(harness: Harness):
    await harness.login()
    token = harness.op.logout_token()
    await harness.rp.backchannel_logout("fake", token)

    with pytest.raises(LogoutTokenValidationError) as caught:
        await harness.rp.backchannel_logout("fake", token)

    assert caught.value.reason == "replay"


@pytest.mark.checklist(54)
async def test_replay_is_refused_across_relying_party_instances_sharing_a_store(
    harness: Harness,
):
    await harness.login()
    token = harness.op.logout_token()
    await harness.rp.backchannel_logout("fake", token)
    other_worker = harness.reconfigure()  # a fresh RelyingParty on the same store

    with pytest.raises(LogoutTokenValidationError) as caught:
        await other_worker.backchannel_logout("fake", token)

    assert caught.value.reason == "replay"


@pytest.mark.checklist(50)
@pytest.mark.checklist(51)
async def test_logout_return_in_another_browser_is_not_matched(logout_harness: Harness):
    h = logout_harness
    login = await h.login()
    request = await h.rp.begin_logout(
        "fake", id_token_hint=login.tokens.id_token, return_to="/bye", binding="browser-x"
    )
    back = await h.op.approve(request.url or "")

    elsewhere = await h.rp.complete_logout(back.params, binding="browser-y")

    assert elsewhere.matched is False
    assert elsewhere.return_to is None
    # ... and the other browser did not spend the state: the real return still matches.
    home = await h.rp.complete_logout(back.params, binding="browser-x")
    assert home.matched is True
    assert home.return_to == "/bye"
