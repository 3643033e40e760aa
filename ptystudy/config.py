"""The study configuration: one frozen, validated model, three profiles, YAML and overrides.

The design's defaults (docs/design.md §2) are the model's defaults; a profile changes sizes and
epochs, never the plan's shape. ``resolve_config`` is the one place a configuration is
assembled: profile, then YAML file, then ``key=value`` overrides.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

from ptystudy.seeds import derived_seed


class ConfigError(ValueError):
    """The study configuration is invalid; the message names the field."""


class Profile(StrEnum):
    """Sizes of the same plan: ``smoke`` for tests, ``quick`` for a laptop, ``paper`` for a GPU;
    ``map`` is the quick sizes over the whole dose x overlap map (``ptystudy.profiles``)."""

    SMOKE = "smoke"
    QUICK = "quick"
    PAPER = "paper"
    MAP = "map"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SpecimenKind(StrEnum):
    """The built-in specimens (docs/design.md §3)."""

    STATIONARY = "stationary"
    """Features from about 1 px to the probe footprint D, the same statistics everywhere."""
    LARGE_FEATURES = "large_features"
    """Mostly flat discs and bars wider than the probe: shows the limit of single-shot networks."""


class ObjectFileProbe(StrEnum):
    """Which probe scans a user's object (``scan.object_file``)."""

    FILE = "file"
    """The file's probeGuess, which must be N x N (the built-in probe if the file has none)."""
    BUILTIN = "builtin"
    """The built-in probe; the file's probeGuess, of any size, is not read."""


class ScanFiles(_Frozen):
    """One dose's existing scans: a train file and a test file (contract or PtychoPINN NPZ, a
    Ptychodus product.h5 beside its diffraction.h5, or a CXI file)."""

    train: str
    test: str


class ScanConfig(_Frozen):
    """Phase C: object, probe, position pool, doses and the train/test split."""

    patch_size_px: int = Field(64, ge=16, le=256)
    """N: detector pixels = object pixels per patch; a multiple of 8."""
    object_shape_px: tuple[int, int] = (384, 384)
    """(height, width) of the built-in object in pixels; ignored when ``object_file`` is set."""
    specimen: SpecimenKind = SpecimenKind.STATIONARY
    """Which built-in specimen to scan; ignored when ``object_file`` is set."""
    object_file: str | None = None
    """NPZ with ``objectGuess`` (H, W) complex and optionally ``probeGuess`` (N, N) complex."""
    object_file_probe: ObjectFileProbe = ObjectFileProbe.FILE
    """Scan ``object_file``'s object with the file's probe or the built-in one. A probe of
    another size is not resampled: that would change its footprint on the object."""
    probe_diameter_fraction: float = Field(0.45, ge=0.1, le=0.7)
    """Built-in probe's aperture diameter as a fraction of N (the footprint D is measured)."""
    doses: tuple[float, ...] = Field((1e3, 1e4, 1e5), min_length=1, max_length=32)
    """Mean expected total counts per diffraction pattern, photons; each a distinct integer."""
    train_fraction: float = Field(0.5, gt=0.1, lt=0.9)
    """Fraction of the object's rows above the train/test cut."""
    files: dict[float, ScanFiles] | None = None
    """Existing scans instead of simulated ones: dose -> {train: path, test: path}, each
    file in the contract's or PtychoPINN's layout. Phase C reads them instead of
    simulating; the doses are these keys (``doses`` is set from them), and each split is
    scored against its own file's objectGuess."""
    round_positions: bool = False
    """Round continuous positions of PtychoPINN-layout ``files`` to whole pixels (the
    residual is recorded); otherwise such a file is refused."""

    @model_validator(mode="before")
    @classmethod
    def _doses_of_files(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("files"):
            if data.get("object_file"):
                raise ValueError("scan.files and scan.object_file exclude each other: give one")
            data = {**data, "doses": tuple(sorted(float(dose) for dose in data["files"]))}
        return data

    @field_validator("patch_size_px")
    @classmethod
    def _multiple_of_eight(cls, value: int) -> int:
        if value % 8:
            raise ValueError(f"must be a multiple of 8, got {value}")
        return value

    @field_validator("object_shape_px")
    @classmethod
    def _object_shape(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 32 or max(value) > 8192:
            raise ValueError(f"each side must be in [32, 8192] pixels, got {value}")
        return value

    @field_validator("doses")
    @classmethod
    def _doses(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        for dose in value:
            if not (math.isfinite(dose) and dose >= 1 and dose == int(dose)):
                raise ValueError(f"each dose must be a whole number of photons >= 1, got {dose}")
        if len(set(value)) != len(value):
            raise ValueError(f"doses must be distinct, got {value}")
        return value


class ViewConfig(_Frozen):
    """Phase D: overlap views and gs2 groups."""

    overlaps: dict[str, float] = Field(default_factory=lambda: {"dense": 0.7, "sparse": 0.2}, min_length=1)
    """View name -> nominal linear overlap f in (-1, 1); scan step (mean nearest-neighbour
    spacing) S = (1 - f) * D: f = 0 puts neighbouring footprints edge to edge, f < 0 leaves gaps."""
    neighbours: int = Field(7, ge=1, le=32)
    """K: nearest neighbours a gs2 group draws its members from."""
    group_size: int = Field(4, ge=2, le=16)
    """C: members per gs2 group, the seed included."""
    min_positions: int = Field(16, ge=2)
    """Fewest positions a view of one split may hold; fewer is infeasible."""

    @field_validator("overlaps")
    @classmethod
    def _overlaps(cls, value: dict[str, float]) -> dict[str, float]:
        for name, overlap in value.items():
            if not name.isidentifier() or name != name.lower():
                raise ValueError(f"view name must be a lowercase identifier, got {name!r}")
            if not -1 < overlap < 1:
                raise ValueError(f"overlap of view {name!r} must be in (-1, 1), got {overlap}")
        return value

    @model_validator(mode="after")
    def _groups_fit(self) -> ViewConfig:
        if self.group_size - 1 > self.neighbours:
            raise ValueError(f"group_size - 1 ({self.group_size - 1}) cannot exceed neighbours ({self.neighbours})")
        if self.min_positions < self.neighbours + 1:
            raise ValueError(
                f"min_positions ({self.min_positions}) must be at least neighbours + 1 ({self.neighbours + 1})"
            )
        return self


class Arm(StrEnum):
    """A way of reconstructing a scan (docs/design.md §1)."""

    PINN = "pinn"
    """PtychoPINN gs2 as published: one generator reads a group's C patterns as channels."""
    PINN_SHARED = "pinn_shared"
    """This study's gs2 variant: one generator, its weights shared by the group's members,
    predicts each member's patch from that member's own pattern."""
    PINN_GS1 = "pinn_gs1"
    SUPERVISED = "supervised"
    LSQML = "lsqml"

    @property
    def is_network(self) -> bool:
        return self is not Arm.LSQML

    @property
    def is_gs2(self) -> bool:
        """Trained on gs2 groups (C neighbouring patterns merged by PtychoPINN's overlap constraint)."""
        return self in (Arm.PINN, Arm.PINN_SHARED)


class TrainingConfig(_Frozen):
    """Phase E: the networks and how they are trained."""

    arms: tuple[Arm, ...] = (Arm.PINN, Arm.PINN_SHARED, Arm.PINN_GS1, Arm.SUPERVISED)
    """Network arms to train and run; each is trained per dose x view. LSQML, the reference
    every network is compared with, always runs. No arm's results depend on which others
    are selected (``for_arm``), so selections share the cache."""
    filters_base: int = Field(32, ge=4, le=128)
    """Encoder filters of the first stage (then x2, x4); 32 is PtychoPINN's s = 1."""
    min_samples: int = Field(4000, ge=8, le=10_000_000)
    """Fewest samples (groups for gs2, patterns otherwise) in a network's training corpus:
    seeded scans of the training region laid out like the view, added until there are enough."""
    max_epochs: int = Field(100, ge=1, le=2000)
    """Epoch cap; training normally stops earlier, when the validation loss has converged."""
    batch_size: int = Field(16, ge=1, le=4096)
    learning_rate: float = Field(1e-3, gt=0, le=1.0)
    """Adam's initial learning rate of the PtychoPINN arms; halved when the validation loss plateaus."""
    supervised_learning_rate: float = Field(5e-4, gt=0, le=1.0)
    """Adam's initial learning rate of the supervised arm. Its validation loss (MAE against the
    truth) is noisy at the PINNs' rate and early stopping then picks an arbitrary epoch: at
    2e-3 its test-split phase MS-SSIM varied from 0.53 to 0.74 between seeds, at 5e-4 0.72-0.74."""
    validation_fraction: float = Field(0.1, ge=0.05, le=0.5)
    """Share of the corpus held out for validation: a strip of the training region, apart
    from the samples trained on by a guard band of N/2."""
    min_improvement: float = Field(5e-3, ge=0, le=0.5)
    """A validation loss counts as an improvement when it beats the best by this fraction of it."""
    plateau_patience: int = Field(3, ge=1, le=100)
    """Epochs without improvement before the learning rate is halved."""
    stop_patience: int = Field(6, ge=1, le=200)
    """Epochs without improvement before training stops (best weights kept)."""
    inference_batch_size: int = Field(256, ge=1, le=65536)
    """Patterns per inference batch; bounds the memory of stitching."""

    def for_arm(self, arm: Arm) -> TrainingConfig:
        """The settings one arm's training and inference depend on: these, with the selection
        of arms narrowed to ``arm``, so that a task's cache key does not change with the
        other arms selected."""
        return self.model_copy(update={"arms": (arm,)})

    @field_validator("arms")
    @classmethod
    def _network_arms(cls, value: tuple[Arm, ...]) -> tuple[Arm, ...]:
        if Arm.LSQML in value:
            raise ValueError("lsqml is not a network arm; it is reconstructed in phase F")
        if len(set(value)) != len(value):
            raise ValueError(f"arms must be distinct, got {value}")
        return value


class LsqmlConfig(_Frozen):
    """Phase F: pty-chi LSQML on every view (docs/design.md §7)."""

    max_epochs: int = Field(400, ge=1, le=10000)
    """Epoch cap; LSQML normally stops earlier, when its cost has plateaued."""
    tolerance: float = Field(1e-3, ge=0, le=0.5)
    """The cost has plateaued when it fell by less than this fraction per epoch, on average
    over the last ``check_every`` epochs."""
    check_every: int = Field(10, ge=2, le=1000)
    """Epochs between plateau checks (and the window they average over)."""
    batches_per_epoch: int = Field(8, ge=1, le=1000)
    """Compact batches per epoch (batch size about n/4 to n/10 converges well)."""
    momentum: float = Field(0.5, ge=0, le=1)
    """Momentum acceleration gain for the compact batches."""
    device: Literal["auto", "cpu", "gpu"] = "auto"
    """Where pty-chi runs: ``auto`` takes the GPU when torch sees one."""
    timeout_seconds: float = Field(3600, gt=0)
    """A run longer than this is killed and retried (a hung worker)."""


class GeometryConfig(_Frozen):
    """The physical scale of the study's pixel physics, used only to write files other
    tools read (``ptystudy.scan.hdf5``) and recorded in the manifest; no phase uses it."""

    photon_energy_eV: float = Field(10_000.0, gt=0)  # noqa: N815
    """Nominal photon energy (10 keV, a hard X-ray beamline's)."""
    detector_distance_m: float = Field(2.0, gt=0)
    """Sample-to-detector distance."""
    detector_pixel_size_m: float = Field(75e-6, gt=0)
    """Detector pixel pitch (an Eiger's 75 um)."""

    @property
    def wavelength_m(self) -> float:
        """hc / E."""
        return 1.239841984e-6 / self.photon_energy_eV

    def object_pixel_size_m(self, patch_size: int) -> float:
        """The object pixel of far-field ptychography with ``patch_size`` detector pixels:
        lambda z / (N p)."""
        return self.wavelength_m * self.detector_distance_m / (patch_size * self.detector_pixel_size_m)


class EvaluationConfig(_Frozen):
    """Phase G: alignment and scoring against the ground truth (docs/design.md §8)."""

    max_shift_px: float = Field(2.0, ge=0, le=16)
    """A registration shift larger than this is recorded but not applied, px."""
    remove_phase_ramp: bool = False
    """Fit and remove a linear phase ramp; for a refined probe (the study's probe is fixed)."""
    amplitude_smoothing_px: float = Field(1.0, ge=0, le=8)
    """Gaussian sigma applied to both amplitudes before MS-SSIM, px (0: none)."""


class Seeds(_Frozen):
    """Every random draw is seeded from these (numpy Generator, TF, torch)."""

    simulation: int = Field(42, ge=0)
    """The built-in specimen (unless ``specimen`` is set) and the photon noise."""
    grouping: int = Field(123, ge=0)
    """gs2 groups, network initialisation and training order."""
    subsampling: int = Field(456, ge=0)
    """Scan layouts and training corpora."""
    specimen: int | None = Field(None, ge=0)
    """The built-in specimen's seed when it is not ``simulation`` (replicates keep the
    study's specimen and redraw the rest); left out of the record when None, so the
    seeds of replicate 0 read exactly as a study's without replicates."""

    @model_serializer(mode="wrap")
    def _without_unset_specimen(self, handler: Any) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("specimen") is None:
            data.pop("specimen", None)
        return data

    @property
    def specimen_seed(self) -> int:
        return self.simulation if self.specimen is None else self.specimen

    def for_replicate(self, replicate: int) -> Seeds:
        """The seeds of replicate ``replicate``: 0 is these; another redraws the photon
        noise, scan layouts, training corpora and network initialisations from seeds
        derived from these and ``replicate``, and keeps the specimen."""
        if replicate == 0:
            return self
        labels = ("replicate", replicate)
        return Seeds(
            simulation=derived_seed(self.simulation, *labels),
            grouping=derived_seed(self.grouping, *labels),
            subsampling=derived_seed(self.subsampling, *labels),
            specimen=self.specimen_seed,
        )


class StudyConfig(_Frozen):
    """The whole study: one plan, sized by a profile."""

    profile: Profile = Profile.PAPER
    scan: ScanConfig = ScanConfig()
    views: ViewConfig = ViewConfig()
    training: TrainingConfig = TrainingConfig()
    lsqml: LsqmlConfig = LsqmlConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    geometry: GeometryConfig = GeometryConfig()
    seeds: Seeds = Seeds()
    replicates: int = Field(3, ge=1, le=20)
    """R: repeats of every condition, each with its own photon noise, scan layouts, training
    corpora and network initialisations (replicate 0 is the study's own seeds)."""
