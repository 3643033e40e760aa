"""Builders of the two network families (docs/design.md §6), each from an explicit spec.

Nothing lives at module level: every call builds a fresh model from its ``ModelSpec``.
"""

from __future__ import annotations

from ptystudy.models.layers import (
    BatchToMembers,
    FarFieldCounts,
    GroupMerge,
    MembersToBatch,
    PadToPatch,
    PolarToComplex,
    ScaledTanh,
)

import keras
import numpy as np
from keras import layers
from pydantic import BaseModel, ConfigDict, Field

from ptystudy.config import Arm

MEMBER_GENERATOR = "member_generator"
"""Name of the single-pattern generator a gs2 network with a shared generator applies to each member."""


class ModelSpec(BaseModel):
    """Everything needed to rebuild, feed and read a network; saved beside it as JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    arm: Arm
    patch_size: int = Field(ge=16)
    """N, pixels; a multiple of 8."""
    filters_base: int = Field(ge=4)
    group_size: int = Field(ge=1)
    """Channels C: group members for gs2, 1 otherwise."""
    input_scale: float = Field(gt=0)
    """Network input = sqrt(counts) / input_scale."""

    @property
    def shared_generator(self) -> bool:
        """One generator predicts each gs2 member's patch from that member's own pattern
        (``pinn_shared``), instead of reading all C patterns as channels (``pinn``)."""
        return self.arm is Arm.PINN_SHARED

    @property
    def predicts_each_pattern_alone(self) -> bool:
        """Whether a pattern's predicted patch depends on that pattern only (true of every arm
        but the joint gs2), so inference can feed single patterns."""
        return self.arm is not Arm.PINN


class _Initializers:
    """Kernel initializers seeded from one integer, in layer order.

    Keras otherwise seeds each initializer from Python's shared ``random`` module, which
    the background threads of a Prefect or Dask worker also draw from: the same seed
    would then give different networks.
    """

    def __init__(self, seed: int):
        self._rng = np.random.default_rng(seed)

    def __call__(self) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=int(self._rng.integers(2**31 - 1)))


def _conv(init: _Initializers, filters: int, **options) -> layers.Conv2D:
    """A 3 x 3 'same' convolution with a seeded kernel initializer."""
    return layers.Conv2D(filters, 3, padding="same", kernel_initializer=init(), **options)


def _encoder(inputs, filters_base: int, init: _Initializers):
    x = inputs
    for stage in range(3):
        filters = filters_base * 2**stage
        x = _conv(init, filters, activation="relu")(x)
        x = _conv(init, filters, activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    return x


def _decoder(x, filters_base: int, stages: int, name: str, init: _Initializers):
    for stage in reversed(range(stages)):
        filters = filters_base * 2**stage
        x = _conv(init, filters, activation="relu", name=f"{name}_conv{stage}a")(x)
        x = _conv(init, filters, activation="relu", name=f"{name}_conv{stage}b")(x)
        x = layers.UpSampling2D(2, name=f"{name}_up{stage}")(x)
    return x


def _generator(inputs, filters_base: int, channels: int, init: _Initializers):
    """Encoder and the two decoders: ``(amplitude, phase)`` of the central (N/2, N/2, channels)
    square, amplitude in (0, 1) (sigmoid), phase in (-pi, pi) radians (pi tanh)."""
    code = _encoder(inputs, filters_base, init)
    amplitude = _conv(init, channels, activation="sigmoid", name="amplitude")(
        _decoder(code, filters_base, 2, "amplitude_decoder", init)
    )
    phase_raw = _conv(init, channels, name="phase_raw")(_decoder(code, filters_base, 2, "phase_decoder", init))
    return amplitude, ScaledTanh(name="phase")(phase_raw)


def _member_generator(spec: ModelSpec, init: _Initializers) -> keras.Model:
    """The single-pattern generator a shared-generator gs2 network applies to each member:
    ``pattern`` (N, N, 1) -> ``amplitude``, ``phase`` (N/2, N/2, 1)."""
    pattern = keras.Input((spec.patch_size, spec.patch_size, 1), name="pattern")
    amplitude, phase = _generator(pattern, spec.filters_base, 1, init)
    return keras.Model(pattern, {"amplitude": amplitude, "phase": phase}, name=MEMBER_GENERATOR)


def build_pinn(spec: ModelSpec, probe: np.ndarray, *, seed: int = 0) -> keras.Model:
    """PtychoPINN: diffraction (and gs2 offsets) -> expected counts, amplitude and phase.

    Parameters
    ----------
    spec : arm ``pinn`` (gs2: one generator reads the C members' patterns as channels; the
        patches are merged), ``pinn_shared`` (gs2, each member's patch predicted from its own
        pattern by one shared generator; merged alike) or ``pinn_gs1`` (C = 1).
    probe : (N, N) complex, sqrt(photons) per pixel: the simulation probe times its
        dose scale, so that expected counts are ``|fft2(P O)|**2 / N**2`` exactly.
    seed : seeds the initial weights.

    Returns
    -------
    A model with inputs ``diffraction`` (N, N, C) [and ``offsets`` (C, 2)] and outputs
    ``counts`` (N, N, C), ``amplitude`` and ``phase`` (N/2, N/2, C), the central region.
    """
    if spec.arm not in (Arm.PINN, Arm.PINN_SHARED, Arm.PINN_GS1):
        raise ValueError(f"build_pinn builds pinn arms, got {spec.arm}")
    size, channels = spec.patch_size, spec.group_size
    diffraction = keras.Input((size, size, channels), name="diffraction")
    inputs = {"diffraction": diffraction}
    init = _Initializers(seed)
    if spec.shared_generator:
        predicted = _member_generator(spec, init)(MembersToBatch(name="members_to_batch")(diffraction))
        amplitude = BatchToMembers(channels, name="amplitude")(predicted["amplitude"])
        phase = BatchToMembers(channels, name="phase")(predicted["phase"])
    else:
        amplitude, phase = _generator(diffraction, spec.filters_base, channels, init)
    pad = PadToPatch(size, name="pad_to_patch")
    real, imag = PolarToComplex(name="to_complex")((pad(amplitude), pad(phase)))
    if spec.arm.is_gs2:
        offsets = keras.Input((channels, 2), name="offsets")
        inputs["offsets"] = offsets
        real, imag = GroupMerge(size, channels, name="group_merge")((real, imag, offsets))
    forward = FarFieldCounts(size, name="counts")
    counts = forward((real, imag))
    forward.set_probe(probe)
    return keras.Model(inputs, {"counts": counts, "amplitude": amplitude, "phase": phase}, name=str(spec.arm))


def build_supervised(spec: ModelSpec, *, seed: int = 0) -> keras.Model:
    """PtychoNN-style baseline: diffraction (N, N, 1) -> amplitude and phase of the central
    (N/2, N/2) region, the region the PtychoPINN arms predict (beyond it the probe is weak
    and the object is barely constrained by the pattern); ``seed`` seeds the initial weights.

    Same encoder and decoders as the PINN, same output activations (amplitude: sigmoid,
    phase: pi tanh), trained on ground-truth patches instead of the diffraction likelihood.
    """
    if spec.arm is not Arm.SUPERVISED:
        raise ValueError(f"build_supervised builds the supervised arm, got {spec.arm}")
    size = spec.patch_size
    diffraction = keras.Input((size, size, 1), name="diffraction")
    amplitude, phase = _generator(diffraction, spec.filters_base, 1, _Initializers(seed))
    return keras.Model({"diffraction": diffraction}, {"amplitude": amplitude, "phase": phase}, name="supervised")
