"""Typed payloads of Scalekit's directory (SCIM) webhook events.

Scalekit documents eight directory events (developer-docs ``directory/reference/
directory-events.mdx``, https://docs.scalekit.com/directory/reference/directory-events/):
``organization.directory.user_created``, ``user_updated``, ``user_deleted``,
``group_created``, ``group_updated`` and ``group_deleted``, and the directory connection events
``organization.directory_enabled`` and ``organization.directory_disabled`` (note the ``_``
where the others have a ``.``). Each has a ``data`` object of a known shape;
:func:`directory_event` decodes it into a frozen msgspec struct and names the Litestar event
the plugin emits for it (:data:`DIRECTORY_EVENTS`). Members Scalekit adds later are
ignored; a member of the wrong type refuses the delivery (``payload``) rather than hand the
application half an event. Any other event type, directory or not, stays a plain
:class:`~rpkit_scalekit.webhooks.WebhookEvent`.

Example:
    >>> DIRECTORY_EVENTS["organization.directory.user_deleted"]
    'rpkit.scalekit.directory.user_deleted'
    >>> DIRECTORY_EVENTS["organization.directory_enabled"]
    'rpkit.scalekit.directory.enabled'
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, get_args

import msgspec

from rpkit_scalekit.errors import WebhookVerificationError

__all__ = [
    "DIRECTORY_EVENTS",
    "DirectoryEvent",
    "DirectoryEventKind",
    "DirectoryGroupEvent",
    "DirectoryRoleRef",
    "DirectoryToggled",
    "DirectoryUserDeleted",
    "DirectoryUserEvent",
    "DirectoryUserGroupRef",
    "directory_event",
]

DirectoryEventKind = Literal[
    "user_created",
    "user_updated",
    "user_deleted",
    "group_created",
    "group_updated",
    "group_deleted",
]
"""The ``organization.directory.<kind>`` events of Scalekit's SCIM guide."""

DIRECTORY_EVENTS: Mapping[str, str] = MappingProxyType(
    {
        **{
            f"organization.directory.{kind}": f"rpkit.scalekit.directory.{kind}"
            for kind in get_args(DirectoryEventKind)
        },
        "organization.directory_enabled": "rpkit.scalekit.directory.enabled",
        "organization.directory_disabled": "rpkit.scalekit.directory.disabled",
    }
)
"""Scalekit event type → the Litestar event id the plugin emits with the typed payload."""


class DirectoryRoleRef(msgspec.Struct, frozen=True, kw_only=True):
    """A role a directory user holds through its groups (``roles[]``)."""

    role_name: str | None = None


class DirectoryUserGroupRef(msgspec.Struct, frozen=True, kw_only=True):
    """A group a directory user belongs to (``groups[]``)."""

    id: str
    name: str | None = None


class DirectoryUserEvent(msgspec.Struct, frozen=True, kw_only=True):
    """``data`` of ``user_created`` and ``user_updated``: the directory user as provisioned."""

    id: str
    """The directory user id (``diruser_...``)."""
    organization_id: str | None = None
    dp_id: str | None = None
    """The user's id at the directory provider (the SCIM ``externalId``)."""
    email: str | None = None
    preferred_username: str | None = None
    active: bool | None = None
    """False when the provider deactivated the user (SCIM ``active``)."""
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    nickname: str | None = None
    picture: str | None = None
    phone_number: str | None = None
    roles: tuple[DirectoryRoleRef, ...] = ()
    groups: tuple[DirectoryUserGroupRef, ...] = ()
    address: dict[str, Any] | None = None
    custom_attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    raw_attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    """What the provider sent, as received. Untrusted input: read it, never render it raw."""


class DirectoryUserDeleted(msgspec.Struct, frozen=True, kw_only=True):
    """``data`` of ``user_deleted``: which user to deactivate (Scalekit's guide: deactivate,
    do not hard-delete)."""

    id: str
    organization_id: str | None = None
    dp_id: str | None = None
    email: str | None = None


class DirectoryGroupEvent(msgspec.Struct, frozen=True, kw_only=True):
    """``data`` of ``group_created``, ``group_updated`` and ``group_deleted``. A group's
    deletion also brings a ``user_updated`` per affected member."""

    id: str
    """The directory group id (``dirgroup_...``)."""
    directory_id: str | None = None
    organization_id: str | None = None
    display_name: str | None = None
    external_id: str | None = None
    dp_id: str | None = None
    raw_attributes: dict[str, Any] = msgspec.field(default_factory=dict)


class DirectoryToggled(msgspec.Struct, frozen=True, kw_only=True):
    """``data`` of ``organization.directory_enabled`` and ``organization.directory_disabled``:
    the organization's directory connection whose sync was switched on or off.

    Which of the two happened is the event's type (:attr:`DirectoryEvent.type`), not
    :attr:`enabled`: Scalekit's own example of ``directory_enabled`` shows ``"enabled": false``.
    """

    id: str
    """The directory id (``dir_...``)."""
    organization_id: str | None = None
    directory_type: str | None = None
    """``SCIM``..., as sent."""
    provider: str | None = None
    """The directory provider (``OKTA``, ``MICROSOFT_AD``...), as sent."""
    enabled: bool | None = None
    """As sent; see the class docstring."""
    status: str | None = None
    """The sync's status, as sent (documented for ``directory_disabled``)."""
    last_sync_at: str | None = None
    """RFC 3339 time of the last sync; absent (``null``) before the first."""
    updated_at: str | None = None
    """RFC 3339 time of this change."""


DirectoryPayload = (
    DirectoryUserEvent | DirectoryUserDeleted | DirectoryGroupEvent | DirectoryToggled
)
_PAYLOADS: dict[str, type[DirectoryPayload]] = {
    "organization.directory.user_created": DirectoryUserEvent,
    "organization.directory.user_updated": DirectoryUserEvent,
    "organization.directory.user_deleted": DirectoryUserDeleted,
    "organization.directory.group_created": DirectoryGroupEvent,
    "organization.directory.group_updated": DirectoryGroupEvent,
    "organization.directory.group_deleted": DirectoryGroupEvent,
    "organization.directory_enabled": DirectoryToggled,
    "organization.directory_disabled": DirectoryToggled,
}


class DirectoryEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A verified directory event, typed."""

    type: str
    """Scalekit's event type, e.g. ``organization.directory.user_created`` or
    ``organization.directory_enabled``."""
    name: str
    """The Litestar event id the plugin emits (:data:`DIRECTORY_EVENTS`)."""
    payload: DirectoryPayload


def directory_event(event_type: str, data: Mapping[str, Any]) -> DirectoryEvent | None:
    """The typed form of a verified event's ``data``; None when ``event_type`` is not one of
    :data:`DIRECTORY_EVENTS`.

    Raises:
        WebhookVerificationError: ``payload``: ``data`` does not have the documented shape (a
            missing ``id``, a member of the wrong type).
    """
    name = DIRECTORY_EVENTS.get(event_type)
    if name is None:
        return None
    kind = _PAYLOADS[event_type]
    try:
        payload = msgspec.convert(_thawed(data), kind)
    except msgspec.ValidationError as exc:
        msg = f"the {event_type} data does not have the documented shape: {exc}"
        raise WebhookVerificationError("payload", msg) from exc
    return DirectoryEvent(type=event_type, name=name, payload=payload)


def _thawed(value: Any) -> Any:
    """A frozen JSON value (mapping proxies, tuples) as plain dicts and lists for msgspec, with
    ``null`` members dropped: Scalekit's Go services send a nil list or map as ``null``, which
    means the same as absent (the member's default)."""
    if isinstance(value, Mapping):
        return {k: _thawed(v) for k, v in value.items() if v is not None}
    if isinstance(value, tuple | list):
        return [_thawed(v) for v in value]
    return value
