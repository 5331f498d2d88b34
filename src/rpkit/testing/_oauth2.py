"""The fake OP as an OAuth 2.0-only provider (GitHub-style): identity from a profile endpoint.

Such a provider publishes no discovery document and no ID token: the client reads who signed in
from a bearer-protected JSON endpoint (GitHub's ``GET /user``,
https://docs.github.com/rest/users/users#get-the-authenticated-user), and sometimes from more of
them (``GET /user/emails``), which ``extra_json`` serves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rpkit.testing._http import OAuthError, OPRequest, json_response
from rpkit.testing._resources import bearer_user

if TYPE_CHECKING:
    import httpx

    from rpkit.testing.op import FakeOP
    from rpkit.testing.registry import FakeUser

__all__ = ["JSONSource", "extra", "github_profile", "profile"]

JSONSource = Callable[["FakeUser"], Any]
"""Builds a JSON document (any shape: object, array, string) for a signed-in user."""


def github_profile(user: FakeUser) -> dict[str, Any]:
    """GitHub's ``/user`` shape: a numeric ``id`` derived from ``sub`` (the same in every run),
    ``login`` (``preferred_username``, else ``sub``), ``name`` and ``email`` (None when absent).

    Example:
        >>> from rpkit.testing import FakeUser, github_profile
        >>> github_profile(FakeUser("octocat", {"name": "The Octocat"}))["login"]
        'octocat'
    """
    digest = hashlib.sha256(user.sub.encode()).digest()
    return {
        "id": int.from_bytes(digest[:4], "big") or 1,
        "login": user.claims.get("preferred_username") or user.sub,
        "name": user.claims.get("name"),
        "email": user.claims.get("email"),
    }


def profile(op: FakeOP, req: OPRequest) -> httpx.Response:
    """``GET {issuer}{profile_path}``: ``op.profile(user)`` for the bearer token's user."""
    return _serve(op.profile, op, req)


def extra(op: FakeOP, req: OPRequest) -> httpx.Response:
    """``GET {issuer}{path}`` for each path of ``extra_json``: that source's document."""
    base_path = urlsplit(op.issuer).path.rstrip("/")
    return _serve(op.extra_json[req.url.path.removeprefix(base_path)], op, req)


def _serve(source: JSONSource, op: FakeOP, req: OPRequest) -> httpx.Response:
    if req.method != "GET":
        raise OAuthError("invalid_request", "this endpoint takes GET", status=405)
    _, user = bearer_user(op, req)
    return json_response(source(user), headers={"Cache-Control": "no-store"})
