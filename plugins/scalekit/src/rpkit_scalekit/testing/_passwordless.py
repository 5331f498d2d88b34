"""The fake Scalekit's headless passwordless endpoints: ``POST /api/v1/passwordless/email/
{send,resend,verify}``, JSON in and out, with every documented limit (scalekit-sdk.md §2.8,
§8.7): 2 emails per minute per address counting resends, 5 wrong attempts per auth request in
10 minutes, expiry, same-browser origin and new credentials on resend."""

from __future__ import annotations

import hmac
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from rpkit_scalekit.testing._wire import ApiError, FieldViolation, ParsedRequest, api_response
from rpkit_scalekit.testing.knobs import PasswordlessMethod
from rpkit_scalekit.testing.outbox import SentEmail

if TYPE_CHECKING:
    from rpkit_scalekit.testing.fake import FakeScalekit

__all__ = ["AuthRequest"]

TEMPLATES = ("SIGNIN", "SIGNUP")
RESERVED_VARIABLES = {"otp", "expiry_time_relative", "link", "expire_time", "expiry_time"}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass
class AuthRequest:
    """The server-side state of one passwordless flow (``auth_request_id``)."""

    id: str
    email: str
    template: str
    method: PasswordlessMethod
    expires_in: int
    expires_at: int
    state: str | None = None
    magiclink_auth_uri: str | None = None
    template_variables: dict[str, str] = field(default_factory=dict)
    otp: str | None = None
    link_token: str | None = None
    failed_attempts: list[int] = field(default_factory=list)
    """Fake-clock times of wrong credentials."""
    used: bool = False

    def new_credentials(self) -> None:
        """Mint a fresh code and/or link token, invalidating the previous ones."""
        self.otp = f"{secrets.randbelow(10**6):06d}" if self.method != "LINK" else None
        self.link_token = f"{uuid.uuid4()}_l" if self.method != "OTP" else None

    @property
    def link(self) -> str | None:
        """The magic link the email carries."""
        if self.link_token is None or self.magiclink_auth_uri is None:
            return None
        separator = "&" if "?" in self.magiclink_auth_uri else "?"
        return f"{self.magiclink_auth_uri}{separator}link_token={self.link_token}"


def _invalid(violations: list[FieldViolation]) -> ApiError:
    summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
    return ApiError(400, f"invalid request: {summary}", violations=violations)


def _body(req: ParsedRequest) -> dict[str, Any]:
    if not isinstance(req.json, dict):
        raise _invalid([FieldViolation("body", "a JSON object is required", "required")])
    return req.json


def _length(name: str, value: Any, low: int, high: int) -> list[FieldViolation]:
    if value is None:
        return []
    if not isinstance(value, str) or not low <= len(value) <= high:
        rule = f"string.len: {low}..{high}"
        return [FieldViolation(name, f"must be a string of {low} to {high} characters", rule)]
    return []


def _send_violations(fake: FakeScalekit, body: dict[str, Any]) -> list[FieldViolation]:
    email = body.get("email")
    found = []
    if not isinstance(email, str) or not _EMAIL.fullmatch(email) or len(email) > 320:
        found.append(FieldViolation("email", "must be a valid email address", "string.email"))
    template = body.get("template")
    if template is not None and template not in TEMPLATES:
        found.append(FieldViolation("template", "must be SIGNIN or SIGNUP", "enum.defined_only"))
    uri = body.get("magiclink_auth_uri")
    if uri is None and fake.passwordless.method != "OTP":
        found.append(
            FieldViolation("magiclink_auth_uri", "is required for magic links", "required")
        )
    found += _length("magiclink_auth_uri", uri, 1, 1000) + _length(
        "state", body.get("state"), 1, 1000
    )
    expires_in = body.get("expires_in")
    if expires_in is not None and not (str(expires_in).isdigit()):
        found.append(FieldViolation("expires_in", "must be a uint32", "uint32"))
    return found + _variable_violations(body.get("template_variables"))


def _variable_violations(variables: Any) -> list[FieldViolation]:
    if variables is None:
        return []
    name = "template_variables"
    if not isinstance(variables, dict):
        return [FieldViolation(name, "must be a map of strings", "map")]
    found = []
    if len(variables) > 30:
        found.append(FieldViolation(name, "at most 30 pairs", "map.max_pairs"))
    for key, value in variables.items():
        if not 2 <= len(key) <= 25:
            found.append(
                FieldViolation(f"{name}[{key}]", "keys have 2 to 25 characters", "map.keys")
            )
        if key in RESERVED_VARIABLES:
            found.append(FieldViolation(f"{name}[{key}]", "is a reserved key", "map.keys.not_in"))
        if not isinstance(value, str) or len(value) > 256:
            found.append(
                FieldViolation(f"{name}[{key}]", "values have at most 256 characters", "map.values")
            )
    return found


def _rate_limit(fake: FakeScalekit, email: str) -> None:
    """Count one email to ``email``, or refuse it with 429 past the per-window limit."""
    settings, now = fake.passwordless, fake.now()
    key = email.lower()
    recent = [t for t in fake.email_log.get(key, []) if now - t < settings.send_window]
    if len(recent) >= settings.send_limit:
        fake.email_log[key] = recent
        raise fake.answers.send_rate_limited.error()
    fake.email_log[key] = [*recent, now]


def _mail(fake: FakeScalekit, auth: AuthRequest, kind: str) -> None:
    fake.outbox.append(
        SentEmail(
            email=auth.email,
            otp=auth.otp,
            link=auth.link,
            link_token=auth.link_token,
            template=auth.template,
            template_variables=dict(auth.template_variables),
            auth_request_id=auth.id,
            kind="resend" if kind == "resend" else "send",
            sent_at=fake.now(),
            expires_at=auth.expires_at,
        )
    )


def _sent(fake: FakeScalekit, auth: AuthRequest) -> httpx.Response:
    expires_at: str | int = auth.expires_at
    if fake.answers.expires_at_as_string:
        expires_at = str(auth.expires_at)
    body = {
        "auth_request_id": auth.id,
        "expires_at": expires_at,
        "expires_in": auth.expires_in,
        "passwordless_type": auth.method,
    }
    return api_response(body, fake.answers.response_case)


def send(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """``POST /api/v1/passwordless/email/send``."""
    body = _body(req)
    violations = _send_violations(fake, body)
    if violations:
        raise _invalid(violations)
    email = str(body["email"])
    _rate_limit(fake, email)
    expires_in = int(body.get("expires_in") or fake.passwordless.default_expires_in)
    auth = AuthRequest(
        id=secrets.token_urlsafe(37),
        email=email,
        template=body.get("template") or "SIGNIN",
        method=fake.passwordless.method,
        expires_in=expires_in,
        expires_at=fake.now() + expires_in,
        state=body.get("state"),
        magiclink_auth_uri=body.get("magiclink_auth_uri"),
        template_variables=dict(body.get("template_variables") or {}),
    )
    auth.new_credentials()
    fake.auth_requests[auth.id] = auth
    _mail(fake, auth, "send")
    return _sent(fake, auth)


def resend(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """``POST /api/v1/passwordless/email/resend``."""
    auth_request_id = _body(req).get("auth_request_id")
    violations = _length("auth_request_id", auth_request_id, 1, 200)
    if auth_request_id is None or violations:
        raise _invalid(violations or [FieldViolation("auth_request_id", "is required", "required")])
    auth = fake.auth_requests.get(str(auth_request_id))
    if auth is None:
        raise fake.answers.unknown_auth_request.error()
    if auth.used or auth.expires_at <= fake.now():
        raise fake.answers.expired.error()
    _rate_limit(fake, auth.email)
    if fake.passwordless.new_credentials_on_resend:
        auth.new_credentials()
    auth.expires_at = fake.now() + auth.expires_in
    _mail(fake, auth, "resend")
    return _sent(fake, auth)


def _verify_violations(fake: FakeScalekit, body: dict[str, Any]) -> list[FieldViolation]:
    code, link_token, auth_id = (
        body.get("code"),
        body.get("link_token"),
        body.get("auth_request_id"),
    )
    if (code is None) == (link_token is None):
        return [FieldViolation("code", "exactly one of code or link_token", "oneof.required")]
    found = _length("code", code, 1, 20) + _length("link_token", link_token, 1, 100)
    found += _length("auth_request_id", auth_id, 1, 200)
    if auth_id is None and code is not None:
        found.append(FieldViolation("auth_request_id", "is required with a code", "required"))
    if auth_id is None and link_token is not None and fake.passwordless.enforce_same_browser:
        found.append(
            FieldViolation("auth_request_id", "is required: same-browser origin", "required")
        )
    return found


def verify(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """``POST /api/v1/passwordless/email/verify``."""
    body = _body(req)
    violations = _verify_violations(fake, body)
    if violations:
        raise _invalid(violations)
    code, link_token = body.get("code"), body.get("link_token")
    auth = _find(fake, body.get("auth_request_id"), link_token)
    now, settings = fake.now(), fake.passwordless
    recent = [t for t in auth.failed_attempts if now - t < settings.attempts_window]
    if len(recent) >= settings.max_attempts:
        raise fake.answers.attempts_exhausted.error()
    if auth.expires_at <= now:
        raise fake.answers.expired.error()
    if auth.used and not fake.knobs.passwordless_reusable:
        raise fake.answers.used.error()
    expected = auth.otp if code is not None else auth.link_token
    given = code if code is not None else link_token
    if expected is None or not hmac.compare_digest(str(given).encode(), expected.encode()):
        auth.failed_attempts.append(now)
        raise fake.answers.invalid_code.error()
    auth.used = True
    answer = {"email": auth.email, "template": auth.template, "passwordless_type": auth.method}
    if auth.state:
        answer["state"] = auth.state
    return api_response(answer, fake.answers.response_case)


def _find(fake: FakeScalekit, auth_request_id: Any, link_token: Any) -> AuthRequest:
    if auth_request_id is not None:
        auth = fake.auth_requests.get(str(auth_request_id))
        if auth is None:
            raise fake.answers.unknown_auth_request.error()
        return auth
    found = next((a for a in fake.auth_requests.values() if a.link_token == link_token), None)
    if found is None:
        raise fake.answers.invalid_code.error()
    return found
