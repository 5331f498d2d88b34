"""Back-channel logout tokens, honest or malformed in each way the OIDF suite tests (row 54)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from rpkit.testing.knobs import ABSENT, apply_edits
from rpkit.testing.minter import Tamper

if TYPE_CHECKING:
    from rpkit.testing.op import FakeOP

__all__ = ["LogoutDefect", "mint_logout_token"]


class LogoutDefect(StrEnum):
    """One way a logout token can be malformed (Back-Channel Logout §2.6, checklist row 54)."""

    ALG_NONE = "alg_none"
    """``alg: none`` and an empty signature."""
    WRONG_ALG = "wrong_alg"
    """Signed by the OP with a real key, but not with the client's registered algorithm."""
    WRONG_ISSUER = "wrong_issuer"
    """``iss`` is the issuer plus "1"."""
    WRONG_AUD = "wrong_aud"
    """``aud`` is the client id plus "1"."""
    NO_EVENT = "no_event"
    """No ``events`` claim."""
    WRONG_EVENT = "wrong_event"
    """``events`` lacks the back-channel logout member."""
    WITH_NONCE = "with_nonce"
    """Carries a ``nonce``, which logout tokens must not."""
    NO_SID_NO_SUB = "no_sid_no_sub"
    """Names neither a session nor a user."""
    BAD_SIGNATURE = "bad_signature"
    """The signature bytes are corrupted."""
    EXPIRED = "expired"
    """``exp`` half an hour ago."""


_CLAIM_EDITS: dict[LogoutDefect, dict[str, Any]] = {
    LogoutDefect.WRONG_ISSUER: {"iss": lambda c: c["iss"] + "1"},
    LogoutDefect.WRONG_AUD: {"aud": lambda c: c["aud"] + "1"},
    LogoutDefect.NO_EVENT: {"events": ABSENT},
    LogoutDefect.WRONG_EVENT: {"events": {"http://schemas.openid.net/event/other": {}}},
    LogoutDefect.WITH_NONCE: {"nonce": "n-0S6_WzA2Mj"},
    LogoutDefect.NO_SID_NO_SUB: {"sid": ABSENT, "sub": ABSENT},
    LogoutDefect.EXPIRED: {"iat": lambda c: c["iat"] - 3600, "exp": lambda c: c["iat"] - 1800},
}
_TAMPER = {LogoutDefect.ALG_NONE: Tamper.ALG_NONE, LogoutDefect.BAD_SIGNATURE: Tamper.BAD_SIGNATURE}


def mint_logout_token(
    op: FakeOP, client_id: str, *, sub: str | None, sid: str | None, defect: LogoutDefect | None
) -> str:
    """A logout token for ``client_id`` naming ``sub`` and/or ``sid``, with ``defect``."""
    client = op.clients[client_id]
    alg = client.id_token_signed_response_alg
    if defect is LogoutDefect.WRONG_ALG:
        alg = "ES256" if alg != "ES256" else "RS256"
    honest = op.minter.mint_logout_token(
        audience=client_id, subject=sub, sid=sid, alg=alg, secret=client.client_secret
    )
    if defect is None:
        return honest
    from rpkit.testing._jose import decode_unverified  # noqa: PLC0415

    _, claims = decode_unverified(honest)
    return op.minter.sign(
        apply_edits(claims, _CLAIM_EDITS.get(defect, {})),
        alg=alg,
        secret=client.client_secret,
        tamper=_TAMPER.get(defect),
        typ="logout+jwt",
    )
