"""The study plan: its conditions, and the checks that can fail before any work is done."""

from __future__ import annotations

from dataclasses import dataclass

from ptystudy.config import StudyConfig
from ptystudy.layout import Split, dose_text
from ptystudy.simulate import make_specimen, split_rows
from ptystudy.views import check_feasible, condition_rng, min_spacing_px


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


def check_plan(config: StudyConfig) -> float:
    """Check every view of every split can hold its positions; return the probe diameter D (px).

    Raises
    ------
    InfeasibleViewError
        Before any simulation, with the region, spacing and count that do not fit.
    ContractError
        If the user's object file is broken.
    """
    specimen = make_specimen(config.scan, config.seeds)
    diameter = specimen.probe_diameter_px
    height, width = specimen.obj.shape
    size = config.scan.patch_size_px
    half = size // 2
    _, train_y_max, test_y_min = split_rows(height, size, config.scan.train_fraction)
    spans = {
        Split.TRAIN: train_y_max - half,
        Split.TEST: (height - size + half) - test_y_min,
    }
    centre_width = width - size
    for view, overlap in config.views.overlaps.items():
        spacing = min_spacing_px(overlap, diameter)
        for split, centre_height in spans.items():
            if centre_height < 0:
                raise ValueError(
                    f"the {split} split has no room for a {size} px patch in a {height} px tall object "
                    f"cut at train_fraction {config.scan.train_fraction}"
                )
            check_feasible(f"{view} ({split})", centre_height, centre_width, spacing, config.views.min_positions)
    return diameter


def derived_seed(seed: int, *labels: str | float) -> int:
    """A seed for one run (a network's training, an LSQML run), derived from ``seed`` and labels."""
    return int(condition_rng(seed, *labels).integers(2**31 - 1))
