"""Network inputs and targets cut from a view (docs/design.md §6).

The network input is sqrt(counts) divided by one dataset scale, chosen so that the mean
over patterns of ``sum(x**2)`` is ``(N/2)**2``; the scale is saved with the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptystudy.config import Arm
from ptystudy.errors import ContractError
from ptystudy.scan import physics
from ptystudy.scan.contract import Scan


def input_scale(diffraction: np.ndarray) -> float:
    """The normalisation ``sqrt(mean sum(diffraction**2)) / (N/2)`` of a dataset (> 0)."""
    size = diffraction.shape[-1]
    power = float(np.mean(np.square(diffraction).sum(axis=(-2, -1), dtype=np.float64)))
    if power <= 0:
        raise ValueError("the diffraction holds no photons; a network cannot learn from it")
    return float(np.sqrt(power) / (size / 2))


def group_offsets(ycoords: np.ndarray, xcoords: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(g, C, 2) float32 ``(dy, dx)`` of each member from its group's rounded centre, pixels.

    Rounding the centre keeps the offsets whole pixels (positions are integers), so the
    merge's shifts are exact.
    """
    positions = np.stack([ycoords, xcoords], axis=-1)[groups]  # (g, C, 2)
    centres = np.rint(positions.mean(axis=1, keepdims=True))
    return (positions - centres).astype(np.float32)


@dataclass(frozen=True)
class NetworkData:
    """Arrays a network trains or predicts on.

    diffraction : (s, N, N, C) float32 normalised input. counts : (s, N, N, C) float32
    photons. offsets : (s, C, 2) float32 for gs2, else None. members : (s, C) int64 index
    of each sample's patterns in the view.
    """

    diffraction: np.ndarray
    counts: np.ndarray
    offsets: np.ndarray | None
    members: np.ndarray

    @property
    def n_samples(self) -> int:
        return int(self.members.shape[0])

    def inputs(self, index: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
        batch = {"diffraction": self.diffraction[index]}
        if self.offsets is not None:
            batch["offsets"] = self.offsets[index]
        return batch


def network_data(view: Scan, arm: Arm, scale: float, *, grouped: bool | None = None) -> NetworkData:
    """Samples of ``view`` for ``arm``: gs2 groups for the gs2 arms, single patterns otherwise
    (``grouped`` overrides, e.g. to feed single patterns to a network that predicts each
    pattern alone)."""
    if grouped is None:
        grouped = arm.is_gs2
    if grouped:
        if view.groups is None:
            raise ContractError(f"the view has no gs2 groups; the {arm} arm needs them")
        members = view.groups
        offsets = group_offsets(view.ycoords, view.xcoords, members)
    else:
        members = np.arange(view.n_patterns, dtype=np.int64)[:, None]
        offsets = None
    stacked = np.transpose(view.diffraction[members], (0, 2, 3, 1))  # (s, N, N, C)
    diffraction = (stacked / np.float32(scale)).astype(np.float32)
    counts = np.rint(np.square(stacked)).astype(np.float32)
    return NetworkData(diffraction, counts, offsets, members)


def observable_phase(phase: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """Phase patches (n, N/2, N/2, 1) less each one's mean, weighted by the probe's intensity
    over the central N/2 square: the supervised arm's phase target.

    A phase constant over a patch does not change its diffraction pattern, so no single
    pattern determines it; asked for it, a network can only learn it by heart for the
    training region (its validation loss then rises after a few epochs) and guesses it
    elsewhere. The PINNs never see it either (their loss is blind to it); alignment removes
    the global offset of every arm alike.
    """
    size = probe.shape[0]
    quarter = size // 4
    weights = np.abs(probe[quarter : size - quarter, quarter : size - quarter].astype(np.complex128)) ** 2
    weights = (weights / weights.sum())[None, :, :, None]
    return (phase - (phase * weights).sum(axis=(1, 2), keepdims=True)).astype(np.float32)


def truth_patches(view: Scan) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth object amplitude and phase (n, N/2, N/2, 1) float32: the central N/2
    square of each patch (the region every network predicts), cut at the true positions."""
    size = view.patch_size
    patches = physics.extract_patches(view.obj, view.ycoords, view.xcoords, size)
    centre = patches[:, size // 4 : size - size // 4, size // 4 : size - size // 4]
    return np.abs(centre)[..., None].astype(np.float32), np.angle(centre)[..., None].astype(np.float32)
