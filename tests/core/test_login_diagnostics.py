"""Diagnostics without secrets (issue 13, section 5): every failed sign-in leaves exactly one
``rpkit.login.failed`` line at warning, with the provider, the reason (the error's stable code)
and the flow id once the login's transaction was found, and none of the login's secrets — not
the code, the state, the nonce, the PKCE verifier, the client secret or any token. A refused
ID token is also logged at warning (``rpkit.token.rejected``); a refused access token stays at
info, since an API refuses them routinely.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from rpkit.client import RelyingParty
from rpkit.errors import (
    AuthorizationResponseError,
    IdentityRefusedError,
    IDTokenValidationError,
    InvalidGrantError,
    InvalidStateError,
    OversizedParameterError,
    ResponseIssuerError,
    RPKitError,
    UnknownProviderError,
)
from rpkit.hooks import IdentityFields, IdentitySource, ProviderHooks
from rpkit.id_token import AccessTokenPolicy
from rpkit.store import MemoryStore
from rpkit.testing import FakeOP
from tests.checklist.conftest import Harness, provider_config

Logs = list[MutableMapping[str, Any]]


class Secrets:
    """Everything of one login that must never be logged, gathered as the test goes: the
    client secret, what the authorization request and the callback carried, and the token
    endpoint's answers (read off the wire)."""

    def __init__(self, client_secret: str) -> None:
        self.values: set[str] = {client_secret}

    def add(self, *values: str | None) -> None:
        self.values |= {value for value in values if value}

    async def read_token_response(self, response: httpx.Response) -> None:
        if response.request.url.path.endswith("/token"):
            body = json.loads(await response.aread())
            if isinstance(body, dict):
                self.add(*(str(v) for k, v in body.items() if k.endswith("token")))

    def assert_absent_from(self, logs: Logs) -> None:
        text = json.dumps(logs, default=str)
        for value in self.values:
            assert value not in text, f"a secret reached the logs: {value[:12]}..."


@pytest.fixture
def secrets(fake_op: FakeOP) -> Secrets:
    return Secrets(provider_config(fake_op).client_secret or "")


@pytest.fixture
def harness(fake_op: FakeOP, secrets: Secrets) -> Harness:
    http = httpx.AsyncClient(
        transport=fake_op.transport(),
        timeout=5.0,
        event_hooks={"response": [secrets.read_token_response]},
    )
    return Harness(fake_op, http, MemoryStore(), provider_config(fake_op))


async def started(harness: Harness, secrets: Secrets) -> tuple[str, list[tuple[str, str]]]:
    """Start a login; the login's flow id and the callback's parameters."""
    request, callback = await harness.start()
    authorize = harness.op.oracle.last("authorize")
    secrets.add(
        request.state, authorize.param("nonce"), callback.get("code"), callback.get("state")
    )
    return request.flow_id, list(callback.params)


async def failed_login(
    harness: Harness,
    secrets: Secrets,
    error: type[RPKitError],
    call: Callable[[], Awaitable[Any]],
) -> tuple[MutableMapping[str, Any], Logs]:
    """Run ``call``, expect ``error``, and return the one ``rpkit.login.failed`` line."""
    with capture_logs() as logs, pytest.raises(error):
        await call()
    secrets.add(*harness.op.access_tokens, *harness.op.refresh_tokens)
    lines = [entry for entry in logs if entry["event"] == "rpkit.login.failed"]
    assert len(lines) == 1, lines
    assert lines[0]["log_level"] == "warning"
    return lines[0], logs


def with_params(params: list[tuple[str, str]], **values: str) -> list[tuple[str, str]]:
    return [(name, values.get(name, value)) for name, value in params]


async def test_a_callback_with_an_unknown_state_leaves_one_line(
    harness: Harness, secrets: Secrets
) -> None:
    _, params = await started(harness, secrets)
    forged = with_params(params, state="A" * 43)

    line, logs = await failed_login(
        harness, secrets, InvalidStateError, lambda: harness.finish(forged)
    )

    assert line == {
        "event": "rpkit.login.failed",
        "log_level": "warning",
        "provider": "fake",
        "issuer": harness.op.issuer,
        "flow_id": None,  # no transaction was found
        "reason": "invalid_state",
    }
    secrets.assert_absent_from(logs)


async def test_an_issuer_mismatch_leaves_one_line(harness: Harness, secrets: Secrets) -> None:
    _, params = await started(harness, secrets)
    forged = with_params(params, iss="https://evil.example")

    line, logs = await failed_login(
        harness, secrets, ResponseIssuerError, lambda: harness.finish(forged)
    )

    assert (line["provider"], line["reason"]) == ("fake", "response_issuer_mismatch")
    secrets.assert_absent_from(logs)


async def test_a_denied_login_names_the_providers_error_and_the_flow(
    harness: Harness, secrets: Secrets
) -> None:
    with harness.op.misbehaving(authorize_error="access_denied"):
        flow_id, params = await started(harness, secrets)

    line, logs = await failed_login(
        harness, secrets, AuthorizationResponseError, lambda: harness.finish(params)
    )

    assert line["reason"] == "authorization_denied"
    assert line["op_error"] == "access_denied"
    assert line["flow_id"] == flow_id
    secrets.assert_absent_from(logs)


async def test_an_unknown_provider_leaves_one_line(harness: Harness, secrets: Secrets) -> None:
    _, params = await started(harness, secrets)

    line, logs = await failed_login(
        harness, secrets, UnknownProviderError, lambda: harness.rp.complete_login("okta2", params)
    )

    assert (line["provider"], line["reason"]) == ("okta2", "unknown_provider")
    secrets.assert_absent_from(logs)


async def test_an_unknown_provider_id_that_is_no_id_is_not_logged(
    harness: Harness, secrets: Secrets
) -> None:
    _, params = await started(harness, secrets)
    junk = "x\n" + "y" * 500

    line, logs = await failed_login(
        harness, secrets, UnknownProviderError, lambda: harness.rp.complete_login(junk, params)
    )

    assert line["provider"] is None
    assert "yyyy" not in json.dumps(logs, default=str)


async def test_a_refused_id_token_leaves_one_line_and_a_warning_with_the_check(
    harness: Harness, secrets: Secrets
) -> None:
    harness.op.misbehave.id_token_claims = {"nonce": "a-nonce-from-another-login"}
    flow_id, params = await started(harness, secrets)
    secrets.add("a-nonce-from-another-login")

    line, logs = await failed_login(
        harness, secrets, IDTokenValidationError, lambda: harness.finish(params)
    )

    assert (line["reason"], line["check"], line["flow_id"]) == (
        "id_token_invalid",
        "nonce",
        flow_id,
    )
    rejected = [entry for entry in logs if entry["event"] == "rpkit.token.rejected"]
    assert [entry["log_level"] for entry in rejected] == ["warning"]
    assert len(secrets.values) >= 6  # the token response's tokens were read and are checked
    secrets.assert_absent_from(logs)


async def test_a_refused_code_exchange_leaves_one_line(harness: Harness, secrets: Secrets) -> None:
    with harness.op.misbehaving(token_error="invalid_grant"):
        flow_id, params = await started(harness, secrets)
        line, logs = await failed_login(
            harness, secrets, InvalidGrantError, lambda: harness.finish(params)
        )

    assert (line["reason"], line["op_error"], line["flow_id"]) == (
        "invalid_grant",
        "invalid_grant",
        flow_id,
    )
    secrets.assert_absent_from(logs)


async def test_a_refused_identity_leaves_one_line(
    fake_op: FakeOP, harness: Harness, secrets: Secrets
) -> None:
    async def nobody(source: IdentitySource) -> IdentityFields:
        return IdentityFields(subject="")

    harness.reconfigure(hooks=ProviderHooks(identity=nobody))
    flow_id, params = await started(harness, secrets)

    line, logs = await failed_login(
        harness, secrets, IdentityRefusedError, lambda: harness.finish(params)
    )

    assert (line["reason"], line["flow_id"]) == ("identity_refused", flow_id)
    secrets.assert_absent_from(logs)


async def test_an_oversized_code_is_refused_with_one_line_that_does_not_quote_it(
    harness: Harness, secrets: Secrets
) -> None:
    _, params = await started(harness, secrets)
    oversized = "c" * 3000
    secrets.add(oversized)

    line, logs = await failed_login(
        harness,
        secrets,
        OversizedParameterError,
        lambda: harness.finish(with_params(params, code=oversized)),
    )

    assert line["reason"] == "parameter_too_large"
    secrets.assert_absent_from(logs)


async def test_a_successful_login_leaves_no_failure_line(
    harness: Harness, secrets: Secrets
) -> None:
    _, params = await started(harness, secrets)

    with capture_logs() as logs:
        result = await harness.finish(params)

    assert result.identity.subject == "alice"
    assert not [entry for entry in logs if entry["event"] == "rpkit.login.failed"]
    secrets.assert_absent_from(logs)


async def test_a_refused_access_token_stays_at_info(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient
) -> None:
    rp = RelyingParty([provider_config(fake_op)], http=fake_op_http)
    metadata = await rp.metadata("fake")
    policy = AccessTokenPolicy(
        issuers=(fake_op.issuer,), jwks_uri=metadata.jwks_uri, audience=("https://api.test",)
    )

    with capture_logs() as logs, pytest.raises(RPKitError):
        await rp.validate_access_token("e30.e30.AA", policy)

    rejected = [entry for entry in logs if entry["event"] == "rpkit.token.rejected"]
    assert [entry["log_level"] for entry in rejected] == ["info"]
