"""The fake OP as a multi-tenant issuer, the way Microsoft Entra ID is one.

Discovery under ``/common/v2.0`` and ``/organizations/v2.0`` publishes the issuer *template*
``{base}/{tenantid}/v2.0`` with the braces; each token carries its user's tenant in ``tid`` and
the template filled with that tenant in ``iss``, plus the user's ``oid``
(https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#fetch-the-openid-configuration-document).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rpkit.testing.registry import FakeUser

TENANT_PLACEHOLDER = "{tenantid}"
DISCOVERY_TENANTS = ("common", "organizations")
"""The tenant-independent discovery documents, each publishing the template."""
_OID_NAMESPACE = uuid.UUID("5f0c6a2e-7e57-4000-8000-000000000001")


def issuer_template(base: str) -> str:
    """The issuer template of a multi-tenant OP at ``base`` (its issuer without a slash)."""
    return f"{base}/{TENANT_PLACEHOLDER}/v2.0"


def discovery_paths(base_path: str, discovery_path: str) -> list[str]:
    """Where the template's discovery documents are served, ``/common`` first."""
    return [f"{base_path}/{tenant}/v2.0{discovery_path}" for tenant in DISCOVERY_TENANTS]


def object_id(user: FakeUser) -> str:
    """The user's ``oid``: the ``oid`` claim when the user has one, else a GUID derived from
    ``sub`` (the same in every FakeOP and every run)."""
    return str(user.claims.get("oid") or uuid.uuid5(_OID_NAMESPACE, user.sub))


def tenant_claims(template: str, user: FakeUser) -> dict[str, Any]:
    """``iss``, ``tid`` and ``oid`` for ``user``'s tokens; a user without a tenant gets no
    ``tid`` and the unfilled template as ``iss``."""
    if user.tenant_id is None:
        return {"iss": template, "oid": object_id(user)}
    issuer = template.replace(TENANT_PLACEHOLDER, user.tenant_id)
    return {"iss": issuer, "tid": user.tenant_id, "oid": object_id(user)}
