"""Pushed authorization requests (RFC 9126) through the relying party and the Litestar plugin,
against the fake OP: what is pushed, what the browser carries, and every refusal."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from rpkit.errors import (
    AuthorizationResponseError,
    ConfigurationError,
    PushedAuthorizationError,
    PushedAuthorizationUnavailableError,
)
from rpkit.flow import Transaction
from rpkit.testing import DEFAULT_CLIENT_ID, DEFAULT_REDIRECT_URI, Canned, FakeClient, FakeOP
from rpkit.testing.keys import generate_key
from tests.par_dpop.conftest import BASE, claims_of, make_app, party

pytestmark = pytest.mark.par_dpop
DEFAULT_REDIRECT = DEFAULT_REDIRECT_URI


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


# -- the push and the browser's URL -----------------------------------------------------------
async def test_login_with_par_sends_the_browser_with_client_id_and_request_uri_only(
    par_op: FakeOP,
):
    relying = party(par_op)

    started = await relying.rp.begin_login("fake", redirect_uri=DEFAULT_REDIRECT)

    assert set(query(started.url)) == {"client_id", "request_uri"}
    assert query(started.url)["client_id"] == DEFAULT_CLIENT_ID
    pushed = par_op.oracle.last("par")
    assert pushed.method == "POST"
    assert pushed.headers["authorization"].startswith("Basic ")  # client_secret_basic
    assert query(started.url)["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    sent = dict(pushed.form)
    assert sent["state"] == started.state
    assert sent["redirect_uri"] == DEFAULT_REDIRECT
    assert sent["code_challenge_method"] == "S256"
    assert {"nonce", "code_challenge", "scope", "response_type"} <= set(sent)
    answer = await par_op.approve(started.url)
    result = await relying.rp.complete_login("fake", list(answer.params))
    assert result.identity.subject == "alice"


@pytest.mark.parametrize(
    "method", ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
)
async def test_the_push_authenticates_the_client_with_each_method(method: str):
    op = FakeOP(par=True)
    key = generate_key("RS256", kid="assertion-key")
    client = FakeClient(
        client_id=f"client-{method}",
        token_endpoint_auth_method=method,  # type: ignore[arg-type]
        client_secret=None if method in ("private_key_jwt", "none") else "s3cr:t +/%",
        jwks={"keys": [key.as_dict(private=False)]},
    )
    op.clients = {client.client_id: client}
    private = dict(key.as_dict(private=True))
    relying = party(op, private_key=private if method == "private_key_jwt" else None)

    result = await relying.login()

    pushed = op.oracle.last("par")
    assert pushed.outcome == "ok"
    form = dict(pushed.form)
    if method == "client_secret_basic":
        assert pushed.headers["authorization"].startswith("Basic ")
    elif method == "client_secret_post":
        assert form["client_secret"] == "s3cr:t +/%"
    elif method == "private_key_jwt":
        assertion = claims_of(form["client_assertion"])
        assert assertion["aud"] == op.issuer  # RFC 9126 §2: the issuer as audience
        assert assertion["iss"] == assertion["sub"] == client.client_id
    else:
        assert form["client_id"] == client.client_id
        assert "client_secret" not in form
    assert result.identity.subject == "alice"


# -- refusals: nothing stored, no redirect ----------------------------------------------------
@pytest.mark.parametrize(
    ("knobs", "error"),
    [
        pytest.param({"par_error": "invalid_request"}, "invalid_request", id="oauth-error"),
        pytest.param(
            {"respond": {"par": Canned.json({"request_uri": "urn:x", "expires_in": 60})}},
            None,
            id="200-not-201",
        ),
        pytest.param(
            {"respond": {"par": Canned.json({"expires_in": 60}, 201)}}, None, id="no-request-uri"
        ),
        pytest.param(
            {"respond": {"par": Canned.json({"request_uri": "urn:x", "expires_in": 0}, 201)}},
            None,
            id="expires-in-zero",
        ),
        pytest.param(
            {"respond": {"par": Canned.json({"request_uri": "urn:x y", "expires_in": 9}, 201)}},
            None,
            id="request-uri-with-space",
        ),
        pytest.param({"respond": {"par": Canned.html(status=201)}}, None, id="html"),
        pytest.param({"respond": {"par": Canned(302, headers={"Location": "/x"})}}, None, id="3xx"),
    ],
)
async def test_a_refused_or_unusable_push_is_a_typed_error_and_nothing_is_stored(
    par_op: FakeOP, knobs: dict[str, object], error: str | None
):
    relying = party(par_op)

    with par_op.misbehaving(**knobs), pytest.raises(PushedAuthorizationError) as refused:
        await relying.rp.begin_login("fake", redirect_uri=DEFAULT_REDIRECT)

    assert refused.value.error == error
    assert refused.value.code == "pushed_authorization_failed"
    assert len(relying.store) == 0  # no transaction half-way
    assert par_op.oracle.count("authorize") == 0
    assert par_op.oracle.count("par") == 1  # never retried


async def test_par_required_without_an_advertised_endpoint_refuses_before_any_request():
    op = FakeOP()  # serves no PAR in its metadata
    relying = party(op, par="required")

    with pytest.raises(PushedAuthorizationUnavailableError) as refused:
        await relying.rp.begin_login("fake", redirect_uri=DEFAULT_REDIRECT)

    assert "pushed_authorization_request_endpoint" in refused.value.detail
    assert op.oracle.counts() == {"discovery": 1}
    assert len(relying.store) == 0


async def test_par_off_while_the_provider_requires_pushed_requests_is_refused():
    op = FakeOP(require_par=True)
    with capture_logs() as logs:
        relying = party(op, par="off")

    with pytest.raises(PushedAuthorizationUnavailableError) as refused:
        await relying.rp.begin_login("fake", redirect_uri=DEFAULT_REDIRECT)

    assert "par='off'" in refused.value.detail
    relaxed = [e["setting"] for e in logs if e["event"] == "rpkit.startup.check_relaxed"]
    assert any(setting.startswith("par='off'") for setting in relaxed)
    assert op.oracle.counts() == {"discovery": 1}
    assert len(relying.store) == 0


async def test_auto_pushes_when_the_provider_requires_it_and_its_op_refuses_unpushed_requests():
    op = FakeOP(require_par=True)
    relying = party(op)  # par="auto", the default

    result = await relying.login()

    assert op.oracle.count("par") == 1
    assert result.identity.subject == "alice"


async def test_auto_without_an_advertised_endpoint_sends_the_parameters_in_the_url():
    op = FakeOP()
    relying = party(op)

    started = await relying.rp.begin_login("fake", redirect_uri=DEFAULT_REDIRECT)

    assert {"state", "nonce", "code_challenge", "redirect_uri"} <= set(query(started.url))
    assert op.oracle.count("par") == 0


def test_par_must_be_one_of_the_three_modes(par_op: FakeOP):
    with pytest.raises(ConfigurationError, match="par must be"):
        par_op.provider_config(par="sometimes")


# -- expires_in: a request URI is used once and never after it expired ----------------------
async def test_a_login_started_after_the_request_uri_expired_gets_a_fresh_push():
    op = FakeOP(par=True, par_lifetime=30)
    relying = party(op)
    first = await relying.rp.begin_login("fake", redirect_uri=DEFAULT_REDIRECT)

    with op.misbehaving(clock_offset=31):  # the browser comes back too late
        expired = await op.approve(first.url)
        assert expired.status == 400  # the OP's error page: no redirect, no code
        assert op.oracle.last("authorize").outcome.startswith("invalid_request_uri")
        second = await relying.rp.begin_login("fake", redirect_uri=DEFAULT_REDIRECT)
        answer = await op.approve(second.url)

    assert op.oracle.count("par") == 2
    assert query(second.url)["request_uri"] != query(first.url)["request_uri"]
    result = await relying.rp.complete_login("fake", list(answer.params))
    assert result.identity.subject == "alice"
    assert op.oracle.count("token") == 1  # the expired login never reached the token endpoint


async def test_the_transaction_records_when_its_request_uri_expires(par_op: FakeOP):
    relying = party(par_op)
    started = await relying.rp.begin_login("fake", redirect_uri=DEFAULT_REDIRECT)

    raw = await relying.store.get("rpkit:txn:" + started.state)
    assert raw is not None
    transaction = msgspec.json.decode(raw, type=Transaction)
    assert transaction.pushed_until is not None
    assert 0 < transaction.pushed_until - transaction.created_at <= par_op.par_lifetime


async def test_a_request_uri_cannot_be_replayed_at_the_op(par_op: FakeOP):
    relying = party(par_op)
    started = await relying.rp.begin_login("fake", redirect_uri=DEFAULT_REDIRECT)
    await par_op.approve(started.url)

    again = await par_op.approve(started.url)

    assert again.status == 400
    assert par_op.oracle.last("authorize").outcome.startswith("invalid_request_uri")


async def test_an_op_error_for_a_pushed_login_comes_back_as_the_usual_refusal(par_op: FakeOP):
    relying = party(par_op)
    started = await relying.rp.begin_login("fake", redirect_uri=DEFAULT_REDIRECT)

    with par_op.misbehaving(authorize_error="access_denied"):
        answer = await par_op.approve(started.url)
    with pytest.raises(AuthorizationResponseError):
        await relying.rp.complete_login("fake", list(answer.params))

    assert par_op.oracle.count("token") == 0


# -- through the Litestar plugin --------------------------------------------------------------
async def test_the_plugin_redirects_the_browser_with_the_request_uri_only(par_op: FakeOP):
    app = make_app(par_op)
    async with AsyncTestClient(app, base_url=BASE) as client:
        started = await client.get("/auth/login/fake", follow_redirects=False)
        answer = await par_op.approve(started.headers["location"])
        landed = await client.get(answer.location, follow_redirects=False)
        session = (await client.get("/session")).json()

    assert started.status_code == 303
    assert set(query(started.headers["location"])) == {"client_id", "request_uri"}
    assert landed.status_code == 303
    assert session["access_token"]


async def test_a_refused_push_in_the_plugin_is_an_error_page_without_redirect_or_cookie(
    par_op: FakeOP,
):
    app = make_app(par_op)
    par_op.misbehave.par_error = "invalid_request"
    async with AsyncTestClient(app, base_url=BASE) as client:
        started = await client.get(
            "/auth/login/fake", follow_redirects=False, headers={"accept": "text/html"}
        )
        flows = app.stores.get("rpkit_flows")
        kept = [key async for key in _keys(flows)]

    assert started.status_code == 502  # the provider refused the push
    assert "location" not in started.headers
    assert "pushed_authorization_failed" in started.text
    assert "set-cookie" not in started.headers  # no transaction cookie
    assert kept == []
    assert par_op.oracle.count("authorize") == 0


async def _keys(store: object):
    for key in getattr(store, "_store", {}):
        yield key
