"""Keeping native libraries' start-up chatter out of the study's output.

TensorFlow's C++ runtime logs through Abseil before Abseil's logging is initialised, and
such lines go to stderr whatever ``TF_CPP_MIN_LOG_LEVEL`` says: an INFO line per import
about oneDNN and missing CUDA drivers, a notice about Abseil itself, and on a machine
without an NVIDIA driver ``E0000 ... failed call to cuInit``, which reads as a failure. So
stderr (file descriptor 2, where native code writes) is captured while TensorFlow starts,
and written back less those known lines: any other warning or error still shows.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_ABSL_NOTICE = re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR")
_NATIVE_RECORD = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ \S+:\d+\] (.*)")
"""An Abseil log record's first line: severity, date, time, thread, file:line, message."""
_KNOWN_CONTINUATION = re.compile(r"^To enable the following instructions: .*rebuild TensorFlow")
"""The second line of TensorFlow's INFO record about CPU instructions it was not built for."""


def startup_chatter(lines: list[str], *, gpu_driver: bool) -> list[bool]:
    """For each line of captured stderr, whether it is known native start-up chatter: the
    Abseil notice, native INFO records, and (only without a GPU driver) cuInit's failure.
    The known second line of a dropped INFO record goes with it; every other line is kept."""
    verdicts: list[bool] = []
    record_dropped = False
    for line in lines:
        record = _NATIVE_RECORD.match(line)
        if record:
            severity, message = record.groups()
            record_dropped = severity == "I" or (
                severity == "E" and not gpu_driver and message.startswith("failed call to cuInit")
            )
            verdicts.append(record_dropped)
        elif _ABSL_NOTICE.match(line):
            record_dropped = False
            verdicts.append(True)
        else:
            verdicts.append(record_dropped and bool(_KNOWN_CONTINUATION.match(line)))
            record_dropped = False
    return verdicts


def gpu_driver_present() -> bool:
    """Whether the NVIDIA driver's device node exists (then a failed cuInit is a real error)."""
    return Path("/dev/nvidiactl").exists()


@contextmanager
def quiet_native_startup() -> Iterator[None]:
    """Capture file descriptor 2 inside the block; afterwards write back every line that is
    not start-up chatter. Output of other threads during the block is delayed, not lost."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            dropped = startup_chatter(lines, gpu_driver=gpu_driver_present())
            kept = "".join(line for line, drop in zip(lines, dropped, strict=True) if not drop)
            if kept:
                os.write(2, kept.encode())
