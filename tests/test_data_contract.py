"""Property tests of the data pipeline on FITS files written with astropy (tmp_path).

load_fits_image -> mask_sources -> extract_sky_patches / train_val_patches, and robust_sigma: NaNs
anywhere, all-masked regions (a clear ValueError, never an empty PatchSet), images smaller than a
patch (a ValueError naming the fix), and on-disk integer, big-endian and BSCALE/BZERO-scaled data,
which must give exactly the patches of the same image held as native float64. Hypothesis draws the
cases (derandomized, no example database) from real files; nothing is mocked.
"""

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from numpyro_slic.data import (
    extract_sky_patches,
    load_fits_image,
    mask_sources,
    robust_sigma,
    train_val_patches,
)

PROPS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def write_fits(path, data, header=None):
    fits.PrimaryHDU(data, header=header).writeto(path, overwrite=True)
    return path


@st.composite
def sky_images(draw, min_side=12, max_side=40):
    """Integer-valued sky (exact in every on-disk dtype below) around a level, shape (H, W)."""
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    return np.round(200.0 + 20.0 * rng.standard_normal((h, w)))


# ---- on-disk dtypes ---------------------------------------------------------------------------------
DISK_DTYPES = [">i2", ">i4", ">f4", ">f8", "<f4", "<i2", "u2"]


@PROPS
@given(sky_images(), st.sampled_from(DISK_DTYPES), st.integers(4, 8), st.integers(1, 8))
def test_integer_and_big_endian_files_give_the_native_float_patches(tmp_path_factory, image, dtype, patch, stride):
    path = tmp_path_factory.mktemp("fits") / "img.fits"
    # astropy writes every dtype in FITS's big-endian layout (u2 as int16 with BZERO = 32768); passing
    # explicitly big- and little-endian arrays exercises its conversions on the way in.
    write_fits(path, image.astype(dtype))
    loaded, bad = load_fits_image(path)
    assert loaded.dtype == np.float64 and loaded.dtype.isnative and not bad.any()
    np.testing.assert_array_equal(loaded, image)
    # Also straight from arrays in those dtypes, without FITS in between.
    got_file = extract_sky_patches(loaded, patch_size=patch, stride=stride)
    got_array = extract_sky_patches(image.astype(dtype), patch_size=patch, stride=stride)
    want = extract_sky_patches(image, patch_size=patch, stride=stride)
    for got in (got_file, got_array):
        np.testing.assert_array_equal(got.patches, want.patches)
        np.testing.assert_array_equal(got.positions, want.positions)
        assert got.provenance["sources"][0]["sigma"] == want.provenance["sources"][0]["sigma"]
    assert robust_sigma(image.astype(dtype)) == robust_sigma(image)


@PROPS
@given(sky_images(), st.sampled_from(["int16", "int32", "uint8"]), st.sampled_from([0.5, 0.25, 2.0]), st.sampled_from([0.0, 100.0, -37.5]))
def test_bscale_bzero_scaled_integers_are_read_in_physical_units(tmp_path_factory, image, int_type, bscale, bzero):
    path = tmp_path_factory.mktemp("fits") / "scaled.fits"
    raw = (image - image.min()).astype(np.int64) % (250 if int_type == "uint8" else 30000)
    physical = bzero + bscale * raw  # exact in float64
    hdu = fits.PrimaryHDU(physical.copy())
    hdu.scale(int_type, bscale=bscale, bzero=bzero)
    hdu.writeto(path)
    with fits.open(path, do_not_scale_image_data=True) as hdul:  # really stored as scaled integers
        assert hdul[0].header["BSCALE"] == bscale and hdul[0].data.dtype.kind in "iu"
    loaded, bad = load_fits_image(path)
    np.testing.assert_array_equal(loaded, physical)
    assert not bad.any()
    a = extract_sky_patches(loaded, patch_size=6, stride=6)
    b = extract_sky_patches(physical, patch_size=6, stride=6)
    np.testing.assert_array_equal(a.patches, b.patches)


# ---- NaNs -------------------------------------------------------------------------------------------
@PROPS
@given(sky_images(min_side=16), st.floats(0.0, 0.08), st.integers(0, 2**16), st.sampled_from([0.0, 0.1]))
def test_nans_are_masked_and_never_reach_a_patch(tmp_path_factory, image, nan_fraction, seed, max_masked):
    rng = np.random.default_rng(seed)
    image = image.astype(">f4")
    holes = rng.random(image.shape) < nan_fraction
    image[holes] = np.nan
    image[rng.random(image.shape) < 0.005] = np.inf  # a few saturated / broken pixels too
    path = write_fits(tmp_path_factory.mktemp("fits") / "nan.fits", image)
    loaded, bad = load_fits_image(path)
    np.testing.assert_array_equal(bad, ~np.isfinite(image.astype(np.float64)))
    mask = mask_sources(loaded, mask=bad, nsigma=5.0)
    assert mask[bad].all()  # every bad pixel stays masked
    try:
        ps = extract_sky_patches(loaded, patch_size=4, stride=4, mask=mask, max_masked_fraction=max_masked)
    except ValueError as err:  # so many holes that no window is clean: the documented error
        assert "use smaller patches" in str(err) or "fill masked pixels" in str(err)
        return
    assert np.all(np.isfinite(ps.patches))
    if max_masked == 0.0:
        for _, r, c in ps.positions:  # every kept pixel is real, finite sky
            assert not mask[r : r + 4, c : c + 4].any()
    # Non-overlapping patches: the sky they hold has unit robust sigma by construction.
    if max_masked == 0.0 and len(ps.patches) * 16 >= 50:
        assert robust_sigma(ps.patches) == pytest.approx(1.0, rel=1e-5)
    finite = loaded[np.isfinite(loaded)]
    assert robust_sigma(loaded) == robust_sigma(finite)  # NaN and inf are ignored, not propagated


# ---- all masked, and too small ----------------------------------------------------------------------
@PROPS
@given(sky_images(), st.sampled_from(["nan", "mask"]))
def test_all_masked_is_a_clear_error_everywhere(tmp_path_factory, image, how):
    if how == "nan":
        path = write_fits(tmp_path_factory.mktemp("fits") / "allnan.fits", np.full(image.shape, np.nan, ">f4"))
        image, bad = load_fits_image(path)
        assert bad.all()
        mask = None
    else:
        mask = np.ones(image.shape, bool)
    with pytest.raises(ValueError, match="every pixel is already masked"):
        mask_sources(image, mask=mask)
    with pytest.raises(ValueError, match="Every pixel of region .* is masked"):
        extract_sky_patches(image, patch_size=4, stride=4, mask=mask)
    with pytest.raises(ValueError, match="fewer than 2 usable pixels"):
        robust_sigma(image, mask)
    with pytest.raises(ValueError, match="is masked"):
        train_val_patches(image, patch_size=4, stride=4, mask=mask)


@PROPS
@given(sky_images(min_side=16), st.sampled_from([0, 1]))
def test_a_fully_masked_validation_band_is_an_error_not_an_empty_set(tmp_path_factory, image, axis):
    mask = np.zeros(image.shape, bool)
    n = image.shape[axis]
    # train_val_patches puts the last round(0.25 * n) rows (columns) in the validation band
    band = slice(n - int(round(0.25 * n)), n)
    if axis == 0:
        mask[band, :] = True
    else:
        mask[:, band] = True
    with pytest.raises(ValueError, match="Every pixel of region .* is masked"):
        train_val_patches(image, patch_size=4, stride=4, mask=mask, val_fraction=0.25, axis=axis)


@PROPS
@given(st.integers(2, 12), st.integers(2, 12), st.integers(2, 16))
def test_an_image_smaller_than_a_patch_names_the_fix(h, w, patch):
    image = np.random.default_rng(h * 100 + w).standard_normal((h, w))
    if patch <= min(h, w):
        assert len(extract_sky_patches(image, patch_size=patch, stride=1).patches) == (h - patch + 1) * (w - patch + 1)
        return
    with pytest.raises(ValueError, match=rf"smaller than one {patch}x{patch} patch.*patch_size <= {min(h, w)}"):
        extract_sky_patches(image, patch_size=patch, stride=1)


@PROPS
@given(sky_images(), st.integers(0, 2**16), st.sampled_from([None, (1.0, 10.0), (0.5, -3.0)]))
def test_blank_integer_pixels_are_bad_pixels(tmp_path_factory, image, seed, scaling):
    """FITS integer images mark undefined pixels with the BLANK value: they must come out as bad (NaN)."""
    raw = image.astype(np.int16)
    blank = np.random.default_rng(seed).random(raw.shape) < 0.05
    raw[blank] = -32768
    hdu = fits.PrimaryHDU(raw)
    hdu.header["BLANK"] = -32768
    if scaling is not None:
        hdu.header["BSCALE"], hdu.header["BZERO"] = scaling
    path = tmp_path_factory.mktemp("fits") / "blank.fits"
    hdu.writeto(path)
    loaded, bad = load_fits_image(path)
    np.testing.assert_array_equal(bad, blank)
    bscale, bzero = scaling or (1.0, 0.0)
    np.testing.assert_array_equal(loaded[~blank], bzero + bscale * image.astype(np.int16)[~blank])
