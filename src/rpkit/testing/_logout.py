"""Back-channel logout tokens, honest or malformed in each way the OIDF suite tests (row 54),
and the front-channel logout page (Front-Channel Logout 1.0 §3)."""

from __future__ import annotations

import html
import json
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from rpkit.testing.knobs import ABSENT, apply_edits
from rpkit.testing.minter import Tamper

if TYPE_CHECKING:
    from rpkit.testing.op import FakeOP

__all__ = ["LogoutDefect", "frontchannel_page", "frontchannel_urls", "mint_logout_token"]


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


def frontchannel_urls(op: FakeOP, sid: str) -> list[str]:
    """The ``frontchannel_logout_uri`` of each client of OP session ``sid`` that registered one,
    with ``iss`` and ``sid`` added to the query it may already have (Front-Channel Logout §2);
    ``sid`` alone when the personality says so (Entra ID, ``frontchannel_logout_iss``)."""
    sub, clients = op.sessions.get(sid, ("", set()))
    user = op.users.get(sub)
    issuer = op.issuer_for(user) if user else op.issuer  # a tenant's own issuer, if any
    urls = []
    for client_id in sorted(clients):
        uri = op.clients[client_id].frontchannel_logout_uri if client_id in op.clients else None
        if uri:
            named = {"iss": issuer, "sid": sid}
            if not op.personality.frontchannel_logout_iss:
                del named["iss"]
            query = urlencode(named)
            urls.append(f"{uri}{'&' if '?' in uri else '?'}{query}")
    return urls


def frontchannel_page(frames: list[str], target: str | None) -> str:
    """The OP's logout page: one hidden iframe per RP, then on to ``target`` once all loaded
    (or after 2.5 seconds), as oidc-provider 6's ``logoutPendingSource`` does."""
    iframes = "".join(
        f"<iframe src='{html.escape(url)}' style='display:none'></iframe>" for url in frames
    )
    if target is None:
        return f"<h1>Signed out</h1>{iframes}"
    go = f"window.location.replace({json.dumps(target)})"
    script = (
        "<script>var loaded=0,frames=document.querySelectorAll('iframe');"
        f"function go(){{{go}}}"
        "frames.forEach(function(f){f.onload=function(){if(++loaded===frames.length)go();};});"
        "setTimeout(go,2500);</script>"
    )
    return f"<h1>Signing out</h1>{iframes}{script}"
