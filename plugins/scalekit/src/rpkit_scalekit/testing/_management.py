"""The fake Scalekit's management API: Bearer M2M authentication on every ``/api/v1/**`` path,
connections by domain or organization, and an organization's domains (scalekit-sdk.md §2.9,
§8.6, §8.8)."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

import httpx

from rpkit_scalekit.testing._wire import ApiError, ParsedRequest, api_response

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


def other(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """Any other ``/api/v1`` path: authenticated, then not found."""
    raise ApiError(404, f"{req.method} {req.url.path} is not served by the fake Scalekit")


def _domain_id(name: str) -> str:
    digits = int(hashlib.sha256(name.encode()).hexdigest()[:15], 16)
    return f"dom_{digits:018d}"
