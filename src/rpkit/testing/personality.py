"""A provider's personality: how the fake of a real provider differs from the honest fake OP.

The fakes in :mod:`rpkit.testing.providers` are :class:`~rpkit.testing.FakeOP` instances with a
:class:`Personality`: their real discovery-document shape, claim names and types, token
responses and access-token format. The personality shapes the *honest* answers; the
misbehaviour knobs still apply on top, so a test can make "Entra ID" misbehave too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rpkit.testing.registry import FakeClient, FakeUser

__all__ = ["ClaimShaper", "DocumentShaper", "Personality"]

DocumentShaper = Callable[[dict[str, Any]], dict[str, Any]]
"""Takes the honest document and returns the provider's (a new dict or the same one)."""
ClaimShaper = Callable[[dict[str, Any], "FakeUser | None", "FakeClient"], dict[str, Any]]
"""Takes honest claims, the user (None for client-credentials tokens) and the client."""
ResponseShaper = Callable[[dict[str, Any], "FakeClient"], dict[str, Any]]


def _keep_document(document: dict[str, Any]) -> dict[str, Any]:
    return document


def _keep_claims(claims: dict[str, Any], _: FakeUser | None, __: FakeClient) -> dict[str, Any]:
    return claims


def _keep_response(body: dict[str, Any], _: FakeClient) -> dict[str, Any]:
    return body


@dataclass
class Personality:
    """The shapes a provider's fake gives its honest answers; every one defaults to the fake
    OP's own."""

    metadata: DocumentShaper = _keep_document
    """The discovery document."""
    id_token_claims: ClaimShaper = _keep_claims
    """An ID token's claims (before the ``id_token_claims`` knob)."""
    access_token_claims: ClaimShaper = _keep_claims
    """A JWT access token's claims (RFC 9068 shape by default)."""
    access_token_typ: str | None = "at+jwt"
    """The access token's ``typ`` header; None omits it (Cognito, Entra ID v1)."""
    userinfo_claims: ClaimShaper = _keep_claims
    """UserInfo's JSON claims (before the ``userinfo_claims`` knob)."""
    token_response: ResponseShaper = _keep_response
    """The token endpoint's JSON body (before the ``token_fields`` knob)."""
    client_secret_verifier: Callable[[FakeClient, str], bool] | None = None
    """Checks a presented client secret (``client_secret_basic`` or ``_post``) instead of
    comparing it with :attr:`FakeClient.client_secret`: takes the client and the secret it
    sent, True accepts. Apple's fake verifies its ES256 client-secret JWT with the client's
    registered key. None compares the strings."""
    frontchannel_logout_iss: bool = True
    """Whether the end-session page's front-channel frames carry ``iss`` with ``sid``
    (Front-Channel Logout §2). Entra ID's carry ``sid`` only."""
