"""What the fake Scalekit sends or hands to the RP on its own initiative: signed webhooks,
back-channel logout POSTs, and IdP-initiated login redirects (scalekit-sdk.md §2.6, §8.9).

:class:`EventsMixin` is part of :class:`~rpkit_scalekit.testing.FakeScalekit`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

import httpx

from rpkit.testing import Tamper
from rpkit_scalekit.testing import _mint
from rpkit_scalekit.testing.registry import FakeApplication
from rpkit_scalekit.testing.webhooks import OutboundMessage, WebhookEndpoint, build_webhook

if TYPE_CHECKING:
    from rpkit_scalekit.testing.fake import FakeScalekit

__all__ = ["EventsMixin"]


class EventsMixin:
    """Outbound messages and IdP-initiated logins of the fake."""

    webhook_endpoints: list[WebhookEndpoint]
    outbound: list[OutboundMessage]
    environment_id: str
    deliver_with: httpx.AsyncClient | None
    apps: dict[str, FakeApplication]

    def _fake(self) -> FakeScalekit:
        from rpkit_scalekit.testing.fake import FakeScalekit  # noqa: PLC0415 - mixin of it

        assert isinstance(self, FakeScalekit)  # noqa: S101 - only FakeScalekit mixes this in
        return self

    def emit(
        self,
        event_type: str,
        data: dict[str, Any],
        *,
        organization_id: str | None = None,
        url: str | None = None,
        secret: str | None = None,
        header_prefix: Literal["webhook", "interceptor"] = "webhook",
        **defects: Any,
    ) -> list[OutboundMessage]:
        """Queue a signed event for every subscribed webhook endpoint, or only for ``url``.

        Args:
            event_type: e.g. ``user.login``, ``organization.sso_enabled``.
            data: the event's ``data``.
            organization_id: the envelope's ``organization_id``.
            url: deliver only here (with ``secret``, or the secret of a subscription for it).
            secret: the ``whsec_`` secret when ``url`` is not a subscription.
            header_prefix: ``interceptor`` sends ``interceptor-*`` headers.
            **defects: :func:`~rpkit_scalekit.testing.webhooks.build_webhook` defects
                (``timestamp_offset``, ``extra_signatures``, ``wrong_secret``, ``tamper_body``,
                ``header_case``).

        Returns:
            the queued messages; :meth:`deliver` (or ``deliver_with``) POSTs them.
        """
        if url is not None:
            known = next((e for e in self.webhook_endpoints if e.url == url), None)
            chosen = secret or (known.secret if known else None)
            if chosen is None:
                msg = f"no secret for {url}: pass secret= or subscribe a WebhookEndpoint"
                raise ValueError(msg)
            targets = [WebhookEndpoint(url, chosen)]
        else:
            targets = [e for e in self.webhook_endpoints if e.wants(event_type)]
        messages = [
            build_webhook(
                target.secret,
                event_type,
                data,
                target.url,
                environment_id=self.environment_id,
                organization_id=organization_id,
                timestamp=self._fake().now(),
                header_prefix=header_prefix,
                **defects,
            )
            for target in targets
        ]
        self.outbound.extend(messages)
        return messages

    def queue_backchannel_logout(self, app: FakeApplication, logout_token: str) -> OutboundMessage:
        """Queue a back-channel logout POST (``logout_token`` form field) to the app."""
        if not app.backchannel_logout_uri:
            msg = f"application {app.client_id} has no backchannel_logout_uri"
            raise ValueError(msg)
        message = OutboundMessage(
            "backchannel_logout",
            app.backchannel_logout_uri,
            {"content-type": "application/x-www-form-urlencoded"},
            urlencode({"logout_token": logout_token}).encode(),
        )
        self.outbound.append(message)
        return message

    def pending(self) -> list[OutboundMessage]:
        """Messages not yet delivered (and not failed)."""
        return [m for m in self.outbound if m.status is None and m.error is None]

    async def deliver(self, http: httpx.AsyncClient | None = None) -> list[OutboundMessage]:
        """POST every pending message through ``http`` (default ``deliver_with``), recording
        each answer's status, or the transport error.

        Raises:
            ValueError: no client to deliver with.
        """
        client = http or self.deliver_with
        if client is None:
            msg = "pass an httpx.AsyncClient, or construct the fake with deliver_with="
            raise ValueError(msg)
        sent = self.pending()
        for message in sent:
            try:
                response = await client.post(
                    message.url, content=message.body, headers=message.headers
                )
            except httpx.HTTPError as exc:
                message.error = f"{type(exc).__name__}: {exc}"
            else:
                message.status = response.status_code
        return sent

    def idp_initiated_login_token(
        self,
        *,
        client_id: str | None = None,
        connection_id: str | None = None,
        organization_id: str | None = None,
        login_hint: str | None = None,
        relay_state: str | None = None,
        claims: dict[str, Any] | None = None,
        tamper: Tamper | None = None,
    ) -> str:
        """An ``idp_initiated_login`` JWT, signed by the current key; ``claims`` are edits
        (``ABSENT`` removes one), ``tamper`` breaks it."""
        app = self.apps[client_id or next(iter(self.apps))]
        return _mint.idp_initiated(
            self._fake(),
            app,
            connection_id=connection_id,
            organization_id=organization_id,
            login_hint=login_hint,
            relay_state=relay_state,
            edits=claims,
            tamper=tamper,
        )

    def idp_initiated_login_url(self, *, client_id: str | None = None, **token: Any) -> str:
        """Where Scalekit sends the browser for an IdP-initiated login: the app's Initiate
        Login URL with ``?idp_initiated_login=<JWT>``; ``token`` goes to
        :meth:`idp_initiated_login_token`.

        Raises:
            ValueError: the app has no ``initiate_login_uri``.
        """
        app = self.apps[client_id or next(iter(self.apps))]
        if not app.initiate_login_uri:
            msg = f"application {app.client_id} has no initiate_login_uri"
            raise ValueError(msg)
        jwt = self.idp_initiated_login_token(client_id=app.client_id, **token)
        separator = "&" if "?" in app.initiate_login_uri else "?"
        return f"{app.initiate_login_uri}{separator}{urlencode({'idp_initiated_login': jwt})}"
