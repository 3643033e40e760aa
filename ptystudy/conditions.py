"""The study matrix (docs/design.md §2): splits, doses as text, its dose x view x split conditions,
and a selection of them (running part of the matrix)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from ptystudy.config import ConfigError, StudyConfig
from ptystudy.naming import dose_text


class Split(StrEnum):
    """Which side of the y cut a scan lies on."""

    TRAIN = "train"
    TEST = "test"


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


class Selection(BaseModel):
    """Part of the matrix to run: the conditions whose dose, view and split are among those
    given (None: any). Cache and run directory are the full study's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    doses: tuple[float, ...] | None = None
    views: tuple[str, ...] | None = None
    splits: tuple[Split, ...] | None = None

    def matches(self, condition: Condition) -> bool:
        return (
            (self.doses is None or condition.dose in self.doses)
            and (self.views is None or condition.view in self.views)
            and (self.splits is None or condition.split in self.splits)
        )

    def describe(self) -> str:
        """``"dose 1e3, view dense, split test"``; ``"all conditions"`` when nothing is selected."""
        parts = [
            f"{name} {', '.join(values)}"
            for name, values in (
                ("dose", [dose_text(dose) for dose in self.doses or ()]),
                ("view", list(self.views or ())),
                ("split", [str(split) for split in self.splits or ()]),
            )
            if values
        ]
        return "; ".join(parts) if parts else "all conditions"


def selected_conditions(config: StudyConfig, selection: Selection) -> list[Condition]:
    """The conditions of the plan that ``selection`` picks, in the plan's order.

    Raises
    ------
    ConfigError
        If the selection names a dose or view the plan does not have.
    """
    known = {"dose": [float(dose) for dose in config.scan.doses], "view": list(config.views.overlaps)}
    for name, chosen, shown in (
        ("dose", selection.doses or (), dose_text),
        ("view", selection.views or (), str),
    ):
        for value in chosen:
            if value not in known[name]:
                choices = ", ".join(dose_text(option) if name == "dose" else option for option in known[name])
                raise ConfigError(f"--{name} {shown(value)}: not a {name} of the plan ({choices})")
    return [condition for condition in conditions(config) if selection.matches(condition)]


def needed_conditions(config: StudyConfig, selected: list[Condition]) -> list[Condition]:
    """``selected`` and, when networks are trained, the train split of each selected dose and
    view (its view trains the networks scored on the test split), in the plan's order."""
    needed = set(selected)
    if config.training.arms:
        needed |= {Condition(condition.dose, condition.view, str(Split.TRAIN)) for condition in selected}
    return [condition for condition in conditions(config) if condition in needed]
