"""Keep a good run's terminal clean while Prefect's embedded server shuts down.

The embedded server's background services log ``CancelledError`` tracebacks when they
are cancelled at shutdown, even after a run that worked. Those records (and only those)
are dropped; every other error still shows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager


class _DropShutdownCancellation(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, asyncio.CancelledError):
            return False
        return "CancelledError" not in record.getMessage()


@contextmanager
def quiet_server_shutdown() -> Iterator[None]:
    """Drop shutdown-cancellation records from every handler while the block runs and after."""
    drop = _DropShutdownCancellation()
    handlers = [handler for logger in _loggers() for handler in logger.handlers]
    for handler in handlers:
        handler.addFilter(drop)
    yield


def _loggers() -> list[logging.Logger]:
    root = logging.getLogger()
    named = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    return [root, *named]
