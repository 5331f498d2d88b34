"""An identity mapper for providers whose identity is a flat set of claims: which claims make
the subject, and how much of the email to believe."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rpkit.errors import IdentityRefusedError
from rpkit.hooks import IdentityFields, IdentitySource

__all__ = ["ClaimsMapper", "claim_text", "is_true"]


def claim_text(claims: Mapping[str, Any], name: str) -> str | None:
    """Claim ``name`` when it is a non-empty string, else None."""
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


def is_true(value: Any, *, string_booleans: bool) -> bool:
    """The JSON ``true``; also the string ``"true"`` when ``string_booleans`` (Apple, Cognito)."""
    return value is True or (string_booleans and value == "true")


class ClaimsMapper:
    """An :class:`~rpkit.hooks.IdentityMapper` over ``source.claims`` (and UserInfo).

    Args:
        subject: the claims whose values, joined with ``:``, make the subject (``("tid",
            "oid")`` for Entra ID); each must be a non-empty string or an integer.
        string_booleans: accept ``"true"`` for ``email_verified``.
        trust_email_verified: False for providers whose ``email_verified`` is not evidence
            (Entra ID: any tenant admin can set any address): the email is then never verified.
    """

    def __init__(
        self,
        *,
        subject: tuple[str, ...] = ("sub",),
        string_booleans: bool = False,
        trust_email_verified: bool = True,
    ) -> None:
        self.subject = subject
        self.string_booleans = string_booleans
        self.trust_email_verified = trust_email_verified

    async def __call__(self, source: IdentitySource) -> IdentityFields:
        claims = {**(source.userinfo or {}), **source.claims}
        verified = self.trust_email_verified and is_true(
            claims.get("email_verified"), string_booleans=self.string_booleans
        )
        return IdentityFields(
            subject=self.subject_of(claims),
            email=claim_text(claims, "email"),
            email_verified=verified,
            name=claim_text(claims, "name"),
            tenant=source.tenant,
        )

    def subject_of(self, claims: Mapping[str, Any]) -> str:
        """The subject the configured claims make.

        Raises:
            IdentityRefusedError: a subject claim is missing or not a string or integer.
        """
        parts = []
        for name in self.subject:
            value = claims.get(name)
            if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
                msg = f"the identity has no usable {name!r} claim for the subject"
                raise IdentityRefusedError(msg)
            parts.append(str(value))
        return ":".join(parts)
