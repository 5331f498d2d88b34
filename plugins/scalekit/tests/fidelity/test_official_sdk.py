"""Fidelity: the official ``scalekit-sdk-python`` accepts what the fake Scalekit serves on
127.0.0.1, and the fake accepts what the SDK sends.

The SDK speaks plain HTTP only for ``/oauth/token`` and ``/keys`` (its gRPC channel is lazy and
never used here); everything exercised below goes over those two, plus URL builders and the
webhook verifier, which need no network.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from rpkit_scalekit.testing import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    FakeScalekit,
    build_webhook,
    new_webhook_secret,
    serve_scalekit,
)

# The SDK's pydantic models use class-based config, deprecated in pydantic 2; nothing else.
pytestmark = pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20")


@pytest.fixture
def sdk_module() -> SimpleNamespace:
    """The SDK, imported under this module's warning filter (not at collection)."""
    client = importlib.import_module("scalekit")
    options = importlib.import_module("scalekit.common.scalekit")
    return SimpleNamespace(
        ScalekitClient=client.ScalekitClient,
        AuthorizationUrlOptions=options.AuthorizationUrlOptions,
        CodeAuthenticationOptions=options.CodeAuthenticationOptions,
        TokenValidationOptions=options.TokenValidationOptions,
    )


@pytest.fixture
def served() -> Iterator[FakeScalekit]:
    with serve_scalekit() as fake:
        yield fake


@pytest.fixture
def sdk(sdk_module: SimpleNamespace, served: FakeScalekit) -> object:
    return sdk_module.ScalekitClient(served.issuer, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)


def test_constructor_fetches_its_m2m_token_from_the_fake(sdk, served):
    call = served.recording.last("token")

    assert served.recording.grant_counts() == {"client_credentials": 1}
    assert call.status == 200
    assert call.form == [
        ("grant_type", "client_credentials"),
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_CLIENT_SECRET),
    ]
    assert call.header("x-sdk-version").startswith("Scalekit-Python/")
    assert sdk.core_client.access_token in served.m2m_tokens


def test_validate_access_token_accepts_fake_tokens(sdk, sdk_module, served):
    user_access = asyncio.run(_user_tokens(served))["access_token"]
    m2m = served.issue_m2m_token()
    strict = sdk_module.TokenValidationOptions(issuer=served.issuer, audience=[DEFAULT_CLIENT_ID])

    assert sdk.validate_access_token(user_access) is True
    assert sdk.validate_access_token(user_access, options=strict) is True
    assert sdk.validate_access_token(m2m) is True
    assert served.recording.count("keys") == 1
    # The SDK sends its own M2M bearer to /keys; the fake tolerates it.
    assert (
        served.recording.last("keys").header("authorization")
        == f"Bearer {sdk.core_client.access_token}"
    )


def test_validate_access_token_rejects_what_the_fake_breaks(sdk, sdk_module, served):
    good = served.issue_m2m_token()
    served.knobs.m2m_token_claims = {"iat": lambda c: c["iat"] + 30}
    future = served.issue_m2m_token()
    served.knobs.m2m_token_claims = {}
    wrong_aud = sdk_module.TokenValidationOptions(issuer=served.issuer, audience=["someone-else"])

    assert sdk.validate_access_token(good) is True
    assert sdk.validate_access_token(future) is False
    assert (
        sdk.validate_access_token(
            asyncio.run(_user_tokens(served))["access_token"], options=wrong_aud
        )
        is False
    )


def test_rotated_keys_are_served_to_a_fresh_sdk_client(sdk, sdk_module, served):
    assert sdk.validate_access_token(served.issue_m2m_token()) is True
    served.rotate_keys(keep_previous=False)
    after = served.issue_m2m_token()
    fresh = sdk_module.ScalekitClient(served.issuer, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)

    # The SDK caches /keys for the life of the client (scalekit-sdk.md §2.3): only a new
    # client sees the new key, which the fake does serve.
    assert sdk.validate_access_token(after) is False
    assert fresh.validate_access_token(after) is True
    assert served.recording.count("keys") == 2


def test_sdk_authorization_url_is_accepted_and_its_code_exchange_works(sdk, sdk_module, served):
    options = sdk_module.AuthorizationUrlOptions()
    options.state = "sdk-state"
    options.nonce = "sdk-nonce"
    options.login_hint = "alice@acme.test"
    options.scopes = ["openid", "profile", "email", "offline_access"]
    url = sdk.get_authorization_url(DEFAULT_REDIRECT_URI, options)

    with httpx.Client(timeout=5) as browser:
        response = browser.get(url)
    location = urlsplit(response.headers["location"])
    params = dict(parse_qsl(location.query))
    result = sdk.authenticate_with_code(
        params["code"], DEFAULT_REDIRECT_URI, sdk_module.CodeAuthenticationOptions()
    )

    assert response.status_code == 302
    assert f"{location.scheme}://{location.netloc}{location.path}" == DEFAULT_REDIRECT_URI
    assert params["state"] == "sdk-state"
    assert served.recording.last("authorize").outcome == "ok"
    assert result["user"]["email"] == "alice@acme.test"
    assert result["connection_id"] == "conn_200000000000000001"
    assert result["organization_id"] == "org_300000000000000001"
    assert result["refresh_token"]


def test_sdk_authorization_url_with_domain_hint_and_organization_routes(sdk, sdk_module, served):
    options = sdk_module.AuthorizationUrlOptions()
    options.organization_id = "org_300000000000000001"
    options.domain_hint = "acme.test"

    with httpx.Client(timeout=5) as browser:
        response = browser.get(sdk.get_authorization_url(DEFAULT_REDIRECT_URI, options))

    code = dict(parse_qsl(urlsplit(response.headers["location"]).query))["code"]
    assert served.codes[code].session.route.kind == "organization_id"


def test_sdk_refresh_and_idp_initiated_claims(sdk, served):
    tokens = asyncio.run(_user_tokens(served))
    refreshed = sdk.refresh_access_token(tokens["refresh_token"])
    claims = sdk.get_idp_initiated_login_claims(
        served.idp_initiated_login_token(connection_id="conn_1", relay_state="rs")
    )

    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert claims["connection_id"] == "conn_1"
    assert claims["relay_state"] == "rs"


def test_sdk_verifies_fake_webhooks_and_rejects_defects(sdk):
    secret = new_webhook_secret()
    data = {"user_id": "usr_1"}

    def verifies(**defects: object) -> bool:
        delivery = build_webhook(secret, "user.login", data, "https://rp.test/wh", **defects)
        try:
            return bool(sdk.verify_webhook_payload(secret, delivery.headers, delivery.body))
        except Exception:
            return False

    interceptor = build_webhook(
        secret, "user.login", data, "https://rp.test/i", header_prefix="interceptor"
    )

    assert verifies() is True
    assert verifies(extra_signatures=("v1,Ym9ndXM=",)) is True
    assert sdk.verify_interceptor_payload(secret, interceptor.headers, interceptor.body) is True
    assert verifies(tamper_body=True) is False
    assert verifies(wrong_secret=True) is False
    assert verifies(timestamp_offset=-301) is False
    assert verifies(header_case="title") is False  # the SDK's lookup is case-sensitive


async def _user_tokens(fake: FakeScalekit) -> dict[str, str]:
    query = httpx.QueryParams(
        {
            "response_type": "code",
            "client_id": DEFAULT_CLIENT_ID,
            "redirect_uri": DEFAULT_REDIRECT_URI,
            "scope": "openid email offline_access",
        }
    )
    callback = await fake.approve(f"{fake.issuer}/oauth/authorize?{query}")
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        response = await http.post(
            f"{fake.issuer}/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": callback.get("code") or "",
                "redirect_uri": DEFAULT_REDIRECT_URI,
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": DEFAULT_CLIENT_SECRET,
            },
        )
    tokens: dict[str, str] = response.json()
    return tokens
