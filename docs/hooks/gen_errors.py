"""The error-code tables, from the code: every ``RPKitError`` and every bearer refusal.

The rows come from :mod:`rpkit.errors` (class, ``code``, docstring) in source order; the HTTP
columns come from the Litestar adapter's own functions and tables:
:func:`rpkit.litestar.responses.status_and_message` and
:func:`rpkit.litestar.responses.login_redirect` for the plugin's routes and guards, and the
bearer middleware's code and reason tables for ``OIDCBearerAuth``.
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


def render(which: str) -> str:
    """``errors`` or ``bearer``."""
    return {"errors": render_errors, "bearer": render_bearer}[which]()
