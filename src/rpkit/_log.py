"""rpkit's structlog logger. Events carry ``provider``, ``issuer`` and ``flow_id`` where known;
never a token, code, secret or OTP."""

from __future__ import annotations

from typing import Any

import structlog

LOGGER_NAME = "rpkit"


def get_logger(**bound: Any) -> Any:
    """The rpkit logger with ``bound`` context (structlog's lazy proxy; configure structlog,
    or Litestar's ``StructlogPlugin``, to route it)."""
    return structlog.get_logger(LOGGER_NAME).bind(**bound)
