"""numpyro_slic.problems.whitening: the whitened simulator, the mask fill and the wrapped baseline."""

import jax.numpy as jnp
import numpy as np
import pytest

from numpyro_slic.noise import StationaryGaussianNoise
from numpyro_slic.problems import WhitenedSimulator, fill_masked, likelihood_noise, wrapped_stationary_noise


def test_whitened_simulator():
    noise_map = np.full((4, 5), 2.0)
    mask = np.zeros((4, 5), bool)
    mask[1, 2] = True
    sim = WhitenedSimulator(lambda p: p["amp"] * jnp.ones((4, 5)), noise_map, scale=0.5, mask=mask, sky_unit=3.0)
    image = np.asarray(sim({"amp": jnp.asarray(4.0), "sky": jnp.asarray(1.0)}))
    # (4 + 1 * 3) / (2 * 0.5) = 7 everywhere but the masked pixel; the lens never sees "sky".
    expected = np.full((4, 5), 7.0)
    expected[1, 2] = 0.0
    np.testing.assert_allclose(image, expected, rtol=1e-6)
    unmasked = WhitenedSimulator(lambda p: jnp.zeros((4, 5)), noise_map)
    np.testing.assert_allclose(unmasked({"sky": jnp.asarray(2.0)}), np.ones((4, 5)))


def test_fill_masked():
    data = np.zeros((6, 6))
    fill = np.arange(16.0).reshape(4, 4)
    mask = np.zeros((6, 6), bool)
    mask[2, 3] = mask[4, 2] = True  # bounding box rows 2..4, cols 2..3
    out = fill_masked(data, mask, fill)
    assert out[2, 3] == fill[0, 1] and out[4, 2] == fill[2, 0]
    assert np.count_nonzero(out) == 2 and np.all(data == 0)  # a copy
    np.testing.assert_array_equal(fill_masked(data, np.zeros((6, 6), bool), fill), data)
    with pytest.raises(ValueError, match="bounding box"):
        fill_masked(data, np.ones((6, 6), bool), fill)


def test_wrapped_stationary_noise():
    patches = np.random.default_rng(0).normal(size=(8, 16, 16))
    small = wrapped_stationary_noise(patches, 12)
    reference = likelihood_noise("stationary", patches=patches[:, :12, :12])
    assert isinstance(small, StationaryGaussianNoise)
    np.testing.assert_allclose(small.power, reference.power)
    big = wrapped_stationary_noise(patches, 24)  # larger than the patches: the wrapped autocovariance
    assert isinstance(big, StationaryGaussianNoise) and np.shape(big.power)[-2:] == (24, 24)
    # White noise: a flat spectrum of unit mean.
    assert abs(float(np.mean(big.power)) - 1.0) < 0.1
