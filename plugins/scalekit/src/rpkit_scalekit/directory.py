"""Scalekit's Directory API (SCIM-provisioned users and groups) over REST.

The calls are the REST twins of ``scalekit.v1.directories.DirectoryService`` (their
``google.api.http`` paths, read from scalekit-inc/scalekit-sdk-python
``scalekit/v1/directories/directories_pb2.py``; the SDK's ``scalekit/directory.py`` makes the
same calls over gRPC):

* ``GET /api/v1/organizations/{organization_id}/directories`` — an organization's directories;
  the first is its primary directory, as the SDK's ``get_primary_directory_by_organization_id``
  takes it;
* ``GET /api/v1/organizations/{organization_id}/directories/{id}`` — one directory;
* ``GET .../directories/{directory_id}/users`` and ``.../groups`` — one page
  (``page_size``, ``page_token``; the answer's ``next_page_token`` names the next page, empty
  on the last).

:class:`DirectoryClient` runs on the plugin's :class:`~rpkit_scalekit.management.ManagementClient`
(its M2M token, its redirect refusal and response bound). Ids are checked locally before they
become path segments. Refusals are the management client's typed errors
(:class:`~rpkit_scalekit.errors.ScalekitNotFoundError`, ``ScalekitAuthError``,
``ScalekitRateLimitedError`` with ``retry_after``, ``ScalekitUnavailableError``); an answer of
the wrong shape is :class:`DirectoryResponseError`. Nothing is retried.

Example:
    >>> # directory = DirectoryClient(environment.api)
    >>> # primary = await directory.get_primary_directory("org_59615193906282635")
    >>> # async for user in directory.users("org_59615193906282635", primary.id):
    >>> #     upsert(user)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

import msgspec

from rpkit.errors import ConfigurationError
from rpkit_scalekit._wire import int_value
from rpkit_scalekit.errors import (
    ScalekitInputError,
    ScalekitNotFoundError,
    ScalekitUnavailableError,
)
from rpkit_scalekit.management import ManagementClient
from rpkit_scalekit.organizations import check_directory_id, check_organization_id

__all__ = [
    "MAX_PAGE_SIZE",
    "Directory",
    "DirectoryClient",
    "DirectoryGroup",
    "DirectoryPage",
    "DirectoryResponseError",
    "DirectoryUser",
]

MAX_PAGE_SIZE = 100
"""The largest ``page_size`` asked for (a page must fit the management client's byte bound)."""
_MAX_TOKEN = 1024
T = TypeVar("T")


class DirectoryResponseError(ScalekitUnavailableError):
    """The Directory API answered 2xx with a body of the wrong shape (or a pagination that does
    not end); nothing of it is returned."""

    code = "scalekit_malformed_response"


class DirectoryGroup(msgspec.Struct, frozen=True, kw_only=True):
    """A directory group (``DirectoryGroup``); unknown members are ignored."""

    id: str
    display_name: str | None = None
    total_users: int | None = None
    updated_at: str | None = None
    """RFC 3339."""
    group_detail: dict[str, Any] | None = None
    """The provider's attributes (``include_detail``), untrusted."""


class DirectoryUser(msgspec.Struct, frozen=True, kw_only=True):
    """A directory user (``DirectoryUser``); unknown members are ignored."""

    id: str
    """``diruser_...``."""
    email: str | None = None
    preferred_username: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    updated_at: str | None = None
    emails: tuple[str, ...] = ()
    groups: tuple[DirectoryGroup, ...] = ()
    user_detail: dict[str, Any] | None = None
    """The provider's attributes (``include_detail``), untrusted."""


class Directory(msgspec.Struct, frozen=True, kw_only=True):
    """An organization's directory (``Directory``); unknown members are ignored."""

    id: str
    """``dir_...``."""
    organization_id: str | None = None
    name: str | None = None
    directory_type: str | None = None
    """``SCIM``, ``LDAP`` or ``POLL``."""
    directory_provider: str | None = None
    """``OKTA``, ``GOOGLE``, ``MICROSOFT_AD``...; a string, so new providers do not break."""
    enabled: bool = False
    status: str | None = None
    last_synced_at: str | None = None
    directory_endpoint: str | None = None
    total_users: int | None = None
    total_groups: int | None = None
    email: str | None = None


class DirectoryPage(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """One page of users or groups."""

    items: tuple[T, ...]
    next_page_token: str | None = None
    """Pass it as ``page_token`` for the next page; None on the last page."""
    prev_page_token: str | None = None
    total_size: int | None = None


class DirectoryClient:
    """The Directory API of one environment.

    Args:
        api: the plugin's management client (``environment.api``).
        max_pages: the most pages :meth:`users` and :meth:`groups` follow before refusing the
            listing as endless (:class:`DirectoryResponseError`).

    Raises:
        ConfigurationError: ``max_pages`` below 1.
    """

    def __init__(self, api: ManagementClient, *, max_pages: int = 10_000) -> None:
        if type(max_pages) is not int or max_pages < 1:
            raise ConfigurationError("max_pages must be a positive integer")
        self._api = api
        self._max_pages = max_pages

    async def list_directories(self, organization_id: str) -> tuple[Directory, ...]:
        """The organization's directories.

        Raises:
            ScalekitInputError: not an organization id (nothing sent).
            ScalekitError: the refusal, typed; :class:`DirectoryResponseError` for a bad body.
        """
        path = f"{_base(organization_id)}/directories"
        body = await self._api.request_json("GET", path)
        found: tuple[Directory, ...] = _convert(
            body.get("directories") or [], tuple[Directory, ...], path
        )
        return found

    async def get_primary_directory(self, organization_id: str) -> Directory:
        """The organization's primary directory: the first it lists.

        Raises:
            ScalekitNotFoundError: the organization has no directory.
        """
        directories = await self.list_directories(organization_id)
        if not directories:
            raise ScalekitNotFoundError("the organization has no directory")
        return directories[0]

    async def get_directory(self, organization_id: str, directory_id: str) -> Directory:
        """One directory of the organization.

        Raises:
            ScalekitInputError: a malformed id (nothing sent).
            ScalekitNotFoundError: no such directory in that organization.
        """
        path = f"{_base(organization_id)}/directories/{check_directory_id(directory_id)}"
        body = await self._api.request_json("GET", path)
        found: Directory = _convert(body.get("directory"), Directory, path)
        return found

    async def list_users_page(
        self,
        organization_id: str,
        directory_id: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        include_detail: bool = False,
        group_id: str | None = None,
        updated_after: str | None = None,
    ) -> DirectoryPage[DirectoryUser]:
        """One page of the directory's users (``directory_group_id`` filters by group,
        ``updated_after`` is RFC 3339)."""
        query = _query(page_size, page_token, include_detail)
        if group_id is not None:
            query["directory_group_id"] = _bounded(group_id, "group_id", 128)
        if updated_after is not None:
            query["updated_after"] = _bounded(updated_after, "updated_after", 64)
        path = f"{_base(organization_id)}/directories/{check_directory_id(directory_id)}/users"
        body = await self._api.request_json("GET", path, params=query)
        return _page(body, "users", DirectoryUser, path)

    async def list_groups_page(
        self,
        organization_id: str,
        directory_id: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        include_detail: bool = False,
    ) -> DirectoryPage[DirectoryGroup]:
        """One page of the directory's groups."""
        query = _query(page_size, page_token, include_detail)
        path = f"{_base(organization_id)}/directories/{check_directory_id(directory_id)}/groups"
        body = await self._api.request_json("GET", path, params=query)
        return _page(body, "groups", DirectoryGroup, path)

    async def users(
        self, organization_id: str, directory_id: str, *, page_size: int | None = None
    ) -> AsyncIterator[DirectoryUser]:
        """Every user of the directory, page after page (one request per page, none ahead)."""
        async for user in self._every(
            self.list_users_page, "users", organization_id, directory_id, page_size
        ):
            yield user

    async def groups(
        self, organization_id: str, directory_id: str, *, page_size: int | None = None
    ) -> AsyncIterator[DirectoryGroup]:
        """Every group of the directory, page after page."""
        async for group in self._every(
            self.list_groups_page, "groups", organization_id, directory_id, page_size
        ):
            yield group

    async def _every(
        self,
        list_page: Callable[..., Awaitable[DirectoryPage[T]]],
        what: str,
        organization_id: str,
        directory_id: str,
        page_size: int | None,
    ) -> AsyncIterator[T]:
        """Every item of a paginated listing, refusing one that repeats a page token or does
        not end within ``max_pages``."""
        token: str | None = None
        seen: set[str] = set()
        for _ in range(self._max_pages):
            page = await list_page(
                organization_id, directory_id, page_size=page_size, page_token=token
            )
            for item in page.items:
                yield item
            token = _next(page.next_page_token, seen)
            if token is None:
                return
        raise DirectoryResponseError(f"the {what} listing did not end in {self._max_pages} pages")


def _base(organization_id: str) -> str:
    return f"/api/v1/organizations/{check_organization_id(organization_id)}"


def _bounded(value: object, field: str, limit: int) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit or not value.isprintable():
        raise ScalekitInputError(f"{field} must be 1-{limit} printable characters", field=field)
    return value


def _query(page_size: int | None, page_token: str | None, include_detail: bool) -> dict[str, str]:
    query: dict[str, str] = {}
    if page_size is not None:
        if type(page_size) is not int or not 1 <= page_size <= MAX_PAGE_SIZE:
            msg = f"page_size must be 1-{MAX_PAGE_SIZE}"
            raise ScalekitInputError(msg, field="page_size")
        query["page_size"] = str(page_size)
    if page_token:
        query["page_token"] = _bounded(page_token, "page_token", _MAX_TOKEN)
    if include_detail:
        query["include_detail"] = "true"
    return query


def _next(token: str | None, seen: set[str]) -> str | None:
    """The next page's token; a token seen before would loop forever."""
    if not token:
        return None
    if token in seen:
        raise DirectoryResponseError("the listing repeated a page token")
    seen.add(token)
    return token


def _without_nulls(value: Any) -> Any:
    """``null`` members dropped (a nil list or map from a Go service means absent)."""
    if type(value) is dict:
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if type(value) is list:
        return [_without_nulls(v) for v in value]
    return value


def _convert(value: Any, kind: Any, what: str) -> Any:
    try:
        return msgspec.convert(
            _without_nulls(value), kind, strict=False
        )  # int64 members arrive as strings
    except msgspec.ValidationError as exc:
        msg = f"GET {what} answered an unexpected shape: {exc}"
        raise DirectoryResponseError(msg, status=200) from exc


def _page(body: Mapping[str, Any], member: str, kind: type[T], what: str) -> DirectoryPage[T]:
    items = _convert(body.get(member) or [], tuple[kind, ...], what)  # type: ignore[valid-type]
    next_token, prev_token = body.get("next_page_token"), body.get("prev_page_token")
    for token in (next_token, prev_token):
        if token is not None and (not isinstance(token, str) or len(token) > _MAX_TOKEN):
            raise DirectoryResponseError(f"GET {what} answered a malformed page token", status=200)
    return DirectoryPage(
        items=items,
        next_page_token=next_token or None,
        prev_page_token=prev_token or None,
        total_size=int_value(body.get("total_size")),
    )
