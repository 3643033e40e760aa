"""PtychoPINN's scan file layout, both ways (docs/notes.md, "PtychoPINN's file layout").

Export writes a contract scan so that PtychoPINN's loaders read it: its raw-data loader
reads ``diff3d``, its training loader also accepts ``diffraction`` but needs
``xcoords_start``/``ycoords_start``, so both are written. PtychoPINN takes the photon scale
from ``nphotons``, which must be the file's measured mean counts per pattern (not the
nominal dose); it is written in ``_metadata`` (a JSON string, the form PtychoPINN's
``MetadataManager`` writes and reads) and as a plain ``nphotons`` array.

Import turns a PtychoPINN scan (its simulators write normalised float64 amplitudes,
complex128 arrays, continuous positions and pickled metadata) into a contract scan:
whole-photon counts are restored, arrays cast, positions rounded only when asked, and
nothing is ever unpickled (only the arrays named in ``IMPORTED_KEYS`` are read).

Commands::

    python -m ptystudy.scan.ptychopinn export RUN_DIR OUT_DIR
    python -m ptystudy.scan.ptychopinn import IN.npz OUT.npz [--nphotons N] [--round-positions]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ptystudy.errors import ContractError, run_command
from ptystudy.files import sha256_file, write_atomic
from ptystudy.scan import physics
from ptystudy.scan.contract import (
    SCHEMA_VERSION,
    Scan,
    check_scan,
    complex_array,
    imported_message,
    load_scan,
    mean_counts,
    read_npz,
    scan_arrays,
)

METADATA_KEY = "_metadata"
DIFFRACTION_KEYS = ("diff3d", "diffraction")
"""PtychoPINN's raw-data loader reads the first, its training loader either."""
IMPORTED_KEYS = (*DIFFRACTION_KEYS, "xcoords", "ycoords", "probeGuess", "objectGuess", "scan_index")
PTYCHOPINN_METADATA_SCHEMA = "1.0.0"
MAX_QUANTUM_PHOTONS = 64
"""Import tries the smallest stored intensity as 1, 2, ... up to this many photons."""
_QUANTUM_SAMPLE = 200_000


def ptychopinn_arrays(scan: Scan) -> dict[str, np.ndarray]:
    """The arrays of ``scan`` in PtychoPINN's layout (amplitudes stay sqrt(counts))."""
    nphotons = mean_counts(scan.diffraction)
    metadata = {
        "schema_version": PTYCHOPINN_METADATA_SCHEMA,
        "physics_parameters": {"nphotons": nphotons, "N": scan.patch_size, "gridsize": 1},
        "ptystudy": scan.metadata,
    }
    return {
        **scan_arrays(scan),
        "diff3d": scan.diffraction,
        "nphotons": np.array(nphotons),
        METADATA_KEY: np.array(json.dumps(metadata, sort_keys=True)),
    }


def run_scan_files(run_dir: Path) -> list[Path]:
    """Every scan file of a run: the split files (``data/``) and the views and corpora (``views/``)."""
    run_dir = Path(run_dir)
    return sorted(run_dir.glob("data/dose_*/*.npz")) + sorted(run_dir.glob("views/dose_*/*/*.npz"))


def export_run(run_dir: Path, out_dir: Path) -> list[Path]:
    """Write every scan file of ``run_dir`` under ``out_dir`` (same relative paths) in
    PtychoPINN's layout; return the written paths.

    Raises
    ------
    ContractError
        If the run holds no scan file, or one breaks the contract.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    sources = run_scan_files(run_dir)
    if not sources:
        raise ContractError(f"{run_dir}: no scan files under data/ or views/ (is it a study's run directory?)")
    written = []
    for source in sources:
        arrays = ptychopinn_arrays(load_scan(source))
        target = out_dir / source.relative_to(run_dir)
        written.append(write_atomic(target, lambda handle, arrays=arrays: np.savez(handle, **arrays)))
    return written


def import_ptychopinn(
    path: Path, *, nphotons: float | None = None, round_positions: bool = False, dose: float | None = None
) -> Scan:
    """A contract scan from a PtychoPINN scan NPZ.

    nphotons : the file's mean photon count per pattern; None finds the count scale from
        the amplitudes themselves (the smallest stored intensity is a whole number of photons).
    round_positions : round continuous positions to whole pixels (the residual is
        recorded in the metadata); otherwise they are an error.
    dose : the nominal dose to record; None records the measured mean counts.

    Raises
    ------
    ContractError
        Naming the file and the problem: a missing key, non-finite or negative amplitudes,
        amplitudes that are whole-photon counts at no scale, continuous positions (unless
        ``round_positions``), a probe that is not N x N, positions outside the object.
    """
    path = Path(path)
    arrays = read_npz(path, keys=IMPORTED_KEYS)
    key, amplitude = _diffraction(path, arrays)
    missing = [name for name in ("xcoords", "ycoords", "probeGuess", "objectGuess") if name not in arrays]
    if missing:
        raise ContractError(f"{path}: missing key(s) {', '.join(missing)}")
    counts_per_unit, scale_source = count_scale(path, amplitude, nphotons)
    diffraction = np.sqrt(np.rint(amplitude**2 * counts_per_unit)).astype(np.float32)
    ycoords, xcoords, rounding = _positions(path, arrays["ycoords"], arrays["xcoords"], round_positions)
    probe = complex_array(path, "probeGuess", arrays["probeGuess"], ndim=2)
    obj = complex_array(path, "objectGuess", arrays["objectGuess"], ndim=2)
    size = diffraction.shape[-1]
    if probe.shape != (size, size):
        raise ContractError(f"{path}: probeGuess must be {size}x{size} like the patterns, got {probe.shape}")
    scan_index = arrays.get("scan_index")
    if scan_index is None or scan_index.shape != (diffraction.shape[0],):
        scan_index = np.arange(diffraction.shape[0])
    measured = mean_counts(diffraction)
    metadata: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "dose": float(measured if dose is None else dose),
        "scale": None,
        "mean_counts_per_pattern": measured,
        "n_patterns": int(diffraction.shape[0]),
        "probe_diameter_px": physics.probe_diameter_px(probe),
        "seeds": None,
        "provenance": {
            "imported_from": str(path),
            "sha256": sha256_file(path),
            "format": "ptychopinn",
            "diffraction_key": key,
            "photons_per_stored_intensity": counts_per_unit,
            "count_scale_from": scale_source,
            "position_rounding": rounding,
        },
    }
    scan = Scan(diffraction, ycoords, xcoords, probe, obj, scan_index.astype(np.int64), metadata)
    check_scan(scan, path)
    model = physics.far_field_amplitude(probe, physics.extract_patches(obj, ycoords, xcoords, size))
    metadata["scale"] = physics.dose_scale(model, measured)
    return scan


def count_scale(path: Path, amplitude: np.ndarray, nphotons: float | None) -> tuple[float, str]:
    """Photons per unit of ``amplitude**2``, so that ``amplitude**2 * it`` are whole counts,
    and how it was found.

    Raises
    ------
    ContractError
        If no scale (or not the one ``nphotons`` gives) makes the counts whole numbers.
    """
    squared = np.square(amplitude, dtype=np.float64)
    if nphotons is not None:
        if nphotons <= 0:
            raise ContractError(f"{path}: nphotons must be > 0, got {nphotons}")
        power = float(squared.sum(axis=(-2, -1)).mean())
        if power <= 0:
            raise ContractError(f"{path}: the diffraction holds no photon")
        scale = nphotons / power
        bad = int(np.count_nonzero(~_whole(squared * scale)))
        if bad:
            raise ContractError(
                f"{path}: at nphotons = {nphotons:g} the diffraction is not whole photon counts at {bad} "
                "pixel(s); nphotons must be the file's mean counts per pattern (or leave it out to find the scale)"
            )
        return _refined(squared, scale), f"nphotons {nphotons:g}"
    positive = squared[squared > 0]
    if positive.size == 0:
        raise ContractError(f"{path}: the diffraction holds no photon")
    sample = positive[:: max(1, positive.size // _QUANTUM_SAMPLE)]
    quantum = float(positive.min())
    for photons in range(1, MAX_QUANTUM_PHOTONS + 1):
        scale = photons / quantum
        if np.all(_whole(sample * scale)) and np.all(_whole(squared * scale)):
            return _refined(squared, scale), f"whole counts, smallest intensity = {photons} photon(s)"
    raise ContractError(
        f"{path}: the diffraction is not whole photon counts at any scale (its smallest intensity as 1 to "
        f"{MAX_QUANTUM_PHOTONS} photons); if it is not Poisson counts at all it cannot be imported, "
        "otherwise give nphotons (the mean counts per pattern)"
    )


def _whole(counts: np.ndarray) -> np.ndarray:
    """Which of ``counts`` are whole numbers, to float32 storage precision."""
    return np.abs(counts - np.rint(counts)) <= 1e-3 + 1e-6 * counts


def _refined(squared: np.ndarray, scale: float) -> float:
    """The least-squares scale mapping ``squared`` onto its rounded counts at ``scale``."""
    counts = np.rint(squared * scale)
    return float((counts * squared).sum() / np.square(squared).sum())


def _diffraction(path: Path, arrays: dict[str, np.ndarray]) -> tuple[str, np.ndarray]:
    present = [key for key in DIFFRACTION_KEYS if key in arrays]
    if not present:
        raise ContractError(f"{path}: missing key diff3d (or diffraction)")
    if len(present) == 2 and not np.array_equal(arrays["diff3d"], arrays["diffraction"]):
        raise ContractError(f"{path}: diff3d and diffraction differ; the file is ambiguous")
    key = present[0]
    amplitude = arrays[key]
    if amplitude.ndim != 3 or amplitude.shape[1] != amplitude.shape[2] or amplitude.dtype.kind != "f":
        raise ContractError(f"{path}: {key} must be (n, N, N) real amplitudes, got {amplitude.dtype} {amplitude.shape}")
    if not np.all(np.isfinite(amplitude)):
        raise ContractError(f"{path}: {key} holds non-finite values (NaN or inf)")
    if np.any(amplitude < 0):
        raise ContractError(f"{path}: {key} holds negative amplitudes")
    return key, amplitude.astype(np.float64)


def _positions(
    path: Path, ycoords: np.ndarray, xcoords: np.ndarray, round_positions: bool
) -> tuple[np.ndarray, np.ndarray, dict[str, float] | None]:
    """float64 whole-pixel positions, and the rounding residual (None: none was needed)."""
    ycoords, xcoords = np.asarray(ycoords, np.float64).ravel(), np.asarray(xcoords, np.float64).ravel()
    if ycoords.shape != xcoords.shape:
        raise ContractError(f"{path}: xcoords and ycoords differ in length ({xcoords.size}, {ycoords.size})")
    rounded_y, rounded_x = np.rint(ycoords), np.rint(xcoords)
    residual = np.hypot(ycoords - rounded_y, xcoords - rounded_x)
    if not residual.any():
        return ycoords, xcoords, None
    if not round_positions:
        i = int(np.flatnonzero(residual)[0])
        raise ContractError(
            f"{path}: {int(np.count_nonzero(residual))} position(s) are not whole pixels, first "
            f"(y={ycoords[i]:g}, x={xcoords[i]:g}); the study's forward model needs whole-pixel positions: "
            "round them (--round-positions; the residual is recorded)"
        )
    rms = float(np.sqrt(np.mean(residual**2)))
    return rounded_y, rounded_x, {"max_px": float(residual.max()), "rms_px": rms}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ptystudy.scan.ptychopinn", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write a run's scans and views in PtychoPINN's layout")
    export.add_argument("run_dir", type=Path)
    export.add_argument("out_dir", type=Path)
    imported = commands.add_parser("import", help="turn a PtychoPINN scan NPZ into a contract scan")
    imported.add_argument("source", type=Path)
    imported.add_argument("target", type=Path)
    imported.add_argument("--nphotons", type=float, help="the file's mean photon count per pattern")
    imported.add_argument("--round-positions", action="store_true", help="round continuous positions to pixels")
    imported.add_argument("--dose", type=float, help="the nominal dose to record (default: the measured mean)")
    args = parser.parse_args(argv)
    if args.command == "export":
        return run_command(
            lambda: (
                f"wrote {len(export_run(args.run_dir, args.out_dir))} file(s) in PtychoPINN's layout "
                f"under {args.out_dir}"
            )
        )
    return run_command(
        lambda: imported_message(
            args.target,
            import_ptychopinn(
                args.source, nphotons=args.nphotons, round_positions=args.round_positions, dose=args.dose
            ),
        )
    )


if __name__ == "__main__":
    sys.exit(main())
