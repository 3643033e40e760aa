"""The machine description and TensorFlow's oneDNN kernels turned on where the CPU has them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ptystudy.machine import (
    INTRA_OP_VARIABLE,
    ISA_LIMIT_VARIABLE,
    ONEDNN_VARIABLE,
    configure_tensorflow_environment,
    cpu_description,
    machine_line,
    onednn_default,
)

EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7B13
stepping\t: 1
flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2

processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2
"""

XEON = (
    "model name\t: Intel Xeon Platinum 8480\nflags\t\t: sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile\n"
)
OLD_X86 = "model name\t: Intel Core 2\nflags\t\t: sse sse2 ssse3 sse4_1\n"


def test_cpu_description_reads_the_model_and_vector_extensions():
    cpu = cpu_description(EPYC)
    assert cpu["model"] == "AMD EPYC 7B13"
    assert cpu["signature"] == "family 25 model 1 stepping 1"  # Zen 3; "model" is not "model name"
    assert cpu["vector_extensions"] == ["sse4_2", "avx", "avx2", "fma"]
    assert cpu["cores"] >= 1
    assert cpu_description(XEON)["signature"] is None  # no family in the text: not guessed
    assert cpu_description(XEON)["vector_extensions"][-4:] == ["avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"]


def test_the_benchmarks_line_names_the_cpu_generation():
    line = machine_line({"cpu": cpu_description(EPYC)})
    assert line.startswith("CPU: AMD EPYC 7B13 (family 25 model 1 stepping 1; ")
    assert line.endswith("sse4_2 avx avx2 fma)")
    assert "(no family read; " in machine_line({"cpu": cpu_description(XEON)})


def test_the_benchmarks_line_says_when_onednn_is_limited_to_an_instruction_set():
    """``ONEDNN_MAX_CPU_ISA=AVX2`` on an AVX-512 CPU computes as an AVX2 CPU does: the line says so."""
    environment = {ONEDNN_VARIABLE: "1", INTRA_OP_VARIABLE: "1", "TF_NUM_INTEROP_THREADS": None}
    runtime = {"tensorflow": "2.21.0", "onednn": True, "intra_op_threads": 0, "inter_op_threads": 0}
    cpu = cpu_description(XEON)
    limited = machine_line(
        {"cpu": cpu, "tensorflow": {**runtime, "environment": {**environment, ISA_LIMIT_VARIABLE: "AVX2"}}}
    )
    assert "oneDNN on (TF_ENABLE_ONEDNN_OPTS=1, kernels limited to ONEDNN_MAX_CPU_ISA=AVX2), threads intra=1" in limited
    for unlimited in ({**environment, ISA_LIMIT_VARIABLE: None}, environment):  # a description from before the key
        line = machine_line({"cpu": cpu, "tensorflow": {**runtime, "environment": unlimited}})
        assert line.endswith("oneDNN on (TF_ENABLE_ONEDNN_OPTS=1), threads intra=1, inter=per core")


@pytest.mark.parametrize(
    ("cpuinfo", "architecture", "expected"),
    [(EPYC, "x86_64", "1"), (XEON, "x86_64", "1"), (OLD_X86, "x86_64", None), (EPYC, "aarch64", None)],
)
def test_onednn_is_turned_on_on_x86_cpus_with_avx2(cpuinfo, architecture, expected):
    cpu = {**cpu_description(cpuinfo), "architecture": architecture}
    assert onednn_default(cpu) == expected
    environ: dict[str, str] = {}
    assert configure_tensorflow_environment(environ, cpu) == expected
    assert environ.get(ONEDNN_VARIABLE) == expected


@pytest.mark.parametrize("users_choice", ["0", "1"])
def test_the_users_own_setting_wins(users_choice):
    environ = {ONEDNN_VARIABLE: users_choice, INTRA_OP_VARIABLE: "3"}
    assert configure_tensorflow_environment(environ, cpu_description(EPYC)) == users_choice
    assert environ[ONEDNN_VARIABLE] == users_choice and environ[INTRA_OP_VARIABLE] == "3"


@pytest.mark.parametrize(("cores", "threads"), [(1, "1"), (2, "1"), (16, "8")])
def test_each_op_gets_the_cores_of_one_of_two_concurrent_trainings(cores, threads):
    environ: dict[str, str] = {}
    configure_tensorflow_environment(environ, {**cpu_description(EPYC), "cores": cores})
    assert environ[INTRA_OP_VARIABLE] == threads


def _tensorflow_state(setting: str) -> dict:
    """Import ptystudy.models in a fresh process with ``TF_ENABLE_ONEDNN_OPTS=setting`` and
    report its machine description, TensorFlow's own oneDNN state included."""
    code = (
        "import json, ptystudy.models\n"
        "from ptystudy.machine import describe_machine\n"
        "print(json.dumps(describe_machine()))\n"
    )
    env = {**os.environ, ONEDNN_VARIABLE: setting}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(onednn_default(cpu_description()) is None, reason="oneDNN is not turned on for this CPU")
def test_importing_the_networks_turns_onednn_on_unless_the_user_said_no(fresh_interpreter):
    """The real TensorFlow: on by default where the CPU supports it, off when the user says 0."""
    default = fresh_interpreter["machine"]
    refused = _tensorflow_state("0")
    assert default["tensorflow"]["environment"][ONEDNN_VARIABLE] == "1"
    assert ISA_LIMIT_VARIABLE in default["tensorflow"]["environment"]  # recorded, set or not
    assert default["tensorflow"]["onednn"] is True
    assert default["cpu"]["model"] == cpu_description()["model"]
    assert refused["tensorflow"]["onednn"] is False
