"""Builders of the two network families (DESIGN §6), each from an explicit spec.

Nothing lives at module level: every call builds a fresh model from its ``ModelSpec``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers
from pydantic import BaseModel, ConfigDict, Field

from ptystudy.config import Arm
from ptystudy.models.layers import FarFieldCounts, GroupMerge, PadToPatch, PolarToComplex, ScaledTanh


class ModelSpec(BaseModel):
    """Everything needed to rebuild, feed and read a network; saved beside it as JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    arm: Arm
    patch_size: int = Field(ge=16)
    """N, pixels; a multiple of 8."""
    filters_base: int = Field(ge=4)
    group_size: int = Field(ge=1)
    """Channels C: group members for gs2, 1 otherwise."""
    padding_px: int = Field(ge=0)
    """Merge canvas padding, pixels (gs2 only); bounds the member offsets."""
    input_scale: float = Field(gt=0)
    """Network input = sqrt(counts) / input_scale."""


def _encoder(inputs, filters_base: int):
    x = inputs
    for stage in range(3):
        filters = filters_base * 2**stage
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    return x


def _decoder(x, filters_base: int, stages: int, name: str):
    for stage in reversed(range(stages)):
        filters = filters_base * 2**stage
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv{stage}a")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv{stage}b")(x)
        x = layers.UpSampling2D(2, name=f"{name}_up{stage}")(x)
    return x


def build_pinn(spec: ModelSpec, probe: np.ndarray) -> keras.Model:
    """PtychoPINN: diffraction (and gs2 offsets) -> expected counts, amplitude and phase.

    Parameters
    ----------
    spec : arm ``pinn`` (gs2, C members, merged) or ``pinn_gs1`` (C = 1).
    probe : (N, N) complex, sqrt(photons) per pixel: the simulation probe times its
        dose scale, so that expected counts are ``|fft2(P O)|**2 / N**2`` exactly.

    Returns
    -------
    A model with inputs ``diffraction`` (N, N, C) [and ``offsets`` (C, 2)] and outputs
    ``counts`` (N, N, C), ``amplitude`` and ``phase`` (N/2, N/2, C), the central region.
    """
    if spec.arm not in (Arm.PINN, Arm.PINN_GS1):
        raise ValueError(f"build_pinn builds pinn arms, got {spec.arm}")
    size, channels = spec.patch_size, spec.group_size
    diffraction = keras.Input((size, size, channels), name="diffraction")
    inputs = {"diffraction": diffraction}
    code = _encoder(diffraction, spec.filters_base)
    amplitude = layers.Conv2D(channels, 3, padding="same", activation="sigmoid", name="amplitude")(
        _decoder(code, spec.filters_base, 2, "amplitude_decoder")
    )
    phase_raw = layers.Conv2D(channels, 3, padding="same", name="phase_raw")(
        _decoder(code, spec.filters_base, 2, "phase_decoder")
    )
    phase = ScaledTanh(name="phase")(phase_raw)
    pad = PadToPatch(size, name="pad_to_patch")
    real, imag = PolarToComplex(name="to_complex")((pad(amplitude), pad(phase)))
    if spec.arm is Arm.PINN:
        offsets = keras.Input((channels, 2), name="offsets")
        inputs["offsets"] = offsets
        real, imag = GroupMerge(size, channels, spec.padding_px, name="group_merge")((real, imag, offsets))
    forward = FarFieldCounts(size, name="counts")
    counts = forward((real, imag))
    forward.set_probe(probe)
    return keras.Model(inputs, {"counts": counts, "amplitude": amplitude, "phase": phase}, name=str(spec.arm))


def build_supervised(spec: ModelSpec) -> keras.Model:
    """PtychoNN-style baseline: diffraction (N, N, 1) -> amplitude and phase (N, N, 1)."""
    if spec.arm is not Arm.SUPERVISED:
        raise ValueError(f"build_supervised builds the supervised arm, got {spec.arm}")
    size = spec.patch_size
    diffraction = keras.Input((size, size, 1), name="diffraction")
    code = _encoder(diffraction, spec.filters_base)
    amplitude = layers.Conv2D(1, 3, padding="same", name="amplitude")(
        _decoder(code, spec.filters_base, 3, "amplitude_decoder")
    )
    phase = layers.Conv2D(1, 3, padding="same", name="phase")(_decoder(code, spec.filters_base, 3, "phase_decoder"))
    return keras.Model({"diffraction": diffraction}, {"amplitude": amplitude, "phase": phase}, name="supervised")
