"""Errors the study raises on purpose, and which of them are worth a retry."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable

EXIT_OK = 0
"""Exit status of every command of the project when it did what was asked."""
EXIT_FAILED = 1
"""Exit status when the work itself failed (a condition of the study, a file being written)."""
EXIT_BAD_INPUT = 2
"""Exit status for bad input or a refused request, before any work: a bad configuration,
an unreadable file, a run directory in use."""


class ContractError(ValueError):
    """A file or input breaks the data contract (docs/design.md §4); retrying cannot help."""


class InfeasibleViewError(ValueError):
    """A view cannot hold the positions it needs at the requested overlap (docs/design.md §5)."""


class TransientError(RuntimeError):
    """A failure that may pass on a second try (a killed worker, a full queue)."""


_TRANSIENT_ERRNOS = {errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.EIO, errno.ETIMEDOUT}


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is worth a retry: killed workers, memory, I/O time-outs.

    Contract errors, bad configuration and plain bugs are never transient: they would
    fail the same way again.
    """
    if isinstance(error, (ContractError, InfeasibleViewError)):
        return False
    if isinstance(error, (TransientError, TimeoutError, MemoryError, ConnectionError)):
        return True
    return isinstance(error, OSError) and error.errno in _TRANSIENT_ERRNOS


def run_command(action: Callable[[], str]) -> int:
    """Run a command's ``action`` and print what it returns; return the project's exit status:
    2 (and one ``error:`` line) for bad input (a broken or missing file), 1 for a failure
    while writing, 0 otherwise."""
    try:
        print(action())
    except (ContractError, FileNotFoundError) as err:  # bad input: nothing was done
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
