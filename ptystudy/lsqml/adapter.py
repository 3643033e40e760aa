"""The pty-chi 2.2 LSQML adapter (docs/design.md §7): the only module that imports ``ptychi``.

pty-chi sets torch's default device and dtype and reseeds numpy, torch and random for
the whole process, so ``run_lsqml`` is meant to run in its own process
(``ptystudy.lsqml.worker``), never where the networks train.

Conventions: pty-chi extracts an N x N patch whose top-left pixel is
``position - (N - 1) / 2`` (pixel indices, origin top left), so our integer centre ``y``
(patch rows ``y - N/2 .. y + N/2 - 1``) is pty-chi's pixel position ``y - 0.5``. Positions
are handed over relative to an origin we specify: the object buffer's centre
``(H/2 - 0.5, W/2 - 0.5)``; the buffer is the ground-truth canvas itself, so the result
needs no placing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ptystudy.config import LsqmlConfig
from ptystudy.scan.contract import Scan


@dataclass(frozen=True)
class LsqmlSettings:
    """How LSQML runs: epoch cap and plateau test, batches, momentum, device, seed."""

    max_epochs: int
    tolerance: float
    """Stop when the cost fell by less than this fraction per epoch over the last ``check_every`` epochs."""
    check_every: int
    batches_per_epoch: int
    momentum: float
    device: str
    """``auto`` (the GPU when torch sees one), ``cpu`` or ``gpu``."""
    seed: int

    @classmethod
    def of(cls, config: LsqmlConfig, *, seed: int, device: str | None = None) -> LsqmlSettings:
        """The settings of the study's LSQML configuration; ``device`` overrides its device."""
        return cls(
            max_epochs=config.max_epochs,
            tolerance=config.tolerance,
            check_every=config.check_every,
            batches_per_epoch=config.batches_per_epoch,
            momentum=config.momentum,
            device=device or config.device,
            seed=seed,
        )


def buffer_origin(shape: tuple[int, int]) -> np.ndarray:
    """The position origin (row, col) in pixel indices: the centre of an (H, W) buffer."""
    return np.array([shape[0] / 2 - 0.5, shape[1] / 2 - 0.5])


def to_ptychi_positions(
    ycoords: np.ndarray, xcoords: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Our integer patch centres -> pty-chi's (y, x) positions about ``buffer_origin(shape)``."""
    origin = buffer_origin(shape)
    return ycoords - 0.5 - origin[0], xcoords - 0.5 - origin[1]


def batch_size(n_patterns: int, batches_per_epoch: int) -> int:
    """Compact batch size giving about ``batches_per_epoch`` batches (at least 1 pattern)."""
    return max(1, int(np.ceil(n_patterns / batches_per_epoch)))


def resolve_device(device: str) -> str:
    """``auto`` -> ``gpu`` when torch sees a CUDA device, else ``cpu``; ``gpu`` needs one."""
    import torch

    if device == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if device == "gpu" and not torch.cuda.is_available():
        raise RuntimeError("LSQML was asked to run on the GPU, but torch sees no CUDA device")
    return device


def build_options(settings: LsqmlSettings, n_patterns: int, shape: tuple[int, int], *, device: str):
    """LSQML options: Poisson noise, compact batches with momentum, known probe, seeded."""
    from ptychi.api import LSQMLOptions, enums

    options = LSQMLOptions()
    options.data_options.fft_shift = True
    recon = options.reconstructor_options
    recon.num_epochs = settings.max_epochs
    recon.noise_model = enums.NoiseModels.POISSON
    recon.batching_mode = enums.BatchingModes.COMPACT
    recon.batch_size = batch_size(n_patterns, settings.batches_per_epoch)
    recon.momentum_acceleration_gain = settings.momentum
    recon.random_seed = settings.seed
    recon.default_device = enums.Devices.GPU if device == "gpu" else enums.Devices.CPU
    recon.displayed_loss_function = enums.LossFunctions.MSE_SQRT
    options.object_options.optimizable = True
    options.object_options.determine_position_origin_coords_by = enums.ObjectPosOriginCoordsMethods.SPECIFIED
    options.object_options.position_origin_coords = buffer_origin(shape)
    options.probe_options.optimizable = False
    options.probe_position_options.optimizable = False
    return options


def cost_plateaued(cost_per_epoch: list[float], *, window: int, tolerance: float) -> bool:
    """Whether the cost fell by less than ``tolerance`` (a fraction of its last value) per
    epoch, on average over the last ``window`` epochs.

    Needs ``2 * window`` epochs first: epoch 0 only rescales the probe, and the first
    epochs fall fastest.
    """
    if len(cost_per_epoch) < 2 * window:
        return False
    before, last = cost_per_epoch[-window - 1], cost_per_epoch[-1]
    if not (np.isfinite(before) and np.isfinite(last)) or last <= 0:
        return False
    return (before - last) / (window * last) < tolerance


@dataclass(frozen=True)
class LsqmlResult:
    """obj : (H, W) complex64 on the view's object canvas; cost per epoch; why it stopped; timings."""

    obj: np.ndarray
    cost_per_epoch: list[float]
    n_patterns: int
    epochs: int
    stop_reason: str
    batch_size: int
    seconds: float
    device: str


def run_lsqml(view: Scan, settings: LsqmlSettings) -> LsqmlResult:
    """Reconstruct ``view`` with LSQML from a flat start (ones), using every pattern, until
    the cost plateaus (``cost_plateaued``, checked every ``check_every`` epochs) or the
    epoch cap.

    Intensities are the photon counts ``diffraction**2``; the probe is the view's (known,
    fixed); positions are converted once, here.
    """
    from ptychi.api.task import PtychographyTask

    shape = view.obj.shape
    ys, xs = to_ptychi_positions(view.ycoords, view.xcoords, shape)
    device = resolve_device(settings.device)
    options = build_options(settings, view.n_patterns, shape, device=device)
    task = PtychographyTask(
        options,
        diffraction_data=view.counts(),
        object_data=np.ones((1, *shape), np.complex64),
        probe_data=view.probe[None, None].astype(np.complex64),
        probe_position_y_px=ys,
        probe_position_x_px=xs,
    )
    started = time.perf_counter()
    costs: list[float] = []
    reason = f"epoch cap ({settings.max_epochs}) reached before the cost plateaued"
    while len(costs) < settings.max_epochs:
        task.run(min(settings.check_every, settings.max_epochs - len(costs)))
        costs = [float(value) for value in task.reconstructor.loss_tracker.table["loss"].to_numpy()]
        if cost_plateaued(costs, window=settings.check_every, tolerance=settings.tolerance):
            reason = (
                f"converged: the cost fell by less than {settings.tolerance:g} per epoch "
                f"over the last {settings.check_every} epochs"
            )
            break
    seconds = time.perf_counter() - started
    obj = task.get_data_to_cpu("object", as_numpy=True)[0].astype(np.complex64)
    return LsqmlResult(
        obj=obj,
        cost_per_epoch=costs,
        n_patterns=int(task.reconstructor.parameter_group.probe_positions.data.shape[0]),
        epochs=len(costs),
        stop_reason=reason,
        batch_size=options.reconstructor_options.batch_size,
        seconds=seconds,
        device=device,
    )


def describe_environment() -> dict[str, Any]:
    """Versions, devices and CPU threads the worker sees (ptychi, torch, CUDA)."""
    import ptychi
    import torch

    return {
        "ptychi": getattr(ptychi, "__version__", "unknown"),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cpu_threads": torch.get_num_threads(),
    }
