"""rpkit's Litestar app against panva's oidc-provider, an OpenID-certified provider, with a real
browser on the provider's own login, consent and logout pages.

The provider's issuer is ``http://127.0.0.1:<port>``; the browser reaches the app as
``http://localhost:<port>`` (served on 127.0.0.1), so provider and app are different sites, as in
production: the form_post callback is a cross-site POST. Chromium treats both loopback origins as
potentially trustworthy, so the app runs with its production cookies (``__Host-``, ``Secure``);
``insecure_cookies_for_development`` stays off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.interop.harness import (
    BASIC_SECRET,
    LOGOUT_RETURN_TO,
    OidcProvider,
    Registration,
    RunningApp,
    bind_app,
    free_port,
    lines,
)
from tests.interop.pages import SignIn, Visit, confirm_logout_at_op, query_of, sign_in

pytestmark = pytest.mark.interop

OpenVisit = Callable[[str], Visit]
SESSION = "__Host-rpkit_session"
TXN = "__Host-rpkit_txn"
REFRESH_AT_TTL = 30
"""Access-token lifetime for the refresh client: under rpkit's ``refresh_before`` (60 s), so
every page view of that session refreshes."""

KEY_TYPE = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}
REGISTRATIONS = (
    Registration("query"),
    Registration("iss"),
    Registration("cookies"),
    Registration("formpost", response_mode="form_post"),
    Registration("basic", client_secret=BASIC_SECRET),
    Registration("post", client_auth="client_secret_post"),
    Registration.with_private_key_jwt("pkjwt"),
    Registration("rs256", alg="RS256"),
    Registration("ps256", alg="PS256"),
    Registration("es256", alg="ES256"),
    Registration("eddsa", alg="EdDSA"),
    Registration("refresh", scopes=("openid", "profile", "email", "offline_access")),
    Registration("logout"),
    Registration("bcl"),
)
LAX_FORM_POST = Registration("formpost-lax", response_mode="form_post")
"""Served by a second app whose transaction cookie is forced to SameSite=Lax."""


@dataclass
class Interop:
    op: OidcProvider
    app: RunningApp
    lax_app: RunningApp

    @property
    def issuer(self) -> str:
        return self.op.issuer

    def sign_in(self, visit: Visit, provider_id: str, **params: str) -> SignIn:
        return sign_in(visit, self.app.origin, provider_id, self.issuer, **params)

    def token_requests(self, client_id: str) -> list[dict[str, Any]]:
        """The provider's record of the token requests ``client_id`` made."""
        found = self.op.requests("/token", method="POST", client=client_id)
        assert found, f"no token request of {client_id}: {list(lines(self.op.records))}"
        return found


@pytest.fixture(scope="module")
def interop(
    oidc_provider_version: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Interop]:
    workdir = tmp_path_factory.mktemp("oidc-provider")
    main, lax = bind_app("localhost"), bind_app("localhost")
    clients = [r.op_client(main.urls) for r in REGISTRATIONS] + [LAX_FORM_POST.op_client(lax.urls)]
    op = OidcProvider(
        free_port(),
        clients,
        workdir,
        access_token_ttl={"rp-refresh": REFRESH_AT_TTL},
        strip_iss_for=("rp-iss",),
    )
    started: list[RunningApp] = []
    try:
        op.start()
        started.append(main.start(op.issuer, REGISTRATIONS))
        started.append(lax.start(op.issuer, [LAX_FORM_POST], transaction_samesite="lax"))
        yield Interop(op, *started)
    finally:
        for app in started:
            app.stop()
        for pending in (main, lax)[len(started) :]:
            pending.close()
        op.stop()


def assert_signed_in_as(profile: dict[str, object], subject: str, provider: str, issuer: str):
    assert profile["subject"] == subject
    assert profile["provider"] == provider
    assert profile["issuer"] == issuer
    claims = profile["claims"]
    assert isinstance(claims, dict)
    # From UserInfo, which only a valid access token reaches: the ID token of the code flow
    # carries no scope claims at oidc-provider.
    assert claims["email"] == f"{subject}@interop.example"
    assert claims["name"] == f"Interop {subject}"


# -- code flow, PKCE, response modes, RFC 9207 ----------------------------------------------
@pytest.mark.checklist(6)
def test_code_flow_with_pkce_and_query_response_signs_the_user_in(
    interop: Interop, open_visit: OpenVisit
):
    visit = open_visit("query")

    login = interop.sign_in(visit, "query", login="alice")

    assert login.landed == f"{interop.app.origin}/profile"
    assert_signed_in_as(visit.profile(interop.app.origin), "alice", "query", interop.issuer)
    asked = login.authorization_params
    assert asked["response_type"] == ["code"]
    assert asked["code_challenge_method"] == ["S256"]
    assert len(asked["code_challenge"][0]) == 43
    assert "response_mode" not in asked
    assert login.callback.method == "GET"
    assert set(login.callback_params) == {"code", "state", "iss"}
    assert login.callback_params["iss"] == [interop.issuer]  # RFC 9207
    assert login.callback_params["state"] == asked["state"]
    (exchange,) = interop.token_requests("rp-query")
    assert exchange["status"] == 200
    assert "code_verifier" in exchange["body"]  # and oidc-provider requires PKCE of every client


@pytest.mark.checklist(10)
def test_callback_without_the_iss_the_provider_advertises_is_refused(
    interop: Interop, open_visit: OpenVisit
):
    """oidc-provider advertises RFC 9207, so rpkit must refuse a callback whose ``iss`` was
    stripped on the way (here by a filter in front of the provider) and never redeem its code."""
    metadata = httpx.get(f"{interop.issuer}/.well-known/openid-configuration").json()
    visit = open_visit("iss-stripped")

    login = sign_in(visit, interop.app.origin, "iss", interop.issuer, expect_profile=False)

    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert interop.op.events("tampered", client="rp-iss", removed="iss")
    assert set(login.callback_params) == {"code", "state"}
    assert "response_issuer_mismatch" in (visit.page.text_content("body") or "")
    assert login.callback.response().status == 400  # type: ignore[union-attr]
    assert not interop.op.requests("/token", client="rp-iss")
    assert visit.cookie(SESSION) is None


def test_query_login_uses_a_lax_host_only_secure_transaction_cookie(
    interop: Interop, open_visit: OpenVisit
):
    visit = open_visit("cookies")

    interop.sign_in(visit, "cookies", login="carol")

    started = visit.set_cookie_headers(f"{interop.app.origin}/auth/login/cookies")
    assert len(started) == 1
    assert started[0].startswith(f"{TXN}=")
    assert {"Secure", "HttpOnly", "Path=/", "SameSite=lax"} <= set(started[0].split("; "))
    session = visit.cookie(SESSION)
    assert session is not None
    assert (session["secure"], session["httpOnly"], session["sameSite"]) == (True, True, "Lax")
    assert session["domain"] == "localhost"
    assert visit.cookie(TXN) is None  # the callback deleted it
    assert visit.profile(interop.app.origin)["subject"] == "carol"


def test_form_post_delivers_code_and_iss_in_a_cross_site_post(
    interop: Interop, open_visit: OpenVisit
):
    visit = open_visit("form-post")

    login = interop.sign_in(visit, "formpost", login="dave")

    assert login.authorization_params["response_mode"] == ["form_post"]
    assert login.callback.method == "POST"
    assert login.callback.url == f"{interop.app.origin}/auth/callback/formpost"
    assert set(login.callback_params) == {"code", "state", "iss"}
    assert login.callback_params["iss"] == [interop.issuer]
    started = visit.set_cookie_headers(f"{interop.app.origin}/auth/login/formpost")
    assert {"Secure", "SameSite=none"} <= set(started[0].split("; "))
    assert interop.op.events(
        "authorization.success", client="rp-formpost", response_mode="form_post"
    )
    assert ("POST", "/auth/callback/formpost") in interop.app.requests
    assert_signed_in_as(visit.profile(interop.app.origin), "dave", "formpost", interop.issuer)
    assert visit.cookie(TXN) is None


def test_form_post_with_a_lax_transaction_cookie_fails_because_the_post_is_cross_site(
    interop: Interop, open_visit: OpenVisit
):
    """The control for the test above: this setup really is cross-site, so the browser keeps a
    Lax transaction cookie to itself and rpkit refuses the callback it cannot bind."""
    visit = open_visit("form-post-lax")
    origin = interop.lax_app.origin

    login = sign_in(visit, origin, "formpost-lax", interop.issuer, expect_profile=False)

    assert login.landed == f"{origin}/auth/callback/formpost-lax"
    assert "invalid_state" in (visit.page.text_content("body") or "")
    assert login.callback.method == "POST"
    assert TXN not in (login.callback.all_headers().get("cookie") or "")
    response = login.callback.response()
    assert response is not None
    assert response.status == 400
    assert not interop.op.requests("/token", client="rp-formpost-lax")
    assert visit.cookie(SESSION) is None
    assert visit.profile(origin) == {"subject": None}


# -- client authentication --------------------------------------------------------------------
@pytest.mark.checklist(16)
def test_client_secret_basic_with_colon_plus_percent_slash_and_space_in_the_secret(
    interop: Interop, open_visit: OpenVisit
):
    visit = open_visit("basic")

    interop.sign_in(visit, "basic", login="frank")

    assert_signed_in_as(visit.profile(interop.app.origin), "frank", "basic", interop.issuer)
    grant = interop.op.events("grant.success", client="rp-basic")[-1]
    assert grant["client_auth"] == "client_secret_basic"
    for sent in interop.token_requests("rp-basic"):
        assert sent["status"] == 200
        assert sent["authorization"] == "Basic"
        assert "client_secret" not in sent["body"]


@pytest.mark.checklist(16)
def test_client_secret_post_authenticates_the_code_exchange(
    interop: Interop, open_visit: OpenVisit
):
    visit = open_visit("post")

    interop.sign_in(visit, "post", login="grace")

    assert_signed_in_as(visit.profile(interop.app.origin), "grace", "post", interop.issuer)
    grant = interop.op.events("grant.success", client="rp-post")[-1]
    assert grant["client_auth"] == "client_secret_post"
    for sent in interop.token_requests("rp-post"):
        assert sent["status"] == 200
        assert sent["authorization"] is None
        assert {"client_id", "client_secret"} <= set(sent["body"])


@pytest.mark.checklist(16)
def test_private_key_jwt_authenticates_the_code_exchange_without_a_shared_secret(
    interop: Interop, open_visit: OpenVisit
):
    visit = open_visit("private-key-jwt")

    interop.sign_in(visit, "pkjwt", login="heidi")

    assert_signed_in_as(visit.profile(interop.app.origin), "heidi", "pkjwt", interop.issuer)
    grant = interop.op.events("grant.success", client="rp-pkjwt")[-1]
    assert grant["client_auth"] == "private_key_jwt"
    for sent in interop.token_requests("rp-pkjwt"):
        assert sent["status"] == 200
        assert sent["authorization"] is None
        assert {"client_assertion", "client_assertion_type"} <= set(sent["body"])
        assert "client_secret" not in sent["body"]


# -- ID token algorithms ----------------------------------------------------------------------
@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
def test_id_token_signed_with_each_asymmetric_algorithm_is_accepted(
    alg: str, interop: Interop, open_visit: OpenVisit
):
    provider_id = alg.lower()
    visit = open_visit(provider_id)

    interop.sign_in(visit, provider_id, login="ivy")

    profile = visit.profile(interop.app.origin)
    assert_signed_in_as(profile, "ivy", provider_id, interop.issuer)
    assert profile["id_token_header"]["alg"] == alg
    assert profile["id_token_header"]["kid"] == interop.op.kids[KEY_TYPE[alg]]


# -- refresh ----------------------------------------------------------------------------------
@pytest.mark.checklist(55)
def test_refresh_rotates_the_refresh_token_and_the_old_one_is_refused(
    interop: Interop, open_visit: OpenVisit
):
    visit = open_visit("refresh")
    # oidc-provider grants offline_access only to a request with prompt=consent (OIDC Core 11).
    login = interop.sign_in(visit, "refresh", login="judy", prompt="consent")

    first = visit.profile(interop.app.origin)
    second = visit.profile(interop.app.origin)

    assert "offline_access" in login.authorization_params["scope"][0].split()
    for shown in (first, second):
        assert_signed_in_as(shown, "judy", "refresh", interop.issuer)
        assert shown["sid"] == first["sid"]
    assert first["refresh_token"]
    assert second["refresh_token"]
    assert first["refresh_token"] != second["refresh_token"]
    assert first["access_token"] != second["access_token"]
    refreshes = interop.op.events("grant.success", client="rp-refresh", grant_type="refresh_token")
    assert len(refreshes) >= 2
    assert len(interop.op.events("refresh_token.consumed", client="rp-refresh")) >= 2
    replay = httpx.post(
        f"{interop.issuer}/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=("rp-refresh", "interop-client-secret"),
    )
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"


# -- logout -----------------------------------------------------------------------------------
@pytest.mark.checklist(50)
def test_rp_initiated_logout_with_id_token_hint_and_state_returns_to_the_app(
    interop: Interop, open_visit: OpenVisit
):
    visit = open_visit("rp-logout")
    interop.sign_in(visit, "logout", login="kate")
    assert visit.profile(interop.app.origin)["subject"] == "kate"

    visit.page.click("#logout")
    confirm_logout_at_op(visit, "logout")
    visit.page.wait_for_url(f"{interop.app.origin}{LOGOUT_RETURN_TO}")

    (end_session,) = visit.requests_to(f"{interop.issuer}/session/end")
    asked = query_of(end_session.url)
    assert set(asked) == {"client_id", "id_token_hint", "post_logout_redirect_uri", "state"}
    assert asked["post_logout_redirect_uri"] == [interop.app.urls.logout_callback]
    assert interop.op.events("end_session.success", client="rp-logout")
    # The provider also tells the app over the back channel; rpkit acknowledges a logout of a
    # session it has already ended.
    assert interop.op.wait_for("backchannel.success", client="rp-logout")
    returned = visit.requests_to(f"{interop.app.origin}/auth/logout/callback")
    assert len(returned) == 1
    assert query_of(returned[0].url)["state"] == asked["state"]
    assert visit.page.text_content("#signed-out") == "Signed out"
    assert visit.cookie(SESSION) is None
    assert visit.profile(interop.app.origin) == {"subject": None}


@pytest.mark.checklist(53)
def test_backchannel_logout_from_the_provider_ends_the_rpkit_session(
    interop: Interop, open_visit: OpenVisit
):
    visit = open_visit("backchannel")
    interop.sign_in(visit, "bcl", login="leo")
    before = visit.profile(interop.app.origin)
    assert before["subject"] == "leo"

    # The user signs out at the provider itself (no id_token_hint): only the back-channel
    # tells rpkit.
    visit.page.goto(f"{interop.issuer}/session/end")
    confirm_logout_at_op(visit, "bcl")

    sent = interop.op.wait_for("backchannel.success", client="rp-bcl")
    assert (sent["sub"], sent["sid"]) == ("leo", before["sid"])
    assert not interop.op.events("backchannel.error")
    assert ("POST", "/auth/backchannel-logout/bcl") in interop.app.requests
    assert visit.cookie(SESSION) is not None  # the browser still presents its session cookie
    assert visit.profile(interop.app.origin) == {"subject": None}


# -- signing-key rotation -------------------------------------------------------------------
class Rotation:
    """A provider that can be restarted on the same port with fresh keys, and one app."""

    def __init__(self, workdir: Path) -> None:
        self.registration = Registration("rotating", alg="ES256")
        self.port = free_port()
        self.pending = bind_app("localhost")
        self.workdir = workdir
        self.providers: list[OidcProvider] = []
        self.app: RunningApp | None = None

    def start_provider(self) -> OidcProvider:
        client = self.registration.op_client(self.pending.urls)
        op = OidcProvider(self.port, [client], self.workdir)
        self.providers.append(op)
        op.start()
        return op

    def start_app(self, issuer: str) -> RunningApp:
        self.app = self.pending.start(issuer, [self.registration])
        return self.app

    def stop(self) -> None:
        if self.app is not None:
            self.app.stop()
        else:
            self.pending.close()
        for op in self.providers:
            op.stop()


@pytest.fixture
def rotation(oidc_provider_version: str, tmp_path: Path) -> Iterator[Rotation]:
    rotation = Rotation(tmp_path)
    yield rotation
    rotation.stop()


@pytest.mark.checklist(40)
def test_after_a_signing_key_rotation_the_next_login_refetches_the_jwks_once(
    open_visit: OpenVisit, rotation: Rotation
):
    before = rotation.start_provider()
    app = rotation.start_app(before.issuer)
    first = open_visit("before-rotation")
    sign_in(first, app.origin, "rotating", before.issuer, login="mallory")
    old = first.profile(app.origin)
    assert old["subject"] == "mallory"
    assert old["id_token_header"]["kid"] == before.kids["EC"]
    jwks_uri = f"{before.issuer}/jwks"
    assert len(before.requests("/jwks")) == 1  # fetched at app startup, not per login
    assert app.plugin.runtime.rp.jwks.fetches(jwks_uri) == 1
    before.stop()

    after = rotation.start_provider()  # same port, same issuer, new keys
    second = open_visit("after-rotation")
    sign_in(second, app.origin, "rotating", after.issuer, login="mallory")
    new = second.profile(app.origin)

    assert after.kids["EC"] != before.kids["EC"]
    assert new["subject"] == "mallory"
    assert new["id_token_header"]["kid"] == after.kids["EC"]
    assert len(after.requests("/jwks")) == 1
    assert app.plugin.runtime.rp.jwks.fetches(jwks_uri) == 2
