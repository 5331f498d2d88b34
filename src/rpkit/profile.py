"""The profile endpoint of an OAuth 2.0-only provider: where its identity comes from.

There is no ID token, so the access token is the only credential: it travels in the
``Authorization`` header only (``Bearer``; ``DPoP`` with a proof when it is DPoP-bound, RFC 9449
§7.1), to the configured profile endpoint or another URL on the same origin (GitHub's
``/user/emails``), never through a redirect. Every answer is read within a deadline and a byte
bound (:mod:`rpkit._outbound`) and must be JSON; anything else is a
:class:`~rpkit.errors.UserInfoError` with a stable ``reason``. The same fetcher serves an
identity mapper's ``source.fetch_json`` in OpenID Connect logins, DPoP ones included.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from rpkit._json import decode as decode_json
from rpkit._outbound import DEFAULT_TIMEOUT, Redirected, Refused, check_bounds, fetch
from rpkit.dpop import DPoPKey, DPoPNonces, nonce_challenge
from rpkit.errors import UserInfoError
from rpkit.hooks import JSONFetcher

__all__ = ["MAX_PROFILE_BYTES", "profile_fetcher"]

MAX_PROFILE_BYTES = 256 * 1024
"""Largest profile document read; a user profile is a few kilobytes."""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def profile_fetcher(
    http: httpx.AsyncClient,
    profile_endpoint: str,
    access_token: str,
    *,
    max_bytes: int = MAX_PROFILE_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
    dpop: DPoPKey | None = None,
    nonces: DPoPNonces | None = None,
) -> JSONFetcher:
    """A :data:`~rpkit.hooks.JSONFetcher` bound to one login's access token, allowed to GET
    URLs on ``profile_endpoint``'s origin only.

    Args:
        http: the application's pooled client; its redirect setting is ignored (a redirect is
            refused) and its timeouts apply only where tighter than ``timeout``.
        profile_endpoint: the provider's profile endpoint; fixes the allowed origin.
        access_token: sent as ``Authorization: Bearer`` only, or, with ``dpop``, as
            ``Authorization: DPoP`` with a fresh proof carrying ``ath`` (RFC 9449 §7.1).
        max_bytes: the largest answer read (default :data:`MAX_PROFILE_BYTES`, 256 KiB); a
            larger one is a :class:`~rpkit.errors.UserInfoError` with reason ``too_large``.
        timeout: seconds one request may take in all (default 10).
        dpop: the key ``access_token`` is bound to (a DPoP login): each request carries a
            proof made with it, sent once more with the server's nonce when a ``401``
            asks for one (RFC 9449 §9).
        nonces: the servers' DPoP nonces, shared with the other clients.
    """
    check_bounds("profile_fetcher", max_bytes, timeout)
    origin = _origin(profile_endpoint)
    known = nonces if nonces is not None else DPoPNonces()

    async def fetch_json(url: str) -> Any:
        try:
            same_origin = _origin(url) == origin
        except ValueError:
            same_origin = False
        if not same_origin:
            msg = "a profile request may only go to the profile endpoint's origin"
            raise UserInfoError(msg, reason="origin")
        proving = None if dpop is None else (dpop, known)
        response = await _get(http, url, access_token, (max_bytes, timeout), proving)
        if dpop is not None and nonce_challenge(known, url, response) is not None:
            response = await _get(http, url, access_token, (max_bytes, timeout), proving)
            known.learn(url, response)
        return _json(response)

    return fetch_json


async def _get(
    http: httpx.AsyncClient,
    url: str,
    access_token: str,
    bounds: tuple[int, float],
    dpop: tuple[DPoPKey, DPoPNonces] | None,
) -> httpx.Response:
    """One GET of a profile URL with the login's access token (and a fresh DPoP proof)."""
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    if dpop is not None:
        key, nonces = dpop
        headers["Authorization"] = f"DPoP {access_token}"
        nonce = nonces.get(url)
        headers["DPoP"] = key.proof("GET", url, access_token=access_token, nonce=nonce)
    max_bytes, timeout = bounds
    try:
        # fetch never follows a redirect: the access token would go along.
        return await fetch(
            http,
            "GET",
            url,
            what="the profile endpoint",
            max_bytes=max_bytes,
            timeout=timeout,
            headers=headers,
        )
    except Refused as exc:
        reason = "status" if isinstance(exc, Redirected) else exc.reason
        raise UserInfoError(exc.detail, reason=reason) from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        msg = f"the profile request failed: {type(exc).__name__}"
        raise UserInfoError(msg, reason="network") from exc


def _json(response: httpx.Response) -> Any:
    if response.status_code != 200:
        reason = "unauthorized" if response.status_code == 401 else "status"
        raise UserInfoError(
            f"the profile endpoint answered HTTP {response.status_code}", reason=reason
        )
    return decode_json(response.content, _not_json)


def _not_json() -> UserInfoError:
    return UserInfoError(
        "the profile endpoint answered something that is not JSON", reason="not_json"
    )
