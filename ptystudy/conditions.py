"""The study matrix (DESIGN §2): splits, doses as text, and its dose x view x split conditions."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ptystudy.config import StudyConfig


class Split(StrEnum):
    """Which side of the y cut a scan lies on."""

    TRAIN = "train"
    TEST = "test"


def dose_text(dose: float) -> str:
    """Short human form of a dose for names and titles, e.g. ``1e4``."""
    exponent = f"{dose:.0e}".replace("e+0", "e").replace("e+", "e")
    return exponent if float(exponent) == dose else str(int(dose))


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
