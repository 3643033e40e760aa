"""Physics conventions and the forward model shared by every phase (docs/design.md §3).

Conventions
-----------
- Arrays are indexed ``[row, col] = [y, x]``, origin at the top left.
- A position is a patch centre in object pixels, ``x`` = column, ``y`` = row. For an
  even patch size ``N`` the patch at integer centre ``(y, x)`` covers rows
  ``y - N/2 .. y + N/2 - 1`` and columns ``x - N/2 .. x + N/2 - 1`` (so its geometric
  centre lies at ``(y - 0.5, x - 0.5)`` in pixel-centre coordinates; only the pty-chi
  adapter needs that fact).
- Exit wave ``psi = P * O[patch]``; far field ``A = |fftshift(fft2(psi))| / N``, which is
  unitary: ``sum(A**2) == sum(|psi|**2)``.
- Expected counts ``lambda = s**2 * A**2`` with one scale ``s`` per dataset chosen so that
  the mean over patterns of ``sum(lambda)`` equals the dose (photons per pattern).
- Stored ``diffraction`` is ``sqrt(counts)`` (float32, fftshifted); ``diffraction**2``
  gives the counts back exactly.
- Phase is in radians.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.fft
from scipy import ndimage


def extract_patches(obj: np.ndarray, ycoords: np.ndarray, xcoords: np.ndarray, patch_size: int) -> np.ndarray:
    """Cut ``(n, N, N)`` patches of ``obj`` centred at integer positions.

    Parameters
    ----------
    obj : (H, W) array, the object.
    ycoords, xcoords : (n,) integer-valued arrays, patch centres in object pixels.
    patch_size : N, even.

    Returns
    -------
    (n, N, N) array of ``obj``'s dtype.

    Raises
    ------
    ValueError
        If a position is not an integer or its patch leaves the object.
    """
    ys = _as_integer_positions(ycoords, "ycoords")
    xs = _as_integer_positions(xcoords, "xcoords")
    check_positions_inside(ys, xs, obj.shape, patch_size)
    half = patch_size // 2
    offsets = np.arange(patch_size) - half
    rows = (ys[:, None] + offsets[None, :])[:, :, None]
    cols = (xs[:, None] + offsets[None, :])[:, None, :]
    return obj[rows, cols]


def check_positions_inside(ycoords: np.ndarray, xcoords: np.ndarray, shape: tuple[int, int], patch_size: int) -> None:
    """Raise ``ValueError`` naming the first position whose patch leaves an object of ``shape``."""
    half = patch_size // 2
    height, width = shape
    outside = (
        (ycoords < half)
        | (xcoords < half)
        | (ycoords + patch_size - half > height)
        | (xcoords + patch_size - half > width)
    )
    if np.any(outside):
        i = int(np.flatnonzero(outside)[0])
        raise ValueError(
            f"{int(outside.sum())} position(s) put their {patch_size}x{patch_size} patch outside "
            f"the {height}x{width} object, first index {i} at (y={ycoords[i]}, x={xcoords[i]}); "
            f"centres must lie in y in [{half}, {height - patch_size + half}], "
            f"x in [{half}, {width - patch_size + half}]"
        )


def _as_integer_positions(coords: np.ndarray, name: str) -> np.ndarray:
    coords = np.asarray(coords)
    rounded = np.rint(coords)
    if not np.array_equal(rounded, coords):
        raise ValueError(f"{name} must be integer pixel positions, got e.g. {coords.ravel()[:3]}")
    return rounded.astype(np.int64)


def far_field_amplitude(probe: np.ndarray, object_patches: np.ndarray) -> np.ndarray:
    """Unitary far-field amplitude of the exit waves ``probe * object_patches``.

    Parameters
    ----------
    probe : (N, N) complex, the probe.
    object_patches : (n, N, N) complex, object patches.

    Returns
    -------
    (n, N, N) float32, ``|fftshift(fft2(psi))| / N`` with zero frequency at ``[N/2, N/2]``.

    Notes
    -----
    For even N, ``fftshift(fft2(psi)) == fft2(psi * (-1)**(y + x))``; the checkerboard is
    folded into the probe once, so no array is rolled.
    """
    patch_size = probe.shape[-1]
    if patch_size % 2:
        raise ValueError(f"the patch size must be even, got {patch_size}")
    rows, cols = np.indices(probe.shape)
    shifted_probe = (probe * np.where((rows + cols) % 2, -1, 1)).astype(np.complex64)
    wave = shifted_probe[None, :, :] * object_patches.astype(np.complex64, copy=False)
    spectrum = scipy.fft.fft2(wave, overwrite_x=True)
    amplitude = np.abs(spectrum)
    amplitude /= np.float32(patch_size)
    return amplitude


def dose_scale(amplitude: np.ndarray, dose: float) -> float:
    """Scale ``s`` such that the mean over patterns of ``sum(s**2 * amplitude**2)`` is ``dose``.

    amplitude : (n, N, N) float, noiseless far-field amplitudes. dose : photons per pattern.
    """
    if dose <= 0:
        raise ValueError(f"dose must be > 0 photons per pattern, got {dose}")
    power = float(np.mean(np.square(amplitude).sum(axis=(-2, -1), dtype=np.float64)))
    if power <= 0:
        raise ValueError("the far field carries no power: probe or object is zero")
    return float(np.sqrt(dose / power))


def sample_counts(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson photon counts (int64, same shape) with mean ``expected``, photons."""
    return rng.poisson(expected)


def probe_diameter_px(probe: np.ndarray, energy_fraction: float = 0.9) -> float:
    """Diameter (pixels) of the centred disc holding ``energy_fraction`` of ``|probe|**2``.

    The disc is centred on the intensity centroid; the radius is interpolated between
    pixel radii, so the result is continuous in the probe.
    """
    if not 0 < energy_fraction < 1:
        raise ValueError(f"energy_fraction must be in (0, 1), got {energy_fraction}")
    intensity = np.abs(probe.astype(np.complex128)) ** 2
    total = intensity.sum()
    if total <= 0:
        raise ValueError("the probe is zero everywhere")
    rows, cols = np.indices(intensity.shape)
    cy = (rows * intensity).sum() / total
    cx = (cols * intensity).sum() / total
    radius = np.hypot(rows - cy, cols - cx).ravel()
    order = np.argsort(radius)
    cumulative = np.cumsum(intensity.ravel()[order]) / total
    return float(2 * np.interp(energy_fraction, cumulative, radius[order]))


def make_probe(patch_size: int, diameter_fraction: float) -> np.ndarray:
    """Built-in probe: a Fresnel-defocused circular aperture (docs/design.md §3).

    A soft-edged disc of diameter ``diameter_fraction * N`` with a converging (curved)
    phase is propagated a short Fresnel distance, which rings its edge. The footprint
    diameter measured by ``probe_diameter_px`` comes out close to the disc's.

    Returns
    -------
    (N, N) complex64, normalised to ``sum(|P|**2) == 1``.
    """
    if patch_size < 8 or patch_size % 2:
        raise ValueError(f"patch_size must be even and >= 8, got {patch_size}")
    if not 0.1 <= diameter_fraction <= 0.7:
        raise ValueError(f"diameter_fraction must be in [0.1, 0.7], got {diameter_fraction}")
    coords = np.arange(patch_size) - patch_size / 2
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    r = np.hypot(yy, xx)
    radius = diameter_fraction * patch_size / 2
    aperture = 0.5 * (1 - np.tanh((r - radius) / 0.8))
    curvature = np.pi * (r / radius) ** 2
    wave = aperture * np.exp(1j * curvature)
    freq = np.fft.fftfreq(patch_size)
    ky, kx = np.meshgrid(freq, freq, indexing="ij")
    fresnel_number = 8.0  # radius**2 / (wavelength * distance), both in pixels
    propagator = np.exp(-1j * np.pi * (radius**2 / fresnel_number) * (ky**2 + kx**2))
    probe = np.fft.ifft2(np.fft.fft2(wave) * propagator)
    probe /= np.sqrt(np.sum(np.abs(probe) ** 2))
    return probe.astype(np.complex64)


def make_object(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """The ``large_features`` specimen: mostly flat discs and bars wider than a probe (docs/design.md §3).

    Amplitude and phase are independent mixes of smooth multi-octave noise (sigma up to
    16 px) and sharp random discs and bars up to a sixteenth of the object wide. A phase
    that is constant over a patch does not change its diffraction pattern, so single-shot
    networks see only the edges of these features: the specimen that shows that limit.

    Returns
    -------
    (H, W) complex64; amplitude in [0.3, 1.0], phase in [-pi/2, pi/2] radians.
    """
    return _specimen(shape, lambda: _texture(shape, rng))


STATIONARY_SMALLEST_PX = 1.0
"""Width of the finest features of the stationary specimen, object pixels."""
STATIONARY_OCTAVES_PER_DOUBLING = 2
"""Feature scales per factor of two in size (the scales are log-spaced)."""
STATIONARY_SIZE_EXPONENT = 1.0
STATIONARY_CLIP_SIGMAS = 2.5
"""The field is clipped at this many standard deviations before mapping to the value range."""


def stationary_scales_px(largest_px: float) -> np.ndarray:
    """Feature widths (px) of the stationary specimen, log-spaced from 1 px to ``largest_px``."""
    if largest_px < 2 * STATIONARY_SMALLEST_PX:
        raise ValueError(f"largest_px must be at least {2 * STATIONARY_SMALLEST_PX} px, got {largest_px}")
    doublings = np.log2(largest_px / STATIONARY_SMALLEST_PX)
    count = int(np.ceil(doublings * STATIONARY_OCTAVES_PER_DOUBLING)) + 1
    return STATIONARY_SMALLEST_PX * 2.0 ** np.linspace(0.0, doublings, count)


def make_stationary_object(shape: tuple[int, int], largest_px: float, rng: np.random.Generator) -> np.ndarray:
    """The default ``stationary`` specimen: features from about 1 px to ``largest_px`` wide (docs/design.md §3).

    Amplitude and phase are independent sums, one term per feature width w (log-spaced,
    ``stationary_scales_px``), of sharp-edged blobs: periodic Gaussian-filtered white
    noise (sigma = w / 2.5) pushed through ``tanh(2 x / sd)``, so each term holds
    plateaus about w wide with edges about 1 px sharp. Every term carries the same
    variance, so each feature size is equally present; the sum is standardised, clipped
    at 2.5 standard deviations and mapped linearly onto the value range. Being built from
    periodic filters of white noise, the specimen is statistically the same everywhere
    (stationary): the train and test regions share its statistics.

    Parameters
    ----------
    shape : (H, W) pixels, each at least 16.
    largest_px : width of the largest features, object pixels (the probe footprint D).

    Returns
    -------
    (H, W) complex64; amplitude in [0.3, 1.0], phase in [-pi/2, pi/2] radians.
    """
    scales = stationary_scales_px(largest_px)
    return _specimen(shape, lambda: _stationary_field(shape, scales, rng))


def _specimen(shape: tuple[int, int], field: Callable[[], np.ndarray]) -> np.ndarray:
    """(H, W) complex64 from two draws of a [0, 1] ``field``: amplitude 0.3 + 0.7 x the first,
    phase pi (x - 1/2) of the second."""
    if shape[0] < 16 or shape[1] < 16:
        raise ValueError(f"object shape must be at least 16x16, got {shape}")
    amplitude = 0.3 + 0.7 * field()
    phase = np.pi * (field() - 0.5)
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)


def _stationary_field(shape: tuple[int, int], scales_px: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A stationary (H, W) float64 field in [0, 1] with sharp-edged features of the given widths."""
    field = np.zeros(shape)
    for width_px in scales_px:
        smooth = ndimage.gaussian_filter(rng.standard_normal(shape), width_px / 2.5, mode="wrap")
        field += (width_px / scales_px[-1]) ** STATIONARY_SIZE_EXPONENT * np.tanh(2.0 * smooth / smooth.std())
    field = (field - field.mean()) / field.std()
    return (np.clip(field, -STATIONARY_CLIP_SIGMAS, STATIONARY_CLIP_SIGMAS) / STATIONARY_CLIP_SIGMAS + 1.0) / 2.0


def _texture(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A (H, W) float64 field in [0, 1]: octaves of smoothed noise plus sharp shapes."""
    height, width = shape
    field = np.zeros(shape)
    for sigma in (1.0, 2.0, 4.0, 8.0, 16.0):
        octave = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
        field += sigma**0.5 * octave / octave.std()
    field = _unit_range(field)
    n_shapes = max(4, height * width // 400)
    for _ in range(n_shapes):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        size = rng.uniform(1.5, max(2.0, min(shape) / 8))
        level = rng.uniform(0, 1)
        disc = rng.uniform() < 0.5
        reach = int(np.ceil(1.5 * size)) + 1
        y0, y1 = max(0, int(cy) - reach), min(height, int(cy) + reach + 1)
        x0, x1 = max(0, int(cx) - reach), min(width, int(cx) + reach + 1)
        rows, cols = np.mgrid[y0:y1, x0:x1]
        if disc:
            inside = np.hypot(rows - cy, cols - cx) < size
        else:
            inside = (np.abs(rows - cy) < size / 3) & (np.abs(cols - cx) < size * 1.5)
        window = field[y0:y1, x0:x1]
        window[inside] = 0.4 * window[inside] + 0.6 * level
    return _unit_range(field)


def _unit_range(field: np.ndarray) -> np.ndarray:
    low, high = field.min(), field.max()
    return (field - low) / (high - low)
