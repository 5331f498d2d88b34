"""Property tests of the plugin's input checks: whatever text arrives, a value is accepted only
in the exact shape Scalekit issues or accepts, and never with a line break."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rpkit_scalekit._inbound import EMAIL_CONTENT_FIELDS, refuse_email_content
from rpkit_scalekit.errors import (
    IdPInitiatedLoginError,
    PasswordlessCredentialFormatError,
    PasswordlessEmailContentError,
    ScalekitInputError,
)
from rpkit_scalekit.idp_initiated import check_token
from rpkit_scalekit.passwordless import check_code, check_link_token
from rpkit_scalekit.routing import LoginRoute, check_email

PROFILE = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
URL_SAFE = set(string.ascii_letters + string.digits + "-_")
# Text biased towards the interesting: digits of every script, separators and line breaks.
tricky = st.text(
    alphabet=st.one_of(
        st.sampled_from("0123456789١٢٣४５¹\n\r\t \u2028\x00@.-_"),
        st.characters(),
    ),
    max_size=40,
)


@PROFILE
@given(tricky)
def test_a_code_is_accepted_only_as_six_ascii_digits(code: str) -> None:
    expected = len(code) == 6 and all(c in "0123456789" for c in code)
    try:
        accepted = check_code(code) == code
    except PasswordlessCredentialFormatError:
        accepted = False

    assert accepted == expected


@PROFILE
@given(st.one_of(tricky, st.text(alphabet=sorted(URL_SAFE), max_size=120)))
def test_a_link_token_is_accepted_only_as_url_safe_text(token: str) -> None:
    expected = 0 < len(token) <= 100 and set(token) <= URL_SAFE
    try:
        accepted = check_link_token(token) == token
    except PasswordlessCredentialFormatError:
        accepted = False

    assert accepted == expected


@PROFILE
@given(st.one_of(tricky, st.emails().map(lambda e: e + "\n"), st.emails()))
def test_an_accepted_email_is_bounded_and_single_line(email: str) -> None:
    try:
        address, domain = check_email(email)
    except ScalekitInputError:
        return

    assert len(email) <= 320
    assert address.isprintable()
    assert " " not in address
    assert address.endswith("@" + domain)
    assert domain.isascii()
    assert domain == domain.lower()


@PROFILE
@given(
    st.sampled_from(["organization_id", "connection_id", "provider", "domain_hint"]),
    st.one_of(tricky, st.text(alphabet="abc_-.", max_size=10).map(lambda v: v + "\n")),
)
def test_a_login_route_never_holds_a_line_break(field: str, value: str) -> None:
    try:
        route = LoginRoute(kind="hosted", reason="fuzz", **{field: value})  # type: ignore[arg-type]
    except ScalekitInputError:
        return

    assert all(v.isprintable() for v in route.params().values())


@PROFILE
@given(st.one_of(tricky, st.from_regex(r"[A-Za-z0-9_-]{1,20}(\.[A-Za-z0-9_-]{0,20}){2}\n?")))
def test_an_idp_initiated_token_shape_is_three_base64url_segments(token: str) -> None:
    shaped = token.count(".") == 2 and set(token) <= URL_SAFE | {"."}
    shaped = shaped and all(token.split(".")[:2])  # header and payload are never empty
    if shaped:
        assert check_token(token) == token
    else:
        with pytest.raises(IdPInitiatedLoginError, match=r"compact JWS|missing"):
            check_token(token)


@PROFILE
@given(st.dictionaries(st.one_of(tricky, st.sampled_from(sorted(EMAIL_CONTENT_FIELDS))), tricky))
def test_any_email_content_field_is_refused(values: dict[str, str]) -> None:
    content = {k for k in values if k in EMAIL_CONTENT_FIELDS or k.startswith("template")}
    if content:
        with pytest.raises(PasswordlessEmailContentError):
            refuse_email_content(values)
    else:
        refuse_email_content(values)
