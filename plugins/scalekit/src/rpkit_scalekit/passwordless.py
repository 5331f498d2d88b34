"""Headless passwordless email (OTP and magic link) over Scalekit's REST API.

:class:`PasswordlessClient` sends, resends and verifies. Every input is checked locally against
Scalekit's documented limits before anything is sent, and every refusal is a typed error
(:mod:`rpkit_scalekit.errors`). **Send, resend and verify are never retried** — not on 503, not
on a timeout: a retried send mails the user twice and spends the 2-per-minute budget, a retried
verify spends one of five attempts. (The one repeat is the management client's re-authentication
after a 401, which Scalekit answers before doing anything.)

A :class:`~rpkit_scalekit.limiter.PasswordlessLimiter` in front refuses abuse before it reaches
Scalekit. Verify returns the verified email only: the application mints its own session.

Example:
    >>> # client = PasswordlessClient(api, limiter=PasswordlessLimiter(store))
    >>> # sent = await client.send("ada@example.com", magiclink_auth_uri="https://app/magic")
    >>> # result = await client.verify_code("123456", auth_request_id=sent.auth_request_id)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from rpkit._log import get_logger
from rpkit.errors import ConfigurationError, StoreError
from rpkit_scalekit._passwordless_checks import (
    DEFAULT_OTP_LENGTH,
    MAX_LINK_TOKEN_LENGTH,
    RESERVED_TEMPLATE_VARIABLES,
    PasswordlessEmail,
    Template,
    check_code,
    check_length,
    check_link_token,
    check_magic_link_uri,
    check_template_variables,
)
from rpkit_scalekit._wire import ApiProblem, decode_object, error_for, int_value, read_problem
from rpkit_scalekit.errors import (
    PasswordlessAttemptsExhaustedError,
    PasswordlessCredentialError,
    PasswordlessExpiredError,
    PasswordlessInvalidCredentialError,
    PasswordlessRateLimitedError,
    PasswordlessUsedError,
    ScalekitError,
    ScalekitInputError,
    ScalekitUnavailableError,
)
from rpkit_scalekit.limiter import PasswordlessLimiter, Reservation
from rpkit_scalekit.management import ManagementClient
from rpkit_scalekit.routing import check_email

__all__ = [
    "DEFAULT_OTP_LENGTH",
    "MAX_LINK_TOKEN_LENGTH",
    "RESERVED_TEMPLATE_VARIABLES",
    "PasswordlessClient",
    "PasswordlessEmail",
    "PasswordlessStatus",
    "SendResult",
    "Template",
    "VerifyResult",
    "check_code",
    "check_link_token",
    "check_template_variables",
    "mask_email",
]

_PATHS = {
    "send": "/api/v1/passwordless/email/send",
    "resend": "/api/v1/passwordless/email/resend",
    "verify": "/api/v1/passwordless/email/verify",
}
_MAX_UINT32 = 2**32 - 1
_EXPIRED = re.compile(r"\bexpired?\b")
_USED = re.compile(r"\b(already|used)\b")
Operation = Literal["send", "resend", "verify"]


class SendResult(msgspec.Struct, frozen=True, kw_only=True):
    """An email on its way: keep :attr:`auth_request_id` server-side for verify and resend."""

    auth_request_id: str
    expires_at: int
    """Epoch seconds (sent by Scalekit as an int64 string, or a number)."""
    expires_in: int
    passwordless_type: str
    """``OTP``, ``LINK`` or ``LINK_OTP``: what the email contains."""


class VerifyResult(msgspec.Struct, frozen=True, kw_only=True):
    """A verified email address. Scalekit issues no tokens here: sign the user in yourself."""

    email: str
    template: str | None = None
    """``SIGNIN`` or ``SIGNUP``, as sent."""
    passwordless_type: str | None = None
    state: str | None = None
    """The ``state`` given to :meth:`PasswordlessClient.send`, echoed; None when none was."""


PasswordlessStep = Literal["send", "resend", "verify", "magic_link", "restart"]


class PasswordlessStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What the application's passwordless page needs to render after a browser's form POST
    (or a magic link) came back to it: what the last step did, and what is pending now.

    Read it with :func:`rpkit_scalekit.litestar.passwordless_status`. An empty status (every
    field at its default) means nothing happened in this browser. It never holds the address
    itself, a code or a link: only :attr:`masked_email`.
    """

    step: PasswordlessStep | None = None
    """The step this status reports on; None when there is nothing to report."""
    code: str | None = None
    """The error code of a refused step (``passwordless_invalid``...); None when it went
    through. The codes are those of :mod:`rpkit_scalekit.errors`."""
    http_status: int | None = None
    """The status a JSON client is answered with for the same refusal."""
    message: str | None = None
    """What to tell the person, in English, with the numbers below filled in."""
    attempts_left: int | None = None
    """After a refused verify: codes still allowed for the pending email (0: none)."""
    retry_after: int | None = None
    """After a rate limit: seconds to wait (the ``Retry-After`` a JSON client gets)."""
    masked_email: str | None = None
    """The address the step concerned, masked by :func:`mask_email`."""
    sent: bool = False
    """An email went out in this step (send, resend or restart)."""
    previous_voided: bool = False
    """After a resend: the previous code and link no longer work (the environment issues new
    credentials on resend)."""
    pending: bool = False
    """A sign-in is pending in this browser: the code form applies."""
    restart: bool = False
    """A new sign-in can be started for the same address without typing it again (``POST
    {path}/passwordless/restart``): after too many wrong codes, an expiry, or a magic link
    opened in another browser."""
    passwordless_type: str | None = None
    """What the pending email contains: ``OTP``, ``LINK`` or ``LINK_OTP``."""
    expires_at: int | None = None
    """Epoch seconds when the pending code and link expire."""


def mask_email(email: str) -> str:
    """The address as a page may show it: the first character of the local part, ``***``,
    then the domain, so the person recognises it and an onlooker learns little.

    Example:
        >>> mask_email("ada@example.com")
        'a***@example.com'
    """
    local, at, domain = email.rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain.lower()}"


class PasswordlessClient:
    """Send, resend and verify passwordless emails; never retried.

    Args:
        api: the management client (its M2M token authenticates these calls).
        limiter: refuses abuse locally first; None leaves limiting to Scalekit alone.
        same_browser_origin: mirror of the dashboard policy: magic-link verification then needs
            the ``auth_request_id`` of the browser that asked for the email.
        otp_length: digits of the codes Scalekit issues; any other code is refused locally
            (:func:`check_code`) without spending an attempt.

    Raises:
        ConfigurationError: ``otp_length`` outside Scalekit's 1-20.
    """

    def __init__(
        self,
        api: ManagementClient,
        *,
        limiter: PasswordlessLimiter | None = None,
        same_browser_origin: bool = False,
        otp_length: int = DEFAULT_OTP_LENGTH,
    ) -> None:
        if type(otp_length) is not int or not 1 <= otp_length <= 20:
            raise ConfigurationError("otp_length must be 1-20 (Scalekit issues 6 digits)")
        self.otp_length = otp_length
        self._api = api
        self._limiter = limiter
        self._same_browser = same_browser_origin
        self._log = get_logger(provider="scalekit", issuer=api.env_url)

    async def send(
        self,
        email: str,
        *,
        template: Template = "SIGNIN",
        magiclink_auth_uri: str | None = None,
        state: str | None = None,
        expires_in: int | None = None,
        template_variables: Mapping[str, str] | None = None,
    ) -> SendResult:
        """Email a code and/or magic link to ``email``.

        Args:
            email: the address (at most 320 characters).
            template: ``SIGNIN`` or ``SIGNUP``.
            magiclink_auth_uri: where the magic link lands (``?link_token=`` is appended);
                required when the environment sends links.
            state: up to 1000 characters echoed back by verify (bind it to the browser).
            expires_in: seconds the code and link live (Scalekit's default is 300).
            template_variables: extra values for a custom template (limits checked locally).

        Raises:
            InvalidEmailError, ScalekitInputError: refused locally; nothing was sent.
            PasswordlessRateLimitedError: too many emails to this address (locally or by
                Scalekit).
            ScalekitError: any other refusal or outage; **not retried**.
        """
        body = self._send_body(
            email,
            template=template,
            magiclink_auth_uri=magiclink_auth_uri,
            state=state,
            expires_in=expires_in,
            template_variables=template_variables,
        )
        address = body["email"]
        reservation = await self._limiter.reserve_email(address) if self._limiter else None
        result = await self._issue("send", body, reservation)
        if self._limiter is not None:
            try:
                await self._limiter.remember_address(result.auth_request_id, address)
            except StoreError as exc:
                # The email is out: losing the auth request over this record would be worse
                # than counting its resends per auth request instead of per address.
                self._log.warning("rpkit.scalekit.passwordless_address_unrecorded", code=exc.code)
        return result

    async def resend(self, auth_request_id: str) -> SendResult:
        """Send the email of ``auth_request_id`` again (it counts toward the 2 per minute).

        Raises:
            PasswordlessRateLimitedError: too many emails to this address.
            PasswordlessExpiredError, PasswordlessUsedError: the flow must restart with a send.
            PasswordlessInvalidCredentialError: Scalekit knows no such auth request.
            ScalekitError: any other refusal or outage; not retried.
        """
        check_length(auth_request_id, "auth_request_id", 1, 200)
        reservation = None
        if self._limiter is not None:
            reservation = await self._limiter.reserve_resend(auth_request_id)
        return await self._issue("resend", {"auth_request_id": auth_request_id}, reservation)

    async def verify_code(self, code: str, *, auth_request_id: str) -> VerifyResult:
        """Verify a one-time code typed by the user.

        Raises:
            PasswordlessCredentialFormatError: not ``otp_length`` ASCII digits; nothing sent,
                no attempt spent.
            PasswordlessInvalidCredentialError: wrong code (one of five attempts spent).
            PasswordlessAttemptsExhaustedError: five wrong codes: the flow must restart.
            PasswordlessExpiredError, PasswordlessUsedError: the flow must restart.
            ScalekitError: any other refusal or outage; **not retried**.
        """
        check_code(code, self.otp_length)
        check_length(auth_request_id, "auth_request_id", 1, 200)
        return await self._verify({"code": code, "auth_request_id": auth_request_id})

    async def verify_link(
        self, link_token: str, *, auth_request_id: str | None = None
    ) -> VerifyResult:
        """Verify the ``link_token`` of a magic link.

        Args:
            link_token: the ``link_token`` query parameter the link landed with.
            auth_request_id: the browser's pending auth request; required when
                ``same_browser_origin`` is on, so a link opened elsewhere is refused.

        Raises:
            PasswordlessCredentialFormatError: not 1-100 URL-safe characters; nothing sent.
            ScalekitInputError: ``auth_request_id`` missing under ``same_browser_origin``.
            PasswordlessInvalidCredentialError, PasswordlessExpiredError,
                PasswordlessUsedError, PasswordlessAttemptsExhaustedError: as for codes.
        """
        check_link_token(link_token)
        body = {"link_token": link_token}
        if auth_request_id is not None:
            body["auth_request_id"] = check_length(auth_request_id, "auth_request_id", 1, 200)
        elif self._same_browser:
            raise ScalekitInputError(
                "same-browser origin is on: verify the link with the browser's auth_request_id",
                field="auth_request_id",
            )
        return await self._verify(body)

    def _send_body(
        self,
        email: str,
        *,
        template: str,
        magiclink_auth_uri: str | None,
        state: str | None,
        expires_in: int | None,
        template_variables: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        address, _ = check_email(email)
        if template not in ("SIGNIN", "SIGNUP"):
            raise ScalekitInputError("template must be SIGNIN or SIGNUP", field="template")
        body: dict[str, Any] = {"email": address, "template": template}
        if magiclink_auth_uri is not None:
            body["magiclink_auth_uri"] = check_magic_link_uri(magiclink_auth_uri)
        if state is not None:
            body["state"] = check_length(state, "state", 1, 1000)
        if expires_in is not None:
            if type(expires_in) is not int or not 0 < expires_in <= _MAX_UINT32:
                raise ScalekitInputError(
                    "expires_in must be a positive number of seconds", field="expires_in"
                )
            body["expires_in"] = expires_in
        variables = check_template_variables(template_variables)
        if variables:
            body["template_variables"] = variables
        return body

    async def _issue(
        self, operation: Operation, body: dict[str, Any], reservation: Reservation | None
    ) -> SendResult:
        try:
            answer = await self._call(operation, body)
        except ScalekitError as exc:
            await self._settle_send(reservation, exc)
            raise
        result = _send_result(answer, operation)
        self._log.info(
            "rpkit.scalekit.passwordless_sent",
            operation=operation,
            passwordless_type=result.passwordless_type,
            expires_in=result.expires_in,
        )
        return result

    async def _settle_send(self, reservation: Reservation | None, exc: ScalekitError) -> None:
        """Give the local slot back when no email can have gone out: a 4xx other than 429.
        After a 5xx or a timeout the email may have been sent, so the slot stays taken."""
        sent_maybe = exc.status is None or exc.status >= 500 or exc.status == 429
        if reservation is not None and self._limiter is not None and not sent_maybe:
            await self._limiter.release(reservation)

    async def _verify(self, body: dict[str, str]) -> VerifyResult:
        auth_request_id = body.get("auth_request_id")
        reservation = None
        if self._limiter is not None and auth_request_id is not None:
            reservation = await self._limiter.reserve_attempt(auth_request_id)
        try:
            answer = await self._call("verify", body)
        except ScalekitError as exc:
            await self._settle_attempt(reservation, auth_request_id, exc)
            raise
        result = _verify_result(answer)
        self._log.info("rpkit.scalekit.passwordless_verified", template=result.template)
        return result

    async def _settle_attempt(
        self, reservation: Reservation | None, auth_request_id: str | None, exc: ScalekitError
    ) -> None:
        """A refused credential keeps its slot (it counted at Scalekit too); Scalekit's own
        exhaustion fills every slot; anything else (outage, our own bad request) gives the slot
        back, so an outage does not burn the user's attempts."""
        if self._limiter is None or auth_request_id is None:
            return
        if isinstance(exc, PasswordlessAttemptsExhaustedError) and not exc.local:
            await self._limiter.exhaust(auth_request_id)
        elif reservation is not None and not isinstance(exc, PasswordlessCredentialError):
            await self._limiter.release(reservation)

    async def _call(self, operation: Operation, body: dict[str, Any]) -> dict[str, Any]:
        path = _PATHS[operation]
        response = await self._api.request("POST", path, json=body)
        if response.is_success:
            answer = decode_object(response.content)
            if answer is None:
                raise ScalekitUnavailableError(
                    f"POST {path} answered with no JSON object", status=200
                )
            return answer
        problem = read_problem(response)
        error = _passwordless_error(problem, operation, f"POST {path}")
        self._log.info(
            "rpkit.scalekit.passwordless_refused",
            operation=operation,
            code=error.code,
            status=problem.status,
            error_code=problem.error_code,
            request_id=problem.request_id,
        )
        raise error


def _send_result(answer: dict[str, Any], operation: Operation) -> SendResult:
    auth_request_id = answer.get("auth_request_id")
    expires_at = int_value(answer.get("expires_at"))
    expires_in = int_value(answer.get("expires_in"))
    kind = answer.get("passwordless_type")
    if not isinstance(auth_request_id, str) or not auth_request_id or expires_at is None:
        raise ScalekitUnavailableError(
            f"{operation} answered without auth_request_id or expires_at"
        )
    return SendResult(
        auth_request_id=auth_request_id,
        expires_at=expires_at,
        expires_in=expires_in if expires_in is not None else 300,
        passwordless_type=kind if isinstance(kind, str) else "OTP",
    )


def _verify_result(answer: dict[str, Any]) -> VerifyResult:
    email = answer.get("email")
    if not isinstance(email, str) or not email:
        raise ScalekitUnavailableError("verify answered without the verified email")
    optional = {
        name: answer[name] if isinstance(answer.get(name), str) else None
        for name in ("template", "passwordless_type", "state")
    }
    return VerifyResult(email=email, **optional)


def _passwordless_error(problem: ApiProblem, operation: Operation, what: str) -> ScalekitError:
    """Scalekit documents only the 429s; the rest is read from the status and, as Scalekit's
    own demo apps do, the words of ``error_code`` and ``message``."""
    fields = problem.fields()
    if problem.status == 429:
        if operation == "verify":
            detail = "too many wrong attempts for this auth request: restart the flow"
            return PasswordlessAttemptsExhaustedError(
                detail, retry_after=problem.retry_after, **fields
            )
        detail = "too many emails to this address"
        return PasswordlessRateLimitedError(detail, retry_after=problem.retry_after, **fields)
    if operation != "send" and problem.status in (400, 404) and not problem.violations:
        credential = _credential_error(problem, operation)
        if credential is not None:
            return credential
    return error_for(problem, what)


def _credential_error(problem: ApiProblem, operation: Operation) -> ScalekitError | None:
    fields = problem.fields()
    text = f"{problem.error_code or ''} {problem.message or ''}".lower().replace("_", " ")
    if problem.status == 404:
        return PasswordlessInvalidCredentialError("unknown auth request", **fields)
    if _EXPIRED.search(text):
        return PasswordlessExpiredError("the auth request expired: send a new email", **fields)
    if _USED.search(text):
        return PasswordlessUsedError("the auth request was already verified", **fields)
    if operation == "verify":
        return PasswordlessInvalidCredentialError("the code or link is not valid", **fields)
    return None
