"""Inference of phase E: predict every pattern of a view and stitch it by position."""

from __future__ import annotations

import logging
import math
import weakref
from enum import StrEnum

from ptystudy.models.data import network_data
from ptystudy.models.networks import MEMBER_GENERATOR, ModelSpec

import keras
import numpy as np

from ptystudy.config import Arm
from ptystudy.errors import ContractError
from ptystudy.scan.contract import Scan
from ptystudy.stitch import Stitcher


class _NewModelTracing(logging.Filter):
    """Drops TensorFlow's retracing warning: each newly loaded model's predict function is
    traced once, by design (the study loads one model per inference task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


logging.getLogger("tensorflow").addFilter(_NewModelTracing())

_OBJECT_MODELS: weakref.WeakKeyDictionary[keras.Model, keras.Model] = weakref.WeakKeyDictionary()


def object_model(model: keras.Model, spec: ModelSpec) -> keras.Model:
    """The part of ``model`` that maps diffraction to object amplitude and phase: the
    central N/2 square of each patch it predicts.

    A PINN's group merge and forward model only serve its training loss; inference skips
    them (and, for gs2, the offsets input). The shared-generator gs2 network is that
    generator, fed single patterns (``spec.predicts_each_pattern_alone``); the joint gs2
    network reads whole groups and predicts all C members' patches.
    Built once per model, so its compiled predict function is reused by later calls.
    """
    if spec.arm is Arm.SUPERVISED:
        return model
    if model not in _OBJECT_MODELS:
        if spec.shared_generator:
            pattern = keras.Input((spec.patch_size, spec.patch_size, 1), name="diffraction")
            outputs = model.get_layer(MEMBER_GENERATOR)(pattern)
            inputs = {"diffraction": pattern}
        else:
            inputs = {"diffraction": model.get_layer("diffraction").output}
            outputs = {"amplitude": model.get_layer("amplitude").output, "phase": model.get_layer("phase").output}
        _OBJECT_MODELS[model] = keras.Model(inputs, outputs, name=f"{spec.arm}_object")
    return _OBJECT_MODELS[model]


def even_batch_size(n_samples: int, batch_size: int) -> int:
    """The batch size that splits ``n_samples`` into as few batches as ``batch_size`` allows,
    all of (nearly) equal size: the last batch is padded to it, so the compiled predict
    function sees a single shape."""
    return math.ceil(n_samples / math.ceil(n_samples / batch_size))


def predict_patches(model: keras.Model, spec: ModelSpec, diffraction: np.ndarray, *, batch_size: int) -> np.ndarray:
    """Complex object patches (b, C, N, N) of a batch of b samples: the prediction of the
    central N/2 square for each of the sample's C channels (C = 1 but for the joint gs2),
    zero-padded to N.

    ``diffraction`` (b, N, N, C) with b <= ``batch_size`` is padded to ``batch_size`` with
    zeros (and the padding dropped), so the compiled function is traced once.
    """
    n = diffraction.shape[0]
    padded = np.pad(diffraction, [(0, batch_size - n)] + [(0, 0)] * (diffraction.ndim - 1))
    outputs = model.predict_on_batch({"diffraction": padded})
    amplitude = np.moveaxis(np.asarray(outputs["amplitude"])[:n], -1, 1)
    phase = np.moveaxis(np.asarray(outputs["phase"])[:n], -1, 1)
    patches = (amplitude * np.exp(1j * phase)).astype(np.complex64)
    quarter = spec.patch_size // 4
    return np.pad(patches, [(0, 0), (0, 0), (quarter, quarter), (quarter, quarter)])


STITCH_WEIGHT_FLOOR = 1e-3
"""Smallest stitching weight, as a fraction of the largest (keeps every crop pixel counted)."""


def stitch_weights(probe: np.ndarray) -> np.ndarray:
    """(N/2, N/2) float64 weights of each predicted pixel when patches are stitched: the
    probe's intensity over the central crop, floored at ``STITCH_WEIGHT_FLOOR`` of its peak.

    A network's prediction is constrained by the diffraction pattern where the probe lit
    the object; at the crop's corners the probe is weak and the prediction little more
    than a guess, so there it counts little against a neighbour that saw the pixel well.
    """
    size = probe.shape[0]
    quarter = size // 4
    intensity = np.abs(probe[quarter : size - quarter, quarter : size - quarter].astype(np.complex128)) ** 2
    return np.maximum(intensity / intensity.max(), STITCH_WEIGHT_FLOOR)


class JointReading(StrEnum):
    """Which predicted patches of the joint gs2 network (``pinn``) are stitched."""

    ALL_MEMBERS = "all members"
    """Every member's patch of every group, each at its member's position: how PtychoPINN's
    own inference reads a gs2 model (``reassemble_position`` over all the group channels)."""
    SEED_MEMBER = "seed member"
    """Only each group's seed member's patch, at the seed's position (a side measurement:
    the merge constrains only the members' average, and training may put the
    reconstruction into one member; ``experiments/gs2_members.py``)."""


def reconstruct_view(
    model: keras.Model,
    spec: ModelSpec,
    view: Scan,
    *,
    batch_size: int,
    joint_reading: JointReading = JointReading.ALL_MEMBERS,
) -> tuple[np.ndarray, np.ndarray]:
    """Predict every pattern of ``view`` and stitch the central N/2 crops on the truth's canvas,
    overlaps averaged with the probe's intensity as weights (``stitch_weights``).

    The joint gs2 network predicts each group's C members together, and every pattern
    seeds a group: ``joint_reading`` says which of those patches are stitched (a pattern
    is then predicted about C times, once in each group it is a member of).

    Returns ``(object, coverage)``: (H, W) complex64, (H, W) bool. Memory is bounded by
    ``batch_size`` samples plus the canvas. The network runs as a compiled (graph)
    function: its first call traces it, later calls on the same model reuse it.

    Raises
    ------
    ContractError
        If the view does not match the model (patch size, group size or seeds).
    """
    if view.patch_size != spec.patch_size:
        raise ContractError(f"the view has {view.patch_size} px patterns, the model expects {spec.patch_size}")
    if spec.arm.is_gs2:
        if view.groups is None or view.groups.shape[1] != spec.group_size:
            raise ContractError(f"the {spec.arm} model needs groups of {spec.group_size} in the view")
        if not np.array_equal(view.groups[:, 0], np.arange(view.n_patterns)):
            raise ContractError("the view's groups must be seeded by every pattern in order (groups[:, 0] == i)")
    data = network_data(view, spec.arm, spec.input_scale, grouped=not spec.predicts_each_pattern_alone)
    generator = object_model(model, spec)
    stitcher = Stitcher(view.obj.shape, spec.patch_size // 2, stitch_weights(view.probe))
    batch = even_batch_size(data.n_samples, batch_size)
    members = 1 if joint_reading is JointReading.SEED_MEMBER else data.members.shape[1]
    for start in range(0, data.n_samples, batch):
        index = slice(start, start + batch)
        patches = predict_patches(generator, spec, data.diffraction[index], batch_size=batch)[:, :members]
        positions = data.members[index, :members].ravel()
        stitcher.add(patches.reshape(-1, *patches.shape[2:]), view.ycoords[positions], view.xcoords[positions])
    return stitcher.result()
