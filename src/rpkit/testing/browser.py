"""What a browser would do with the fake OP's authorization response.

The fake OP auto-approves, so "logging in" is one request. :meth:`FakeOP.approve` makes it and
returns the callback the browser would deliver to the RP: a redirect (query or fragment) or an
auto-submitted form (``form_post``).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx

__all__ = ["AuthorizationResponse"]

_FORM = re.compile(r'<form method="post" action="([^"]*)"')
_INPUT = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')


@dataclass(frozen=True)
class AuthorizationResponse:
    """The OP's answer to an authorization request, as the browser would act on it."""

    status: int
    method: str
    """``GET`` for a redirect, ``POST`` for form_post; ``NONE`` when the OP showed a page."""
    url: str
    """Where the browser goes next, without the query (the RP's redirect URI, or another OP)."""
    params: tuple[tuple[str, str], ...]
    """Query or form parameters, in order, repeats kept."""
    fragment: tuple[tuple[str, str], ...] = ()
    """Fragment parameters, which a browser never sends to the server."""
    body: str = ""

    @property
    def location(self) -> str:
        """The full redirect target (query included), as in the ``Location`` header."""
        if not self.params:
            return self.url
        query = httpx.QueryParams(list(self.params))
        return f"{self.url}?{query}"

    def get(self, name: str) -> str | None:
        """The first value of ``name`` in the query or form, else in the fragment."""
        return next((v for k, v in (*self.params, *self.fragment) if k == name), None)

    @classmethod
    def from_response(cls, response: httpx.Response) -> AuthorizationResponse:
        """Interpret the OP's HTTP answer."""
        location = response.headers.get("location")
        if location is not None:
            parts = urlsplit(location)
            return cls(
                response.status_code,
                "GET",
                urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
                tuple(parse_qsl(parts.query, keep_blank_values=True)),
                tuple(parse_qsl(parts.fragment, keep_blank_values=True)),
            )
        text = response.text
        form = _FORM.search(text)
        if form is None:
            return cls(response.status_code, "NONE", "", (), (), text)
        fields = tuple((html.unescape(k), html.unescape(v)) for k, v in _INPUT.findall(text))
        return cls(response.status_code, "POST", html.unescape(form.group(1)), fields, (), text)
