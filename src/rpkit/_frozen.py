"""Read-only views of decoded JSON, for the ``raw`` and ``claims`` members of wire types."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any


def freeze(value: Any) -> Any:
    """Decoded JSON with every object made a ``MappingProxyType`` and every array a tuple,
    deeply. Recurses only into containers: this runs per request on the bearer path."""
    if type(value) is dict:
        copy = value.copy()  # in C; then only the containers are replaced
        for k, v in value.items():
            if type(v) is dict or type(v) is list:
                copy[k] = freeze(v)
        return MappingProxyType(copy)
    if type(value) is list:
        return tuple([freeze(v) if type(v) is dict or type(v) is list else v for v in value])
    return value
