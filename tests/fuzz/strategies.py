"""Hypothesis strategies for what an attacker or a broken identity provider can send: JSON of any
shape, compact-JWS look-alikes, query strings and request bodies.

Generated JSON stays shallow (``max_leaves``); ``odd_json`` adds the deep and malformed
documents that once crashed rpkit's decoders (``test_known_bugs.py``).
"""

from __future__ import annotations

import base64
import json
import string
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import strategies as st

B64URL = string.ascii_letters + string.digits + "-_"
CALLBACK_NAMES = (
    "code",
    "state",
    "iss",
    "error",
    "error_description",
    "error_uri",
    "session_state",
    "id_token",
    "access_token",
    "token",
    "refresh_token",
)
FRONT_CHANNEL_TOKENS = ("id_token", "access_token", "token", "refresh_token")
HUGE = (10**400, -(10**400), 10**30, 2**63, 2**64 + 1, 2**53 + 1)


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


DEEP = _nested(600)
"""Arrays 600 deep: msgspec decodes them, but rpkit's recursive ``freeze`` could not walk them
(rpkit now refuses JSON deeper than ``rpkit._json.MAX_DEPTH``)."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def encode_json(value: Any, ascii_only: bool = True) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only, allow_nan=False).encode()


# -- JSON ----------------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from(HUGE),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=24))
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=6)

odd_json = st.sampled_from(
    [
        b"",
        b"null",
        b"1e400",
        b"-0",
        b'"\\ud800"',
        b'{"alg":"RS256","alg":"none"}',
        b'{"alg":"RS256"',
        b'{"alg":"RS256",}',
        b"\xef\xbb\xbf{}",
        b'{"alg":"RS256"}garbage',
        b"[" * 64 + b"]" * 64,
        b'{"a":' + b"[" * 600 + b"]" * 600 + b"}",  # msgspec decodes it; rpkit's depth limit not
        b"[" * 5000 + b"]" * 5000,  # RecursionError in msgspec
        b'{"alg":"RS256","kid":"\xa7"}',  # UnicodeDecodeError in msgspec
        b'{"alg":"\\u0000RS256"}',
        b"\xff\xfe",
    ]
)
json_bytes = st.one_of(
    st.builds(encode_json, json_values, st.booleans()),
    st.binary(max_size=64),
    odd_json,
)


# -- compact JWS look-alikes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A token for a validator, and whether it could possibly verify (only a change to an honest
    token's signature characters can: the new text may decode to the same bytes)."""

    text: str
    may_verify: bool = False


@dataclass(frozen=True)
class Recipe:
    """How to make a token from an honest one: replace it (``junk``), cut it at ``at``, change
    the character at ``at`` to ``content``, or replace part ``part`` with base64url of
    ``content``. Positions wrap around the honest token's length."""

    how: str
    content: str | bytes = ""
    at: int = 0
    part: int = 0

    def apply(self, honest: str) -> Token:
        at = self.at % len(honest)
        if self.how == "junk":
            return Token(str(self.content))
        if self.how == "truncate":
            return Token(honest[:at])
        if self.how == "mutate":
            return Token(honest[:at] + str(self.content) + honest[at + 1 :], may_verify=True)
        parts = honest.split(".")
        parts[self.part] = b64url(bytes(self.content))
        return Token(".".join(parts), may_verify=parts == honest.split("."))


segments = st.one_of(
    st.builds(b64url, json_bytes),
    st.text(alphabet=B64URL, max_size=40),
    st.text(alphabet=B64URL + "=+/.% \t\n", max_size=40),
    st.just(""),
)
_headers = st.one_of(
    json_bytes,
    st.builds(
        encode_json,
        st.fixed_dictionaries(
            {"alg": st.one_of(st.sampled_from(["RS256", "none", "HS256", "ES256"]), json_values)},
            optional={"kid": json_values, "typ": json_values, "crit": json_values},
        ),
    ),
)
_junk = st.one_of(
    st.text(max_size=120),
    st.text(alphabet=B64URL + ".", max_size=200),
    st.lists(segments, max_size=6).map(".".join),
    st.tuples(segments, segments, segments).map(".".join),
    st.integers(65530, 65540).map(lambda n: "e30." + "A" * (n - 5) + "."),
)
positions = st.integers(0, 4000)
token_recipes = st.one_of(
    st.builds(Recipe, st.just("junk"), _junk),
    st.builds(Recipe, st.just("truncate"), at=positions),
    st.builds(Recipe, st.just("mutate"), st.sampled_from(B64URL + ".=+/ \x00é"), positions),
    st.builds(Recipe, st.just("splice"), _headers, part=st.just(0)),
    st.builds(Recipe, st.just("splice"), json_bytes, part=st.just(1)),
    st.builds(Recipe, st.just("splice"), st.binary(max_size=300), part=st.just(2)),
)
"""Anything a client, an attacker or a broken OP could send where an honest token belongs."""


# -- query strings and bodies --------------------------------------------------------------------

# Printable ASCII that httpx keeps in a query as given ('#' ends a URL's query).
_QUERY_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "#")
_query_tokens = st.one_of(
    st.sampled_from(_QUERY_CHARS),
    st.integers(0, 255).map(lambda b: f"%{b:02X}"),
    st.integers(0, 255).map(lambda b: f"%{b:02x}"),
    st.sampled_from(
        ["%", "%z", "%zz", "%%", "&", "=", ";", "+", "&&", "==", "state=", "code=", "iss="]
    ),
)
raw_queries = st.lists(_query_tokens, max_size=60).map("".join)

# rpkit's inbound bounds (rpkit.flow, rpkit.litestar.handlers), and one character past each.
BOUNDS = (43, 128, 255, 256, 320, 512, 2048, 4096)
_bound_lengths = st.sampled_from(BOUNDS).flatmap(lambda n: st.sampled_from([n - 1, n, n + 1]))
_odd_characters = ("\n", "\r\n", "\x00", "\x7f", "\x85", "\u2028", "\ufeff", "é", '"', "\\", " ")
bound_values = st.one_of(
    st.builds(lambda n, c: c * n, _bound_lengths, st.sampled_from(["x", "A", "é", "-"])),
    st.builds(
        lambda n, odd, at_end: ("a" * n + odd) if at_end else (odd + "a" * n),
        st.integers(1, 50),
        st.sampled_from(_odd_characters),
        st.booleans(),
    ),
    st.text(alphabet=B64URL, min_size=42, max_size=44),
)
"""Values at, just under and just over each inbound bound, and short values that end (or
start) with a newline, a control character or a separator: where an anchored ``$`` or an
off-by-one would let one through."""

param_names = st.one_of(st.sampled_from(CALLBACK_NAMES), st.text(max_size=8))
param_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "https://op.rpkit.test", "https://op.rpkit.test/", "access_denied"]),
    st.integers(1000, 5000).map(lambda n: "x" * n),
    bound_values,
)
param_lists = st.lists(st.tuples(param_names, param_values), max_size=8)


def urlencoded(params: list[tuple[str, str]]) -> str:
    return str(httpx.QueryParams(params))


queries = st.one_of(raw_queries, param_lists.map(urlencoded))


@dataclass(frozen=True)
class Body:
    """A request body and its ``Content-Type`` (None sends none)."""

    content: bytes
    content_type: str | None

    def headers(self) -> dict[str, str]:
        return {"Content-Type": self.content_type} if self.content_type is not None else {}


def _multipart(fields: list[tuple[str, str]], files: list[tuple[str, bytes]]) -> Body:
    request = httpx.Request(
        "POST",
        "https://app.rpkit.test/",
        data=dict(fields),
        files=[(name, ("f.bin", content, "application/octet-stream")) for name, content in files],
    )
    content_type = request.headers.get("content-type", "multipart/form-data; boundary=empty")
    return Body(request.read(), content_type)


_content_types = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=latin-1",
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=xyz",
            "application/json",
            "text/plain",
            "application/jwt",
        ]
    ),
    st.text(alphabet=_QUERY_CHARS + " ", max_size=40),
)


def bodies(names: st.SearchStrategy[str]) -> st.SearchStrategy[Body]:
    """Form bodies of every kind: url-encoded (well formed or not), multipart with fields and
    files named from ``names``, and raw bytes under any content type."""
    form = "application/x-www-form-urlencoded"
    fields = st.lists(st.tuples(names, param_values), max_size=5)
    return st.one_of(
        queries.map(lambda q: Body(q.encode(), form)),
        st.builds(
            _multipart,
            fields,
            st.lists(st.tuples(names, st.binary(max_size=40)), max_size=2),
        ),
        st.builds(Body, st.binary(max_size=200), _content_types),
        st.builds(Body, json_bytes, st.just("application/json")),
    )
