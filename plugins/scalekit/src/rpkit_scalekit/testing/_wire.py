"""Wire helpers of the fake Scalekit: parsed requests, the two error shapes, JSON answers.

Scalekit answers OAuth endpoints with RFC 6749 error JSON and its REST API (grpc-gateway) with a
``google.rpc.Status`` envelope whose ``details`` hold one ``scalekit.v1.errdetails.ErrorInfo``
(scalekit-sdk.md §3, §8.6).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx

from rpkit.testing._http import json_response

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
ERROR_INFO_TYPE = "type.googleapis.com/scalekit.v1.errdetails.ErrorInfo"

GRPC_CODE_NAMES = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    16: "UNAUTHENTICATED",
}
"""gRPC status codes by number, as the envelope's ``code`` carries them."""

HTTP_TO_GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 501: 12, 503: 14, 504: 4}
"""grpc-gateway's HTTP status → gRPC code mapping (the first code where several map to one)."""


def new_request_id() -> str:
    """A request id for ``ErrorInfo.request_info.request_id``."""
    return f"req_{secrets.randbelow(10**18):018d}"


@dataclass
class FieldViolation:
    """One ``validation_error_info.field_violations`` entry."""

    field: str
    description: str
    constraint: str

    def as_json(self) -> dict[str, str]:
        """The wire form."""
        return {"field": self.field, "description": self.description, "constraint": self.constraint}


class ApiError(Exception):
    """A REST API error answered as a ``google.rpc.Status`` envelope.

    Args:
        status: the HTTP status.
        message: the envelope's ``message``.
        error_code: ``ErrorInfo.error_code``; the gRPC code name when None.
        grpc_code: the envelope's ``code``; derived from ``status`` when None.
        violations: ``validation_error_info.field_violations``.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_code: str | None = None,
        grpc_code: int | None = None,
        violations: list[FieldViolation] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.grpc_code = HTTP_TO_GRPC.get(status, 2) if grpc_code is None else grpc_code
        self.error_code = error_code or GRPC_CODE_NAMES.get(self.grpc_code, "UNKNOWN")
        self.violations = violations or []

    def body(self, request_id: str) -> dict[str, Any]:
        """The envelope, with ``request_id`` in ``ErrorInfo.request_info``."""
        info: dict[str, Any] = {"@type": ERROR_INFO_TYPE, "error_code": self.error_code}
        if self.violations:
            info["validation_error_info"] = {
                "field_violations": [v.as_json() for v in self.violations]
            }
        info["request_info"] = {"request_id": request_id}
        return {"code": self.grpc_code, "message": self.message, "details": [info]}

    def response(self, request_id: str) -> httpx.Response:
        """The HTTP answer."""
        return json_response(self.body(request_id), self.status)

    @property
    def outcome(self) -> str:
        """How the recording describes this error."""
        return f"{self.status} {self.error_code}: {self.message}"


class OAuthError(Exception):
    """An OAuth error (RFC 6749 §5.2) from the token or authorize endpoint.

    ``page`` answers with an HTML error page instead of JSON: the authorize endpoint must not
    redirect to an unverified ``redirect_uri``.
    """

    def __init__(
        self, error: str, description: str = "", *, status: int = 400, page: bool = False
    ) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status
        self.page = page

    def response(self) -> httpx.Response:
        """The HTTP answer."""
        if self.page:
            return html_response(f"<h1>{self.error}</h1><p>{self.description}</p>", self.status)
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return json_response(body, self.status, NO_STORE)

    @property
    def outcome(self) -> str:
        """How the recording describes this error."""
        return f"{self.status} {self}"


@dataclass
class ParsedRequest:
    """A request as the fake's handlers see it."""

    method: str
    url: httpx.URL
    headers: httpx.Headers
    body: bytes
    query: list[tuple[str, str]]
    form: list[tuple[str, str]] = field(default_factory=list)
    json: Any = None
    request_id: str = field(default_factory=new_request_id)
    outcome: str | None = None
    """Set by a handler whose refusal is an answer, not an exception (an error redirect)."""

    def param(self, name: str) -> str | None:
        """The single value of ``name`` in the query or form.

        Raises:
            OAuthError: ``invalid_request`` when the parameter is repeated (RFC 6749 §3.1).
        """
        values = [value for key, value in (*self.query, *self.form) if key == name]
        if len(values) > 1:
            raise OAuthError("invalid_request", f"parameter {name!r} repeated")
        return values[0] if values else None

    def cookie(self, name: str) -> str | None:
        """The value of cookie ``name``, if the request carries it."""
        for header in self.headers.get_list("cookie"):
            for part in header.split(";"):
                key, _, value = part.strip().partition("=")
                if key == name:
                    return value
        return None

    def bearer(self) -> str | None:
        """The first ``Authorization: Bearer`` token, if any."""
        for value in self.headers.get_list("authorization"):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        return None


async def parse(request: httpx.Request) -> ParsedRequest:
    """Read ``request`` fully and decode its query, form or JSON body."""
    body = await request.aread()
    query = parse_qsl(request.url.query.decode(), keep_blank_values=True)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    parsed = ParsedRequest(request.method, request.url, request.headers, body, query)
    if content_type == "application/x-www-form-urlencoded":
        parsed.form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    elif body and content_type in ("application/json", ""):
        try:
            parsed.json = json.loads(body)
        except ValueError:
            parsed.json = None
    return parsed


def html_response(text: str, status: int = 200) -> httpx.Response:
    """An HTML page."""
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Fake Scalekit</title></head>"
        f"<body>{text}</body></html>"
    )
    return httpx.Response(
        status, content=page.encode(), headers={"Content-Type": "text/html; charset=utf-8"}
    )


def redirect(location: str) -> httpx.Response:
    """A 302 the browser follows."""
    return httpx.Response(302, headers={"Location": location, **NO_STORE})


_CAMEL = re.compile(r"_([a-z0-9])")


def camelize(obj: Any) -> Any:
    """``obj`` with every dict key in lowerCamelCase, recursively (protojson's JSON names)."""
    if isinstance(obj, dict):
        return {_CAMEL.sub(lambda m: m.group(1).upper(), k): camelize(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [camelize(item) for item in obj]
    return obj


Case = Literal["snake", "camel"]


def api_response(obj: dict[str, Any], case: Case) -> httpx.Response:
    """A REST API success answer in the configured key case."""
    return json_response(camelize(obj) if case == "camel" else obj)
