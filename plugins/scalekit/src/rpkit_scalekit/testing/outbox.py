"""The fake Scalekit's outbox: every passwordless email it "sent", for tests and a development
mailbox page. Nothing is ever mailed (scalekit-sdk.md §8.7).

Example:
    >>> from rpkit_scalekit.testing import FakeScalekit
    >>> fake = FakeScalekit()
    >>> # after the RP called /api/v1/passwordless/email/send for ada@example.com:
    >>> # fake.outbox.last("ada@example.com").otp
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Outbox", "SentEmail"]


@dataclass(frozen=True)
class SentEmail:
    """One email, as Scalekit would have delivered it."""

    email: str
    """The recipient, as the send request spelled it."""
    otp: str | None
    """The one-time code, for the OTP and LINK_OTP methods."""
    link: str | None
    """``magiclink_auth_uri`` plus ``link_token``, for the LINK and LINK_OTP methods."""
    link_token: str | None
    template: str
    """``SIGNIN`` or ``SIGNUP``."""
    template_variables: dict[str, str] = field(default_factory=dict)
    auth_request_id: str = ""
    kind: Literal["send", "resend"] = "send"
    sent_at: int = 0
    """Unix seconds on the fake's clock."""
    expires_at: int = 0

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for a mailbox page or an HTTP endpoint)."""
        return asdict(self)


class Outbox:
    """The emails sent, oldest first."""

    def __init__(self) -> None:
        self.emails: list[SentEmail] = []

    def __iter__(self) -> Iterator[SentEmail]:
        return iter(self.emails)

    def __len__(self) -> int:
        return len(self.emails)

    def append(self, email: SentEmail) -> None:
        """Record a sent email."""
        self.emails.append(email)

    def to(self, address: str) -> list[SentEmail]:
        """Emails sent to ``address`` (case-insensitive)."""
        return [e for e in self.emails if e.email.lower() == address.lower()]

    def last(self, address: str | None = None) -> SentEmail:
        """The most recent email, to ``address`` when given.

        Raises:
            LookupError: no such email.
        """
        matching = self.to(address) if address else self.emails
        if not matching:
            msg = f"the fake Scalekit sent no email{f' to {address}' if address else ''}"
            raise LookupError(msg)
        return matching[-1]

    def clear(self) -> None:
        """Forget every email."""
        self.emails.clear()

    def as_json(self) -> list[dict[str, Any]]:
        """Every email as JSON-ready dicts, newest first."""
        return [e.as_json() for e in reversed(self.emails)]

    def as_html(self) -> str:
        """A minimal mailbox page body, newest first, every value escaped."""
        rows = "".join(_row(e) for e in reversed(self.emails))
        return (
            "<h1>Fake Scalekit mailbox</h1>"
            "<table><thead><tr><th>To</th><th>Template</th><th>Code</th><th>Magic link</th>"
            f"<th>Kind</th></tr></thead><tbody>{rows}</tbody></table>"
        )


def _row(email: SentEmail) -> str:
    link = (
        f'<a href="{html.escape(email.link)}">{html.escape(email.link)}</a>' if email.link else ""
    )
    cells = [
        html.escape(email.email),
        html.escape(email.template),
        f"<code>{html.escape(email.otp or '')}</code>",
        link,
        email.kind,
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"
