"""What the presets' fakes share: which registered client a preset configuration uses, and the
development settings a served (``http://127.0.0.1``) fake needs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rpkit.config import is_loopback_http

if TYPE_CHECKING:
    from rpkit.testing.op import FakeOP
    from rpkit.testing.registry import FakeClient

__all__ = ["client_of", "preset_arguments"]


def client_of(fake: FakeOP, client_id: str | None) -> FakeClient:
    """The client ``client_id`` registered at ``fake``, the first one when None."""
    return fake.clients[client_id or next(iter(fake.clients))]


def preset_arguments(fake: FakeOP, changes: dict[str, Any], **settings: Any) -> dict[str, Any]:
    """The preset's keyword arguments: ``settings``, ``allow_insecure_http`` when ``fake`` is
    served on loopback ``http``, then the caller's ``changes`` last."""
    if is_loopback_http(fake.issuer):
        settings["allow_insecure_http"] = True
    return settings | changes
