"""Scans and reconstructions as HDF5 files other ptychography tools read, and such files as
contract scans.

Written, for one scan (a dose's split, or a view):

- ``diffraction.h5`` (Ptychodus 1.7's assembled diffraction file): ``/patterns`` (n, H, W)
  photon counts, zero frequency at the centre, with ``detector_pixel_width_m`` and
  ``detector_pixel_height_m``; ``/indexes`` 0..n-1; ``/bad_pixels`` (H, W) bool; and
  ``/probe_photon_counts`` (n,), each pattern's measured total; ``/dp``, a hard link to the
  patterns, is what pty-chi's test-suite loader reads.
- ``product.h5`` (Ptychodus 1.7's product file): the geometry as root attributes, the probe
  positions in metres, the probe (1, N, N) and the object (1, H, W) with their pixel sizes.
- ``scan.cxi`` (CXI 1.6, SI units, the energy in joules): the counts with
  ``axes = "translation:y:x"``, the detector, its mask (uint32, 0 = good), the probe
  positions in ``/entry_1/sample_1/geometry_1/translation`` and, where Ptychodus 1.7 puts
  them, the probe and the object.

Conventions: the study's physics is in pixels; metres come from ``GeometryConfig`` (the
object pixel is lambda z / (N p)). A position is Ptychodus 1.7's centred pixel rule,
``x_m = dx (x_px - (W - 1) / 2)`` (the object's centre at 0), the same for y with the
height. The translation is the probe's position on the sample (as Ptychodus, PyNX and PtyPy
read it; CDTools negates it): ``translation_is = "probe position"`` says so in the file.
Patterns are whole-photon counts, never amplitudes.

Read: a ``diffraction.h5`` + ``product.h5`` pair or a ``scan.cxi`` becomes a contract scan;
counts must be whole photons, positions must land on whole pixels unless rounding is asked
for, and a product written by PtychoPINN's own exporter (every position index 0, positions
without the centre offset) is recognised and refused with that reason.

    python -m ptystudy.scan.hdf5 export RUN_DIR OUT_DIR
    python -m ptystudy.scan.hdf5 import SOURCE TARGET.npz [--round-positions] [--dose D]

(SOURCE: a folder holding diffraction.h5 and product.h5, a product.h5, or a .cxi file.)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ptystudy.config import GeometryConfig
from ptystudy.errors import ContractError, run_command
from ptystudy.files import atomic_path, sha256_file
from ptystudy.recon import load_recon
from ptystudy.scan import physics
from ptystudy.scan.contract import (
    SCHEMA_VERSION,
    Scan,
    check_scan,
    imported_message,
    load_scan,
    mean_counts,
    pattern_totals,
)

DIFFRACTION_FILE = "diffraction.h5"
PRODUCT_FILE = "product.h5"
CXI_FILE = "scan.cxi"
HDF5_SUFFIXES = (".h5", ".hdf5", ".cxi")
"""``scan.files`` entries read as HDF5 (a ``product.h5`` names its pair)."""
CXI_VERSION = 160
ELECTRONVOLT_J = 1.602176634e-19
TRANSLATION_IS = "probe position"
"""What ``translation`` holds: where the probe is on the sample (not the sample's motion)."""


def companion_files(path: Path) -> list[Path]:
    """The other files a scan file stands for: a ``product.h5``'s ``diffraction.h5``."""
    path = Path(path)
    partner = path.parent / DIFFRACTION_FILE
    return [partner] if path.suffix in (".h5", ".hdf5") and path.name != DIFFRACTION_FILE and partner.is_file() else []


def centred_metres(pixels: np.ndarray, extent_px: int, pixel_m: float) -> np.ndarray:
    """Ptychodus 1.7's rule: pixel coordinates (0 at the first pixel's centre) to metres
    from the middle of an ``extent_px``-pixel axis."""
    return pixel_m * (np.asarray(pixels, np.float64) - (extent_px - 1) / 2)


def centred_pixels(metres: np.ndarray, extent_px: int, pixel_m: float) -> np.ndarray:
    """The inverse of ``centred_metres``."""
    return np.asarray(metres, np.float64) / pixel_m + (extent_px - 1) / 2


def write_diffraction_h5(path: Path, scan: Scan, geometry: GeometryConfig) -> Path:
    """Ptychodus's ``diffraction.h5`` of ``scan`` (see the module's docstring)."""
    counts = scan.counts().astype(np.uint32)
    with atomic_path(Path(path), suffix=".h5") as temporary, h5py.File(temporary, "w") as h5:
        patterns = h5.create_dataset("patterns", data=counts, compression="lzf")
        patterns.attrs["detector_pixel_width_m"] = geometry.detector_pixel_size_m
        patterns.attrs["detector_pixel_height_m"] = geometry.detector_pixel_size_m
        patterns.attrs["units"] = "photon counts"
        h5["dp"] = patterns  # a hard link: pty-chi's test-suite loader reads dp
        h5.create_dataset("indexes", data=np.arange(scan.n_patterns, dtype=np.int64))
        h5.create_dataset("bad_pixels", data=np.zeros(counts.shape[1:], dtype=bool))
        h5.create_dataset("probe_photon_counts", data=pattern_totals(scan.diffraction))
    return Path(path)


def write_product_h5(
    path: Path,
    scan: Scan,
    geometry: GeometryConfig,
    *,
    obj: np.ndarray | None = None,
    name: str,
    comments: str,
    losses: Sequence[float] = (),
) -> Path:
    """Ptychodus's ``product.h5``: ``scan``'s positions and probe with ``obj`` (the scan's own
    object, its ground truth, when None), and ``losses`` (one per epoch) if any."""
    obj = scan.obj if obj is None else obj
    pixel_m = geometry.object_pixel_size_m(scan.patch_size)
    height, width = obj.shape
    with atomic_path(Path(path), suffix=".h5") as temporary, h5py.File(temporary, "w") as h5:
        h5.attrs.update(
            {
                "name": name,
                "comments": comments,
                "detector_object_distance_m": geometry.detector_distance_m,
                "photon_energy_eV": geometry.photon_energy_eV,
                "probe_energy_eV": geometry.photon_energy_eV,
                "probe_photon_count": float(scan.metadata["dose"]),
                "exposure_time_s": 0.0,
            }
        )
        h5.create_dataset("probe_position_indexes", data=np.arange(scan.n_patterns, dtype=np.int64))
        h5.create_dataset("probe_position_x_m", data=centred_metres(scan.xcoords, width, pixel_m))
        h5.create_dataset("probe_position_y_m", data=centred_metres(scan.ycoords, height, pixel_m))
        probe = h5.create_dataset("probe", data=scan.probe[np.newaxis].astype(np.complex64))
        probe.attrs.update({"pixel_width_m": pixel_m, "pixel_height_m": pixel_m})
        image = h5.create_dataset("object", data=np.asarray(obj, np.complex64)[np.newaxis])
        image.attrs.update({"pixel_width_m": pixel_m, "pixel_height_m": pixel_m, "center_x_m": 0.0, "center_y_m": 0.0})
        h5.create_dataset("object_layer_spacing_m", data=np.zeros(0, np.float64))
        h5.create_dataset("loss_epochs", data=np.arange(len(losses), dtype=np.int64))
        h5.create_dataset("loss_values", data=np.asarray(losses, np.float64))
    return Path(path)


def write_cxi(path: Path, scan: Scan, geometry: GeometryConfig, *, name: str) -> Path:
    """``scan`` as a CXI 1.6 file (see the module's docstring)."""
    pixel_m = geometry.object_pixel_size_m(scan.patch_size)
    height, width = scan.obj.shape
    translation = np.zeros((scan.n_patterns, 3))
    translation[:, 0] = centred_metres(scan.xcoords, width, pixel_m)
    translation[:, 1] = centred_metres(scan.ycoords, height, pixel_m)
    with atomic_path(Path(path), suffix=".cxi") as temporary, h5py.File(temporary, "w") as h5:
        h5.create_dataset("cxi_version", data=CXI_VERSION)
        entry = h5.create_group("entry_1")
        entry.create_dataset("title", data=name)
        source = entry.create_group("instrument_1/source_1")
        source.create_dataset("energy", data=geometry.photon_energy_eV * ELECTRONVOLT_J)
        detector = entry.create_group("instrument_1/detector_1")
        data = detector.create_dataset("data", data=scan.counts().astype(np.uint32), compression="lzf")
        data.attrs["axes"] = "translation:y:x"
        data.attrs["units"] = "photon counts"
        detector.create_dataset("distance", data=geometry.detector_distance_m)
        detector.create_dataset("x_pixel_size", data=geometry.detector_pixel_size_m)
        detector.create_dataset("y_pixel_size", data=geometry.detector_pixel_size_m)
        detector.create_dataset("mask", data=np.zeros(data.shape[1:], np.uint32))
        sample = entry.create_group("sample_1")
        sample.create_dataset("name", data=name)
        moves = sample.create_group("geometry_1").create_dataset("translation", data=translation)
        moves.attrs["translation_is"] = TRANSLATION_IS
        moves.attrs["units"] = "m"
        linked = entry.create_group("data_1")
        linked["data"] = h5py.SoftLink("/entry_1/instrument_1/detector_1/data")
        linked["translation"] = h5py.SoftLink("/entry_1/sample_1/geometry_1/translation")
        for group, array, axes in (
            ("image_1", scan.probe[np.newaxis, np.newaxis], "coherent:incoherent:y:x"),
            ("image_2", scan.obj[np.newaxis], "layer:y:x"),
        ):
            image = entry.create_group(group)
            image.create_dataset("data", data=np.asarray(array, np.complex64)).attrs["axes"] = axes
            image.create_dataset("data_space", data="real")
            rows, columns = array.shape[-2:]
            image.create_dataset("image_size", data=[pixel_m * columns, pixel_m * rows, 0.0])
        source["illumination"] = h5py.SoftLink("/entry_1/image_1/data")
        extras = entry.create_group("ptychodus")
        extras.create_dataset("probe_position_indexes", data=np.arange(scan.n_patterns, dtype=np.int64))
        for part in ("probe", "object"):
            extras.create_dataset(f"{part}_pixel_width_m", data=pixel_m)
            extras.create_dataset(f"{part}_pixel_height_m", data=pixel_m)
        extras.create_dataset("object_center_x_m", data=0.0)
        extras.create_dataset("object_center_y_m", data=0.0)
        extras.create_dataset("probe_photon_count", data=float(scan.metadata["dose"]))
    return Path(path)


def export_scan(scan: Scan, folder: Path, geometry: GeometryConfig, *, name: str) -> list[Path]:
    """``diffraction.h5``, ``product.h5`` and ``scan.cxi`` of ``scan`` in ``folder``."""
    comments = f"ptystudy scan: dose {scan.metadata['dose']:g} photons per pattern, {scan.n_patterns} patterns"
    return [
        write_diffraction_h5(folder / DIFFRACTION_FILE, scan, geometry),
        write_product_h5(folder / PRODUCT_FILE, scan, geometry, name=name, comments=comments),
        write_cxi(folder / CXI_FILE, scan, geometry, name=name),
    ]


def export_run(run_dir: Path, out_dir: Path) -> list[Path]:
    """Every scan, view and reconstruction of a run as HDF5 files under ``out_dir``, one
    folder per dose/view/split (``dose_1000/dense/test/``; a dose's whole split under
    ``dose_1000/all/test/``), each reconstruction a ``product.h5`` in its folder's
    ``reconstructions/``. The geometry is the run's (``manifest.json``), or the defaults.

    Raises ContractError if the run holds no scan.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    geometry = run_geometry(run_dir)
    written: list[Path] = []
    sources = sorted(run_dir.glob("data/dose_*/*.npz")) + sorted(run_dir.glob("views/dose_*/*/t*.npz"))
    if not sources:
        raise ContractError(f"{run_dir}: no scan files under data/ or views/ (is it a study's run directory?)")
    for source in sources:
        relative = source.relative_to(run_dir)
        dose, view = relative.parts[1], ("all" if relative.parts[0] == "data" else relative.parts[2])
        folder = out_dir / dose / view / source.stem
        scan = load_scan(source)
        written += export_scan(scan, folder, geometry, name=f"{dose} {view} {source.stem}")
        if view == "all":
            continue
        for recon_path in sorted((run_dir / "recon" / dose / view / source.stem).glob("*.npz")):
            recon = load_recon(recon_path)
            losses = recon.metadata.get("cost_per_epoch") or ()
            written.append(
                write_product_h5(
                    folder / "reconstructions" / f"{recon_path.stem}.h5",
                    scan,
                    geometry,
                    obj=recon.obj,
                    name=f"{recon_path.stem} {dose} {view} {source.stem}",
                    comments=f"ptystudy reconstruction by {recon_path.stem}; "
                    "the object outside the view's coverage is not reconstructed",
                    losses=losses,
                )
            )
    return written


def run_geometry(run_dir: Path) -> GeometryConfig:
    """The physical scale a run recorded in its manifest (the defaults when it has none)."""
    manifest = Path(run_dir) / "manifest.json"
    if manifest.is_file():
        recorded = json.loads(manifest.read_text()).get("config", {}).get("geometry")
        if recorded:
            return GeometryConfig(**recorded)
    return GeometryConfig()


def read_hdf5_scan(source: Path, *, round_positions: bool = False, dose: float | None = None) -> Scan:
    """A contract scan from a ``diffraction.h5`` + ``product.h5`` pair (``source`` the folder
    or either file) or a CXI file.

    Raises ContractError naming the file, the HDF5 path and the problem.
    """
    source = Path(source)
    if source.suffix == ".cxi":
        return _scan_from(source, *_read_cxi(source), round_positions, dose)
    folder = source if source.is_dir() else source.parent
    diffraction_path, product_path = folder / DIFFRACTION_FILE, folder / PRODUCT_FILE
    counts, pattern_indexes, detector_pixel_m = _read_patterns(diffraction_path)
    fields = {**_read_product(product_path, counts.shape[-1]), "detector_pixel_m": detector_pixel_m}
    if fields["indexes"].size != pattern_indexes.size:
        raise ContractError(
            f"{product_path}: {fields['indexes'].size} probe positions for {pattern_indexes.size} patterns "
            f"in {diffraction_path}"
        )
    row = {int(index): i for i, index in enumerate(pattern_indexes)}
    if len(row) != pattern_indexes.size or set(row) != {int(index) for index in fields["indexes"]}:
        raise ContractError(
            f"{product_path}: the probe position indexes do not pair with the pattern indexes of {diffraction_path}"
        )
    counts = counts[[row[int(index)] for index in fields["indexes"]]]  # each position's own pattern
    return _scan_from(product_path, counts, fields, round_positions, dose)


def _h5(path: Path) -> h5py.File:
    if not path.is_file():
        raise ContractError(f"{path}: file not found")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ContractError(f"{path}: not a readable HDF5 file ({err})") from None


def _dataset(h5: h5py.File, key: str, path: Path) -> np.ndarray:
    item = h5.get(key)
    if not isinstance(item, h5py.Dataset):
        raise ContractError(f"{path}: no dataset {key} (is it a scan file?)")
    try:
        return item[()]
    except OSError as err:
        raise ContractError(f"{path}: {key} cannot be read ({err})") from None


def _whole_counts(path: Path, key: str, counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 3 or counts.shape[1] != counts.shape[2]:
        raise ContractError(f"{path}: {key} must be (n, N, N) patterns, got shape {counts.shape}")
    values = counts.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ContractError(f"{path}: {key} holds non-finite values")
    if values.min() < 0:
        raise ContractError(f"{path}: {key} holds negative counts")
    if not np.array_equal(values, np.rint(values)):
        raise ContractError(f"{path}: {key} holds fractional values; patterns must be whole photon counts")
    return values


def _read_patterns(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Whole-photon counts (n, N, N), their indexes (n,) and the detector pixel (m; NaN if unsaid)."""
    with _h5(path) as h5:
        counts = _whole_counts(path, "/patterns", _dataset(h5, "patterns", path))
        indexes = _dataset(h5, "indexes", path) if "indexes" in h5 else np.arange(counts.shape[0])
        detector_pixel_m = float(h5["patterns"].attrs.get("detector_pixel_width_m", np.nan))
    if indexes.shape != (counts.shape[0],):
        raise ContractError(f"{path}: /indexes holds {indexes.size} entries for {counts.shape[0]} patterns")
    return counts, indexes, detector_pixel_m


def _read_product(path: Path, patch_size: int) -> dict[str, Any]:
    with _h5(path) as h5:
        obj = np.asarray(_dataset(h5, "object", path))
        probe = np.asarray(_dataset(h5, "probe", path))
        fields = {
            "indexes": np.asarray(_dataset(h5, "probe_position_indexes", path)),
            "x_m": np.asarray(_dataset(h5, "probe_position_x_m", path), np.float64),
            "y_m": np.asarray(_dataset(h5, "probe_position_y_m", path), np.float64),
            "pixel_m": float(h5["object"].attrs.get("pixel_width_m", np.nan)),
            "centre_m": (
                float(h5["object"].attrs.get("center_x_m", 0.0)),
                float(h5["object"].attrs.get("center_y_m", 0.0)),
            ),
            "geometry": (
                float(h5.attrs.get("photon_energy_eV", h5.attrs.get("probe_energy_eV", np.nan))),
                float(h5.attrs.get("detector_object_distance_m", np.nan)),
            ),
            "obj": obj.reshape(obj.shape[-2:]) if obj.ndim == 3 and obj.shape[0] == 1 else obj,
            "probe": probe.reshape(probe.shape[-2:]) if probe.ndim >= 3 and np.prod(probe.shape[:-2]) == 1 else probe,
        }
    sizes = (fields["indexes"].size, fields["x_m"].size, fields["y_m"].size)
    if len(set(sizes)) != 1:
        raise ContractError(f"{path}: the probe positions disagree: {sizes[0]} indexes, {sizes[1]} x, {sizes[2]} y")
    if fields["indexes"].size > 1 and not np.any(fields["indexes"]):
        raise ContractError(
            f"{path}: every probe position index is 0, as PtychoPINN's own exporter writes them, and its positions "
            "lack the centre offset: import PtychoPINN's NPZ instead (python -m ptystudy.scan.ptychopinn import)"
        )
    return fields


def _read_cxi(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    with _h5(path) as h5:
        key = "entry_1/data_1/data" if "entry_1/data_1/data" in h5 else "entry_1/instrument_1/detector_1/data"
        counts = _whole_counts(path, f"/{key}", _dataset(h5, key, path))
        translation = np.asarray(_dataset(h5, "entry_1/sample_1/geometry_1/translation", path), np.float64)
        if translation.ndim != 2 or translation.shape[0] != counts.shape[0]:
            raise ContractError(f"{path}: {translation.shape[0]} translations for {counts.shape[0]} patterns")
        sign = (
            -1.0
            if h5["entry_1/sample_1/geometry_1/translation"].attrs.get("translation_is") == "sample position"
            else 1.0
        )
        pixel = h5.get("entry_1/ptychodus/object_pixel_width_m")
        obj = np.asarray(_dataset(h5, "entry_1/image_2/data", path))
        probe = np.asarray(_dataset(h5, "entry_1/image_1/data", path))
        energy_j = h5.get("entry_1/instrument_1/source_1/energy")
        distance = h5.get("entry_1/instrument_1/detector_1/distance")
        fields = {
            "indexes": np.arange(counts.shape[0]),
            "x_m": sign * translation[:, 0],
            "y_m": sign * translation[:, 1],
            "pixel_m": float(pixel[()]) if pixel is not None else np.nan,
            "centre_m": (0.0, 0.0),
            "geometry": (
                float(energy_j[()]) / ELECTRONVOLT_J if energy_j is not None else np.nan,
                float(distance[()]) if distance is not None else np.nan,
            ),
            "obj": obj.reshape(obj.shape[-2:]),
            "probe": probe.reshape(probe.shape[-2:]),
        }
        detector_pixel = h5.get("entry_1/instrument_1/detector_1/x_pixel_size")
        fields["detector_pixel_m"] = float(detector_pixel[()]) if detector_pixel is not None else np.nan
    return counts, fields


def _scan_from(
    path: Path, counts: np.ndarray, fields: dict[str, Any], round_positions: bool, dose: float | None
) -> Scan:
    patch_size = counts.shape[-1]
    obj, probe = np.asarray(fields["obj"], np.complex64), np.asarray(fields["probe"], np.complex64)
    if obj.ndim != 2:
        raise ContractError(f"{path}: the object must be one layer (H, W), got shape {obj.shape}")
    if probe.shape != (patch_size, patch_size):
        raise ContractError(f"{path}: the probe must be {patch_size}x{patch_size} like the patterns, got {probe.shape}")
    pixel_m = fields["pixel_m"]
    if not np.isfinite(pixel_m) or pixel_m <= 0:
        raise ContractError(f"{path}: no object pixel size, so positions in metres cannot become pixels")
    _check_geometry(path, pixel_m, patch_size, fields)
    height, width = obj.shape
    x_px = centred_pixels(fields["x_m"] - fields["centre_m"][0], width, pixel_m)
    y_px = centred_pixels(fields["y_m"] - fields["centre_m"][1], height, pixel_m)
    ycoords, xcoords, rounding = _pixel_positions(path, y_px, x_px, round_positions)
    diffraction = np.sqrt(counts).astype(np.float32)
    measured = mean_counts(diffraction)
    metadata: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "dose": float(measured if dose is None else dose),
        "scale": None,
        "mean_counts_per_pattern": measured,
        "n_patterns": int(counts.shape[0]),
        "probe_diameter_px": physics.probe_diameter_px(probe),
        "seeds": None,
        "provenance": {
            "imported_from": str(path),
            "sha256": sha256_file(path),
            "format": "cxi" if path.suffix == ".cxi" else "ptychodus",
            "object_pixel_m": pixel_m,
            "position_rounding": rounding,
        },
    }
    scan = Scan(diffraction, ycoords, xcoords, probe, obj, np.arange(counts.shape[0], dtype=np.int64), metadata)
    check_scan(scan, path)
    model = physics.far_field_amplitude(probe, physics.extract_patches(obj, ycoords, xcoords, patch_size))
    metadata["scale"] = physics.dose_scale(model, measured)
    return scan


def _check_geometry(path: Path, pixel_m: float, patch_size: int, fields: dict[str, Any]) -> None:
    """A product's object pixel must be lambda z / (N p) when the file gives all four."""
    energy_ev, distance_m = fields["geometry"]
    detector_m = fields["detector_pixel_m"]
    if not all(np.isfinite(value) and value > 0 for value in (energy_ev, distance_m, detector_m)):
        return
    expected = GeometryConfig(
        photon_energy_eV=energy_ev, detector_distance_m=distance_m, detector_pixel_size_m=detector_m
    ).object_pixel_size_m(patch_size)
    if abs(pixel_m - expected) > 1e-3 * expected:
        raise ContractError(
            f"{path}: the object pixel ({pixel_m:.4g} m) contradicts the geometry "
            f"(lambda z / (N p) = {expected:.4g} m at {energy_ev:g} eV, {distance_m:g} m, {detector_m:g} m pixels)"
        )


def _pixel_positions(
    path: Path, y_px: np.ndarray, x_px: np.ndarray, round_positions: bool
) -> tuple[np.ndarray, np.ndarray, dict[str, float] | None]:
    """Whole-pixel positions; off-grid ones are rounded only when asked (the residual recorded)."""
    rounded_y, rounded_x = np.rint(y_px), np.rint(x_px)
    residual = np.hypot(y_px - rounded_y, x_px - rounded_x)
    if residual.max(initial=0.0) <= 1e-6:
        return rounded_y, rounded_x, None
    if not round_positions:
        i = int(np.argmax(residual))
        raise ContractError(
            f"{path}: {int(np.count_nonzero(residual > 1e-6))} position(s) are not whole object pixels, the worst "
            f"(y={y_px[i]:.3f}, x={x_px[i]:.3f} px); round them (--round-positions; the residual is recorded)"
        )
    return rounded_y, rounded_x, {"max_px": float(residual.max()), "rms_px": float(np.sqrt(np.mean(residual**2)))}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ptystudy.scan.hdf5", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write a run's scans and reconstructions as HDF5 and CXI files")
    export.add_argument("run_dir", type=Path)
    export.add_argument("out_dir", type=Path)
    imported = commands.add_parser("import", help="turn a Ptychodus pair or a CXI file into a contract scan")
    imported.add_argument("source", type=Path)
    imported.add_argument("target", type=Path)
    imported.add_argument("--round-positions", action="store_true", help="round positions to whole pixels")
    imported.add_argument("--dose", type=float, help="the nominal dose to record (default: the measured mean)")
    args = parser.parse_args(argv)
    if args.command == "export":
        return run_command(
            lambda: f"wrote {len(export_run(args.run_dir, args.out_dir))} HDF5 file(s) under {args.out_dir}"
        )
    return run_command(
        lambda: imported_message(
            args.target, read_hdf5_scan(args.source, round_positions=args.round_positions, dose=args.dose)
        )
    )


if __name__ == "__main__":
    sys.exit(main())
