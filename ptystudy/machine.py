"""The machine a study runs on, and TensorFlow's fast CPU kernels on it.

TensorFlow's oneDNN kernels (convolutions, matrix products, pooling) are much faster than
its own on x86 CPUs, but TensorFlow turns them on by default only on CPUs with AVX-512
class features (AVX512_VNNI, AVX512_BF16, AVX_VNNI, AMX). On an AVX2 CPU without them,
such as AMD's Zen 2 and 3, the study's networks trained about 2x slower
(benchmarks/RESULTS.md). ``configure_tensorflow_environment`` sets
``TF_ENABLE_ONEDNN_OPTS=1`` on every x86-64 CPU with AVX2 before TensorFlow is imported,
unless the user set it: on the CPUs where TensorFlow already enables oneDNN, ``1`` is
its default, so nothing changes there. oneDNN rounds differently from TensorFlow's own
kernels (so do other CPUs and thread counts): results agree to rounding, not bit for bit.

Nothing here imports TensorFlow except ``tensorflow_runtime``, which reads the state of a
TensorFlow already started.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
INTRA_OP_VARIABLE = "TF_NUM_INTRAOP_THREADS"
THREAD_VARIABLES = (INTRA_OP_VARIABLE, "TF_NUM_INTEROP_THREADS")
ISA_LIMIT_VARIABLE = "ONEDNN_MAX_CPU_ISA"
"""oneDNN's kernels limited to an instruction set (e.g. ``AVX2`` on an AVX-512 CPU): they then
compute, and round, as on a CPU that has only that set (benchmarks/RESULTS.md)."""
CONCURRENT_TRAININGS = 2
"""Networks the study trains at once in its process (``flows/_lanes.py``). On the study's
small networks TensorFlow keeps a second core busy without gaining speed (one training:
the same seconds per epoch with one thread per op as with two, on 2 cores), so two
trainings with half the cores each train about 1.4x faster than one after another."""
VECTOR_EXTENSIONS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "asimd",
    "sve",
)
"""CPU flags worth recording: what TensorFlow's and oneDNN's kernels choose between."""


def cpu_description(cpuinfo: str | None = None) -> dict[str, Any]:
    """The CPU: ``model``, ``signature`` (x86 family, model and stepping), ``architecture``,
    ``cores`` (usable by this process) and the ``vector_extensions`` of ``VECTOR_EXTENSIONS``
    it has, read from ``/proc/cpuinfo`` (or the text given); on systems without it, the model
    from ``platform``, no signature and no flags."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(errors="replace") if path.exists() else ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if fields:
                break  # the first processor's block is enough
            continue
        fields.setdefault(key.strip(), value.strip())
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return {
        "model": fields.get("model name") or platform.processor() or "unknown",
        "signature": _signature(fields),
        "architecture": platform.machine(),
        "cores": len(usable),
        "vector_extensions": [flag for flag in VECTOR_EXTENSIONS if flag in flags],
    }


def _signature(fields: dict[str, str]) -> str | None:
    """x86's CPU family, model and stepping, e.g. ``"family 25 model 17 stepping 1"`` (AMD Zen
    4): the generation, where a virtual machine's model name ("AMD EPYC") does not say it."""
    keys = {"family": "cpu family", "model": "model", "stepping": "stepping"}
    if any(key not in fields for key in keys.values()):
        return None
    return " ".join(f"{name} {fields[key]}" for name, key in keys.items())


def onednn_default(cpu: dict[str, Any]) -> str | None:
    """``"1"`` where oneDNN's kernels run and help: an x86-64 CPU with AVX2 (None elsewhere,
    leaving TensorFlow's own choice)."""
    if cpu["architecture"] in ("x86_64", "AMD64") and "avx2" in cpu["vector_extensions"]:
        return "1"
    return None


def intra_op_threads(cores: int) -> int:
    """Threads each TensorFlow op may use: the cores shared by ``CONCURRENT_TRAININGS``."""
    return max(1, cores // CONCURRENT_TRAININGS)


def configure_tensorflow_environment(
    environ: MutableMapping[str, str] | None = None, cpu: dict[str, Any] | None = None
) -> str | None:
    """Turn TensorFlow's oneDNN kernels on where the CPU supports them (``TF_ENABLE_ONEDNN_OPTS``),
    give each op the cores of one of ``CONCURRENT_TRAININGS`` (``TF_NUM_INTRAOP_THREADS``),
    and quiet TensorFlow's C++ INFO logs; a variable the user's environment already sets wins.

    Must run before TensorFlow is imported (``ptystudy.models`` calls it first). ``environ``
    defaults to ``os.environ``, ``cpu`` to this machine's ``cpu_description()``. Returns
    the value ``TF_ENABLE_ONEDNN_OPTS`` now has, or None when it is left unset.
    """
    environ = os.environ if environ is None else environ
    cpu = cpu_description() if cpu is None else cpu
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    environ.setdefault(INTRA_OP_VARIABLE, str(intra_op_threads(cpu["cores"])))
    wanted = onednn_default(cpu)
    if wanted is not None:
        environ.setdefault(ONEDNN_VARIABLE, wanted)
    return environ.get(ONEDNN_VARIABLE)


def tensorflow_runtime() -> dict[str, Any]:
    """How the running TensorFlow computes: its version, whether its oneDNN kernels are on,
    its thread pools (0 = one thread per core) and the environment variables that chose
    them. TensorFlow must already be imported."""
    if "tensorflow" not in sys.modules:
        raise RuntimeError("tensorflow_runtime() reads a running TensorFlow; import ptystudy.models first")
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port

    return {
        "tensorflow": tf.__version__,
        "onednn": bool(_pywrap_util_port.IsMklEnabled()),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "environment": {
            name: os.environ.get(name) for name in (ONEDNN_VARIABLE, *THREAD_VARIABLES, ISA_LIMIT_VARIABLE)
        },
    }


def describe_machine() -> dict[str, Any]:
    """The CPU and, where TensorFlow runs in this process, how it computes (for the run
    manifest and every benchmark's output)."""
    machine = {"cpu": cpu_description(), "python": platform.python_version()}
    if "tensorflow" in sys.modules:
        machine["tensorflow"] = tensorflow_runtime()
    return machine


def machine_line(machine: dict[str, Any]) -> str:
    """One line for a benchmark's output: CPU, cores, extensions, oneDNN (and the instruction
    set its kernels are limited to, where one is) and threads."""
    cpu = machine["cpu"]
    text = (
        f"CPU: {cpu['model']} ({cpu['signature'] or 'no family read'}; "
        f"{cpu['architecture']}, {cpu['cores']} cores; "
        f"{' '.join(cpu['vector_extensions']) or 'no vector flags read'})"
    )
    runtime = machine.get("tensorflow")
    if runtime:
        environment = runtime["environment"]
        threads = [
            f"{name}={environment[variable] or runtime[f'{name}_op_threads'] or 'per core'}"
            for name, variable in zip(("intra", "inter"), THREAD_VARIABLES, strict=True)
        ]
        limit = environment.get(ISA_LIMIT_VARIABLE)
        text += (
            f"; TensorFlow {runtime['tensorflow']}, oneDNN {'on' if runtime['onednn'] else 'off'} "
            f"({ONEDNN_VARIABLE}={environment[ONEDNN_VARIABLE]}"
            f"{f', kernels limited to {ISA_LIMIT_VARIABLE}={limit}' if limit else ''}), "
            f"threads {', '.join(threads)}"
        )
    return text
