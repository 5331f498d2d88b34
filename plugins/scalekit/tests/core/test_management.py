"""The management client: a lazily fetched, cached, single-flight M2M token, one re-authentication
after a 401, and refusals parsed from the google.rpc.Status envelope into typed errors."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import httpx
import pytest
from structlog.testing import capture_logs

from rpkit.errors import ConfigurationError
from rpkit_scalekit.errors import (
    ScalekitAPIError,
    ScalekitAuthError,
    ScalekitNotFoundError,
    ScalekitRateLimitedError,
    ScalekitUnavailableError,
)
from rpkit_scalekit.management import API_VERSION, ManagementClient

from .conftest import CLIENT_ID, CLIENT_SECRET, ENV, Clock, status_envelope, token_answer

CONNECTION = {
    "id": "conn_1",
    "provider": "OKTA",
    "type": "SAML",
    "status": "COMPLETED",
    "enabled": True,
    "organization_id": "org_1",
    "domains": ["example.com"],
    "created_at": "2026-01-01T00:00:00Z",
    "some_future_field": {"x": 1},
}


def unauthenticated() -> httpx.Response:
    return status_envelope(401, 16, "Token empty", "UNAUTHENTICATED")


async def test_constructing_the_client_sends_nothing(http, token_route, mock):
    ManagementClient(http, env_url=ENV, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)

    assert token_route.call_count == 0
    assert len(mock.calls) == 0


async def test_first_call_fetches_the_token_with_client_credentials_and_sends_it(
    api, token_route, mock
):
    route = mock.get("/api/v1/connections").respond(200, json={"connections": [CONNECTION]})

    connections = await api.list_connections(domain="example.com")

    form = parse_qs(token_route.calls.last.request.content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
    }
    sent = route.calls.last.request
    assert sent.headers["authorization"] == "Bearer m2m-1"
    assert sent.headers["x-api-version"] == API_VERSION
    assert sent.url.params["domain"] == "example.com"
    assert "include" not in sent.url.params
    assert connections[0].id == "conn_1"
    assert connections[0].active
    assert connections[0].domains == ("example.com",)


async def test_token_is_cached_until_shortly_before_it_expires(api, token_route, clock):
    token_route.side_effect = [token_answer("m2m-1", 3600), token_answer("m2m-2", 3600)]

    first = await api.access_token()
    clock.now += 3600 - 61
    still = await api.access_token()
    clock.now += 2  # now within the 60 s refresh margin
    renewed = await api.access_token()

    assert (first, still, renewed) == ("m2m-1", "m2m-1", "m2m-2")
    assert token_route.call_count == 2


async def test_expires_in_sent_as_a_string_is_accepted(api, token_route, clock):
    token_route.side_effect = [token_answer("m2m-1", "600"), token_answer("m2m-2", "600")]

    await api.access_token()
    clock.now += 600 - 61
    assert await api.access_token() == "m2m-1"
    clock.now += 2
    assert await api.access_token() == "m2m-2"


async def test_concurrent_callers_share_one_token_request(api, token_route):
    tokens = await asyncio.gather(*(api.access_token() for _ in range(20)))

    assert set(tokens) == {"m2m-1"}
    assert token_route.call_count == 1


async def test_a_401_refetches_the_token_and_repeats_the_request_once(api, token_route, mock):
    token_route.side_effect = [token_answer("m2m-1"), token_answer("m2m-2")]
    route = mock.get("/api/v1/connections").mock(
        side_effect=[unauthenticated(), httpx.Response(200, json={"connections": []})]
    )

    assert await api.list_connections(domain="example.com") == ()

    assert token_route.call_count == 2
    assert [c.request.headers["authorization"] for c in route.calls] == [
        "Bearer m2m-1",
        "Bearer m2m-2",
    ]


async def test_a_second_401_with_a_fresh_token_is_an_auth_error_not_a_loop(api, token_route, mock):
    token_route.side_effect = [token_answer("m2m-1"), token_answer("m2m-2")]
    route = mock.get("/api/v1/connections").mock(return_value=unauthenticated())

    with pytest.raises(ScalekitAuthError) as caught:
        await api.list_connections(domain="example.com")

    assert caught.value.error_code == "UNAUTHENTICATED"
    assert caught.value.grpc_code == 16
    assert route.call_count == 2
    assert token_route.call_count == 2


async def test_concurrent_401s_cause_one_refetch(api, token_route, mock):
    token_route.side_effect = [token_answer("m2m-1"), token_answer("m2m-2"), token_answer("m2m-3")]

    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer m2m-1":
            return unauthenticated()
        return httpx.Response(200, json={"connections": []})

    mock.get("/api/v1/connections").mock(side_effect=answer)
    await api.access_token()

    await asyncio.gather(*(api.list_connections(domain=f"d{i}.com") for i in range(5)))

    assert token_route.call_count == 2


async def test_invalid_client_is_an_auth_error_and_no_api_call_is_made(api, token_route, mock):
    token_route.return_value = httpx.Response(
        401, json={"error": "invalid_client", "error_description": "bad secret"}
    )
    route = mock.get("/api/v1/connections").respond(200, json={"connections": []})

    with pytest.raises(ScalekitAuthError) as caught:
        await api.list_connections(domain="example.com")

    assert caught.value.error_code == "invalid_client"
    assert caught.value.status == 401
    assert route.call_count == 0


async def test_validation_envelope_becomes_a_typed_error_with_code_and_request_id(
    api, token_route, mock
):
    mock.get("/api/v1/connections").mock(
        return_value=status_envelope(
            400,
            3,
            "invalid domain",
            "INVALID_ARGUMENT",
            request_id="req_abc",
            violations=[{"field": "domain", "description": "bad", "constraint": "string.hostname"}],
        )
    )

    with pytest.raises(ScalekitAPIError) as caught:
        await api.list_connections(domain="example.com")

    error = caught.value
    assert type(error) is ScalekitAPIError
    assert (error.status, error.grpc_code, error.error_code) == (400, 3, "INVALID_ARGUMENT")
    assert error.request_id == "req_abc"
    assert error.violations == (("domain", "string.hostname"),)
    assert error.message == "invalid domain"


async def test_camel_case_envelope_is_read_too(api, token_route, mock):
    body = {
        "code": 5,
        "message": "not found",
        "details": [
            {
                "@type": "type.googleapis.com/scalekit.v1.errdetails.ErrorInfo",
                "errorCode": "NOT_FOUND",
                "requestInfo": {"requestId": "req_camel"},
            }
        ],
    }
    mock.get("/api/v1/connections").respond(404, json=body)

    with pytest.raises(ScalekitNotFoundError) as caught:
        await api.list_connections(organization_id="org_x")

    assert caught.value.error_code == "NOT_FOUND"
    assert caught.value.request_id == "req_camel"


async def test_429_carries_retry_after(api, token_route, mock):
    mock.get("/api/v1/connections").mock(
        return_value=status_envelope(
            429, 8, "slow down", "RESOURCE_EXHAUSTED", headers={"Retry-After": "17"}
        )
    )

    with pytest.raises(ScalekitRateLimitedError) as caught:
        await api.list_connections(domain="example.com")

    assert caught.value.retry_after == 17
    assert caught.value.grpc_code == 8


async def test_a_non_json_gateway_error_is_unavailable_with_the_header_request_id(
    api, token_route, mock
):
    route = mock.get("/api/v1/connections").respond(
        502, text="<html>bad gateway</html>", headers={"x-request-id": "edge-7"}
    )

    with pytest.raises(ScalekitUnavailableError) as caught:
        await api.list_connections(domain="example.com")

    assert caught.value.status == 502
    assert caught.value.error_code is None
    assert caught.value.request_id == "edge-7"
    assert route.call_count == 1  # never retried


async def test_a_connection_error_is_unavailable_and_not_retried(api, token_route, mock):
    route = mock.get("/api/v1/connections").mock(side_effect=httpx.ConnectError("down"))

    with pytest.raises(ScalekitUnavailableError):
        await api.list_connections(domain="example.com")

    assert route.call_count == 1


async def test_include_all_is_sent_as_include_all(api, token_route, mock):
    route = mock.get("/api/v1/connections").respond(200, json={"connections": []})

    await api.list_connections(organization_id="org_1", include_all=True)

    assert dict(route.calls.last.request.url.params) == {
        "organization_id": "org_1",
        "include": "all",
    }


async def test_neither_secret_nor_token_appears_in_logs(api, token_route, mock):
    mock.get("/api/v1/connections").mock(side_effect=[unauthenticated(), unauthenticated()])
    token_route.side_effect = [token_answer("m2m-secret-1"), token_answer("m2m-secret-2")]

    with capture_logs() as logs, pytest.raises(ScalekitAuthError):
        await api.list_connections(domain="example.com")

    text = repr(logs)
    assert logs
    assert CLIENT_SECRET not in text
    assert "m2m-secret" not in text


def test_plain_http_environments_are_refused_except_loopback_in_development(http):
    with pytest.raises(ConfigurationError):
        ManagementClient(
            http, env_url="http://acme.scalekit.test", client_id="a", client_secret="b"
        )
    with pytest.raises(ConfigurationError):
        ManagementClient(
            http,
            env_url="http://acme.scalekit.test",
            client_id="a",
            client_secret="b",
            allow_insecure_http=True,
        )
    ManagementClient(
        http,
        env_url="http://127.0.0.1:8000",
        client_id="a",
        client_secret="b",
        allow_insecure_http=True,
    )


def test_repr_shows_no_secret(http, clock: Clock):
    api = ManagementClient(http, env_url=ENV, client_id="a", client_secret=CLIENT_SECRET)
    assert CLIENT_SECRET not in repr(api)


@pytest.mark.parametrize(
    "content",
    [b'{"code": "\xa7"}', b"[" * 5000, b'{"a":' * 3000],
    ids=["bad-utf8", "deep-list", "deep-object"],
)
def test_an_error_body_that_crashes_the_json_decoder_is_no_object(content: bytes):
    from rpkit_scalekit._wire import decode_object

    assert decode_object(content) is None


@pytest.mark.parametrize("value", ["²", "9" * 5000, "-" + "1" * 40])
def test_odd_numbers_on_the_wire_are_not_numbers(value: str):
    from rpkit_scalekit._wire import _retry_after, int_value

    assert int_value(value) is None
    assert _retry_after(value, 0.0) in (None, 3600)
