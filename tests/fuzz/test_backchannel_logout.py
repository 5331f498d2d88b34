"""The back-channel logout route against any body: a 400 problem (never a 500) that ends no
session, or — only for a logout token the OP really signed — a 200 that ends exactly the
sessions the token names. A forged ``kid`` costs at most one JWKS refetch per cooldown, and no
other request reaches the OP."""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fuzz._budget import fuzz
from tests.fuzz.conftest import op_counts, subject_of
from tests.fuzz.strategies import Body, Recipe, bodies, param_values, token_recipes
from tests.fuzz.test_tokens import claim_edits, edited, honest_claims, honest_header, sign
from tests.litestar.conftest import BASE, Browser

ROUTE = "/auth/backchannel-logout/fake"


@dataclass(frozen=True)
class Delivery:
    """How the token travels: in an url-encoded or multipart form (perhaps twice, perhaps with
    other fields), or a body of any shape instead."""

    encoding: str
    extra: tuple[tuple[str, str], ...] = ()
    twice: bool = False
    body: Body | None = None

    def request(self, token: str | None) -> tuple[bytes, dict[str, str]]:
        if self.body is not None or token is None:
            body = self.body or Body(b"", None)
            return body.content, body.headers()
        fields = [("logout_token", token), *self.extra]
        if self.twice:
            fields.append(("logout_token", token[::-1]))
        if self.encoding == "multipart":
            request = httpx.Request("POST", BASE, data=dict(fields), files={"f": b"x"})
            return request.read(), {"Content-Type": request.headers["content-type"]}
        return str(httpx.QueryParams(fields)).encode(), {
            "Content-Type": "application/x-www-form-urlencoded"
        }


extra_fields = st.lists(st.tuples(st.text(max_size=8), param_values), max_size=2).map(tuple)
form_encodings = st.sampled_from(["urlencoded", "urlencoded", "multipart"])
form_deliveries = st.builds(Delivery, form_encodings, extra_fields)
deliveries = st.one_of(
    st.builds(Delivery, form_encodings, extra_fields, st.booleans()),
    st.builds(
        Delivery,
        st.just("raw"),
        body=bodies(st.one_of(st.just("logout_token"), st.text(max_size=8))),
    ),
)


async def post(browser: Browser, delivery: Delivery, token: str | None) -> httpx.Response:
    content, headers = delivery.request(token)
    return await browser.client.post(ROUTE, content=content, headers=headers)


def assert_refused(response: httpx.Response, before: Any, browser: Browser) -> None:
    assert response.status_code == 400, (response.status_code, response.text[:300])
    problem = response.json()
    assert problem.get("code", "logout_token_invalid") == "logout_token_invalid", problem
    after = op_counts(browser.op)
    assert after - before <= Counter(jwks=1), after - before
    assert browser.op.oracle.count("jwks") <= 2  # the startup fetch and one forced refetch


@given(recipe=st.one_of(st.none(), token_recipes), delivery=deliveries)
@fuzz(200)
async def test_a_backchannel_logout_body_of_any_shape_ends_nothing_unless_signed(
    signed_in: Browser, recipe: Recipe | None, delivery: Delivery
):
    op = signed_in.op
    sid = next(reversed(op.sessions))
    honest = op.minter.mint_logout_token(audience="rpkit-test-client", subject="alice", sid=sid)
    token = recipe.apply(honest).text if recipe is not None else None
    before = op_counts(op)

    response = await post(signed_in, delivery, token)

    if response.status_code == 200:  # a token whose change left its signature bytes intact
        assert recipe is not None
        assert recipe.apply(honest).may_verify
        assert delivery.body is None
        assert not delivery.twice
        assert await subject_of(signed_in) is None
        await signed_in.login()
        return
    assert_refused(response, before, signed_in)
    assert await subject_of(signed_in) == "alice"


@given(edits=claim_edits, delivery=form_deliveries)
@fuzz(150)
async def test_a_signed_logout_token_ends_exactly_the_sessions_it_names(
    signed_in: Browser, edits: dict[str, Any], delivery: Delivery
):
    op = signed_in.op
    sid = next(reversed(op.sessions))
    now = op.now()
    fresh = {"sid": sid, "jti": secrets.token_urlsafe(8)}
    claims = edited(honest_claims(op, "logout") | fresh, edits, now)
    before = op_counts(op)

    response = await post(signed_in, delivery, sign(op, honest_header(op, "logout"), claims))

    event(f"status {response.status_code}")
    if response.status_code != 200:
        assert_refused(response, before, signed_in)
        assert await subject_of(signed_in) == "alice"
        return
    assert op_counts(op) == before
    named = claims.get("sid") == sid or claims.get("sub") == "alice"
    assert (await subject_of(signed_in) is None) == named, claims
    if named:
        await signed_in.login()
