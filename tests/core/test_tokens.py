"""The token endpoint: a code exchange or refresh is one request, never retried, and its answer is
used only when it is a JSON object with a Bearer access token (and, for a login, an ID token).
Checklist rows 17–19 and 55, 59, 60; row 16 is in ``test_client_auth.py``."""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from structlog.testing import capture_logs

from rpkit._client_auth import new_code_verifier, s256_challenge
from rpkit.config import ProviderConfig
from rpkit.discovery import DiscoveryCache, ProviderMetadata
from rpkit.errors import InvalidGrantError, SessionExpiredError, TokenExchangeError
from rpkit.testing import (
    ABSENT,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    Canned,
    FakeOP,
)
from rpkit.tokens import MAX_DESCRIPTION_LENGTH, TokenClient, TokenSet

SCOPES = ("openid", "profile", "email", "offline_access")


class Clock:
    """A frozen wall clock near the real time (the fake OP checks expiry with the real one)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


def config_for(op: FakeOP, **changes: Any) -> ProviderConfig:
    return op.provider_config(**({"scopes": SCOPES} | changes))


class Login:
    """One provider, its metadata and a TokenClient on the fake OP's client."""

    def __init__(self, op: FakeOP, http: httpx.AsyncClient, config: ProviderConfig) -> None:
        self.op = op
        self.config = config
        self.clock = Clock()
        self.tokens = TokenClient(http, clock=self.clock)
        self.discovery = DiscoveryCache(http)

    async def metadata(self) -> ProviderMetadata:
        return await self.discovery.get(self.config)

    async def code(self) -> tuple[str, str]:
        """An authorization code (PKCE S256, state, nonce) and its verifier."""
        verifier = new_code_verifier()
        params = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": DEFAULT_REDIRECT_URI,
            "scope": " ".join(self.config.scopes),
            "state": secrets.token_urlsafe(16),
            "nonce": secrets.token_urlsafe(16),
            "code_challenge": s256_challenge(verifier),
            "code_challenge_method": "S256",
        }
        url = f"{(await self.metadata()).authorization_endpoint}?{urlencode(params)}"
        code = (await self.op.approve(url)).get("code")
        assert code, "the fake OP issued no code"
        return code, verifier

    async def exchange(self, code: str, verifier: str) -> TokenSet:
        return await self.tokens.exchange_code(
            self.config,
            await self.metadata(),
            code=code,
            redirect_uri=DEFAULT_REDIRECT_URI,
            code_verifier=verifier,
        )

    async def login(self) -> TokenSet:
        return await self.exchange(*await self.code())

    async def refresh(self, refresh_token: str, **kwargs: Any) -> TokenSet:
        return await self.tokens.refresh(
            self.config, await self.metadata(), refresh_token, **kwargs
        )


@pytest.fixture
def login(fake_op: FakeOP, fake_op_http) -> Login:
    return Login(fake_op, fake_op_http, config_for(fake_op))


def leaked(logs: list[dict[str, Any]], *secrets_: str) -> list[str]:
    """The secrets that appear anywhere in captured log events."""
    text = repr(logs)
    return [value for value in secrets_ if value and value in text]


# -- the honest exchange --------------------------------------------------------------------
async def test_code_exchange_returns_the_tokens_and_sends_the_code_flow_form(
    fake_op: FakeOP, login: Login
):
    code, verifier = await login.code()

    tokens = await login.exchange(code, verifier)

    body = fake_op.oracle.last("token")
    assert tokens.access_token
    assert tokens.id_token
    assert tokens.refresh_token
    assert tokens.token_type == "bearer"
    assert tokens.expires_at == int(login.clock.now) + fake_op.access_token_lifetime
    assert tokens.scope == SCOPES
    assert body.param("grant_type") == "authorization_code"
    assert (body.param("code"), body.param("code_verifier")) == (code, verifier)
    assert body.param("redirect_uri") == DEFAULT_REDIRECT_URI


async def test_token_set_raw_is_read_only_and_repr_hides_every_token(login: Login):
    tokens = await login.login()

    with pytest.raises(TypeError):
        tokens.raw["access_token"] = "changed"  # type: ignore[index]
    assert tokens.raw["access_token"] == tokens.access_token
    for token in (tokens.access_token, tokens.refresh_token, tokens.id_token):
        assert token
        assert token not in repr(tokens)
        assert token not in str(tokens)
        assert token not in repr(list(tokens.__rich_repr__()))
    assert "expires_at=" in repr(tokens)


async def test_exchange_logs_neither_the_code_nor_any_token_nor_the_secret(login: Login):
    code, verifier = await login.code()

    with capture_logs() as logs:
        tokens = await login.exchange(code, verifier)

    assert logs
    assert all(log["provider"] == "fake" for log in logs)
    secrets_ = (code, verifier, tokens.access_token, tokens.id_token or "", DEFAULT_CLIENT_SECRET)
    assert leaked(logs, *secrets_, tokens.refresh_token or "") == []


# -- row 17 -----------------------------------------------------------------------------------
async def test_row_17_token_response_without_id_token_is_rejected(fake_op: FakeOP, login: Login):
    fake_op.misbehave.token_fields = {"id_token": ABSENT}
    code, verifier = await login.code()

    with pytest.raises(TokenExchangeError, match="no id_token"):
        await login.exchange(code, verifier)

    assert fake_op.oracle.count("token") == 1
    assert fake_op.oracle.count("userinfo") == 0


# -- row 18 -----------------------------------------------------------------------------------
async def test_row_18a_invalid_grant_is_rejected_without_retry(fake_op: FakeOP, login: Login):
    fake_op.misbehave.token_error = "invalid_grant"
    code, verifier = await login.code()

    with capture_logs() as logs, pytest.raises(InvalidGrantError) as caught:
        await login.exchange(code, verifier)

    assert type(caught.value) is InvalidGrantError
    assert caught.value.error == "invalid_grant"
    assert caught.value.description == "the fake OP was told to refuse"
    assert fake_op.oracle.count("token") == 1
    assert code not in caught.value.detail
    assert leaked(logs, code, verifier, DEFAULT_CLIENT_SECRET, "told to refuse") == []


async def test_row_18a_a_used_code_is_invalid_grant(fake_op: FakeOP, login: Login):
    code, verifier = await login.code()
    await login.exchange(code, verifier)

    with pytest.raises(InvalidGrantError):
        await login.exchange(code, verifier)

    assert [r.outcome.split(":")[0] for r in fake_op.oracle.of("token")] == ["ok", "invalid_grant"]


@pytest.mark.parametrize("error", ["invalid_request", "unauthorized_client", "server_error"])
async def test_row_18_other_oauth_errors_carry_the_error_code(fake_op: FakeOP, login: Login, error):
    fake_op.misbehave.token_error = error
    code, verifier = await login.code()

    with pytest.raises(TokenExchangeError) as caught:
        await login.exchange(code, verifier)

    assert caught.value.error == error
    assert error in caught.value.detail
    assert fake_op.oracle.count("token") == 1


async def test_row_18_error_description_is_kept_truncated_and_out_of_the_detail(
    fake_op: FakeOP, login: Login
):
    description = "bad request " + "x" * 1000
    error = {"error": "invalid_request", "error_description": description}
    fake_op.misbehave.respond = {"token": Canned.json(error, status=400)}
    code, verifier = await login.code()

    with capture_logs() as logs, pytest.raises(TokenExchangeError) as caught:
        await login.exchange(code, verifier)

    assert caught.value.description == description[:MAX_DESCRIPTION_LENGTH]
    assert "bad request" not in caught.value.detail
    assert leaked(logs, "bad request") == []


async def test_row_18_an_error_in_a_200_response_is_an_error(fake_op: FakeOP, login: Login):
    body = {"error": "invalid_grant", "access_token": "abc", "token_type": "Bearer"}
    fake_op.misbehave.respond = {"token": Canned.json(body)}
    code, verifier = await login.code()

    with pytest.raises(InvalidGrantError) as caught:
        await login.exchange(code, verifier)

    assert caught.value.error == "invalid_grant"
    assert fake_op.oracle.count("token") == 1


async def test_row_18_an_error_response_with_odd_members_keeps_its_error_code(
    fake_op: FakeOP, login: Login
):
    body = {"error": "invalid_grant", "error_description": 42, "expires_in": "soon"}
    fake_op.misbehave.respond = {"token": Canned.json(body, status=400)}
    code, verifier = await login.code()

    with pytest.raises(InvalidGrantError) as caught:
        await login.exchange(code, verifier)

    assert caught.value.description is None


@pytest.mark.parametrize(
    "error_code",
    ["invalid_grant\nforged: log line", "x" * 65, 'access_token="eyJ"'],
    ids=["newline", "too-long", "quotes"],
)
async def test_row_18_an_error_code_that_is_not_a_word_is_not_repeated(
    fake_op: FakeOP, login: Login, error_code
):
    fake_op.misbehave.respond = {"token": Canned.json({"error": error_code}, status=400)}
    code, verifier = await login.code()

    with pytest.raises(TokenExchangeError) as caught:
        await login.exchange(code, verifier)

    assert type(caught.value) is TokenExchangeError  # not mistaken for invalid_grant
    assert caught.value.error == "unreadable_error"
    assert error_code not in caught.value.detail


@pytest.mark.parametrize(
    "canned",
    [
        pytest.param(Canned.html(), id="b-200-html"),
        pytest.param(Canned(200, b"access_token=abc&token_type=bearer", "text/plain"), id="b-form"),
        pytest.param(Canned.json([{"access_token": "abc"}]), id="b-json-array"),
        pytest.param(Canned.json("abc"), id="b-json-string"),
        pytest.param(Canned.error(500), id="500-text"),
        pytest.param(Canned.json({"access_token": "abc"}, status=503), id="503-json"),
        pytest.param(Canned(302, b"", None, {"Location": "https://evil.example/"}), id="302"),
    ],
)
async def test_row_18b_a_body_that_is_not_a_json_object_is_rejected_without_retry(
    fake_op: FakeOP, login: Login, canned
):
    fake_op.misbehave.respond = {"token": canned}
    code, verifier = await login.code()

    with pytest.raises(TokenExchangeError) as caught:
        await login.exchange(code, verifier)

    assert type(caught.value) is TokenExchangeError
    assert fake_op.oracle.count("token") == 1
    assert [r.endpoint for r in fake_op.oracle] == ["discovery", "authorize", "token"]


@pytest.mark.parametrize(
    ("edits", "match"),
    [
        pytest.param({"access_token": ABSENT}, "no access_token", id="c-no-access-token"),
        pytest.param({"access_token": ""}, "no access_token", id="c-empty-access-token"),
        pytest.param({"token_type": ABSENT}, "token_type", id="c-no-token-type"),
        pytest.param({"token_type": "mac"}, "'mac'", id="d-mac"),
        pytest.param({"token_type": "DPoP"}, "'DPoP'", id="d-dpop"),
        pytest.param({"token_type": "bearer "}, "token_type", id="d-padded"),
    ],
)
async def test_row_18cd_missing_members_or_unknown_token_type_are_rejected_without_retry(
    fake_op: FakeOP, login: Login, edits, match
):
    fake_op.misbehave.token_fields = edits
    code, verifier = await login.code()

    with pytest.raises(TokenExchangeError, match=match):
        await login.exchange(code, verifier)

    assert fake_op.oracle.count("token") == 1


@pytest.mark.parametrize(
    "edits",
    [
        pytest.param({"expires_in": "3600"}, id="expires_in-string"),
        pytest.param({"expires_in": -1}, id="expires_in-negative"),
        pytest.param({"expires_in": 1.5}, id="expires_in-float"),
        pytest.param({"expires_in": True}, id="expires_in-bool"),
        pytest.param({"access_token": 42}, id="access_token-number"),
        pytest.param({"id_token": {"alg": "none"}}, id="id_token-object"),
        pytest.param({"scope": ["openid"]}, id="scope-array"),
        pytest.param({"refresh_token": None, "token_type": None}, id="nulls"),
    ],
)
async def test_row_18_a_member_of_the_wrong_type_is_rejected(fake_op: FakeOP, login: Login, edits):
    fake_op.misbehave.token_fields = edits
    code, verifier = await login.code()

    with pytest.raises(TokenExchangeError) as caught:
        await login.exchange(code, verifier)

    assert fake_op.oracle.count("token") == 1
    assert code not in caught.value.detail


async def test_a_redirect_is_never_followed_even_by_a_client_that_follows_them(fake_op: FakeOP):
    follows = httpx.AsyncClient(transport=fake_op.transport(), follow_redirects=True)
    login = Login(fake_op, follows, config_for(fake_op))
    code, verifier = await login.code()
    again = {"Location": fake_op.endpoints["token"]}
    fake_op.misbehave.respond = {"token": Canned(307, b"", None, again)}

    with pytest.raises(TokenExchangeError, match="HTTP 307"):
        await login.exchange(code, verifier)

    assert fake_op.oracle.count("token") == 1


async def test_row_18_a_network_timeout_is_a_typed_error_without_retry(fake_op: FakeOP):
    slow = httpx.AsyncClient(transport=fake_op.transport(), timeout=0.05)
    login = Login(fake_op, slow, config_for(fake_op))
    code, verifier = await login.code()
    fake_op.misbehave.latency = {"token": 1.0}

    with pytest.raises(TokenExchangeError, match="ReadTimeout") as caught:
        await login.exchange(code, verifier)

    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert fake_op.oracle.count("token") == 1


async def test_row_18_an_unreachable_token_endpoint_is_a_typed_error(fake_op: FakeOP, login: Login):
    fake_op.misbehave.metadata = {"token_endpoint": "https://elsewhere.rpkit.test/token"}
    code, verifier = await login.code()

    with pytest.raises(TokenExchangeError, match="ConnectError") as caught:
        await login.exchange(code, verifier)

    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert fake_op.oracle.count("token") == 0


# -- row 19 -----------------------------------------------------------------------------------
async def test_row_19_token_type_is_compared_case_insensitively(fake_op: FakeOP, login: Login):
    fake_op.misbehave.token_fields = {"token_type": "bEARER"}

    tokens = await login.login()

    assert tokens.token_type == "bearer"
    assert tokens.raw["token_type"] == "bEARER"


async def test_row_19_without_expires_in_the_default_lifetime_applies(
    fake_op: FakeOP, fake_op_http
):
    login = Login(fake_op, fake_op_http, config_for(fake_op, default_token_lifetime=123))
    fake_op.misbehave.token_fields = {"expires_in": ABSENT}

    tokens = await login.login()

    assert tokens.expires_at == int(login.clock.now) + 123


async def test_row_19_expires_in_counts_from_the_injected_clock(fake_op: FakeOP, login: Login):
    fake_op.misbehave.token_fields = {"expires_in": 0}
    login.clock.now += 0.75

    tokens = await login.login()

    assert tokens.expires_at == int(login.clock.now)


async def test_row_19_without_scope_the_requested_scope_is_stored(fake_op: FakeOP, login: Login):
    fake_op.misbehave.token_fields = {"scope": ABSENT}

    tokens = await login.login()

    assert tokens.scope == SCOPES


async def test_row_19_a_narrower_granted_scope_is_stored(fake_op: FakeOP, login: Login):
    fake_op.misbehave.token_fields = {"scope": "openid email"}

    tokens = await login.login()

    assert tokens.scope == ("openid", "email")


async def test_row_19_unknown_members_are_tolerated_and_kept_raw(fake_op: FakeOP, login: Login):
    fake_op.misbehave.token_fields = {"x_vendor": {"region": ["eu"]}}

    tokens = await login.login()

    assert tokens.raw["x_vendor"]["region"] == ("eu",)
    with pytest.raises(TypeError):
        tokens.raw["x_vendor"]["region"] = "us"  # type: ignore[index]


# -- refresh: rows 55, 59, 60 -----------------------------------------------------------------
async def test_row_55_refresh_replaces_the_rotated_refresh_token(fake_op: FakeOP, login: Login):
    first = await login.login()
    assert first.refresh_token

    second = await login.refresh(first.refresh_token)

    request = fake_op.oracle.last("token")
    assert second.refresh_token
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert second.id_token
    assert request.param("grant_type") == "refresh_token"
    assert request.param("refresh_token") == first.refresh_token
    assert request.headers["authorization"].startswith("Basic ")
    with pytest.raises(SessionExpiredError):  # the OP revoked the old one
        await login.refresh(first.refresh_token)


async def test_row_59_minimal_refresh_keeps_the_old_refresh_token(fake_op: FakeOP, login: Login):
    first = await login.login()
    assert first.refresh_token
    fake_op.misbehave.refresh_minimal = True

    second = await login.refresh(first.refresh_token)

    assert second.refresh_token == first.refresh_token
    assert second.id_token is None
    assert second.access_token != first.access_token
    assert "refresh_token" not in second.raw


async def test_refresh_without_scope_keeps_the_scope_granted_before(fake_op: FakeOP, login: Login):
    fake_op.misbehave.token_fields = {"scope": "openid"}
    first = await login.login()
    assert first.refresh_token
    fake_op.misbehave.token_fields = {"scope": ABSENT}

    kept = await login.refresh(first.refresh_token, granted_scope=first.scope)

    assert kept.scope == ("openid",)


async def test_row_60_refresh_invalid_grant_expires_the_session_without_retry(
    fake_op: FakeOP, login: Login
):
    first = await login.login()
    assert first.refresh_token
    fake_op.misbehave.refresh_error = "invalid_grant"

    with capture_logs() as logs, pytest.raises(SessionExpiredError) as caught:
        await login.refresh(first.refresh_token)

    assert caught.value.error == "invalid_grant"
    assert fake_op.oracle.count("token") == 2  # the exchange, then one refresh
    assert first.refresh_token not in caught.value.detail
    assert leaked(logs, first.refresh_token, DEFAULT_CLIENT_SECRET) == []


@pytest.mark.parametrize(
    ("knobs", "error"),
    [
        pytest.param({"refresh_error": "invalid_client"}, "invalid_client", id="invalid_client"),
        pytest.param({"respond": {"token": Canned.error(503)}}, None, id="503"),
    ],
)
async def test_refresh_failures_other_than_invalid_grant_do_not_expire_the_session(
    fake_op: FakeOP, login: Login, knobs, error
):
    first = await login.login()
    assert first.refresh_token

    with fake_op.misbehaving(**knobs), pytest.raises(TokenExchangeError) as caught:
        await login.refresh(first.refresh_token)

    assert not isinstance(caught.value, SessionExpiredError)
    assert caught.value.error == error
    assert fake_op.oracle.count("token") == 2


async def test_refresh_applies_the_same_response_checks(fake_op: FakeOP, login: Login):
    first = await login.login()
    assert first.refresh_token
    fake_op.misbehave.token_fields = {"token_type": "mac"}

    with pytest.raises(TokenExchangeError, match="'mac'"):
        await login.refresh(first.refresh_token)
