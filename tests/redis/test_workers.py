"""Two worker processes behind one public origin, sharing Redis: logins move between workers,
one-time values are spent once, a session's refresh reaches the OP once, and a Redis outage
fails requests promptly instead of hanging them.

The passwordless limits across workers are in ``test_passwordless_limits.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import httpx

from tests.litestar.conftest import set_cookies
from tests.redis.app import REDIS_TIMEOUT
from tests.redis.conftest import (
    USERS,
    Browser,
    Browsers,
    Cluster,
    Worker,
    code_requests,
    refresh_requests,
)

SESSION_COOKIE = "rpkit_session"
JSON = {"accept": "application/json"}


async def sign_in(browser: Browser, start: Worker, finish: Worker, user: str) -> httpx.Response:
    """Start a login on ``start``, let the OP sign ``user`` in, deliver the callback to
    ``finish``; returns the callback's response."""
    callback = await browser.authorize(await browser.start_login(start, user))
    return await browser.get(finish.route(callback))


async def signed_in_with_due_tokens(cluster: Cluster, browser: Browser, user: str) -> None:
    """Sign ``user`` in with an access token that is due for refresh at once (its lifetime is
    below the app's ``refresh_before``); tokens issued afterwards live an hour."""
    cluster.op.access_token_lifetime = 30
    landed = await sign_in(browser, cluster.a, cluster.b, user)
    assert landed.status_code == 303, landed.text
    cluster.op.access_token_lifetime = 3600


# -- logins across workers --------------------------------------------------------------------
async def test_200_logins_started_on_one_worker_complete_on_the_other(
    fresh: Cluster, browsers: Browsers
):
    limit = asyncio.Semaphore(32)

    async def login(n: int) -> tuple[str, int, str | None, str | None, str | None]:
        user = USERS[n % len(USERS)].sub
        browser = browsers.new()
        async with limit:
            landed = await sign_in(browser, fresh.a, fresh.b, user)
            on_b, on_a = await browser.subject(fresh.b), await browser.subject(fresh.a)
        return user, landed.status_code, landed.headers.get("location"), on_b, on_a

    outcomes = await asyncio.gather(*(login(n) for n in range(200)))

    wrong = [o for o in outcomes if o[1:] != (303, "/", o[0], o[0])]
    assert wrong == []
    codes = code_requests(fresh.op)
    assert len(codes) == len(set(codes)) == 200
    assert all(r.outcome == "ok" for r in fresh.op.oracle.of("token"))
    assert fresh.op.oracle.reused_values() == {}


async def test_one_callback_sent_to_both_workers_at_once_signs_in_exactly_once(
    fresh: Cluster, browsers: Browsers
):
    for user in (u.sub for u in USERS[:10]):
        browser = browsers.new()
        callback = await browser.authorize(await browser.start_login(fresh.a, user))

        both = [browser.get(worker.route(callback)) for worker in fresh.workers]
        responses = await asyncio.gather(*both)

        won = [r for r in responses if r.status_code == 303]
        lost = [r for r in responses if r.status_code != 303]
        assert len(won) == len(lost) == 1, [r.status_code for r in responses]
        assert won[0].headers["location"] == "/"
        assert SESSION_COOKIE in set_cookies(won[0])
        assert lost[0].status_code == 400
        assert lost[0].json()["code"] == "invalid_state"  # an httpx client: problem details
        assert SESSION_COOKIE not in set_cookies(lost[0])
        assert [await browser.subject(w) for w in fresh.workers] == [user, user]

    codes = code_requests(fresh.op)
    assert len(codes) == len(set(codes)) == 10, "a callback reached the token endpoint twice"


# -- refresh across workers -------------------------------------------------------------------
async def test_a_due_refresh_hit_on_both_workers_at_once_reaches_the_op_once(
    fresh: Cluster, browsers: Browsers
):
    people = [(browsers.new(), user.sub) for user in USERS[:5]]
    for browser, user in people:
        await signed_in_with_due_tokens(fresh, browser, user)
    fresh.op.oracle.clear()
    fresh.op.misbehave.latency = {"token": 0.5}  # the first refresh is still running when
    # the other worker's requests arrive

    hits = [
        browser.get(worker.route("/session"))
        for browser, _ in people
        for worker in fresh.workers
        for _ in range(3)
    ]
    responses = await asyncio.gather(*hits)

    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    seen = [r.json() for r in responses]
    for n, (_, user) in enumerate(people):
        mine = seen[6 * n : 6 * n + 6]
        assert {s["subject"] for s in mine} == {user}
        assert len({s["access_token"] for s in mine}) == 1, "a worker kept the old token"
    presented = refresh_requests(fresh.op)
    assert len(presented) == len(set(presented)) == 5, "a refresh token was replayed"
    assert all(r.outcome == "ok" for r in fresh.op.oracle.of("token"))

    fresh.op.misbehave.latency = {}
    for browser, user in people:
        assert [await browser.subject(w) for w in fresh.workers] == [user, user]
    assert len(refresh_requests(fresh.op)) == 5


async def test_a_refused_refresh_hit_on_both_workers_ends_the_session_with_one_request(
    fresh: Cluster, browsers: Browsers
):
    browser = browsers.new()
    await signed_in_with_due_tokens(fresh, browser, USERS[0].sub)
    fresh.op.oracle.clear()
    fresh.op.misbehave.refresh_error = "invalid_grant"
    fresh.op.misbehave.latency = {"token": 0.3}

    subjects = await asyncio.gather(*(browser.subject(w) for w in fresh.workers))

    assert subjects == [None, None]
    assert len(refresh_requests(fresh.op)) == 1, "the waiting worker replayed the refresh token"
    assert [await browser.subject(w) for w in fresh.workers] == [None, None]
    assert (await browser.get(fresh.a.route("/session"))).json() == {"subject": None}
    assert len(refresh_requests(fresh.op)) == 1


# -- Redis outage -----------------------------------------------------------------------------
async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def test_requests_that_need_the_store_answer_503_while_redis_is_down(
    fresh: Cluster, browsers: Browsers
):
    browser = browsers.new()
    assert (await sign_in(browser, fresh.a, fresh.b, USERS[0].sub)).status_code == 303
    fresh.redis.stop()
    try:
        login = await browser.get(fresh.a.route("/auth/login/fake"), headers=JSON)
        me = await browser.get(fresh.b.route("/me"), headers=JSON)
    finally:
        fresh.redis.start()

    for response in (login, me):
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "store_unavailable"
    assert "rpkit_txn" not in set_cookies(login)


async def test_a_redis_outage_fails_requests_promptly_and_service_recovers_after_restart(
    fresh: Cluster, browsers: Browsers
):
    browser = browsers.new()
    assert (await sign_in(browser, fresh.a, fresh.b, USERS[0].sub)).status_code == 303
    fresh.redis.stop()
    try:
        outcomes = [
            await timed(browser.get(worker.route(path)))
            for worker in fresh.workers
            for path in ("/auth/login/fake", "/me")
        ]
    finally:
        fresh.redis.start()

    for response, elapsed in outcomes:
        assert response.status_code in (500, 503), response.text
        assert "rpkit_txn" not in set_cookies(response)
        assert elapsed < 3.0
    assert all(worker.alive() for worker in fresh.workers)
    # Redis kept nothing (no persistence): the old session is gone, new logins work again.
    assert await browser.subject(fresh.a) is None
    newcomer = browsers.new()
    assert (await sign_in(newcomer, fresh.b, fresh.a, USERS[1].sub)).status_code == 303
    assert [await newcomer.subject(w) for w in fresh.workers] == [USERS[1].sub] * 2


async def test_a_hung_redis_times_out_requests_and_sessions_survive_it(
    fresh: Cluster, browsers: Browsers
):
    browser = browsers.new()
    assert (await sign_in(browser, fresh.a, fresh.b, USERS[0].sub)).status_code == 303
    fresh.redis.pause()
    try:
        response, elapsed = await timed(browser.get(fresh.a.route("/me")))
    finally:
        fresh.redis.resume()

    assert response.status_code in (500, 503), response.text
    assert elapsed < 2 * REDIS_TIMEOUT + 2.0  # the first try and the one retry, then an answer
    assert fresh.a.alive()
    assert [await browser.subject(w) for w in fresh.workers] == [USERS[0].sub] * 2
