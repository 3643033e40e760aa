"""Phase G science: metrics and alignment against known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from ptystudy.config import EvaluationConfig
from ptystudy.evaluate import metrics
from ptystudy.evaluate.alignment import align, estimate_shift, fit_phase_ramp, phase_ramp, shift_image
from ptystudy.evaluate.compare import METRICS, compare, score_component
from ptystudy.scan.physics import make_object


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    """A 128 x 128 complex object with structure at every scale."""
    return make_object((128, 128), np.random.default_rng(3))


@pytest.fixture(scope="module")
def mask() -> np.ndarray:
    """A scanned region with a hole, like a sparse view's coverage."""
    region = np.zeros((128, 128), bool)
    region[20:110, 10:118] = True
    region[50:70, 40:60] = False
    return region


def _noisy(image: np.ndarray, level: float, seed: int = 0) -> np.ndarray:
    return image + level * np.random.default_rng(seed).standard_normal(image.shape)


def test_identical_images_score_perfectly(truth, mask):
    amplitude = np.abs(truth)
    scores, curve, scales = score_component(amplitude, amplitude.copy(), mask, smoothing_px=1.0)
    assert scores["mae"] == 0 and scores["mse"] == 0 and math.isinf(scores["psnr"])
    assert scores["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert scores["ms_ssim"] == pytest.approx(1.0, abs=1e-12)
    assert np.allclose(curve.frc, 1.0)
    assert scores["frc50"] == scores["frc_halfbit"] == 1.0
    assert scales == 4  # 90 x 108 px holds four scales of an 11 px window


@pytest.mark.parametrize("component", [np.abs, np.angle])
def test_constant_prediction_scores_low(truth, mask, component):
    image = component(truth)
    flat = np.full_like(image, image[mask].mean())
    scores, curve, _ = score_component(image, flat, mask, smoothing_px=1.0)
    assert scores["ssim"] < 0.3 and scores["ms_ssim"] < 0.1
    assert scores["frc50"] == 0.0 and scores["frc_halfbit"] == 0.0
    assert np.all(curve.frc == 0), "a constant correlates with nothing, not with float rounding"


def test_noise_lowers_every_score_monotonically(truth, mask):
    phase = np.angle(truth)
    table = [score_component(phase, _noisy(phase, level), mask)[0] for level in (0.02, 0.1, 0.4)]
    for better, worse in zip(table, table[1:], strict=False):
        assert worse["mae"] > better["mae"] and worse["mse"] > better["mse"]
        for name in ("psnr", "ssim", "ms_ssim"):
            assert worse[name] < better[name], name
        for name in ("frc50", "frc_halfbit"):
            assert worse[name] <= better[name], name
    assert table[-1]["frc50"] < table[0]["frc50"]


def test_blur_moves_the_frc_crossing_down_even_with_a_holed_mask(truth, mask):
    amplitude = np.abs(truth)
    crossings = [
        metrics.frc_band(metrics.frc_curve(amplitude, ndimage.gaussian_filter(amplitude, sigma), mask), 0.5).resolution
        for sigma in (0.5, 1.5, 4.0)
    ]
    assert crossings[0] > crossings[1] > crossings[2]
    assert crossings[2] < 0.3, "a mask edge must not make a blurred image look resolved"


def _curve(values) -> metrics.FrcCurve:
    values = np.asarray(values, float)
    rings = values.size
    return metrics.FrcCurve((np.arange(rings) + 0.5) / rings, values, np.full(rings, 0.2), np.ones(rings))


@pytest.mark.parametrize(
    ("values", "resolution", "onset"),
    [
        # ring 0 is never searched; above from ring 1, falls between rings 4 (0.7) and 5 (0.3)
        ([0.0, 0.9, 0.9, 0.8, 0.7, 0.3, 0.2, 0.1, 0.0, 0.0], 0.5, 0.0),
        # a low-frequency deficit: rises between rings 2 (0.3) and 3 (0.7), falls between 6 and 7
        ([0.0, 0.2, 0.3, 0.7, 0.9, 0.9, 0.7, 0.3, 0.1, 0.0], 0.70, 0.30),
        # one noisy low ring (4) inside the band neither ends nor splits it
        ([0.0, 0.9, 0.9, 0.9, 0.4, 0.9, 0.9, 0.7, 0.3, 0.0], 0.80, 0.0),
        # one noisy high ring (2) does not start a band: it starts at ring 5
        ([0.0, 0.1, 0.9, 0.1, 0.1, 0.7, 0.8, 0.9, 0.9, 0.9], 1.0, 0.45 + 0.1 * 0.4 / 0.6),
        ([0.0, 0.4, 0.3, 0.2, 0.6, 0.7, 0.1, 0.0, 0.0, 0.0], 0.0, math.nan),  # two rings are no band: no onset
        ([0.0] + [0.99] * 9, 1.0, 0.0),
    ],
)
def test_the_frc_band_known_answers(values, resolution, onset):
    band = metrics.frc_band(_curve(values), 0.5)
    assert band.resolution == pytest.approx(resolution, abs=1e-9)
    assert band.onset == pytest.approx(onset, abs=1e-9, nan_ok=True)


def _band_pass(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """``image`` with only the spatial frequencies in [low, high) of Nyquist kept."""
    height, width = image.shape
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(height), np.fft.fftfreq(width), indexing="ij")) / 0.5
    keep = (radius >= low) & (radius < high)
    return np.real(np.fft.ifft2(np.fft.fft2(image - image.mean()) * keep)) + image.mean()


def test_a_band_passed_truth_resolves_its_band():
    """Known answer: the FRC of a truth band-passed to 0.15-0.55 of Nyquist against the
    truth is high inside the band and low outside, so the band starts near 0.15 and the
    resolution is near 0.55 (within a ring and the taper's blur); the old rule (the first
    ring below 0.5) reported 0."""
    truth = np.random.default_rng(6).standard_normal((128, 128))
    image = _band_pass(truth, 0.15, 0.55)
    curve = metrics.frc_curve(truth, image)
    half = metrics.frc_band(curve, 0.5)
    assert half.onset == pytest.approx(0.15, abs=0.05)
    assert half.resolution == pytest.approx(0.55, abs=0.05)
    assert curve.frc[1] < 0.5, "the lowest searched rings are below the threshold"


def test_per_patch_phase_offsets_are_a_low_frequency_deficit_not_resolution_zero():
    """A single-shot network's typical error: the phase right in detail but each 16 px
    patch off by its own constant. The FRC band starts above 0 and still reaches far."""
    rng = np.random.default_rng(7)
    phase = _band_pass(rng.standard_normal((128, 128)), 0.0, 1.0)
    offsets = np.kron(rng.normal(0, 1.5, (8, 8)), np.ones((16, 16)))
    curve = metrics.frc_curve(phase, ndimage.gaussian_filter(phase + offsets, 0.7))
    band = metrics.frc_band(curve, 0.5)
    assert band.onset > 0.02 and band.resolution > 0.4
    assert np.any(curve.frc[1:4] < 0.5), "the first rings are below 0.5"


def test_the_phase_origin_does_not_change_the_phase_scores(truth, mask):
    """SSIM's luminance term compares local means with zero; the phase is scored after moving
    the truth's minimum to 0, so moving both phases by one constant changes no score."""
    image = _noisy(truth, 0.05) * np.exp(1j * 0.3 * _noisy(np.zeros(truth.shape), 0.3, seed=2))
    plain = compare(truth, mask, {"arm": image}, EvaluationConfig()).arms["arm"].metrics["phase"]
    turned = np.exp(1j * 1.0)
    moved = compare(truth * turned, mask, {"arm": image * turned}, EvaluationConfig()).arms["arm"].metrics["phase"]
    for name in METRICS:
        assert moved[name] == pytest.approx(plain[name], rel=1e-6, abs=1e-9), name


def test_psnr_uses_the_truths_data_range(truth, mask):
    amplitude = np.abs(truth)
    noisy = _noisy(amplitude, 0.05)
    peak = amplitude[mask].max() - amplitude[mask].min()
    expected = 10 * np.log10(peak**2 / np.mean((amplitude[mask] - noisy[mask]) ** 2))
    assert metrics.psnr(amplitude, noisy, mask) == pytest.approx(expected)


def test_ms_ssim_reduces_scales_on_small_regions():
    image = np.random.default_rng(0).random((48, 200))
    assert metrics.ms_ssim_scales(image.shape) == 3  # 48 -> 24 -> 12 px
    assert metrics.ms_ssim(image, image).scales == 3
    with pytest.raises(ValueError, match="smaller than the 11 px"):
        metrics.ms_ssim(image[:10], image[:10])


def test_ms_ssim_agrees_with_tensorflow():
    """On images large enough for five scales. (TensorFlow is imported here, in the test's
    process: collecting the network tests has imported it already.)"""
    import tensorflow as tf
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(7)
    for shape in [(256, 256), (181, 203)]:
        a = gaussian_filter(rng.random(shape), 3)
        for level in (0.01, 0.05, 0.3):
            b = a + level * rng.standard_normal(shape)
            ours = metrics.ms_ssim(a, b)
            assert ours.scales == 5
            theirs = tf.image.ssim_multiscale(
                a[None, ..., None].astype("float32"),
                b[None, ..., None].astype("float32"),
                max_val=metrics.data_range(a),
            )
            theirs = float(theirs.numpy()[0])
            assert abs(ours.value - theirs) < 2e-4, (shape, level, ours.value, theirs)


@pytest.mark.parametrize("shift", [(0.4, -0.7), (-1.25, 0.5)])
def test_a_sub_pixel_shift_registers_back(truth, mask, shift):
    moved = shift_image(truth, shift)
    estimate = estimate_shift(truth, moved, mask)
    assert estimate == pytest.approx((-shift[0], -shift[1]), abs=0.06)
    aligned, record = align(truth, moved, mask, max_shift_px=2.0)
    assert record.shift_applied
    inner = ndimage.binary_erosion(mask, iterations=4)
    before = np.abs(moved - truth)[inner].mean()
    after = np.abs(aligned - truth)[inner].mean()
    assert after < 0.5 * before  # what is left is the blur of two spline interpolations


def test_a_shift_beyond_the_limit_is_recorded_not_applied(truth, mask):
    moved = np.roll(truth, 5, axis=1)
    _, record = align(truth, moved, mask, max_shift_px=2.0)
    assert record.shift_px[1] == pytest.approx(-5, abs=0.3) and not record.shift_applied


def test_global_phase_and_amplitude_scale_do_not_change_the_scores(truth, mask):
    settings = EvaluationConfig()
    reference = _noisy(truth, 0.05) + 1j * _noisy(np.zeros_like(truth.real), 0.05, seed=1)
    plain = compare(truth, mask, {"arm": reference}, settings).arms["arm"]
    transformed = reference * 0.6 * np.exp(1j * 2.5)
    moved = compare(truth, mask, {"arm": transformed}, settings).arms["arm"]
    assert moved.alignment.phase_offset_rad == pytest.approx(
        np.angle(np.exp(1j * (plain.alignment.phase_offset_rad - 2.5))), abs=1e-6
    )
    assert moved.alignment.amplitude_scale == pytest.approx(plain.alignment.amplitude_scale / 0.6, rel=1e-6)
    for component in ("amplitude", "phase"):
        for name in METRICS:
            assert moved.metrics[component][name] == pytest.approx(plain.metrics[component][name], rel=1e-6, abs=1e-9)


def test_phase_ramp_is_removed_only_when_asked(truth, mask):
    ramped = truth * phase_ramp(truth.shape, (0.03, -0.05))
    assert fit_phase_ramp(truth, ramped, mask) == pytest.approx((-0.03, 0.05), abs=1e-6)
    kept = compare(truth, mask, {"arm": ramped}, EvaluationConfig()).arms["arm"]
    removed = compare(truth, mask, {"arm": ramped}, EvaluationConfig(remove_phase_ramp=True)).arms["arm"]
    assert kept.alignment.phase_ramp_rad_per_px is None
    assert removed.metrics["phase"]["mae"] < 1e-4 < kept.metrics["phase"]["mae"]


def test_every_arm_is_scored_on_the_same_pixels(truth, mask):
    result = compare(truth, mask, {"a": truth, "b": _noisy(truth, 0.1)}, EvaluationConfig())
    assert result.arms["a"].amplitude.shape == result.arms["b"].amplitude.shape == result.mask.shape
    assert result.arms["a"].metrics["phase"]["ms_ssim"] == pytest.approx(1.0)
    assert result.arms["b"].metrics["phase"]["ms_ssim"] < 0.995
