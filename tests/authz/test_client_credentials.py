"""Machine-to-machine tokens (the client-credentials grant) against the fake OP: the request each
client-authentication method sends, caching per provider/audience/resource/scopes, renewal
before expiry, one request for concurrent callers, and the typed error for each way the token
endpoint can fail, with the oracle counting every request that reached the OP."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from joserfc.jwk import KeySet
from structlog.testing import capture_logs

from rpkit import RelyingParty
from rpkit.client_credentials import (
    MAX_LIFETIME,
    ClientCredentials,
    ConfiguredProviders,
    MachineToken,
)
from rpkit.config import Endpoints, ProviderConfig
from rpkit.errors import (
    ClientCredentialsError,
    ClientCredentialsRefusedError,
    ClientCredentialsResponseError,
    ClientCredentialsUnavailableError,
    ConfigurationError,
    UnknownProviderError,
)
from rpkit.hooks import ClientSecret, ProviderHooks
from rpkit.testing import (
    ABSENT,
    DEFAULT_CLIENT_SECRET,
    Canned,
    FakeClient,
    FakeOP,
    generate_key,
)
from rpkit.tokens import TokenClient

pytestmark = pytest.mark.authz


class Clock:
    """A settable wall clock that starts at the real time (the fake OP checks assertion times
    with the real one)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def machine(
    op: FakeOP,
    http: httpx.AsyncClient,
    clock: Clock,
    *,
    config: ProviderConfig | None = None,
    **options: Any,
) -> ClientCredentials:
    rp = RelyingParty([config or op.provider_config()], http=http, clock=clock)
    return ClientCredentials(rp, http, **options)


@pytest.fixture
def m2m(fake_op: FakeOP, fake_op_http: httpx.AsyncClient, clock: Clock) -> ClientCredentials:
    return machine(fake_op, fake_op_http, clock)


def claims_of(op: FakeOP, token: MachineToken) -> dict[str, Any]:
    claims = op.verify_own_token(token.access_token)
    assert claims is not None, "the fake OP did not issue this token"
    return claims


# -- the request ---------------------------------------------------------------------------------
async def test_the_grant_is_one_basic_authenticated_post_and_its_token_is_the_ops(
    fake_op: FakeOP, m2m: ClientCredentials, clock: Clock
):
    token = await m2m.token("fake", scopes=["orders:write", "orders:read"])

    request = fake_op.oracle.last("token")
    assert request.method == "POST"
    assert dict(request.form) == {
        "grant_type": "client_credentials",
        "scope": "orders:read orders:write",
    }
    assert request.headers["authorization"].startswith("Basic ")
    assert request.outcome == "ok"
    claims = claims_of(fake_op, token)
    assert claims["sub"] == claims["client_id"] == fake_op.provider_config().client_id
    assert token.token_type == "Bearer"
    assert token.scope == ("orders:read", "orders:write")
    assert token.expires_at == int(clock.now) + fake_op.access_token_lifetime
    assert token.access_token not in repr(token)


async def test_client_secret_post_sends_the_secret_in_the_body_only(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient, clock: Clock
):
    fake_op.register_client(
        FakeClient("post-client", token_endpoint_auth_method="client_secret_post")
    )
    m2m = machine(
        fake_op, fake_op_http, clock, config=fake_op.provider_config(client_id="post-client")
    )

    token = await m2m.token("fake")

    request = fake_op.oracle.last("token")
    assert request.param("client_secret") == DEFAULT_CLIENT_SECRET
    assert "authorization" not in request.headers
    assert "scope" not in dict(request.form)
    assert claims_of(fake_op, token)["client_id"] == "post-client"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_private_key_jwt_signs_a_fresh_assertion_for_each_request(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient, clock: Clock, alg: str
):
    key = generate_key(alg, "m2m-1")
    public = dict(KeySet.import_key_set({"keys": [key.as_dict(private=False)]}).as_dict())
    fake_op.register_client(
        FakeClient(
            "jwt-client",
            client_secret=None,
            token_endpoint_auth_method="private_key_jwt",
            jwks=public,
        )
    )
    config = fake_op.provider_config(
        client_id="jwt-client", private_key=dict(key.as_dict(private=True)), private_key_alg=alg
    )
    m2m = machine(fake_op, fake_op_http, clock, config=config)

    first = await m2m.token("fake", audience="https://api.one.example")
    second = await m2m.token("fake", audience="https://api.two.example")

    assertions = [r.param("client_assertion") for r in fake_op.oracle.of("token")]
    assert [r.outcome for r in fake_op.oracle.of("token")] == ["ok", "ok"]
    assert len(set(assertions)) == 2
    assert "client_secret" not in dict(fake_op.oracle.last("token").form)
    assert claims_of(fake_op, first)["aud"] == "https://api.one.example"
    assert claims_of(fake_op, second)["aud"] == "https://api.two.example"


async def test_a_minted_client_secret_authenticates_the_grant(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient, clock: Clock
):
    minted: list[float] = []

    async def mint(now: float) -> ClientSecret:
        minted.append(now)
        return ClientSecret(value=DEFAULT_CLIENT_SECRET, expires_at=now + 3600)

    config = fake_op.provider_config(client_secret=None, hooks=ProviderHooks(client_secret=mint))
    m2m = machine(fake_op, fake_op_http, clock, config=config)

    await m2m.token("fake")
    await m2m.token("fake", scopes=["other"])

    assert [r.outcome for r in fake_op.oracle.of("token")] == ["ok", "ok"]
    assert len(minted) == 1  # the relying party's secret cache serves both


async def test_resource_and_audience_are_sent_only_when_given_and_become_the_tokens_aud(
    fake_op: FakeOP, m2m: ClientCredentials
):
    by_resource = await m2m.token("fake", resource="https://orders.example/api")
    by_audience = await m2m.token("fake", audience="urn:orders")
    plain = await m2m.token("fake")

    forms = [dict(r.form) for r in fake_op.oracle.of("token")]
    assert forms[0]["resource"] == "https://orders.example/api"
    assert "audience" not in forms[0]
    assert forms[1]["audience"] == "urn:orders"
    assert "resource" not in forms[1]
    assert not {"resource", "audience"} & set(forms[2])
    assert claims_of(fake_op, by_resource)["aud"] == "https://orders.example/api"
    assert claims_of(fake_op, by_audience)["aud"] == "urn:orders"
    assert claims_of(fake_op, plain)["aud"] == fake_op.provider_config().client_id


async def test_a_provider_configured_without_discovery_serves_a_service_without_logins(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient, clock: Clock
):
    urls = fake_op.endpoint_urls()
    config = fake_op.provider_config(
        endpoints=Endpoints(
            authorization_endpoint=urls["authorization_endpoint"],
            token_endpoint=urls["token_endpoint"],
            jwks_uri=urls["jwks_uri"],
        )
    )
    providers = ConfiguredProviders(
        [config], tokens=TokenClient(fake_op_http, clock=clock), clock=clock
    )

    token = await ClientCredentials(providers, fake_op_http).token("fake")

    assert claims_of(fake_op, token)
    assert fake_op.oracle.counts() == {"token": 1}  # no discovery
    with pytest.raises(ConfigurationError, match="endpoints"):
        ConfiguredProviders([fake_op.provider_config()], tokens=TokenClient(fake_op_http))


# -- caching and renewal -------------------------------------------------------------------------
async def test_a_token_is_cached_per_provider_audience_resource_and_scope_set(
    fake_op: FakeOP, m2m: ClientCredentials
):
    a = await m2m.token("fake", scopes=["read", "write"])
    same = await m2m.token("fake", scopes=("write", "read", "read"))
    other_scopes = await m2m.token("fake", scopes=["read"])
    other_audience = await m2m.token("fake", audience="urn:a", scopes=["read", "write"])
    other_resource = await m2m.token("fake", resource="https://a.example/", scopes=["read"])

    assert same == a
    tokens = {t.access_token for t in (a, other_scopes, other_audience, other_resource)}
    assert len(tokens) == 4
    assert fake_op.oracle.count("token") == 4
    assert m2m.cached("fake", scopes=["write", "read"]) == a


async def test_a_token_is_renewed_renew_before_seconds_before_it_expires(
    fake_op: FakeOP, m2m: ClientCredentials, clock: Clock
):
    fake_op.access_token_lifetime = 3600

    first = await m2m.token("fake")
    clock.now += 3600 - 61
    still = await m2m.token("fake")
    clock.now += 2  # 59 s left: inside the 60 s margin
    renewed = await m2m.token("fake")

    assert still == first
    assert renewed != first
    assert fake_op.oracle.count("token") == 2


async def test_a_short_lived_token_is_used_for_half_its_life(
    fake_op: FakeOP, m2m: ClientCredentials, clock: Clock
):
    fake_op.access_token_lifetime = 40  # shorter than the 60 s margin

    first = await m2m.token("fake")
    clock.now += 19
    assert await m2m.token("fake") == first
    clock.now += 1
    assert await m2m.token("fake") != first
    assert fake_op.oracle.count("token") == 2


@pytest.mark.parametrize(
    ("expires_in", "lifetime"), [("600", 600), (ABSENT, 300), (MAX_LIFETIME, MAX_LIFETIME)]
)
async def test_expires_in_as_digits_or_absent_is_understood(
    fake_op: FakeOP, m2m: ClientCredentials, clock: Clock, expires_in: Any, lifetime: int
):
    fake_op.misbehave.token_fields = {"expires_in": expires_in}

    token = await m2m.token("fake")

    assert token.expires_at == int(clock.now) + lifetime  # absent: default_token_lifetime


async def test_the_granted_scope_is_the_answers_else_the_requested_one(
    fake_op: FakeOP, m2m: ClientCredentials
):
    fake_op.misbehave.token_fields = {"scope": "read"}
    narrowed = await m2m.token("fake", scopes=["read", "admin"])
    fake_op.misbehave.token_fields = {"scope": ABSENT}
    assumed = await m2m.token("fake", scopes=["write"])

    assert narrowed.scope == ("read",)
    assert assumed.scope == ("write",)


async def test_concurrent_callers_share_one_token_request(fake_op: FakeOP, m2m: ClientCredentials):
    fake_op.misbehave.latency = {"token": 0.05}

    tokens = await asyncio.gather(*(m2m.token("fake", scopes=["read"]) for _ in range(25)))

    assert len({t.access_token for t in tokens}) == 1
    assert fake_op.oracle.count("token") == 1


async def test_a_caller_that_gives_up_does_not_cancel_the_fetch_the_others_wait_for(
    fake_op: FakeOP, m2m: ClientCredentials
):
    fake_op.misbehave.latency = {"token": 0.1}
    impatient = asyncio.create_task(m2m.token("fake"))
    patient = asyncio.create_task(m2m.token("fake"))
    await asyncio.sleep(0.02)

    impatient.cancel()
    token = await patient

    assert impatient.cancelled()
    assert m2m.cached("fake") == token
    assert fake_op.oracle.count("token") == 1


# -- failures ------------------------------------------------------------------------------------
def oauth_error(error: str, status: int) -> Canned:
    return Canned.json({"error": error, "error_description": f"no: {error}"}, status=status)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("invalid_client", 401),
        ("unauthorized_client", 400),
        ("invalid_scope", 400),
        ("invalid_target", 400),
        ("invalid_request", 400),
    ],
)
async def test_a_client_error_is_refused_typed_and_not_retried_until_the_refusal_expires(
    fake_op: FakeOP, m2m: ClientCredentials, clock: Clock, error: str, status: int
):
    fake_op.misbehave.respond = {"token": oauth_error(error, status)}

    with pytest.raises(ClientCredentialsRefusedError) as caught:
        await m2m.token("fake", scopes=["read"])
    with pytest.raises(ClientCredentialsRefusedError) as again:
        await m2m.token("fake", scopes=["read"])
    refused_calls = fake_op.oracle.count("token")
    fake_op.misbehave.respond = {}
    clock.now += 9
    with pytest.raises(ClientCredentialsRefusedError):
        await m2m.token("fake", scopes=["read"])
    clock.now += 2  # past the 10 s refusal_ttl
    token = await m2m.token("fake", scopes=["read"])

    assert (caught.value.error, caught.value.status) == (error, status)
    assert caught.value.description == f"no: {error}"
    assert caught.value.code == "client_credentials_refused"
    assert again.value is not caught.value
    assert again.value.error == error
    assert refused_calls == 1
    assert claims_of(fake_op, token)
    assert fake_op.oracle.count("token") == 2


async def test_a_wrong_secret_is_the_ops_own_invalid_client(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient, clock: Clock
):
    config = fake_op.provider_config(client_secret="not-the-secret")
    m2m = machine(fake_op, fake_op_http, clock, config=config, refusal_ttl=0)

    with pytest.raises(ClientCredentialsRefusedError) as caught:
        await m2m.token("fake")
    with pytest.raises(ClientCredentialsRefusedError):
        await m2m.token("fake")  # refusal_ttl=0: tried again, refused again

    assert (caught.value.error, caught.value.status) == ("invalid_client", 401)
    assert fake_op.oracle.count("token") == 2


async def test_an_invalid_target_from_the_op_itself_is_a_refusal(
    fake_op: FakeOP, m2m: ClientCredentials
):
    with pytest.raises(ClientCredentialsRefusedError) as caught:
        await m2m.token("fake", audience="urn:orders", resource="https://orders.example/")

    form = dict(fake_op.oracle.last("token").form)
    assert (caught.value.error, caught.value.status) == ("invalid_target", 400)
    assert (form["audience"], form["resource"]) == ("urn:orders", "https://orders.example/")
    assert fake_op.oracle.count("token") == 1


async def test_a_refusal_for_one_request_does_not_block_another(
    fake_op: FakeOP, m2m: ClientCredentials
):
    fake_op.misbehave.respond = {"token": oauth_error("invalid_scope", 400)}
    with pytest.raises(ClientCredentialsRefusedError):
        await m2m.token("fake", scopes=["admin"])
    fake_op.misbehave.respond = {}

    token = await m2m.token("fake", scopes=["read"])

    assert token.scope == ("read",)
    assert fake_op.oracle.count("token") == 2


@pytest.mark.parametrize(
    "answer",
    [
        Canned.error(500),
        Canned.error(502),
        oauth_error("temporarily_unavailable", 503),
        Canned.json({"error": "slow_down"}, status=429, headers={"Retry-After": "5"}),
        Canned.error(408),
    ],
    ids=["500", "502", "503", "429", "408"],
)
async def test_a_transient_failure_is_unavailable_retried_by_nobody_and_remembered_by_nobody(
    fake_op: FakeOP, m2m: ClientCredentials, answer: Canned
):
    fake_op.misbehave.respond = {"token": answer}

    with pytest.raises(ClientCredentialsUnavailableError) as caught:
        await m2m.token("fake")
    calls_for_one_failure = fake_op.oracle.count("token")
    fake_op.misbehave.respond = {}
    token = await m2m.token("fake")

    assert caught.value.status == answer.status
    assert caught.value.code == "client_credentials_unavailable"
    assert calls_for_one_failure == 1
    assert claims_of(fake_op, token)
    assert fake_op.oracle.count("token") == 2


async def test_a_timeout_is_unavailable_at_rpkits_deadline(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient, clock: Clock
):
    m2m = machine(fake_op, fake_op_http, clock, timeout=0.2)
    await m2m.token("fake", scopes=["warm"])  # discovery is done
    fake_op.misbehave.latency = {"token": 5.0}

    started = time.monotonic()
    with pytest.raises(ClientCredentialsUnavailableError, match="Timeout") as caught:
        await m2m.token("fake")

    assert time.monotonic() - started < 2
    assert caught.value.status is None
    assert fake_op.oracle.count("token") == 2


async def test_a_connection_failure_is_unavailable_and_every_waiter_gets_it(
    fake_op: FakeOP, clock: Clock
):
    down = True
    inner = fake_op.transport()

    async def handler(request: httpx.Request) -> httpx.Response:
        if down and request.url.path.endswith("/token"):
            await asyncio.sleep(0.02)
            raise httpx.ConnectError("refused", request=request)
        return await inner.handle_async_request(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    m2m = machine(fake_op, http, clock)

    outcomes = await asyncio.gather(*(m2m.token("fake") for _ in range(5)), return_exceptions=True)
    down = False
    token = await m2m.token("fake")

    assert all(isinstance(o, ClientCredentialsUnavailableError) for o in outcomes)
    assert "ConnectError" in str(outcomes[0])
    assert claims_of(fake_op, token)
    assert fake_op.oracle.count("token") == 1  # the failed attempts never reached the OP


@pytest.mark.parametrize(
    "fields",
    [
        {"access_token": ABSENT},
        {"access_token": ""},
        {"access_token": 42},
        {"access_token": "two words"},
        {"access_token": "line\r\nX-Evil: 1"},
        {"token_type": ABSENT},
        {"token_type": "mac"},
        {"token_type": "DPoP"},
        {"expires_in": 0},
        {"expires_in": -1},
        {"expires_in": MAX_LIFETIME + 1},
        {"expires_in": 10**400},
        {"expires_in": 3600.5},
        {"expires_in": True},
        {"expires_in": "soon"},
        {"scope": ["read"]},
        {"error": "invalid_client"},
    ],
    ids=repr,
)
async def test_an_unusable_200_is_refused_typed_and_nothing_is_cached(
    fake_op: FakeOP, m2m: ClientCredentials, fields: dict[str, Any]
):
    fake_op.misbehave.token_fields = fields

    with pytest.raises(ClientCredentialsResponseError) as caught:
        await m2m.token("fake")
    fake_op.misbehave.token_fields = {}
    token = await m2m.token("fake")

    assert caught.value.status == 200
    assert "line" not in caught.value.detail
    assert claims_of(fake_op, token)
    assert fake_op.oracle.count("token") == 2


@pytest.mark.parametrize(
    "answer",
    [
        Canned.html(),
        Canned.json(["access_token"]),
        Canned(302, b"", None, {"Location": "https://elsewhere.example/token"}),
        Canned.json({"access_token": "x" * 70_000, "token_type": "Bearer"}),
    ],
    ids=["html", "array", "redirect", "oversized"],
)
async def test_an_answer_rpkit_does_not_read_is_an_unusable_response(
    fake_op: FakeOP, m2m: ClientCredentials, answer: Canned
):
    fake_op.misbehave.respond = {"token": answer}

    with pytest.raises(ClientCredentialsResponseError) as caught:
        await m2m.token("fake")

    assert caught.value.status == answer.status
    assert fake_op.oracle.count("token") == 1
    assert m2m.cached("fake") is None


async def test_a_discovery_failure_is_unavailable_and_no_token_request_is_made(
    fake_op: FakeOP, m2m: ClientCredentials
):
    fake_op.misbehave.respond = {"discovery": Canned.error(503)}

    with pytest.raises(ClientCredentialsUnavailableError) as caught:
        await m2m.token("fake")

    assert caught.value.code == "client_credentials_unavailable"
    assert fake_op.oracle.count("token") == 0


@pytest.mark.parametrize(
    "request_args",
    [
        {"scopes": ["two words"]},
        {"scopes": ['quote"d']},
        {"scopes": [""]},
        {"resource": "/relative"},
        {"resource": "https://api.example/#fragment"},
        {"resource": "https://api.example/ space"},
        {"audience": ""},
        {"audience": "a\nb"},
    ],
    ids=repr,
)
async def test_a_malformed_request_is_refused_before_any_request(
    fake_op: FakeOP, m2m: ClientCredentials, request_args: dict[str, Any]
):
    with pytest.raises(ConfigurationError):
        await m2m.token("fake", **request_args)

    assert fake_op.oracle.count() == 0


async def test_an_unknown_provider_or_an_unusable_key_sends_nothing(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient, clock: Clock
):
    key = generate_key("ES256", "m2m-1")
    fake_op.register_client(
        FakeClient("jwt-client", client_secret=None, token_endpoint_auth_method="private_key_jwt")
    )
    config = fake_op.provider_config(
        client_id="jwt-client", private_key=dict(key.as_dict(private=True)), private_key_alg="RS256"
    )
    unusable = machine(fake_op, fake_op_http, clock, config=config)

    with pytest.raises(UnknownProviderError):
        await unusable.token("nobody")
    with pytest.raises(ConfigurationError, match="cannot sign"):
        await unusable.token("fake")

    assert fake_op.oracle.count("token") == 0


def test_nonsense_settings_are_refused_at_construction(fake_op: FakeOP, clock: Clock):
    http = httpx.AsyncClient()
    rp = RelyingParty([fake_op.provider_config()], http=http, clock=clock)
    for options in ({"renew_before": -1}, {"refusal_ttl": -1}, {"lock_wait": -1}, {"timeout": 0}):
        with pytest.raises(ConfigurationError):
            ClientCredentials(rp, http, **options)


async def test_no_token_or_secret_reaches_a_log_line(fake_op: FakeOP, m2m: ClientCredentials):
    with capture_logs() as logs:
        token = await m2m.token("fake", scopes=["read"])
        fake_op.misbehave.respond = {"token": oauth_error("invalid_client", 401)}
        with pytest.raises(ClientCredentialsError):
            await m2m.token("fake", scopes=["write"])

    text = repr(logs)
    events = [entry["event"] for entry in logs]
    assert "rpkit.client_credentials.received" in events
    assert "rpkit.client_credentials.failed" in events
    assert token.access_token not in text
    assert DEFAULT_CLIENT_SECRET not in text


async def test_invalidate_drops_only_the_token_it_names(fake_op: FakeOP, m2m: ClientCredentials):
    first = await m2m.token("fake")

    assert await m2m.invalidate("some-other-token") is False
    assert m2m.cached("fake") == first
    assert await m2m.invalidate(first.access_token) is True
    second = await m2m.token("fake")
    assert await m2m.invalidate(first.access_token) is False  # already replaced: kept

    assert second != first
    assert m2m.cached("fake") == second
    assert fake_op.oracle.count("token") == 2
