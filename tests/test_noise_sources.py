"""The noise survey's package pieces (lag_correlation, noise_step_map) and the shipped sets of the other JWST bands."""

from __future__ import annotations

import numpy as np
import pytest

from numpyro_slic.data import (
    Region,
    lag_correlation,
    load_shipped,
    noise_statistics,
    noise_step_map,
    robust_sigma,
    shipped_names,
)


def _correlated(rng, shape, kernel):
    """White noise convolved (valid part) with a small kernel: stationary, non-periodic."""
    kh, kw = kernel.shape
    white = rng.normal(size=(shape[0] + kh - 1, shape[1] + kw - 1))
    out = np.zeros(shape)
    for i in range(kh):
        for j in range(kw):
            out += kernel[i, j] * white[i : i + shape[0], j : j + shape[1]]
    return out


def test_lag_correlation_sees_direction_and_matches_noise_statistics():
    rng = np.random.default_rng(0)
    # Along rows only: x[r, c] = w[r, c] + w[r, c + 1] gives lag (0, 1) correlation 1/2, (1, 0) none.
    rows = _correlated(rng, (200, 200), np.array([[1.0, 1.0]]))
    assert lag_correlation(rows, lag=(0, 1)) == pytest.approx(0.5, abs=0.02)
    assert lag_correlation(rows, lag=(1, 0)) == pytest.approx(0.0, abs=0.02)
    assert lag_correlation(rows, lag=(0, -1)) == lag_correlation(rows, lag=(0, 1))  # the same pairs
    assert lag_correlation(rows, lag=(-1, 0)) == lag_correlation(rows, lag=(1, 0))
    stats = noise_statistics(rows)
    assert lag_correlation(rows, lag=(0, 1)) == pytest.approx(stats["lag1_x"], abs=1e-12)
    assert lag_correlation(rows, lag=(1, 0)) == pytest.approx(stats["lag1_y"], abs=1e-12)
    # Along the main diagonal only: (1, 1) correlated, (1, -1) not; a flip would swap them.
    diag = _correlated(rng, (200, 200), np.eye(2))
    assert lag_correlation(diag, lag=(1, 1)) == pytest.approx(0.5, abs=0.02)
    assert lag_correlation(diag, lag=(1, -1)) == pytest.approx(0.0, abs=0.02)
    assert lag_correlation(diag[:, ::-1], lag=(1, -1)) == pytest.approx(lag_correlation(diag, lag=(1, 1)))
    # Masked pixels are left out (a huge masked outlier changes nothing); stacks keep patches apart.
    spoiled, mask = rows.copy(), np.zeros(rows.shape, bool)
    spoiled[50, 50], mask[50, 50] = 1e6, True
    assert lag_correlation(spoiled, mask, lag=(0, 1)) == pytest.approx(lag_correlation(rows, mask, lag=(0, 1)))
    stack = rows.reshape(4, 50, 200)
    assert lag_correlation(stack, lag=(1, 0)) == pytest.approx(0.0, abs=0.03)
    with pytest.raises(ValueError, match="lag"):
        lag_correlation(rows, lag=(0, 0))
    with pytest.raises(ValueError, match="does not fit"):
        lag_correlation(rows, lag=(0, 200))


def test_noise_step_map_finds_the_step_and_whitens():
    rng = np.random.default_rng(1)
    image = 5.0 + rng.normal(size=(160, 120))
    image[100:] = 5.0 + 1.3 * (image[100:] - 5.0)
    mask = np.zeros(image.shape, bool)
    mask[20:40, 30:60] = True
    image[mask] = 1e3  # a masked "source" must not move the step
    noise_map, info = noise_step_map(image, mask)
    assert abs(info["index"] - 100) <= 2 and info["ratio"] == pytest.approx(1.3, rel=0.05)
    assert info["n_before"] + info["n_after"] == (~mask).sum()
    assert noise_map.shape == image.shape and np.all(noise_map[:98] == info["sigma_before"])
    whitened = (image - 5.0) / noise_map
    top, bottom = robust_sigma(whitened[:100], mask[:100]), robust_sigma(whitened[100:], mask[100:])
    assert top == pytest.approx(1.0, abs=0.03) and bottom == pytest.approx(1.0, abs=0.03)
    # Columns: the transposed image gives the same step along axis 1.
    _, info_t = noise_step_map(image.T, mask.T, axis=1)
    assert info_t["index"] == info["index"] and info_t["ratio"] == pytest.approx(info["ratio"])
    # A homogeneous image: a ratio near 1.
    _, flat = noise_step_map(rng.normal(size=(160, 120)))
    assert flat["ratio"] == pytest.approx(1.0, abs=0.06)
    with pytest.raises(ValueError, match="axis"):
        noise_step_map(image, axis=2)
    with pytest.raises(ValueError, match="margin"):
        noise_step_map(image, margin=100)


@pytest.mark.parametrize("band, size, set_name",
                         [("f115w", 64, "f115w"), ("f150w", 64, "f150w-smoothed"), ("f277w", 32, "f277w"),
                          ("f444w", 32, "f444w")])
def test_shipped_band_sets_load_held_out_and_disjoint(band, size, set_name):
    name = f"jwst-{set_name}-sky-val"
    assert name in shipped_names()
    ps = load_shipped(name)
    assert ps.patches.shape[1:] == (size, size) and len(ps) >= 15
    assert ps.patches.dtype == np.float32 and np.isfinite(ps.patches).all()
    notes, source = ps.provenance["notes"], ps.provenance["sources"][0]
    assert notes["role"] == "val" and source["source"] == f"jwst_cosmos_web_ring/{band.upper()}/data.fits"
    train, val = Region(*notes["train_region"]), Region(*notes["val_region"])
    assert not train.overlaps(val) and train.col0 - val.col1 == 8  # the 8-column gap
    for _, r, c in ps.positions:  # every patch inside the held-out band
        assert val.row0 <= r and r + size <= val.row1 and val.col0 <= c and c + size <= val.col1
    assert "whitening" in source and source["units"].startswith("(image - background) / noise_map")
    # Units of the training band: robust sigma 1 up to the bands' real difference (measured < 6%).
    assert robust_sigma(ps.patches) == pytest.approx(1.0, abs=0.1)


def test_rot180_keeps_tilted_correlations_that_a_flip_moves():
    import jax

    from numpyro_slic.data import augment, random_flips, random_rot180

    rng = np.random.default_rng(2)
    # Correlated along the (1, 1) diagonal only: a stand-in for stripes slightly tilted from vertical.
    fields = _correlated(rng, (128 * 40, 40), np.eye(2)).reshape(128, 40, 40).astype(np.float32)
    key = jax.random.key(0)
    turned = np.asarray(random_rot180(key, fields))
    n_turned = int(np.sum(np.all(turned == fields[:, ::-1, ::-1], axis=(1, 2))))
    assert 40 < n_turned < 88 and np.all(np.all(turned == fields, axis=(1, 2)) | np.all(turned == fields[:, ::-1, ::-1], axis=(1, 2)))
    assert lag_correlation(turned, lag=(1, 1)) == pytest.approx(lag_correlation(fields, lag=(1, 1)), abs=0.02)
    assert abs(lag_correlation(turned, lag=(1, -1))) < 0.03
    flipped = np.asarray(random_flips(key, fields, left_right=True, up_down=False))
    assert lag_correlation(flipped, lag=(1, -1)) > 0.15  # a single flip moves it to the other diagonal
    np.testing.assert_array_equal(np.asarray(augment(key, fields, size=32, rot180=True)).shape, (128, 32, 32))


def test_smoothed_f150w_set_is_the_shipped_f150w_sky_whitened_without_the_pixels_own_term():
    """jwst-f150w-smoothed-sky-val holds the windows of jwst-f150w-sky-val, whitened by the median-filtered
    noise map: the same sky (correlation near 1), without the raw map's negative skew (the map holds
    each pixel's own Poisson term, docs/noise_sources.md)."""
    import scipy.stats

    raw, smoothed = load_shipped("jwst-f150w-sky-val"), load_shipped("jwst-f150w-smoothed-sky-val")
    np.testing.assert_array_equal(np.asarray(raw.positions), np.asarray(smoothed.positions))
    assert np.corrcoef(raw.patches.ravel(), smoothed.patches.ravel())[0, 1] > 0.99
    assert "median-filtered" in smoothed.provenance["sources"][0]["noise_map"]
    # Measured: skew -0.142 (raw map) against -0.038 (smoothed) on these patches.
    assert scipy.stats.skew(raw.patches.ravel()) < -0.1 < scipy.stats.skew(smoothed.patches.ravel())
