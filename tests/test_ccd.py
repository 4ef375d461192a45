"""Tests of the raw CCD reduction (numpyro_slic.data.ccd) and the shipped ground-based CCD sets."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from numpyro_slic.data import (
    Region,
    find_low_rows,
    load_ccd_frame,
    load_shipped,
    mask_sources,
    overscan_level,
    reduce_ccd_frame,
    robust_sigma,
)
from numpyro_slic.data.ccd import parse_fits_section

BIAS, SKY, READ, SKY_NOISE = 214, 86, 3.0, 7.0
H, W = 40, 60
BIASSEC, TRIMSEC = "[3:8, 1:40]", "[11:58, 1:40]"  # overscan columns 2..7, sky columns 10..57
LOW_ROW, HOT = 30, (12, 20)  # in trimmed coordinates (row, col)


def synthetic_raw(seed: int = 0) -> np.ndarray:
    """A big-endian int16 frame: bias + read noise everywhere, sky in TRIMSEC, a low row, a hot pixel."""
    rng = np.random.default_rng(seed)
    frame = BIAS + rng.normal(0, READ, size=(H, W))
    frame[:, 10:58] += SKY + rng.normal(0, SKY_NOISE, size=(H, 48))
    frame[LOW_ROW, 10:58] = BIAS + 3 + rng.normal(0, READ, size=48)  # a row that did not read out
    frame[HOT[0], 10 + HOT[1]] += 2000  # one hot pixel (a single-pixel spike)
    return np.round(frame).astype(">i2")


def test_parse_fits_section_is_one_based_inclusive_x_first():
    rows, cols = parse_fits_section("[  4:  13,   1: 520]")
    assert (rows, cols) == (slice(0, 520), slice(3, 13))
    with pytest.raises(ValueError, match="Cannot parse"):
        parse_fits_section("4:13,1:520")
    with pytest.raises(ValueError, match="start <= end"):
        parse_fits_section("[13:4, 1:520]")


def test_reduction_of_a_big_endian_int16_frame(tmp_path):
    raw = synthetic_raw()
    assert raw.dtype.byteorder == ">" and raw.dtype.kind == "i"
    path = tmp_path / "raw.fits"
    header = fits.Header({"BIASSEC": BIASSEC, "TRIMSEC": TRIMSEC, "GAIN": 1.9})
    fits.PrimaryHDU(raw, header=header).writeto(path)
    assert fits.getdata(path).dtype.str == ">i2"  # what astropy hands back: big-endian int16

    for frame in (reduce_ccd_frame(raw, biassec=BIASSEC, trimsec=TRIMSEC), load_ccd_frame(path)):
        assert frame.image.shape == (H, 48) and frame.image.dtype == np.float64 and frame.image.dtype.isnative
        # Overscan removed: the sky sits at SKY, not BIAS + SKY; one constant level (the rows agree).
        assert frame.info["overscan"]["method"] == "constant"
        assert frame.info["overscan"]["constant_level"] == pytest.approx(BIAS, abs=1.5)
        assert np.median(frame.image[~frame.bad]) == pytest.approx(SKY, abs=1.5)
        # The low row is masked, whole; nothing else is.
        assert frame.info["low_rows"] == [LOW_ROW]
        assert frame.bad[LOW_ROW].all() and frame.bad.sum() == 48
        # The hot pixel is noise to keep: not in the bad mask, nor in the source mask.
        assert not frame.bad[HOT]
        sources = mask_sources(frame.image, mask=frame.bad, median_filter=5)
        assert not sources[HOT]
        assert frame.image[HOT] > SKY + 1000
    assert load_ccd_frame(path).info["header"]["GAIN"] == 1.9


def test_median_filter_keeps_spikes_out_of_the_source_mask_but_not_stars():
    rng = np.random.default_rng(3)
    image = rng.normal(size=(96, 96))
    rows, cols = np.indices(image.shape)
    image += 30 * np.exp(-((rows - 60) ** 2 + (cols - 30) ** 2) / (2 * 2.0**2))  # a star, sigma 2 px
    image[20, 70] += 200  # a one-pixel hit
    image[40, 40:43] += 80  # a short track
    plain = mask_sources(image)
    filtered = mask_sources(image, median_filter=5)
    assert plain[20, 70] and plain[40, 41]  # without the filter, spikes pass for sources
    assert not filtered[20, 70] and not filtered[40, 40:43].any()
    assert filtered[60, 30] and filtered[55:66, 25:36].all()


def test_overscan_method_follows_the_measured_row_scatter():
    rng = np.random.default_rng(1)
    raw = BIAS + rng.normal(0, READ, size=(200, 20))
    level, info = overscan_level(raw, "[1:10, 1:200]")
    assert info["method"] == "constant" and np.ptp(level) == 0
    assert info["variance_ratio"] == pytest.approx(1.0, abs=0.5)
    drift = raw + np.linspace(0, 20, 200)[:, None]  # a bias that drifts by 20 ADU down the frame
    level, info = overscan_level(drift, "[1:10, 1:200]")
    assert info["method"] == "row" and level[-1] - level[0] == pytest.approx(20, abs=4)
    with pytest.raises(ValueError, match="every row"):
        overscan_level(raw, "[1:10, 1:100]")


def test_find_low_rows_ignores_noise_and_sources():
    rng = np.random.default_rng(2)
    image = rng.normal(100, 5, size=(300, 200))
    image[50:60, 20:40] += 1000  # a bright source raises a few rows: not "low", not flagged
    assert not find_low_rows(image).any()
    image[[7, 8, 200]] -= 40
    assert np.nonzero(find_low_rows(image))[0].tolist() == [7, 8, 200]


def test_dequantisation_is_small_and_reversible():
    raw = synthetic_raw()
    frame = reduce_ccd_frame(raw, biassec=BIASSEC, trimsec=TRIMSEC, dequantise_seed=0)
    level = frame.info["overscan"]["constant_level"]
    np.testing.assert_array_equal(np.round(frame.image + level), raw[:, 10:58].astype(np.float64))
    assert len(np.unique(frame.image)) == frame.image.size


# --------------------------------------------------------------------------------------- shipped


@pytest.mark.parametrize("name, role", [("ground-ccd-sky-val", "val"), ("ground-ccd-sky-train", "train")])
def test_shipped_ccd_sets_load(name, role):
    ps = load_shipped(name)
    assert ps.patches.shape[1:] == (32, 32) and len(ps) >= 100
    assert ps.patches.dtype == np.float32 and np.isfinite(ps.patches).all()
    assert ps.provenance["notes"]["role"] == role
    assert robust_sigma(ps.patches) == pytest.approx(1.0, abs=0.05)
    # Strongly non-Gaussian: cosmic rays and hot pixels are kept, far beyond 5 sigma.
    assert ps.patches.max() > 20


def test_shipped_ccd_train_and_val_regions_are_disjoint():
    train, val = load_shipped("ground-ccd-sky-train"), load_shipped("ground-ccd-sky-val")
    p = train.patch_size
    train_region = Region(*train.provenance["notes"]["train_region"])
    val_region = Region(*val.provenance["notes"]["val_region"])
    assert not train_region.overlaps(val_region)
    train_boxes = [Region(r, r + p, c, c + p) for _, r, c in train.positions]
    val_boxes = [Region(r, r + p, c, c + p) for _, r, c in val.positions]
    assert all(train_region.row0 <= b.row0 and b.row1 <= train_region.row1 for b in train_boxes)
    assert all(train_region.col0 <= b.col0 and b.col1 <= train_region.col1 for b in train_boxes)
    assert all(val_region.col0 <= b.col0 and b.col1 <= val_region.col1 for b in val_boxes)
    # No patch of either set touches the low rows, and both are in the training band's units.
    low = val.provenance["sources"][0]["reduction"]["low_rows"]
    assert low and all(not (b.row0 <= r < b.row1) for b in train_boxes + val_boxes for r in low)
    keys = ("background", "sigma")
    assert [train.provenance["sources"][0][k] for k in keys] == [val.provenance["sources"][0][k] for k in keys]


def test_shipped_raw_fits_cutout_reduces_with_its_own_sections():
    """The raw FITS cutout (notebook 04's input) is small, raw int16 + BZERO, and reduces like the frame."""
    from numpyro_slic.data import shipped_path

    path = load_shipped("ground-ccd-fits")
    assert path == shipped_path("ground-ccd-fits") and path.stat().st_size < 150_000
    with fits.open(path, do_not_scale_image_data=True) as hdul:
        assert hdul[0].data.dtype.kind == "i" and hdul[0].data.shape == (240, 216)
        assert hdul[0].header["BZERO"] == 32768 and hdul[0].header["GAIN"] == 1.9
    frame = load_ccd_frame(path)
    assert frame.image.shape == (240, 200) and not frame.bad.any()
    # The whole frame's overscan level (PROVENANCE.md: constant, 214.0 ADU), from 10 columns x 240 rows.
    assert frame.info["overscan"]["method"] == "constant"
    assert frame.info["overscan"]["constant_level"] == pytest.approx(214.0, abs=1.0)
