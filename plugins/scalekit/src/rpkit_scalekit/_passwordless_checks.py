"""What headless passwordless accepts, checked locally before anything reaches Scalekit: the
shape of one-time codes and link tokens, Scalekit's limits on template variables, and
:class:`PasswordlessEmail`, the email content the server (never a browser) decides.

Re-exported by :mod:`rpkit_scalekit.passwordless`, the public home of these names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit

from rpkit_scalekit.errors import PasswordlessCredentialFormatError, ScalekitInputError

__all__ = [
    "DEFAULT_OTP_LENGTH",
    "MAX_LINK_TOKEN_LENGTH",
    "MAX_TEMPLATE_VARIABLES",
    "RESERVED_TEMPLATE_VARIABLES",
    "PasswordlessEmail",
    "Template",
    "check_code",
    "check_length",
    "check_link_token",
    "check_magic_link_uri",
    "check_template_variables",
]

Template = Literal["SIGNIN", "SIGNUP"]
RESERVED_TEMPLATE_VARIABLES = frozenset(
    {"otp", "expiry_time_relative", "link", "expire_time", "expiry_time"}
)
"""Template variable names Scalekit fills itself and refuses from the caller."""
MAX_TEMPLATE_VARIABLES = 30
DEFAULT_OTP_LENGTH = 6
"""Digits of the one-time codes Scalekit emails (scalekit-sdk.md §8.7: "the current OTP (6
digits)"; the API accepts 1-20 characters, "typically 6 digits")."""
MAX_LINK_TOKEN_LENGTH = 100
"""Scalekit's bound on ``link_token`` (its tokens look like ``<uuid4>_l``)."""
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: a str pattern's range is of code points
_LINK_TOKEN = re.compile(r"[A-Za-z0-9_\-]+")


def check_length(value: object, name: str, low: int, high: int) -> str:
    """``value`` if it is a printable string of ``low``-``high`` characters.

    Raises:
        ScalekitInputError: anything else (``field=name``).
    """
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise ScalekitInputError(f"{name} must be a string of {low}-{high} characters", field=name)
    if not value.isprintable():
        raise ScalekitInputError(f"{name} contains control characters", field=name)
    return value


def check_code(code: object, length: int = DEFAULT_OTP_LENGTH) -> str:
    """``code`` if it is exactly ``length`` ASCII digits, the shape Scalekit issues.

    Checked before anything else, so a malformed code never spends one of the five attempts.
    Other scripts' digits (``"١٢٣٤٥٦"``, fullwidth ``"１２３４５６"``) and surrounding spaces are
    refused, not converted: the code is compared as typed.

    Raises:
        PasswordlessCredentialFormatError: anything else (``field="code"``).
    """
    if not isinstance(code, str) or len(code) != length or not _DIGITS.fullmatch(code):
        raise PasswordlessCredentialFormatError(
            f"the code must be {length} digits 0-9", field="code"
        )
    return code


def check_link_token(link_token: object) -> str:
    """``link_token`` if it is 1-100 URL-safe characters (letters, digits, ``-``, ``_``).

    Raises:
        PasswordlessCredentialFormatError: anything else (``field="link_token"``).
    """
    if (
        not isinstance(link_token, str)
        or not 0 < len(link_token) <= MAX_LINK_TOKEN_LENGTH
        or not _LINK_TOKEN.fullmatch(link_token)
    ):
        raise PasswordlessCredentialFormatError(
            "the link token is not one Scalekit issues", field="link_token"
        )
    return link_token


def check_template_variables(variables: Mapping[str, str] | None) -> dict[str, str]:
    """Scalekit's limits on ``template_variables``: at most 30 pairs, keys of 2-25 characters
    and not reserved, values of at most 256 characters.

    Raises:
        ScalekitInputError: a limit is exceeded (``field="template_variables"``).
    """
    name = "template_variables"
    variables = dict(variables or {})
    if len(variables) > MAX_TEMPLATE_VARIABLES:
        raise ScalekitInputError(f"at most {MAX_TEMPLATE_VARIABLES} template variables", field=name)
    for key, value in variables.items():
        check_length(key, name, 2, 25)
        if key in RESERVED_TEMPLATE_VARIABLES:
            raise ScalekitInputError(f"template variable {key!r} is reserved", field=name)
        if not isinstance(value, str) or len(value) > 256:
            raise ScalekitInputError(
                "template variable values are at most 256 characters", field=name
            )
    return variables


@dataclass(frozen=True)
class PasswordlessEmail:
    """What the passwordless email says, decided by the server and never by the browser.

    Whatever is here appears in mail sent from the application's domain, so the Litestar routes
    refuse every email-content field a browser sends; set it in configuration or compute it in
    a server-side hook. Checked at construction against Scalekit's limits.

    Raises:
        ScalekitInputError: an unknown template, or variables past Scalekit's limits.

    Example:
        >>> PasswordlessEmail(template_variables={"app_name": "Acme"}).template
        'SIGNIN'
    """

    template: Template = "SIGNIN"
    """``SIGNIN`` or ``SIGNUP``: which of the environment's email templates Scalekit uses."""
    template_variables: Mapping[str, str] = field(default_factory=dict)
    """Values for a custom template (at most 30; keys of 2-25 characters, not reserved; values
    of at most 256 characters). Never copy request values into it: they would let anyone put
    their own text and links into your mail."""

    def __post_init__(self) -> None:
        if self.template not in ("SIGNIN", "SIGNUP"):
            raise ScalekitInputError("template must be SIGNIN or SIGNUP", field="template")
        variables = MappingProxyType(check_template_variables(self.template_variables))
        object.__setattr__(self, "template_variables", variables)


def check_magic_link_uri(uri: str) -> str:
    """``uri`` if it is an absolute http(s) URL of at most 1000 characters, without fragment.

    Raises:
        ScalekitInputError: anything else (``field="magiclink_auth_uri"``).
    """
    check_length(uri, "magiclink_auth_uri", 1, 1000)
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
        raise ScalekitInputError(
            "magiclink_auth_uri must be an absolute http(s) URL without fragment",
            field="magiclink_auth_uri",
        )
    return uri
