"""The checks of a study plan that can fail before any work is done."""

from __future__ import annotations

from ptystudy.conditions import Split
from ptystudy.config import StudyConfig
from ptystudy.scan_layout import PlannedScan
from ptystudy.simulate import ScanPlanConfig, make_specimen, plan_specimen_scans


def check_plan(config: StudyConfig) -> tuple[float, dict[Split, list[PlannedScan]]]:
    """Lay out every scan of the study before any simulation; return the probe diameter D
    (px) and the planned scans per split.

    Raises
    ------
    InfeasibleViewError
        If a view of a split cannot hold ``views.min_positions`` at its step, or its
        training corpus needs too many scans; the message gives the numbers.
    ValueError
        If a split has no room for a patch.
    ContractError
        If the user's object file is broken.
    """
    specimen = make_specimen(config.scan, config.seeds)
    plans = plan_specimen_scans(specimen, config.scan, ScanPlanConfig.of(config), config.seeds)
    return specimen.probe_diameter_px, plans
