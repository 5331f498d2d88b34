"""Decoding JSON that someone else sent: token segments, the OP's documents and responses.

``msgspec.json.decode`` raises more than ``msgspec.DecodeError`` on hostile bytes:
``UnicodeDecodeError`` for invalid UTF-8 inside a string and ``RecursionError`` for deep nesting.
:func:`decode` turns all of them into the caller's own typed error, so no decode site can forget
one, and refuses nesting deeper than :data:`MAX_DEPTH`, which msgspec decodes (up to about the
interpreter's recursion limit) but recursive code after it (``freeze``) cannot walk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import msgspec

__all__ = ["MAX_DEPTH", "decode"]

MAX_DEPTH = 64
"""Objects and arrays nested deeper than this are refused; OpenID documents use fewer than 10."""

T = TypeVar("T")

# msgspec.DecodeError (and its ValidationError) is a ValueError, and so is UnicodeDecodeError.
_NOT_JSON = (ValueError, RecursionError)
_decode_any = msgspec.json.Decoder().decode


@overload
def decode(content: bytes, error: Callable[[], Exception]) -> Any: ...
@overload
def decode(content: bytes, error: Callable[[], Exception], decoder: Callable[[bytes], T]) -> T: ...
def decode(
    content: bytes,
    error: Callable[[], Exception],
    decoder: Callable[[bytes], Any] = _decode_any,
) -> Any:
    """``content`` decoded by ``decoder`` (any JSON value by default; pass a typed
    ``msgspec.json.Decoder(...).decode`` for a shape).

    Raises:
        Exception: ``error()``, with the decoding failure chained, when ``content`` is not JSON
            (of the decoder's type), holds invalid UTF-8 or nests too deep.
    """
    try:
        value = decoder(content)
    except _NOT_JSON as exc:
        raise error() from exc
    # Nesting deeper than MAX_DEPTH needs more than MAX_DEPTH brackets: counting them (in C, also
    # inside strings, which only over-counts) spares the walk for every ordinary document.
    if content.count(b"{") + content.count(b"[") > MAX_DEPTH and _too_deep(value):
        raise error()
    return value


def _too_deep(value: Any) -> bool:
    """More than :data:`MAX_DEPTH` levels of objects and arrays, walked level by level without
    recursion (only containers are visited, so a flat document costs one pass over its
    members)."""
    if isinstance(value, msgspec.Struct):
        value = list(msgspec.structs.astuple(value))
    elif type(value) is not dict and type(value) is not list:
        return False
    level = [value]
    for _ in range(MAX_DEPTH):
        level = [
            child
            for node in level
            for child in (node.values() if type(node) is dict else node)
            if type(child) is dict or type(child) is list
        ]
        if not level:
            return False
    return True
