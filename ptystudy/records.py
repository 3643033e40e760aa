"""Small records that phases hand each other: paths, content hashes, counts, seconds.

Arrays never travel between tasks; they live in files, and a record names the file and
its sha256, so a cache keyed on records notices a regenerated file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ptystudy.errors import ContractError
from ptystudy.files import sha256_file


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileRecord(_Record):
    """A file written by a phase and its content hash."""

    path: str
    sha256: str

    @classmethod
    def of(cls, path: Path) -> FileRecord:
        return cls(path=str(path), sha256=sha256_file(path))

    def verified(self) -> Path:
        """The path, after checking the file still holds what was written.

        Raises ContractError if the file is gone or changed since (rerun with --fresh).
        """
        path = Path(self.path)
        if not path.is_file():
            raise ContractError(f"{path}: file not found (deleted since it was written? rerun with --fresh)")
        if sha256_file(path) != self.sha256:
            raise ContractError(f"{path}: content changed since it was written (rerun with --fresh)")
        return path


class ScanRecord(_Record):
    """Phase C output for one dose and split."""

    dose: float
    split: str
    file: FileRecord
    n_patterns: int
    mean_counts_per_pattern: float
    scale: float
    probe_diameter_px: float
    seconds: float

    @classmethod
    def of(
        cls, dose: float, split: str, path: Path, metadata: dict[str, Any], n_patterns: int, seconds: float
    ) -> ScanRecord:
        """The record of a scan of ``n_patterns`` written at ``path`` with the contract's ``metadata``."""
        return cls(
            dose=dose,
            split=split,
            file=FileRecord.of(path),
            n_patterns=n_patterns,
            mean_counts_per_pattern=metadata["mean_counts_per_pattern"],
            scale=metadata["scale"],
            probe_diameter_px=metadata["probe_diameter_px"],
            seconds=seconds,
        )


class ViewRecord(_Record):
    """Phase D output for one dose, view and split; the train split's also names the
    view's training corpus."""

    dose: float
    view: str
    split: str
    file: FileRecord
    overlap_file: FileRecord
    spacing_figure: FileRecord
    corpus: FileRecord | None
    n_positions: int
    n_groups: int
    n_corpus_samples: int | None
    step_px: float
    mean_spacing_px: float
    measured_overlap: float
    seconds: float

    @property
    def condition(self) -> tuple[float, str, str]:
        """(dose, view, split)."""
        return self.dose, self.view, self.split


class ModelRecord(_Record):
    """Phase E training output for one dose, view and arm."""

    dose: float
    view: str
    arm: str
    model: FileRecord
    spec: FileRecord
    history: FileRecord
    loss_figure: FileRecord
    epochs_run: int
    max_epochs: int
    best_epoch: int
    stop_reason: str
    n_samples: int
    n_train: int
    samples_per_group: int
    pattern_evaluations: int
    """Patterns the generator was evaluated on in training: samples trained on, and
    validation samples, over every epoch, times the patterns per sample."""
    seed: int
    seconds: float

    @classmethod
    def of(
        cls,
        dose: float,
        view: str,
        arm: str,
        paths: dict[str, Path],
        history: dict[str, Any],
        pattern_evaluations: int,
        seed: int,
        seconds: float,
    ) -> ModelRecord:
        """The record of a network saved at ``paths`` (model, spec, history, loss) that trained
        as ``history`` (``models.training``'s history) says, with the work it did."""
        fields = ("epochs_run", "max_epochs", "best_epoch", "stop_reason", "n_samples", "n_train", "samples_per_group")
        return cls(
            dose=dose,
            view=view,
            arm=arm,
            model=FileRecord.of(paths["model"]),
            spec=FileRecord.of(paths["spec"]),
            history=FileRecord.of(paths["history"]),
            loss_figure=FileRecord.of(paths["loss"]),
            **{name: history[name] for name in fields},
            pattern_evaluations=pattern_evaluations,
            seed=seed,
            seconds=seconds,
        )


class ReconRecord(_Record):
    """A reconstruction on the ground-truth canvas for one condition and arm."""

    dose: float
    view: str
    split: str
    arm: str
    file: FileRecord
    n_patterns: int
    covered_px: int
    epochs: int | None = None
    """Iterations run (LSQML); None for a network's single pass."""
    max_epochs: int | None = None
    """The iteration cap (LSQML)."""
    stop_reason: str | None = None
    seconds: float

    @classmethod
    def of(cls, view: ViewRecord, arm: str, path: Path, covered_px: int, seconds: float, **run: Any) -> ReconRecord:
        """The record of ``arm``'s reconstruction of ``view`` written at ``path``; ``run`` holds
        an iterative arm's epochs, max_epochs and stop_reason."""
        return cls(
            dose=view.dose,
            view=view.view,
            split=view.split,
            arm=arm,
            file=FileRecord.of(path),
            n_patterns=view.n_positions,
            covered_px=covered_px,
            seconds=seconds,
            **run,
        )


class CompareRecord(_Record):
    """Phase G output for one condition: every arm present, aligned and scored."""

    dose: float
    view: str
    split: str
    arms: tuple[str, ...]
    aligned: FileRecord
    metrics: FileRecord
    alignment: FileRecord
    montage: FileRecord
    frc_figure: FileRecord
    seconds: float


def output_hashes(records: list[Any]) -> dict[str, str]:
    """Every file named by the records, at any depth (records inside records, lists,
    tuples and dicts) -> its sha256."""
    hashes: dict[str, str] = {}
    pending: list[Any] = list(records)
    while pending:
        value = pending.pop()
        if isinstance(value, FileRecord):
            hashes[value.path] = value.sha256
        elif isinstance(value, BaseModel):
            pending.extend(value.__dict__.values())
        elif isinstance(value, list | tuple):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
    return dict(sorted(hashes.items()))
