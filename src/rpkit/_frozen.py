"""Read-only views of decoded JSON, for the ``raw`` and ``claims`` members of wire types."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any


def freeze(value: Any) -> Any:
    """Decoded JSON with every object made a ``MappingProxyType`` and every array a tuple,
    deeply. Recurses only into containers: this runs per request on the bearer path."""
    if type(value) is dict:
        return freeze_owned(value.copy())  # copied in C; then only the containers are replaced
    if type(value) is list:
        for v in value:
            if type(v) is dict or type(v) is list:
                return tuple([freeze(v) for v in value])
        return tuple(value)  # the common case: an array of scalars
    return value


def freeze_owned(value: dict[str, Any]) -> MappingProxyType[str, Any]:
    """:func:`freeze` of a JSON object that the caller owns, made read-only in place: its
    containers are replaced by read-only ones and the object itself is wrapped, not copied.
    Only for a fresh decoding nobody else holds: a holder would see its lists become tuples."""
    for k, v in value.items():  # replacing values (not adding keys) is safe while iterating
        if type(v) is dict or type(v) is list:
            value[k] = freeze(v)
    return MappingProxyType(value)
