"""An API that accepts bearer access tokens from two issuers.

:class:`~rpkit.litestar.OIDCBearerAuth` takes one :class:`~rpkit.access_token.AccessTokenPolicy`
per issuer: each names the only JWKS its tokens are checked against and the audience (this
API's identifier) they must carry. ``/orders`` also needs the ``orders:read`` scope; failures are
401/403 with ``WWW-Authenticate`` and a problem-details body.

Run ``python examples/bearer_api/app.py``: two fake OPs and the API start on 127.0.0.1, and a
token from each is printed for ``curl``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from litestar import Litestar, Request, get

from rpkit.access_token import AccessToken, AccessTokenPolicy
from rpkit.litestar import OIDCBearerAuth, requires_scopes

__all__ = ["API_AUDIENCE", "create_app", "main"]

API_AUDIENCE = "https://orders.api.test"
"""This API's identifier: the ``aud`` every accepted token must carry."""


@get("/whoami", sync_to_thread=False)
def whoami(request: Request[Any, AccessToken, Any]) -> dict[str, Any]:
    return {"issuer": request.auth.iss, "subject": request.auth.sub}


@get("/orders", guards=[requires_scopes("orders:read")], sync_to_thread=False)
def orders(request: Request[Any, AccessToken, Any]) -> dict[str, Any]:
    return {"orders": [], "for": request.auth.sub}


@get("/health", exclude_from_auth=True, sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app(
    issuers: Sequence[tuple[str, str]], *, http: httpx.AsyncClient | None = None
) -> Litestar:
    """The API, accepting tokens from each ``(issuer, jwks_uri)``.

    Args:
        issuers: the accepted issuers with their JWKS URLs (from their discovery documents).
        http: the client for JWKS requests (tests pass one over a fake OP's transport); the
            API opens its own when None.
    """
    policies = [
        AccessTokenPolicy(issuers=(issuer,), jwks_uri=jwks_uri, audience=(API_AUDIENCE,))
        for issuer, jwks_uri in issuers
    ]
    auth = OIDCBearerAuth(policies=policies, realm="orders", http=http, exclude=["^/schema"])
    return Litestar([whoami, orders, health], on_app_init=[auth.on_app_init])


def main() -> None:
    """Serve two fake OPs and the API on 127.0.0.1 until Ctrl-C; print a token of each."""
    from rpkit.testing import FakeClient, FakeOP  # noqa: PLC0415 - development only
    from rpkit.testing.server import (  # noqa: PLC0415
        ServerThread,
        bind_loopback,
        serve_until_interrupted,
    )

    servers, issuers = [], []
    client = FakeClient(client_id="orders-cli", access_token_audience=API_AUDIENCE)
    api_sock = bind_loopback(0)
    for _ in range(2):
        sock = bind_loopback(0)
        op = FakeOP(f"http://127.0.0.1:{sock.getsockname()[1]}", clients=[client])
        issuers.append((op.issuer, op.endpoints["jwks"]))
        servers.append(ServerThread(op.asgi, sock))
        token = op.issue_access_token(client, op.current_user, "openid orders:read")
        print(f"token from {op.issuer}:\n  {token}", flush=True)
    servers.append(ServerThread(create_app(issuers), api_sock))
    for server in servers:
        server.start()
    api = f"http://127.0.0.1:{api_sock.getsockname()[1]}"
    print(f'bearer_api example: curl -H "Authorization: Bearer <token>" {api}/orders', flush=True)
    serve_until_interrupted(servers)


if __name__ == "__main__":
    main()
