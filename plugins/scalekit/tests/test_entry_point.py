from rpkit.plugins import provider_plugins
from rpkit_scalekit import ScalekitPlugin


def test_scalekit_plugin_is_found_through_the_entry_point():
    plugins = provider_plugins()

    assert isinstance(plugins["scalekit"], ScalekitPlugin)
    assert plugins["scalekit"].name == "scalekit"
