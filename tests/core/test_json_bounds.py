"""rpkit._json.decode: the nesting bound holds at its edge, whatever shortcut decides to walk."""

from __future__ import annotations

import pytest

from rpkit._frozen import freeze
from rpkit._json import MAX_DEPTH, decode


class Refused(Exception):
    pass


def nested(depth: int, *, opener: str = "[", closer: str = "]") -> bytes:
    return (opener * depth + closer * depth).encode()


def test_json_exactly_at_the_nesting_bound_decodes() -> None:
    value = decode(nested(MAX_DEPTH), Refused)
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == []


def test_the_walk_agrees_at_the_bound_when_strings_make_the_count_high() -> None:
    """Brackets inside a string push the count over the bound, so the walk decides."""
    padded = b'["' + b"[" * 100 + b'", ' + nested(MAX_DEPTH - 1) + b"]"
    assert decode(padded, Refused)[0] == "[" * 100
    too_deep = b'["' + b"[" * 100 + b'", ' + nested(MAX_DEPTH) + b"]"
    with pytest.raises(Refused):
        decode(too_deep, Refused)


def test_json_one_level_past_the_bound_is_refused() -> None:
    with pytest.raises(Refused):
        decode(nested(MAX_DEPTH + 1), Refused)


def test_objects_past_the_bound_are_refused_too() -> None:
    deep = b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1)
    with pytest.raises(Refused):
        decode(deep, Refused)


def test_brackets_inside_strings_do_not_refuse_a_shallow_document() -> None:
    """The bracket count also counts brackets in strings: that may only make rpkit walk."""
    document = b'{"note": "' + b"[{" * 200 + b'", "list": [1, 2]}'
    assert decode(document, Refused)["list"] == [1, 2]


def test_freeze_makes_every_level_read_only_and_leaves_the_input_alone() -> None:
    source = {"a": [1, {"b": [2]}], "c": "d"}
    frozen = freeze(source)
    assert frozen == {"a": (1, {"b": (2,)}), "c": "d"}
    with pytest.raises(TypeError):
        frozen["c"] = "e"
    with pytest.raises(TypeError):
        frozen["a"][1]["b"] = ()
    assert source == {"a": [1, {"b": [2]}], "c": "d"}
