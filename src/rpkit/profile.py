"""The profile endpoint of an OAuth 2.0-only provider: where its identity comes from.

There is no ID token, so the access token is the only credential: it travels in the
``Authorization: Bearer`` header only, to the configured profile endpoint or another URL on the
same origin (GitHub's ``/user/emails``), never through a redirect. Every answer is read with a
byte bound and must be JSON; anything else is a :class:`~rpkit.errors.UserInfoError` with a
stable ``reason``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from rpkit._json import decode as decode_json
from rpkit.errors import UserInfoError
from rpkit.hooks import JSONFetcher

__all__ = ["MAX_PROFILE_BYTES", "profile_fetcher"]

MAX_PROFILE_BYTES = 256 * 1024
"""Largest profile document read; a user profile is a few kilobytes."""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def profile_fetcher(
    http: httpx.AsyncClient, profile_endpoint: str, access_token: str
) -> JSONFetcher:
    """A :data:`~rpkit.hooks.JSONFetcher` bound to one login's access token, allowed to GET
    URLs on ``profile_endpoint``'s origin only."""
    origin = _origin(profile_endpoint)

    async def fetch_json(url: str) -> Any:
        try:
            same_origin = _origin(url) == origin
        except ValueError:
            same_origin = False
        if not same_origin:
            msg = "a profile request may only go to the profile endpoint's origin"
            raise UserInfoError(msg, reason="origin")
        return await _get_json(http, url, access_token)

    return fetch_json


async def _get_json(http: httpx.AsyncClient, url: str, access_token: str) -> Any:
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    try:
        request = http.build_request("GET", url, headers=headers)
        # Never follow a redirect: the Bearer token would go along.
        response = await http.send(request, stream=True, follow_redirects=False)
        try:
            body = await _bounded(response)
        finally:
            await response.aclose()
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        msg = f"the profile request failed: {type(exc).__name__}"
        raise UserInfoError(msg, reason="network") from exc
    if response.status_code != 200:
        reason = "unauthorized" if response.status_code == 401 else "status"
        raise UserInfoError(
            f"the profile endpoint answered HTTP {response.status_code}", reason=reason
        )
    return decode_json(body, _not_json)


async def _bounded(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_PROFILE_BYTES:
            msg = f"the profile response exceeds {MAX_PROFILE_BYTES} bytes"
            raise UserInfoError(msg, reason="too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _not_json() -> UserInfoError:
    return UserInfoError(
        "the profile endpoint answered something that is not JSON", reason="not_json"
    )
