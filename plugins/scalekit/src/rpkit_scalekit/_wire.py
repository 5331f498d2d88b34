"""Scalekit's REST conventions, read once: the google.rpc.Status error envelope, snake_case or
camelCase members, int64 values sent as strings, and ``Retry-After``.

grpc-gateway answers every non-2xx with ``{"code", "message", "details": [ErrorInfo...]}``;
:func:`read_problem` turns that (or anything else a proxy might send) into an :class:`ApiProblem`
whose strings are bounded and sanitised, so they can sit on an error without smuggling a long or
multi-line string into a log line.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import httpx
import msgspec

from rpkit_scalekit.errors import (
    FieldViolation,
    ScalekitAPIError,
    ScalekitAuthError,
    ScalekitError,
    ScalekitNotFoundError,
    ScalekitRateLimitedError,
    ScalekitUnavailableError,
)

__all__ = ["ApiProblem", "decode_object", "error_for", "freeze", "int_value", "read_problem"]

_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # fullmatch: "$" would pass a final "\n"
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_MAX_MESSAGE = 200
_MAX_RETRY_AFTER = 3600


class ApiProblem(msgspec.Struct, frozen=True, kw_only=True):
    """What a non-2xx answer said, bounded and sanitised."""

    status: int
    grpc_code: int | None = None
    message: str | None = None
    error_code: str | None = None
    request_id: str | None = None
    violations: tuple[FieldViolation, ...] = ()
    retry_after: int | None = None

    def fields(self) -> dict[str, Any]:
        """Keyword arguments for a :class:`~rpkit_scalekit.errors.ScalekitError`."""
        return {
            "status": self.status,
            "error_code": self.error_code,
            "request_id": self.request_id,
            "grpc_code": self.grpc_code,
            "message": self.message,
        }

    def mentions(self, *words: str) -> bool:
        """True when ``error_code`` or ``message`` contains one of ``words`` (case-insensitive).
        Scalekit documents no error codes for passwordless failures; its own demo apps match
        messages the same way."""
        text = f"{self.error_code or ''} {self.message or ''}".lower()
        return any(word in text for word in words)


def snake(name: str) -> str:
    """``requestId`` → ``request_id``; snake_case names are unchanged."""
    return _CAMEL.sub(r"_\1", name).lower()


def normalise(value: Any) -> Any:
    """Decoded JSON with every object key in snake_case (protojson may send camelCase)."""
    if type(value) is dict:
        return {snake(k) if isinstance(k, str) else k: normalise(v) for k, v in value.items()}
    if type(value) is list:
        return [normalise(v) for v in value]
    return value


def decode_object(content: bytes) -> dict[str, Any] | None:
    """A JSON object with snake_case keys, or None when the body is not one."""
    try:
        value = msgspec.json.decode(content)
    except (ValueError, RecursionError):  # msgspec errors, bad UTF-8, deep nesting
        return None
    return normalise(value) if type(value) is dict else None


def int_value(value: Any) -> int | None:
    """An integer sent as a JSON number or, for int64, a decimal string; None otherwise."""
    if type(value) is int:
        return int(value)
    if type(value) is str and len(value) <= 20 and value.isascii() and value.lstrip("-").isdigit():
        return int(value)  # int64 has at most 19 digits and a sign
    return None


def clean(value: Any, limit: int = _MAX_MESSAGE) -> str | None:
    """A string without control characters, truncated; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    text = "".join(c if c.isprintable() else " " for c in value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _code(value: Any) -> str | None:
    return value if isinstance(value, str) and _CODE.fullmatch(value) else None


def read_problem(response: httpx.Response, *, clock: Callable[[], float] = time.time) -> ApiProblem:
    """Parse a non-2xx answer: the Status envelope when there is one, else only the status."""
    body = decode_object(response.content) or {}
    info = _error_info(body.get("details"))
    request_info = info.get("request_info")
    request_id = request_info.get("request_id") if type(request_info) is dict else None
    return ApiProblem(
        status=response.status_code,
        grpc_code=int_value(body.get("code")),
        message=clean(body.get("message") or body.get("error_description")),
        error_code=_code(info.get("error_code") or body.get("error")),
        request_id=_code(request_id or response.headers.get("x-request-id")),
        violations=_violations(info.get("validation_error_info")),
        retry_after=_retry_after(response.headers.get("retry-after"), clock()),
    )


def _error_info(details: Any) -> dict[str, Any]:
    """The first ``ErrorInfo`` of ``details`` (any other detail type is ignored)."""
    if type(details) is not list:
        return {}
    for detail in details:
        if type(detail) is dict and str(detail.get("@type", "")).endswith(".ErrorInfo"):
            return detail
    return {}


def _violations(info: Any) -> tuple[FieldViolation, ...]:
    entries = info.get("field_violations") if type(info) is dict else None
    if type(entries) is not list:
        return ()
    found = []
    for entry in entries[:20]:
        if type(entry) is dict:
            field = clean(entry.get("field"), 100) or "?"
            found.append((field, clean(entry.get("constraint"), 100) or "?"))
    return tuple(found)


def _retry_after(value: str | None, now: float) -> int | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), capped at an hour."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return _MAX_RETRY_AFTER if len(value) > 10 else min(int(value), _MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, min(int(when.timestamp() - now), _MAX_RETRY_AFTER))


def error_for(problem: ApiProblem, what: str) -> ScalekitError:
    """The generic error for a refusal of ``what`` (e.g. ``"GET /api/v1/connections"``)."""
    detail = f"{what} answered HTTP {problem.status}"
    if problem.error_code:
        detail += f" ({problem.error_code})"
    status = problem.status
    if status in (401, 403):
        return ScalekitAuthError(detail, **problem.fields())
    if status == 404:
        return ScalekitNotFoundError(detail, **problem.fields(), violations=problem.violations)
    if status == 429:
        return ScalekitRateLimitedError(detail, retry_after=problem.retry_after, **problem.fields())
    if status >= 500:
        return ScalekitUnavailableError(detail, **problem.fields())
    return ScalekitAPIError(detail, **problem.fields(), violations=problem.violations)


def freeze(value: Any) -> Any:
    """Decoded JSON made deeply read-only (objects as mapping proxies, arrays as tuples)."""
    if type(value) is dict:
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if type(value) is list:
        return tuple(freeze(v) for v in value)
    return value


def frozen_mapping(value: Any) -> Mapping[str, Any]:
    """:func:`freeze` of a JSON object; an empty mapping for anything else."""
    return freeze(value) if type(value) is dict else MappingProxyType({})
