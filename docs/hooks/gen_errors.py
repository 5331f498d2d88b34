"""The error-code tables, from the code: every ``RPKitError``, every bearer refusal, and every
error of the Scalekit plugin.

The rows come from :mod:`rpkit.errors` (class, ``code``, docstring) in source order; the HTTP
columns come from the Litestar adapter's own functions and tables:
:func:`rpkit.litestar.responses.status_and_message` and
:func:`rpkit.litestar.responses.login_redirect` for the plugin's routes and guards, and the
bearer middleware's code and reason tables for ``OIDCBearerAuth``. The Scalekit rows come from
:mod:`rpkit_scalekit.errors` and the plugin's own table,
``rpkit_scalekit.litestar.SCALEKIT_STATUS_AND_MESSAGE``; the inline column is what
``passwordless_status`` tells the application's page.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from rpkit import errors
from rpkit.litestar import bearer, responses

__all__ = [
    "ErrorRow",
    "bearer_reasons",
    "bearer_refusals",
    "error_rows",
    "render",
    "render_bearer",
    "render_errors",
    "render_scalekit",
    "scalekit_rows",
]


@dataclass(frozen=True)
class ErrorRow:
    """One ``RPKitError`` subclass as the table shows it."""

    code: str
    name: str
    parent: str | None
    meaning: str
    status: int
    message: str
    redirects_to_login: bool
    """A browser's page load is answered with a 303 to the login route instead of a page."""


class _URL:
    path = "/page"


class _App:
    @staticmethod
    def route_reverse(name: str, **params: Any) -> str:
        return "/auth/login/" + str(params.get("provider_id", ""))


class _PageLoad:
    """Just enough of a Litestar request for ``login_redirect``: a browser's HTML ``GET``."""

    method = "GET"
    headers = {"accept": "text/html"}  # noqa: RUF012 - a read-only stand-in
    scope: dict[str, Any] = {}  # noqa: RUF012
    url = _URL()
    app = _App()


def _bare(cls: type[errors.RPKitError]) -> errors.RPKitError:
    """An instance without running ``__init__`` (constructors differ), with the attributes the
    adapter reads set as a guard would set them."""
    exc = cls.__new__(cls)
    exc.provider_id = "provider"  # type: ignore[attr-defined]
    exc.max_age = 300  # type: ignore[attr-defined]
    return exc


def _meaning(cls: type) -> str:
    doc = inspect.cleandoc(cls.__doc__ or "")
    first = doc.split("\n\n")[0]
    return " ".join(first.split()).replace("``", "`")


def error_rows() -> list[ErrorRow]:
    """Every ``RPKitError`` class defined in :mod:`rpkit.errors`, in source order."""
    rows = []
    for value in vars(errors).values():
        if not (isinstance(value, type) and issubclass(value, errors.RPKitError)):
            continue
        exc = _bare(value)
        status, message = responses.status_and_message(exc)
        redirect = responses.login_redirect(_PageLoad(), exc) is not None  # type: ignore[arg-type]
        parent = value.__mro__[1].__name__ if value is not errors.RPKitError else None
        rows.append(
            ErrorRow(
                value.code,
                value.__name__,
                parent,
                _meaning(value),
                status,
                message,
                redirect,
            )
        )
    return rows


def render_errors() -> str:
    """The table of ``RPKitError`` codes."""
    lines = [
        "| `code` | Error class | Meaning | Browser (HTML) | API (JSON) |",
        "|---|---|---|---|---|",
    ]
    for row in error_rows():
        name = f"`{row.name}`" + (f" ({row.parent})" if row.parent else "")
        browser = f"{row.status} page: “{row.message}”"
        if row.redirects_to_login:
            browser = f"303 to the login route; else {browser}"
        api = f"{row.status} problem details"
        lines.append(f"| `{row.code}` | {name} | {row.meaning} | {browser} | {api} |")
    return "\n".join([*lines, ""])


def bearer_refusals() -> dict[str, tuple[int, str, str | None]]:
    """The adapter's table of bearer refusals: ``code`` → (status, title, RFC 6750 ``error``),
    from ``rpkit.litestar.responses.BEARER_REFUSALS``."""
    return dict(responses.BEARER_REFUSALS)


def bearer_reasons() -> dict[str, str]:
    """The core's ``reason`` of an invalid token → the ``detail`` the client is sent."""
    return dict(bearer._DESCRIPTIONS)


def render_bearer() -> str:
    """The tables of ``OIDCBearerAuth`` refusals and of the reasons for an invalid token."""
    lines = [
        "| `code` | HTTP | Problem `title` | RFC 6750 `error` | `WWW-Authenticate` |",
        "|---|---|---|---|---|",
    ]
    for code, (status, title, error) in bearer_refusals().items():
        challenge = "no (the token was not judged)" if status == 503 else "yes"
        shown_error = f"`{error}`" if error else "none"
        lines.append(f"| `{code}` | {status} | {title} | {shown_error} | {challenge} |")
    lines += [
        "",
        "An `access_token_invalid` refusal carries one of these `detail` texts, chosen by the",
        "check that failed (the core's `reason`); the token itself is never echoed:",
        "",
        "| `reason` | `detail` sent to the client |",
        "|---|---|",
    ]
    lines += [f"| `{reason}` | {text} |" for reason, text in bearer_reasons().items()]
    return "\n".join([*lines, ""])


def scalekit_rows() -> list[ErrorRow]:
    """Every error class of the Scalekit plugin (:mod:`rpkit_scalekit.errors` in source order,
    then the body refusal of its routes), with the plugin's status and message."""
    from rpkit_scalekit import _inbound  # noqa: PLC0415 - only for this table
    from rpkit_scalekit import errors as scalekit_errors  # noqa: PLC0415
    from rpkit_scalekit.litestar import SCALEKIT_STATUS_AND_MESSAGE  # noqa: PLC0415

    classes = [
        value
        for value in vars(scalekit_errors).values()
        if isinstance(value, type) and issubclass(value, scalekit_errors.ScalekitError)
    ]
    rows = []
    for cls in [*classes, _inbound.UnsupportedBodyError]:
        status, message = next(
            (s, m) for kind, s, m in SCALEKIT_STATUS_AND_MESSAGE if issubclass(cls, kind)
        )
        parent = cls.__mro__[1].__name__
        rows.append(ErrorRow(cls.code, cls.__name__, parent, _meaning(cls), status, message, False))
    return rows


_PASSWORDLESS_STEP_CODES = frozenset(
    {
        "scalekit_error",
        "scalekit_invalid_input",
        "invalid_email",
        "scalekit_unavailable",
        "scalekit_auth_failed",
        "scalekit_api_error",
        "scalekit_not_found",
        "scalekit_rate_limited",
    }
)
"""Codes a passwordless step (send, resend, verify, magic link, restart) can end with."""


def _inline(row: ErrorRow) -> str:
    """What the application's passwordless page is told for this code (numbers unknown)."""
    from rpkit_scalekit._passwordless_pages import message_for  # noqa: PLC0415
    from rpkit_scalekit.passwordless import PasswordlessStatus  # noqa: PLC0415

    if row.code in ("passwordless_email_content_refused", "unsupported_body"):
        return "never: always the error answer"
    if row.code not in _PASSWORDLESS_STEP_CODES and not row.code.startswith("passwordless_"):
        return "— (not a passwordless step)"
    status = PasswordlessStatus(step="verify", code=row.code, http_status=row.status)
    return f"“{message_for(status)}”"


def render_scalekit() -> str:
    """The table of the Scalekit plugin's codes."""
    lines = [
        "| `code` | Error class | Meaning | HTTP | Error page / `title` | "
        "On the app's passwordless page |",
        "|---|---|---|---|---|---|",
    ]
    for row in scalekit_rows():
        name = f"`{row.name}` ({row.parent})"
        lines.append(
            f"| `{row.code}` | {name} | {row.meaning} | {row.status} | “{row.message}” | "
            f"{_inline(row)} |"
        )
    return "\n".join([*lines, ""])


def render(which: str) -> str:
    """``errors``, ``bearer`` or ``scalekit``."""
    return {"errors": render_errors, "bearer": render_bearer, "scalekit": render_scalekit}[which]()
