"""Phase C: simulate every planned scan at one dose, split into train and test (docs/design.md §3, §5).

The specimen depends only on the simulation seed and the planned scans (each view of each
split, and the training corpora) only on the subsampling seed, never on the dose: every
dose sees the same specimen at the same positions, and only the Poisson draws, seeded
per dose, differ.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from ptystudy.conditions import Split
from ptystudy.config import ObjectFileProbe, ScanConfig, Seeds, SpecimenKind, StudyConfig
from ptystudy.errors import ContractError
from ptystudy.files import sha256_file
from ptystudy.scan import physics
from ptystudy.scan.contract import SCHEMA_VERSION, Scan, complex_array, read_npz
from ptystudy.scan.lattice import PlannedScan, plan_scans, split_regions, split_rows

logger = logging.getLogger(__name__)

_CHUNK_PATTERNS = 256


@dataclass(frozen=True)
class Specimen:
    """What is scanned: the object, the probe, and where they came from.

    obj : (H, W) complex64. probe : (N, N) complex64. provenance : JSON-able description.
    """

    obj: np.ndarray
    probe: np.ndarray
    provenance: dict[str, Any]

    @property
    def probe_diameter_px(self) -> float:
        return physics.probe_diameter_px(self.probe)


def make_specimen(config: ScanConfig, seeds: Seeds) -> Specimen:
    """The built-in object and probe, or the user's NPZ (``config.object_file``)."""
    size = config.patch_size_px
    if config.object_file is None:
        rng = np.random.default_rng(seeds.specimen_seed)
        probe = physics.make_probe(size, config.probe_diameter_fraction)
        if config.specimen is SpecimenKind.STATIONARY:
            diameter = physics.probe_diameter_px(probe)
            obj = physics.make_stationary_object(config.object_shape_px, diameter, rng)
            description = f"built-in stationary specimen, features 1-{diameter:.1f} px (the probe footprint D)"
        else:
            obj = physics.make_object(config.object_shape_px, rng)
            description = "built-in large-feature specimen (flat discs and bars up to 1/8 of the object)"
        provenance = {
            "object": f"{description}, seed {seeds.specimen_seed}",
            "specimen": str(config.specimen),
            "probe": f"built-in defocused aperture, diameter fraction {config.probe_diameter_fraction}",
        }
        return Specimen(obj, probe, provenance)
    path = Path(config.object_file)
    obj, probe = load_user_specimen(path, size, read_probe=config.object_file_probe is ObjectFileProbe.FILE)
    provenance = {"object": str(path), "object_sha256": sha256_file(path)}
    if probe is None:
        probe = physics.make_probe(size, config.probe_diameter_fraction)
        provenance["probe"] = (
            f"built-in defocused aperture, diameter fraction {config.probe_diameter_fraction} "
            f"(object_file_probe: {config.object_file_probe})"
        )
    else:
        provenance["probe"] = f"probeGuess of {path}"
    return Specimen(obj, probe, provenance)


def load_user_specimen(path: Path, patch_size: int, *, read_probe: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Read ``objectGuess`` (and ``probeGuess`` if present and ``read_probe``) from a user's NPZ.

    Returns ``(obj, probe)``: (H, W) complex64 and (N, N) complex64 or None.

    Raises
    ------
    ContractError
        Naming the file: missing key, pickled or non-complex arrays, wrong shapes,
        non-finite values, a zero object, or a probe larger than the object.
    """
    arrays = read_npz(path, keys=("objectGuess", "probeGuess") if read_probe else ("objectGuess",))
    if "objectGuess" not in arrays:
        raise ContractError(f"{path}: missing key objectGuess")
    obj = complex_array(path, "objectGuess", arrays["objectGuess"], ndim=2)
    probe = arrays.get("probeGuess")
    if probe is not None:
        probe = complex_array(path, "probeGuess", probe, ndim=2)
        if probe.shape != (patch_size, patch_size):
            if probe.shape[0] > obj.shape[0] or probe.shape[1] > obj.shape[1]:
                raise ContractError(f"{path}: probeGuess {probe.shape} is larger than objectGuess {obj.shape}")
            raise ContractError(
                f"{path}: probeGuess must be ({patch_size}, {patch_size}) to match patch_size_px, got "
                f"{probe.shape}; set scan.object_file_probe: builtin to scan the object with the built-in probe"
            )
        if not np.any(probe):
            raise ContractError(f"{path}: probeGuess is zero everywhere")
    if min(obj.shape) < 2 * patch_size:
        raise ContractError(
            f"{path}: objectGuess {obj.shape} is too small for {patch_size}x{patch_size} patches "
            f"(need at least {2 * patch_size} pixels a side)"
        )
    if not np.any(obj):
        raise ContractError(f"{path}: objectGuess is zero everywhere")
    return obj, probe


class ScanPlanConfig(BaseModel):
    """What decides where the study scans, besides the specimen: the views' overlaps, the
    fewest positions a view may hold and the size of the training corpora. (The group
    settings are phase D's, so changing them does not re-simulate.)"""

    model_config = ConfigDict(frozen=True, extra="forbid")

    overlaps: dict[str, float]
    min_positions: int
    min_samples: int

    @classmethod
    def of(cls, config: StudyConfig) -> ScanPlanConfig:
        return cls(
            overlaps=config.views.overlaps,
            min_positions=config.views.min_positions,
            min_samples=config.training.min_samples,
        )


def plan_specimen_scans(
    specimen: Specimen, config: ScanConfig, plan: ScanPlanConfig, seeds: Seeds
) -> dict[Split, list[PlannedScan]]:
    """Every scan of the study on ``specimen``, per split (``scan_layout.plan_scans``)."""
    regions = split_regions(specimen.obj.shape, config.patch_size_px, config.train_fraction)
    return plan_scans(
        regions,
        plan.overlaps,
        diameter_px=specimen.probe_diameter_px,
        min_positions=plan.min_positions,
        min_samples=plan.min_samples,
        seed=seeds.subsampling,
    )


def far_field(specimen: Specimen, ycoords: np.ndarray, xcoords: np.ndarray) -> np.ndarray:
    """Noiseless far-field amplitudes (n, N, N) float32 of every position, chunked over threads."""
    size = specimen.probe.shape[0]
    amplitude = np.empty((ycoords.size, size, size), dtype=np.float32)

    def fill(chunk: slice) -> None:
        patches = physics.extract_patches(specimen.obj, ycoords[chunk], xcoords[chunk], size)
        amplitude[chunk] = physics.far_field_amplitude(specimen.probe, patches)

    _map_chunks(fill, ycoords.size)
    return amplitude


def sample_diffraction(amplitude: np.ndarray, dose: float, seed: Sequence[int]) -> tuple[np.ndarray, np.ndarray, float]:
    """Poisson-sample counts at ``dose`` photons per pattern.

    Each chunk of ``_CHUNK_PATTERNS`` patterns draws from its own Generator seeded with
    ``[*seed, chunk number]``, so the result does not depend on the number of threads.

    Returns ``(diffraction, totals, scale)``: sqrt(counts) (n, N, N) float32, the total
    count of each pattern (n,) float64, and the scale s of docs/design.md §3.
    """
    scale = physics.dose_scale(amplitude, dose)
    diffraction = np.empty_like(amplitude)
    totals = np.empty(amplitude.shape[0])

    def fill(chunk: slice) -> None:
        rng = np.random.default_rng([*seed, chunk.start // _CHUNK_PATTERNS])
        block = amplitude[chunk]
        counts = physics.sample_counts(np.float32(scale**2) * block * block, rng)
        totals[chunk] = counts.sum(axis=(1, 2))
        np.sqrt(counts, out=diffraction[chunk], dtype=np.float32)

    _map_chunks(fill, amplitude.shape[0])
    return diffraction, totals, scale


def _map_chunks(fill: Callable[[slice], None], n: int) -> None:
    """Run ``fill`` on every chunk of ``n`` patterns, on up to ``os.cpu_count()`` threads."""
    chunks = [slice(start, min(start + _CHUNK_PATTERNS, n)) for start in range(0, n, _CHUNK_PATTERNS)]
    workers = min(len(chunks), os.cpu_count() or 1)
    if workers <= 1:
        for chunk in chunks:
            fill(chunk)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(fill, chunk) for chunk in chunks]:
            future.result()


def simulate_dose(config: ScanConfig, plan: ScanPlanConfig, seeds: Seeds, dose: float) -> dict[Split, Scan]:
    """Simulate every planned scan at ``dose`` photons per pattern, one file's worth per split.

    Each split's ``Scan`` holds its planned scans one after another; the metadata's
    ``scans`` names each one's rows (``start``, ``stop``), and ``scan_index`` numbers the
    patterns of both splits together (train first). One dose scale s is fitted to all
    patterns of the dose. Same config and seeds give bit-identical arrays.

    Raises
    ------
    InfeasibleViewError
        If a view cannot hold its positions (``scan_layout.plan_scans``).
    ContractError
        If the user's object file is broken.
    """
    specimen = make_specimen(config, seeds)
    size = config.patch_size_px
    plans = plan_specimen_scans(specimen, config, plan, seeds)
    planned = [scan for split in Split for scan in plans[split]]
    ycoords = np.concatenate([scan.ycoords for scan in planned])
    xcoords = np.concatenate([scan.xcoords for scan in planned])
    amplitude = far_field(specimen, ycoords, xcoords)
    diffraction, totals, scale = sample_diffraction(amplitude, dose, (seeds.simulation, int(dose)))
    logger.info(
        "dose %g: %d patterns in %d scans, scale %.4g, measured %.1f photons per pattern",
        dose,
        ycoords.size,
        len(planned),
        scale,
        totals.mean(),
    )
    cut_row, train_y_max, test_y_min = split_rows(specimen.obj.shape[0], size, config.train_fraction)
    common = {
        "schema_version": SCHEMA_VERSION,
        "dose": float(dose),
        "scale": scale,
        "probe_diameter_px": specimen.probe_diameter_px,
        "seeds": seeds.model_dump(),
        "provenance": specimen.provenance,
        "pool_size": int(ycoords.size),
        "pool_mean_counts_per_pattern": float(totals.mean()),
        "cut_row": cut_row,
        "guard_centre_rows": [train_y_max + 1, test_y_min - 1],
    }
    scans: dict[Split, Scan] = {}
    offset = 0
    for split in Split:
        listing, n = [], 0
        for scan in plans[split]:
            listing.append({**scan.describe(), "start": n, "stop": n + scan.n_positions})
            n += scan.n_positions
        index = np.arange(offset, offset + n, dtype=np.int64)
        offset += n
        scans[split] = Scan(
            diffraction=diffraction[index],
            ycoords=ycoords[index],
            xcoords=xcoords[index],
            probe=specimen.probe,
            obj=specimen.obj,
            scan_index=index,
            metadata={
                **common,
                "split": str(split),
                "n_patterns": int(index.size),
                "mean_counts_per_pattern": float(totals[index].mean()),
                "scans": listing,
            },
        )
    return scans


def simulate_study_dose(config: StudyConfig, dose: float) -> dict[Split, Scan]:
    """``simulate_dose`` with the scan, scan-plan and seed settings of ``config``."""
    return simulate_dose(config.scan, ScanPlanConfig.of(config), config.seeds, dose)
