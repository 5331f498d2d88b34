"""The provider SPI's hooks and relaxations through ``RelyingParty``, against the fake OP."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from rpkit.client import RelyingParty
from rpkit.errors import (
    CallbackError,
    ClientSecretError,
    ConfigurationError,
    IdentityRefusedError,
    IDTokenValidationError,
    OversizedParameterError,
)
from rpkit.hooks import (
    AuthorizationContext,
    ClientSecret,
    IdentityFields,
    IdentitySource,
    LogoutContext,
    ProviderHooks,
)
from rpkit.providers._mapping import ClaimsMapper
from rpkit.store import MemoryStore
from rpkit.testing import ABSENT, FakeClient, FakeOP
from tests.checklist.conftest import Harness, provider_config

pytestmark = pytest.mark.spi


def harness_with(op: FakeOP, http: httpx.AsyncClient, **changes: Any) -> Harness:
    return Harness(op, http, MemoryStore(), provider_config(op, **changes))


# -- authorization parameters ------------------------------------------------------------------


async def test_authorization_params_hook_adds_parameters_per_login(fake_op, fake_op_http):
    seen: list[AuthorizationContext] = []

    async def route(context: AuthorizationContext) -> Mapping[str, str]:
        seen.append(context)
        return {"domain_hint": context.params.get("login_hint", "").partition("@")[2]}

    harness = harness_with(fake_op, fake_op_http, hooks=ProviderHooks(authorization_params=route))
    request = await harness.rp.begin_login(
        "fake", redirect_uri=harness.redirect_uri, params={"login_hint": "ada@acme.test"}
    )
    query = dict(httpx.URL(request.url).params)
    assert query["domain_hint"] == "acme.test"
    assert seen[0].flow_id == request.flow_id
    assert seen[0].params == {"login_hint": "ada@acme.test"}


@pytest.mark.parametrize("bad", [{"state": "mine"}, {"nonce": "n"}, {"x": "line\nbreak"}])
async def test_authorization_params_hook_cannot_set_reserved_or_malformed_values(
    fake_op, fake_op_http, bad
):
    async def hook(_: AuthorizationContext) -> Mapping[str, str]:
        return bad

    harness = harness_with(fake_op, fake_op_http, hooks=ProviderHooks(authorization_params=hook))
    with pytest.raises(ConfigurationError):
        await harness.rp.begin_login("fake", redirect_uri=harness.redirect_uri)
    assert len(harness.store) == 0, "a transaction was stored for a refused login"


# -- client-secret factory ---------------------------------------------------------------------


class Minter:
    """A client-secret factory that counts its calls and mints ``secret-<n>``."""

    def __init__(self, op: FakeOP, lifetime: float = 3600) -> None:
        self.op = op
        self.lifetime = lifetime
        self.calls = 0
        self.fail = False

    async def __call__(self, now: float) -> ClientSecret:
        if self.fail:
            raise RuntimeError("the signing key is gone")
        self.calls += 1
        value = f"minted-secret-{self.calls}"
        self.op.register_client(FakeClient(client_secret=value))
        return ClientSecret(value=value, expires_at=now + self.lifetime)


async def test_client_secret_factory_mints_once_and_is_cached(fake_op, fake_op_http):
    minter = Minter(fake_op)
    harness = harness_with(
        fake_op, fake_op_http, client_secret=None, hooks=ProviderHooks(client_secret=minter)
    )
    await harness.login()
    await harness.login()
    assert minter.calls == 1
    assert fake_op.oracle.count("token") == 2


async def test_client_secret_factory_is_called_again_before_the_secret_expires(
    fake_op, fake_op_http
):
    minter = Minter(fake_op, lifetime=200)  # inside the renewal margin at once
    harness = harness_with(
        fake_op, fake_op_http, client_secret=None, hooks=ProviderHooks(client_secret=minter)
    )
    with pytest.raises(ClientSecretError):  # 200 s left is not worth using
        await harness.login()
    minter.lifetime = 3600
    await harness.login()
    await harness.login()
    assert minter.calls == 2


async def test_failing_client_secret_factory_is_typed_and_sends_no_token_request(
    fake_op, fake_op_http
):
    minter = Minter(fake_op)
    minter.fail = True
    harness = harness_with(
        fake_op, fake_op_http, client_secret=None, hooks=ProviderHooks(client_secret=minter)
    )
    request, callback = await harness.start()
    with pytest.raises(ClientSecretError) as caught:
        await harness.finish(callback)
    assert caught.value.code == "client_secret_unavailable"
    assert "signing key" not in caught.value.detail
    assert fake_op.oracle.count("token") == 0
    assert not await harness.transaction_exists(request.state)


def test_client_secret_and_factory_together_are_refused(fake_op):
    with pytest.raises(ConfigurationError, match="not both"):
        provider_config(fake_op, hooks=ProviderHooks(client_secret=Minter(fake_op)))


# -- callback extras ---------------------------------------------------------------------------


class AppleUser:
    """Reads Apple's ``user`` form field: JSON, at most 1 KiB."""

    limits: Mapping[str, int] = {"user": 1024}

    def parse(self, values: Mapping[str, str]) -> Mapping[str, Any]:
        if "user" not in values:
            return {}
        user = json.loads(values["user"])
        if not isinstance(user, dict):
            raise ValueError("user is not an object")
        return {"user": user}


class ExtrasMapper:
    """Names from the extras, email only from the verified claims."""

    def __init__(self) -> None:
        self.sources: list[IdentitySource] = []

    async def __call__(self, source: IdentitySource) -> IdentityFields:
        self.sources.append(source)
        base = await ClaimsMapper()(source)
        name = source.extras.get("user", {}).get("name")
        return IdentityFields(
            subject=base.subject,
            email=base.email,
            email_verified=base.email_verified,
            name=name or base.name,
        )


def with_extra(callback: Any, name: str, value: str) -> list[tuple[str, str]]:
    return [*callback.params, (name, value)]


async def test_callback_extras_reach_the_mapper_but_never_the_email(fake_op, fake_op_http):
    mapper = ExtrasMapper()
    harness = harness_with(
        fake_op,
        fake_op_http,
        hooks=ProviderHooks(callback_extras=AppleUser(), identity=mapper),
    )
    _, callback = await harness.start()
    user = json.dumps({"name": "Ada From Form", "email": "attacker@evil.test"})
    result = await harness.finish(with_extra(callback, "user", user))
    assert result.identity.name == "Ada From Form"
    assert result.identity.email == next(iter(fake_op.users.values())).claims["email"]
    assert mapper.sources[0].extras["user"]["email"] == "attacker@evil.test"


async def test_oversized_callback_extra_is_refused_before_the_token_request(fake_op, fake_op_http):
    harness = harness_with(fake_op, fake_op_http, hooks=ProviderHooks(callback_extras=AppleUser()))
    request, callback = await harness.start()
    error = await harness.rejected(
        OversizedParameterError, with_extra(callback, "user", "x" * 1025), request
    )
    assert error.code == "parameter_too_large"  # type: ignore[attr-defined]


async def test_unreadable_callback_extra_is_refused_before_the_token_request(fake_op, fake_op_http):
    harness = harness_with(fake_op, fake_op_http, hooks=ProviderHooks(callback_extras=AppleUser()))
    request, callback = await harness.start()
    await harness.rejected(CallbackError, with_extra(callback, "user", "{not json"), request)


# -- identity mapping --------------------------------------------------------------------------


async def test_identity_mapper_reads_string_booleans_and_composes_the_subject(
    fake_op, fake_op_http
):
    fake_op.misbehave.id_token_claims = {"email_verified": "true", "tid": "t-1", "oid": "o-9"}
    harness = harness_with(
        fake_op,
        fake_op_http,
        hooks=ProviderHooks(identity=ClaimsMapper(subject=("tid", "oid"), string_booleans=True)),
    )
    result = await harness.login()
    assert result.identity.subject == "t-1:o-9"
    assert result.identity.email_verified is True
    assert result.id_token is not None
    assert result.id_token.sub == next(iter(fake_op.users.values())).sub  # sub unchanged


async def test_standard_mapping_never_takes_a_string_boolean(fake_op, fake_op_http):
    fake_op.misbehave.id_token_claims = {"email_verified": "true"}
    result = await harness_with(fake_op, fake_op_http).login()
    assert result.identity.email_verified is False


@pytest.mark.parametrize("subject", ["", "x" * 256, "a\nb"])
async def test_mapper_without_a_usable_subject_refuses_the_login(fake_op, fake_op_http, subject):
    async def mapper(_: IdentitySource) -> IdentityFields:
        return IdentityFields(subject=subject)

    harness = harness_with(fake_op, fake_op_http, hooks=ProviderHooks(identity=mapper))
    with pytest.raises(IdentityRefusedError):
        await harness.login()


async def test_mapper_missing_its_subject_claim_refuses_the_login(fake_op, fake_op_http):
    harness = harness_with(
        fake_op, fake_op_http, hooks=ProviderHooks(identity=ClaimsMapper(subject=("oid",)))
    )
    with pytest.raises(IdentityRefusedError):
        await harness.login()


# -- logout parameters -------------------------------------------------------------------------


def cognito_style(params: Mapping[str, str], context: LogoutContext) -> Mapping[str, str]:
    return {"client_id": context.client_id, "logout_uri": context.post_logout_redirect_uri or ""}


async def test_logout_params_hook_rewrites_the_end_session_request(fake_op, fake_op_http):
    store = MemoryStore()
    config = provider_config(
        fake_op,
        post_logout_redirect_uri="https://app.example/bye",
        hooks=ProviderHooks(logout_params=cognito_style),
    )
    rp = RelyingParty([config], http=fake_op_http, store=store)
    ended = await rp.begin_logout("fake", id_token_hint="abc", return_to="/x")
    assert ended.url is not None
    query = dict(httpx.URL(ended.url).params)
    assert query == {"client_id": config.client_id, "logout_uri": "https://app.example/bye"}
    assert ended.state is None
    assert len(store) == 0, "a logout state was stored that the provider never returns"


# -- the nonce relaxation ----------------------------------------------------------------------


async def test_missing_nonce_is_refused_by_default(fake_op, fake_op_http):
    fake_op.misbehave.id_token_claims = {"nonce": ABSENT}
    harness = harness_with(fake_op, fake_op_http)
    request, callback = await harness.start()
    error = await harness.rejected(
        IDTokenValidationError, callback, request, stop_before="userinfo"
    )
    assert error.reason == "nonce"  # type: ignore[attr-defined]


async def test_accept_missing_nonce_accepts_a_token_without_nonce_and_still_sends_one(
    fake_op, fake_op_http
):
    fake_op.misbehave.id_token_claims = {"nonce": ABSENT}
    harness = harness_with(fake_op, fake_op_http, accept_missing_nonce=True)
    request, callback = await harness.start()
    assert httpx.URL(request.url).params.get("nonce")
    result = await harness.finish(callback)
    assert result.id_token is not None
    assert result.id_token.nonce is None


async def test_accept_missing_nonce_still_refuses_a_wrong_nonce(fake_op, fake_op_http):
    fake_op.misbehave.id_token_claims = {"nonce": "not-the-one-sent"}
    harness = harness_with(fake_op, fake_op_http, accept_missing_nonce=True)
    request, callback = await harness.start()
    await harness.rejected(IDTokenValidationError, callback, request, stop_before="userinfo")


def test_relaxations_are_logged_at_startup_by_name(fake_op):
    config = provider_config(fake_op, accept_missing_nonce=True)
    with capture_logs() as logs:
        RelyingParty([config], http=httpx.AsyncClient())
    settings = [e["setting"] for e in logs if e["event"] == "rpkit.startup.check_relaxed"]
    assert any(s.startswith("accept_missing_nonce") for s in settings)


# -- the PKCE relaxation -------------------------------------------------------------------------


async def test_skip_pkce_sends_no_challenge_nor_verifier_and_is_logged(fake_op, fake_op_http):
    fake_op.require_pkce = False
    with capture_logs() as logs:
        harness = harness_with(fake_op, fake_op_http, skip_pkce=True)
    request, callback = await harness.start()
    query = httpx.URL(request.url).params
    assert "code_challenge" not in query
    assert "code_challenge_method" not in query
    await harness.finish(callback)
    token_request = fake_op.oracle.last("token")
    assert token_request is not None
    assert "code_verifier" not in token_request.form
    settings = [e["setting"] for e in logs if e["event"] == "rpkit.startup.check_relaxed"]
    assert any(s.startswith("skip_pkce") for s in settings)


def test_skip_pkce_is_refused_for_public_clients(fake_op):
    with pytest.raises(ConfigurationError, match="public clients"):
        provider_config(fake_op, client_auth="none", client_secret=None, skip_pkce=True)
