"""Bounds and full-match shapes of every value the plugin takes from outside: emails and
routing values, one-time codes and link tokens, ``idp_initiated_login`` tokens, and the email
content only the server may set."""

from __future__ import annotations

import pytest
import respx

from rpkit.errors import ConfigurationError
from rpkit.store import MemoryStore
from rpkit_scalekit._inbound import refuse_email_content, return_to, text
from rpkit_scalekit._wire import _code
from rpkit_scalekit.errors import (
    IdPInitiatedLoginError,
    InvalidEmailError,
    PasswordlessCredentialFormatError,
    PasswordlessEmailContentError,
    ScalekitInputError,
)
from rpkit_scalekit.idp_initiated import MAX_TOKEN_LENGTH, check_token
from rpkit_scalekit.limiter import PasswordlessLimiter
from rpkit_scalekit.litestar import ScalekitLitestarPlugin
from rpkit_scalekit.management import ManagementClient
from rpkit_scalekit.passwordless import (
    PasswordlessClient,
    PasswordlessEmail,
    check_code,
    check_link_token,
)
from rpkit_scalekit.routing import LoginRoute, LoginRouter, check_email

from .conftest import Clock, status_envelope

VERIFY = "/api/v1/passwordless/email/verify"
AUTH_ID = "ar_bounds_1"

# -- full-match: a value ending in a bare "\n" is refused everywhere --------------------------


@pytest.mark.parametrize(
    "email",
    [
        "ada@example.com\n",
        "ada\n@example.com",
        "ada@example.com\r\n",
        "ada@exa\nmple.com",
        "ada@" + "a" * 300 + ".com",
        "a" * 65 + "@example.com",
    ],
    ids=repr,
)
def test_check_email_refuses_newlines_and_overlong_parts(email: str) -> None:
    with pytest.raises(InvalidEmailError):
        check_email(email)


def test_check_email_keeps_an_ordinary_address() -> None:
    assert check_email("Ada.Lovelace+x@Example.COM") == (
        "Ada.Lovelace+x@example.com",
        "example.com",
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"login_hint": "ada@acme.test\n"},
        {"organization_id": "org_1\n"},
        {"connection_id": "conn_1\n"},
        {"provider": "google\n"},
        {"domain_hint": "acme.test\n"},
    ],
    ids=repr,
)
def test_a_login_route_refuses_a_value_ending_in_a_newline(fields: dict[str, str]) -> None:
    with pytest.raises(ScalekitInputError):
        LoginRoute(kind="hosted", reason="hook", **fields)  # type: ignore[arg-type]


class _NoDirectory:
    calls = 0

    async def list_connections(self, **_: object) -> tuple[()]:
        self.calls += 1
        return ()


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "ada@acme.test\n"},
        {"organization_id": "org_1\n"},
        {"connection_id": "c" * 129},
        {"domain_hint": "x" * 100_000},
    ],
    ids=lambda f: repr(f)[:40],
)
async def test_the_router_refuses_before_any_lookup(fields: dict[str, str]) -> None:
    directory = _NoDirectory()
    router = LoginRouter(directory)

    with pytest.raises(ScalekitInputError):
        await router.route(**fields)

    assert directory.calls == 0


def test_an_error_code_ending_in_a_newline_is_dropped() -> None:
    assert _code("INVALID_CODE") == "INVALID_CODE"
    assert _code("INVALID_CODE\n") is None


# -- one-time codes and link tokens in the provider's format ----------------------------------


@pytest.mark.parametrize("code", ["123456", "000000", "999999"])
def test_six_ascii_digits_are_a_code(code: str) -> None:
    assert check_code(code) == code


@pytest.mark.parametrize(
    "code",
    [
        "١٢٣٤٥٦",  # Arabic-Indic
        "۱۲۳۴۵۶",  # Extended Arabic-Indic
        "１２３４５６",  # fullwidth
        "¹²³⁴⁵⁶",  # superscripts: str.isdigit() is True for these
        "१२३४५६",  # Devanagari
        "123456\n",
        "\n123456",
        " 123456",
        "123 456",
        "12345",
        "1234567",
        "12345a",
        "",
        None,
        123456,
        "1" * 100_000,
    ],
    ids=lambda c: repr(c)[:12],
)
def test_anything_else_is_refused_never_converted(code: object) -> None:
    with pytest.raises(PasswordlessCredentialFormatError) as caught:
        check_code(code)

    assert caught.value.field == "code"
    assert caught.value.code == "passwordless_credential_malformed"


def test_the_code_length_is_configurable() -> None:
    assert check_code("12345678", 8) == "12345678"
    with pytest.raises(PasswordlessCredentialFormatError):
        check_code("123456", 8)


@pytest.mark.parametrize("length", [0, 21, -1])
def test_an_impossible_otp_length_is_refused_at_construction(length: int) -> None:
    with pytest.raises(ConfigurationError):
        ScalekitLitestarPlugin(otp_length=length)


@pytest.mark.parametrize("token", ["a4143d8f-4e1b-4c43-9d6f-2c7fc846ed91_l", "x", "A-_9"])
def test_url_safe_link_tokens_are_accepted(token: str) -> None:
    assert check_link_token(token) == token


@pytest.mark.parametrize(
    "token",
    ["", "a" * 101, "token\n", "tok en", "tök_l", "a/b", "a.b", "a%0A", None],
    ids=repr,
)
def test_other_link_tokens_are_refused(token: object) -> None:
    with pytest.raises(PasswordlessCredentialFormatError) as caught:
        check_link_token(token)

    assert caught.value.field == "link_token"


async def test_a_malformed_code_reaches_neither_scalekit_nor_the_limiter(
    api: ManagementClient, mock: respx.MockRouter, clock: Clock
) -> None:
    store = MemoryStore(clock=clock)
    client = PasswordlessClient(api, limiter=PasswordlessLimiter(store, clock=clock))
    wrong = status_envelope(400, 3, "INVALID_CODE: the code is invalid", "INVALID_CODE")
    verify = mock.post(VERIFY).mock(return_value=wrong)

    for _ in range(10):
        with pytest.raises(PasswordlessCredentialFormatError):
            await client.verify_code("１２３４５６", auth_request_id=AUTH_ID)

    assert len(mock.calls) == 0
    assert len(store) == 0, "no attempt was reserved"
    assert verify.call_count == 0


async def test_a_malformed_link_token_reaches_nothing(
    api: ManagementClient, mock: respx.MockRouter
) -> None:
    client = PasswordlessClient(api)

    with pytest.raises(PasswordlessCredentialFormatError):
        await client.verify_link("token\n", auth_request_id=AUTH_ID)

    assert len(mock.calls) == 0


# -- idp_initiated_login tokens -----------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["a.b.c\n", "a.b", "a.b.c.d", "a b.c.d", "ä.b.c", "a.b.c" + "x" * MAX_TOKEN_LENGTH, "", None],
    ids=lambda t: repr(t)[:16],
)
def test_a_malformed_idp_initiated_token_is_refused_by_shape(token: object) -> None:
    with pytest.raises(IdPInitiatedLoginError) as caught:
        check_token(token)

    assert caught.value.reason == "malformed"


def test_a_compact_jws_shape_passes() -> None:
    assert check_token("eyJh.eyJp.c2ln") == "eyJh.eyJp.c2ln"


# -- email content is the server's --------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    ["template", "template_variables", "magiclink_auth_uri", "state", "expires_in", "app_name"],
)
def test_email_content_from_a_request_is_refused(field: str) -> None:
    with pytest.raises(PasswordlessEmailContentError) as caught:
        refuse_email_content({"email": "ada@example.com", field: None})

    assert caught.value.field == field
    assert caught.value.code == "passwordless_email_content_refused"


def test_a_bracketed_template_field_is_refused_without_echoing_its_name() -> None:
    with pytest.raises(PasswordlessEmailContentError) as caught:
        refuse_email_content({"template_variables[x\nforged log line]": "v"})

    assert caught.value.field == "template_variables"
    assert "\n" not in str(caught.value)


def test_email_and_return_to_are_not_email_content() -> None:
    refuse_email_content({"email": "ada@example.com", "return_to": "/", "csrf_token": "x"})


@pytest.mark.parametrize(
    "make",
    [
        lambda: PasswordlessEmail(template="PHISH"),  # type: ignore[arg-type]
        lambda: PasswordlessEmail(template_variables={"otp": "123456"}),
        lambda: PasswordlessEmail(template_variables={"k": "too short a key"}),
        lambda: PasswordlessEmail(template_variables={"app_name": "x" * 257}),
        lambda: PasswordlessEmail(template_variables={f"key{i}": "v" for i in range(31)}),
    ],
    ids=["template", "reserved", "short-key", "long-value", "too-many"],
)
def test_configured_email_content_is_checked_at_construction(make: object) -> None:
    with pytest.raises(ScalekitInputError):
        make()  # type: ignore[operator]


def test_configured_email_content_is_read_only() -> None:
    email = PasswordlessEmail(template_variables={"app_name": "Acme"})

    with pytest.raises(TypeError):
        email.template_variables["app_name"] = "Evil"  # type: ignore[index]


# -- other route inputs -------------------------------------------------------------------------


def test_a_field_is_bounded_and_typed() -> None:
    assert text({"email": ""}, "email") is None
    with pytest.raises(ScalekitInputError):
        text({"email": ["a"]}, "email")
    with pytest.raises(ScalekitInputError):
        text({"email": "a" * 2049}, "email")


@pytest.mark.parametrize("value", ["/" + "a" * 2048, "/inbox\n", "/a\u2028b", "/\x7f"], ids=repr)
def test_return_to_out_of_bounds_is_refused_not_replaced(value: str) -> None:
    with pytest.raises(ScalekitInputError) as caught:
        return_to({"return_to": value}, "/")

    assert caught.value.field == "return_to"


def test_an_off_site_return_to_falls_back_to_the_default() -> None:
    assert return_to({"return_to": "https://evil.example/"}, "/home") == "/home"
    assert return_to({"return_to": "/inbox?x=1"}, "/home") == "/inbox?x=1"
    assert return_to({}, "/home") == "/home"
