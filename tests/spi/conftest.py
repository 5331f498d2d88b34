"""Fixtures of the SPI tests: the preset harness serves every provider kind too."""

from tests.presets.conftest import open_preset

__all__ = ["open_preset"]
