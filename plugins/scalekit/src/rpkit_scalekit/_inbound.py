"""Bounds and shapes of what a browser sends the plugin's routes.

Every value is checked here, before any store lookup or request to Scalekit, and refused with a
typed :class:`~rpkit_scalekit.errors.ScalekitInputError` (answer 400). Email content is never
taken from a browser: a field that would shape the email Scalekit sends is refused by name.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import msgspec

from rpkit.flow import safe_return_to
from rpkit.litestar._cookies import binding_of
from rpkit_scalekit.errors import PasswordlessEmailContentError, ScalekitInputError

__all__ = [
    "CSRF_TOKEN_LENGTH",
    "EMAIL_CONTENT_FIELDS",
    "MAX_BODY_BYTES",
    "MAX_FIELD_LENGTH",
    "MAX_RETURN_TO_LENGTH",
    "Body",
    "UnsupportedBodyError",
    "csrf_matches",
    "csrf_token",
    "refuse_email_content",
    "return_to",
    "text",
]

MAX_BODY_BYTES = 16 * 1024
"""Bytes of a POST body (JSON or form) the routes read; Litestar answers 413 past it, while
streaming, before the body is held whole. The webhook route has its own bound."""
MAX_FIELD_LENGTH = 2048
"""Characters of any single string field; each field's own check is tighter."""
MAX_RETURN_TO_LENGTH = 2048
"""Characters of ``return_to`` (the bound of :func:`rpkit.flow.safe_return_to`)."""
EMAIL_CONTENT_FIELDS = frozenset(
    {
        "template",
        "template_variables",
        "magiclink_auth_uri",
        "state",
        "expires_in",
        "app_name",
        "app_logo_url",
    }
)
"""Fields of Scalekit's send request (and its branding variables) that a browser may not set;
any field whose name starts with ``template`` is refused too (``template_variables[x]`` forms)."""
CSRF_TOKEN_LENGTH = 64
"""Characters of a form's ``csrf_token`` (hex of an HMAC-SHA256); any other length is refused
before it is compared."""


class Body(msgspec.Struct, frozen=True):
    """A POST body as read once: its fields, and whether it came as JSON."""

    values: dict[str, Any]
    json: bool


class UnsupportedBodyError(ScalekitInputError):
    """A POST that is neither JSON nor a form (answer 400; it is never read)."""

    code = "unsupported_body"


def csrf_token(secret: str, handle: str) -> str:
    """The double-submit token of one transaction handle."""
    key = hashlib.sha256(b"rpkit scalekit csrf\x00" + secret.encode()).digest()
    return hmac.new(key, binding_of(handle).encode(), hashlib.sha256).hexdigest()


def csrf_matches(presented: object, expected: str) -> bool:
    """True when ``presented`` is the expected token: the shape first, then in constant
    time; an empty ``expected`` (no transaction in this browser) matches nothing."""
    if not (isinstance(presented, str) and len(presented) == CSRF_TOKEN_LENGTH and expected):
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def text(values: Mapping[str, Any], name: str, limit: int = MAX_FIELD_LENGTH) -> str | None:
    """The string field ``name``, or None when absent or empty.

    Raises:
        ScalekitInputError: not a string, or longer than ``limit`` characters.
    """
    value = values.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ScalekitInputError(f"{name} must be a string", field=name)
    if len(value) > limit:
        raise ScalekitInputError(f"{name} must be at most {limit} characters", field=name)
    return value


def refuse_email_content(values: Mapping[str, Any]) -> None:
    """Refuse a request that tries to choose what the passwordless email says.

    Raises:
        PasswordlessEmailContentError: a field of :data:`EMAIL_CONTENT_FIELDS` (or one named
            ``template...``) is present, whatever its value.
    """
    for name in values:
        if name in EMAIL_CONTENT_FIELDS or name.startswith("template"):
            # The field is named only when it is one of ours: an arbitrary key could carry
            # control characters into a log line.
            field = name if name in EMAIL_CONTENT_FIELDS else "template_variables"
            raise PasswordlessEmailContentError(
                f"{field} is set by the server, not by the browser", field=field
            )


def return_to(values: Mapping[str, Any], default: str) -> str:
    """The requested ``return_to`` when it is a same-origin relative path, else ``default``.

    Raises:
        ScalekitInputError: longer than :data:`MAX_RETURN_TO_LENGTH`, or holding characters
            no URL path has (controls, line breaks, other non-printables): refused, not
            silently replaced.
    """
    value = text(values, "return_to", MAX_RETURN_TO_LENGTH)
    if value is not None and not value.isprintable():
        raise ScalekitInputError("return_to holds control characters", field="return_to")
    return safe_return_to(value, default)
