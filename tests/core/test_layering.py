"""The core stays framework-free and off Authlib's httpx integration, as users rely on."""

from __future__ import annotations

import subprocess
import sys


def _modules_loaded_by(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    output = subprocess.run(  # noqa: S603 - our own interpreter and a fixed statement
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=True
    )
    return set(output.stdout.split())


def test_importing_the_core_loads_neither_litestar_nor_authlibs_httpx_integration():
    loaded = _modules_loaded_by("import rpkit, rpkit.client, rpkit.flow, rpkit.logout")

    assert not {m for m in loaded if m == "litestar" or m.startswith("litestar.")}
    assert not {m for m in loaded if m.startswith("authlib.integrations")}
    assert "httpx2" not in loaded
