"""The fake Scalekit's management API: Bearer M2M authentication on every ``/api/v1/**`` path,
connections by domain or organization, and an organization's domains (scalekit-sdk.md §2.9,
§8.6, §8.8)."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

import httpx

from rpkit_scalekit.testing._wire import ApiError, FieldViolation, ParsedRequest, api_response

if TYPE_CHECKING:
    from rpkit_scalekit.testing.fake import FakeScalekit

DOMAINS_PATH = re.compile(r"/api/v1/organizations/([^/]+)/domains")


def authenticate(fake: FakeScalekit, req: ParsedRequest) -> None:
    """Require a client-credentials token this fake issued, signed by a published key and not
    expired (on the fake's clock). ``x-api-version``/``x-sdk-version`` are recorded, not
    required.

    Raises:
        ApiError: 401 ``UNAUTHENTICATED``.
    """
    token = req.bearer()
    if token is None:
        raise ApiError(401, "Token empty", error_code="UNAUTHENTICATED")
    issued = fake.m2m_tokens.get(token)
    if issued is None or fake.keys.verify(token) is None:
        raise ApiError(401, "Invalid token", error_code="UNAUTHENTICATED")
    if issued.revoked or issued.expires_at <= fake.now():
        raise ApiError(401, "Token expired", error_code="UNAUTHENTICATED")


def _get_only(req: ParsedRequest) -> None:
    if req.method != "GET":
        raise ApiError(405, "Method Not Allowed", grpc_code=12)


def connections(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """``GET /api/v1/connections?domain=&organization_id=&include=``: filtered by domain
    (case-insensitive) and/or organization; only completed, enabled ones without
    ``include=all``."""
    _get_only(req)
    domain = (req.param("domain") or "").lower()
    organization_id = req.param("organization_id")
    everything = req.param("include") == "all"
    rows = [
        c.as_json()
        for c in fake.connections
        if (everything or c.active)
        and (not domain or domain in (d.lower() for d in c.domains))
        and (not organization_id or c.organization_id == organization_id)
    ]
    return api_response({"connections": rows}, fake.answers.response_case)


def domains(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """``GET /api/v1/organizations/{organization_id}/domains``: the domains of the
    organization's connections."""
    _get_only(req)
    match = DOMAINS_PATH.fullmatch(req.url.path)
    organization_id = match.group(1) if match else ""
    owned = [c for c in fake.connections if c.organization_id == organization_id]
    if not owned:
        raise ApiError(404, f"organization {organization_id} not found")
    names = sorted({d.lower() for c in owned for d in c.domains})
    rows = [
        {"id": _domain_id(name), "domain": name, "organization_id": organization_id}
        for name in names
    ]
    return api_response({"domains": rows}, fake.answers.response_case)


def users_search(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """``GET /api/v1/users:search?query=&page_size=&page_token=`` (``SearchUsers`` of
    scalekit-sdk-python's ``scalekit/v1/users/users_pb2.py``): the users whose email, id or
    external id contains ``query``, compared case-insensitively; ``query`` of 3 to 100
    characters, pages of 1 to 30 (30 when absent). Served only with ``user_management``: without
    it the environment has no users, and the fake answers 404 (Scalekit's answer there is not
    documented)."""
    _get_only(req)
    if not fake.user_management:
        raise ApiError(404, "user management is not enabled in this environment")
    query = req.param("query") or ""
    size = req.param("page_size") or "30"
    violations = []
    if not 3 <= len(query) <= 100:
        violations.append(FieldViolation("query", "value length must be 3 to 100", "string.len"))
    if not size.isdigit() or not 1 <= int(size) <= 30:
        violations.append(FieldViolation("page_size", "value must be 1 to 30", "uint32.lte"))
    token = req.param("page_token") or "0"
    if not token.isdigit():
        violations.append(FieldViolation("page_token", "invalid page token", "page_token"))
    if violations:
        raise ApiError(400, "invalid request", error_code="INVALID_ARGUMENT", violations=violations)
    wanted = query.lower()
    matches = [
        user
        for user in fake.users.values()
        if any(
            isinstance(value, str) and wanted in value.lower()
            for value in (user.sub, user.claims.get("email"), user.claims.get("xuid"))
        )
    ]
    start, end = int(token), int(token) + int(size)
    rows = [
        {
            "id": user.sub,
            "environment_id": fake.environment_id,
            "email": user.claims.get("email"),
            "external_id": user.claims.get("xuid"),
        }
        for user in matches[start:end]
    ]
    page = {
        "users": rows,
        "total_size": len(matches),
        "next_page_token": str(end) if end < len(matches) else "",
        "prev_page_token": str(max(start - int(size), 0)) if start else "",
    }
    return api_response(page, fake.answers.response_case)


def other(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """Any other ``/api/v1`` path: authenticated, then not found."""
    raise ApiError(404, f"{req.method} {req.url.path} is not served by the fake Scalekit")


def _domain_id(name: str) -> str:
    digits = int(hashlib.sha256(name.encode()).hexdigest()[:15], 16)
    return f"dom_{digits:018d}"
