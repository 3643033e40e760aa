"""The study plan: its conditions, and the checks that can fail before any work is done."""

from __future__ import annotations

from dataclasses import dataclass

from ptystudy.config import StudyConfig
from ptystudy.layout import Split, dose_text
from ptystudy.scan_layout import PlannedScan
from ptystudy.simulate import ScanPlanConfig, make_specimen, plan_specimen_scans


@dataclass(frozen=True, order=True)
class Condition:
    """One cell of the study matrix: a dose, a view and a split."""

    dose: float
    view: str
    split: str

    def __str__(self) -> str:
        return f"{dose_text(self.dose)} {self.view} {self.split}"


def conditions(config: StudyConfig) -> list[Condition]:
    """Every dose x view x split condition of the plan, in a stable order."""
    return [
        Condition(float(dose), view, str(split))
        for dose in config.scan.doses
        for view in config.views.overlaps
        for split in Split
    ]


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
