"""Physics as small Keras layers (DESIGN §6): padding, group merge, forward model, loss.

Complex arrays travel as pairs of float32 tensors (real, imaginary) in channels-last
layout ``(batch, N, N, C)``, one channel per group member. Every layer is registered for
safe-mode loading; arrays such as the probe are non-trainable weights, never config.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

PACKAGE = "ptystudy"


@keras.saving.register_keras_serializable(package=PACKAGE)
class PadToPatch(keras.layers.Layer):
    """(batch, N/2, N/2, C) -> (batch, N, N, C): the central prediction, zeros around it."""

    def __init__(self, patch_size: int, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size

    def call(self, inputs):
        quarter = self.patch_size // 4
        return ops.pad(inputs, [[0, 0], [quarter, quarter], [quarter, quarter], [0, 0]])

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PolarToComplex(keras.layers.Layer):
    """(amplitude, phase) -> (real, imaginary), element-wise."""

    def call(self, inputs):
        amplitude, phase = inputs
        return amplitude * ops.cos(phase), amplitude * ops.sin(phase)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScaledTanh(keras.layers.Layer):
    """x -> pi * tanh(x): a phase in (-pi, pi) radians."""

    def call(self, inputs):
        return np.pi * ops.tanh(inputs)


@keras.saving.register_keras_serializable(package=PACKAGE)
class GroupMerge(keras.layers.Layer):
    """Merge the C member patches of each group by position, then cut each member out again.

    Inputs ``(real, imag, offsets)``: patches (batch, N, N, C) and offsets (batch, C, 2)
    float32 = member position minus group centre, ``(dy, dx)`` in pixels. Each member's
    patch and its support (the central N/2 square) are placed on a canvas padded by
    ``padding_px`` at its offset (bilinear sub-pixel shift), summed, divided by the summed
    support where it exceeds ``min_support`` (zero elsewhere), and each member's patch is
    shifted back and cut out. Returns ``(real, imag)`` (batch, N, N, C).
    """

    def __init__(self, patch_size: int, group_size: int, padding_px: int, min_support: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size
        self.group_size = group_size
        self.padding_px = padding_px
        self.min_support = min_support

    def build(self, input_shape):
        size, quarter = self.patch_size, self.patch_size // 4
        support = np.zeros((size, size), np.float32)
        support[quarter : size - quarter, quarter : size - quarter] = 1
        self.support = ops.convert_to_tensor(support)

    def call(self, inputs):
        real, imag, offsets = inputs
        size, count, pad = self.patch_size, self.group_size, self.padding_px
        canvas = size + 2 * pad
        batch = ops.shape(real)[0]
        support = ops.broadcast_to(self.support[None, :, :, None], ops.shape(real))
        members = ops.stack([real, imag, support], axis=-1)  # (b, N, N, C, 3)
        members = ops.transpose(members, [0, 3, 1, 2, 4])  # (b, C, N, N, 3)
        members = ops.reshape(members, [-1, size, size, 3])
        members = ops.pad(members, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        shifts = ops.reshape(offsets, [-1, 2])
        placed = _translate(members, shifts)
        placed = ops.reshape(placed, [batch, count, canvas, canvas, 3])
        total = ops.sum(placed, axis=1)
        weight = total[..., 2:3]
        merged = ops.where(weight > self.min_support, total[..., :2] / ops.maximum(weight, self.min_support), 0.0)
        merged = ops.repeat(merged[:, None], count, axis=1)
        merged = ops.reshape(merged, [-1, canvas, canvas, 2])
        back = _translate(merged, -shifts)[:, pad : pad + size, pad : pad + size, :]
        back = ops.reshape(back, [batch, count, size, size, 2])
        back = ops.transpose(back, [0, 2, 3, 1, 4])  # (b, N, N, C, 2)
        return back[..., 0], back[..., 1]

    def get_config(self):
        return {
            **super().get_config(),
            "patch_size": self.patch_size,
            "group_size": self.group_size,
            "padding_px": self.padding_px,
            "min_support": self.min_support,
        }


def _translate(images, shifts):
    """Shift (n, H, W, ch) images by (n, 2) ``(dy, dx)`` pixels, bilinear, zero fill."""
    dy, dx = shifts[:, 0], shifts[:, 1]
    one, zero = ops.ones_like(dx), ops.zeros_like(dx)
    transform = ops.stack([one, zero, -dx, zero, one, -dy, zero, zero], axis=1)
    return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="constant")


@keras.saving.register_keras_serializable(package=PACKAGE)
class FarFieldCounts(keras.layers.Layer):
    """Expected photon counts of each member: ``|fftshift(fft2(P * O))|**2 / N**2``.

    The probe, in sqrt(photons) units (the simulation's probe times its dose scale s), is
    a fixed, non-trainable weight. Inputs ``(real, imag)`` (batch, N, N, C) object
    patches; output (batch, N, N, C) float32 counts, zero frequency at ``[N/2, N/2]``.
    """

    def __init__(self, patch_size: int, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size

    def build(self, input_shape):
        shape = (self.patch_size, self.patch_size)
        self.probe_real = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="probe_real")
        self.probe_imag = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="probe_imag")
        rows, cols = np.indices(shape)
        self.checkerboard = ops.convert_to_tensor(np.where((rows + cols) % 2, -1.0, 1.0).astype(np.float32))

    def set_probe(self, probe: np.ndarray) -> None:
        """Load the (N, N) complex probe, in sqrt(photons) per pixel."""
        self.probe_real.assign(np.real(probe).astype(np.float32))
        self.probe_imag.assign(np.imag(probe).astype(np.float32))

    def call(self, inputs):
        real, imag = inputs
        real = ops.transpose(real, [0, 3, 1, 2])
        imag = ops.transpose(imag, [0, 3, 1, 2])
        probe_real = self.probe_real * self.checkerboard
        probe_imag = self.probe_imag * self.checkerboard
        wave_real = probe_real * real - probe_imag * imag
        wave_imag = probe_real * imag + probe_imag * real
        spectrum_real, spectrum_imag = ops.fft2((wave_real, wave_imag))
        counts = (spectrum_real**2 + spectrum_imag**2) / float(self.patch_size**2)
        return ops.transpose(counts, [0, 2, 3, 1])

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PoissonNLL(keras.losses.Loss):
    """Poisson negative log-likelihood per pixel, ``lambda - n log(lambda + eps)``.

    ``y_true`` are measured counts n, ``y_pred`` expected counts lambda (both photons).
    The constant ``log(n!)`` is left out.
    """

    def __init__(self, epsilon: float = 1e-6, name: str = "poisson_nll", **kwargs):
        super().__init__(name=name, **kwargs)
        self.epsilon = epsilon

    def call(self, y_true, y_pred):
        return ops.mean(y_pred - y_true * ops.log(y_pred + self.epsilon), axis=(1, 2, 3))

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
