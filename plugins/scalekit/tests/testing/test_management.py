"""The fake Scalekit's management API: Bearer M2M authentication on /api/v1/**, the error
envelope, and connections by domain or organization."""

from __future__ import annotations

import pytest

from rpkit_scalekit.testing import Connection

from .conftest import envelope_code

ACME_ORG = "org_300000000000000001"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/connections",
        "/api/v1/passwordless/email/send",
        "/api/v1/organizations/x/domains",
        "/api/v1/users",
    ],
)
async def test_every_api_path_needs_a_bearer(fake_scalekit, fake_scalekit_http, path):
    response = await fake_scalekit_http.post(f"{fake_scalekit.issuer}{path}", json={})

    body = response.json()
    assert response.status_code == 401
    assert body["code"] == 16
    assert body["message"] == "Token empty"
    assert body["details"][0]["@type"] == "type.googleapis.com/scalekit.v1.errdetails.ErrorInfo"
    assert body["details"][0]["error_code"] == "UNAUTHENTICATED"
    assert fake_scalekit.recording.last(fake_scalekit.endpoint_for(path)).status == 401


async def test_foreign_or_user_tokens_are_refused(rp):
    user_token = (await rp.tokens())["access_token"]

    for token in ("not-a-jwt", user_token):
        response = await rp.http.get(
            f"{rp.fake.issuer}/api/v1/connections", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401
        assert response.json()["message"] == "Invalid token"


async def test_expired_m2m_token_is_401_so_lazy_refresh_can_be_tested(rp):
    token = await rp.m2m()
    headers = {"Authorization": f"Bearer {token}"}
    ok = await rp.http.get(f"{rp.fake.issuer}/api/v1/connections", headers=headers)

    rp.fake.advance(86399)
    expired = await rp.http.get(f"{rp.fake.issuer}/api/v1/connections", headers=headers)

    assert ok.status_code == 200
    assert expired.status_code == 401
    assert expired.json()["message"] == "Token expired"


async def test_expire_m2m_tokens_knob_and_key_drop_invalidate_tokens(rp):
    first = await rp.m2m()
    rp.fake.expire_m2m_tokens()
    revoked = await rp.http.get(
        f"{rp.fake.issuer}/api/v1/connections", headers={"Authorization": f"Bearer {first}"}
    )
    second = await rp.m2m()
    rp.fake.rotate_keys(keep_previous=False)
    unknown_key = await rp.http.get(
        f"{rp.fake.issuer}/api/v1/connections", headers={"Authorization": f"Bearer {second}"}
    )

    assert revoked.status_code == unknown_key.status_code == 401


async def test_sdk_headers_are_recorded_not_required(rp):
    without = await rp.api("GET", "/api/v1/connections")
    with_headers = await rp.api(
        "GET",
        "/api/v1/connections",
        headers={"x-api-version": "20261012", "X-SDK-Version": "Scalekit-Python/2.21.0"},
    )

    call = rp.fake.recording.last("connections")
    assert without.status_code == with_headers.status_code == 200
    assert call.header("x-api-version") == "20261012"
    assert ("X-SDK-Version", "Scalekit-Python/2.21.0") in call.headers


async def test_connections_by_domain_are_case_insensitive_and_active_only(rp):
    acme = (await rp.api("GET", "/api/v1/connections", params={"domain": "ACME.Test"})).json()
    globex = (await rp.api("GET", "/api/v1/connections", params={"domain": "globex.test"})).json()
    globex_all = (
        await rp.api(
            "GET", "/api/v1/connections", params={"domain": "globex.test", "include": "all"}
        )
    ).json()
    nobody = (await rp.api("GET", "/api/v1/connections", params={"domain": "nobody.test"})).json()

    row = acme["connections"][0]
    assert [c["id"] for c in acme["connections"]] == ["conn_200000000000000001"]
    assert row["provider"] == "OKTA"
    assert row["type"] == "OIDC"
    assert row["status"] == "COMPLETED"
    assert row["enabled"] is True
    assert row["organization_id"] == ACME_ORG
    assert row["domains"] == ["acme.test"]
    assert row["created_at"].endswith("Z")
    assert globex == {"connections": []}
    assert globex_all["connections"][0]["status"] == "IN_PROGRESS"
    assert nobody == {"connections": []}


async def test_connections_by_organization_and_both_filters(rp):
    rp.fake.add_connection(Connection("conn_x", "GOOGLE", "OIDC", ACME_ORG, "Acme", ("acme.io",)))

    by_org = (
        await rp.api("GET", "/api/v1/connections", params={"organization_id": ACME_ORG})
    ).json()
    both = (
        await rp.api(
            "GET", "/api/v1/connections", params={"organization_id": ACME_ORG, "domain": "acme.io"}
        )
    ).json()

    assert [c["id"] for c in by_org["connections"]] == ["conn_200000000000000001", "conn_x"]
    assert [c["id"] for c in both["connections"]] == ["conn_x"]


async def test_camel_case_answer(rp):
    rp.fake.answers.response_case = "camel"

    body = (await rp.api("GET", "/api/v1/connections", params={"domain": "acme.test"})).json()

    assert body["connections"][0]["organizationId"] == ACME_ORG


async def test_organization_domains(rp):
    found = await rp.api("GET", f"/api/v1/organizations/{ACME_ORG}/domains")
    missing = await rp.api("GET", "/api/v1/organizations/org_nope/domains")

    assert [d["domain"] for d in found.json()["domains"]] == ["acme.test"]
    assert found.json()["domains"][0]["id"].startswith("dom_")
    assert missing.status_code == 404
    assert envelope_code(missing) == (5, "NOT_FOUND")


async def test_unknown_api_path_is_404_after_auth_and_wrong_method_405(rp):
    unknown = await rp.api("GET", "/api/v1/users")
    wrong_method = await rp.api("POST", "/api/v1/connections", json={})

    assert unknown.status_code == 404
    assert wrong_method.status_code == 405
    assert rp.fake.recording.last("api_other").outcome.startswith("404")


async def test_canned_response_knob_answers_any_shape(rp):
    from rpkit.testing import Canned

    rp.fake.knobs.respond["connections"] = Canned.html("<h1>gateway</h1>", status=502)

    response = await rp.api("GET", "/api/v1/connections")

    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert rp.fake.recording.last("connections").outcome == "canned 502"
