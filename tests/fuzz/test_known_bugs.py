"""Minimal reproductions of crashes the fuzz tests found: each is an input that should give a
typed error (or a refusal page), but raises an unhandled exception (a 500 through Litestar).

Each test is ``xfail(strict=True)``: when the bug is fixed it passes, the strict xfail turns that
into a failure, and whoever fixed it removes the mark and the predicate below that keeps the
input out of the fuzz tests.
"""

from __future__ import annotations

import base64
import json

import httpx
import msgspec
import pytest

from rpkit.discovery import parse_metadata
from rpkit.errors import (
    AccessTokenValidationError,
    ConfigurationError,
    DiscoveryError,
    IDTokenValidationError,
    JWKSError,
    LogoutTokenValidationError,
)
from rpkit.flow import validate_params
from rpkit.id_token import AccessTokenPolicy
from rpkit.jwks import JWKSCache
from rpkit.testing import Canned, Endpoint, FakeOP
from tests.fuzz.conftest import Core, op_counts, subject_of
from tests.litestar.conftest import Browser

_JSON = "application/json"

# -- predicates the fuzz tests use to keep known crashes out -------------------------------------


def max_age_crashes_login(value: str) -> bool:
    """``validate_params`` accepts ``max_age`` by ``str.isdigit()``, which is true for digits
    that ``int()`` refuses (superscripts, circled digits): ``begin_login`` then crashes."""
    return value.isdigit() and not value.isdecimal()


def max_age_header_crashes_jwks(cache_control: str) -> bool:
    """``jwks._max_age`` crashes on a ``max-age`` of non-decimal digits (``int()`` refuses
    them), of more than 4300 digits (``int()``'s limit) or above about 1e308 (``float()``)."""
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        value = value.strip('"')
        absurd = not value.isdecimal() or len(value.lstrip("0")) > 300
        if name.lower() == "max-age" and value.isdigit() and absurd:
            return True
    return False


def url_crashes_discovery(value: object) -> bool:
    """``urlsplit`` raises ValueError for an unbalanced ``[`` or ``]`` in the netloc (an IPv6
    literal), and ``discovery._check_url`` does not catch it."""
    return isinstance(value, str) and ("[" in value or "]" in value)


def logout_exp_overflows(claims: dict[str, object], now: int) -> bool:
    """``logout.check_logout_token`` remembers the ``jti`` until ``exp``: far-future values
    overflow the store's expiry (Litestar's ``datetime`` past year 9999 at about 2.5e11 s,
    ``MemoryStore``'s float at about 1.8e308)."""
    exp = claims.get("exp")
    return type(exp) in (int, float) and exp - now > 10**11  # type: ignore[operator]


def json_crashes_msgspec(content: bytes) -> bool:
    """``msgspec.json.decode`` raises UnicodeDecodeError (not ``msgspec.DecodeError``) for
    invalid UTF-8 inside a JSON string, and RecursionError for deep nesting; rpkit's decoders
    (``_jwt``, ``discovery``, ``jwks``, ``tokens``, ``userinfo``) catch neither."""
    try:
        msgspec.json.decode(content)
    except (UnicodeDecodeError, RecursionError):
        return True
    except msgspec.DecodeError:
        return False
    return False


def header_crashes_parse(token: str) -> bool:
    """A compact token whose header segment is base64url of bytes that crash msgspec."""
    head = token.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
    except ValueError:
        return False
    return json_crashes_msgspec(raw)


def time_claim_overflows(claims: dict[str, object]) -> bool:
    """``_jwt.check_times`` computes ``now - iat`` (a float minus an int): an ``iat`` beyond the
    float range (about -1.8e308) raises OverflowError (ID and logout tokens)."""
    iat = claims.get("iat")
    return type(iat) is int and abs(iat) > 10**308


# -- reproductions -------------------------------------------------------------------------------


DEEP = b"[" * 5000 + b"]" * 5000
"""JSON nested 5000 deep (10 kB): msgspec raises RecursionError decoding it."""
NOT_UTF8 = b'{"alg":"RS256","kid":"\xa7"}'
"""Invalid UTF-8 inside a JSON string: msgspec raises UnicodeDecodeError, not DecodeError."""
CRASHING_JSON = pytest.mark.parametrize("content", [DEEP, NOT_UTF8], ids=["deep", "not-utf8"])
DECODING = (
    "msgspec.json.decode raises RecursionError (deep nesting) and UnicodeDecodeError (invalid "
    "UTF-8 in a string), which are not msgspec.DecodeError"
)


def token_with_header(header: bytes) -> str:
    """A 3-part token with this header, well under the 64 kB limit; the header is decoded
    before any signature check, so anyone can send it."""
    head = base64.urlsafe_b64encode(header).rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(b'{"iss":"https://op.rpkit.test"}').rstrip(b"=").decode()
    return f"{head}.{payload}.c2ln"


@pytest.mark.xfail(
    strict=True,
    raises=(RecursionError, UnicodeDecodeError),
    reason=f"rpkit._jwt._decode_head catches binascii.Error and msgspec.DecodeError; {DECODING}",
)
@CRASHING_JSON
@pytest.mark.parametrize("kind", ["id", "access", "logout"])
async def test_a_token_whose_header_crashes_the_json_decoder_is_a_typed_rejection(
    core: Core, kind: str, content: bytes
):
    token = token_with_header(content)
    validator, config, metadata = core.validator, core.config, core.metadata

    if kind == "id":
        with pytest.raises(IDTokenValidationError):
            await validator.validate_id_token(
                token, config=config, metadata=metadata, expected_nonce="n"
            )
    elif kind == "access":
        policy = AccessTokenPolicy(
            issuers=(config.issuer,), jwks_uri=metadata.jwks_uri, audience=("api",)
        )
        with pytest.raises(AccessTokenValidationError):
            await validator.validate_access_token(token, policy)
    else:
        with pytest.raises(LogoutTokenValidationError):
            await validator.validate_logout_token(token, config=config, metadata=metadata)


@pytest.mark.xfail(
    strict=True,
    reason=f"rpkit._jwt._decode_head: {DECODING}; the back-channel logout route answers 500",
)
@CRASHING_JSON
async def test_a_backchannel_logout_token_whose_header_crashes_the_decoder_is_a_400(
    signed_in: Browser, content: bytes
):
    before = op_counts(signed_in.op)

    response = await signed_in.client.post(
        "/auth/backchannel-logout/fake", data={"logout_token": token_with_header(content)}
    )

    assert response.status_code == 400
    assert op_counts(signed_in.op) == before
    assert await subject_of(signed_in) == "alice"


@pytest.mark.xfail(
    strict=True,
    raises=(RecursionError, UnicodeDecodeError),
    reason=f"rpkit.discovery.parse_metadata catches only msgspec.DecodeError; {DECODING}",
)
@CRASHING_JSON
def test_a_discovery_document_that_crashes_the_decoder_is_a_discovery_error(content: bytes):
    config = FakeOP().provider_config()

    with pytest.raises(DiscoveryError):
        parse_metadata(b'{"issuer":' + content + b"}", config)


@pytest.mark.xfail(
    strict=True,
    raises=(RecursionError, UnicodeDecodeError),
    reason=f"rpkit.jwks._parse_key_set catches only msgspec.DecodeError; {DECODING}",
)
@CRASHING_JSON
async def test_a_jwks_that_crashes_the_decoder_is_a_jwks_error(content: bytes):
    body = b'{"keys":[' + content + b"]}"
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(JWKSError):
            await JWKSCache(http).key_for("https://op.example/jwks", {}, "RS256")


@pytest.mark.xfail(
    strict=True,
    reason=f"rpkit.tokens._decode and rpkit.userinfo._json_claims catch only "
    f"msgspec.DecodeError; {DECODING}: the callback answers 500",
)
@CRASHING_JSON
@pytest.mark.parametrize("endpoint", ["token", "userinfo"])
async def test_a_token_or_userinfo_response_that_crashes_the_decoder_is_an_error_page(
    app: Browser, endpoint: Endpoint, content: bytes
):
    status = 400 if endpoint == "token" else 200
    app.op.misbehave.respond[endpoint] = Canned(status, b'{"error":' + content + b"}", _JSON)

    landed = await app.login()

    assert landed.status_code == 400
    assert await subject_of(app) is None


@pytest.mark.xfail(
    strict=True,
    raises=OverflowError,
    reason="rpkit._jwt.check_times computes now - iat (float - int): a signed iat below about "
    "-1.8e308 raises OverflowError (ID and logout tokens; also auth_time with max_age)",
)
async def test_a_signed_id_token_with_an_iat_beyond_the_float_range_is_rejected(core: Core):
    op = core.op
    token = op.minter.mint_id_token(
        audience=core.config.client_id, subject="alice", nonce="n", claims={"iat": -(10**400)}
    )

    with pytest.raises(IDTokenValidationError):
        await core.validator.validate_id_token(
            token, config=core.config, metadata=core.metadata, expected_nonce="n"
        )


@pytest.mark.xfail(
    strict=True,
    reason="rpkit.flow.validate_params checks max_age with str.isdigit(), true for '²', and "
    "RelyingParty.begin_login's int('²') raises ValueError: the login route answers 500",
)
async def test_a_login_with_a_superscript_max_age_is_refused(app: Browser):
    before = op_counts(app.op)

    response = await app.client.get("/auth/login/fake", params={"max_age": "²"})

    assert response.status_code == 400
    assert op_counts(app.op) == before


@pytest.mark.xfail(
    strict=True, reason="rpkit.flow.validate_params accepts max_age '²' (str.isdigit())"
)
def test_a_superscript_max_age_is_a_configuration_error_in_the_core():
    config = FakeOP().provider_config()

    with pytest.raises(ConfigurationError):
        validate_params(config, {"max_age": "²"})


@pytest.mark.xfail(
    strict=True,
    raises=(OverflowError, ValueError),
    reason="rpkit.jwks._max_age/_ttl: int() and float() of the OP's Cache-Control max-age "
    "raise for '²', for more than 4300 digits and above about 1e308",
)
@pytest.mark.parametrize("max_age", [b"9" * 400, b"9" * 5000, b"\xb2"])
async def test_a_jwks_with_an_absurd_cache_max_age_is_still_used(max_age: bytes):
    op = FakeOP()
    body = json.dumps(op.keys.jwks()).encode()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=body, headers=[(b"Cache-Control", b"max-age=" + max_age)]
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        key = await JWKSCache(http).key_for(
            op.endpoints["jwks"], {"kid": op.keys.kid("RS256")}, "RS256"
        )
    assert key.key_type == "RSA"


@pytest.mark.xfail(
    strict=True,
    raises=ValueError,
    reason="rpkit.discovery._check_url calls urlsplit, which raises ValueError('Invalid IPv6 "
    "URL') for an unbalanced '[' in an endpoint URL",
)
def test_an_endpoint_url_with_an_unbalanced_bracket_is_a_discovery_error():
    op = FakeOP()
    document = op.metadata() | {"token_endpoint": "https://[op.rpkit.test/token"}

    with pytest.raises(DiscoveryError):
        parse_metadata(json.dumps(document).encode(), op.provider_config())


@pytest.mark.xfail(
    strict=True,
    reason="rpkit.litestar.handlers logout: hmac.compare_digest(str, str) raises TypeError for "
    "a non-ASCII csrf_token (form field or X-CSRF-Token header): the route answers 500",
)
@pytest.mark.parametrize("where", ["form", "header"])
async def test_a_logout_with_a_non_ascii_csrf_token_is_forbidden(signed_in: Browser, where: str):
    before = op_counts(signed_in.op)
    if where == "form":
        response = await signed_in.client.post("/auth/logout", data={"csrf_token": "é"})
    else:
        response = await signed_in.client.post("/auth/logout", headers=[(b"X-CSRF-Token", b"\xe9")])

    assert response.status_code == 403
    assert op_counts(signed_in.op) == before
    assert await subject_of(signed_in) == "alice"


@pytest.mark.xfail(
    strict=True,
    reason="rpkit.logout.check_logout_token keeps the jti for exp - now seconds; Litestar's "
    "MemoryStore computes now + timedelta(exp - now), past year 9999 an OverflowError: the "
    "back-channel logout route answers 500 to a validly signed token",
)
async def test_a_logout_token_with_a_far_future_exp_does_not_crash_the_route(
    signed_in: Browser,
):
    op = signed_in.op
    sid = next(reversed(op.sessions))
    token = op.minter.mint_logout_token(
        audience=op.provider_config().client_id,
        subject="alice",
        sid=sid,
        claims={"exp": op.now() + 10**12},
    )

    response = await signed_in.client.post(
        "/auth/backchannel-logout/fake", data={"logout_token": token}
    )

    assert response.status_code in (200, 400)
