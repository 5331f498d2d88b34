"""Helpers for the examples' smoke tests: load an example module by path (each example is a
folder of scripts, not a package) and sign in through a fake OP in-process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import httpx
from litestar.testing import AsyncTestClient

from rpkit.testing import FakeOP

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
APP_URL = "http://127.0.0.1:8000"


def load_example(relative: str) -> ModuleType:
    """``examples/<relative>`` as a module named ``rpkit_example_<...>`` (no clashes between
    examples that all have an ``app.py``)."""
    path = EXAMPLES / relative
    name = "rpkit_example_" + relative.removesuffix(".py").replace("/", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


async def sign_in(client: AsyncTestClient, op: FakeOP, login_path: str) -> httpx.Response:
    """Start a login at the app, let ``op`` approve it, deliver the callback; the app's answer."""
    started = await client.get(login_path, follow_redirects=False)
    assert started.status_code == 303, started.text
    callback = await op.approve(started.headers["location"])
    return await client.get(callback.location, follow_redirects=False)
