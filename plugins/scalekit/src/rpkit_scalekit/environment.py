"""One Scalekit environment, wired: the clients of this plugin over one HTTP client and one store.

:class:`ScalekitEnvironment` is what an adapter (the Litestar routes) builds once per environment
in its lifespan and hands to its handlers. It creates nothing that does I/O: the M2M token, the
connection lookups and the keys are all fetched on first use.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from rpkit.config import ProviderConfig
from rpkit.jwks import JWKSCache
from rpkit.store import KeyValueStore
from rpkit_scalekit.identity import ScalekitIdentity
from rpkit_scalekit.idp_initiated import IdPInitiatedVerifier
from rpkit_scalekit.limiter import PasswordlessLimiter, PasswordlessLimits
from rpkit_scalekit.management import ManagementClient
from rpkit_scalekit.passwordless import DEFAULT_OTP_LENGTH, PasswordlessClient
from rpkit_scalekit.routing import LoginHintRouting, LoginRouter, RouteHook
from rpkit_scalekit.webhooks import WebhookVerifier

__all__ = ["ScalekitEnvironment"]


class ScalekitEnvironment:
    """The plugin's clients for one environment.

    Args:
        config: the environment's provider configuration (from
            :func:`~rpkit_scalekit.provider.scalekit`).
        http: the application's pooled client; shared by every client here.
        store: the application's store (limiter, webhook replay cache); Redis for several
            workers.
        jwks: the relying party's key cache, so IdP-initiated tokens share its keys.
        api_client_id: the API client for the management API; the application's own client by
            default, as Scalekit's SDK does.
        api_client_secret: its secret.
        route_hook: adjusts each :class:`~rpkit_scalekit.routing.LoginRoute`.
        same_browser_origin: mirror of the dashboard's passwordless policy.
        limits: the local passwordless limits (Scalekit's by default).
        limiter_key: a secret shared by the workers, keying address hashes in the store.
        otp_length: digits of the codes the environment issues (6); any other code is refused
            locally without spending an attempt.
        clock: wall-clock seconds; injectable for tests.

    Attributes:
        api: the management client.
        router: ``login_hint`` routing.
        limiter: the local passwordless limiter.
        passwordless: the passwordless client (behind :attr:`limiter`).
        idp_initiated: the ``idp_initiated_login`` verifier.
    """

    def __init__(
        self,
        config: ProviderConfig,
        *,
        http: httpx.AsyncClient,
        store: KeyValueStore,
        jwks: JWKSCache,
        api_client_id: str | None = None,
        api_client_secret: str | None = None,
        route_hook: RouteHook | None = None,
        same_browser_origin: bool = False,
        limits: PasswordlessLimits | None = None,
        limiter_key: bytes | None = None,
        otp_length: int = DEFAULT_OTP_LENGTH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._store = store
        self._clock = clock
        self.api = ManagementClient(
            http,
            env_url=config.issuer,
            client_id=api_client_id or config.client_id,
            client_secret=api_client_secret or config.client_secret or "",
            allow_insecure_http=config.allow_insecure_http,
            clock=clock,
        )
        self.router = LoginRouter(self.api, hook=route_hook)
        routing = config.hooks.authorization_params
        if isinstance(routing, LoginHintRouting):  # the preset's hook routes with this router
            routing.router = self.router
        mapper = config.hooks.identity
        if isinstance(mapper, ScalekitIdentity):  # checks domains, finds headless users
            mapper.router = self.router
            mapper.api = self.api
        self.limiter = PasswordlessLimiter(store, limits=limits, key=limiter_key, clock=clock)
        self.passwordless = PasswordlessClient(
            self.api,
            limiter=self.limiter,
            same_browser_origin=same_browser_origin,
            otp_length=otp_length,
        )
        self.idp_initiated = IdPInitiatedVerifier(jwks, clock=clock)

    def __repr__(self) -> str:
        return f"ScalekitEnvironment(issuer={self.config.issuer!r})"

    def webhooks(self, secret: str, *, tolerance: int = 300) -> WebhookVerifier:
        """A verifier for one webhook endpoint's ``whsec_...`` secret, with the replay cache in
        this environment's store."""
        return WebhookVerifier(secret, store=self._store, tolerance=tolerance, clock=self._clock)
