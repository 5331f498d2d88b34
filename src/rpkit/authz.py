"""Authorization data in tokens: where a provider puts roles, permissions and the organization,
and strict readers for them.

A provider's :class:`ClaimPaths` name the claims that hold each kind of authorization data;
presets and plugins set them (Keycloak's ``realm_access.roles``, Scalekit's ``roles``,
``permissions`` and ``oid``). A path is a dotted string (``realm_access.roles``), or a
:class:`ClaimPath` of literal segments for a claim name that itself contains dots (Auth0's
namespaced ``https://app.example/roles``). The segment ``{client_id}`` stands for the provider's
client id (Keycloak's ``resource_access.{client_id}.roles``); it is filled in one segment, so a
client id with dots stays one key.

Values are read strictly, never coerced: roles and permissions must be a JSON array of strings
(every provider that sends them sends arrays: Keycloak's ``realm_access.roles``, Entra ID's
``roles`` and ``groups``, Okta's ``groups``, Auth0's ``permissions``, Cognito's
``cognito:groups``, Scalekit's ``roles`` and ``permissions``; see the preset modules for the
sources), and the organization a non-empty string. A space-separated string, a number or an
object where an array belongs is *malformed*: it yields no value, which denies, exactly as a
missing claim does. With several paths for one kind, the arrays found are joined; one
malformed value among them denies the whole kind.

:class:`AccessTokenClaims` says how the relying party verifies the access token of its own
logins (the provider's keys and issuer, an audience rule, never an ID token), so that its claims
can be read too; an access token that fails any check contributes nothing.

Example:
    >>> from rpkit.authz import ClaimPath, ClaimPaths, read_names
    >>> paths = ClaimPaths(
    ...     roles=("realm_access.roles", ClaimPath.of("https://app.example/roles")),
    ... )
    >>> sorted(read_names({"realm_access": {"roles": ["admin"]}}, paths.roles))
    ['admin']
    >>> read_names({"realm_access": {"roles": "admin"}}, paths.roles) is None
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, Final, Literal

import msgspec

from rpkit.errors import ConfigurationError

__all__ = [
    "CLIENT_ID_PLACEHOLDER",
    "AccessTokenClaims",
    "ClaimPath",
    "ClaimPaths",
    "Kind",
    "bound_paths",
    "kept_claims",
    "read_names",
    "read_organization",
]

CLIENT_ID_PLACEHOLDER: Final = "{client_id}"
"""A whole path segment replaced by the provider's client id."""
MAX_SEGMENTS: Final = 8
"""Deepest path: claims nest a level or two; a longer path is a mistake."""
MAX_PATHS: Final = 8
"""Most paths per kind."""
_ASYMMETRIC: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
Kind = Literal["roles", "permissions", "organization"]
"""The kinds of authorization data a provider's :class:`ClaimPaths` locate."""


class ClaimPath(msgspec.Struct, frozen=True):
    """One claim path: the keys to follow from the top of the claims, in order.

    Build it with :meth:`parse` from a dotted string, or with :meth:`of` from literal segments
    when a key contains a dot.
    """

    segments: tuple[str, ...]
    """The keys, outermost first. ``{client_id}`` as a whole segment is a placeholder."""

    def __post_init__(self) -> None:
        problem = _segment_problem(self.segments)
        if problem is not None:
            raise ConfigurationError(f"claim path {self.segments!r}: {problem}")

    @classmethod
    def parse(cls, dotted: str) -> ClaimPath:
        """``"realm_access.roles"`` → ``ClaimPath(("realm_access", "roles"))``.

        Raises:
            ConfigurationError: an empty segment (``a..b``, a leading or trailing dot), one
                starting or ending with whitespace, braces other than the ``{client_id}``
                placeholder, or more than eight segments.
        """
        if not isinstance(dotted, str):
            raise ConfigurationError(f"a claim path is a dotted string, not {dotted!r}")
        return cls(tuple(dotted.split(".")))

    @classmethod
    def of(cls, *segments: str) -> ClaimPath:
        """A path of literal segments: ``ClaimPath.of("https://app.example/roles")`` is the
        one top-level claim of that name, dots and all."""
        return cls(segments)

    @property
    def needs_client_id(self) -> bool:
        """Whether a segment is the ``{client_id}`` placeholder."""
        return CLIENT_ID_PLACEHOLDER in self.segments

    def bind(self, client_id: str) -> ClaimPath:
        """This path with ``{client_id}`` replaced by ``client_id`` (one segment, whatever it
        contains)."""
        if not self.needs_client_id:
            return self
        return ClaimPath(
            tuple(client_id if s == CLIENT_ID_PLACEHOLDER else s for s in self.segments)
        )

    def __str__(self) -> str:
        if any("." in segment for segment in self.segments):
            return repr(self.segments)
        return ".".join(self.segments)


def _segment_problem(segments: Any) -> str | None:
    if type(segments) is not tuple or not segments:
        return "give one or more segments, as a tuple of strings"
    if len(segments) > MAX_SEGMENTS:
        return f"at most {MAX_SEGMENTS} segments"
    for segment in segments:
        if type(segment) is not str or not segment:
            return "every segment is a non-empty string (no '..', no leading or trailing dot)"
        if segment != segment.strip():
            # "roles, groups".split(",") from an environment variable: " groups" never matches
            return f"segment {segment!r} starts or ends with whitespace"
        if ("{" in segment or "}" in segment) and segment != CLIENT_ID_PLACEHOLDER:
            return f"braces only as the whole segment {CLIENT_ID_PLACEHOLDER!r}"
    return None


class ClaimPaths(msgspec.Struct, frozen=True, kw_only=True):
    """Where a provider puts each kind of authorization data, as claim paths.

    Each field takes dotted strings and :class:`ClaimPath` values (a tuple, even for one path);
    they are parsed at construction, so a malformed path fails at startup, and the fields hold
    :class:`ClaimPath` values from then on. An empty field means the provider has no such data:
    a guard asking for it denies.

    Example:
        >>> paths = ClaimPaths(roles=("roles",), organization=("oid",))
        >>> paths.roles
        (ClaimPath(segments=('roles',)),)
    """

    roles: tuple[str | ClaimPath, ...] = ()
    """Arrays of role names (``realm_access.roles``, ``roles``, ``cognito:groups``)."""
    permissions: tuple[str | ClaimPath, ...] = ()
    """Arrays of permission names (Auth0's and Scalekit's ``permissions``)."""
    organization: tuple[str | ClaimPath, ...] = ()
    """The organization's id, a string (Scalekit's ``oid``). With several paths, every one
    present must name the same organization."""

    def __post_init__(self) -> None:
        for kind in ("roles", "permissions", "organization"):
            msgspec.structs.force_setattr(self, kind, _parsed(kind, getattr(self, kind)))

    def paths(self, kind: Kind) -> tuple[ClaimPath, ...]:
        """The paths of ``kind``."""
        return tuple(_as_path(path) for path in getattr(self, kind))

    @property
    def needs_client_id(self) -> bool:
        """Whether a path has the ``{client_id}`` placeholder."""
        return any(path.needs_client_id for kind in _KINDS for path in self.paths(kind))

    def bind(self, client_id: str) -> ClaimPaths:
        """These paths with ``{client_id}`` replaced by ``client_id``."""
        if not self.needs_client_id:
            return self
        bound = {kind: tuple(p.bind(client_id) for p in self.paths(kind)) for kind in _KINDS}
        return ClaimPaths(**bound)

    def all_paths(self) -> tuple[ClaimPath, ...]:
        """Every path of every kind."""
        return tuple(path for kind in _KINDS for path in self.paths(kind))


_KINDS: Final[tuple[Kind, ...]] = ("roles", "permissions", "organization")


def _parsed(kind: str, given: Any) -> tuple[ClaimPath, ...]:
    if isinstance(given, str | ClaimPath) or not isinstance(given, tuple | list):
        msg = f"ClaimPaths.{kind} takes a tuple of paths, e.g. ({given!r},)"
        raise ConfigurationError(msg)
    if len(given) > MAX_PATHS:
        raise ConfigurationError(f"ClaimPaths.{kind}: at most {MAX_PATHS} paths")
    return tuple(_as_path(path) for path in given)


def _as_path(path: str | ClaimPath) -> ClaimPath:
    return path if isinstance(path, ClaimPath) else ClaimPath.parse(path)


@lru_cache(maxsize=256)
def bound_paths(paths: ClaimPaths, client_id: str) -> ClaimPaths:
    """``paths.bind(client_id)``, remembered: guards ask on every request."""
    return paths.bind(client_id)


class AccessTokenClaims(msgspec.Struct, frozen=True, kw_only=True):
    """How the relying party verifies the access token of each login and refresh, to read its
    claims (``ProviderConfig.access_token_claims``).

    The token must be a JWT signed with one of :attr:`algorithms` by a key of the provider's
    ``jwks_uri``, its ``iss`` the provider's issuer (a tenant template filled with an allowed
    tenant, as for ID tokens), not expired, not an ID token (the bearer checks of
    :func:`rpkit.access_token.check_access_token_claims`), and :attr:`audience_claim` must name
    one of :attr:`audience`. A token failing any check contributes nothing: the login goes on,
    the session keeps no access claims, and one ``rpkit.access_claims.unverified`` info line
    says which check failed. Opaque tokens fail the same way.
    """

    audience: tuple[str, ...] = (CLIENT_ID_PLACEHOLDER,)
    """Accepted values of :attr:`audience_claim`; ``{client_id}`` is the provider's client id.
    Name what the provider really puts there: Scalekit ``aud`` is the client id, Auth0's
    is the API identifier the login asked for, Keycloak names the client in ``azp``."""
    audience_claim: Literal["aud", "azp", "client_id"] = "aud"
    """The claim that must hold one of :attr:`audience`. ``azp`` is for providers whose access
    tokens name the requesting client there and other services in ``aud`` (Keycloak, whose
    ``aud`` is ``account`` unless an Audience mapper adds more); ``client_id`` for those with no
    ``aud`` at all (Cognito). Only tokens from the provider's own token endpoint, for this
    client's login, are read this way: a bearer API must check ``aud`` (``AccessTokenPolicy``)."""
    algorithms: tuple[str, ...] = ("RS256",)
    """Accepted asymmetric signing algorithms (HS* and ``none`` are refused)."""

    def __post_init__(self) -> None:
        if not self.audience or not all(isinstance(a, str) and a for a in self.audience):
            raise ConfigurationError("AccessTokenClaims.audience needs non-empty strings")
        if self.audience_claim not in ("aud", "azp", "client_id"):
            raise ConfigurationError("AccessTokenClaims.audience_claim: aud, azp or client_id")
        weak = [alg for alg in self.algorithms if alg not in _ASYMMETRIC]
        if weak or not self.algorithms:
            msg = f"AccessTokenClaims.algorithms must be asymmetric, not {weak or 'empty'}"
            raise ConfigurationError(msg)

    def audiences(self, client_id: str) -> tuple[str, ...]:
        """:attr:`audience` with ``{client_id}`` filled in."""
        return tuple(client_id if a == CLIENT_ID_PLACEHOLDER else a for a in self.audience)


# -- reading ---------------------------------------------------------------------------------


class _Missing:
    pass


_MISSING: Final = _Missing()


def _lookup(claims: Mapping[str, Any], path: ClaimPath) -> Any:
    value: Any = claims
    for segment in path.segments:
        if not isinstance(value, Mapping):
            return _MISSING
        value = value.get(segment, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def _string_array(value: Any) -> bool:
    # Validated claims are frozen (arrays become tuples); stored sessions hold lists.
    return type(value) in (list, tuple) and all(type(item) is str for item in value)


def read_names(claims: Mapping[str, Any], paths: Iterable[ClaimPath]) -> frozenset[str] | None:
    """The names the arrays at ``paths`` hold, joined; None when no path holds a value, or
    one holds anything but a JSON array of strings (a string is not split, nothing is
    coerced). An empty array is a value: the empty set."""
    names: set[str] = set()
    found = False
    for path in paths:
        value = _lookup(claims, path)
        if value is _MISSING:
            continue
        if not _string_array(value):
            return None
        names.update(value)
        found = True
    return frozenset(names) if found else None


def read_organization(claims: Mapping[str, Any], paths: Iterable[ClaimPath]) -> str | None:
    """The organization at ``paths``: a non-empty string, the same at every path that has
    one; None when none has one, one holds anything else, or two disagree."""
    seen: set[str] = set()
    for path in paths:
        value = _lookup(claims, path)
        if value is _MISSING:
            continue
        if type(value) is not str or not value:
            return None
        seen.add(value)
    return next(iter(seen)) if len(seen) == 1 else None


def kept_claims(claims: Mapping[str, Any], paths: ClaimPaths) -> dict[str, Any]:
    """What a session keeps of verified access-token claims: only the values at ``paths``
    (bound to the client id already), nested as in the token, as plain JSON. Reading the same
    paths from the result gives what they give from ``claims``; the rest of the token (its
    identifiers, profile claims, custom data) is not stored."""
    kept: dict[str, Any] = {}
    for path in paths.all_paths():
        value = _lookup(claims, path)
        if value is _MISSING:
            continue
        node = kept
        for segment in path.segments[:-1]:
            child = node.get(segment)
            if not isinstance(child, dict):
                child = node[segment] = {}
            node = child
        node[path.segments[-1]] = _plain(value)
    return kept


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
