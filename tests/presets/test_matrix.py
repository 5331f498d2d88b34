"""Every preset is importable, described, faked and covered by ``pytest -m preset``."""

from __future__ import annotations

import importlib

import pytest

from rpkit.config import ProviderConfig
from rpkit.providers import PRESET_NAMES, preset_infos
from rpkit.testing import FakeOP
from rpkit.testing import providers as fakes


def preset_markers(name: str) -> list[str]:
    module = importlib.import_module(f"tests.presets.test_{name}")
    marks = getattr(module, "pytestmark", [])
    marks = marks if isinstance(marks, list) else [marks]
    return [mark.args[0] for mark in marks if mark.name == "preset"]


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_each_preset_has_a_marked_test_module(name):
    assert preset_markers(name) == [name]


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_each_fake_is_exported_and_configures_its_preset(name):
    fake_class = getattr(fakes, fakes._MODULES_BY_PRESET[name])
    fake = fake_class()
    assert isinstance(fake, FakeOP)
    config = fake.provider_config()
    assert isinstance(config, ProviderConfig)
    assert config.id == name


def test_every_preset_describes_itself_with_sourced_quirks():
    infos = preset_infos()
    assert list(infos) == list(PRESET_NAMES)
    for info in infos.values():
        assert info.quirks, info.name
        assert all(q.source.strip() for q in info.quirks), info.name
