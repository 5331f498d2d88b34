"""Multi-tenant issuer templates: which concrete issuer a token may carry, and its tenant.

Entra ID's discovery of ``/common`` or ``/organizations`` publishes the issuer
``https://login.microsoftonline.com/{tenantid}/v2.0``; every token then carries its tenant's
issuer and the same tenant id in ``tid``
(https://learn.microsoft.com/entra/identity-platform/access-tokens#validate-the-issuer).
A token is accepted only when its ``iss`` is the template filled with the token's own tenant
claim, that claim has the tenant-id format, and the tenant is allowed by the
:class:`~rpkit.config.TenantPolicy`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from rpkit._jwt import Rejected, show
from rpkit.config import TENANT_PLACEHOLDER, TenantPolicy

__all__ = ["check_issuer", "fill", "is_allowed_issuer"]


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def fill(template: str, tenant: str) -> str:
    """``template`` with ``{tenantid}`` replaced by ``tenant``."""
    return template.replace(TENANT_PLACEHOLDER, tenant)


def _allowed(policy: TenantPolicy, tenant: Any) -> str:
    if type(tenant) is not str or not _compiled(policy.pattern).fullmatch(tenant):
        raise Rejected("tenant", f"{policy.claim} {show(tenant)} is not a tenant id")
    if not policy.any_tenant and tenant not in policy.allowed:
        raise Rejected("tenant", f"tenant {show(tenant)} is not allowed to sign in")
    return tenant


def check_issuer(
    claims: Mapping[str, Any], issuer: str, policy: TenantPolicy | None
) -> tuple[str, str | None]:
    """The token's issuer and tenant: ``iss`` exactly ``issuer`` (no template), or exactly the
    template filled with the token's allowed tenant claim.

    Raises:
        Rejected: ``iss`` (mismatch) or ``tenant`` (not a tenant id, or not allowed).
    """
    iss = claims.get("iss")
    if policy is None:
        if iss != issuer:  # exact string comparison, no normalisation (row 25)
            raise Rejected("iss", f"iss {show(iss)} is not {issuer!r}")
        return issuer, None
    tenant = _allowed(policy, claims.get(policy.claim))
    expected = fill(issuer, tenant)
    if iss != expected:
        raise Rejected("iss", f"iss {show(iss)} is not the issuer of tenant {show(tenant)}")
    return expected, tenant


def is_allowed_issuer(iss: str, issuer: str, policy: TenantPolicy | None) -> bool:
    """Whether a callback's ``iss`` (RFC 9207) names this provider: exactly ``issuer``, or the
    template filled with an allowed tenant id."""
    if policy is None:
        return iss == issuer
    prefix, _, suffix = issuer.partition(TENANT_PLACEHOLDER)
    if not (iss.startswith(prefix) and iss.endswith(suffix)) or len(iss) <= len(prefix + suffix):
        return False
    try:
        _allowed(policy, iss[len(prefix) : len(iss) - len(suffix)])
    except Rejected:
        return False
    return True
