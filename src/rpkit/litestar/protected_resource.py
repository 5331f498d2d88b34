"""OAuth 2.0 Protected Resource Metadata (RFC 9728) for a bearer-protected API or MCP server.

A :class:`ProtectedResource` names the API (its resource identifier, an absolute URL) and the
authorization servers that mint tokens for it. Given to
:class:`~rpkit.litestar.bearer.OIDCBearerAuth`, it is served as JSON at the RFC 9728 well-known
URL (§3: ``/.well-known/oauth-protected-resource`` inserted between the host and the path, so
``https://api.example.com/mcp`` publishes at
``https://api.example.com/.well-known/oauth-protected-resource/mcp``), that URL is named in every
``WWW-Authenticate`` challenge (``resource_metadata``, §5.1), and the bearer config refuses to
start unless every policy's audience holds the resource identifier, so a token minted for another
resource (RFC 8707 §2: the audience of a token requested with ``resource``) is refused.

When the bearer config accepts DPoP (RFC 9449), the document also says so (RFC 9728 §2,
https://www.rfc-editor.org/rfc/rfc9728#section-2): ``dpop_signing_alg_values_supported`` lists the
proof algorithms of its :class:`~rpkit.dpop_verify.DPoPPolicy`, and with ``dpop="required"``,
``dpop_bound_access_tokens_required`` is ``true``. Both come from the bearer config, never from
this class, so the document cannot disagree with what the middleware accepts.

Scalekit's MCP guide asks for exactly this of an MCP server protected by Scalekit
(https://docs.scalekit.com/guides/mcp/oauth: publish ``/.well-known/oauth-protected-resource``,
answer 401 with ``WWW-Authenticate: Bearer ... resource_metadata="<url>"``, check ``aud``, ``iss``
and ``scope``); the MCP authorization specification asks it of every HTTP MCP server.

Example:
    >>> resource = ProtectedResource(
    ...     resource="https://mcp.example.com/mcp",
    ...     authorization_servers=("https://acme.scalekit.com/resources/res_1",),
    ...     scopes_supported=("todo:read", "todo:write"),
    ... )
    >>> resource.metadata_url
    'https://mcp.example.com/.well-known/oauth-protected-resource/mcp'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import msgspec
from litestar import Request, Response, get, route

from rpkit._log import get_logger
from rpkit.config import is_loopback_http
from rpkit.errors import ConfigurationError
from rpkit.litestar._bearer_middleware import PUBLIC_METADATA_OPT
from rpkit.litestar._challenge import QUOTABLE, SCOPE_TOKEN

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

    from rpkit.litestar._dpop import DPoPMode

__all__ = ["WELL_KNOWN_PATH", "ProtectedResource"]

WELL_KNOWN_PATH: Final = "/.well-known/oauth-protected-resource"
"""The well-known URI suffix of RFC 9728 §3 (registered in §8.3)."""
_BEARER_METHODS: Final = ("header",)
"""What rpkit reads: ``Authorization: Bearer`` only (RFC 6750 §2.1), never a form or query
token, so no other method may be advertised."""


@dataclass(frozen=True)
class ProtectedResource:
    """An API's RFC 9728 metadata: what it is, who issues its tokens, which scopes it knows.

    Refused at construction (:class:`~rpkit.errors.ConfigurationError`) when a URL is not an
    absolute ``https`` URL (``http`` only on a loopback address, logged as a relaxation at
    startup), has a query or a fragment (RFC 8707 §2, RFC 9728 §1.2), or carries user
    information; when there is no authorization server; or when a scope is not an RFC 6749 scope
    token.
    """

    resource: str
    """The resource identifier (RFC 9728 §1.2, RFC 8707 §2): the URL clients call, e.g.
    ``https://mcp.example.com/mcp`` for an MCP endpoint. It is the ``resource`` clients ask the
    authorization server for and the ``aud`` the tokens must carry; every policy's ``audience``
    must list it. Also what clients compare against the URL they called (RFC 9728 §3.3), so use
    the public URL, not an internal one."""
    authorization_servers: tuple[str, ...]
    """Issuer identifiers of the authorization servers whose tokens this resource accepts
    (RFC 9728 §2), e.g. Scalekit's ``{env}/resources/{resource_id}``. Each must be accepted by
    one of the bearer policies; clients discover the server's metadata from it (RFC 8414)."""
    scopes_supported: tuple[str, ...] = ()
    """Scopes clients may request for this resource (RFC 9728 §2, RECOMMENDED). MCP clients
    request these when a challenge names no scope. Omitted from the document when empty."""
    bearer_methods_supported: tuple[str, ...] = ("header",)
    """How a token may be sent: only ``("header",)``, since rpkit reads nothing else (a DPoP
    token travels in the ``Authorization`` header too, RFC 9449 §7.1); ``()`` omits the
    member."""
    resource_name: str | None = None
    """A human-readable name for consent screens (RFC 9728 §2). Public."""
    resource_documentation: str | None = None
    """A URL of documentation for developers (RFC 9728 §2). Public."""
    serve_at_root: bool = False
    """Also serve the document at ``/.well-known/oauth-protected-resource`` when the resource
    identifier has a path. For clients that only look at the root (Scalekit's guide publishes
    there); the document still names the identifier with its path, which strict clients
    compare with the URL they called (§3.3). Only one resource per host can take the root."""
    max_age: int = 3600
    """``Cache-Control: public, max-age=...`` of the document, in seconds: it changes only
    with a deployment, and clients fetch it after every 401. ``0`` sends ``no-cache``."""

    metadata_url: str = field(init=False)
    """The absolute URL of the document (RFC 9728 §3.1), named in every challenge."""
    metadata_path: str = field(init=False)
    """The path of :attr:`metadata_url` on this host."""

    def __post_init__(self) -> None:
        for name in ("authorization_servers", "scopes_supported", "bearer_methods_supported"):
            value = getattr(self, name)
            if isinstance(value, str | bytes):  # a lone URL would be read letter by letter
                raise ConfigurationError(f"ProtectedResource: {name} must be a tuple, not a string")
            object.__setattr__(self, name, tuple(value))
        problem = _problem(self)
        if problem is not None:
            raise ConfigurationError(f"ProtectedResource: {problem}")
        parts = urlsplit(self.resource)
        # §3.1: a path of "/" alone is the terminating slash after the host, removed before
        # the well-known suffix is inserted; any longer path follows the suffix unchanged.
        path = "" if parts.path == "/" else parts.path
        object.__setattr__(self, "metadata_path", WELL_KNOWN_PATH + path)
        object.__setattr__(
            self, "metadata_url", f"{parts.scheme}://{parts.netloc}{WELL_KNOWN_PATH}{path}"
        )

    def document(
        self, *, dpop: DPoPMode = "off", dpop_algorithms: Sequence[str] = ()
    ) -> dict[str, Any]:
        """The metadata document (RFC 9728 §2); empty optional members are left out.

        Args:
            dpop: the bearer config's DPoP mode: ``"allowed"`` and ``"required"`` publish
                ``dpop_signing_alg_values_supported``, ``"required"`` also
                ``dpop_bound_access_tokens_required: true`` (omitted means false, §2).
            dpop_algorithms: the proof algorithms the bearer config accepts.
        """
        members: dict[str, Any] = {
            "resource": self.resource,
            "authorization_servers": list(self.authorization_servers),
            "scopes_supported": list(self.scopes_supported),
            "bearer_methods_supported": list(self.bearer_methods_supported),
            "resource_name": self.resource_name,
            "resource_documentation": self.resource_documentation,
        }
        if dpop != "off":
            members["dpop_signing_alg_values_supported"] = list(dpop_algorithms)
        if dpop == "required":
            members["dpop_bound_access_tokens_required"] = True
        return {name: value for name, value in members.items() if value not in (None, [])}

    def route_handlers(
        self,
        exclude_opt_key: str = "exclude_from_auth",
        *,
        dpop: DPoPMode = "off",
        dpop_algorithms: Sequence[str] = (),
    ) -> list[HTTPRouteHandler]:
        """``GET`` handlers serving the document at :attr:`metadata_path` (and the root when
        :attr:`serve_at_root`), marked with ``exclude_opt_key`` so the bearer middleware lets
        them through (a client fetches them precisely because it has no token), and so that
        rpkit's guards set app-wide (:func:`~rpkit.litestar.bearer.requires_scopes`, and
        :func:`~rpkit.litestar.authz.requires_role` and its siblings) do too. Guards of your
        own that apply app-wide must let them through as well.

        :class:`~rpkit.litestar.bearer.OIDCBearerAuth` registers them itself, with its DPoP
        members (``dpop`` and ``dpop_algorithms``, see :meth:`document`); when the middleware
        is mounted on a router instead of the app, register the config's
        :meth:`~rpkit.litestar.bearer.OIDCBearerAuth.resource_handlers`, which passes them.
        """
        paths = [self.metadata_path]
        if self.serve_at_root and self.metadata_path != WELL_KNOWN_PATH:
            paths.append(WELL_KNOWN_PATH)
        cache = f"public, max-age={self.max_age}" if self.max_age else "no-cache"
        # The document is public and carries no credentials: any origin may read it (browser
        # MCP clients fetch it cross-origin), and it is the same for every caller.
        headers = {"Cache-Control": cache, "Access-Control-Allow-Origin": "*"}
        body = msgspec.json.encode(self.document(dpop=dpop, dpop_algorithms=dpop_algorithms))

        @get(
            paths,
            opt={exclude_opt_key: True, PUBLIC_METADATA_OPT: True},
            include_in_schema=False,
            sync_to_thread=False,
            name=f"rpkit_protected_resource_metadata:{self.metadata_path}",
        )
        def protected_resource_metadata() -> Response[bytes]:
            return Response(body, media_type="application/json", headers=headers)

        @route(
            paths,
            http_method=["OPTIONS"],
            opt={exclude_opt_key: True, PUBLIC_METADATA_OPT: True},
            include_in_schema=False,
            sync_to_thread=False,
            name=f"rpkit_protected_resource_preflight:{self.metadata_path}",
        )
        def protected_resource_preflight(request: Request[Any, Any, Any]) -> Response[None]:
            """CORS preflight: browser MCP clients send ``MCP-Protocol-Version`` with discovery
            requests (MCP authorization spec), which makes the browser ask first. The document
            is public and credential-free, so any origin may GET it with any header names."""
            return Response(None, status_code=204, headers=_preflight(request))

        # The OPTIONS handler first: registered after the GET, it would meet the OPTIONS handler
        # Litestar adds to every route that has none, and be refused as a duplicate.
        return [protected_resource_preflight, protected_resource_metadata]

    def log_relaxations(self) -> None:
        """Log ``http://`` loopback URLs as ``rpkit.startup.check_relaxed`` (development only)."""
        urls = [self.resource, *self.authorization_servers]
        for url in urls:
            if url.startswith("http://"):
                setting = f"ProtectedResource: http:// on loopback ({url}), for development only"
                get_logger(issuer=url).warning("rpkit.startup.check_relaxed", setting=setting)


_HEADER_NAMES = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:\s*,\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*")
"""A comma-separated list of header names (RFC 9110 tokens), as ``Access-Control-Request-Headers``
sends."""


def _preflight(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The CORS answer to a preflight of the metadata document: GET from any origin, the asked
    header names echoed when they are a bounded list of tokens (no credentials involved)."""
    headers = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "GET",
        "Access-Control-Max-Age": "86400",
        "Cache-Control": "no-store",
    }
    asked = request.headers.get("access-control-request-headers", "").strip()
    if asked and len(asked) <= 512 and _HEADER_NAMES.fullmatch(asked):
        headers["Access-Control-Allow-Headers"] = asked
    return headers


def _problem(resource: ProtectedResource) -> str | None:
    texts = [resource.resource, *resource.authorization_servers, *resource.scopes_supported]
    texts += [resource.resource_documentation or "", resource.resource_name or ""]
    if not all(isinstance(text, str) for text in texts):
        return "resource, authorization servers, scopes, name and documentation must be strings"
    urls = [("resource", resource.resource)]
    urls += [("authorization server", server) for server in resource.authorization_servers]
    if resource.resource_documentation is not None:
        urls.append(("resource_documentation", resource.resource_documentation))
    for name, url in urls:
        problem = _url_problem(url)
        if problem is not None:
            return f"{name} {url!r} {problem}"
    return _value_problem(resource)


def _value_problem(resource: ProtectedResource) -> str | None:
    bad = [scope for scope in resource.scopes_supported if not SCOPE_TOKEN.fullmatch(scope)]
    name, max_age = resource.resource_name, resource.max_age
    checks = (
        (
            not resource.authorization_servers,
            "name at least one authorization server (the issuer of this resource's tokens)",
        ),
        (bool(bad), f"scopes_supported {bad} are not RFC 6749 scope tokens"),
        (
            not set(resource.bearer_methods_supported) <= set(_BEARER_METHODS),
            "bearer_methods_supported may only be ('header',): rpkit reads no other method",
        ),
        (
            name is not None and (not name.strip() or not name.isprintable()),
            "resource_name must be printable text",
        ),
        (
            isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0,
            "max_age must be an integer number of seconds >= 0",
        ),
    )
    return next((message for failed, message in checks if failed), None)


def _url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        absolute = bool(parts.netloc and parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:  # an unbalanced "[", a port out of range
        return "is not a URL"
    checks = (
        (not absolute, "is not an absolute URL"),
        (
            parts.scheme != "https" and not is_loopback_http(url),
            "must use https (http only on a loopback address, for development)",
        ),
        ("?" in url or "#" in url, "must have no query and no fragment (RFC 8707 §2)"),
        ("@" in parts.netloc, "must carry no user information"),
        (
            not QUOTABLE.fullmatch(url) or " " in url,
            "must be printable ASCII without spaces, '\"' or '\\'",
        ),
    )
    return next((message for failed, message in checks if failed), None)
