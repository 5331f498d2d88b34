"""The fake OP's misbehaviour knobs: one field per way an OpenID Provider can go wrong.

Every field defaults to honest behaviour. Set fields on ``fake_op.misbehave`` directly, or for a
block with ``with fake_op.misbehaving(...)``. Each field names the checklist rows
(``docs/knobs.md``) it serves.

Claim edits (``id_token_claims``, ``userinfo_claims``, ...) map a claim name to a new value, to
:data:`ABSENT` to remove the claim, or to a callable that receives the honest claims and returns
the new value::

    fake_op.misbehave.id_token_claims = {"nonce": lambda c: c["nonce"] + "1", "azp": ABSENT}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from rpkit.testing.keys import JWKSLayout
from rpkit.testing.minter import Tamper

__all__ = ["ABSENT", "Bounce", "Canned", "ClaimEdits", "Endpoint", "Misbehaviour", "apply_edits"]

Endpoint = Literal[
    "discovery", "authorize", "token", "userinfo", "jwks", "end_session", "profile", "extra", "par"
]
"""The fake OP's endpoints, as named in knobs and in the oracle. ``profile`` is an OAuth 2.0-only
provider's identity endpoint (GitHub's ``/user``); ``extra`` is every path of ``extra_json``;
``par`` is the pushed authorization request endpoint (RFC 9126)."""


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()
"""Marks a member to remove in a claim, metadata, token-response or callback edit."""

ClaimEdits = Mapping[str, Any]
"""Name → new value, :data:`ABSENT`, or ``callable(honest_claims) -> value``."""


def apply_edits(honest: Mapping[str, Any], edits: ClaimEdits) -> dict[str, Any]:
    """Apply ``edits`` to a copy of ``honest``; callables see the unedited mapping."""
    result = dict(honest)
    for name, edit in edits.items():
        value = edit(honest) if callable(edit) else edit
        if value is ABSENT:
            result.pop(name, None)
        else:
            result[name] = value
    return result


@dataclass(frozen=True)
class Canned:
    """A fixed response an endpoint returns instead of doing its job (rows 4, 18, 42, 47)."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "text/html; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Canned:
        """A JSON body of any shape (a bare array, ``{"keys": []}``, an OAuth error)."""
        return cls(status, json.dumps(obj).encode(), "application/json", dict(headers or {}))

    @classmethod
    def html(cls, text: str = "<html><body>Oops</body></html>", status: int = 200) -> Canned:
        """An HTML page where JSON was expected."""
        return cls(status, text.encode(), "text/html; charset=utf-8")

    @classmethod
    def error(cls, status: int = 500) -> Canned:
        """A bare server error."""
        return cls(status, b"internal error", "text/plain")

    @classmethod
    def bearer_error(cls, error: str = "invalid_token") -> Canned:
        """A 401 with ``WWW-Authenticate: Bearer error=...`` (RFC 6750 §3)."""
        return cls(401, b"", None, {"WWW-Authenticate": f'Bearer error="{error}"'})


@dataclass(frozen=True)
class Bounce:
    """Instead of answering, the authorization endpoint redirects the browser to another OP's
    authorization endpoint with the same request under another client id (row 11, mix-up)."""

    authorization_endpoint: str
    client_id: str
    redirect_uri: str | None = None
    """Replace ``redirect_uri`` too; None keeps the one the RP sent."""


CallbackMode = Literal["echo", "altered", "missing"]
IssMode = Literal["correct", "wrong", "missing"]


@dataclass
class Misbehaviour:
    """Every knob of the fake OP. The defaults describe an honest, modern OP."""

    # -- any endpoint ------------------------------------------------------------------------
    respond: dict[Endpoint, Canned] = field(default_factory=dict)
    """Endpoint → fixed response, e.g. ``{"jwks": Canned.error(500)}`` (rows 4, 18b, 42, 47)."""
    latency: dict[Endpoint, float] = field(default_factory=dict)
    """Endpoint → seconds to wait before answering (timeouts, row 42)."""
    clock_offset: int = 0
    """Seconds added to the OP's clock for every time it issues (rows 30–32, 35)."""

    # -- D: discovery --------------------------------------------------------------------------
    metadata: dict[str, Any] = field(default_factory=dict)
    """Edits to the discovery document: a wrong ``issuer`` (rows 2, 3), a removed required
    member (row 4), no ``code_challenge_methods_supported`` (row 5), the RFC 9207 flag (row 10),
    no ``end_session_endpoint`` (row 52)."""
    http_endpoints: bool = False
    """Advertise every endpoint with ``http://`` (row 4)."""

    # -- A: authorization response -------------------------------------------------------------
    callback_state: CallbackMode = "echo"
    """Return ``state`` as sent, altered (plus "1"), or not at all (row 7)."""
    callback_iss: IssMode = "correct"
    """The RFC 9207 ``iss`` response parameter: the issuer, the issuer plus "1", or none
    (row 10). Whether the metadata advertises it is ``metadata`` above. ``"correct"`` sends
    nothing where the OP has no RFC 9207 support (``FakeOP.authorization_response_iss``)."""
    callback_params: dict[str, Any] = field(default_factory=dict)
    """Edits to the callback parameters, e.g. ``{"code": ABSENT}``, or a raw Apple ``user``
    value: ``{"user": "not json"}``."""
    callback_duplicates: dict[str, Literal["same", "different"]] = field(default_factory=dict)
    """Parameters sent twice, with the same or a different second value (row 14)."""
    front_channel_tokens: frozenset[Literal["id_token", "access_token"]] = frozenset()
    """Tokens added to the code-flow callback (row 15)."""
    front_channel_in: Literal["query", "fragment"] = "query"
    """Where ``front_channel_tokens`` go."""
    authorize_error: str | None = None
    """Answer with this OAuth error (``login_required``, ``access_denied``) instead of a code,
    in the requested response mode (row 12)."""
    authorize_bounce: Bounce | None = None
    """Bounce the browser to another OP (row 11)."""

    # -- T: token endpoint ---------------------------------------------------------------------
    token_error: str | None = None
    """Answer the code exchange with HTTP 400 and this OAuth error (row 18a)."""
    token_fields: dict[str, Any] = field(default_factory=dict)
    """Edits to every token response JSON (code exchange, refresh, client credentials): no
    ``id_token`` (row 17), no ``access_token`` or ``token_type`` or ``token_type: mac`` (row 18),
    ``bEARER``, no ``expires_in``, another ``scope`` (row 19)."""

    # -- PAR and DPoP (RFC 9126, RFC 9449) ----------------------------------------------------
    par_error: str | None = None
    """Refuse every pushed authorization request with HTTP 400 and this OAuth error."""
    dpop_nonce: Literal["off", "required", "stale", "no_header"] = "off"
    """Server nonces in DPoP proofs (RFC 9449 §8, §9) at the token endpoint and UserInfo:
    ``required`` refuses a proof without the current nonce with ``use_dpop_nonce`` and a
    ``DPoP-Nonce`` header (honest, as a provider that wants nonces behaves); ``stale`` refuses
    every proof so, each time with a new nonce; ``no_header`` refuses without any nonce."""

    # -- I and K: ID token and keys ------------------------------------------------------------
    id_token_claims: dict[str, Any] = field(default_factory=dict)
    """Claim edits on ID tokens from the code exchange (rows 25–37)."""
    id_token_alg: str | None = None
    """Sign ID tokens with this algorithm instead of the client's registered one; HS* uses the
    client secret, ``none`` signs nothing (rows 22–24)."""
    id_token_header: dict[str, Any] = field(default_factory=dict)
    """Members merged into the ID token's header, e.g. an unknown ``crit`` (row 37a)."""
    id_token_tamper: Tamper | None = None
    """Break the ID token's signature or header in one way (rows 21–24, 37b, 38–41, 44)."""
    jwks_layout: JWKSLayout = JWKSLayout.STANDARD
    """Which key set ``jwks_uri`` serves; the no-kid layouts also sign without ``kid``
    (rows 38, 39)."""
    jwks_key_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Algorithm → members set on its published key: ``{"RS256": {"use": "enc"}}``,
    ``{"key_ops": ["encrypt"]}`` or ``{"alg": "PS256"}`` (row 43a)."""
    jwks_extra_keys: list[dict[str, Any]] = field(default_factory=list)
    """Raw JWKs added to the set, e.g. ``{"kty": "AKP", ...}`` (row 43b)."""
    rotate_keys_before_signing: bool = False
    """Rotate every key just before the next ID token is signed, then reset (row 40b)."""

    # -- U: UserInfo ---------------------------------------------------------------------------
    userinfo_claims: dict[str, Any] = field(default_factory=dict)
    """Claim edits on the UserInfo response: another or no ``sub`` (row 45), aggregated or
    distributed claims (row 49)."""
    userinfo_signed: bool = False
    """Answer UserInfo as a signed ``application/jwt`` even when the client did not register
    for it (row 48)."""
    userinfo_tamper: Tamper | None = None
    """Break the signed UserInfo JWT (row 48)."""

    # -- L: logout -----------------------------------------------------------------------------
    logout_state: CallbackMode | Literal["other"] = "echo"
    """Return ``state`` to ``post_logout_redirect_uri`` as sent, replaced by another, or not at
    all (row 51)."""

    # -- R: refresh ----------------------------------------------------------------------------
    refresh_error: str | None = None
    """Answer refresh with HTTP 400 and this OAuth error (row 60)."""
    refresh_minimal: bool = False
    """Answer refresh with neither ``id_token`` nor ``refresh_token`` (row 59)."""
    refresh_rotation: bool = True
    """Issue a new refresh token on refresh and revoke the old one (row 55)."""
    refresh_id_token_claims: dict[str, Any] = field(default_factory=dict)
    """Claim edits on ID tokens from a refresh: changed ``iss`` (row 56), ``sub`` (row 57),
    ``aud``, ``azp``, ``auth_time``, ``exp`` (row 58)."""
    refresh_id_token_tamper: Tamper | None = None
    """Break the refreshed ID token's signature (row 58)."""

    def latency_for(self, endpoint: Endpoint) -> float:
        """Seconds to wait before ``endpoint`` answers."""
        return self.latency.get(endpoint, 0.0)
