"""The scan file contract (docs/design.md §4): writing, loading and validating NPZ scans.

Every phase reads its inputs through ``load_scan``, which validates every key, shape,
dtype and value and raises ``ContractError`` naming the file and the problem.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ptystudy.errors import ContractError
from ptystudy.files import write_atomic

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ScanArray:
    """One array of a scan file: its NPZ key, the ``Scan`` field that holds it, its dtype."""

    key: str
    attribute: str
    dtype: np.dtype
    optional: bool = False
    """Only views carry it (``load_scan(require_groups=True)`` asks for it)."""
    copy: bool = False
    """Written as a copy of the field for PtychoPINN's training loader, which needs it;
    optional on load (older files lack it), and must equal the field when present."""


SCAN_ARRAYS = (
    ScanArray("diffraction", "diffraction", np.dtype(np.float32)),
    ScanArray("xcoords", "xcoords", np.dtype(np.float64)),
    ScanArray("ycoords", "ycoords", np.dtype(np.float64)),
    ScanArray("xcoords_start", "xcoords", np.dtype(np.float64), copy=True),
    ScanArray("ycoords_start", "ycoords", np.dtype(np.float64), copy=True),
    ScanArray("probeGuess", "probe", np.dtype(np.complex64)),
    ScanArray("objectGuess", "obj", np.dtype(np.complex64)),
    ScanArray("scan_index", "scan_index", np.dtype(np.int64)),
    ScanArray("groups", "groups", np.dtype(np.int64), optional=True),
)
"""The one map between a scan file's keys, ``Scan``'s fields and their dtypes."""
METADATA_KEY = "metadata"
"""A 0-d unicode array holding the metadata as a JSON object."""
REQUIRED_METADATA = (
    "schema_version",
    "dose",
    "scale",
    "mean_counts_per_pattern",
    "n_patterns",
    "probe_diameter_px",
    "seeds",
    "provenance",
)


@dataclass(frozen=True)
class Scan:
    """One validated scan file in memory.

    Attributes
    ----------
    diffraction : (n, N, N) float32, sqrt(photon counts), fftshifted.
    ycoords, xcoords : (n,) float64, patch centres in object pixels.
    probe : (N, N) complex64.
    obj : (H, W) complex64, the ground-truth object.
    scan_index : (n,) int64, index into the parent dose's position pool.
    metadata : the JSON metadata (dose, scale, counts, seeds, provenance, ...).
    groups : (n_groups, C) int64 member indices for gs2, views only.
    """

    diffraction: np.ndarray
    ycoords: np.ndarray
    xcoords: np.ndarray
    probe: np.ndarray
    obj: np.ndarray
    scan_index: np.ndarray
    metadata: dict[str, Any]
    groups: np.ndarray | None = field(default=None)

    @property
    def n_patterns(self) -> int:
        return int(self.diffraction.shape[0])

    @property
    def patch_size(self) -> int:
        return int(self.diffraction.shape[-1])

    def rows(self, index: np.ndarray, metadata: dict[str, Any], groups: np.ndarray | None = None) -> Scan:
        """The patterns ``index`` of this scan with ``metadata`` (its ``n_patterns`` and
        ``mean_counts_per_pattern`` recomputed for those patterns) and ``groups``."""
        diffraction = self.diffraction[index]
        return Scan(
            diffraction=diffraction,
            ycoords=self.ycoords[index],
            xcoords=self.xcoords[index],
            probe=self.probe,
            obj=self.obj,
            scan_index=self.scan_index[index],
            metadata={
                **metadata,
                "n_patterns": int(index.size),
                "mean_counts_per_pattern": mean_counts(diffraction),
            },
            groups=groups,
        )

    def counts(self) -> np.ndarray:
        """(n, N, N) float32 photon counts, ``diffraction**2`` rounded to integers."""
        return np.rint(self.diffraction.astype(np.float64) ** 2).astype(np.float32)


def pattern_totals(diffraction: np.ndarray) -> np.ndarray:
    """(n,) float64 total photon count of each pattern, from sqrt(counts) amplitudes."""
    squared = np.square(diffraction, dtype=np.float32)
    return np.rint(squared).sum(axis=(-2, -1), dtype=np.float64)


def mean_counts(diffraction: np.ndarray) -> float:
    """Mean over patterns of the total photon count, from sqrt(counts) amplitudes."""
    return float(pattern_totals(diffraction).mean())


def write_scan(path: Path, scan: Scan) -> Path:
    """Validate ``scan`` and write it to ``path`` atomically (uncompressed NPZ, no pickles)."""
    check_scan(scan, Path(path))
    arrays = {**scan_arrays(scan), METADATA_KEY: np.array(json.dumps(scan.metadata, sort_keys=True))}
    return write_atomic(Path(path), lambda handle: np.savez(handle, **arrays))


def scan_arrays(scan: Scan) -> dict[str, np.ndarray]:
    """The arrays of ``scan`` by their NPZ keys (metadata aside)."""
    return {spec.key: array for spec, array in _arrays_of(scan) if array is not None}


def load_scan(path: Path, *, require_groups: bool = False) -> Scan:
    """Load and validate a scan file; ``require_groups`` for phase D views.

    Raises
    ------
    ContractError
        If the file is missing or unreadable, holds pickled objects, or breaks the
        contract; the message starts with the file's path.
    """
    path = Path(path)
    arrays = read_npz(path)
    required = [spec.key for spec in SCAN_ARRAYS if not spec.copy and (not spec.optional or require_groups)]
    missing = [key for key in (*required, METADATA_KEY) if key not in arrays]
    if missing:
        raise ContractError(f"{path}: missing key(s) {', '.join(missing)}")
    scan = Scan(
        **{spec.attribute: arrays.get(spec.key) for spec in SCAN_ARRAYS if not spec.copy},
        metadata=parse_metadata(path, arrays[METADATA_KEY]),
    )
    check_scan(scan, path)
    for spec in SCAN_ARRAYS:
        if spec.copy and spec.key in arrays and not np.array_equal(arrays[spec.key], getattr(scan, spec.attribute)):
            raise ContractError(f"{path}: {spec.key} differs from {spec.attribute}")
    return scan


def _arrays_of(scan: Scan, *, copies: bool = True) -> list[tuple[ScanArray, np.ndarray | None]]:
    """Each entry of ``SCAN_ARRAYS`` with ``scan``'s array for it (None: an absent optional
    one); ``copies=False`` leaves out the entries that repeat another."""
    return [(spec, getattr(scan, spec.attribute)) for spec in SCAN_ARRAYS if copies or not spec.copy]


def read_npz(path: Path, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an NPZ file (only ``keys`` among them, if given), never unpickling.

    Raises
    ------
    ContractError
        If the file is missing, not an NPZ, or a read array is a pickled object array.
    """
    path = Path(path)
    if not path.is_file():
        raise ContractError(f"{path}: file not found")
    if not zipfile.is_zipfile(path):
        raise ContractError(f"{path}: not a readable NPZ file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files if keys is None or key in keys}
    except ValueError as err:
        if "pickle" in str(err):
            raise ContractError(f"{path}: holds a pickled object array, which is not allowed") from err
        raise ContractError(f"{path}: unreadable NPZ ({err})") from err
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ContractError(f"{path}: not a readable NPZ file ({err})") from err


def complex_array(path: Path, key: str, array: np.ndarray, *, ndim: int) -> np.ndarray:
    """A user's complex array (any precision) as complex64; ContractError names the file
    if it is not complex, not ``ndim``-D or not finite."""
    if array.dtype.kind != "c":
        raise ContractError(f"{path}: {key} must be complex, got {array.dtype}")
    if array.ndim != ndim:
        raise ContractError(f"{path}: {key} must be {ndim}-D, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ContractError(f"{path}: {key} holds non-finite values (NaN or inf)")
    return array.astype(np.complex64)


def parse_metadata(path: Path, raw: np.ndarray) -> dict[str, Any]:
    """The JSON object a file's 0-d metadata string holds; ContractError names the file."""
    if raw.ndim != 0 or raw.dtype.kind != "U":
        raise ContractError(f"{path}: metadata must be a 0-d JSON string, got {raw.dtype} {raw.shape}")
    try:
        metadata = json.loads(str(raw))
    except json.JSONDecodeError as err:
        raise ContractError(f"{path}: metadata is not valid JSON ({err})") from err
    if not isinstance(metadata, dict):
        raise ContractError(f"{path}: metadata must be a JSON object")
    return metadata


def check_scan(scan: Scan, path: Path) -> None:
    """Raise ``ContractError`` naming ``path`` and the first problem found in ``scan``."""
    _check_dtypes(scan, path)
    _check_shapes(scan, path)
    _check_values(scan, path)
    _check_metadata(scan, path)


def _check_dtypes(scan: Scan, path: Path) -> None:
    for spec, array in _arrays_of(scan, copies=False):
        if array is not None and array.dtype != spec.dtype:
            raise ContractError(f"{path}: {spec.key} must be {spec.dtype}, got {array.dtype}")


def _check_shapes(scan: Scan, path: Path) -> None:
    diffraction = scan.diffraction
    if diffraction.ndim != 3 or diffraction.shape[1] != diffraction.shape[2] or diffraction.shape[0] < 1:
        raise ContractError(f"{path}: diffraction must be (n, N, N) with n >= 1, got {diffraction.shape}")
    n, size = diffraction.shape[0], diffraction.shape[1]
    if size % 2:
        raise ContractError(f"{path}: patch size N must be even, got {size}")
    for key, array in (("xcoords", scan.xcoords), ("ycoords", scan.ycoords), ("scan_index", scan.scan_index)):
        if array.shape != (n,):
            raise ContractError(f"{path}: {key} must have shape ({n},), got {array.shape}")
    if scan.probe.shape != (size, size):
        raise ContractError(f"{path}: probeGuess must be ({size}, {size}), got {scan.probe.shape}")
    if scan.obj.ndim != 2 or min(scan.obj.shape) < size:
        raise ContractError(f"{path}: objectGuess must be (H, W) with H, W >= N = {size}, got {scan.obj.shape}")
    if scan.groups is not None:
        if scan.groups.ndim != 2 or scan.groups.shape[0] < 1:
            raise ContractError(f"{path}: groups must be (n_groups, C), got {scan.groups.shape}")
        if scan.groups.min() < 0 or scan.groups.max() >= n:
            raise ContractError(f"{path}: groups index outside [0, {n}) patterns")


def _check_values(scan: Scan, path: Path) -> None:
    for spec, array in _arrays_of(scan, copies=False):
        bad = None if array is None or spec.dtype.kind not in "fc" else ~np.isfinite(array)
        if bad is not None and bad.any():
            raise ContractError(f"{path}: {spec.key} holds {int(bad.sum())} non-finite value(s) (NaN or inf)")
    for key, coords in (("ycoords", scan.ycoords), ("xcoords", scan.xcoords)):
        off_pixel = coords != np.rint(coords)
        if off_pixel.any():
            raise ContractError(
                f"{path}: {int(off_pixel.sum())} {key} value(s) are not whole pixels, first "
                f"{coords[np.flatnonzero(off_pixel)[0]]:g}; the study's forward model needs whole-pixel "
                "positions (import a PtychoPINN file with --round-positions)"
            )
    negative = scan.diffraction < 0
    if negative.any():
        raise ContractError(
            f"{path}: diffraction holds {int(negative.sum())} negative value(s); counts must be non-negative"
        )
    squared = np.square(scan.diffraction, dtype=np.float32)
    off_integer = np.abs(squared - np.rint(squared)) > 1e-3 + 1e-6 * squared
    if off_integer.any():
        raise ContractError(
            f"{path}: diffraction**2 is not whole photon counts at {int(off_integer.sum())} pixel(s); "
            "expected sqrt(counts)"
        )
    half = scan.patch_size // 2
    height, width = scan.obj.shape
    outside = (
        (scan.ycoords < half) | (scan.xcoords < half) | (scan.ycoords > height - half) | (scan.xcoords > width - half)
    )
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise ContractError(
            f"{path}: {int(outside.sum())} position(s) put their patch outside the "
            f"{height}x{width} object, first (y={scan.ycoords[i]}, x={scan.xcoords[i]}); "
            f"centres must lie in y in [{half}, {height - half}], x in [{half}, {width - half}]"
        )


def _check_metadata(scan: Scan, path: Path) -> None:
    metadata = scan.metadata
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ContractError(f"{path}: metadata lacks {', '.join(missing)}")
    if metadata["schema_version"] != SCHEMA_VERSION:
        raise ContractError(
            f"{path}: schema_version {metadata['schema_version']} is not the supported {SCHEMA_VERSION}"
        )
    if metadata["n_patterns"] != scan.n_patterns:
        raise ContractError(
            f"{path}: metadata says {metadata['n_patterns']} patterns, the file holds {scan.n_patterns}"
        )
    recorded = float(metadata["mean_counts_per_pattern"])
    measured = mean_counts(scan.diffraction)
    if not np.isclose(measured, recorded, rtol=1e-9, atol=1e-9):
        hint = " (diffraction looks like intensities, not amplitudes sqrt(counts))" if measured > recorded else ""
        raise ContractError(
            f"{path}: mean sum(diffraction**2) per pattern is {measured:.6g} photons but the "
            f"metadata records {recorded:.6g}{hint}"
        )


def imported_message(target: Path, scan: Scan) -> str:
    """Write an imported ``scan`` to ``target``; the line an import command prints."""
    write_scan(target, scan)
    counts = scan.metadata["mean_counts_per_pattern"]
    return f"wrote {target}: {scan.n_patterns} patterns, {counts:.1f} photons per pattern"
