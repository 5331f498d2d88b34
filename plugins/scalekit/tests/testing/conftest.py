"""Helpers for the fake Scalekit's own tests: a plain-httpx RP and an independent JWT check
(PyJWT), so that the fake's own JOSE code never vouches for itself."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from joserfc.jwk import RSAKey

from rpkit_scalekit.testing import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    FakeScalekit,
    ScalekitKeys,
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def verify_jwt(fake: FakeScalekit, token: str, **options: Any) -> dict[str, Any]:
    """Verify ``token`` against the fake's published ``/keys`` with PyJWT."""
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in fake.keys.jwks()["keys"] if k["kid"] == kid)
    key = jwt.PyJWK.from_dict(jwk).key
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["RS256"], options={"verify_aud": False, **options}
    )
    return claims


def envelope_code(response: httpx.Response) -> tuple[int, str]:
    """(envelope ``code``, ``ErrorInfo.error_code``) of a REST error."""
    body = response.json()
    return body["code"], body["details"][0]["error_code"]


@dataclass
class PlainRP:
    """A minimal Scalekit client written with plain httpx."""

    fake: FakeScalekit
    http: httpx.AsyncClient
    verifier: str = field(default_factory=lambda: b64url(secrets.token_bytes(32)))
    nonce: str = "n-0S6_WzA2Mj"
    state: str = "st-af0ifjsldkj"
    management_token: str | None = None

    @property
    def challenge(self) -> str:
        return b64url(hashlib.sha256(self.verifier.encode()).digest())

    def authorize_url(self, **params: str | None) -> str:
        query = {
            "response_type": "code",
            "client_id": DEFAULT_CLIENT_ID,
            "redirect_uri": DEFAULT_REDIRECT_URI,
            "scope": "openid profile email offline_access",
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        } | params
        kept = {k: v for k, v in query.items() if v is not None}
        return f"{self.fake.issuer}/oauth/authorize?{httpx.QueryParams(kept)}"

    async def code(self, **params: str | None) -> str:
        callback = await self.fake.approve(self.authorize_url(**params))
        code = callback.get("code")
        assert code, callback
        return code

    async def token(self, **form: str | None) -> httpx.Response:
        data = {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET} | form
        kept = {k: v for k, v in data.items() if v is not None}
        return await self.http.post(f"{self.fake.issuer}/oauth/token", data=kept)

    async def exchange(self, code: str, **form: str | None) -> httpx.Response:
        defaults = {"redirect_uri": DEFAULT_REDIRECT_URI, "code_verifier": self.verifier}
        return await self.token(grant_type="authorization_code", code=code, **(defaults | form))

    async def tokens(self, **params: str | None) -> dict[str, Any]:
        response = await self.exchange(await self.code(**params))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def m2m(self) -> str:
        response = await self.token(grant_type="client_credentials")
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def send(self, email: str = "ada@example.com", **body: Any) -> httpx.Response:
        return await self.api(
            "POST", "/api/v1/passwordless/email/send", json={"email": email} | body
        )

    async def resend(self, auth_request_id: str) -> httpx.Response:
        return await self.api(
            "POST",
            "/api/v1/passwordless/email/resend",
            json={"auth_request_id": auth_request_id},
        )

    async def verify(self, **body: Any) -> httpx.Response:
        return await self.api("POST", "/api/v1/passwordless/email/verify", json=body)

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self.management_token is None:
            self.management_token = await self.m2m()
        bearer = {"Authorization": f"Bearer {self.management_token}"}
        headers = bearer | kwargs.pop("headers", {})
        return await self.http.request(
            method, f"{self.fake.issuer}{path}", headers=headers, **kwargs
        )


@pytest.fixture(scope="session")
def shared_key() -> RSAKey:
    """One RSA key for the whole session: RSA generation dominates the fake's start-up."""
    return RSAKey.generate_key(2048, parameters={"kid": "snk_000000000000000042"})


@pytest.fixture
def fake_scalekit(shared_key: RSAKey) -> FakeScalekit:
    """The plugin's fixture, with the session's key (rotation still generates new keys)."""
    return FakeScalekit(keys=ScalekitKeys(shared_key))


@pytest.fixture
def rp(fake_scalekit: FakeScalekit, fake_scalekit_http: httpx.AsyncClient) -> PlainRP:
    return PlainRP(fake_scalekit, fake_scalekit_http)
