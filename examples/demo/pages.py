"""The demo's HTML: home (sign-in choices), profile, dev mailbox. Every value is escaped."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

__all__ = ["home_page", "mailbox_page", "profile_page", "verify_page"]

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
nav a{margin-right:1rem} pre{background:#f4f4f4;padding:.75rem;overflow:auto}
form{margin:.75rem 0} .notice{background:#eef7ee;padding:.5rem .75rem;border-radius:4px}
.error{background:#fbeaea;padding:.5rem .75rem;border-radius:4px;border-left:4px solid #b33}
table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
a.button{display:inline-block;padding:.3rem .7rem;border:1px solid #888;border-radius:4px;
background:#f4f4f4;color:#222;text-decoration:none}
"""
_VIEWPORT = "<meta name='viewport' content='width=device-width, initial-scale=1'>"


def _layout(title: str, body: str, *, mailbox: bool) -> str:
    nav = '<a href="/">Home</a><a href="/profile">Profile</a>'
    if mailbox:
        nav += '<a href="/mailbox">Dev mailbox</a>'
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>{_VIEWPORT}"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body><nav>{nav}</nav><h1>{escape(title)}</h1>"
        f"{body}</body></html>"
    )


def _csrf_script(csrf_url: str) -> str:
    """Fill each form's ``csrf_token`` from the Scalekit plugin's ``/csrf`` endpoint (which also
    sets the transaction cookie the token is bound to) before it is submitted."""
    return (
        "<script>for (const form of document.querySelectorAll('form[data-csrf]')) {"
        "form.addEventListener('submit', async (event) => {"
        "if (form.elements.csrf_token.value) return; event.preventDefault();"
        f"const answer = await fetch({json.dumps(csrf_url)}, {{credentials: 'same-origin'}});"
        "form.elements.csrf_token.value = (await answer.json()).csrf_token; form.submit();"
        "});}</script>"
    )


def _csrf_field(csrf_url: str | None) -> str:
    return '<input type="hidden" name="csrf_token" value="">' if csrf_url else ""


def home_page(
    *,
    providers: Iterable[tuple[str, str]],
    email_action: str,
    email_field: str,
    csrf_url: str | None,
    signed_in_as: str | None,
    notice: str | None,
    mailbox: bool,
    sso_domain: str,
) -> str:
    """Sign-in choices: an email form and one link per provider."""
    parts = [f'<p class="notice" id="notice">{escape(notice)}</p>'] if notice else []
    if signed_in_as:
        parts.append(
            f'<p id="signed-in">Signed in as <b>{escape(signed_in_as)}</b>. '
            '<a href="/profile">Your profile</a></p>'
        )
    parts.append(
        f'<h2>Sign in with email</h2><form id="email-form" method="{_method(email_action)}" '
        f'action="{escape(email_action)}"{" data-csrf" if csrf_url else ""}>'
        f"{_csrf_field(csrf_url)}"
        f'<input type="email" name="{escape(email_field)}" id="email" required '
        'placeholder="you@company.test">'
        '<input type="hidden" name="return_to" value="/profile">'
        '<button type="submit">Continue</button></form>'
        f"<p><small>Addresses at <code>{escape(sso_domain)}</code> go to enterprise SSO; "
        "any other address gets a one-time code and a magic link"
        f"{' (read them in the dev mailbox)' if mailbox else ''}.</small></p>"
    )
    links = "".join(
        f'<li><a id="login-{escape(pid)}" href="/auth/login/{escape(pid)}?return_to=/profile">'
        f"Sign in with {escape(title)}</a></li>"
        for pid, title in providers
    )
    parts.append(f"<h2>Or pick a provider</h2><ul>{links}</ul>")
    if csrf_url:
        parts.append(_csrf_script(csrf_url))
    return _layout("rpkit demo", "".join(parts), mailbox=mailbox)


def verify_page(*, status: Any, scalekit_path: str, mailbox: bool) -> str:
    """The passwordless page: "check your email" with the code form while a sign-in is pending,
    and, after a refused step, what went wrong (inline) and what the person can do next. Every
    refused form POST of the Scalekit plugin comes back here (its ``passwordless_page``);
    ``status`` is its ``PasswordlessStatus``."""
    parts = []
    if status.message:
        kind = "error" if status.code else "notice"
        parts.append(
            f'<p class="{kind}" id="passwordless-message" role="status" '
            f'data-code="{escape(status.code or "")}">{escape(status.message)}</p>'
        )
    stuck = status.code in _ENDED or status.code == "passwordless_attempts_exhausted"
    usable = status.pending and not stuck
    csrf_url = f"{scalekit_path}/csrf"
    if usable:
        parts.append(_code_forms(status, scalekit_path, csrf_url, mailbox=mailbox))
    if status.restart and (not usable or status.attempts_left == 0):
        label = (
            "Send a new link to this browser"
            if status.code == "passwordless_other_browser"
            else f"Send a new email to {status.masked_email or 'the same address'}"
        )
        parts.append(
            f'<form id="restart-form" method="post" action="{escape(scalekit_path)}'
            f'/passwordless/restart" data-csrf>{_csrf_field(csrf_url)}'
            f'<button type="submit">{escape(label)}</button></form>'
        )
    if not usable:
        parts.append(
            f"<h2>{'Or use another address' if status.restart else 'Enter your email'}</h2>"
            f'<form id="email-form" method="post" action="{escape(scalekit_path)}/start" '
            f"data-csrf>{_csrf_field(csrf_url)}"
            '<input type="email" name="email" id="email" required placeholder="you@company.test">'
            '<input type="hidden" name="return_to" value="/profile">'
            '<button type="submit">Continue</button></form>'
        )
    parts.append(_csrf_script(csrf_url))
    title = "Check your email" if usable else "Sign in with email"
    return _layout(title, "".join(parts), mailbox=mailbox)


_ENDED = ("passwordless_expired", "passwordless_used", "passwordless_other_browser")
"""Refusals after which the pending code cannot sign in any more."""


def _code_forms(status: Any, scalekit_path: str, csrf_url: str, *, mailbox: bool) -> str:
    hint = ' (here: the <a href="/mailbox">dev mailbox</a>)' if mailbox else ""
    to = f" to <b>{escape(status.masked_email)}</b>" if status.masked_email else ""
    return (
        f'<p id="sent-to">We sent an email{to}{hint} with a one-time code and a magic link. '
        "Type the code, or open the link in this browser.</p>"
        f'<form id="otp-form" method="post" action="{escape(scalekit_path)}/passwordless/verify" '
        f"data-csrf>{_csrf_field(csrf_url)}"
        '<input id="otp" name="code" inputmode="numeric" autocomplete="one-time-code" '
        'pattern="[0-9]{6}" required placeholder="123456" autofocus>'
        '<button type="submit">Sign in</button></form>'
        f'<form id="resend-form" method="post" action="{escape(scalekit_path)}'
        f'/passwordless/resend" data-csrf>{_csrf_field(csrf_url)}'
        '<button type="submit">Send a new email</button></form>'
    )


def _method(action: str) -> str:
    # rpkit's login route is a GET; a plugin's email start endpoint takes a POST.
    return "get" if action.startswith("/auth/login/") else "post"


def profile_page(
    *,
    identity: Mapping[str, Any],
    provider_title: str,
    times: Iterable[tuple[str, int]],
    claims: Mapping[str, Any],
    csrf_token: str,
    has_access_token: bool,
    api_result: Mapping[str, Any] | None,
    mailbox: bool,
    api_trusts_provider: bool = True,
    switch_url: str | None = None,
    organizations: Mapping[str, str] | None = None,
) -> str:
    """Who is signed in (with the provider's display name), when, the API button, the logout
    button; with ``switch_url`` (a Scalekit sign-in into an organization), the organization and
    how to switch: a link per other organization of ``organizations`` (id → name), else one
    link to Scalekit's organization switcher."""
    rows = "".join(
        f"<tr><th>{escape(label)}</th><td>{_date_time(unix)}</td></tr>" for label, unix in times
    )
    body = (
        f'<p id="who">Signed in with <b>{escape(provider_title)}</b> as '
        f"<b>{escape(str(claims.get('email') or identity['subject']))}</b></p>"
        f'<h2>When</h2><table id="times">{rows}</table>'
        f'<h2>Identity</h2><pre id="identity">{escape(json.dumps(identity, indent=2))}</pre>'
        f'<h2>Claims</h2><pre id="claims">{escape(json.dumps(claims, indent=2))}</pre>'
        "<h2>Bearer-protected API</h2>"
    )
    if has_access_token and not api_trusts_provider:
        body += (
            '<p id="no-access-token">This provider\'s access tokens are for its own APIs: the '
            "demo's /api/me trusts the fake OP and Scalekit only.</p>"
        )
    elif has_access_token:
        body += (
            '<p><a class="button" id="call-api" href="/profile/api">'
            "Call GET /api/me with my access token</a></p>"
        )
    else:
        body += (
            '<p id="no-access-token">This session holds no access token (a passwordless '
            "sign-in proves the email only), so there is no API to call with it.</p>"
        )
    if api_result is not None:
        body += f'<pre id="api-result">{escape(json.dumps(api_result, indent=2))}</pre>'
    if switch_url is not None:
        body += _organization_section(identity.get("organization"), switch_url, organizations or {})
    body += (
        '<form method="post" action="/auth/logout">'
        f'<input type="hidden" name="csrf_token" value="{escape(csrf_token)}">'
        '<input type="hidden" name="return_to" value="/?signed_out=1">'
        '<button id="logout" type="submit">Sign out</button></form>'
    )
    return _layout("Your profile", body, mailbox=mailbox)


def _organization_section(current: Any, switch_url: str, organizations: Mapping[str, str]) -> str:
    """The organization signed in to, and the plugin's ``GET {path}/organizations/switch``
    links (``prompt=select_account``, with ``organization_id`` when one is named)."""
    name = organizations.get(str(current), "")
    code = escape(str(current))
    shown = f"{escape(name)} (<code>{code}</code>)" if name else code
    others = [(oid, title) for oid, title in organizations.items() if oid != current]
    targets = [
        (f"Switch organization: {title}", {"organization_id": oid, "return_to": "/profile"})
        for oid, title in others
    ] or [("Switch organization", {"return_to": "/profile"})]
    links = "".join(
        f'<li><a class="switch-organization" href="{escape(switch_url + "?" + urlencode(query))}">'
        f"{escape(label)}</a></li>"
        for label, query in targets
    )
    return (
        f'<h2>Organization</h2><p id="organization">Signed in to {shown}</p>'
        f'<ul id="switch-organization">{links}</ul>'
    )


def mailbox_page(emails: list[dict[str, Any]]) -> str:
    """The emails the fake Scalekit "sent", newest first, with code and magic link."""
    if not emails:
        body = '<p id="empty">No email yet. Sign in with an address outside the SSO domain.</p>'
        return _layout("Dev mailbox", body, mailbox=True)
    rows = "".join(_mail_row(i, email) for i, email in enumerate(emails))
    body = (
        "<p>Nothing is really sent: these are the emails the fake Scalekit would have sent.</p>"
        "<table><thead><tr><th>To</th><th>Code</th><th>Magic link</th><th>Expires</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )
    return _layout("Dev mailbox", body, mailbox=True)


def _mail_row(index: int, email: dict[str, Any]) -> str:
    link = email.get("link")
    anchor = f'<a class="magic-link" href="{escape(link)}">Sign in</a>' if link else ""
    return (
        f'<tr class="email" id="email-{index}"><td class="to">{escape(email["email"])}</td>'
        f'<td><code class="otp">{escape(email.get("otp") or "")}</code></td>'
        f"<td>{anchor}</td><td>{_clock(email.get('expires_at'))}</td></tr>"
    )


def _date_time(unix: int) -> str:
    """``2026-12-04 22:33:47 UTC``, in a ``<time>`` element that keeps the Unix value."""
    moment = datetime.fromtimestamp(unix, UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f'<time datetime="{moment.isoformat()}" data-unix="{unix}">{text}</time>'


def _clock(unix: Any) -> str:
    if not isinstance(unix, int) or unix <= 0:
        return ""
    return datetime.fromtimestamp(unix, UTC).strftime("%H:%M:%S UTC")
