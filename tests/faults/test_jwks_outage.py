"""The IdP's JWKS endpoint goes down after rpkit cached its keys: tokens signed with a cached
key still sign users in, and a token under an unknown ``kid`` is refused with a typed error and
no session, after at most one refetch attempt."""

from __future__ import annotations

from typing import Any

import pytest

from rpkit.testing import Canned, FakeOP, Tamper
from tests.faults.conftest import OpenApp, login_outcome, sets_session, signed_in_as

TIMEOUT = 0.5
OUTAGES = [
    pytest.param({"respond": {"jwks": Canned.error(503)}}, id="http-503"),
    pytest.param({"latency": {"jwks": TIMEOUT + 1.5}}, id="timeout"),
    pytest.param({"respond": {"jwks": Canned.json({"keys": []})}}, id="empty-set"),
]


@pytest.mark.parametrize("outage", OUTAGES)
async def test_jwks_outage_with_a_warm_cache_keeps_known_keys_and_refuses_unknown_kids(
    open_app: OpenApp, fake_op: FakeOP, outage: dict[str, Any]
):
    browser = await open_app(http_timeout=TIMEOUT)
    assert fake_op.oracle.count("jwks") == 1, "the app did not warm its key cache at startup"
    for knob, value in outage.items():
        setattr(fake_op.misbehave, knob, value)

    known = await login_outcome(browser)
    assert known.status_code == 303, known.text
    assert await signed_in_as(browser) == "alice"
    assert fake_op.oracle.count("jwks") == 1

    fake_op.misbehave.id_token_tamper = Tamper.UNKNOWN_KEY
    userinfo_before = fake_op.oracle.count("userinfo")
    unknown = await login_outcome(browser)
    assert unknown.status_code == 400, unknown.text
    assert unknown.json()["code"] == "id_token_invalid"
    assert not sets_session(unknown)
    assert await signed_in_as(browser) is None
    assert fake_op.oracle.count("userinfo") == userinfo_before
    assert fake_op.oracle.count("jwks") == 2, "the unknown kid did not try one refetch"

    # The failed refetch left the cached keys in place; a second forged kid costs no request.
    fake_op.misbehave.id_token_tamper = None
    assert (await login_outcome(browser)).status_code == 303
    assert await signed_in_as(browser) == "alice"
    fake_op.misbehave.id_token_tamper = Tamper.RANDOM_KID
    again = await login_outcome(browser)
    assert again.status_code == 400
    assert again.json()["code"] == "id_token_invalid"
    assert not sets_session(again)
    assert fake_op.oracle.count("jwks") == 2
