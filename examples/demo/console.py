"""The demo's console: one log format for rpkit's structlog events and every library's logging
records (uvicorn, Litestar), one line per event, on stderr; stdout keeps the banner.

httpx's INFO line per request is dropped: rpkit logs the same fetch as an event of its own
(``rpkit.discovery.fetched``, ``rpkit.jwks.fetched``). Records pass through one handler, whose
lock keeps the lines of the app and of the fake providers' server threads whole.
"""

from __future__ import annotations

import logging
import sys

import structlog
from litestar.logging.config import LoggingConfig

__all__ = ["app_logging_config", "configure_logging", "route_server_logs"]

QUIET = ("httpx", "httpcore")
"""Loggers that repeat, request by request, what rpkit's events already say."""


def configure_logging(level: int = logging.INFO) -> None:
    """Route structlog through the standard library and give the root logger the one handler."""
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="%H:%M:%S"),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def route_server_logs() -> None:
    """uvicorn configures its loggers with handlers and a format of its own when a server is
    created: send their records to the root handler instead (call after creating servers)."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True


def app_logging_config() -> LoggingConfig:
    """Litestar's logging without a handler of its own: its records reach the root handler
    above. Exceptions are logged in debug mode only, as by default: a 401 or a guard's redirect
    is an answer, not an event worth a traceback."""
    return LoggingConfig(
        configure_root_logger=False,
        loggers={"litestar": {"level": "INFO", "handlers": [], "propagate": True}},
    )
