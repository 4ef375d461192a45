"""Tests of numpyro_slic.data: FITS input, masking, patches, splits, storage, shipped data, augmentation."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest
import scipy.ndimage as ndi
from astropy.io import fits

from numpyro_slic.data import (
    PatchSet,
    Region,
    augment,
    extract_sky_patches,
    interleaved_zones,
    extract_sky_patches_from_fits,
    load_fits_image,
    load_patch_set,
    load_shipped,
    mask_sources,
    noise_statistics,
    random_rot90,
    random_translations,
    robust_sigma,
    save_patch_set,
    shipped_names,
    split_regions,
    train_val_patches,
)


def correlated_noise(rng, shape, width=0.7):
    """Unit-variance Gaussian noise with a lag-1 correlation of about 0.4 (like drizzled HST sky)."""
    x = ndi.gaussian_filter(rng.normal(size=shape), width, mode="wrap")
    return x / x.std()


def gaussian_blob(shape, centre, sigma, peak):
    rows, cols = np.indices(shape)
    return peak * np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / (2 * sigma**2))


def covered(ps: PatchSet, shape, source: int = 0) -> np.ndarray:
    """Bool map of the pixels of source image ``source`` that any patch of ``ps`` holds."""
    out = np.zeros(shape, dtype=bool)
    p = ps.patch_size
    for i, r, c in ps.positions:
        if i == source:
            out[r : r + p, c : c + p] = True
    return out


# ---------------------------------------------------------------------------------------------- FITS


@pytest.fixture
def fits_file(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(20, 30)).astype(">f4")  # FITS stores big-endian
    image[3, 4] = np.nan
    image[10, 0] = np.inf
    hdus = fits.HDUList(
        [
            fits.PrimaryHDU(),  # no data: skipped when hdu=None
            fits.BinTableHDU.from_columns([fits.Column("a", "E", array=np.arange(3.0))], name="TAB"),
            fits.ImageHDU(np.zeros((2, 3, 4), dtype=np.float32), name="CUBE"),
            fits.ImageHDU(image, name="SCI"),
        ]
    )
    path = tmp_path / "image.fits"
    hdus.writeto(path)
    return path, image


def test_fits_round_trip_with_nans_and_extension(fits_file):
    path, image = fits_file
    for hdu in (None, 3, "SCI", "sci"):
        loaded, bad = load_fits_image(path, hdu=hdu)
        assert loaded.dtype == np.float64 and loaded.dtype.isnative
        assert loaded.shape == (20, 30)
        np.testing.assert_array_equal(bad, ~np.isfinite(image))
        assert bad.sum() == 2
        # float32 -> float64 is exact, so the finite pixels match bit for bit.
        np.testing.assert_array_equal(loaded[~bad], image[~bad].astype(np.float64))


def test_fits_errors_are_clear(fits_file, tmp_path):
    path, _ = fits_file
    with pytest.raises(FileNotFoundError, match="No FITS file"):
        load_fits_image(tmp_path / "missing.fits")
    with pytest.raises(ValueError, match="not an image"):
        load_fits_image(path, hdu="TAB")
    with pytest.raises(ValueError, match="not a 2-D image"):
        load_fits_image(path, hdu="CUBE")
    with pytest.raises(ValueError, match="has no HDU 7"):
        load_fits_image(path, hdu=7)
    garbage = tmp_path / "garbage.fits"
    garbage.write_bytes(b"this is not a FITS file" * 200)
    with pytest.raises(ValueError, match="not a readable FITS file"):
        load_fits_image(garbage)
    only_table = tmp_path / "table.fits"
    table = fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(only_table)
    with pytest.raises(ValueError, match="no HDU holding a 2-D image"):
        load_fits_image(only_table)


# ------------------------------------------------------------------------------------------- masking


@pytest.mark.parametrize("method", ["segmentation", "sigma_clip"])
def test_mask_finds_injected_source_and_spares_pure_noise(method):
    rng = np.random.default_rng(1)
    noise = correlated_noise(rng, (128, 128))
    # Pure noise: the defaults (3 sigma on the smoothed image) flag 0.2% (segmentation) and 4%
    # (sigma_clip, no connectivity test) of pure correlated noise, measured over seeds; 2% and 10%
    # leave room for seed-to-seed scatter while still failing a 2-sigma-like threshold (11-58%).
    limit = {"segmentation": 0.02, "sigma_clip": 0.10}[method]
    assert mask_sources(noise, method=method).mean() < limit
    source = gaussian_blob(noise.shape, (60, 70), sigma=3.0, peak=20.0)
    mask = mask_sources(noise + source, method=method)
    # Every pixel where the source adds more than one noise sigma is masked.
    assert mask[source > 1.0].all()
    assert mask.mean() < limit + 0.05  # the source and its 4-pixel dilation cover about 2.5%


def test_mask_includes_bad_and_given_pixels():
    rng = np.random.default_rng(2)
    image = rng.normal(size=(64, 64))
    image[5, 5] = np.nan
    given = np.zeros_like(image, dtype=bool)
    given[40:45, 10:20] = True
    mask = mask_sources(image, mask=given, dilate=0)
    assert mask[5, 5] and mask[given].all()


def test_robust_sigma_ignores_outliers_and_mask():
    rng = np.random.default_rng(3)
    x = 2.5 * rng.normal(size=100_000)
    x[:1000] = 1e6  # 1% wild outliers barely move the MAD
    # Standard error of the MAD-based sigma for N = 1e5 Gaussian draws is about 0.3%; the 1%
    # outliers shift it by about 1.3%; 3% covers both.
    assert robust_sigma(x) == pytest.approx(2.5, rel=0.03)
    mask = np.zeros_like(x, dtype=bool)
    mask[:1000] = True
    assert robust_sigma(x, mask) == pytest.approx(2.5, rel=0.01)


def test_noise_statistics_of_white_gaussian_noise():
    rng = np.random.default_rng(4)
    s = noise_statistics(rng.normal(size=(8, 64, 64)))
    # 32768 pixels: sd of the excess kurtosis is sqrt(24 / N) = 0.027, of a lag-1 correlation
    # 1 / sqrt(N) = 0.006; the bounds are about 4 sd.
    assert abs(s["excess_kurtosis"]) < 0.11
    assert abs(s["lag1_x"]) < 0.025 and abs(s["lag1_y"]) < 0.025
    assert s["robust_sigma"] == pytest.approx(1.0, rel=0.03)


# ------------------------------------------------------------------------------------------- patches


def test_patches_reject_masked_areas():
    rng = np.random.default_rng(5)
    image = correlated_noise(rng, (96, 96))
    mask = np.zeros(image.shape, dtype=bool)
    mask[30:40, 50:60] = True
    image[2, 90] = np.nan
    ps = extract_sky_patches(image, patch_size=16, stride=4, mask=mask)
    bad = mask | ~np.isfinite(image)
    expected = [
        (r, c) for r in range(0, 81, 4) for c in range(0, 81, 4) if not bad[r : r + 16, c : c + 16].any()
    ]
    assert sorted(map(tuple, ps.positions[:, 1:])) == expected
    assert not (covered(ps, image.shape) & bad).any()
    assert np.isfinite(ps.patches).all() and ps.patches.dtype == np.float32


def test_masked_pixels_of_kept_patches_are_filled_from_real_sky():
    rng = np.random.default_rng(6)
    image = correlated_noise(rng, (64, 64))
    mask = np.zeros(image.shape, dtype=bool)
    mask[20, 20] = True
    image[20, 20] = 1e6
    ps = extract_sky_patches(image, patch_size=16, stride=8, mask=mask, max_masked_fraction=0.01)
    assert ps.provenance["sources"][0]["n_filled_pixels"] == sum(
        1 for _, r, c in ps.positions if r <= 20 < r + 16 and c <= 20 < c + 16
    )
    # The filled value is some other pixel of the normalised sky, never the masked outlier.
    assert np.abs(ps.patches).max() < 10


def test_normalisation_gives_unit_robust_sigma_and_records_it():
    rng = np.random.default_rng(7)
    image = 5.0 + 3.0 * rng.normal(size=(128, 128))
    ps = extract_sky_patches(image, patch_size=32, stride=32)
    # Non-overlapping patches that tile the image hold every sky pixel once, so their robust sigma
    # is the normalising one: 1 up to float32 rounding.
    assert robust_sigma(ps.patches) == pytest.approx(1.0, abs=1e-5)
    src = ps.provenance["sources"][0]
    # 16384 pixels: the background's standard error is 3 / 128 = 0.023 and the sigma's 0.6%.
    assert src["background"] == pytest.approx(5.0, abs=0.1)
    assert src["sigma"] == pytest.approx(3.0, rel=0.03)
    assert src["units"] == "(image - background) / sigma"
    np.testing.assert_allclose(ps.patches[0], (image[:32, :32] - src["background"]) / src["sigma"], rtol=1e-5)


def test_noise_map_whitening_removes_a_noise_level_jump():
    rng = np.random.default_rng(8)
    noise_map = np.where(np.arange(128)[:, None] < 64, 1.0, 2.0) * np.ones((128, 128))
    image = noise_map * rng.normal(size=(128, 128))
    plain = extract_sky_patches(image, patch_size=32, stride=32)
    white = extract_sky_patches(image, patch_size=32, stride=32, noise_map=noise_map)
    # A 1:2 scale mixture of Gaussians has excess kurtosis 0.72; whitened it is Gaussian (sd of
    # the estimate for 16384 pixels: 0.04).
    assert noise_statistics(plain.patches)["excess_kurtosis"] > 0.4
    assert abs(noise_statistics(white.patches)["excess_kurtosis"]) < 0.15
    assert white.provenance["sources"][0]["whitened_by_noise_map"]


def test_no_patch_raises_a_helpful_error():
    image = np.zeros((40, 40)) + np.random.default_rng(9).normal(size=(40, 40))
    mask = np.zeros(image.shape, dtype=bool)
    mask[::10, ::10] = True
    with pytest.raises(ValueError, match="use smaller patches"):
        extract_sky_patches(image, patch_size=16, stride=4, mask=mask)


def test_patches_from_fits_mask_sources_and_record_provenance(tmp_path):
    rng = np.random.default_rng(10)
    paths = []
    for i in range(2):
        image = correlated_noise(rng, (96, 96)) + gaussian_blob((96, 96), (48, 48), 3.0, 30.0)
        paths.append(tmp_path / f"img{i}.fits")
        fits.PrimaryHDU(image.astype(np.float32)).writeto(paths[-1])
    ps = extract_sky_patches_from_fits(paths, patch_size=16, stride=8, mask_kwargs={"dilate": 3})
    assert [s["source"] for s in ps.provenance["sources"]] == [str(p) for p in paths]
    assert ps.provenance["sources"][0]["mask"]["dilate"] == 3
    assert ps.provenance["sources"][0]["mask"]["nsigma"] == 3.0  # the defaults are recorded too
    assert set(ps.positions[:, 0]) == {0, 1}
    source = gaussian_blob((96, 96), (48, 48), 3.0, 30.0) > 1.0
    for i in range(2):
        assert not (covered(ps, (96, 96), source=i) & source).any()


# -------------------------------------------------------------------------------------------- splits


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("gap", [0, 5])
def test_split_regions_share_no_pixel(axis, gap):
    shape = (50, 70)
    for val_at_end in (True, False):
        train, val = split_regions(shape, 0.3, axis=axis, gap=gap, val_at_end=val_at_end)
        a, b = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
        a[train.slices] = True
        b[val.slices] = True
        assert not (a & b).any() and not train.overlaps(val)
        assert a.sum() + b.sum() + gap * shape[1 - axis] == a.size
        assert b.sum() == pytest.approx(0.3 * (a.size - gap * shape[1 - axis]), rel=0.05)


def test_train_val_patches_share_no_pixel_and_units():
    rng = np.random.default_rng(11)
    image = 2.0 * correlated_noise(rng, (96, 128))
    train, val = train_val_patches(image, patch_size=16, stride=4, val_fraction=0.25, axis=1, gap=3)
    a, b = covered(train, image.shape), covered(val, image.shape)
    assert a.any() and b.any() and not (a & b).any()
    # At least ``gap`` columns lie between the last training column and the first validation one.
    assert np.nonzero(b.any(0))[0].min() - np.nonzero(a.any(0))[0].max() > 3
    t, v = train.provenance["sources"][0], val.provenance["sources"][0]
    assert (t["background"], t["sigma"]) == (v["background"], v["sigma"])
    assert v["estimated_from_kept_patches"] == [] and train.provenance["notes"]["role"] == "train"


@pytest.mark.parametrize("val_every", [2, 3, 5])
def test_interleaved_zones_folds_hold_out_every_cell_once_and_no_two_side_by_side(val_every):
    shape, cell, gap = (100, 130), 12, 4
    pitch = cell + gap
    held_out = np.zeros(shape, int)
    for fold in range(val_every):
        train, val = interleaved_zones(shape, cell, gap=gap, val_every=val_every, fold=fold)
        assert not (train & val).any()
        held_out += val
        # The gap rows/columns belong to neither set; each whole cell is one set's.
        assert not (train | val)[np.arange(shape[0]) % pitch >= cell].any()
        assert not (train | val)[:, np.arange(shape[1]) % pitch >= cell].any()
        labels = np.array([[val[r : r + cell, c : c + cell].all() for c in range(0, shape[1] - cell + 1, pitch)]
                           for r in range(0, shape[0] - cell + 1, pitch)])
        trains = np.array([[train[r : r + cell, c : c + cell].all() for c in range(0, shape[1] - cell + 1, pitch)]
                           for r in range(0, shape[0] - cell + 1, pitch)])
        assert np.all(labels != trains)
        assert not (labels[1:] & labels[:-1]).any() and not (labels[:, 1:] & labels[:, :-1]).any()
        assert labels.mean() == pytest.approx(1 / val_every, abs=0.06)
    # Together the folds hold out every cell pixel exactly once.
    in_cell = (np.arange(shape[0]) % pitch < cell)[:, None] & (np.arange(shape[1]) % pitch < cell)[None, :]
    np.testing.assert_array_equal(held_out, in_cell.astype(int))
    with pytest.raises(ValueError, match="val_every"):
        interleaved_zones(shape, cell, gap=gap, val_every=1)
    with pytest.raises(ValueError, match="fold must lie"):
        interleaved_zones(shape, cell, gap=gap, val_every=val_every, fold=val_every)
    with pytest.raises(ValueError, match="smaller cells"):
        interleaved_zones((10, 20), cell, gap=gap, val_every=val_every + 2)


def test_train_val_patches_cells_interleave_without_sharing_a_pixel():
    rng = np.random.default_rng(13)
    image = correlated_noise(rng, (160, 160))
    mask = np.zeros(image.shape, bool)
    mask[70:80, 20:30] = True  # a source: no patch of either set touches it
    vals = []
    for fold in range(3):
        train, val = train_val_patches(image, patch_size=16, stride=4, val_stride=8, val_fraction=0.3, gap=3,
                                       split="cells", cell=24, fold=fold, mask=mask)
        a, b = covered(train, image.shape), covered(val, image.shape)
        assert not (a & b).any() and not ((a | b) & mask).any()
        # Both sets reach every quarter of the image, where a band split gives each set its own side.
        for quarter in (np.s_[:80, :80], np.s_[:80, 80:], np.s_[80:, :80], np.s_[80:, 80:]):
            assert a[quarter].any() and b[quarter].any()
        # Held-out pixels lie more than ``gap`` pixels from every training pixel (Chebyshev distance).
        assert not (ndi.binary_dilation(a, structure=np.ones((7, 7), bool)) & b).any()
        notes = val.provenance["notes"]
        assert (notes["split"], notes["val_every"], notes["fold"], notes["cell"]) == ("cells", 3, fold, [24, 24])
        assert notes["pitch"] % 8 == 0 and notes["pitch"] >= 24 + 3
        t, v = train.provenance["sources"][0], val.provenance["sources"][0]
        assert (t["background"], t["sigma"]) == (v["background"], v["sigma"])
        vals.append(b)
    assert not (vals[0] & vals[1]).any() and not (vals[1] & vals[2]).any() and not (vals[0] & vals[2]).any()
    # Only a training cell of fold 0 left unmasked (cells 24 px, pitch 32): the error names the fold.
    only = np.ones(image.shape, bool)
    only[0:24, 32:56] = False
    with pytest.raises(ValueError, match=r"split='cells', fold=0\): the held-out parts keep no patch"):
        train_val_patches(image, patch_size=16, stride=4, val_stride=8, val_fraction=0.3, gap=3,
                          split="cells", cell=24, mask=only)
    with pytest.raises(ValueError, match="split must be"):
        train_val_patches(image, patch_size=16, stride=4, split="checkerboard")
    with pytest.raises(ValueError, match="cell >= patch_size"):
        train_val_patches(image, patch_size=16, stride=4, split="cells", cell=12)
    with pytest.raises(ValueError, match=r"\(0, 0.5\]"):
        train_val_patches(image, patch_size=16, stride=4, split="cells", val_fraction=0.7)


def test_train_val_patches_stripes_are_contiguous_folds():
    rng = np.random.default_rng(14)
    image = correlated_noise(rng, (64, 200))
    held = []
    for fold in range(3):
        train, val = train_val_patches(image, patch_size=16, stride=4, val_fraction=1 / 3, axis=1, gap=5,
                                       split="stripes", fold=fold)
        a, b = covered(train, image.shape), covered(val, image.shape)
        assert not (a & b).any()
        cols = np.nonzero(b.any(0))[0]
        # One contiguous band of columns, (200 - 2 * 5) // 3 = 63 wide, apart from the training ones.
        assert cols.max() - cols.min() < 63 and np.all(np.diff(cols) == 1)
        assert not (ndi.binary_dilation(a, structure=np.ones((1, 11), bool)) & b).any()
        held.append(cols.min() // 68)
    assert sorted(held) == [0, 1, 2]
    # Four bands: each fold holds out its own (a lattice one cell tall reaches every residue).
    held = [np.nonzero(covered(train_val_patches(image, patch_size=16, stride=4, val_fraction=0.25, axis=1,
                                                  split="stripes", fold=f)[1], image.shape).any(0))[0].min() // 50
            for f in range(4)]
    assert held == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="fold is a setting"):
        train_val_patches(image, patch_size=16, stride=4, fold=1)
    with pytest.raises(ValueError, match="cell is a setting"):
        train_val_patches(image, patch_size=16, stride=4, split="stripes", cell=20)
    with pytest.raises(ValueError, match="larger val_fraction"):
        train_val_patches(image, patch_size=64, stride=4, val_fraction=1 / 3, axis=1, gap=8, split="stripes")


def test_region_validation():
    with pytest.raises(ValueError):
        Region(5, 5, 0, 3)
    with pytest.raises(TypeError):
        Region(0, 2.5, 0, 3)
    with pytest.raises(ValueError, match="one side would be empty"):
        split_regions((10, 10), 0.01)


# ---------------------------------------------------------------------------------------- save/load


def test_save_load_round_trip_and_corrupt_files(tmp_path):
    rng = np.random.default_rng(12)
    image = rng.normal(size=(64, 64))
    ps = extract_sky_patches(image, patch_size=16, stride=8, source={"source": "x", "hdu": 1})
    path = tmp_path / "set.npz"
    save_patch_set(path, ps)
    assert os.listdir(tmp_path) == ["set.npz"]  # no temporary file left behind
    back = load_patch_set(path)
    np.testing.assert_array_equal(back.patches, ps.patches)
    np.testing.assert_array_equal(back.positions, ps.positions)
    assert back.provenance == json.loads(json.dumps(ps.provenance))
    assert back.provenance["sources"][0]["hdu"] == 1

    raw = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="truncated, corrupt"):
        load_patch_set(truncated)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ValueError, match="lacks"):
        load_patch_set(other)
    with pytest.raises(FileNotFoundError):
        load_patch_set(tmp_path / "missing.npz")


# ---------------------------------------------------------------------------------------- shipped


def test_shipped_sky_sets_load_with_documented_shapes():
    for name, size in (("jwst-f150w-sky-val", 64), ("hst-f814w-sky-val", 32)):
        ps = load_shipped(name)
        assert ps.patches.shape[1:] == (size, size) and len(ps) >= 50
        assert ps.patches.dtype == np.float32 and np.isfinite(ps.patches).all()
        assert ps.provenance["notes"]["role"] == "val"
        # Validation sets are in the units of their image's training band, so their robust sigma
        # is 1 only up to the real change in noise level between bands (measured: < 1%).
        assert robust_sigma(ps.patches) == pytest.approx(1.0, abs=0.05)


def test_shipped_psf_and_ring_cutout():
    psf = load_shipped("jwst-f150w-psf")
    assert psf.kernel.shape == (31, 31) and psf.pixel_scale == pytest.approx(0.03)
    assert psf.kernel.sum() == pytest.approx(1.0, rel=1e-5)
    assert np.unravel_index(np.argmax(psf.kernel), psf.kernel.shape) == (15, 15)
    ring = load_shipped("cosmos-web-ring-f150w")
    assert ring.data.shape == ring.noise_map.shape == ring.mask.shape == (128, 128)
    assert ring.mask.dtype == bool and (ring.noise_map > 0).all()
    np.testing.assert_array_equal(ring.psf.kernel, psf.kernel)
    # No JWST sky patch (shipped or training) may come from the ring cutout.
    val = load_shipped("jwst-f150w-sky-val")
    r0, c0 = ring.origin
    box = Region(r0, r0 + 128, c0, c0 + 128)
    assert not any(Region(r, r + 64, c, c + 64).overlaps(box) for _, r, c in val.positions)


def test_unknown_shipped_name_lists_known_ones():
    with pytest.raises(ValueError) as err:
        load_shipped("nope")
    for name in shipped_names():
        assert name in str(err.value)


# ----------------------------------------------------------------------------------- augmentation


def anisotropic_fields(rng, n, size):
    """Independent non-periodic stationary Gaussian fields, correlated along the main diagonal."""
    big = size + 16
    white = rng.normal(size=(n, big, big))
    kernel = np.eye(5)  # correlates (r, c) with (r + 1, c + 1), not with (r + 1, c - 1)
    fields = ndi.convolve(white, kernel[None], mode="wrap")[:, 8 : 8 + size, 8 : 8 + size]
    return fields / fields.std()


def mean_periodogram_bands(patches, block=8):
    power = np.mean(np.abs(np.fft.fft2(patches)) ** 2, axis=0)
    p = power.shape[0] // block
    return power.reshape(p, block, p, block).mean(axis=(1, 3))


def lag_corr(x, dy, dx):
    a = x[:, max(dy, 0) : x.shape[1] + min(dy, 0), max(dx, 0) : x.shape[2] + min(dx, 0)]
    b = x[:, max(-dy, 0) : x.shape[1] + min(-dy, 0), max(-dx, 0) : x.shape[2] + min(-dx, 0)]
    return float(np.mean(a * b) / np.sqrt(np.mean(a * a) * np.mean(b * b)))


def test_random_crops_preserve_the_power_spectrum():
    rng = np.random.default_rng(13)
    fields = anisotropic_fields(rng, 1024, 40).astype(np.float32)
    crops = np.asarray(random_translations(jax.random.key(0), fields[:512], size=32))
    fixed = fields[512:, :32, :32]  # independent fields, fixed window
    # Both are 512 independent draws of the same stationary field's 32 x 32 window; each of the
    # 16 bands averages 64 wavenumbers, so its mean power has about a 1-2% standard error
    # (neighbouring wavenumbers are correlated by the window); 8% is > 4 standard errors of the
    # difference and far below the band-to-band changes (a factor of ~10).
    ratio = mean_periodogram_bands(crops) / mean_periodogram_bands(fixed)
    assert np.abs(ratio - 1).max() < 0.08
    # Each crop is a window of its own field, unflipped.
    for i in range(5):
        windows = np.lib.stride_tricks.sliding_window_view(fields[i], (32, 32)).reshape(-1, 32, 32)
        assert (np.abs(windows - crops[i]).max(axis=(1, 2)) == 0).any()


def test_roll_keeps_each_periodogram_exactly():
    rng = np.random.default_rng(14)
    x = rng.normal(size=(16, 24, 24)).astype(np.float32)
    rolled = np.asarray(random_translations(jax.random.key(1), x, mode="roll"))
    np.testing.assert_allclose(np.abs(np.fft.fft2(rolled)), np.abs(np.fft.fft2(x)), rtol=1e-4, atol=1e-4)


def test_flips_and_rotations_are_off_by_default():
    rng = np.random.default_rng(15)
    fields = anisotropic_fields(rng, 256, 40)
    diag, anti = lag_corr(fields, 1, 1), lag_corr(fields, 1, -1)
    assert diag > 0.5 and abs(anti) < 0.05  # the test field is strongly directional
    key = jax.random.key(2)
    default = np.asarray(augment(key, fields, size=32))
    # Default: orientation kept (a flip or rotation would move correlation to the anti-diagonal).
    # 256 x 32 x 32 pixels: correlation estimates scatter by about 0.01.
    assert lag_corr(default, 1, 1) == pytest.approx(diag, abs=0.05)
    assert abs(lag_corr(default, 1, -1)) < 0.05
    flipped = np.asarray(augment(key, fields, size=32, flip_left_right=True))
    assert lag_corr(flipped, 1, -1) == pytest.approx(diag / 2, abs=0.08)  # half the patches flipped
    rotated = np.asarray(random_rot90(key, fields[:, :32, :32]))
    assert lag_corr(rotated, 1, -1) == pytest.approx(diag / 2, abs=0.08)  # odd turns swap diagonals
