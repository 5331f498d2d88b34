"""Scalekit organizations: the id shapes, and the authorization parameters of an organization
switch.

Scalekit's organization switcher is a new login with ``prompt=select_account``; adding
``organization_id`` signs a user who belongs to that organization straight into it ("The
``organizationId`` parameter works only when combined with ``prompt=select_account``":
https://docs.scalekit.com/authenticate/manage-users-orgs/organization-switching/). The
signed-in organization comes back as the tokens' ``oid`` claim, the application's own ids for
the organization and the user as ``xoid`` and ``xuid`` when they were set in Scalekit
(https://docs.scalekit.com/authenticate/fsa/complete-login/, "Decoded access token").

Example:
    >>> from rpkit_scalekit.organizations import switch_organization_params
    >>> switch_organization_params("org_59615193906282635")
    {'prompt': 'select_account', 'organization_id': 'org_59615193906282635'}
"""

from __future__ import annotations

import re

from rpkit_scalekit.errors import ScalekitInputError

__all__ = [
    "DIRECTORY_ID",
    "ORGANIZATION_ID",
    "check_directory_id",
    "check_organization_id",
    "switch_organization_params",
]

ORGANIZATION_ID = re.compile(r"org_[0-9A-Za-z]{1,64}")
"""A Scalekit organization id (``org_`` and Scalekit's digits), matched with ``fullmatch``."""
DIRECTORY_ID = re.compile(r"dir_[0-9A-Za-z]{1,64}")
"""A Scalekit directory id (``dir_...``), matched with ``fullmatch``."""


def check_organization_id(value: object, field: str = "organization_id") -> str:
    """``value`` when it is a Scalekit organization id.

    It goes into URLs (an authorization request, an API path): anything else is refused before
    it can add a parameter or a path segment.

    Raises:
        ScalekitInputError: not ``org_`` followed by 1-64 letters or digits (answer 400).
    """
    if not isinstance(value, str) or not ORGANIZATION_ID.fullmatch(value):
        raise ScalekitInputError(
            f"{field} must be a Scalekit organization id (org_...)", field=field
        )
    return value


def check_directory_id(value: object, field: str = "directory_id") -> str:
    """``value`` when it is a Scalekit directory id.

    Raises:
        ScalekitInputError: not ``dir_`` followed by 1-64 letters or digits.
    """
    if not isinstance(value, str) or not DIRECTORY_ID.fullmatch(value):
        raise ScalekitInputError(f"{field} must be a Scalekit directory id (dir_...)", field=field)
    return value


def switch_organization_params(organization_id: str) -> dict[str, str]:
    """The extra authorization parameters of a login into ``organization_id``: pass them as
    ``params`` to :meth:`rpkit.client.RelyingParty.begin_login` (the Scalekit preset allows
    both).

    Raises:
        ScalekitInputError: ``organization_id`` is not an organization id.
    """
    return {"prompt": "select_account", "organization_id": check_organization_id(organization_id)}
