"""The checks of a study plan that can fail before any work is done."""

from __future__ import annotations

from ptystudy.config import StudyConfig
from ptystudy.scan.existing import check_scan_files
from ptystudy.scan.simulate import ScanPlanConfig, make_specimen, plan_specimen_scans


def check_plan(config: StudyConfig) -> str:
    """Lay out every scan of the study before any simulation (or, for existing scans,
    check that their files exist); return a line that describes the plan.

    Raises
    ------
    InfeasibleViewError
        If a view of a split cannot hold ``views.min_positions`` at its step, or its
        training corpus needs too many scans; the message gives the numbers.
    ValueError
        If a split has no room for a patch.
    ContractError
        If the user's object file is broken, or a given scan file does not exist.
    """
    if config.scan.files:
        files = {dose: files.model_dump() for dose, files in config.scan.files.items()}
        check_scan_files(files)
        return f"existing scans: {2 * len(files)} files, views laid out on their positions"
    specimen = make_specimen(config.scan, config.seeds)
    plans = plan_specimen_scans(specimen, config.scan, ScanPlanConfig.of(config), config.seeds)
    return "probe footprint D = {:.1f} px, {} scans of {} positions per dose".format(
        specimen.probe_diameter_px,
        sum(len(scans) for scans in plans.values()),
        sum(scan.n_positions for scans in plans.values() for scan in scans),
    )
