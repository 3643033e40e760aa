"""The gs2 group merge as the study first wrote it: the reference for ``layers.GroupMerge``.

Every member patch and its support (the central N/2 square) are placed on a canvas padded
by ``padding_px`` with an interpolating image transform (bilinear), summed, divided by the
summed support, and each member is cut out again. With whole-pixel offsets this equals
``GroupMerge``, which does the same with one-hot shift products; the tests check that they
agree and ``benchmarks/networks.py`` measures how much faster ``GroupMerge`` trains.
"""

from __future__ import annotations

import numpy as np
from keras import ops


def _translate(images, shifts):
    """Shift (n, H, W, ch) images by (n, 2) ``(dy, dx)`` pixels, bilinear, zero fill."""
    dy, dx = shifts[:, 0], shifts[:, 1]
    one, zero = ops.ones_like(dx), ops.zeros_like(dx)
    transform = ops.stack([one, zero, -dx, zero, one, -dy, zero, zero], axis=1)
    return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="constant")


def canvas_merge(real, imag, offsets, *, patch_size: int, group_size: int, padding_px: int, min_support=1e-3):
    """Merge the members of each group on a canvas and cut each out again.

    real, imag : (batch, N, N, C) member patches, zero outside the central N/2 square.
    offsets : (batch, C, 2) ``(dy, dx)`` of each member from its group centre, pixels.
    Returns ``(real, imag)`` (batch, N, N, C) tensors.
    """
    size, count, pad = patch_size, group_size, padding_px
    canvas = size + 2 * pad
    quarter = size // 4
    support = np.zeros((size, size), np.float32)
    support[quarter : size - quarter, quarter : size - quarter] = 1
    batch = ops.shape(real)[0]
    members = ops.stack([real, imag, ops.broadcast_to(support[None, :, :, None], ops.shape(real))], axis=-1)
    members = ops.reshape(ops.transpose(members, [0, 3, 1, 2, 4]), [-1, size, size, 3])
    members = ops.pad(members, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    shifts = ops.reshape(offsets, [-1, 2])
    placed = ops.reshape(_translate(members, shifts), [batch, count, canvas, canvas, 3])
    total = ops.sum(placed, axis=1)
    weight = total[..., 2:3]
    merged = ops.where(weight > min_support, total[..., :2] / ops.maximum(weight, min_support), 0.0)
    merged = ops.reshape(ops.repeat(merged[:, None], count, axis=1), [-1, canvas, canvas, 2])
    back = _translate(merged, -shifts)[:, pad : pad + size, pad : pad + size, :]
    back = ops.transpose(ops.reshape(back, [batch, count, size, size, 2]), [0, 2, 3, 1, 4])
    return back[..., 0], back[..., 1]
