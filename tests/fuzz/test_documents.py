"""The OP's documents against anything it could serve: a JWKS of any shape gives a public key that
fits the algorithm and ``kid`` or a :class:`JWKSError`; a discovery document of any shape gives
metadata that passed every check or a :class:`DiscoveryError`. Both are served by an httpx
``MockTransport`` with any status and ``Cache-Control``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from rpkit.discovery import ProviderMetadata, fetch_metadata
from rpkit.errors import DiscoveryError, JWKSError, RPKitError
from rpkit.jwks import KEY_TYPES, JWKSCache
from rpkit.testing import ABSENT, FakeOP
from rpkit.testing.knobs import apply_edits
from tests.fuzz._budget import fuzz
from tests.fuzz.strategies import DEEP, HUGE, json_bytes, json_values

JWKS_URI = "https://op.rpkit.test/jwks"
PRIVATE = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
T = TypeVar("T")


@pytest.fixture(scope="module")
def op() -> FakeOP:
    return FakeOP()


def served(status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> httpx.AsyncClient:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


async def outcome(call: Awaitable[T], error: type[RPKitError]) -> T | RPKitError:
    """What ``call`` returned, or the ``error`` it raised (anything else escapes)."""
    try:
        return await call
    except error as exc:
        return exc


statuses = st.sampled_from([*[200] * 8, 203, 301, 304, 404, 500])
cache_controls = st.one_of(
    st.none(),
    st.sampled_from(["no-store", "no-cache, max-age=60", "max-age=0", 'max-age="30"', "private"]),
    st.sampled_from(["max-age=\u00b2", "max-age=9999999999", "max-age=" + "9" * 5000]),
    st.builds("max-age={}".format, st.one_of(st.integers(-100, 10**12), st.sampled_from(HUGE))),
    st.text(alphabet=st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=30),
)


def header_list(cache_control: str | None, content_type: str) -> list[tuple[bytes, bytes]]:
    headers = [(b"Content-Type", content_type.encode())]
    if cache_control is not None:
        headers.append((b"Cache-Control", cache_control.encode("latin-1")))
    return headers


# -- JWKS -------------------------------------------------------------------------------------

JWK_MEMBERS = ("kty", "crv", "kid", "use", "alg", "key_ops", "n", "e", "x", "y", *PRIVATE)
member_values = st.one_of(
    json_values,
    st.just(ABSENT),
    st.sampled_from(
        ["RSA", "EC", "OKP", "oct", "P-256", "Ed25519", "sig", "enc", ["verify"], ["sign"], "AQAB"]
    ),
    st.sampled_from(["RS256", "PS256", "ES256", "EdDSA", "HS256", "none", "", "AAAA"]),
)


@dataclass(frozen=True)
class KeySet:
    """A JWKS made from the OP's published keys: member edits on some (by index), some dropped,
    some repeated, raw extra entries; or ``raw`` bytes instead of a document."""

    edits: Mapping[int, Mapping[str, Any]]
    dropped: frozenset[int]
    repeated: tuple[int, ...]
    extra: tuple[Any, ...]
    raw: bytes | None

    def body(self, published: list[dict[str, Any]]) -> bytes:
        if self.raw is not None:
            return self.raw
        order = [i for i in range(len(published)) if i not in self.dropped]
        order += [i % len(published) for i in self.repeated]
        keys = [apply_edits(published[i], self.edits.get(i, {})) for i in order]
        return json.dumps({"keys": keys + list(self.extra)}).encode()


indexes = st.integers(0, 3)
key_sets = st.builds(
    KeySet,
    st.dictionaries(
        indexes, st.dictionaries(st.sampled_from(JWK_MEMBERS), member_values, max_size=3)
    ),
    st.frozensets(indexes, max_size=2),
    st.lists(indexes, max_size=2).map(tuple),
    st.lists(json_values, max_size=2).map(tuple),
    st.one_of(*[st.none()] * 5, json_bytes),
)
PUBLISHED_ALGS = ("RS256", "PS256", "ES256", "EdDSA")


def fits(jwk: Any, key: Any, kid: str | None, alg: str) -> bool:
    """``jwk`` is a published public entry that may verify ``alg`` for ``kid``, and ``key`` is
    it."""
    if not isinstance(jwk, dict) or PRIVATE_SET & jwk.keys():
        return False
    kty, curves = KEY_TYPES[alg]
    public = key.as_dict(private=False)
    return (
        jwk.get("kty") == kty
        and (curves is None or jwk.get("crv") in curves)
        and (kid is None or jwk.get("kid") == kid)
        and jwk.get("use", "sig") == "sig"
        and jwk.get("alg", alg) == alg
        and "verify" in jwk.get("key_ops", ["verify"])
        and all(jwk.get(name) == public[name] for name in ("n", "e", "x", "y") if name in public)
    )


PRIVATE_SET = frozenset(PRIVATE)


@given(
    key_set=key_sets,
    status=statuses,
    cache_control=cache_controls,
    alg=st.one_of(st.sampled_from(PUBLISHED_ALGS), st.sampled_from(sorted(KEY_TYPES))),
    kid=st.one_of(st.sampled_from([None, "published", "published", "unknown"]), json_values),
)
@fuzz(250)
async def test_a_jwks_of_any_shape_gives_a_fitting_public_key_or_a_jwks_error(
    op: FakeOP, *, key_set: KeySet, status: int, cache_control: str | None, alg: str, kid: Any
):
    published = op.keys.jwks()["keys"]
    body = key_set.body(published)
    if kid == "published":
        kid = next((k["kid"] for k in published if k.get("alg") == alg), "none-for-this-alg")
    header = {} if kid is None else {"kid": kid}

    async with served(status, body, header_list(cache_control, "application/json")) as http:
        key = await outcome(JWKSCache(http).key_for(JWKS_URI, header, alg), JWKSError)

    event(f"JWKS: {type(key).__name__}")
    if isinstance(key, JWKSError):
        assert key.detail
        return
    assert status == 200
    assert not key.is_private
    assert key.key_type == KEY_TYPES[alg][0]
    document = json.loads(body)
    assert any(fits(jwk, key, kid, alg) for jwk in document["keys"]), (document, kid, alg)


# -- discovery ----------------------------------------------------------------------------------

URL_MEMBERS = (
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "end_session_endpoint",
    "registration_endpoint",
    "revocation_endpoint",
)
METADATA_MEMBERS = (
    "issuer",
    *URL_MEMBERS,
    "response_types_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
    "scopes_supported",
    "response_modes_supported",
    "grant_types_supported",
    "code_challenge_methods_supported",
    "token_endpoint_auth_methods_supported",
    "claims_supported",
    "authorization_response_iss_parameter_supported",
    "backchannel_logout_supported",
    "raw",
)
urls = st.builds(
    "{}{}{}".format,
    st.sampled_from(["https://", "http://", "", "ftp://", "https:", "//", "HTTPS://"]),
    st.one_of(
        st.sampled_from(["op.rpkit.test", "127.0.0.1:8080", "localhost", "[::1]", "", "a b"]),
        st.sampled_from(["[op.rpkit.test", "op.rpkit.test]", "[::1", "[::1]:99999"]),
        st.text(max_size=12),
    ),
    st.one_of(st.sampled_from(["", "/token", "/?x=1", "#frag"]), st.text(max_size=12)),
)
metadata_values = st.one_of(
    json_values,
    st.just(ABSENT),
    urls,
    st.sampled_from(
        [
            "https://op.rpkit.test",
            "https://op.rpkit.test/",
            ["code"],
            ["id_token"],
            "code",
            ["public"],
            ["RS256"],
            [],
            True,
            "true",
            DEEP,
        ]
    ),
)


@dataclass(frozen=True)
class Document:
    """The OP's honest metadata with member edits, or ``raw`` bytes instead."""

    edits: Mapping[str, Any]
    raw: bytes | None

    def body(self, honest: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        if self.raw is not None:
            return self.raw, {}
        document = apply_edits(honest, self.edits)
        return json.dumps(document).encode(), document


metadata_names = st.one_of(st.sampled_from(METADATA_MEMBERS), st.text(max_size=10))
documents = st.builds(
    Document,
    st.one_of(
        st.dictionaries(metadata_names, metadata_values, max_size=1),
        st.dictionaries(metadata_names, metadata_values, max_size=4),
    ),
    st.one_of(*[st.none()] * 5, json_bytes),
)


def is_https(url: str | None) -> bool:
    return url is None or (urlsplit(url).scheme == "https" and bool(urlsplit(url).hostname))


@given(document=documents, status=statuses)
@fuzz(250)
async def test_a_discovery_document_of_any_shape_is_validated_or_refused(
    op: FakeOP, document: Document, status: int
):
    body, edited = document.body(op.metadata())
    config = op.provider_config()

    async with served(status, body, header_list(None, "application/json")) as http:
        metadata = await outcome(fetch_metadata(http, config), DiscoveryError)

    event(f"discovery: {type(metadata).__name__}")
    if isinstance(metadata, DiscoveryError):
        assert metadata.detail
        return
    assert status == 200
    assert isinstance(metadata, ProviderMetadata)
    assert metadata.issuer == config.issuer
    assert "code" in metadata.response_types_supported
    for name in URL_MEMBERS:
        assert is_https(getattr(metadata, name, None)), (name, edited)
    for name, value in metadata.raw.items():
        if name.endswith("_endpoint") and isinstance(value, str):
            assert is_https(value), (name, value)
