"""One identity key per person, whether they signed in through Scalekit's hosted login or the
plugin's headless passwordless routes; and the organization fields of the identity.

Scalekit names one person differently depending on the path:

* with user management on (full-stack auth), the tokens' ``sub`` is the Scalekit user id
  ``usr_...`` (https://docs.scalekit.com/authenticate/fsa/complete-login/, "sub: User's unique
  identifier");
* with modular SSO or passwordless through OIDC, ``sub`` is ``conn_<connection>;<user>``,
  scoped to one connection ("A scalekit user ID is sent if user management is enabled":
  https://docs.scalekit.com/passwordless/oidc/);
* headless passwordless verifies an email address and returns only the address
  (``POST /api/v1/passwordless/email/verify``): there is no user id at all.

The **identity key** (:func:`identity_key`, the ``subject`` of every Scalekit identity) is:

1. the Scalekit user id when ``sub`` is one (``usr_...``): it survives email changes and links
   every sign-in method of the user, as Scalekit itself links them;
2. else ``email:<address, lower-cased>`` when Scalekit vouches for the address: the ID token
   says ``email_verified: true`` and, for a login through an *organization's* connection
   (the token carries ``oid``), the address's domain routes to that very connection (Scalekit
   routes a domain only to the organization that verified it). Headless passwordless always
   qualifies: Scalekit proved the mailbox by delivering the code or link. Addresses compare
   case-insensitively, as Scalekit matches them;
3. else Scalekit's ``sub`` unchanged. An organization's IdP asserting an address of a domain
   it does not own is kept apart, so it can never take over another person's account.

**Headless sign-ins with user management.** Passwordless verify answers only ``email``,
``state``, ``template`` and ``passwordless_type`` (``VerifyPasswordLessResponse`` of
scalekit-sdk-python, ``scalekit/v1/auth/passwordless_pb2.pyi``): no user. So when the
environment has user management (``scalekit(..., user_management=True)``), the headless path
looks the person up with Scalekit's user search, ``GET /api/v1/users:search?query=<address>``
(``SearchUsers`` in ``scalekit/v1/users/users_pb2.py``: "Searches for users across the entire
environment by email address, user ID, or external ID. The query must be at least 3 characters
and is case-insensitive", at most 100 characters, pages of 1 to 30), and keeps the user whose
``email`` equals the verified address, letter case aside (:func:`find_user_id`):

* found: the key is the ``usr_...`` id, the one the hosted login of that person yields;
* not found (the person never signed in through Scalekit, which creates users only in its
  hosted login): the ``email:`` key, and no user is created. Should the person sign in through
  the hosted login later, Scalekit creates a user there and that sign-in is keyed by its
  ``usr_...`` id, while earlier headless sign-ins stayed under ``email:``. An application that
  must never see that split refuses unknown users in its passwordless ``user_hook`` (the default
  identity's ``subject`` starts with ``email:``) or creates them in Scalekit first;
* the search fails (outage, refused credentials, an unexpected answer, two users with the
  address, more matches than :data:`MAX_SEARCH_PAGES` pages hold and the address not among
  them): the sign-in is refused with
  :class:`~rpkit_scalekit.errors.ScalekitUnavailableError` (503) and no session, rather than
  hand the person a second key.

Example:
    >>> from rpkit_scalekit.identity import identity_key
    >>> identity_key("conn_1;Ada@Example.com", email="Ada@Example.com", email_verified=True)
    'email:ada@example.com'
    >>> identity_key("usr_63261014140912135", email="ada@example.com", email_verified=True)
    'usr_63261014140912135'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from rpkit._log import get_logger
from rpkit.client import Identity
from rpkit.hooks import IdentityFields, IdentitySource
from rpkit_scalekit.errors import InvalidEmailError, ScalekitError, ScalekitUnavailableError
from rpkit_scalekit.routing import LoginRouter, check_email

if TYPE_CHECKING:
    from rpkit_scalekit.management import ManagementClient

__all__ = [
    "EMAIL_KEY_PREFIX",
    "USER_ID",
    "ScalekitIdentity",
    "email_key",
    "find_user_id",
    "identity_key",
    "passwordless_identity",
    "scalekit_user_id",
]

USER_ID = re.compile(r"usr_[0-9A-Za-z]{1,64}")
"""A Scalekit user id (``usr_...``), matched with ``fullmatch``."""
EMAIL_KEY_PREFIX = "email:"
"""The identity key of a person known by a verified address: ``email:`` + the address."""
MAX_SUBJECT_LENGTH = 255
"""rpkit's bound on a subject (OpenID Connect Core §2)."""
SEARCH_PATH = "/api/v1/users:search"
"""Scalekit's user search (``SearchUsers``, ``GET``)."""
SEARCH_PAGE_SIZE = 30
"""The largest page the user search serves."""
MAX_SEARCH_PAGES = 3
"""Pages of search results read for one address. A search may also match parts of addresses
(``ann@x.io`` finding ``joann@x.io``), so the exact address may be on a later page; past these
pages the lookup fails rather than guess."""
MAX_QUERY_LENGTH = 100
"""The longest query the user search accepts; a longer address cannot be looked up."""


def email_key(address: str) -> str:
    """``email:<address>`` with the whole address lower-cased (its domain as ASCII).

    Raises:
        InvalidEmailError: not an address the plugin accepts (see
            :func:`~rpkit_scalekit.routing.check_email`), or one so long that the key would
            exceed the 255 characters of a subject (no deliverable address is: SMTP paths
            hold at most 254).
    """
    checked, _ = check_email(address)
    key = EMAIL_KEY_PREFIX + checked.lower()
    if len(key) > MAX_SUBJECT_LENGTH:
        raise InvalidEmailError("the address is too long to be an identity key", field="email")
    return key


def identity_key(sub: str, *, email: object, email_verified: object) -> str:
    """The identity key of a hosted login's claims, when the domain check of an organization's
    connection is already done (or does not apply): the user id, else the verified email's
    key, else ``sub``."""
    if USER_ID.fullmatch(sub):
        return sub
    if email_verified is True and isinstance(email, str):
        try:
            return email_key(email)
        except InvalidEmailError:
            return sub
    return sub


def scalekit_user_id(identity: Identity) -> str | None:
    """The Scalekit user id (``usr_...``) behind ``identity``, or None (modular SSO, headless
    passwordless)."""
    sub = identity.claims.get("sub")
    return sub if isinstance(sub, str) and USER_ID.fullmatch(sub) else None


def passwordless_identity(
    provider_id: str, issuer: str, email: str, method: str, *, user_id: str | None = None
) -> Identity:
    """The identity of a headless passwordless sign-in: the key ``email:<address>``, or
    ``user_id`` (the person's Scalekit user, also its ``sub`` claim) when given; the address
    verified (Scalekit delivered the code or link to it), ``amr`` the method used."""
    address = email_key(email).removeprefix(EMAIL_KEY_PREFIX)
    subject = user_id if user_id is not None else EMAIL_KEY_PREFIX + address
    claims: dict[str, Any] = {"email": address, "email_verified": True, "amr": [method]}
    if user_id is not None:
        claims["sub"] = user_id
    return Identity(
        provider_id=provider_id,
        issuer=issuer,
        subject=subject,
        claims=MappingProxyType(claims),
        email=address,
        email_verified=True,
    )


async def find_user_id(api: ManagementClient, email: str) -> str | None:
    """The id (``usr_...``) of the environment's user with this address, compared without
    letter case, or None when there is none. Reads at most :data:`MAX_SEARCH_PAGES` pages.

    Raises:
        InvalidEmailError: not an address the plugin accepts.
        ScalekitUnavailableError: the search failed or was refused (``status`` is Scalekit's),
            answered an unexpected shape, found two users with the address, or had more
            pages than are read without the address on them (an address found on the pages
            read is kept; later pages are not read).
    """
    address, _ = check_email(email)
    wanted = address.lower()
    found: set[str] = set()
    token = ""
    for _ in range(MAX_SEARCH_PAGES):
        params = {"query": wanted, "page_size": str(SEARCH_PAGE_SIZE)}
        if token:
            params["page_token"] = token
        try:
            body = await api.request_json("GET", SEARCH_PATH, params=params)
        except ScalekitError as exc:
            msg = "the user search of Scalekit failed"
            status, request_id = exc.status, exc.request_id
            raise ScalekitUnavailableError(msg, status=status, request_id=request_id) from exc
        users, token = _search_page(body)
        found.update(
            user["id"]
            for user in users
            if isinstance(user.get("email"), str) and user["email"].lower() == wanted
        )
        if not token:
            break
    else:
        if not found:
            raise ScalekitUnavailableError("the user search had more matches than are read")
    if len(found) > 1:
        raise ScalekitUnavailableError("the user search found several users with the address")
    return next(iter(found), None)


def _search_page(body: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The users and the next page token of one search answer, each user with a ``usr_...``
    ``id``; anything else is an unexpected shape."""
    users, token = body.get("users", []), body.get("next_page_token") or ""
    if (
        type(users) is not list
        or not isinstance(token, str)
        or not all(
            type(user) is dict and isinstance(user.get("id"), str) and USER_ID.fullmatch(user["id"])
            for user in users
        )
    ):
        raise ScalekitUnavailableError("the user search answered an unexpected shape", status=200)
    return users, token


def _text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


class ScalekitIdentity:
    """The Scalekit preset's :class:`~rpkit.hooks.IdentityMapper`.

    ``subject`` is the identity key (module docstring); ``organization``,
    ``external_organization_id`` and ``external_user_id`` are the ``oid``, ``xoid`` and ``xuid``
    claims when they are strings (anything else is ignored, never coerced).

    Args:
        stable_key: False keeps Scalekit's ``sub`` as the subject (the behaviour before the
            identity key; one person then has one subject per connection).
        user_management: the environment has user management (full-stack auth): a headless
            sign-in is keyed by the person's Scalekit user id, looked up by address
            (:meth:`headless`, :func:`find_user_id`).

    Attributes:
        router: the environment's :class:`~rpkit_scalekit.routing.LoginRouter`, bound by
            :class:`~rpkit_scalekit.environment.ScalekitEnvironment`. Unbound, a login through
            an organization's connection keeps its ``sub`` (the domain cannot be checked).
        api: the environment's management client, bound likewise; the user search of
            :meth:`headless` needs it.
    """

    def __init__(self, *, stable_key: bool = True, user_management: bool = False) -> None:
        self.stable_key = stable_key
        self.user_management = user_management
        self.router: LoginRouter | None = None
        self.api: ManagementClient | None = None
        self._hinted = False

    async def headless(self, provider_id: str, issuer: str, email: str, method: str) -> Identity:
        """The identity of a headless passwordless sign-in of ``email``: keyed by the Scalekit
        user with that address when the environment has user management and one exists, else
        by ``email:<address>`` (module docstring).

        Raises:
            InvalidEmailError: not an address the plugin accepts.
            ScalekitUnavailableError: user management is on and the user search failed (or no
                management client is bound): refuse the sign-in, create no session.
        """
        address = email_key(email).removeprefix(EMAIL_KEY_PREFIX)
        user_id = None
        if self.user_management:
            if self.api is None:
                raise ScalekitUnavailableError("no management client is bound to the mapper")
            if len(address) > MAX_QUERY_LENGTH:
                get_logger(provider="scalekit").warning(
                    "rpkit.scalekit.user_lookup_skipped", why="address_too_long"
                )
            else:
                user_id = await find_user_id(self.api, address)
                if user_id is None:
                    get_logger(provider="scalekit").info(
                        "rpkit.scalekit.user_not_found", using="email_key"
                    )
        return passwordless_identity(provider_id, issuer, address, method, user_id=user_id)

    async def __call__(self, source: IdentitySource) -> IdentityFields:
        claims = source.claims
        sub = claims["sub"]
        email, name = _text(claims, "email"), _text(claims, "name")
        organization = _text(claims, "oid")
        subject = sub
        if USER_ID.fullmatch(sub) and not self.user_management and not self._hinted:
            self._hinted = True  # once per mapper: the option is an application's setting
            get_logger(provider="scalekit").warning(
                "rpkit.scalekit.user_management_detected",
                hint="pass user_management=True to scalekit() so headless sign-ins get usr_ keys",
            )
        if self.stable_key:
            subject = identity_key(sub, email=email, email_verified=claims.get("email_verified"))
            if subject != sub and organization is not None and email is not None:
                subject = await self._owned(sub, subject, email, claims)
        return IdentityFields(
            subject=subject,
            email=email,
            email_verified=claims.get("email_verified") is True,
            name=name,
            tenant=source.tenant,
            organization=organization,
            external_organization_id=_text(claims, "xoid"),
            external_user_id=_text(claims, "xuid"),
        )

    async def _owned(self, sub: str, key: str, email: str, claims: Mapping[str, Any]) -> str:
        """``key`` when the address's domain routes to the connection of this login, else
        ``sub``: an organization's IdP may assert any address, but only the organization that
        verified a domain gets it routed to its connection."""
        connection = _connection_of(sub, claims)
        if self.router is None or connection is None:
            get_logger(provider="scalekit").info(
                "rpkit.scalekit.identity_key_kept_sub", why="unchecked"
            )
            return sub
        _, domain = check_email(email)
        try:
            owners = await self.router.connections_for(domain)
        except ScalekitError as exc:
            # Neither key is safe to hand out: a split identity is as wrong as a merged one.
            msg = "the email domain's connections could not be looked up"
            raise ScalekitUnavailableError(msg, status=exc.status) from exc
        if any(owner.id == connection for owner in owners):
            return key
        get_logger(provider="scalekit").warning(
            "rpkit.scalekit.identity_key_kept_sub", why="domain_not_owned", connection=connection
        )
        return sub


def _connection_of(sub: str, claims: Mapping[str, Any]) -> str | None:
    """The connection a hosted login went through: ``amr[0]`` (Scalekit puts the connection id
    there), else the ``conn_...`` prefix of a modular ``sub``."""
    amr = claims.get("amr")
    if (
        isinstance(amr, (list, tuple))
        and amr
        and isinstance(amr[0], str)
        and amr[0].startswith("conn_")
    ):
        return amr[0]
    prefix, semicolon, _ = sub.partition(";")
    return prefix if semicolon and prefix.startswith("conn_") else None
