"""The server-side records behind the application's own passwordless pages.

A refused form POST (or a magic link that cannot sign in) is answered with a 303 to the app's
``passwordless_page``; what the page needs to say is kept here, in rpkit's flows store under
the browser's transaction handle, never in the URL: a one-read *outcome* of the last step, the
*pending* sign-in (as before), and the browser's *last link*, which lets it start a new sign-in
for the same address without the address ever reaching the browser.

Records (keys hold hashes only):

* ``...:pending:<binding>`` — :class:`Pending`, the sign-in awaiting its code or link.
* ``...:outcome:<binding>`` — :class:`Outcome`, read once by :func:`passwordless_status`.
* ``...:link:<sha256(ref)>`` — :class:`LinkRecord`: the address and ``return_to`` of one send;
  ``ref`` is the path segment of the ``magiclink_auth_uri``, so a link opened in another browser
  can offer a new link to the same address.
* ``...:last:<binding>`` — the ``ref`` this browser may start again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Response
from litestar.response import Redirect

from rpkit._log import get_logger
from rpkit.litestar._cookies import binding_of, new_handle
from rpkit.litestar.responses import NO_STORE
from rpkit.store import KeyValueStore
from rpkit_scalekit._inbound import UnsupportedBodyError
from rpkit_scalekit.errors import InvalidEmailError, PasswordlessEmailContentError, ScalekitError
from rpkit_scalekit.passwordless import PasswordlessStatus, PasswordlessStep, mask_email

if TYPE_CHECKING:
    from rpkit_scalekit._passwordless_routes import PasswordlessRoutes

__all__ = [
    "LinkRecord",
    "Outcome",
    "Pending",
    "Step",
    "last_link",
    "link_record",
    "mark_used",
    "message_for",
    "passwordless_status",
    "pending_key",
    "remember_last",
    "remember_link",
    "return_to_page",
    "save_outcome",
]

_PREFIX = "rpkit:scalekit:passwordless:"
OUTCOME_TTL = 120
"""Seconds an outcome waits for its page: a redirect is followed at once."""
LAST_TTL = 600
"""The transaction cookie's lifetime: the browser's last link cannot outlive the handle."""
_STATE_KEY = "rpkit_scalekit.passwordless_status"


class Pending(msgspec.Struct, frozen=True):
    """A sign-in awaiting its code or link; ``auth_request_id`` never leaves the server."""

    auth_request_id: str
    email: str
    state: str
    return_to: str
    ref: str = ""
    """The ``ref`` of this send's link record ("" for records written before it existed)."""
    passwordless_type: str = ""
    expires_at: int = 0


class LinkRecord(msgspec.Struct, frozen=True):
    """One send: to whom, where the person returns, and which browser asked."""

    email: str
    return_to: str
    binding: str
    used: bool = False


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What the last step did, for the page it redirects to."""

    step: PasswordlessStep
    code: str | None = None
    http_status: int | None = None
    attempts_left: int | None = None
    retry_after: int | None = None
    masked_email: str | None = None
    sent: bool = False
    previous_voided: bool = False


def pending_key(binding: str) -> str:
    """The store key of the sign-in pending in the browser of ``binding``."""
    return f"{_PREFIX}{binding}"  # the key rpkit-scalekit has always used


def _link_key(ref: str) -> str:
    return f"{_PREFIX}link:{hashlib.sha256(ref.encode()).hexdigest()}"


async def remember_link(store: KeyValueStore, ref: str, record: LinkRecord, ttl: int) -> None:
    await store.set(_link_key(ref), msgspec.json.encode(record), ttl)


async def link_record(store: KeyValueStore, ref: str) -> LinkRecord | None:
    raw = await store.get(_link_key(ref))
    return msgspec.json.decode(raw, type=LinkRecord) if raw is not None else None


async def mark_used(store: KeyValueStore, ref: str, ttl: int) -> None:
    """The send of ``ref`` signed someone in: its link now lands on "already used"."""
    record = await link_record(store, ref)
    if record is not None:
        await remember_link(store, ref, msgspec.structs.replace(record, used=True), ttl)


async def remember_last(store: KeyValueStore, binding: str, ref: str) -> None:
    await store.set(f"{_PREFIX}last:{binding}", ref.encode(), LAST_TTL)


async def last_link(store: KeyValueStore, binding: str) -> tuple[str, LinkRecord] | None:
    """The browser's last link (its ``ref`` and record), if it is still known."""
    ref = await store.get(f"{_PREFIX}last:{binding}")
    if ref is None:
        return None
    record = await link_record(store, ref.decode())
    return (ref.decode(), record) if record is not None else None


async def save_outcome(store: KeyValueStore, binding: str, outcome: Outcome) -> None:
    await store.set(f"{_PREFIX}outcome:{binding}", msgspec.json.encode(outcome), OUTCOME_TTL)


@dataclass
class Step:
    """What one request learned before it was refused, for the page it returns to."""

    name: PasswordlessStep
    email: str | None = None
    """The address concerned (checked), shown masked."""
    pending: Pending | None = None
    """The sign-in that was verified, for the attempts left."""
    restart_ref: str | None = None
    """A link this browser may start again (a magic link opened here)."""


async def return_to_page(
    routes: PasswordlessRoutes,
    request: Request[Any, Any, Any],
    exc: ScalekitError,
    *,
    json: bool,
    step: Step,
) -> Response[Any]:
    """A 303 to ``passwordless_page`` with the outcome of ``step`` kept for it; re-raises
    ``exc`` (the typed problem response) for JSON clients, without a page, and for tampering
    (email content set by the browser, a body that is neither JSON nor a form)."""
    from rpkit_scalekit.litestar import (  # noqa: PLC0415 - cycle
        SCALEKIT_STATUS_AND_MESSAGE,
        _wants_json,
    )

    page = routes.plugin.passwordless_page
    tampered = isinstance(exc, PasswordlessEmailContentError | UnsupportedBodyError)
    if json or page is None or tampered or _wants_json(request):
        raise exc
    runtime = routes.runtime(request)
    handle = runtime.browser_handle(request) or new_handle()
    binding, store = binding_of(handle), routes.store(request)
    if step.restart_ref is not None:
        await remember_last(store, binding, step.restart_ref)
    attempts = None
    if step.pending is not None:
        limiter = routes.base.env(request).limiter
        attempts = await limiter.attempts_left(step.pending.auth_request_id)
    status = next(s for kind, s, _ in SCALEKIT_STATUS_AND_MESSAGE if isinstance(exc, kind))
    retry_after = getattr(exc, "retry_after", None)
    if status == 429 and retry_after is None:
        retry_after = 60  # what scalekit_error_response sends as Retry-After
    masked = None
    if step.email is not None and not isinstance(exc, InvalidEmailError):
        masked = mask_email(step.email)
    outcome = Outcome(
        step=step.name,
        code=exc.code,
        http_status=status,
        attempts_left=attempts,
        retry_after=retry_after,
        masked_email=masked,
    )
    await save_outcome(store, binding, outcome)
    get_logger(provider=routes.plugin.provider_id).info(
        "rpkit.scalekit.passwordless_returned", step=step.name, code=exc.code
    )
    response = Redirect(page, status_code=303, headers=NO_STORE)
    runtime.set_handle_cookie(response, handle, runtime.rp.provider(routes.plugin.provider_id))
    return response


async def passwordless_status(request: Request[Any, Any, Any]) -> PasswordlessStatus:
    """What this browser's passwordless page should show: the outcome of the last step (read
    once: a reload shows only what is still pending) and the sign-in pending now.

    Call it from the handler of the page given as ``passwordless_page`` (or ``verify_page``);
    within one request it answers the same every time.

    Example:
        >>> # @get("/verify")
        >>> # async def verify(request: Request) -> Response:
        >>> #     status = await passwordless_status(request)
        >>> #     if status.code: ...  # status.message, status.attempts_left, status.retry_after
    """
    state = request.scope.setdefault("state", {})
    cached = state.get(_STATE_KEY)
    if isinstance(cached, PasswordlessStatus):
        return cached
    status = await _read_status(request)
    state[_STATE_KEY] = status
    return status


async def _read_status(request: Request[Any, Any, Any]) -> PasswordlessStatus:
    from rpkit_scalekit.litestar import ScalekitLitestarPlugin  # noqa: PLC0415 - cycle

    plugin = request.app.plugins.get(ScalekitLitestarPlugin)
    runtime = plugin.runtime(request.app)
    handle = runtime.browser_handle(request)
    if handle is None:
        return PasswordlessStatus()
    store, binding = runtime.rp.store, binding_of(handle)
    raw_outcome = await store.consume(f"{_PREFIX}outcome:{binding}")
    raw_pending = await store.get(pending_key(binding))
    pending = msgspec.json.decode(raw_pending, type=Pending) if raw_pending else None
    last = await last_link(store, binding)
    fields: dict[str, Any] = {"restart": last is not None}
    if raw_outcome is not None:
        fields |= msgspec.structs.asdict(msgspec.json.decode(raw_outcome, type=Outcome))
    if pending is not None:
        fields |= {
            "pending": True,
            "passwordless_type": pending.passwordless_type or None,
            "expires_at": pending.expires_at or None,
        }
    if fields.get("masked_email") is None:
        email = pending.email if pending is not None else last[1].email if last else None
        fields["masked_email"] = mask_email(email) if email else None
    status = PasswordlessStatus(**fields)
    return msgspec.structs.replace(status, message=message_for(status))


def _attempts(left: int | None) -> str:
    if left is None:
        return ""
    if left <= 0:
        return " No attempts are left: ask for a new email."
    return f" {left} attempt{'s' if left != 1 else ''} left."


def _wait(seconds: int | None) -> str:
    if not seconds:
        return "Please wait a moment and try again."
    return f"Please wait {seconds} second{'s' if seconds != 1 else ''} and try again."


def message_for(status: PasswordlessStatus) -> str | None:
    """What a person is told about ``status``, in English; None when there is nothing new."""
    to = f" to {status.masked_email}" if status.masked_email else ""
    if status.code is None:
        if not status.sent:
            return None
        if status.step == "resend":
            voided = " The code and link of the previous email no longer work."
            return f"We sent a new email{to}.{voided if status.previous_voided else ''}"
        return f"We sent an email{to}. Open it in this browser."
    texts = {
        "passwordless_invalid": "That code is not valid." + _attempts(status.attempts_left),
        "passwordless_credential_malformed": "Type the code from the email: its digits only.",
        "passwordless_attempts_exhausted": (
            "Too many wrong codes: this email's code no longer works. Ask for a new email."
        ),
        "passwordless_rate_limited": (
            f"Too many emails{to} in a short time. {_wait(status.retry_after)}"
        ),
        "scalekit_rate_limited": f"Too many attempts. {_wait(status.retry_after)}",
        "passwordless_expired": "This code or link has expired. Ask for a new email.",
        "passwordless_used": "This code or link was used already. Please sign in again.",
        "passwordless_no_login": (
            "No sign-in is in progress in this browser. Enter your email to start one."
        ),
        "passwordless_other_browser": (
            "This link was opened in a different browser from the one where you asked for it. "
            "For your safety, a sign-in link works only in the browser that asked for it. "
            "You can have a new link sent for this browser."
        ),
        "invalid_email": "That is not an email address we can send to. Please check it.",
        "scalekit_invalid_input": "Please check what you entered and try again.",
    }
    if status.code in texts:
        return texts[status.code]
    if status.http_status is not None and status.http_status >= 500:
        return "Sign-in is unavailable right now. Please try again in a moment."
    return "Sign-in failed. Please try again."
