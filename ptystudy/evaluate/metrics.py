"""Image quality metrics of phase G (docs/design.md §8), for one real component at a time.

Every function takes the ground truth first and the reconstruction second, both 2-D
float arrays of the same shape, and an optional boolean ``mask`` of the pixels to score
(the view's coverage). Pixel metrics (MAE, MSE, PSNR) use the masked pixels; windowed
metrics (SSIM, MS-SSIM) average only windows centred on masked pixels; the FRC weighs
both images with a smooth taper of the mask.

Known answers (tests/test_metrics.py): identical images give MAE 0, PSNR inf, SSIM 1,
MS-SSIM 1 and an FRC of 1 in every ring; ``ms_ssim`` equals ``tf.image.ssim_multiscale``
on images large enough for its five scales; a band-passed truth resolves its band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.signal import fftconvolve
from scipy.signal.windows import tukey
from skimage.metrics import structural_similarity

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Wang, Simoncelli & Bovik (2003) scale weights, finest first (TensorFlow's defaults)."""
SSIM_FILTER_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _masked(truth: np.ndarray, image: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if truth.shape != image.shape:
        raise ValueError(f"images differ in shape: {truth.shape} and {image.shape}")
    if mask is None:
        return truth.ravel().astype(np.float64), image.ravel().astype(np.float64)
    if mask.shape != truth.shape or not mask.any():
        raise ValueError(f"the mask must be a non-empty boolean array of shape {truth.shape}")
    return truth[mask].astype(np.float64), image[mask].astype(np.float64)


def data_range(truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """max - min of the ground truth over the mask: the peak for PSNR and (MS-)SSIM."""
    values = truth[mask] if mask is not None else truth
    return float(values.max() - values.min())


def mae(truth: np.ndarray, image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute error over the masked pixels."""
    a, b = _masked(truth, image, mask)
    return float(np.mean(np.abs(a - b)))


def mse(truth: np.ndarray, image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error over the masked pixels."""
    a, b = _masked(truth, image, mask)
    return float(np.mean((a - b) ** 2))


def psnr(truth: np.ndarray, image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB with the truth's data range as the peak (inf if identical)."""
    error = mse(truth, image, mask)
    peak = data_range(truth, mask)
    if error == 0:
        return float("inf")
    if peak == 0:
        raise ValueError("PSNR needs a ground truth with a non-zero data range")
    return float(10 * np.log10(peak**2 / error))


def _window_centres(mask: np.ndarray | None, shape: tuple[int, ...], pad: int) -> np.ndarray:
    """Boolean map of the 'valid' window positions whose centre pixel is masked."""
    valid = (shape[0] - 2 * pad, shape[1] - 2 * pad)
    if mask is None:
        return np.ones(valid, bool)
    return mask[pad : pad + valid[0], pad : pad + valid[1]]


def ssim(truth: np.ndarray, image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Structural similarity (scikit-image; Gaussian window sigma 1.5, 11 px, population covariance).

    The peak is the truth's data range; the SSIM map is averaged over windows centred on
    masked pixels (the whole valid area without a mask, as scikit-image does).
    """
    _masked(truth, image, mask)
    _, ssim_map = structural_similarity(
        truth.astype(np.float64),
        image.astype(np.float64),
        data_range=data_range(truth, mask),
        gaussian_weights=True,
        sigma=SSIM_SIGMA,
        use_sample_covariance=False,
        full=True,
    )
    pad = (SSIM_FILTER_SIZE - 1) // 2
    centres = _window_centres(mask, truth.shape, pad)
    if not centres.any():
        raise ValueError(f"no {SSIM_FILTER_SIZE} px window fits inside the mask")
    return float(ssim_map[pad:-pad, pad:-pad][centres].mean())


def _gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    coords = np.arange(size) - (size - 1) / 2
    kernel = np.exp(-(coords[:, None] ** 2 + coords[None, :] ** 2) / (2 * sigma**2))
    return kernel / kernel.sum()


def _downsample(image: np.ndarray) -> np.ndarray:
    """2 x 2 average pool; an odd side is first padded by mirroring its last row/column."""
    pad = [(0, image.shape[0] % 2), (0, image.shape[1] % 2)]
    image = np.pad(image, pad, mode="symmetric")
    return image.reshape(image.shape[0] // 2, 2, image.shape[1] // 2, 2).mean(axis=(1, 3))


def ms_ssim_scales(shape: tuple[int, int], max_scales: int = len(MS_SSIM_WEIGHTS)) -> int:
    """How many scales fit: the coarsest must still hold one 11 px window (0 if none does)."""
    height, width = shape
    scales = 0
    while scales < max_scales and min(height, width) >= SSIM_FILTER_SIZE:
        scales += 1
        height, width = (height + 1) // 2, (width + 1) // 2
    return scales


@dataclass(frozen=True)
class MsSsim:
    """An MS-SSIM score and the number of scales it used (weights renormalised when < 5)."""

    value: float
    scales: int


def ms_ssim(
    truth: np.ndarray,
    image: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    peak: float | None = None,
    max_scales: int = len(MS_SSIM_WEIGHTS),
) -> MsSsim:
    """Multi-scale SSIM (Wang et al. 2003) as ``tf.image.ssim_multiscale`` computes it.

    Gaussian 11 px window (sigma 1.5), k1 = 0.01, k2 = 0.03, 2 x 2 average pooling
    between scales, contrast-structure terms at the finer scales and SSIM at the coarsest,
    each clipped at 0, combined as a weighted geometric mean. Regions too small for five
    scales use as many as fit, with the first weights renormalised to sum to 1. With a
    mask, each scale averages the windows whose centre is masked (the mask is pooled
    like the images; a pooled pixel counts when at least half of it was masked). At a
    coarse scale where no pooled pixel is half masked (a region only a few pixels thin,
    as a sparse view's coverage can be), that scale averages every window instead; the
    caller fills the unmasked pixels of both images with one value (``compare`` uses the
    truth's masked mean), so those windows compare the region against a flat surround.

    peak : the value range for the stabilising constants; default the truth's data range.
    """
    _masked(truth, image, mask)
    scales = ms_ssim_scales(truth.shape, max_scales)
    if scales == 0:
        raise ValueError(f"an image of {truth.shape} px is smaller than the {SSIM_FILTER_SIZE} px SSIM window")
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales])
    weights = weights / weights.sum()
    peak = data_range(truth, mask) if peak is None else peak
    c1 = (SSIM_K1 * peak) ** 2
    c2 = (SSIM_K2 * peak) ** 2
    kernel = _gaussian_kernel(SSIM_FILTER_SIZE, SSIM_SIGMA)
    pad = (SSIM_FILTER_SIZE - 1) // 2
    x = truth.astype(np.float64)
    y = image.astype(np.float64)
    weight_map = None if mask is None else mask.astype(np.float64)
    terms = []
    for scale in range(scales):
        if scale:
            x, y = _downsample(x), _downsample(y)
            weight_map = None if weight_map is None else _downsample(weight_map)
        mu_x = fftconvolve(x, kernel, mode="valid")
        mu_y = fftconvolve(y, kernel, mode="valid")
        xy = fftconvolve(x * y, kernel, mode="valid")
        xx_yy = fftconvolve(x * x + y * y, kernel, mode="valid")
        luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
        contrast_structure = (2 * (xy - mu_x * mu_y) + c2) / (xx_yy - mu_x**2 - mu_y**2 + c2)
        centres = _window_centres(None if weight_map is None else weight_map >= 0.5, x.shape, pad)
        if not centres.any():
            centres = np.ones_like(centres)
        if scale < scales - 1:
            terms.append(max(float(contrast_structure[centres].mean()), 0.0))
        else:
            terms.append(max(float((luminance * contrast_structure)[centres].mean()), 0.0))
    return MsSsim(float(np.prod(np.power(terms, weights))), scales)


@dataclass(frozen=True)
class FrcCurve:
    """Fourier ring correlation of two images.

    frequency : (R,) ring centres, fractions of the Nyquist frequency.
    frc : (R,) correlation per ring (0 where either image has no power).
    halfbit : (R,) the 1/2-bit threshold of van Heel & Schatz (2005) for each ring.
    pixels : (R,) Fourier pixels per ring.
    """

    frequency: np.ndarray
    frc: np.ndarray
    halfbit: np.ndarray
    pixels: np.ndarray


FRC_TAPER_EROSION_PX = 3
FRC_TAPER_SIGMA_PX = 1.5


def frc_weights(shape: tuple[int, int], mask: np.ndarray | None) -> np.ndarray:
    """Smooth (H, W) weights for the FRC: a Tukey window (alpha 0.25) without a mask, else the
    mask eroded by 3 px and blurred (Gaussian sigma 1.5 px).

    A hard mask edge puts the same sharp step into both images, which correlates at every
    frequency; a smooth taper keeps the FRC to what the images share inside the region.
    """
    if mask is None:
        return np.outer(tukey(shape[0], 0.25), tukey(shape[1], 0.25))
    core = ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool), iterations=FRC_TAPER_EROSION_PX)
    if not core.any():
        core = mask
    return ndimage.gaussian_filter(core.astype(np.float64), FRC_TAPER_SIGMA_PX)


def _frc_prepare(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    image = image.astype(np.float64)
    if np.ptp(image) == 0:  # a constant has no structure; rounding in its mean removal must not fake some
        return np.zeros_like(image)
    mean = np.sum(image * weights) / np.sum(weights)
    return (image - mean) * weights


def frc_curve(truth: np.ndarray, image: np.ndarray, mask: np.ndarray | None = None) -> FrcCurve:
    """FRC between ``truth`` and ``image`` in rings of width 2/min(H, W) of Nyquist.

    Each image has its weighted mean removed and is multiplied by ``frc_weights``. Rings
    run up to the Nyquist frequency; the corners beyond it are left out.
    """
    _masked(truth, image, mask)
    height, width = truth.shape
    weights = frc_weights(truth.shape, mask)
    a = np.fft.fft2(_frc_prepare(truth, weights))
    b = np.fft.fft2(_frc_prepare(image, weights))
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(height), np.fft.fftfreq(width), indexing="ij")) / 0.5
    n_rings = min(height, width) // 2
    ring = np.floor(radius * n_rings).astype(np.int64).ravel()
    inside = ring < n_rings
    ring = ring[inside]

    def ring_sum(values: np.ndarray) -> np.ndarray:
        return np.bincount(ring, weights=values.ravel()[inside], minlength=n_rings)

    cross = ring_sum(np.real(a * np.conj(b)))
    power = ring_sum(np.abs(a) ** 2) * ring_sum(np.abs(b) ** 2)
    pixels = np.bincount(ring, minlength=n_rings)
    frc = np.divide(cross, np.sqrt(power), out=np.zeros(n_rings), where=power > 0)
    root = np.sqrt(np.maximum(pixels, 1))
    halfbit = (0.2071 + 1.9102 / root) / (1.2071 + 0.9102 / root)
    frequency = (np.arange(n_rings) + 0.5) / n_rings
    return FrcCurve(frequency, np.clip(frc, -1.0, 1.0), halfbit, pixels)


FRC_SUSTAINED_RINGS = 3
"""A band of resolved frequencies needs this many rings above the threshold (docs/design.md §8)."""


@dataclass(frozen=True)
class FrcBand:
    """Where an FRC curve resolves: its first sustained band above a threshold.

    resolution : the band's end, where the curve falls below the threshold for good (its
        first downward crossing after the band began), in fractions of Nyquist; 1 when it
        never falls, 0 when there is no band.
    onset : where the band starts, fractions of Nyquist; 0 when the curve is above the
        threshold from the lowest searched ring, > 0 for a low-frequency deficit (e.g. the
        per-patch phase offsets of a single-shot network), NaN when there is no band (a band
        that never starts has no onset; averaged over replicates it would otherwise count as
        a deficit reaching Nyquist).
    """

    resolution: float
    onset: float


def frc_band(curve: FrcCurve, threshold: float | np.ndarray) -> FrcBand:
    """The first sustained band of ``curve`` above ``threshold`` (docs/design.md §8).

    The lowest ring (the few Fourier pixels next to zero frequency, which the mean removal
    empties) is left out. A single ring below the threshold between rings above it is
    bridged, so one noisy low ring neither ends a band nor splits it; a band counts when
    it holds at least ``FRC_SUSTAINED_RINGS`` rings above the threshold, so one noisy high
    ring does not start one. Crossings are linearly interpolated between ring centres.
    """
    margin = curve.frc[1:] - np.broadcast_to(threshold, curve.frc.shape)[1:]
    frequency = curve.frequency[1:]
    above = margin >= 0
    bridged = above.copy()
    bridged[1:-1] |= above[:-2] & above[2:]
    start = 0
    while start < bridged.size:
        if not bridged[start]:
            start += 1
            continue
        stop = start
        while stop + 1 < bridged.size and bridged[stop + 1]:
            stop += 1
        if int(above[start : stop + 1].sum()) >= FRC_SUSTAINED_RINGS:
            return FrcBand(_band_end(frequency, margin, stop), _band_onset(frequency, margin, start))
        start = stop + 1
    return FrcBand(0.0, math.nan)


def _crossing(frequency: np.ndarray, margin: np.ndarray, i: int) -> float:
    """Linear interpolation of the threshold crossing between rings ``i`` and ``i + 1``."""
    m0, m1 = margin[i], margin[i + 1]
    return float(frequency[i] + (frequency[i + 1] - frequency[i]) * m0 / (m0 - m1))


def _band_end(frequency: np.ndarray, margin: np.ndarray, last: int) -> float:
    return 1.0 if last == margin.size - 1 else _crossing(frequency, margin, last)


def _band_onset(frequency: np.ndarray, margin: np.ndarray, first: int) -> float:
    return 0.0 if first == 0 else _crossing(frequency, margin, first - 1)
