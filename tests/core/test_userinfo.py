"""UserInfo: the access token goes only in the Bearer header, and an answer is used only when it
is the claims of the ID token's subject, as JSON or, when configured, as a verified JWT
(checklist rows 45–49)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from structlog.testing import capture_logs

from rpkit._client_auth import new_code_verifier, s256_challenge
from rpkit.config import ProviderConfig
from rpkit.discovery import DiscoveryCache, ProviderMetadata
from rpkit.errors import ConfigurationError, IDTokenValidationError, UserInfoError
from rpkit.testing import (
    ABSENT,
    DEFAULT_REDIRECT_URI,
    Canned,
    FakeClient,
    FakeOP,
    KeyRing,
    Tamper,
    TokenMinter,
)
from rpkit.tokens import TokenClient
from rpkit.userinfo import UserInfoClient

ALICE = "alice"


def config_for(op: FakeOP, **changes: Any) -> ProviderConfig:
    return op.provider_config(**changes)


async def access_token_for(
    op: FakeOP, http: httpx.AsyncClient, config: ProviderConfig, metadata: ProviderMetadata
) -> str:
    """Log Alice in (PKCE S256, state, nonce) and return her access token."""
    verifier = new_code_verifier()
    params = {
        "response_type": "code",
        "client_id": config.client_id,
        "redirect_uri": DEFAULT_REDIRECT_URI,
        "scope": " ".join(config.scopes),
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": s256_challenge(verifier),
        "code_challenge_method": "S256",
    }
    code = (await op.approve(f"{metadata.authorization_endpoint}?{urlencode(params)}")).get("code")
    assert code, "the fake OP issued no code"
    tokens = await TokenClient(http).exchange_code(
        config, metadata, code=code, redirect_uri=DEFAULT_REDIRECT_URI, code_verifier=verifier
    )
    return tokens.access_token


class Session:
    """A signed-in user's access token, and UserInfo fetches for it."""

    def __init__(self, op: FakeOP, http: httpx.AsyncClient, config: ProviderConfig) -> None:
        self.op = op
        self.http = http
        self.config = config
        self.client = UserInfoClient(http)
        self.access_token = ""
        self.metadata: ProviderMetadata | None = None
        self.verified: list[str] = []

    async def start(self) -> Session:
        self.metadata = await DiscoveryCache(self.http).get(self.config)
        self.access_token = await access_token_for(self.op, self.http, self.config, self.metadata)
        return self

    async def verify(self, token: str) -> Mapping[str, Any]:
        """A stand-in for the ID-token validator: signature, ``iss`` and ``aud``."""
        self.verified.append(token)
        keys = KeySet.import_key_set((await self.http.get(self.op.endpoints["jwks"])).json())
        try:
            claims = jwt.decode(token, keys, ["RS256"]).claims
        except JoseError as exc:
            raise IDTokenValidationError("signature", "bad signature") from exc
        if claims.get("iss") != self.op.issuer or claims.get("aud") != self.config.client_id:
            raise IDTokenValidationError("iss", "wrong iss or aud")
        return claims

    async def fetch(self, expected_sub: str = ALICE, **kwargs: Any) -> Mapping[str, Any]:
        assert self.metadata is not None
        return await self.client.fetch(
            self.config,
            self.metadata,
            access_token=self.access_token,
            expected_sub=expected_sub,
            **({"verify_jwt": self.verify} | kwargs),
        )


@pytest.fixture
async def session(fake_op: FakeOP, fake_op_http) -> Session:
    return await Session(fake_op, fake_op_http, config_for(fake_op)).start()


@pytest.fixture
async def signed_session(fake_op: FakeOP, fake_op_http) -> Session:
    fake_op.register_client(FakeClient(userinfo_signed_response_alg="RS256"))
    config = config_for(fake_op, userinfo_signed_response_alg="RS256")
    return await Session(fake_op, fake_op_http, config).start()


async def rejected(session: Session, reason: str, **kwargs: Any) -> UserInfoError:
    """Fetch, expecting a UserInfoError with ``reason`` after exactly one UserInfo request."""
    with capture_logs() as logs, pytest.raises(UserInfoError) as caught:
        await session.fetch(**kwargs)
    assert caught.value.reason == reason, caught.value.detail
    assert session.op.oracle.count("userinfo") == 1
    assert session.access_token not in repr(logs)
    assert session.access_token not in caught.value.detail
    return caught.value


# -- row 46: the honest exchange, Bearer header only ---------------------------------------
async def test_row_46_claims_are_fetched_with_the_bearer_header_only(
    fake_op: FakeOP, session: Session
):
    claims = await session.fetch()

    request = fake_op.oracle.last("userinfo")
    assert claims["sub"] == ALICE
    assert claims["email"] == "alice@example.com"
    assert request.method == "GET"
    assert request.headers["authorization"] == f"Bearer {session.access_token}"
    assert request.params("access_token") == []
    assert urlsplit(request.url).query == ""
    assert request.outcome == "ok"
    assert session.verified == []  # JSON needs no JWT verification


async def test_row_46_claims_are_read_only(session: Session):
    session.op.misbehave.userinfo_claims = {"address": lambda c: {"country": "Wonderland"}}

    claims = await session.fetch()

    with pytest.raises(TypeError):
        claims["sub"] = "bob"  # type: ignore[index]
    with pytest.raises(TypeError):
        claims["address"]["country"] = "Elsewhere"
    assert claims["address"]["country"] == "Wonderland"


async def test_userinfo_logs_no_token_and_no_claims(session: Session):
    with capture_logs() as logs:
        await session.fetch()

    assert logs
    assert session.access_token not in repr(logs)
    assert "alice@example.com" not in repr(logs)


# -- row 45 -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "edits",
    [
        pytest.param({"sub": lambda c: c["sub"] + "invalid"}, id="sub-plus-invalid"),
        pytest.param({"sub": "bob"}, id="another-user"),
        pytest.param({"sub": ABSENT}, id="sub-absent"),
        pytest.param({"sub": ["alice"]}, id="sub-array"),
    ],
)
async def test_row_45_userinfo_for_another_subject_is_rejected(session: Session, edits):
    session.op.misbehave.userinfo_claims = edits

    await rejected(session, "sub")


# -- row 47 -----------------------------------------------------------------------------------
async def test_row_47_a_401_is_unauthorized_and_names_the_bearer_error(session: Session):
    session.op.misbehave.respond = {"userinfo": Canned.bearer_error("invalid_token")}

    error = await rejected(session, "unauthorized")

    assert "invalid_token" in error.detail


async def test_row_47_a_revoked_access_token_is_unauthorized(session: Session):
    for grant in session.op.access_tokens.values():
        grant.revoked = True

    await rejected(session, "unauthorized")


@pytest.mark.parametrize(
    ("canned", "reason"),
    [
        pytest.param(Canned.html(), "not_json", id="200-html"),
        pytest.param(
            Canned(200, b'{"sub": "alice"', "application/json"), "not_json", id="bad-json"
        ),
        pytest.param(Canned(200, b'{"sub": "alice"}', None), "not_json", id="no-content-type"),
        pytest.param(Canned.json([{"sub": "alice"}]), "not_object", id="200-array"),
        pytest.param(Canned.json("alice"), "not_object", id="200-string"),
        pytest.param(Canned.error(500), "status", id="500"),
        pytest.param(Canned.json({"sub": "alice"}, status=403), "status", id="403-with-claims"),
        pytest.param(Canned.json({"sub": "alice"}, status=201), "status", id="201"),
    ],
)
async def test_row_47_an_answer_that_is_not_a_json_object_is_rejected(
    session: Session, canned, reason
):
    session.op.misbehave.respond = {"userinfo": canned}

    await rejected(session, reason)


async def test_a_redirect_is_not_followed_with_the_token(fake_op: FakeOP):
    follows = httpx.AsyncClient(transport=fake_op.transport(), follow_redirects=True)
    session = await Session(fake_op, follows, config_for(fake_op)).start()
    fake_op.misbehave.respond = {
        "userinfo": Canned(302, b"", None, {"Location": fake_op.endpoints["userinfo"]})
    }

    await rejected(session, "status")


async def test_a_userinfo_timeout_is_a_typed_error(fake_op: FakeOP):
    slow = httpx.AsyncClient(transport=fake_op.transport(), timeout=0.05)
    session = await Session(fake_op, slow, config_for(fake_op)).start()
    fake_op.misbehave.latency = {"userinfo": 1.0}

    error = await rejected(session, "network")

    assert isinstance(error.__cause__, httpx.ReadTimeout)


async def test_metadata_without_a_userinfo_endpoint_is_a_typed_error(fake_op: FakeOP, fake_op_http):
    fake_op.misbehave.metadata = {"userinfo_endpoint": ABSENT}
    session = await Session(fake_op, fake_op_http, config_for(fake_op)).start()

    with pytest.raises(UserInfoError) as caught:
        await session.fetch()

    assert caught.value.reason == "no_endpoint"
    assert fake_op.oracle.count("userinfo") == 0


# -- row 48 -----------------------------------------------------------------------------------
async def test_row_48_an_unexpected_jwt_is_rejected_without_verifying_it(session: Session):
    session.op.misbehave.userinfo_signed = True

    await rejected(session, "unexpected_jwt")

    assert session.verified == []


async def test_row_48_a_configured_signed_response_is_verified_then_used(signed_session: Session):
    claims = await signed_session.fetch()

    request = signed_session.op.oracle.last("userinfo")
    assert len(signed_session.verified) == 1
    assert claims["sub"] == ALICE
    assert claims["email"] == "alice@example.com"
    assert request.headers["accept"] == "application/jwt"


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"userinfo_tamper": Tamper.BAD_SIGNATURE}, id="bad-signature"),
        pytest.param({"userinfo_tamper": Tamper.UNKNOWN_KEY}, id="unknown-key"),
        pytest.param({"userinfo_claims": {"iss": lambda c: c["iss"] + "1"}}, id="iss-plus-1"),
        pytest.param({"userinfo_claims": {"aud": "other-client"}}, id="aud-other"),
        pytest.param({"userinfo_claims": {"aud": ABSENT}}, id="aud-absent"),
    ],
)
async def test_row_48_a_signed_response_that_fails_verification_is_rejected(
    signed_session: Session, knobs
):
    with signed_session.op.misbehaving(**knobs):
        error = await rejected(signed_session, "jwt")

    assert isinstance(error.__cause__, IDTokenValidationError)
    assert len(signed_session.verified) == 1


async def test_row_48_a_verified_jwt_for_another_subject_is_rejected(signed_session: Session):
    signed_session.op.misbehave.userinfo_claims = {"sub": "bob"}

    await rejected(signed_session, "sub")

    assert len(signed_session.verified) == 1


async def test_row_48_json_when_a_signed_response_is_configured_is_rejected(
    signed_session: Session,
):
    signed_session.op.register_client(FakeClient())  # the OP forgets the registration

    await rejected(signed_session, "not_jwt")

    assert signed_session.verified == []


async def test_row_48_a_verifier_returning_no_object_is_rejected(signed_session: Session):
    async def verify(token: str) -> Any:
        return ["not", "claims"]

    await rejected(signed_session, "not_object", verify_jwt=verify)


async def test_row_48_signed_userinfo_without_a_verifier_is_a_configuration_error(
    signed_session: Session,
):
    with pytest.raises(ConfigurationError, match="verify_jwt"):
        await signed_session.fetch(verify_jwt=None)

    assert signed_session.op.oracle.count("userinfo") == 0


# -- row 49 -----------------------------------------------------------------------------------
async def test_row_49_aggregated_and_distributed_claims_are_dropped(session: Session):
    provider = TokenMinter("https://claims.example", KeyRing())
    aggregated = provider.sign({"iss": provider.issuer, "address": {"country": "Wonderland"}})
    session.op.misbehave.userinfo_claims = {
        "_claim_names": {"address": "src1", "credit_score": "src2"},
        "_claim_sources": {
            "src1": {"JWT": aggregated},
            "src2": {"endpoint": "https://claims.example/score", "access_token": "ksj3n283dke"},
        },
    }

    claims = await session.fetch()

    assert "_claim_names" not in claims
    assert "_claim_sources" not in claims
    assert "address" not in claims
    assert claims["email"] == "alice@example.com"
    assert session.op.oracle.count(None) == 4  # discovery, authorize, token, userinfo only
