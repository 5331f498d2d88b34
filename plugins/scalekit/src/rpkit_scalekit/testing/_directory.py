"""The fake Scalekit's directories (SCIM): the Directory API it serves and the directory webhook
events it sends.

REST paths and shapes follow ``scalekit.v1.directories.DirectoryService`` (scalekit-inc/
scalekit-sdk-python ``scalekit/v1/directories/directories_pb2.py``); event ``data`` follows
Scalekit's directory events reference (https://docs.scalekit.com/directory/reference/
directory-events/). A test sets the data on :class:`FakeDirectory` objects (``fake.directories``)
and sends events with :meth:`DirectoryMixin.send_directory_event` (users and groups) and
:meth:`DirectoryMixin.set_directory_enabled` (the directory switched on or off).

Example:
    >>> from rpkit_scalekit.testing import FakeDirectory, FakeDirectoryUser, FakeScalekit
    >>> fake = FakeScalekit()
    >>> directory = fake.add_directory(FakeDirectory("dir_1", "org_1"))
    >>> _ = directory.add_user(FakeDirectoryUser("diruser_1", "ada@acme.test"))
    >>> len(fake.directories["dir_1"].users)
    1
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from rpkit_scalekit.directory_events import DirectoryEventKind
from rpkit_scalekit.testing._wire import ApiError, ParsedRequest, api_response

if TYPE_CHECKING:
    from rpkit_scalekit.testing.fake import FakeScalekit
    from rpkit_scalekit.testing.webhooks import OutboundMessage

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DirectoryEventKind",
    "DirectoryMixin",
    "FakeDirectory",
    "FakeDirectoryGroup",
    "FakeDirectoryUser",
]

DEFAULT_PAGE_SIZE = 10
"""Users or groups per page when the request names no ``page_size``."""
MAX_PAGE_SIZE = 100
_ORG = r"/api/v1/organizations/([^/]+)/directories"
DIRECTORIES_PATH = re.compile(_ORG)
DIRECTORY_PATH = re.compile(_ORG + r"/([^/]+)")
MEMBERS_PATH = re.compile(_ORG + r"/([^/]+)/(users|groups)")


@dataclass
class FakeDirectoryGroup:
    """A group of a directory."""

    id: str
    """``dirgroup_...``."""
    display_name: str
    external_id: str | None = None
    updated_at: str = "2025-01-01T00:00:00Z"

    def as_json(self, directory: FakeDirectory) -> dict[str, Any]:
        """The Directory API's ``DirectoryGroup``."""
        members = sum(1 for u in directory.users if self.id in u.group_ids)
        return {
            "id": self.id,
            "display_name": self.display_name,
            "total_users": members,
            "updated_at": self.updated_at,
        }


@dataclass
class FakeDirectoryUser:
    """A user of a directory."""

    id: str
    """``diruser_...``."""
    email: str
    given_name: str | None = None
    family_name: str | None = None
    preferred_username: str | None = None
    dp_id: str | None = None
    """The provider's id for the user (SCIM ``externalId``)."""
    active: bool = True
    group_ids: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    updated_at: str = "2025-01-01T00:00:00Z"

    def as_json(self, directory: FakeDirectory) -> dict[str, Any]:
        """The Directory API's ``DirectoryUser``."""
        groups = [g.as_json(directory) for g in directory.groups if g.id in self.group_ids]
        raw = {
            "id": self.id,
            "email": self.email,
            "preferred_username": self.preferred_username,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "updated_at": self.updated_at,
            "emails": [self.email],
            "groups": groups,
        }
        return {k: v for k, v in raw.items() if v is not None}


@dataclass
class FakeDirectory:
    """A SCIM directory of an organization, with the users and groups the API lists."""

    id: str
    """``dir_...``."""
    organization_id: str
    name: str = "Directory"
    directory_provider: str = "OKTA"
    directory_type: str = "SCIM"
    enabled: bool = True
    status: str = "COMPLETED"
    users: list[FakeDirectoryUser] = field(default_factory=list)
    groups: list[FakeDirectoryGroup] = field(default_factory=list)

    def add_user(self, user: FakeDirectoryUser) -> FakeDirectoryUser:
        """Provision ``user`` (listing sees it; send the event yourself)."""
        self.users.append(user)
        return user

    def add_group(self, group: FakeDirectoryGroup) -> FakeDirectoryGroup:
        """Provision ``group``."""
        self.groups.append(group)
        return group

    def as_json(self) -> dict[str, Any]:
        """The Directory API's ``Directory`` (int64 counts as strings, as protojson sends
        them)."""
        return {
            "id": self.id,
            "name": self.name,
            "organization_id": self.organization_id,
            "directory_type": self.directory_type,
            "directory_provider": self.directory_provider,
            "enabled": self.enabled,
            "status": self.status,
            "total_users": str(len(self.users)),
            "total_groups": str(len(self.groups)),
        }


def user_event_data(directory: FakeDirectory, user: FakeDirectoryUser) -> dict[str, Any]:
    """``data`` of ``organization.directory.user_created``/``user_updated``."""
    name = " ".join(p for p in (user.given_name, user.family_name) if p) or None
    raw: dict[str, Any] = {
        "id": user.id,
        "organization_id": directory.organization_id,
        "dp_id": user.dp_id,
        "preferred_username": user.preferred_username,
        "email": user.email,
        "active": user.active,
        "name": name,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "roles": [{"role_name": role} for role in user.roles],
        "groups": [
            {"id": g.id, "name": g.display_name} for g in directory.groups if g.id in user.group_ids
        ],
        "custom_attributes": {},
        "raw_attributes": {},
    }
    return {k: v for k, v in raw.items() if v is not None}


def group_event_data(directory: FakeDirectory, group: FakeDirectoryGroup) -> dict[str, Any]:
    """``data`` of ``organization.directory.group_*``."""
    return {
        "id": group.id,
        "directory_id": directory.id,
        "organization_id": directory.organization_id,
        "display_name": group.display_name,
        "external_id": group.external_id,
        "raw_attributes": {},
    }


class DirectoryMixin:
    """Directories of :class:`~rpkit_scalekit.testing.FakeScalekit`."""

    directories: dict[str, FakeDirectory]

    def add_directory(self, directory: FakeDirectory) -> FakeDirectory:
        """Serve ``directory`` from the Directory API (its organization's first one is its
        primary directory)."""
        self.directories[directory.id] = directory
        return directory

    def send_directory_event(
        self,
        kind: DirectoryEventKind,
        directory: FakeDirectory,
        subject: FakeDirectoryUser | FakeDirectoryGroup,
        **emit: Any,
    ) -> list[OutboundMessage]:
        """Queue ``organization.directory.<kind>`` about ``subject`` for the webhook endpoints,
        with Scalekit's documented ``data``; ``emit`` goes to
        :meth:`~rpkit_scalekit.testing.FakeScalekit.emit` (``url``, ``secret``, defects).

        Raises:
            TypeError: a user event about a group or the other way round.
        """
        fake = _fake(self)
        if kind.startswith("user_") != isinstance(subject, FakeDirectoryUser):
            msg = f"{kind} is about a {'user' if kind.startswith('user_') else 'group'}"
            raise TypeError(msg)
        if isinstance(subject, FakeDirectoryUser):
            data = user_event_data(directory, subject)
            if kind == "user_deleted":
                data = {
                    k: data[k] for k in ("id", "organization_id", "dp_id", "email") if k in data
                }
        else:
            data = group_event_data(directory, subject)
        event_type = f"organization.directory.{kind}"
        return fake.emit(event_type, data, organization_id=directory.organization_id, **emit)

    def set_directory_enabled(
        self, directory: FakeDirectory, enabled: bool, **emit: Any
    ) -> list[OutboundMessage]:
        """Switch ``directory``'s sync on or off (the Directory API sees it) and queue
        ``organization.directory_enabled`` or ``organization.directory_disabled`` with
        Scalekit's documented ``data`` (``enabled`` is the new state); ``emit`` as for
        :meth:`send_directory_event`."""
        fake = _fake(self)
        directory.enabled = enabled
        updated_at = datetime.fromtimestamp(fake.now(), UTC).isoformat().replace("+00:00", "Z")
        data = {
            "id": directory.id,
            "organization_id": directory.organization_id,
            "directory_type": directory.directory_type,
            "provider": directory.directory_provider,
            "enabled": enabled,
            "status": directory.status,
            "updated_at": updated_at,
        }
        event_type = f"organization.directory_{'enabled' if enabled else 'disabled'}"
        return fake.emit(event_type, data, organization_id=directory.organization_id, **emit)


def _fake(mixin: DirectoryMixin) -> FakeScalekit:
    from rpkit_scalekit.testing.fake import FakeScalekit  # noqa: PLC0415 - mixin of it

    assert isinstance(mixin, FakeScalekit)  # noqa: S101 - only FakeScalekit mixes this in
    return mixin


# -- the Directory API ---------------------------------------------------------------------
def _get_only(req: ParsedRequest) -> None:
    if req.method != "GET":
        raise ApiError(405, "Method Not Allowed", grpc_code=12)


def _directory(fake: FakeScalekit, organization_id: str, directory_id: str) -> FakeDirectory:
    found = fake.directories.get(directory_id)
    if found is None or found.organization_id != organization_id:
        raise ApiError(404, f"directory {directory_id} not found")
    return found


def directories(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """``GET /api/v1/organizations/{organization_id}/directories``."""
    _get_only(req)
    match = DIRECTORIES_PATH.fullmatch(req.url.path)
    organization_id = match.group(1) if match else ""
    rows = [d.as_json() for d in fake.directories.values() if d.organization_id == organization_id]
    return api_response({"directories": rows}, fake.answers.response_case)


def directory(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """``GET /api/v1/organizations/{organization_id}/directories/{id}``."""
    _get_only(req)
    match = DIRECTORY_PATH.fullmatch(req.url.path)
    found = _directory(fake, *match.groups()) if match else None
    if found is None:
        raise ApiError(404, "directory not found")
    return api_response({"directory": found.as_json()}, fake.answers.response_case)


def members(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """``GET .../directories/{directory_id}/users`` or ``/groups``: one page; ``page_token`` is
    the opaque offset of the page, ``next_page_token`` empty on the last."""
    _get_only(req)
    match = MEMBERS_PATH.fullmatch(req.url.path)
    if match is None:
        raise ApiError(404, "not found")
    found = _directory(fake, match.group(1), match.group(2))
    size = _page_size(req.param("page_size"))
    start = _offset(req.param("page_token"))
    if match.group(3) == "users":
        group = req.param("directory_group_id")
        rows = [u.as_json(found) for u in found.users if group is None or group in u.group_ids]
    else:
        rows = [g.as_json(found) for g in found.groups]
    page = rows[start : start + size]
    more = start + size < len(rows)
    body = {
        match.group(3): page,
        "total_size": str(len(rows)),
        "next_page_token": _token(start + size) if more else "",
        "prev_page_token": _token(max(start - size, 0)) if start else "",
    }
    return api_response(body, fake.answers.response_case)


def _page_size(value: str | None) -> int:
    if value is None:
        return DEFAULT_PAGE_SIZE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise ApiError(400, f"page_size must be 1-{MAX_PAGE_SIZE}", error_code="INVALID_ARGUMENT")
    return int(value)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        kind, _, number = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        kind, number = "", ""
    if kind != "offset" or not number.isdigit():
        raise ApiError(400, "invalid page_token", error_code="INVALID_ARGUMENT")
    return int(number)
