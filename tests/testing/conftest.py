"""Helpers for the fake OP's own tests: drive it as a plain-httpx RP would, with no rpkit core."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx
import pytest

from rpkit.testing import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URI, FakeOP


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def basic_auth(client_id: str = DEFAULT_CLIENT_ID, secret: str = DEFAULT_CLIENT_SECRET) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


@dataclass
class PlainRP:
    """A minimal, honest code-flow client written with plain httpx."""

    op: FakeOP
    http: httpx.AsyncClient
    state: str = ""
    nonce: str = ""
    verifier: str = ""

    @staticmethod
    def basic_auth(client_id: str = DEFAULT_CLIENT_ID, secret: str = DEFAULT_CLIENT_SECRET) -> str:
        """An RFC 6749 §2.3.1 ``Authorization: Basic`` value."""
        return basic_auth(client_id, secret)

    def authorization_url(self, **extra: str) -> str:
        self.state = secrets.token_urlsafe(16)
        self.nonce = secrets.token_urlsafe(16)
        self.verifier = b64url(secrets.token_bytes(32))
        challenge = b64url(hashlib.sha256(self.verifier.encode()).digest())
        params = {
            "response_type": "code",
            "client_id": DEFAULT_CLIENT_ID,
            "redirect_uri": DEFAULT_REDIRECT_URI,
            "scope": "openid profile email",
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        return f"{self.op.endpoints['authorize']}?{urlencode(params)}"

    async def code(self, **extra: str) -> str:
        callback = await self.op.approve(self.authorization_url(**extra))
        code = callback.get("code")
        assert code, callback
        return code

    async def exchange(self, code: str, **form: str) -> httpx.Response:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": DEFAULT_REDIRECT_URI,
            "code_verifier": self.verifier,
            **form,
        }
        return await self.http.post(
            self.op.endpoints["token"], data=data, headers={"Authorization": basic_auth()}
        )

    async def tokens(self, **extra: str) -> dict[str, Any]:
        response = await self.exchange(await self.code(**extra))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def refresh(self, refresh_token: str) -> httpx.Response:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await self.http.post(
            self.op.endpoints["token"], data=data, headers={"Authorization": basic_auth()}
        )


@pytest.fixture
def rp(fake_op: FakeOP, fake_op_http: httpx.AsyncClient) -> PlainRP:
    return PlainRP(fake_op, fake_op_http)
