"""Reconstruction files (docs/design.md §10): an object on the ground-truth canvas and its coverage."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ptystudy.errors import ContractError
from ptystudy.files import write_atomic
from ptystudy.scan.contract import parse_metadata, read_npz


@dataclass(frozen=True)
class Reconstruction:
    """obj : (H, W) complex64. coverage : (H, W) bool. metadata : arm, condition, timings."""

    obj: np.ndarray
    coverage: np.ndarray
    metadata: dict[str, Any]


def write_recon(path: Path, recon: Reconstruction) -> Path:
    """Check and write ``recon`` atomically; a reconstruction with NaN or no coverage is refused."""
    check_recon(recon, Path(path))
    arrays = {
        "object": recon.obj,
        "coverage": recon.coverage,
        "metadata": np.array(json.dumps(recon.metadata, sort_keys=True)),
    }
    return write_atomic(Path(path), lambda handle: np.savez(handle, **arrays))


def load_recon(path: Path) -> Reconstruction:
    """Load and check a reconstruction file; ContractError names the file and the problem."""
    path = Path(path)
    arrays = read_npz(path)
    missing = [key for key in ("object", "coverage", "metadata") if key not in arrays]
    if missing:
        raise ContractError(f"{path}: missing key(s) {', '.join(missing)}")
    recon = Reconstruction(arrays["object"], arrays["coverage"], parse_metadata(path, arrays["metadata"]))
    check_recon(recon, path)
    return recon


def check_recon(recon: Reconstruction, path: Path) -> None:
    if recon.obj.dtype != np.complex64 or recon.obj.ndim != 2:
        raise ContractError(f"{path}: object must be (H, W) complex64, got {recon.obj.dtype} {recon.obj.shape}")
    if recon.coverage.dtype != np.bool_ or recon.coverage.shape != recon.obj.shape:
        raise ContractError(
            f"{path}: coverage must be (H, W) bool like the object, got {recon.coverage.dtype} {recon.coverage.shape}"
        )
    if not recon.coverage.any():
        raise ContractError(f"{path}: the reconstruction covers no pixel")
    if not np.all(np.isfinite(recon.obj)):
        raise ContractError(f"{path}: object holds non-finite values")
