"""rpkit's browser routes against any query string or form body: an error page or problem
details with a 4xx status, never a 500, never a session cookie, and not one request to the OP
unless a callback passed every front-channel check (then exactly one token request)."""

from __future__ import annotations

from collections import Counter
from urllib.parse import parse_qs, urlsplit

import httpx
from hypothesis import event, given
from hypothesis import strategies as st

from rpkit.litestar.handlers import SIGNED_OUT_PAGE
from tests.fuzz._budget import fuzz
from tests.fuzz.conftest import (
    assert_refused_quietly,
    op_counts,
    sets_session,
    subject_of,
)
from tests.fuzz.strategies import (
    CALLBACK_NAMES,
    FRONT_CHANNEL_TOKENS,
    Body,
    bodies,
    bound_values,
    param_names,
    queries,
    urlencoded,
)
from tests.litestar.conftest import BASE, Browser

ISSUER = "https://op.rpkit.test"
CALLBACK_CODES = {
    "duplicate_parameter",
    "response_issuer_mismatch",
    "invalid_state",
    "parameter_too_large",
    "parameter_malformed",
}
VSCHAR = {chr(c) for c in range(0x20, 0x7F)}
FORM = "application/x-www-form-urlencoded"
accepts = st.sampled_from(["text/html", "application/json", "*/*", ""])


def url(path: str, query: str) -> httpx.URL:
    return httpx.URL(BASE + path, query=query.encode("ascii"))


def problem_code(response: httpx.Response) -> str | None:
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        code: str = response.json()["code"]
        return code
    return None


async def post(browser: Browser, path: str, body: Body, accept: str = "") -> httpx.Response:
    headers = body.headers() | ({"Accept": accept} if accept else {})
    return await browser.client.post(
        path, content=body.content, headers=headers, follow_redirects=False
    )


# -- the callback --------------------------------------------------------------------------------


@given(query=queries, provider=st.sampled_from(["fake", "fake", "nope"]), accept=accepts)
@fuzz(250)
async def test_a_callback_query_of_any_shape_is_refused_quietly(
    app: Browser, query: str, provider: str, accept: str
):
    before = op_counts(app.op)

    response = await app.client.get(
        url(f"/auth/callback/{provider}", query),
        headers={"Accept": accept} if accept else {},
        follow_redirects=False,
    )

    if provider == "nope":
        assert_refused_quietly(response, app.op, before, status={404})
        return
    assert_refused_quietly(response, app.op, before, status={400})
    assert problem_code(response) in (CALLBACK_CODES | {None})


@given(body=bodies(param_names), accept=accepts)
@fuzz(250)
async def test_a_form_post_callback_of_any_shape_is_refused_quietly(
    app: Browser, body: Body, accept: str
):
    before = op_counts(app.op)

    response = await post(app, "/auth/callback/fake", body, accept)

    assert_refused_quietly(response, app.op, before, status={400})
    assert problem_code(response) in (CALLBACK_CODES | {None})


@st.composite
def callback_for_a_pending_login(draw: st.DrawFn) -> tuple[list[tuple[str, str]], bool]:
    """Parameters for a callback of a login this browser really started: the real ``state``
    (or not), ``iss``, a real or a made-up code, and anything else; and whether the OP should
    issue a real code first."""
    real_code = draw(st.booleans())
    planted: list[tuple[str, str]] = []
    for name, choices in (
        ("state", ["<state>"] * 5 + [None, "", "0ther"]),
        ("iss", [ISSUER] * 5 + [None, ISSUER + "/"]),
        ("code", ["<code>"] * 4 + [None, "", "made-up-code", "c" * 2049, "<code>\n", "c\x7f"]),
        ("error", [None] * 5 + ["access_denied", ""]),
        (draw(st.sampled_from(FRONT_CHANNEL_TOKENS)), [None] * 5 + ["eyJ0eXAi", ""]),
    ):
        value = draw(st.sampled_from(choices))
        if value is not None:
            planted.append((name, value))
    names = st.one_of(st.sampled_from(CALLBACK_NAMES), st.text(min_size=1, max_size=8))
    extra = draw(st.lists(st.tuples(names, st.text(max_size=20)), max_size=3))
    return draw(st.permutations(planted + extra)), real_code


def passes_front_channel(params: list[tuple[str, str]], state: str) -> bool:
    values = dict(params)
    return (
        all(n == 1 for n in Counter(name for name, _ in params).values())
        and values.get("iss") == ISSUER
        and values.get("state") == state
        and "error" not in values
        and not any(name in values for name in FRONT_CHANNEL_TOKENS)
        and bool(values.get("code"))
        and set(values["code"]) <= VSCHAR  # RFC 6749: a code is 1*VSCHAR
        and len(values["code"]) <= 2048
    )


@given(case=callback_for_a_pending_login())
@fuzz(120)
async def test_a_callback_for_a_pending_login_reaches_the_op_only_after_every_check(
    app: Browser, case: tuple[list[tuple[str, str]], bool]
):
    template, issue_code = case
    started = await app.start_login()
    assert started.status_code == 303
    state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
    code = "never-issued"
    if issue_code:
        answer = await app.op.approve(started.headers["location"])
        code = answer.get("code") or code
    params = [(n, v.replace("<state>", state).replace("<code>", code)) for n, v in template]
    before = op_counts(app.op)

    response = await app.client.get("/auth/callback/fake", params=params, follow_redirects=False)

    after = op_counts(app.op)
    exchanged = passes_front_channel(params, state)
    assert after["token"] - before["token"] == int(exchanged), params
    signed_in = exchanged and dict(params)["code"] == code and issue_code
    event("signed in" if signed_in else "exchanged, refused" if exchanged else "refused")
    assert response.status_code == (303 if signed_in else 400), (params, response.text[:300])
    assert sets_session(response) == signed_in
    assert after["userinfo"] - before["userinfo"] == int(signed_in)
    assert after - before <= Counter(token=1, userinfo=1)


# -- starting a login ----------------------------------------------------------------------------

login_names = st.one_of(
    st.sampled_from(["login_hint", "prompt", "max_age", "return_to"]), st.text(max_size=8)
)
login_values = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(categories=("Nd", "No")), min_size=1, max_size=3),
    st.sampled_from(["login", "none consent", "0", "60", "-1", "1e3", " 5", "²", "1234567890"]),
    st.sampled_from(["login\n", "login\u2028consent", "login\xa0consent", "consent  login"]),
    st.sampled_from(["//evil.example", "/\\evil"]),
    st.sampled_from(["https://evil.example", "/ok?x=1", "/%2F%2Fevil.example", "x" * 600]),
    bound_values,
)
LOGIN_CODES = ("configuration_invalid", "parameter_too_large", "parameter_malformed", None)


def forwarded_within_bounds(sent: dict[str, list[str]]) -> None:
    """What reached the authorization request: bounded, printable, and a prompt of the spec's
    words separated by single spaces."""
    for name, limit in (("login_hint", 320), ("prompt", 512), ("max_age", 9)):
        for value in sent.get(name, []):
            assert len(value) <= limit, (name, len(value))
            assert all(ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in value), name
            assert "\u2028" not in value
            assert "\u2029" not in value
    for prompt in sent.get("prompt", []):
        assert set(prompt.split(" ")) <= {"none", "login", "consent", "select_account", "create"}
    for max_age in sent.get("max_age", []):
        assert max_age.isascii()
        assert max_age.isdigit()


@given(params=st.lists(st.tuples(login_names, login_values), max_size=5), accept=accepts)
@fuzz(200)
async def test_a_login_request_of_any_shape_redirects_to_the_op_or_is_refused(
    app: Browser, params: list[tuple[str, str]], accept: str
):
    before = op_counts(app.op)

    response = await app.client.get(
        "/auth/login/fake",
        params=params,
        headers={"Accept": accept} if accept else {},
        follow_redirects=False,
    )

    assert response.status_code in (303, 400), (params, response.text[:300])
    assert not sets_session(response)
    assert op_counts(app.op) == before
    if response.status_code == 303:
        location = urlsplit(response.headers["location"])
        assert (
            f"{location.scheme}://{location.netloc}{location.path}"
            == (app.op.endpoints["authorize"])
        )
        sent = parse_qs(location.query)
        assert sent["code_challenge_method"] == ["S256"]
        assert len(sent["state"][0]) >= 43
        assert len(sent["nonce"][0]) >= 43
        forwarded_within_bounds(sent)
    else:
        assert problem_code(response) in LOGIN_CODES


initiation_names = st.one_of(
    st.sampled_from(["iss", "iss", "login_hint", "target_link_uri"]), st.text(max_size=8)
)
initiation_values = st.one_of(
    st.sampled_from([ISSUER, ISSUER + "/", ISSUER + "\n", f"{BASE}/me", "/me", "//evil.example"]),
    st.integers(2040, 2060).map(lambda n: ISSUER + "/" + "x" * (n - len(ISSUER) - 1)),
    login_values,
)


@given(
    params=st.lists(st.tuples(initiation_names, initiation_values), max_size=4),
    method=st.sampled_from(["GET", "POST"]),
)
@fuzz(150)
async def test_a_third_party_login_of_any_shape_redirects_to_the_op_or_is_refused(
    app: Browser, params: list[tuple[str, str]], method: str
):
    before = op_counts(app.op)

    if method == "GET":
        response = await app.client.get("/auth/initiate", params=params, follow_redirects=False)
    else:
        body = Body(urlencoded(params).encode(), "application/x-www-form-urlencoded")
        response = await post(app, "/auth/initiate", body)

    assert response.status_code in (303, 400, 404), (params, response.text[:300])
    assert not sets_session(response)
    assert op_counts(app.op) == before
    values = dict(params)
    if any(len(values.get(name, "")) > 2048 for name in ("iss", "target_link_uri")):
        assert response.status_code == 400
    if response.status_code == 303:
        assert values["iss"] == ISSUER  # exactly the configured issuer, nothing normalised
        location = urlsplit(response.headers["location"])
        assert response.headers["location"].startswith(app.op.endpoints["authorize"] + "?")
        forwarded_within_bounds(parse_qs(location.query))


# -- logging out ---------------------------------------------------------------------------------


@given(query=queries)
@fuzz(100)
async def test_a_logout_return_of_any_shape_shows_the_signed_out_page(app: Browser, query: str):
    before = op_counts(app.op)

    response = await app.client.get(url("/auth/logout/callback", query), follow_redirects=False)

    assert_refused_quietly(response, app.op, before, status={200})
    assert response.text == SIGNED_OUT_PAGE  # never a redirect to a return path


values = st.one_of(st.text(max_size=40), st.sampled_from(["é", "\u2028", "\ufffd" * 3]))
logout_names = st.one_of(st.sampled_from(["csrf_token", "return_to"]), st.text(max_size=8))


@st.composite
def logout_bodies(draw: st.DrawFn) -> Body:
    """Logout forms with any fields and values, and bodies that are not forms at all."""
    fields = draw(st.lists(st.tuples(logout_names, values), max_size=5))
    kind = draw(st.sampled_from(["urlencoded", "multipart", "other"]))
    if kind == "urlencoded":
        form = str(httpx.QueryParams(fields)).encode()
        return Body(form, "application/x-www-form-urlencoded")
    if kind == "multipart":
        request = httpx.Request("POST", BASE, data=dict(fields), files={"f": b"x"})
        return Body(request.read(), request.headers["content-type"])
    content = draw(st.binary(max_size=100))
    return Body(content, draw(st.sampled_from([None, "application/json", "text/plain"])))


@given(body=logout_bodies())
@fuzz(120)
async def test_a_logout_without_this_apps_csrf_token_is_forbidden(signed_in: Browser, body: Body):
    before = op_counts(signed_in.op)

    response = await post(signed_in, "/auth/logout", body)

    assert_refused_quietly(response, signed_in.op, before, status={403})
    assert await subject_of(signed_in) == "alice"


@given(
    csrf_length=st.integers(200, 300),
    return_to_length=st.one_of(st.none(), st.integers(2040, 2060)),
    real_token=st.booleans(),
)
@fuzz(60)
async def test_a_logout_form_over_its_bounds_is_refused_before_anything_else(
    signed_in: Browser, csrf_length: int, return_to_length: int | None, real_token: bool
):
    token = (await signed_in.client.get("/session")).json()["csrf_token"]
    csrf = token if real_token else "t" * csrf_length
    fields = [("csrf_token", csrf)]
    if return_to_length is not None:
        fields.append(("return_to", "/" + "r" * (return_to_length - 1)))
    oversized = len(csrf) > 256 or (return_to_length or 0) > 2048
    before = op_counts(signed_in.op)

    response = await post(
        signed_in, "/auth/logout", Body(urlencoded(fields).encode(), FORM), "application/json"
    )

    if oversized:
        assert_refused_quietly(response, signed_in.op, before, status={400})
        assert problem_code(response) == "parameter_too_large"
        assert await subject_of(signed_in) == "alice"
    elif real_token:
        assert response.status_code == 303
        assert await subject_of(signed_in) is None
        await signed_in.login()
    else:
        assert_refused_quietly(response, signed_in.op, before, status={403})
        assert await subject_of(signed_in) == "alice"
