"""login_hint routing: explicit choices first, then the email domain's SSO connection (cached,
misses too), else the hosted page with the hint pre-filled; bad input is refused before any
request."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from structlog.testing import capture_logs

from rpkit_scalekit.errors import InvalidEmailError, ScalekitInputError
from rpkit_scalekit.routing import LoginRoute, LoginRouter, RouteRequest

from .conftest import Clock, status_envelope


def connection(conn_id: str, org: str = "org_1", **changes):
    entry = {
        "id": conn_id,
        "provider": "OKTA",
        "type": "SAML",
        "status": "COMPLETED",
        "enabled": True,
        "organization_id": org,
        "domains": ["example.com"],
    }
    return entry | changes


@pytest.fixture
def monotonic() -> Clock:
    return Clock(0.0)


@pytest.fixture
def router(api, monotonic) -> LoginRouter:
    return LoginRouter(api, ttl=300, negative_ttl=60, clock=monotonic)


@pytest.fixture
def connections(mock, token_route):
    return mock.get("/api/v1/connections")


async def test_an_email_with_one_sso_connection_routes_to_it(router, connections):
    connections.respond(200, json={"connections": [connection("conn_1")]})

    route = await router.route(email="Ada@Example.COM")

    assert route.kind == "connection"
    assert route.reason == "sso_connection"
    assert route.connection_id == "conn_1"
    assert route.params() == {
        "connection_id": "conn_1",
        "organization_id": "org_1",
        "login_hint": "Ada@example.com",
    }
    assert connections.calls.last.request.url.params["domain"] == "example.com"


async def test_a_domain_lookup_is_cached_for_its_ttl(router, connections, monotonic):
    connections.respond(200, json={"connections": [connection("conn_1")]})

    await router.route(email="a@example.com")
    monotonic.now = 299
    await router.route(email="b@example.com")
    assert connections.call_count == 1

    monotonic.now = 301
    await router.route(email="c@example.com")
    assert connections.call_count == 2


async def test_a_domain_without_sso_goes_to_the_hosted_page_and_the_miss_is_cached(
    router, connections, monotonic
):
    connections.respond(200, json={"connections": []})

    route = await router.route(email="ada@gmail.com")
    monotonic.now = 59
    again = await router.route(email="bob@gmail.com")

    assert route.kind == again.kind == "hosted"
    assert route.reason == "no_sso_connection"
    assert route.params() == {"login_hint": "ada@gmail.com"}
    assert connections.call_count == 1
    monotonic.now = 61
    await router.route(email="bob@gmail.com")
    assert connections.call_count == 2


@pytest.mark.parametrize(
    "changes",
    [
        {"enabled": False},
        {"status": "DRAFT"},
        {"type": "PASSWORDLESS"},
        {"domains": ["other.com"]},
    ],
)
async def test_unusable_connections_are_not_routed_to(router, connections, changes):
    connections.respond(200, json={"connections": [connection("conn_1", **changes)]})

    route = await router.route(email="ada@example.com")

    assert route.kind == "hosted"
    assert route.connection_id is None


async def test_several_connections_of_one_organization_route_to_the_organization(
    router, connections
):
    connections.respond(
        200, json={"connections": [connection("conn_1"), connection("conn_2", type="OIDC")]}
    )

    route = await router.route(email="ada@example.com")

    assert (route.kind, route.reason, route.organization_id) == (
        "organization",
        "sso_organization",
        "org_1",
    )
    assert route.connection_id is None


async def test_connections_of_several_organizations_are_ambiguous(router, connections):
    connections.respond(
        200, json={"connections": [connection("conn_1"), connection("conn_2", org="org_2")]}
    )

    route = await router.route(email="ada@example.com")

    assert (route.kind, route.reason) == ("hosted", "ambiguous_domain")


async def test_a_failed_lookup_degrades_to_the_hosted_page_briefly(router, connections, monotonic):
    connections.mock(
        side_effect=[
            status_envelope(503, 14, "unavailable", "UNAVAILABLE"),
            httpx.Response(200, json={"connections": [connection("conn_1")]}),
        ]
    )

    degraded = await router.route(email="ada@example.com")
    monotonic.now = 9
    still = await router.route(email="bob@other.com")  # no request while Scalekit is failing
    monotonic.now = 11
    recovered = await router.route(email="ada@example.com")

    assert (degraded.kind, degraded.reason) == ("hosted", "lookup_failed")
    assert degraded.login_hint == "ada@example.com"
    assert (still.kind, still.reason) == ("hosted", "lookup_failed")
    assert recovered.connection_id == "conn_1"
    assert connections.call_count == 2


async def test_concurrent_logins_of_one_domain_share_one_lookup(router, connections):
    connections.respond(200, json={"connections": [connection("conn_1")]})

    routes = await asyncio.gather(*(router.route(email=f"u{i}@example.com") for i in range(10)))

    assert {r.connection_id for r in routes} == {"conn_1"}
    assert connections.call_count == 1


async def test_the_cache_is_bounded(api, connections, monotonic):
    connections.respond(200, json={"connections": []})
    router = LoginRouter(api, max_entries=2, clock=monotonic)

    for domain in ("a.com", "b.com", "c.com", "a.com"):
        await router.route(email=f"x@{domain}")

    assert connections.call_count == 4  # a.com was evicted by c.com


BAD_EMAILS = [
    "",
    "no-at-sign",
    "ada@localhost",
    "ada@@example.com",
    "ada smith@example.com",
    "ada@-example.com",
    "ada@example..com",
    "ada@127.0.0.1",
    ".ada@example.com",
    "ada..b@example.com",
    "ada.@example.com",
    "ada@example.com\r\nX-Injected: 1",
    '"quoted"@example.com',
    "a" * 65 + "@example.com",
    "ada@" + "a" * 320 + ".com",
]


@pytest.mark.parametrize("email", BAD_EMAILS)
async def test_bad_emails_are_refused_before_any_request(router, mock, token_route, email):
    with pytest.raises(InvalidEmailError) as caught:
        await router.route(email=email)

    assert caught.value.field == "email"
    assert isinstance(caught.value, ValueError)
    assert len(mock.calls) == 0


async def test_an_internationalised_domain_is_looked_up_in_punycode(router, connections):
    connections.respond(200, json={"connections": []})

    route = await router.route(email="jose@bücher.example")

    assert connections.calls.last.request.url.params["domain"] == "xn--bcher-kva.example"
    assert route.login_hint == "jose@xn--bcher-kva.example"


async def test_explicit_choices_win_in_scalekits_order_without_a_lookup(router, mock):
    both = await router.route(
        email="ada@example.com", connection_id="conn_9", organization_id="org_9"
    )
    org = await router.route(organization_id="org_9", provider="google")
    social = await router.route(provider="google", domain_hint="example.com")
    domain = await router.route(domain_hint="Example.com", email="ada@example.com")

    assert (both.kind, both.connection_id, both.organization_id) == (
        "connection",
        "conn_9",
        "org_9",
    )
    assert (org.kind, org.provider) == ("organization", None)
    assert (social.kind, social.params()) == ("provider", {"provider": "google"})
    assert domain.params() == {
        "domain_hint": "example.com",
        "domain": "example.com",
        "login_hint": "ada@example.com",
    }
    assert all(route.reason == "explicit" for route in (both, org, social, domain))
    assert len(mock.calls) == 0


async def test_without_any_input_the_hosted_default_is_used(router, mock):
    route = await router.route(prompt="select_account")

    assert (route.kind, route.reason) == ("hosted", "default")
    assert route.params() == {"prompt": "select_account"}
    assert len(mock.calls) == 0


@pytest.mark.parametrize("prompt", ["consent", "login consent", "", "LOGIN"])
async def test_prompt_is_restricted_to_scalekits_values(router, mock, prompt):
    with pytest.raises(ScalekitInputError) as caught:
        await router.route(email="ada@example.com", prompt=prompt)

    assert caught.value.field == "prompt"
    assert len(mock.calls) == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"provider": "myspace"}, "provider"),
        ({"connection_id": "conn_1&prompt=none"}, "connection_id"),
        ({"organization_id": "org 1"}, "organization_id"),
        ({"domain_hint": "not a domain"}, "domain_hint"),
    ],
)
async def test_malformed_explicit_values_are_refused(router, mock, kwargs, field):
    with pytest.raises(ScalekitInputError) as caught:
        await router.route(**kwargs)

    assert caught.value.field == field
    assert len(mock.calls) == 0


async def test_a_hook_can_inspect_and_override_the_decision(api, connections):
    connections.respond(200, json={"connections": []})
    seen: list[tuple[RouteRequest, LoginRoute]] = []

    async def tenant_policy(request: RouteRequest, route: LoginRoute) -> LoginRoute:
        seen.append((request, route))
        if request.domain == "partner.example":
            return LoginRoute(kind="organization", reason="tenant_policy", organization_id="org_p")
        return route

    router = LoginRouter(api, hook=tenant_policy)
    route = await router.route(email="ada@partner.example")

    assert route.organization_id == "org_p"
    assert seen[0][0].domain == "partner.example"
    assert seen[0][1].reason == "no_sso_connection"


def test_a_hook_cannot_build_an_invalid_route():
    with pytest.raises(ScalekitInputError):
        LoginRoute(kind="hosted", reason="x", prompt="consent")
    with pytest.raises(InvalidEmailError):
        LoginRoute(kind="hosted", reason="x", login_hint="not-an-email")


async def test_the_email_is_never_logged(router, connections):
    connections.respond(200, json={"connections": [connection("conn_1")]})

    with capture_logs() as logs:
        await router.route(email="ada.lovelace@example.com")

    assert any(event["event"] == "rpkit.scalekit.route_decided" for event in logs)
    assert "ada.lovelace" not in repr(logs)
