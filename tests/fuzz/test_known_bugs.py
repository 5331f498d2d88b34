"""Regression tests for crashes the fuzz tests found: each input once raised an unhandled
exception (a 500 through Litestar) and now gives a typed error, a refusal page or success.

The property tests cover these inputs too (``strategies.odd_json`` has the decoder-crashing
bytes); these minimal reproductions say exactly which input broke which function. A bug found
but not fixed yet gets an ``xfail(strict=True)`` reproduction at the end, and a predicate when a
property test must step around it; whoever fixes it removes both.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from rpkit._json import MAX_DEPTH
from rpkit._jwt import MAX_NUMERIC_DATE
from rpkit.config import MAX_IAT_AGE, is_loopback_http
from rpkit.discovery import parse_metadata
from rpkit.errors import (
    AccessTokenValidationError,
    ConfigurationError,
    DiscoveryError,
    IDTokenValidationError,
    JWKSError,
    LogoutTokenValidationError,
    MalformedParameterError,
)
from rpkit.flow import validate_params
from rpkit.id_token import AccessTokenPolicy
from rpkit.jwks import JWKSCache
from rpkit.logout import check_logout_token
from rpkit.store import MemoryStore
from rpkit.testing import Canned, Endpoint, FakeOP
from tests.fuzz.conftest import Core, op_counts, subject_of
from tests.litestar.conftest import Browser
from tests.litestar.test_bearer import api, assert_invalid_token, bearer

_JSON = "application/json"

DEEP = b"[" * 5000 + b"]" * 5000
"""JSON nested 5000 deep (10 kB): msgspec raises RecursionError decoding it."""
NOT_UTF8 = b'{"alg":"RS256","kid":"\xa7"}'
"""Invalid UTF-8 inside a JSON string: msgspec raises UnicodeDecodeError, not DecodeError."""
CRASHING_JSON = pytest.mark.parametrize("content", [DEEP, NOT_UTF8], ids=["deep", "not-utf8"])
ISS_PAYLOAD = b'{"iss":"https://op.rpkit.test"}'


def nested(depth: int) -> Any:
    """``depth`` arrays inside each other: 600 decodes in msgspec, but ``freeze`` (two Python
    frames a level) then exhausted the recursion limit."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_with_header(header: bytes) -> str:
    """A 3-part token with this header, well under the 64 kB limit; the header is decoded
    before any signature check, so anyone can send it."""
    return f"{b64(header)}.{b64(ISS_PAYLOAD)}.c2ln"


async def validate_id_token(core: Core, claims: dict[str, Any], **request: Any) -> Any:
    token = core.op.minter.mint_id_token(
        audience=core.config.client_id, subject="alice", nonce="n", claims=claims
    )
    return await core.validator.validate_id_token(
        token, config=core.config, metadata=core.metadata, expected_nonce="n", **request
    )


# -- 1. JSON that msgspec refuses with something other than DecodeError ---------------------------


@CRASHING_JSON
@pytest.mark.parametrize("kind", ["id", "access", "logout"])
async def test_a_token_whose_header_crashes_the_json_decoder_is_a_typed_rejection(
    core: Core, kind: str, content: bytes
):
    """Was: ``_jwt._decode_head`` caught only ``binascii.Error`` and ``msgspec.DecodeError``."""
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


@CRASHING_JSON
async def test_a_backchannel_logout_token_whose_header_crashes_the_decoder_is_a_400(
    signed_in: Browser, content: bytes
):
    """Was: a 500 from the back-channel logout route (``_jwt._decode_head``)."""
    before = op_counts(signed_in.op)

    response = await signed_in.client.post(
        "/auth/backchannel-logout/fake", data={"logout_token": token_with_header(content)}
    )

    assert response.status_code == 400
    assert op_counts(signed_in.op) == before
    assert await subject_of(signed_in) == "alice"


async def test_a_bearer_token_whose_payload_crashes_the_decoder_is_an_invalid_token(
    fake_op: FakeOP,
):
    """Was: a 500 from the bearer middleware: ``bearer._unverified_issuer`` caught
    ``ValueError`` (so invalid UTF-8) but not the RecursionError of a deep unknown member."""
    header, payload = b'{"alg":"RS256"}', b'{"x":' + DEEP + b"}"
    token = f"{b64(header)}.{b64(payload)}.c2ln"

    async with api(fake_op) as client:
        response = await client.get("/me", headers=bearer(token))

    assert_invalid_token(response, token)


@CRASHING_JSON
def test_a_discovery_document_that_crashes_the_decoder_is_a_discovery_error(content: bytes):
    """Was: ``discovery.parse_metadata`` caught only ``msgspec.DecodeError``."""
    config = FakeOP().provider_config()

    with pytest.raises(DiscoveryError):
        parse_metadata(b'{"issuer":' + content + b"}", config)


@CRASHING_JSON
async def test_a_jwks_that_crashes_the_decoder_is_a_jwks_error(content: bytes):
    """Was: ``jwks._parse_key_set`` caught only ``msgspec.DecodeError``."""
    body = b'{"keys":[' + content + b"]}"
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(JWKSError):
            await JWKSCache(http).key_for("https://op.example/jwks", {}, "RS256")


@CRASHING_JSON
@pytest.mark.parametrize("endpoint", ["token", "userinfo"])
async def test_a_token_or_userinfo_response_that_crashes_the_decoder_is_an_error_page(
    app: Browser, endpoint: Endpoint, content: bytes
):
    """Was: a 500 from the callback (``tokens._decode``, ``userinfo._json_claims``)."""
    status = 400 if endpoint == "token" else 200
    app.op.misbehave.respond[endpoint] = Canned(status, b'{"error":' + content + b"}", _JSON)

    landed = await app.login()

    assert landed.status_code == 400
    assert await subject_of(app) is None


# -- 1b. JSON that decodes but is too deep for what comes after ----------------------------------


def test_a_discovery_document_nested_deeper_than_the_limit_is_a_discovery_error():
    """Was: RecursionError from ``freeze`` for a member 600 deep, which msgspec decodes."""
    op = FakeOP()
    document = op.metadata() | {"x_vendor": nested(600)}

    with pytest.raises(DiscoveryError):
        parse_metadata(json.dumps(document).encode(), op.provider_config())


def test_a_discovery_document_nested_up_to_the_limit_is_accepted():
    op = FakeOP()
    document = op.metadata() | {"x_vendor": nested(MAX_DEPTH - 1)}  # the object is a level

    metadata = parse_metadata(json.dumps(document).encode(), op.provider_config())

    assert len(json.dumps(metadata.raw["x_vendor"])) == 2 * (MAX_DEPTH - 1)


async def test_a_signed_id_token_with_a_claim_nested_600_deep_is_rejected(core: Core):
    """Was: RecursionError from ``freeze`` on the claims of a validly signed token."""
    with pytest.raises(IDTokenValidationError) as refused:
        await validate_id_token(core, {"x_vendor": nested(600)})

    assert refused.value.reason == "malformed"


@pytest.mark.parametrize("endpoint", ["token", "userinfo"])
async def test_a_token_or_userinfo_response_nested_600_deep_is_an_error_page(
    app: Browser, endpoint: str
):
    """Was: a 500 from the callback (``freeze`` of the response's ``raw``/claims)."""
    if endpoint == "token":
        app.op.misbehave.token_fields = {"deep": nested(600)}
    else:
        app.op.misbehave.userinfo_claims = {"deep": nested(600)}

    landed = await app.login()

    assert landed.status_code == 400
    assert await subject_of(app) is None


# -- 2. max_age for a login ----------------------------------------------------------------------


async def test_a_login_with_a_superscript_max_age_is_refused(app: Browser):
    """Was: ``flow.validate_params`` accepted ``'²'`` (``str.isdigit()``) and
    ``begin_login``'s ``int()`` raised: a 500 from the login route."""
    before = op_counts(app.op)

    response = await app.client.get("/auth/login/fake", params={"max_age": "²"})

    assert response.status_code == 400
    assert op_counts(app.op) == before


@pytest.mark.parametrize("value", ["²", "١٢", "1234567890", "-1", "+5", " 5", "5\n"])
def test_a_max_age_other_than_up_to_nine_ascii_digits_is_a_malformed_parameter(value: str):
    config = FakeOP().provider_config()

    with pytest.raises(MalformedParameterError):
        validate_params(config, {"max_age": value})


@pytest.mark.parametrize("value", ["0", "300", "999999999"])
def test_a_max_age_of_ascii_digits_is_passed_on(value: str):
    config = FakeOP().provider_config()

    assert validate_params(config, {"max_age": value}) == {"max_age": value}


# -- 3. Cache-Control: max-age of the JWKS -------------------------------------------------------


def jwks_answer(op: FakeOP, cache_control: bytes) -> httpx.MockTransport:
    body = json.dumps(op.keys.jwks()).encode()
    return httpx.MockTransport(
        lambda request: httpx.Response(
            200, content=body, headers=[(b"Cache-Control", cache_control)]
        )
    )


@pytest.mark.parametrize("max_age", [b"9" * 400, b"9" * 5000, b"\xb2", b"99999999999"])
async def test_a_jwks_with_an_absurd_cache_max_age_is_used_for_the_default_ttl(max_age: bytes):
    """Was: ``int()``/``float()`` in ``jwks._max_age``/``_ttl`` raised for '²', more than 4300
    digits, or above about 1e308. Now anything but 1-10 ASCII digits counts as not given."""
    op, now = FakeOP(), [0.0]
    kid = {"kid": op.keys.kid("RS256")}
    async with httpx.AsyncClient(transport=jwks_answer(op, b"max-age=" + max_age)) as http:
        cache = JWKSCache(http, default_ttl=300, max_ttl=86400, clock=lambda: now[0])
        key = await cache.key_for(op.endpoints["jwks"], kid, "RS256")
        now[0] = 301.0  # past the default TTL, long before max_ttl
        await cache.key_for(op.endpoints["jwks"], kid, "RS256")

    assert key.key_type == "RSA"
    assert cache.fetches(op.endpoints["jwks"]) == 2


async def test_a_ten_digit_max_age_is_clamped_to_the_cache_maximum():
    op, now = FakeOP(), [0.0]
    kid = {"kid": op.keys.kid("RS256")}
    async with httpx.AsyncClient(transport=jwks_answer(op, b"max-age=9999999999")) as http:
        cache = JWKSCache(http, default_ttl=300, max_ttl=86400, clock=lambda: now[0])
        await cache.key_for(op.endpoints["jwks"], kid, "RS256")
        now[0] = 86399.0
        await cache.key_for(op.endpoints["jwks"], kid, "RS256")
        fetched_within_max = cache.fetches(op.endpoints["jwks"])
        now[0] = 86401.0
        await cache.key_for(op.endpoints["jwks"], kid, "RS256")

    assert fetched_within_max == 1
    assert cache.fetches(op.endpoints["jwks"]) == 2


# -- 4. URLs that urlsplit refuses ---------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://[op.rpkit.test/token", "https://op.rpkit.test]/token"])
def test_an_endpoint_url_with_an_unbalanced_bracket_is_a_discovery_error(url: str):
    """Was: ``discovery._check_url``'s ``urlsplit`` raised ValueError('Invalid IPv6 URL')."""
    op = FakeOP()
    document = op.metadata() | {"token_endpoint": url}

    with pytest.raises(DiscoveryError):
        parse_metadata(json.dumps(document).encode(), op.provider_config())


@pytest.mark.parametrize(
    ("url", "loopback"),
    [("http://[::1", False), ("http://[::1]:8080/cb", True), ("http://127.0.0.1]/", False)],
)
def test_is_loopback_http_is_false_for_what_urlsplit_cannot_parse(url: str, loopback: bool):
    assert is_loopback_http(url) is loopback


def test_an_issuer_with_an_unbalanced_bracket_is_a_configuration_error():
    """Was: ValueError from ``urlsplit`` out of ``ProviderConfig`` construction."""
    with pytest.raises(ConfigurationError, match="issuer"):
        FakeOP().provider_config(issuer="https://[op.rpkit.test")


# -- 5. the logout CSRF token --------------------------------------------------------------------


@pytest.mark.parametrize("where", ["form", "header"])
async def test_a_logout_with_a_non_ascii_csrf_token_is_forbidden(signed_in: Browser, where: str):
    """Was: ``hmac.compare_digest(str, str)`` raised TypeError for non-ASCII: a 500."""
    before = op_counts(signed_in.op)
    if where == "form":
        response = await signed_in.client.post("/auth/logout", data={"csrf_token": "é"})
    else:
        response = await signed_in.client.post("/auth/logout", headers=[(b"X-CSRF-Token", b"\xe9")])

    assert response.status_code == 403
    assert op_counts(signed_in.op) == before
    assert await subject_of(signed_in) == "alice"


# -- 6. how long a logout token's jti is kept ----------------------------------------------------


class RecordingStore(MemoryStore):
    """A memory store that records the expiry of each ``add``."""

    def __init__(self) -> None:
        super().__init__()
        self.added: list[int | None] = []

    async def add(self, key: str, value: bytes, expires_in: int | None = None) -> bool:
        self.added.append(expires_in)
        return await super().add(key, value, expires_in)


async def test_a_logout_token_with_a_far_future_exp_ends_the_session_and_cannot_be_replayed(
    signed_in: Browser,
):
    """Was: the jti was kept ``exp - now`` seconds; past year 9999 Litestar's store raised
    OverflowError: a 500 for a validly signed token."""
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
    replayed = await signed_in.client.post(
        "/auth/backchannel-logout/fake", data={"logout_token": token}
    )

    assert response.status_code == 200
    assert await subject_of(signed_in) is None
    assert replayed.status_code == 400


@pytest.mark.parametrize("exp_in", [120, 10**9])
async def test_a_logout_jti_is_kept_while_the_token_could_still_be_accepted(
    core: Core, exp_in: int
):
    """Kept until ``min(exp, iat + max_iat_age) + leeway``, plus a minute; no longer."""
    store, config, now = RecordingStore(), core.config, core.op.now()
    token = core.op.minter.mint_logout_token(
        audience=config.client_id, subject="alice", claims={"iat": now, "exp": now + exp_in}
    )

    await check_logout_token(core.validator, store, config, core.metadata, token, now=now)

    assert store.added == [min(exp_in, config.max_iat_age) + config.leeway + 60]
    with pytest.raises(LogoutTokenValidationError) as replayed:
        await check_logout_token(core.validator, store, config, core.metadata, token, now=now)
    assert replayed.value.reason == "replay"


def test_a_max_iat_age_over_a_year_is_a_configuration_error():
    """``max_iat_age`` bounds how long a jti is kept, so it is bounded too."""
    FakeOP().provider_config(max_iat_age=MAX_IAT_AGE)

    with pytest.raises(ConfigurationError, match="max_iat_age"):
        FakeOP().provider_config(max_iat_age=MAX_IAT_AGE + 1)


# -- 7. NumericDate claims out of range ----------------------------------------------------------


async def test_a_signed_id_token_with_an_iat_beyond_the_float_range_is_rejected(core: Core):
    """Was: OverflowError from ``now - iat`` in ``_jwt.check_times``."""
    with pytest.raises(IDTokenValidationError) as refused:
        await validate_id_token(core, {"iat": -(10**400)})

    assert refused.value.reason == "iat"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iat": -1}, "iat"),
        ({"exp": MAX_NUMERIC_DATE + 1}, "exp"),
        ({"exp": 1e300}, "exp"),
        ({"nbf": -(10**400)}, "nbf"),
        ({"auth_time": -(10**400)}, "auth_time"),
    ],
)
async def test_a_numeric_date_outside_the_sane_range_is_rejected(
    core: Core, claims: dict[str, Any], reason: str
):
    with pytest.raises(IDTokenValidationError) as refused:
        await validate_id_token(core, claims, max_age=3600)

    assert refused.value.reason == reason


async def test_a_numeric_date_at_the_top_of_the_range_is_accepted(core: Core):
    token = await validate_id_token(core, {"exp": MAX_NUMERIC_DATE})

    assert token.exp == MAX_NUMERIC_DATE


async def test_a_logout_token_with_an_exp_beyond_the_range_is_a_400(signed_in: Browser):
    op = signed_in.op
    token = op.minter.mint_logout_token(
        audience=op.provider_config().client_id,
        subject="alice",
        sid=next(reversed(op.sessions)),
        claims={"exp": 10**400},
    )

    response = await signed_in.client.post(
        "/auth/backchannel-logout/fake", data={"logout_token": token}
    )

    assert response.status_code == 400
    assert await subject_of(signed_in) == "alice"


# -- found nearby --------------------------------------------------------------------------------


async def test_a_token_response_with_an_absurd_expires_in_is_an_error_page(app: Browser):
    """Was: ``expires_in: 10**400`` made ``expires_at`` an int no float can hold; every later
    request of that session raised OverflowError in the refresh check (a 500 each time)."""
    app.op.misbehave.token_fields = {"expires_in": 10**400}

    landed = await app.login()

    assert landed.status_code == 400
    assert await subject_of(app) is None
    assert (await app.client.get("/me")).status_code == 200


# -- still open (outside the files this pass could change) ---------------------------------------


async def test_a_backchannel_logout_with_the_token_field_twice_is_a_400(signed_in: Browser):
    op = signed_in.op
    token = op.minter.mint_logout_token(
        audience=op.provider_config().client_id, subject="alice", sid=next(reversed(op.sessions))
    )

    response = await signed_in.client.post(
        "/auth/backchannel-logout/fake",
        content=str(httpx.QueryParams([("logout_token", token), ("logout_token", token)])),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 400
    assert await subject_of(signed_in) == "alice"


async def test_a_third_party_login_with_an_unparsable_target_link_uri_lands_on_the_default(
    app: Browser,
):
    response = await app.client.get(
        "/auth/initiate",
        params={"iss": app.op.issuer, "target_link_uri": "https://[x/"},
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert response.headers["location"].startswith(app.op.endpoints["authorize"] + "?")


@pytest.mark.xfail(
    strict=True,
    reason="Litestar's multipart parser decodes each field as strict UTF-8 and raises "
    "UnicodeDecodeError inside request.form(): every form route of rpkit answers 500",
)
@pytest.mark.parametrize(
    ("path", "field"),
    [("/auth/logout", "csrf_token"), ("/auth/backchannel-logout/fake", "logout_token")],
)
async def test_a_multipart_form_field_that_is_not_utf8_is_refused(
    signed_in: Browser, path: str, field: str
):
    body = f'--b\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n'.encode()
    response = await signed_in.client.post(
        path,
        content=body + b"\xff\r\n--b--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )

    assert response.status_code in (400, 403)
    assert await subject_of(signed_in) == "alice"
