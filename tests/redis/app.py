"""The app each uvicorn worker of ``tests/redis`` runs: rpkit's plugin over Redis stores, signing
users in at a fake OP served on 127.0.0.1.

Run with ``uvicorn tests.redis.app:create_app --factory``; configured by environment variables
(the OP's issuer, the Redis URL, the public origin). The Redis client has short socket timeouts
and a single retry, so an outage answers promptly instead of hanging a request.
"""

from __future__ import annotations

import os
from typing import Any

from litestar import Litestar, get
from litestar.di import NamedDependency
from litestar.stores.redis import RedisStore
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from rpkit import ProviderConfig
from rpkit.client import Identity
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.litestar.session import SessionData
from rpkit.testing import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

PUBLIC_ORIGIN = "http://app.rpkit.test"
"""What the load balancer in front of the workers would answer to; the tests route to a worker."""
SECRET = "redis-workers-test-secret-" + "x" * 32
REDIS_TIMEOUT = 1.0


@get("/health")
async def health() -> str:
    return "ok"


@get("/me")
async def me(rpkit_user: NamedDependency[Identity | None]) -> dict[str, Any]:
    return {"subject": rpkit_user.subject if rpkit_user else None}


@get("/session")
async def session(rpkit_session: NamedDependency[SessionData | None]) -> dict[str, Any]:
    if rpkit_session is None:
        return {"subject": None}
    return {
        "subject": rpkit_session.subject,
        "access_token": rpkit_session.access_token,
        "expires_at": rpkit_session.expires_at,
    }


def redis_client(url: str) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
        retry=Retry(NoBackoff(), 1),  # one retry: a pooled connection may predate a restart
    )


def create_app() -> Litestar:
    redis = redis_client(os.environ["RPKIT_TEST_REDIS_URL"])
    root = RedisStore(redis, namespace="rpkit-test")
    stores = {
        "rpkit_flows": root.with_namespace("flows"),
        "rpkit_sessions": root.with_namespace("sessions"),
    }
    provider = ProviderConfig(
        id="fake",
        issuer=os.environ["RPKIT_TEST_ISSUER"],
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        scopes=("openid", "profile", "email", "offline_access"),
        allow_insecure_http=True,
    )
    config = RPKitConfig(
        providers=[provider],
        secret=SECRET,
        base_url=PUBLIC_ORIGIN,
        insecure_cookies_for_development=True,
        refresh_before=60,
        workers=2,
        http_timeout=5.0,
    )
    return Litestar(
        [health, me, session],
        plugins=[RPKitPlugin(config)],
        stores=stores,
        on_shutdown=[redis.aclose],
    )
