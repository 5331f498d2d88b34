"""The fake OP's discovery knobs produce each artefact of checklist group D (rows 1–5), as seen
on the wire by a plain httpx client; and the knob plumbing (``misbehaving``) behaves."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from rpkit.testing import ABSENT, DEFAULT_ISSUER, Canned, FakeOP

DISCOVERY = "/.well-known/openid-configuration"
ENDPOINT_MEMBERS = {
    "authorize": "authorization_endpoint",
    "token": "token_endpoint",
    "userinfo": "userinfo_endpoint",
    "jwks": "jwks_uri",
    "end_session": "end_session_endpoint",
}


async def fetch_metadata(http: httpx.AsyncClient, issuer: str = DEFAULT_ISSUER) -> dict:
    response = await http.get(issuer + DISCOVERY)
    assert response.status_code == 200, response.text
    document: dict = response.json()
    return document


def normalised(url: str) -> str:
    """The URL normalisation an over-lenient RP would apply (what row 3 must not do)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = "" if parts.port in (None, 443) else f":{parts.port}"
    return f"{parts.scheme.lower()}://{host}{port}{unquote(parts.path).rstrip('/')}"


# -- row 1: discovery is the only fixed path -------------------------------------------------
def test_row_01_random_paths_put_a_fresh_random_segment_in_every_endpoint():
    plain, first, second = FakeOP(), FakeOP(random_paths=True), FakeOP(random_paths=True)

    for name in ENDPOINT_MEMBERS:
        path = urlsplit(first.endpoints[name]).path
        assert path != urlsplit(plain.endpoints[name]).path
        assert path.endswith(f"/{name}")
        assert len(path.strip("/").split("/")) == 2, path
        assert first.endpoints[name] != second.endpoints[name]
    assert first.endpoints["discovery"] == f"{DEFAULT_ISSUER}{DISCOVERY}"
    assert first.endpoints["discovery"] == second.endpoints["discovery"]


async def test_row_01_discovery_advertises_the_random_endpoints_and_guessed_paths_are_404():
    op = FakeOP(random_paths=True)
    http = httpx.AsyncClient(transport=op.transport())

    metadata = await fetch_metadata(http)
    jwks = await http.get(metadata["jwks_uri"])
    guessed = await http.get(f"{DEFAULT_ISSUER}/jwks")

    assert {metadata[member] for member in ENDPOINT_MEMBERS.values()} == {
        op.endpoints[name] for name in ENDPOINT_MEMBERS
    }
    assert jwks.status_code == 200
    assert jwks.json()["keys"]
    assert guessed.status_code == 404
    assert [(r.endpoint, r.outcome) for r in op.oracle] == [
        ("discovery", "ok"),
        ("jwks", "ok"),
        (None, "not_found"),
    ]


# -- row 2: the metadata issuer differs from the configured one --------------------------------
@pytest.mark.parametrize(
    "wrong_issuer",
    [DEFAULT_ISSUER + "INVALID", "https://example.com"],
    ids=["suite_appends_INVALID", "legacy_other_host"],
)
async def test_row_02_metadata_issuer_can_differ_from_the_configured_one(
    fake_op: FakeOP, fake_op_http, wrong_issuer
):
    fake_op.misbehave.metadata = {"issuer": wrong_issuer}

    metadata = await fetch_metadata(fake_op_http)

    assert metadata["issuer"] == wrong_issuer != fake_op.issuer
    assert metadata["authorization_endpoint"] == fake_op.endpoints["authorize"]


# -- row 3: the metadata issuer differs only by what URL normalisation would hide --------------
NEAR_MISSES: dict[str, Callable[[dict], str]] = {
    "trailing_slash": lambda m: m["issuer"] + "/",
    "host_letter_case": lambda m: m["issuer"].replace("op.rpkit.test", "OP.RPKIT.test"),
    "explicit_default_port": lambda m: m["issuer"].replace(".test/", ".test:443/", 1),
    "percent_encoding": lambda m: m["issuer"].replace("acme", "%61cme"),
}


@pytest.mark.parametrize("variant", list(NEAR_MISSES), ids=list(NEAR_MISSES))
async def test_row_03_metadata_issuer_can_differ_only_by_url_normalisation(variant):
    op = FakeOP("https://op.rpkit.test/tenants/acme")
    op.misbehave.metadata = {"issuer": NEAR_MISSES[variant]}
    http = httpx.AsyncClient(transport=op.transport())

    metadata = await fetch_metadata(http, op.issuer)

    assert metadata["issuer"] != op.issuer
    assert normalised(metadata["issuer"]) == normalised(op.issuer)


# -- row 4: discovery fails, or serves an unusable document -----------------------------------
@pytest.mark.parametrize(
    ("canned", "status", "content_type"),
    [
        (Canned.error(500), 500, "text/plain"),
        (Canned.html(), 200, "text/html; charset=utf-8"),
    ],
    ids=["http_500", "html_200"],
)
async def test_row_04_discovery_can_answer_with_an_error_or_non_json(
    fake_op: FakeOP, fake_op_http, canned, status, content_type
):
    fake_op.misbehave.respond = {"discovery": canned}

    response = await fake_op_http.get(fake_op.endpoints["discovery"])

    assert response.status_code == status
    assert response.headers["content-type"] == content_type
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert fake_op.oracle.last("discovery").outcome == f"canned {status}"


@pytest.mark.parametrize(
    "member",
    [
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "id_token_signing_alg_values_supported",
    ],
)
async def test_row_04_metadata_can_lack_a_required_member(fake_op: FakeOP, fake_op_http, member):
    honest = fake_op.metadata()
    fake_op.misbehave.metadata = {member: ABSENT}

    metadata = await fetch_metadata(fake_op_http)

    assert member in honest
    assert set(honest) - set(metadata) == {member}


async def test_row_04_metadata_can_advertise_http_endpoints(fake_op: FakeOP, fake_op_http):
    fake_op.misbehave.http_endpoints = True

    metadata = await fetch_metadata(fake_op_http)

    for name, member in ENDPOINT_MEMBERS.items():
        assert metadata[member] == fake_op.endpoints[name].replace("https://", "http://", 1)
    assert metadata["issuer"] == fake_op.issuer
    assert fake_op.issuer.startswith("https://")


# -- row 5: PKCE support is not advertised ----------------------------------------------------
@pytest.mark.parametrize(
    ("edit", "advertised"),
    [(ABSENT, None), (["plain"], ["plain"])],
    ids=["member_absent", "plain_only"],
)
async def test_row_05_pkce_methods_can_be_unadvertised_while_s256_still_works(
    fake_op: FakeOP, fake_op_http, rp, edit, advertised
):
    fake_op.misbehave.metadata = {"code_challenge_methods_supported": edit}

    metadata = await fetch_metadata(fake_op_http)
    tokens = await rp.tokens()

    assert metadata.get("code_challenge_methods_supported") == advertised
    assert fake_op.oracle.last("authorize").param("code_challenge_method") == "S256"
    assert tokens["id_token"]


# -- knob plumbing ------------------------------------------------------------------------------
async def test_misbehaving_sets_knobs_for_the_block_then_restores_them(
    fake_op: FakeOP, fake_op_http
):
    fake_op.misbehave.http_endpoints = True

    with fake_op.misbehaving(metadata={"issuer": "https://other.example"}) as knobs:
        inside = await fetch_metadata(fake_op_http)
        assert knobs is fake_op.misbehave
    after = await fetch_metadata(fake_op_http)

    assert inside["issuer"] == "https://other.example"
    assert inside["token_endpoint"].startswith("http://")
    assert after["issuer"] == fake_op.issuer
    assert after["token_endpoint"].startswith("http://")
    assert fake_op.misbehave.metadata == {}


def test_misbehaving_restores_knobs_when_the_block_raises(fake_op: FakeOP):
    inside = []

    def fail_inside_the_block() -> None:
        with fake_op.misbehaving(callback_state="missing"):
            inside.append(fake_op.misbehave.callback_state)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_inside_the_block()

    assert inside == ["missing"]
    assert fake_op.misbehave.callback_state == "echo"


def test_misbehaving_does_not_leak_edits_made_to_knob_dicts_inside_the_block(fake_op: FakeOP):
    fake_op.misbehave.token_fields = {"scope": "openid"}

    with fake_op.misbehaving():
        fake_op.misbehave.metadata["issuer"] = "https://other.example"
        fake_op.misbehave.token_fields["expires_in"] = ABSENT
        fake_op.misbehave.respond["jwks"] = Canned.error()

    assert fake_op.misbehave.metadata == {}
    assert fake_op.misbehave.token_fields == {"scope": "openid"}
    assert fake_op.misbehave.respond == {}
    assert fake_op.metadata()["issuer"] == fake_op.issuer


def test_misbehaving_rejects_an_unknown_knob_and_changes_nothing(fake_op: FakeOP):
    before = fake_op.misbehave

    with pytest.raises(TypeError, match="no_such_knob"), fake_op.misbehaving(no_such_knob=True):
        pytest.fail("the block must not run")

    assert fake_op.misbehave is before
    assert "no_such_knob" not in fake_op.knob_names()
