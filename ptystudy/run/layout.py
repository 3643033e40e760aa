"""The run directory's layout (docs/design.md §10): the only place that turns conditions into paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ptystudy.conditions import Split


def dose_label(dose: float) -> str:
    """``dose_{d}`` with the dose as an integer, e.g. ``dose_1000``."""
    return f"dose_{int(dose)}"


@dataclass(frozen=True)
class RunLayout:
    """Paths of one study run under ``root``."""

    root: Path

    def replicate(self, replicate: int) -> RunLayout:
        """The layout of replicate ``replicate``: this one for 0 (so a study without
        replicates keeps its paths and cache), ``replicates/r{n}/`` under it for the others."""
        return self if replicate == 0 else RunLayout(self.root / "replicates" / f"r{replicate}")

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def cache_dir(self) -> Path:
        """Prefect's persisted task results for this run (its cache)."""
        return self.root / ".prefect-results"

    def scan(self, dose: float, split: Split | str) -> Path:
        return self.root / "data" / dose_label(dose) / f"{Split(split)}.npz"

    def view_dir(self, dose: float, view: str) -> Path:
        return self.root / "views" / dose_label(dose) / view

    def view(self, dose: float, view: str, split: Split | str) -> Path:
        return self.view_dir(dose, view) / f"{Split(split)}.npz"

    def corpus(self, dose: float, view: str) -> Path:
        """The training corpus of a view: its train scan and the further scans of that geometry."""
        return self.view_dir(dose, view) / "corpus.npz"

    def overlap(self, dose: float, view: str, split: Split | str) -> Path:
        """Measured overlap record; one per split (``overlap.json`` holds the train split's)."""
        name = "overlap.json" if Split(split) is Split.TRAIN else f"overlap_{Split(split)}.json"
        return self.view_dir(dose, view) / name

    def model_dir(self, dose: float, view: str, arm: str) -> Path:
        return self.root / "models" / dose_label(dose) / view / str(arm)

    def recon(self, dose: float, view: str, split: Split | str, arm: str) -> Path:
        return self.root / "recon" / dose_label(dose) / view / str(Split(split)) / f"{arm}.npz"

    def cost_figure(self, dose: float, view: str, split: Split | str) -> Path:
        return self.recon(dose, view, split, "lsqml").with_name("lsqml_cost.png")

    def compare_dir(self, dose: float, view: str, split: Split | str) -> Path:
        """Phase G outputs of one condition: aligned.npz, metrics.csv, montage.png, frc.png."""
        return self.root / "compare" / dose_label(dose) / view / str(Split(split))

    def spacing_figure(self, dose: float, view: str, split: Split | str) -> Path:
        name = "spacing.png" if Split(split) is Split.TRAIN else f"spacing_{Split(split)}.png"
        return self.view_dir(dose, view) / name
