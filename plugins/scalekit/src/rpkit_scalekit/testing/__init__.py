"""A faithful fake Scalekit for testing relying parties, in-process or on 127.0.0.1.

It is product code: test your application's Scalekit integration against it, and run it as the
demo's identity provider. It implements Scalekit's REST and OAuth wire protocol
(scalekit-sdk.md §8), never the gRPC half.

* :class:`FakeScalekit` — ``/keys``, discovery, ``/oauth/authorize`` (auto-approve, routed by
  the connection table), ``/oauth/token`` (code with PKCE, rotating refresh, client
  credentials), ``/oidc/logout``, headless passwordless with every documented limit,
  connections and domains, all ``/api/v1/**`` behind a Bearer M2M token, errors in the
  ``google.rpc.Status`` envelope.
* Knobs: :class:`PasswordlessSettings` (``fake.passwordless``), :class:`ScalekitKnobs`
  (``fake.knobs``), :class:`OpenAnswers` (``fake.answers``).
* :class:`Outbox` of :class:`SentEmail` (``fake.outbox``), and a development mailbox at
  ``/_dev/outbox``.
* :class:`Recording` of :class:`RecordedCall` (``fake.recording``).
* Directories (SCIM): :class:`FakeDirectory` (``fake.directories``, the Directory API) and
  :meth:`FakeScalekit.send_directory_event`; organizations to switch into:
  :class:`FakeOrganization` (``fake.organizations``); ``user_management=False`` mints modular
  ``conn_...;<email>`` subjects.
* Webhooks and back-channel logout: :meth:`FakeScalekit.emit`, :meth:`FakeScalekit.deliver`,
  :func:`build_webhook`, :func:`sign_webhook`.
* :func:`serve_scalekit` — a real server; pytest fixtures ``fake_scalekit``,
  ``fake_scalekit_http``, ``fake_scalekit_server``.

Example:
    >>> import httpx
    >>> from rpkit_scalekit.testing import FakeScalekit
    >>> fake = FakeScalekit()
    >>> fake.passwordless.method = "LINK_OTP"
    >>> http = httpx.AsyncClient(transport=fake.transport())
"""

from __future__ import annotations

from rpkit_scalekit.testing._directory import (
    FakeDirectory,
    FakeDirectoryGroup,
    FakeDirectoryUser,
)
from rpkit_scalekit.testing._dispatch import DEV_OUTBOX_PATHS
from rpkit_scalekit.testing._passwordless import AuthRequest
from rpkit_scalekit.testing._wire import ApiError, FieldViolation
from rpkit_scalekit.testing.fake import FakeScalekit
from rpkit_scalekit.testing.keys import ScalekitKeys
from rpkit_scalekit.testing.knobs import (
    ErrorAnswer,
    Failure,
    OpenAnswers,
    PasswordlessMethod,
    PasswordlessSettings,
    ScalekitEndpoint,
    ScalekitKnobs,
)
from rpkit_scalekit.testing.outbox import Outbox, SentEmail
from rpkit_scalekit.testing.recording import RecordedCall, Recording
from rpkit_scalekit.testing.registry import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_ENV_URL,
    DEFAULT_REDIRECT_URI,
    CodeGrant,
    Connection,
    FakeApplication,
    FakeOrganization,
    IssuedM2MToken,
    RefreshGrant,
    Route,
    ScalekitSession,
    default_connections,
    default_users,
)
from rpkit_scalekit.testing.server import serve_scalekit
from rpkit_scalekit.testing.webhooks import (
    OutboundMessage,
    WebhookEndpoint,
    build_webhook,
    new_webhook_secret,
    sign_webhook,
)

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_ENV_URL",
    "DEFAULT_REDIRECT_URI",
    "DEV_OUTBOX_PATHS",
    "ApiError",
    "AuthRequest",
    "CodeGrant",
    "Connection",
    "ErrorAnswer",
    "Failure",
    "FakeApplication",
    "FakeDirectory",
    "FakeDirectoryGroup",
    "FakeDirectoryUser",
    "FakeOrganization",
    "FakeScalekit",
    "FieldViolation",
    "IssuedM2MToken",
    "OpenAnswers",
    "OutboundMessage",
    "Outbox",
    "PasswordlessMethod",
    "PasswordlessSettings",
    "RecordedCall",
    "Recording",
    "RefreshGrant",
    "Route",
    "ScalekitEndpoint",
    "ScalekitKeys",
    "ScalekitKnobs",
    "ScalekitSession",
    "SentEmail",
    "WebhookEndpoint",
    "build_webhook",
    "default_connections",
    "default_users",
    "new_webhook_secret",
    "serve_scalekit",
    "sign_webhook",
]
