"""Known answers for the forward model, probe, object and position pool (docs/design.md §3)."""

import numpy as np
import pytest

from ptystudy.scan import physics


def test_far_field_is_unitary():
    """Parseval: sum(A**2) == sum(|psi|**2) for the unitary far field."""
    rng = np.random.default_rng(0)
    probe = physics.make_probe(32, 0.45)
    patches = (rng.uniform(0.3, 1, (5, 32, 32)) * np.exp(1j * rng.uniform(-1, 1, (5, 32, 32)))).astype(np.complex64)
    amplitude = physics.far_field_amplitude(probe, patches)
    wave_power = np.sum(np.abs(probe[None] * patches) ** 2, axis=(1, 2))
    np.testing.assert_allclose(np.sum(amplitude.astype(np.float64) ** 2, axis=(1, 2)), wave_power, rtol=1e-5)


def test_far_field_zero_frequency_is_centred():
    """A flat wave puts all its power at [N/2, N/2] after fftshift."""
    probe = np.ones((16, 16), np.complex64)
    amplitude = physics.far_field_amplitude(probe, np.ones((1, 16, 16), np.complex64))
    assert np.unravel_index(np.argmax(amplitude[0]), (16, 16)) == (8, 8)
    assert amplitude[0, 8, 8] == pytest.approx(16.0)


def test_extract_patches_single_bright_pixel():
    """A bright pixel at (y, x) sits at [N/2, N/2] of the patch centred there."""
    obj = np.zeros((40, 50), np.complex64)
    obj[17, 23] = 1
    patches = physics.extract_patches(obj, np.array([17.0, 20.0]), np.array([23.0, 23.0]), 8)
    assert patches.shape == (2, 8, 8)
    assert np.unravel_index(np.argmax(np.abs(patches[0])), (8, 8)) == (4, 4)
    assert np.unravel_index(np.argmax(np.abs(patches[1])), (8, 8)) == (1, 4)


def test_extract_patches_rejects_outside_and_fractional_positions():
    obj = np.zeros((32, 32), np.complex64)
    with pytest.raises(ValueError, match="outside the 32x32 object"):
        physics.extract_patches(obj, np.array([3.0]), np.array([16.0]), 8)
    with pytest.raises(ValueError, match="integer pixel positions"):
        physics.extract_patches(obj, np.array([16.5]), np.array([16.0]), 8)


def test_dose_scale_makes_mean_expected_counts_equal_dose():
    rng = np.random.default_rng(1)
    amplitude = rng.uniform(0, 2, (20, 16, 16)).astype(np.float32)
    scale = physics.dose_scale(amplitude, 1e4)
    expected = scale**2 * amplitude.astype(np.float64) ** 2
    assert expected.sum(axis=(1, 2)).mean() == pytest.approx(1e4, rel=1e-9)
    with pytest.raises(ValueError, match="dose must be > 0"):
        physics.dose_scale(amplitude, 0)


def test_sampled_counts_average_to_expectation():
    """Poisson counts average to their mean within 5 standard errors."""
    rng = np.random.default_rng(2)
    expected = np.full((200, 16, 16), 0.7)
    counts = physics.sample_counts(expected, rng)
    assert counts.dtype == np.int64 and counts.min() >= 0
    standard_error = np.sqrt(0.7 / counts.size)
    assert abs(counts.mean() - 0.7) < 5 * standard_error


def test_probe_diameter_of_uniform_disc():
    """A uniform disc of radius r holds 90 % of its energy within radius r * sqrt(0.9)."""
    coords = np.arange(128) - 64
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    disc = (np.hypot(yy, xx) < 30).astype(np.complex64)
    assert physics.probe_diameter_px(disc) == pytest.approx(2 * 30 * np.sqrt(0.9), rel=0.02)


@pytest.mark.parametrize("patch_size", [32, 64])
def test_builtin_probe_footprint_is_about_half_the_patch(patch_size):
    probe = physics.make_probe(patch_size, 0.45)
    assert probe.dtype == np.complex64
    assert np.sum(np.abs(probe) ** 2) == pytest.approx(1.0, rel=1e-5)
    assert 0.4 * patch_size < physics.probe_diameter_px(probe) < 0.55 * patch_size
    edge = np.concatenate([probe[0], probe[-1], probe[:, 0], probe[:, -1]])
    assert np.abs(edge).max() < 0.02 * np.abs(probe).max()
    phase = np.angle(probe[patch_size // 2, patch_size // 2 : patch_size // 2 + patch_size // 5])
    assert np.ptp(np.unwrap(phase)) > 0.5, "the defocused probe must carry a curved phase"


def test_builtin_object_ranges_and_determinism():
    obj = physics.make_object((64, 80), np.random.default_rng(42))
    again = physics.make_object((64, 80), np.random.default_rng(42))
    other = physics.make_object((64, 80), np.random.default_rng(43))
    assert obj.dtype == np.complex64 and obj.shape == (64, 80)
    assert np.array_equal(obj, again) and not np.array_equal(obj, other)
    amplitude, phase = np.abs(obj), np.angle(obj)
    assert amplitude.min() >= 0.3 - 1e-6 and amplitude.max() <= 1 + 1e-6
    assert phase.min() >= -np.pi / 2 - 1e-6 and phase.max() <= np.pi / 2 + 1e-6
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(phase - phase.mean())))
    high = spectrum[:8].sum() + spectrum[-8:].sum()
    assert high > 0.01 * spectrum.sum(), "the object needs fine detail for FRC to mean something"


def test_stationary_specimen_ranges_scales_and_determinism():
    """Amplitude in [0.3, 1], phase in [-pi/2, pi/2]; features from 1 px (power up to
    Nyquist) to the given largest width; the same seed gives the same specimen."""
    shape = (96, 128)
    obj = physics.make_stationary_object(shape, 14.0, np.random.default_rng(42))
    assert obj.dtype == np.complex64 and obj.shape == shape
    assert np.array_equal(obj, physics.make_stationary_object(shape, 14.0, np.random.default_rng(42)))
    amplitude, phase = np.abs(obj), np.angle(obj)
    assert 0.3 - 1e-6 <= amplitude.min() and amplitude.max() <= 1 + 1e-6 and np.ptp(amplitude) > 0.6
    assert -np.pi / 2 - 1e-6 <= phase.min() and phase.max() <= np.pi / 2 + 1e-6 and np.ptp(phase) > 2.5
    scales = physics.stationary_scales_px(14.0)
    assert scales[0] == 1.0 and scales[-1] == pytest.approx(14.0)
    power = np.abs(np.fft.fft2(phase - phase.mean())) ** 2
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1]), indexing="ij"))
    fine = power[(radius > 0.25) & (radius < 0.5)].sum()
    coarse = power[radius < 1 / 14.0].sum()
    assert fine > 1e-3 * power.sum(), "1-2 px features must be present"
    assert coarse < 0.9 * power.sum(), "features wider than D must not dominate"
    with pytest.raises(ValueError, match="largest_px"):
        physics.stationary_scales_px(1.5)
