"""Inference of phase E: predict every pattern of a view and stitch it by position."""

from __future__ import annotations

import logging
import math
import weakref

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
    """The part of ``model`` that maps diffraction to object amplitude and phase: each
    pattern's own prediction of the central N/2 square.

    A PINN's group merge and forward model only serve its training loss; inference skips
    them (and, for gs2, the offsets input). A gs2 network whose members share one generator
    is that generator, fed single patterns (``spec.predicts_each_pattern_alone``). A joint
    gs2 network reads whole groups, and each pattern is reconstructed from its group's seed
    member: the merge only constrains the members' average, and the trained network puts the
    reconstruction into the seed member (its own prediction scores better than its merged
    patch or the other members; ``experiments/gs2_members.py``).
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
    """Complex object patches (b, N, N) of a batch: each pattern's own (seed member)
    prediction of the central N/2 square (every arm predicts it), zero-padded to N.

    ``diffraction`` (b, N, N, C) with b <= ``batch_size`` is padded to ``batch_size`` with
    zeros (and the padding dropped), so the compiled function is traced once.
    """
    n = diffraction.shape[0]
    padded = np.pad(diffraction, [(0, batch_size - n)] + [(0, 0)] * (diffraction.ndim - 1))
    outputs = model.predict_on_batch({"diffraction": padded})
    amplitude = np.asarray(outputs["amplitude"])[:n, ..., 0]
    phase = np.asarray(outputs["phase"])[:n, ..., 0]
    patches = (amplitude * np.exp(1j * phase)).astype(np.complex64)
    quarter = spec.patch_size // 4
    return np.pad(patches, [(0, 0), (quarter, quarter), (quarter, quarter)])


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


def reconstruct_view(
    model: keras.Model, spec: ModelSpec, view: Scan, *, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Predict every pattern of ``view`` and stitch the central N/2 crops on the truth's canvas,
    overlaps averaged with the probe's intensity as weights (``stitch_weights``).

    Returns ``(object, coverage)``: (H, W) complex64, (H, W) bool. Memory is bounded by
    ``batch_size`` patterns plus the canvas. The network runs as a compiled (graph)
    function: its first call traces it, later calls on the same model reuse it.

    Raises
    ------
    ContractError
        If the view does not match the model (patch size, group size or seeds).
    """
    if view.patch_size != spec.patch_size:
        raise ContractError(f"the view has {view.patch_size} px patterns, the model expects {spec.patch_size}")
    if spec.arm is Arm.PINN:
        if view.groups is None or view.groups.shape[1] != spec.group_size:
            raise ContractError(f"the pinn model needs groups of {spec.group_size} in the view")
        if not np.array_equal(view.groups[:, 0], np.arange(view.n_patterns)):
            raise ContractError("the view's groups must be seeded by every pattern in order (groups[:, 0] == i)")
    data = network_data(view, spec.arm, spec.input_scale, grouped=not spec.predicts_each_pattern_alone)
    generator = object_model(model, spec)
    stitcher = Stitcher(view.obj.shape, spec.patch_size // 2, stitch_weights(view.probe))
    batch = even_batch_size(data.n_samples, batch_size)
    for start in range(0, data.n_samples, batch):
        index = slice(start, start + batch)
        patches = predict_patches(generator, spec, data.diffraction[index], batch_size=batch)
        seeds = data.members[index, 0]
        stitcher.add(patches, view.ycoords[seeds], view.xcoords[seeds])
    return stitcher.result()
