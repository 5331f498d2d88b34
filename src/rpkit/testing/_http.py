"""Request parsing and response helpers shared by the fake OP's endpoints."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx

from rpkit.testing.oracle import RecordedRequest

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """An OAuth error the OP answers with (RFC 6749 §5.2), as JSON unless ``page`` is set."""

    def __init__(
        self,
        error: str,
        description: str = "",
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
        page: bool = False,
    ) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}
        self.page = page

    def response(self) -> httpx.Response:
        """The HTTP answer for this error."""
        if self.page:
            return html_response(f"<h1>{self.error}</h1><p>{self.description}</p>", self.status)
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return json_response(body, self.status, {**NO_STORE, **self.headers})


@dataclass
class OPRequest:
    """A parsed request to the fake OP."""

    method: str
    url: httpx.URL
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    headers: httpx.Headers
    json: Any
    record: RecordedRequest

    def all(self, name: str) -> list[str]:
        """Every value of ``name`` in the query and form body."""
        return [value for key, value in (*self.query, *self.form) if key == name]

    def get(self, name: str) -> str | None:
        """The single value of ``name``.

        Raises:
            OAuthError: ``invalid_request`` when the parameter is repeated (RFC 6749 §3.1).
        """
        values = self.all(name)
        if len(values) > 1:
            raise OAuthError("invalid_request", f"parameter {name!r} repeated")
        return values[0] if values else None


async def parse(request: httpx.Request, record_factory: Any) -> OPRequest:
    """Read ``request`` fully and record it through ``record_factory(query, form, json)``."""
    body = await request.aread()
    query = parse_qsl(request.url.query.decode(), keep_blank_values=True)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    form: list[tuple[str, str]] = []
    payload: Any = None
    if content_type == "application/x-www-form-urlencoded":
        form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    elif content_type == "application/json" and body:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
    record = record_factory(tuple(query), tuple(form), payload)
    return OPRequest(request.method, request.url, query, form, request.headers, payload, record)


def json_response(
    obj: Any, status: int = 200, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A JSON answer."""
    return httpx.Response(
        status,
        content=json.dumps(obj).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def html_response(text: str, status: int = 200) -> httpx.Response:
    """An HTML page."""
    page = f"<!doctype html><html><head><title>Fake OP</title></head><body>{text}</body></html>"
    return httpx.Response(
        status,
        content=page.encode(),
        headers={"Content-Type": "text/html; charset=utf-8", **NO_STORE},
    )


def redirect(location: str, status: int = 302) -> httpx.Response:
    """A redirect the browser follows."""
    return httpx.Response(status, headers={"Location": location, **NO_STORE})


def auto_post_form(action: str, fields: list[tuple[str, str]]) -> httpx.Response:
    """The form_post response mode: a page that POSTs ``fields`` to ``action`` on load."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in fields
    )
    text = (
        f'<form method="post" action="{html.escape(action)}" id="rp">{inputs}'
        '<noscript><button type="submit">Continue</button></noscript></form>'
        "<script>document.getElementById('rp').submit()</script>"
    )
    return html_response(text)
