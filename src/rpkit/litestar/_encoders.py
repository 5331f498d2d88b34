"""Response encoding of what rpkit hands to handlers."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litestar.config.app import AppConfig

__all__ = ["encode_read_only_claims"]


def encode_read_only_claims(app_config: AppConfig) -> None:
    """Let handlers return the read-only claims rpkit hands out (``Identity.claims``,
    ``AccessToken.claims``: ``MappingProxyType``, deeply, which msgspec does not encode) as
    JSON objects. An encoder the app registers for that type itself wins."""
    app_config.type_encoders = {MappingProxyType: dict, **dict(app_config.type_encoders or {})}
