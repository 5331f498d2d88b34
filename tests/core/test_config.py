"""Provider configuration refuses contradictions at construction, with a message that says what
to change."""

from __future__ import annotations

from typing import Any

import pytest

from rpkit.config import ProviderConfig, is_loopback_http
from rpkit.errors import ConfigurationError, RPKitError

BASE: dict[str, Any] = {
    "id": "okta",
    "issuer": "https://op.example",
    "client_id": "client-1",
    "client_secret": "s3cret",
}


def make(**changes: Any) -> ProviderConfig:
    return ProviderConfig(**(BASE | changes))


def test_a_sound_configuration_keeps_its_values_and_safe_defaults():
    config = make()

    assert config.issuer == "https://op.example"
    assert config.id_token_signed_response_alg == "RS256"
    assert config.leeway == 60
    assert "openid" in config.scopes
    assert not config.allow_insecure_http


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "Bad Id"}, "id must be"),
        ({"issuer": "http://op.example"}, "issuer must use https"),
        ({"issuer": "http://127.0.0.1:9000"}, "allow_insecure_http=True"),
        ({"issuer": "http://op.example", "allow_insecure_http": True}, "issuer must use https"),
        ({"issuer": "https://op.example/?tenant=1"}, "without query or fragment"),
        ({"scopes": ("profile",)}, "must include 'openid'"),
        ({"client_secret": None}, "needs client_secret"),
        ({"client_auth": "private_key_jwt"}, "needs private_key"),
        ({"client_auth": "none"}, "remove client_secret"),
        (
            {"id_token_signed_response_alg": "HS256", "client_secret": None, "client_auth": "none"},
            "keyed by client_secret",
        ),
        ({"id_token_signed_response_alg": "XS999"}, "not a supported JWS algorithm"),
        ({"leeway": 121}, "between 0 and 120"),
        ({"max_age": -1}, "max_age must be"),
        ({"extra_authorization_params": {"state": "fixed"}}, "reserved"),
        ({"allowed_authorization_params": frozenset({"nonce"})}, "reserved"),
        ({"extra_authorization_params": {"foo": "bar"}}, "not in allowed_authorization_params"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_contradictions_are_refused_with_an_actionable_message(changes, message):
    with pytest.raises(ConfigurationError, match=message) as caught:
        make(**changes)

    assert isinstance(caught.value, RPKitError)
    assert caught.value.code == "configuration_invalid"
    assert "provider" in str(caught.value)


def test_loopback_http_is_allowed_only_with_the_development_flag():
    config = make(issuer="http://127.0.0.1:9400", allow_insecure_http=True)

    assert config.issuer == "http://127.0.0.1:9400"


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.5.0.1", True),
        ("http://localhost:1", True),
        ("http://[::1]:8080/x", True),
        ("https://127.0.0.1", False),
        ("http://10.0.0.1", False),
        ("http://localhost.evil.example", False),
    ],
)
def test_is_loopback_http(url, loopback):
    assert is_loopback_http(url) is loopback


def test_configuration_is_immutable():
    config = make()

    with pytest.raises(AttributeError):
        config.issuer = "https://evil.example"  # type: ignore[misc]


def test_relaxed_checks_are_listed_and_logged_when_the_relying_party_starts():
    import httpx
    from structlog.testing import capture_logs

    from rpkit.client import RelyingParty

    strict = ProviderConfig(
        id="strict", issuer="https://op.example", client_id="c", client_secret="s" * 32
    )
    relaxed = ProviderConfig(
        id="dev",
        issuer="http://127.0.0.1:9000",
        client_id="c",
        client_secret="s" * 32,
        allow_insecure_http=True,
        id_token_signed_response_alg="HS256",
        trusted_audiences=frozenset({"other-api"}),
    )
    assert strict.relaxations() == ()
    assert [r.split(":")[0] for r in relaxed.relaxations()] == [
        "allow_insecure_http",
        "id_token_signed_response_alg='HS256'",
        "trusted_audiences=['other-api']",
    ]

    with capture_logs() as logs:
        RelyingParty([strict, relaxed], http=httpx.AsyncClient())

    warned = [e for e in logs if e["event"] == "rpkit.startup.check_relaxed"]
    assert [e["provider"] for e in warned] == ["dev", "dev", "dev"]
    assert all(e["log_level"] == "warning" for e in warned)
