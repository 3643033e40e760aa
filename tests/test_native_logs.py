"""TensorFlow's native start-up chatter is kept out of the output; real messages are not."""

from __future__ import annotations

from ptystudy.native_logs import gpu_driver_present, startup_chatter

CAPTURED = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796030959.664541   25860 port.cc:153] oneDNN custom operations are on.\n",
    "I0000 00:00:1796030961.005294   25860 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with flags.\n",
    "E0000 00:00:1796030962.411998   25860 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n",
    "W0000 00:00:1796030962.500000   25860 gpu_device.cc:2342] Cannot dlopen some GPU libraries.\n",
    "E0000 00:00:1796030962.600000   25860 op_kernel.cc:1000] a real kernel error\n",
    "/work/x.py:3: UserWarning: a real Python warning\n",
]


def test_chatter_is_dropped_and_warnings_and_errors_are_kept():
    without_gpu = dict(zip(CAPTURED, startup_chatter(CAPTURED, gpu_driver=False), strict=True))
    assert [line for line, drop in without_gpu.items() if not drop] == CAPTURED[5:]
    with_gpu = dict(zip(CAPTURED, startup_chatter(CAPTURED, gpu_driver=True), strict=True))
    assert not with_gpu[CAPTURED[4]], "with a GPU driver a failed cuInit is a real error"


def test_a_python_line_after_a_dropped_record_is_kept():
    lines = [CAPTURED[1], "Traceback (most recent call last):\n"]
    assert startup_chatter(lines, gpu_driver=False) == [True, False]


def test_importing_the_networks_prints_no_chatter_but_real_warnings(fresh_interpreter):
    """In a fresh interpreter, as a new user's terminal would show it."""
    stderr = fresh_interpreter["stderr"]
    assert "a real warning" in stderr
    for chatter in ("absl::InitializeLog", "oneDNN", "I0000", "rebuild TensorFlow"):
        assert chatter not in stderr, stderr
    if not gpu_driver_present():
        assert "cuInit" not in stderr, stderr
