"""Builds the real data shipped in numpyro_slic/data/shipped/ and the matching training patch sets.

Run from the repository root (takes about ten seconds):

    python scripts/make_shipped_data.py ../shared/data

which writes

    numpyro_slic/data/shipped/   jwst_f150w_sky_val.npz, hst_f814w_sky_val.npz, jwst_f150w_psf.npz,
                                 cosmos_web_ring_f150w.npz, ground_ccd_sky_{val,train}.npz,
                                 PROVENANCE.md                                 (package data)
                                 jwst_{f115w,f150w_smoothed,f277w,f444w}_sky_val.npz
    outputs/patches/             jwst_f150w_sky_train.npz, hst_f814w_sky_train.npz,
                                 ground_ccd_sky_train.npz,
                                 jwst_{f115w,f150w_smoothed,f277w,f444w}_sky_train.npz,
                                 stats.json

The preparation of each image (``prepare_jwst``, ``prepare_hst``, ``prepare_ccd``: masks, whitening)
is shared with ``benchmarks/noise_survey.py``, which measures the noise of every source this way.

``--sets ccd`` makes only the ground-based CCD files (and rewrites only their section of
PROVENANCE.md); ``--sets ccd-fits`` only the small raw FITS cutout of the same frame
(ground_ccd_raw_cutout.fits, for notebooks/04_train_your_own_noise_model.ipynb, and its section);
``--sets space`` only the JWST F150W / HST ones; ``--sets bands`` only the other JWST bands'
(F115W, F277W, F444W, and F150W whitened like F115W) validation sets (shipped), training sets
(outputs/patches) and their section.
The first argument is the ``shared/data`` folder described by its PROVENANCE.md; ``--shipped-out`` and
``--train-out`` change the two output folders. Validation (shipped) and training patches come from
disjoint bands of each image (``split_regions`` with an 8-pixel gap, about 3x the noise's correlation
length), and no JWST sky patch touches the shipped ring cutout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import scipy.ndimage
import scipy.stats

from numpyro_slic.data import (
    PatchSet,
    Region,
    concatenate_patch_sets,
    load_ccd_frame,
    load_fits_image,
    mask_sources,
    noise_statistics,
    noise_step_map,
    save_patch_set,
    train_val_patches,
)
from numpyro_slic.data.io import atomic_savez
from numpyro_slic.data.patchset import package_version, utc_now
from numpyro_slic.data.stats import _lag1_correlation

JWST_UPSTREAM_ROOT = (
    "PyAutoLabs/autolens_assistant (MIT licence, copyright 2025 James W. Nightingale), commit "
    "b75b3757b6e4e9a6effc0fb64f9b51a830fa2305, dataset/imaging/cosmos_web_ring/wavebands/"
)
JWST_UPSTREAM = JWST_UPSTREAM_ROOT + "F150W/"
HST_UPSTREAM = {
    "galsim_cosmos_147246_masknoise.fits": "GalSim-developers/GalSim (BSD-style licence), commit "
    "ee177aa50424dbbc5cec4a71cadd6297109c2aa1, examples/data/147246.0_150.416558_1.998697_masknoise.fits",
    "scarlet_Cut_HST.fits": "pmelchior/scarlet (MIT licence), commit "
    "998ca34cf7441bc372280302178de2568990babb, data/test_resampling/Cut_HST.fits",
    "scarlet_Cut_HST1.fits": "pmelchior/scarlet (MIT licence), commit "
    "998ca34cf7441bc372280302178de2568990babb, data/test_resampling/Cut_HST1.fits",
}
CCD_UPSTREAM = (
    "astropy/ccdproc (BSD 3-clause licence, copyright 2011-2025 Astropy-ccdproc Developers), commit "
    "5e7e21d472a5038a359f3fc5b9ccfa89f0f1ae7f, ccdproc/tests/data/a8280271.fits"
)
COMMAND = "python scripts/make_shipped_data.py ../shared/data"
CCD_COMMAND = COMMAND + " --sets ccd"
CCD_FITS_COMMAND = COMMAND + " --sets ccd-fits"
# The raw FITS cutout: rows 1..240 and columns 1..216 of the raw frame (1-based), i.e. the prescan,
# the 10 overscan columns (4..13) and the first 200 exposed columns, as stored (int16, BZERO 32768).
CCD_FITS_ROWS, CCD_FITS_COLS = 240, 216
CCD_FITS_NAME = "ground_ccd_raw_cutout.fits"
# Header cards copied from the raw frame (the sections are rewritten for the cutout).
CCD_FITS_KEYS = ("OBSERVAT", "TELESCOP", "INSTRUME", "DATE-OBS", "OBJECT", "IMAGETYP", "FILTERS", "EXPTIME",
                 "SECZ", "GAIN", "RDNOISE", "CCD-TEMP", "MJD-OBS")

# Split settings shared by every source: 30% of the columns held out, 8-pixel gap. (The builders
# below take other settings of train_val_patches as ``split``: benchmarks/crossval_fidelity.py.)
SPLIT = dict(val_fraction=0.3, axis=1, gap=8)
RING_BOX = 128  # side of the shipped ring cutout, pixels (0.03"/px: 3.84 arcsec; 64 px at 0.06"/px)
JWST_BANDS = ("F115W", "F150W", "F277W", "F444W")
# How each JWST band's sky is whitened before patches are cut (docs/noise_sources.md has the numbers,
# from benchmarks/noise_survey.py):
# * "noise_map": (data - background) / noise_map.fits. The shipped F150W sets were made this way and
#   are kept so (the shipped JWST model and its validation rest on them). But the short-wavelength
#   noise maps hold each pixel's own Poisson term (noise_map^2 grows with that pixel's data value),
#   so dividing by them shrinks positive and stretches negative sky fluctuations: whitened sky has
#   skew -0.14 (F115W) / -0.12 (F150W) and over twice as many pixels below -3 sigma as above +3.
# * "smoothed": (data - background) / median_filter(noise_map, 9): keeps the map's depth structure
#   (the step near row 282) without the pixel's own term; skew and tails symmetric again.
# * "step": (data - background) / noise_step_map(...): the long-wavelength noise maps are floored at
#   0.02 (that value at > 99.5% of pixels, 2.5 to 3.7 times the sky's robust sigma), so they carry no
#   depth structure; the sky's rms steps up by 1.23x (F277W) / 1.25x (F444W) at row 134, which
#   noise_step_map finds in the pixels.
JWST_WHITENING = {"F115W": "smoothed", "F150W": "noise_map", "F277W": "step", "F444W": "step"}
NOISE_MAP_MEDIAN = 9  # side of the median filter of "smoothed", pixels
# Patch sets of the other bands (--sets bands), file stem -> (band, whitening): 64 x 64 at 0.03"/px,
# 32 x 32 (the same sky) at 0.06"/px, both sets at stride 8 like F150W's (random crops then give every
# translation). "f150w_smoothed" is the F150W sky of the shipped F150W sets (the same windows) whitened
# like F115W's, so that the short-wavelength pair can be pooled under one whitening
# (docs/noise_sources.md, decision (a)). The masks leave few windows in each held-out band: every
# validation file stays under 1.1 MB.
BAND_SETS = {"f115w": ("F115W", "smoothed"), "f150w_smoothed": ("F150W", "smoothed"),
             "f277w": ("F277W", "step"), "f444w": ("F444W", "step")}
BAND_PATCH_SIZE = {"F115W": 64, "F150W": 64, "F277W": 32, "F444W": 32}
# Source masking (mask_sources) settings; the GalSim stamp gets a wider margin (see hst_sets).
MASK = dict(method="segmentation", nsigma=3.0, npixels=5, dilate=4, smooth_fwhm=2.0)
# The raw CCD frame: detect stars on a 5 x 5 median-filtered image, so that cosmic rays and hot
# pixels (narrower than the filter) stay in as noise; stars (seeing several pixels) are masked.
CCD_MASK = MASK | {"median_filter": 5}
CCD_PATCH, CCD_STRIDE = 32, 16  # both sets at stride 16 (4x overlap): 32 x 32 float32 is 4 kB a patch


def _summary(ps: PatchSet) -> dict:
    stats = noise_statistics(ps.patches)
    return {"n_patches": len(ps), "patch_size": ps.patch_size, **{k: round(v, 4) for k, v in stats.items()}}


@dataclasses.dataclass
class Prepared:
    """One sky image ready for ``extract_sky_patches``: pixels, mask, optional noise map, provenance."""

    name: str
    image: np.ndarray
    mask: np.ndarray  # True = not sky
    noise_map: np.ndarray | None  # divide (image - background) by it (None: do not whiten)
    pixel_scale: float
    source: dict  # the patch sets' provenance "source" entry
    extra: dict = dataclasses.field(default_factory=dict)  # what else the survey reports


def ring_region(image: np.ndarray, pixel_scale: float) -> Region:
    """The box of the ring cutout (3.84 arcsec a side) around the lens, the brightest central pixel."""
    side = int(round(RING_BOX * 0.03 / pixel_scale))
    reach = int(round(20 * 0.03 / pixel_scale))
    h, w = image.shape
    centre_box = image[h // 2 - reach : h // 2 + reach + 1, w // 2 - reach : w // 2 + reach + 1]
    dr, dc = np.unravel_index(np.argmax(centre_box), centre_box.shape)
    row, col = h // 2 - reach + int(dr), w // 2 - reach + int(dc)
    return Region(row - side // 2, row + side // 2, col - side // 2, col + side // 2)


def prepare_jwst(data_dir: Path, band: str, whitening: str | None = None) -> Prepared:
    """A JWST band's image, source mask (plus the extra-galaxy mask and the ring box) and noise map.

    ``whitening``: "noise_map", "smoothed" or "step" (``JWST_WHITENING``; default: the band's entry).
    """
    whitening = JWST_WHITENING[band] if whitening is None else whitening
    folder = data_dir / "jwst_cosmos_web_ring" / band
    image, bad = load_fits_image(folder / "data.fits")
    noise_map, _ = load_fits_image(folder / "noise_map.fits")
    extra, _ = load_fits_image(folder / "mask_extra_galaxies.fits")
    pixel_scale = float(json.loads((folder / "info.json").read_text())["pixel_scale"])
    mask = mask_sources(image, mask=bad | (extra > 0), **MASK)
    # The ring's cutout is a fit target: keep its pixels (noise included) out of every patch set.
    ring_box = ring_region(image, pixel_scale)
    mask[ring_box.slices] = True
    upstream = JWST_UPSTREAM_ROOT + band + "/"
    source = {
        "source": f"jwst_cosmos_web_ring/{band}/data.fits",
        "upstream": upstream + "data.fits",
        "hdu": 0,
        "noise_map": f"jwst_cosmos_web_ring/{band}/noise_map.fits",
        "mask": {
            "mask_sources": MASK,
            "also_masked": "mask_extra_galaxies.fits > 0; the ring cutout box (rows, cols) "
            f"{list(ring_box.as_tuple())}",
        },
    }
    extra_info = {"pixel_scale": pixel_scale, "ring_box": list(ring_box.as_tuple()), "whitening": whitening,
                  "noise_map_floor_fraction": float(np.mean(noise_map <= 0.02 * (1 + 1e-6)))}
    if whitening == "noise_map":
        whiten = noise_map
    elif whitening == "smoothed":
        whiten = scipy.ndimage.median_filter(noise_map, size=NOISE_MAP_MEDIAN, mode="nearest")
        source["noise_map"] += f", median-filtered {NOISE_MAP_MEDIAN} x {NOISE_MAP_MEDIAN} (scipy.ndimage.median_filter, mode 'nearest')"
        source["whitening"] = ("smoothed: the noise map holds each pixel's own Poisson term, which skews "
                               "whitened sky; its median-filtered version keeps the depth structure only")
    elif whitening == "step":
        whiten, step = noise_step_map(image, mask, axis=0)
        source["noise_map"] = ("two-level map from noise_step_map(data, mask, axis=0) (rows < index: "
                               "sigma_before, from index on: sigma_after; data units)")
        source["noise_step"] = step
        source["whitening"] = ("step: noise_map.fits is floored at 0.02 (constant over the sky), so it "
                               "cannot whiten; the sky's rms steps once between rows")
        extra_info["noise_step"] = step
    else:
        raise ValueError(f"Unknown whitening {whitening!r}.")
    return Prepared(f"jwst-{band.lower()}", image, mask, whiten, pixel_scale, source, extra_info)


def jwst_sets(data_dir: Path, ring_box: Region, split: dict | None = None) -> tuple[PatchSet, PatchSet]:
    prep = prepare_jwst(data_dir, "F150W")
    if prep.extra["ring_box"] != list(ring_box.as_tuple()):
        raise RuntimeError(f"F150W ring box {prep.extra['ring_box']} differs from the cutout's {ring_box}.")
    # noise_map whitening: the noise rms jumps by 1.4x across the image (rows > ~287 are noisier);
    # pooling both levels unwhitened fakes excess kurtosis (a scale mixture).
    return train_val_patches(
        prep.image,
        patch_size=64,
        stride=8,
        mask=prep.mask,
        noise_map=prep.noise_map,
        val_at_end=False,
        source=prep.source,
        **(SPLIT if split is None else split),
    )


def band_sets(data_dir: Path, band: str, whitening: str | None = None,
              split: dict | None = None) -> tuple[PatchSet, PatchSet]:
    """Training and validation patches of a JWST band, split like F150W's (``whitening``: as in
    ``prepare_jwst``; ``split``: ``train_val_patches`` settings, default ``SPLIT``)."""
    prep = prepare_jwst(data_dir, band, whitening)
    return train_val_patches(
        prep.image,
        patch_size=BAND_PATCH_SIZE[band],
        stride=8,
        val_stride=8,
        mask=prep.mask,
        noise_map=prep.noise_map,
        val_at_end=False,
        source=prep.source,
        **(SPLIT if split is None else split),
    )


def prepare_hst(data_dir: Path, name: str) -> Prepared:
    """An HST cutout and its source mask (wider margins on the GalSim stamp); no whitening."""
    image, bad = load_fits_image(data_dir / "hst_cosmos_f814w" / name)
    # The GalSim stamp had its other objects masked (replaced) upstream: keep a wider margin
    # around every detection there.
    settings = (MASK | {"dilate": 8}) if name.startswith("galsim") else MASK
    mask = mask_sources(image, mask=bad, **settings)
    source = {
        "source": f"hst_cosmos_f814w/{name}",
        "upstream": HST_UPSTREAM[name],
        "hdu": 0,
        "mask": {"mask_sources": settings},
    }
    label = "hst-" + name.removesuffix(".fits").replace("_", "-").lower()
    return Prepared(label, image, mask, None, 0.03, source, {"pixel_scale": 0.03})


def prepare_ccd(data_dir: Path) -> tuple[Prepared, object]:
    """The raw SAAO CCD frame reduced by ``load_ccd_frame`` (dequantised, seed 0) and its mask."""
    frame = load_ccd_frame(data_dir / "ground_ccd_saao" / "a8280271.fits", dequantise_seed=0)
    mask = mask_sources(frame.image, mask=frame.bad, **CCD_MASK)
    source = {
        "source": "ground_ccd_saao/a8280271.fits",
        "upstream": CCD_UPSTREAM,
        "hdu": 0,
        "reduction": frame.info,
        "mask": {"mask_sources": CCD_MASK, "also_masked": "the low rows of the reduction"},
    }
    return Prepared("ground-ccd-saao", frame.image, mask, None, float("nan"), source), frame


def hst_sets(data_dir: Path, split: dict | None = None) -> tuple[PatchSet, PatchSet]:
    trains, vals = [], []
    for name in HST_UPSTREAM:
        prep = prepare_hst(data_dir, name)
        # Non-overlapping validation patches only on the GalSim stamp (whose other objects were
        # replaced upstream), so that the scarlet cutouts weigh more in the validation set.
        galsim = name.startswith("galsim")
        train, val = train_val_patches(
            prep.image,
            patch_size=32,
            stride=8,
            val_stride=32 if galsim else 16,
            mask=prep.mask,
            val_at_end=True,
            source=prep.source,
            **(SPLIT if split is None else split),
        )
        trains.append(train)
        vals.append(val)
    return (
        concatenate_patch_sets(trains, notes={"role": "train"}),
        concatenate_patch_sets(vals, notes={"role": "val"}),
    )


def ccd_sets(data_dir: Path, split: dict | None = None) -> tuple[PatchSet, PatchSet, dict]:
    """Training and validation patches of the raw SAAO CCD frame, and the frame-level numbers."""
    prep, frame = prepare_ccd(data_dir)
    mask = prep.mask
    train, val = train_val_patches(
        prep.image,
        patch_size=CCD_PATCH,
        stride=CCD_STRIDE,
        mask=mask,
        val_at_end=True,
        source=prep.source,
        **(SPLIT if split is None else split),
    )
    frame_numbers = {
        "trimmed_shape": list(frame.image.shape),
        "masked_fraction": float(mask.mean()),
        "low_row_fraction": float(frame.bad.mean()),
        "source_masked_fraction": float((mask & ~frame.bad).mean()),
    }
    return train, val, frame_numbers


def _ccd_summary(ps: PatchSet) -> dict:
    """``_summary`` plus what a heavy-tailed set needs: clipped kurtosis, core correlations, tails."""
    out = _summary(ps)
    z = (ps.patches.astype(np.float64) - out["median"]) / out["robust_sigma"]
    core = np.abs(z) < 5
    shape = ps.provenance["sources"][0]["image_shape"]
    covered, canvas = np.zeros(shape, dtype=bool), np.zeros(shape)
    for (_, r, c), patch in zip(ps.positions, z):
        covered[r : r + ps.patch_size, c : c + ps.patch_size] = True
        canvas[r : r + ps.patch_size, c : c + ps.patch_size] = patch
    # Distinct hits: 8-connected groups of pixels above 10 sigma in the area the patches cover.
    _, n_hits = scipy.ndimage.label(covered & (canvas > 10), structure=np.ones((3, 3)))
    out.update(
        distinct_pixels=int(covered.sum()),
        distinct_hits_above_10sigma=int(n_hits),
        excess_kurtosis_clipped_20sigma=round(float(scipy.stats.kurtosis(np.clip(z, -20, 20).ravel())), 4),
        lag1_x_core=round(_lag1_correlation(np.where(core, z, 0.0), core, axis=-1), 4),
        lag1_y_core=round(_lag1_correlation(np.where(core, z, 0.0), core, axis=-2), 4),
        frac_above_5sigma=float(np.mean(z > 5)),
        frac_below_minus5sigma=float(np.mean(z < -5)),
        patches_with_a_pixel_above_10sigma=int(np.sum((z > 10).any(axis=(1, 2)))),
    )
    return out


def psf_and_ring(data_dir: Path) -> tuple[dict, dict, Region]:
    band = data_dir / "jwst_cosmos_web_ring" / "F150W"
    info = json.loads((band / "info.json").read_text())
    psf, _ = load_fits_image(band / "psf.fits")
    psf_provenance = {
        "source": "jwst_cosmos_web_ring/F150W/psf.fits",
        "upstream": JWST_UPSTREAM + "psf.fits",
        "original_sum": float(psf.sum()),
        "note": "divided by original_sum so that it sums to 1",
        "created": utc_now(),
        "package_version": package_version(),
    }
    psf_arrays = {
        "kernel": (psf / psf.sum()).astype(np.float32),
        "pixel_scale": np.float64(info["pixel_scale"]),
        "provenance": np.array(json.dumps(psf_provenance, sort_keys=True)),
    }

    image, bad = load_fits_image(band / "data.fits")
    noise_map, _ = load_fits_image(band / "noise_map.fits")
    extra, _ = load_fits_image(band / "mask_extra_galaxies.fits")
    # The lens galaxy is the brightest pixel near the image centre.
    box = ring_region(image, float(info["pixel_scale"]))
    row, col = box.row0 + RING_BOX // 2, box.col0 + RING_BOX // 2
    ring_provenance = {
        "source": "jwst_cosmos_web_ring/F150W/{data,noise_map,mask_extra_galaxies}.fits",
        "upstream": JWST_UPSTREAM,
        "region": list(box.as_tuple()),
        "lens_peak_pixel": [row, col],
        "redshift_lens": info["redshift_lens"],
        "redshift_source": info["redshift_source"],
        "mask": "mask_extra_galaxies.fits > 0, or non-finite data",
        "created": utc_now(),
        "package_version": package_version(),
    }
    ring_arrays = {
        "data": image[box.slices].astype(np.float32),
        "noise_map": noise_map[box.slices].astype(np.float32),
        "mask": (extra[box.slices] > 0) | bad[box.slices],
        "pixel_scale": np.float64(info["pixel_scale"]),
        "origin": np.array([box.row0, box.col0]),
        "provenance": np.array(json.dumps(ring_provenance, sort_keys=True)),
        "psf_kernel": psf_arrays["kernel"],
        "psf_provenance": psf_arrays["provenance"],
    }
    return psf_arrays, ring_arrays, box


PROVENANCE_TEMPLATE = """\
# Shipped real data

Made by `{command}`, run from the repository root (numpyro-slic {version},
{date}). Load with `numpyro_slic.data.load_shipped(name)`. All pixels are real
observations; the files are compact derived products (float32).

| name | file | what |
|---|---|---|
| `jwst-f150w-sky-val` | jwst_f150w_sky_val.npz | {jwst_val_n} held-out JWST NIRCam F150W sky patches, 64 x 64, region rows/cols {jwst_val_region} |
| `hst-f814w-sky-val` | hst_f814w_sky_val.npz | {hst_val_n} held-out HST ACS F814W sky patches, 32 x 32, from 3 images ({hst_val_counts}) |
| `jwst-f150w-psf` | jwst_f150w_psf.npz | the 31 x 31 F150W PSF, normalised to unit sum (original sum {psf_sum:.4f}), 0.03 arcsec/pixel |
| `cosmos-web-ring-f150w` | cosmos_web_ring_f150w.npz | 128 x 128 F150W cutout around the COSMOS-Web ring (data, noise_map, mask, PSF), rows/cols {ring_region} of the 419 x 419 image |

Sky patches: sources masked with `mask_sources` (photutils segmentation at 3 sigma on the image
smoothed by a 2-pixel FWHM Gaussian, >= 5 connected pixels, detections grown by 4 pixels, 8 on the
GalSim stamp) plus, for JWST, `mask_extra_galaxies.fits` and the ring cutout's box; only patches with
no masked pixel are kept. JWST patches are `(data - background) / noise_map / sigma` (whitened by the
noise map, because its rms changes by 1.4x across the image), HST patches `(data - background) /
sigma`, with background (sigma-clipped median) and sigma (1.4826 MAD) of each image's training band;
all values are in each file's provenance. Each image was split into bands of columns
(`split_regions(shape, 0.3, axis=1, gap=8)`): the shipped validation patches come from the held-out
30% (JWST: the left columns; HST: the right columns), the training patch sets (written to
outputs/patches/, not shipped) from the rest, with an 8-pixel gap between the two.

Measured on the patches (excess kurtosis / lag-1 correlation x, y / |z| > 4 rate over Gaussian):
- jwst-f150w-sky-val: {jwst_val_stats}
- JWST training set ({jwst_train_n} patches): {jwst_train_stats}
- hst-f814w-sky-val: {hst_val_stats}
- HST training set ({hst_train_n} patches): {hst_train_stats}

## Source lines (copied from shared/data/PROVENANCE.md)

jwst_cosmos_web_ring/ (JWST NIRCam, COSMOS-Web)
- What: cutouts around the "COSMOS-Web ring", a galaxy-scale Einstein ring (lens z = 2.0, source
  z = 5.1043 per info.json). Bands F115W and F150W at 0.03 arcsec/pixel (419 x 419), F277W and F444W
  at 0.06 arcsec/pixel (209 x 209). Each band: data.fits (image, float64, no header units),
  noise_map.fits (per-pixel RMS estimate, floored at 0.02 in the data's units), psf.fits (31 x 31),
  mask_extra_galaxies.fits, info.json (pixel scale, redshifts).
- Noise character (measured on masked sky, robust-sigma units): F115W/F150W excess kurtosis about
  +0.5, lag-1 pixel correlation 0.27 to 0.33, |z| > 4 tails about 8x the Gaussian rate, visible
  vertical 1/f striping in F115W. F277W/F444W excess kurtosis +0.7 to +1.1.
- Source: public GitHub repository PyAutoLabs/autolens_assistant (MIT licence, copyright 2025
  James W. Nightingale), commit b75b3757b6e4e9a6effc0fb64f9b51a830fa2305, path
  dataset/imaging/cosmos_web_ring/wavebands/<BAND>/. The underlying JWST data are public archive data
  of the COSMOS-Web survey.

hst_cosmos_f814w/ (HST ACS/WFC F814W, COSMOS field)
- galsim_cosmos_147246_masknoise.fits: 543 x 543 float32 postage stamp, 0.03 arcsec/pixel,
  drizzled (Gaussian kernel, pixfrac 0.8). Its header notes that objects other than the central one
  were masked: part of the sky there may be filled with synthetic noise, so prefer regions far from
  masked objects, and do not treat it as the only HST source. Source: GalSim-developers/GalSim
  (BSD-style licence), commit ee177aa50424dbbc5cec4a71cadd6297109c2aa1,
  examples/data/147246.0_150.416558_1.998697_masknoise.fits. Measured: excess kurtosis +0.11,
  lag-1 correlation 0.44.
- scarlet_Cut_HST.fits, scarlet_Cut_HST1.fits: 250 x 250 float32 COSMOS ACS cutouts with WCS,
  0.03 arcsec/pixel. Source: pmelchior/scarlet (MIT licence, copyright 2018-2022 Fred Moolekamp,
  Peter Melchior), commit 998ca34cf7441bc372280302178de2568990babb, data/test_resampling/.
  Measured: excess kurtosis +0.06/+0.16, lag-1 correlation 0.47 to 0.52.
"""


def _short(s: dict) -> str:
    return (
        f"{s['excess_kurtosis']:+.3f} / {s['lag1_x']:.3f}, {s['lag1_y']:.3f} / {s['tail_ratio_4sigma']:.1f}x "
        f"(robust sigma {s['robust_sigma']:.3f}, median {s['median']:+.3f})"
    )


CCD_BEGIN, CCD_END = "<!-- ground-ccd: begin -->", "<!-- ground-ccd: end -->"
CCD_TEMPLATE = """\
## Ground-based CCD sky (`ground-ccd-sky-val`, `ground-ccd-sky-train`)

Made by `{command}` (numpyro-slic {version}, {date});
`--sets ccd` rewrites only these two files, outputs/patches/ground_ccd_sky_train.npz and this section.

| name | file | what |
|---|---|---|
| `ground-ccd-sky-val` | ground_ccd_sky_val.npz | {val_n} held-out 32 x 32 sky patches (stride 16), columns {val_cols} of the trimmed 520 x 512 frame |
| `ground-ccd-sky-train` | ground_ccd_sky_train.npz | {train_n} training 32 x 32 sky patches (stride 16), columns {train_cols} |

Both are deflate-compressed npz (`save_patch_set(compress=True)`; `load_patch_set` reads them
like the others). The training patches are shipped too (unlike JWST / HST), so that a notebook can
train the CCD noise model from the installed package alone.

Reduction of the raw frame (`load_ccd_frame`, `numpyro_slic/data/ccd.py`):
1. The int16 data (BITPIX 16, BZERO 32768, i.e. unsigned ADU) are read as float64 before any
   arithmetic.
2. Overscan: BIASSEC {biassec} ({overscan_cols} columns). Its per-row means scatter by {row_scatter:.3f} ADU
   where the overscan's own pixel noise (robust sigma {overscan_sigma:.3f} ADU) predicts {row_expected:.3f}
   (variance ratio {variance_ratio:.2f}; `overscan_level(method="auto")` picks "{overscan_method}"): the rows
   agree, so one constant, the median of the overscan, {bias:.1f} ADU, is subtracted (a per-row
   median of {overscan_cols} pixels would add a {row_median_noise:.2f}-ADU stripe to every row).
3. Trim to TRIMSEC {trimsec}: 520 rows x 512 columns.
4. Dequantisation: uniform(-0.5, 0.5) ADU added (seed 0), so that the integer ADU (a step of
   {adu_step:.3f} in the patches' units, larger than the 0.01 noise level at which score nets are
   trained) become a continuous variable that a density model can fit; it adds 1/12 ADU^2 of
   variance ({dequant_var:.2%} of the sky's). Rounding `patch * sigma + background + bias` gives
   the raw integers back.
5. Low rows: rows whose median lies more than 5 robust pixel sigmas below the median row
   (`find_low_rows`): rows {low_rows} (0-based, trimmed frame; they read about 3 ADU above the
   bias, i.e. no sky), masked whole.
6. Sources: `mask_sources` on the reduced frame with the settings above plus `median_filter=5`
   (stars found on the 5 x 5 median-filtered image, so cosmic rays and hot pixels, which are
   narrower, are not masked as sources; the stars' masks are grown by 4 pixels).
   Masked: {masked:.2%} of the trimmed frame ({low:.2%} low rows, {sources:.2%} sources).
   Cosmic rays and hot pixels are kept: they are the noise's heavy tail.
7. `train_val_patches` with `split_regions(shape, 0.3, axis=1, gap=8)`: validation = the right
   30% of the columns, training = the left part, 8 columns between them; only patches with no
   masked pixel; units `(image - background) / sigma` with background {background:.3f} ADU
   (sigma-clipped median) and sigma {sigma:.3f} ADU (1.4826 MAD) of the training band's kept sky.

Measured on the shipped patches (overlapping patches: pixels counted once per patch; z about
the set's own median and robust sigma):

| | val | train |
|---|---|---|
| patches / distinct pixels | {val_n} / {val_pix} | {train_n} / {train_pix} |
| excess kurtosis (all pixels / clipped at +-20) | {val_kurt:.0f} / {val_kurt20:.1f} | {train_kurt:.0f} / {train_kurt20:.1f} |
| rate of \\|z\\| > 3, 4, 5 over the Gaussian rate | {val_t3:.2f}x, {val_t4:.1f}x, {val_t5:.0f}x | {train_t3:.2f}x, {train_t4:.1f}x, {train_t5:.0f}x |
| fraction z > +5 / z < -5 | {val_hi:.1e} / {val_lo:.1e} | {train_hi:.1e} / {train_lo:.1e} |
| lag-1 correlation x, y (all pixels) | {val_lx:.3f}, {val_ly:.3f} | {train_lx:.3f}, {train_ly:.3f} |
| lag-1 correlation x, y (\\|z\\| < 5) | {val_lxc:.3f}, {val_lyc:.3f} | {train_lxc:.3f}, {train_lyc:.3f} |
| patches with a pixel above 10 sigma / distinct hits | {val_cr} / {val_hits} | {train_cr} / {train_hits} |
| robust sigma / median | {val_rs:.3f} / {val_med:+.3f} | {train_rs:.3f} / {train_med:+.3f} |

The Gaussian core is white and isotropic (lag-1 about 0.01 both ways). The all-pixel numbers are
set by a few cosmic-ray / hot-pixel hits (kurtosis and lag-1 change severalfold between the two
sets): the validation set's lag-1 y of 0.17 comes from one vertical 3-pixel hit (0.04 without the
4 patches that hold it). So few hits cannot show whether the tail is symmetric under flips and rotations (charge-transfer trails follow
the readout direction), so none are used by default. With 5 x 5 median-filtered detection, 16 of
the frame's 18 sharp hits above 10 sigma stay unmasked; the other 2 (around (122, 324) and
(263, 126), with 9 and 4 pixels above 10 sigma) survive the filter and are masked as sources.

Source (copied from shared/data/PROVENANCE.md): ground_ccd_saao/a8280271.fits, one raw, unreduced
150 s frame (object "rf0420", 2013-07-13) from the STE3 CCD on the SAAO 1.0 m telescope, 536 x 520
int16 with overscan (header BIASSEC [4:13, 1:520], TRIMSEC [17:528, 1:520]; GAIN 1.9, RDNOISE
5.0). Public GitHub repository astropy/ccdproc (BSD 3-clause licence, copyright 2011-2025
Astropy-ccdproc Developers), commit 5e7e21d472a5038a359f3fc5b9ccfa89f0f1ae7f, path
ccdproc/tests/data/a8280271.fits.
"""


def ccd_section(train: PatchSet, val: PatchSet, frame: dict, summary: dict) -> str:
    src = val.provenance["sources"][0]
    red = src["reduction"]
    ov = red["overscan"]
    t, v = summary["ground_ccd_sky_train"], summary["ground_ccd_sky_val"]

    def cols(ps):
        region = ps.provenance["sources"][0]["region"]
        return f"{region[2]}..{region[3] - 1}"

    fields = dict(
        command=CCD_COMMAND,
        version=package_version(),
        date=utc_now()[:10],
        val_n=len(val),
        train_n=len(train),
        val_cols=cols(val),
        train_cols=cols(train),
        biassec=red["biassec"].replace(" ", ""),
        trimsec=red["trimsec"].replace(" ", ""),
        overscan_cols=ov["overscan_columns"],
        row_scatter=ov["row_mean_scatter"],
        overscan_sigma=ov["overscan_robust_sigma"],
        row_expected=ov["row_mean_scatter_expected_from_noise"],
        variance_ratio=ov["variance_ratio"],
        bias=ov["constant_level"],
        overscan_method=ov["method"],
        row_median_noise=1.2533 * ov["overscan_robust_sigma"] / np.sqrt(ov["overscan_columns"]),
        adu_step=1.0 / src["sigma"],
        dequant_var=(1 / 12) / src["sigma"] ** 2,
        low_rows=f"{red['low_rows'][0]}..{red['low_rows'][-1]}" if red["low_rows"] else "none",
        masked=frame["masked_fraction"],
        low=frame["low_row_fraction"],
        sources=frame["source_masked_fraction"],
        background=src["background"],
        sigma=src["sigma"],
    )
    for prefix, s in (("val", v), ("train", t)):
        fields.update(
            {
                f"{prefix}_pix": s["distinct_pixels"],
                f"{prefix}_kurt": s["excess_kurtosis"],
                f"{prefix}_kurt20": s["excess_kurtosis_clipped_20sigma"],
                f"{prefix}_t3": s["tail_ratio_3sigma"],
                f"{prefix}_t4": s["tail_ratio_4sigma"],
                f"{prefix}_t5": s["tail_ratio_5sigma"],
                f"{prefix}_hi": s["frac_above_5sigma"],
                f"{prefix}_lo": s["frac_below_minus5sigma"],
                f"{prefix}_lx": s["lag1_x"],
                f"{prefix}_ly": s["lag1_y"],
                f"{prefix}_lxc": s["lag1_x_core"],
                f"{prefix}_lyc": s["lag1_y_core"],
                f"{prefix}_cr": s["patches_with_a_pixel_above_10sigma"],
                f"{prefix}_hits": s["distinct_hits_above_10sigma"],
                f"{prefix}_rs": s["robust_sigma"],
                f"{prefix}_med": s["median"],
            }
        )
    return f"{CCD_BEGIN}\n{CCD_TEMPLATE.format(**fields)}{CCD_END}\n"


def ccd_fits_cutout(data_dir: Path, out: Path) -> dict:
    """Writes the raw CCD frame's corner (overscan included) as a small FITS file; returns its numbers."""
    from astropy.io import fits

    source = data_dir / "ground_ccd_saao" / "a8280271.fits"
    with fits.open(source, memmap=False) as hdul:
        header, data = hdul[0].header, np.asarray(hdul[0].data)  # uint16 (BZERO 32768 applied)
    if data.dtype != np.uint16 or data.shape != (520, 536):
        raise ValueError(f"{source}: expected the 520 x 536 uint16 raw frame, got {data.shape} {data.dtype}")
    cut = np.ascontiguousarray(data[:CCD_FITS_ROWS, :CCD_FITS_COLS])
    hdu = fits.PrimaryHDU(cut)  # uint16 is stored as BITPIX 16 with BZERO 32768, as the original
    for key in CCD_FITS_KEYS:
        hdu.header[key] = (header[key], header.comments[key])
    hdu.header["BIASSEC"] = (f"[4:13,1:{CCD_FITS_ROWS}]", "Overscan region")
    hdu.header["TRIMSEC"] = (f"[17:{CCD_FITS_COLS},1:{CCD_FITS_ROWS}]", "Useful part of data")
    hdu.header["ORIGFILE"] = ("a8280271.fits", "raw frame this cutout was cut from")
    hdu.header["ORIGSEC"] = (f"[1:{CCD_FITS_COLS},1:{CCD_FITS_ROWS}]", "cutout's pixels in the raw frame")
    hdu.header["COMMENT"] = "Cutout made by " + CCD_FITS_COMMAND + " (numpyro-slic)."
    hdu.header["COMMENT"] = "Upstream: " + CCD_UPSTREAM
    tmp = out.with_name(out.name + ".tmp")
    hdu.writeto(tmp, overwrite=True, checksum=True)
    tmp.replace(out)
    with fits.open(out, memmap=False) as check:
        if not np.array_equal(np.asarray(check[0].data), cut):
            raise RuntimeError(f"{out}: the written cutout does not read back as the raw pixels")
    return {"shape": list(cut.shape), "bytes": out.stat().st_size, "min": int(cut.min()), "max": int(cut.max()),
            "date": utc_now()[:10], "version": package_version()}


CCD_FITS_BEGIN, CCD_FITS_END = "<!-- ground-ccd-fits: begin -->", "<!-- ground-ccd-fits: end -->"
CCD_FITS_TEMPLATE = """
## Raw CCD FITS cutout (`ground-ccd-fits`)

Made by `{command}` (numpyro-slic {version}, {date}); `--sets ccd-fits` rewrites only this file and
this section. `shipped_path("ground-ccd-fits")` (or `load_shipped("ground-ccd-fits")`) returns its
path; notebooks/04_train_your_own_noise_model.ipynb reduces it with `load_ccd_frame`.

| name | file | what |
|---|---|---|
| `ground-ccd-fits` | {name} | rows 1..{rows}, columns 1..{cols} (1-based) of the raw frame below, as stored: {rows} x {cols} int16 with BZERO 32768 (unsigned ADU {lo}..{hi}), {nbytes} bytes |

The pixels are the raw frame's, unchanged (no reduction, no dequantisation). The cutout keeps the
prescan (columns 1..3), the 10 overscan columns and the first {exposed} exposed columns, so the
header's sections are rewritten for it: BIASSEC [4:13,1:{rows}], TRIMSEC [17:{cols},1:{rows}]
(the raw frame's were [4:13,1:520] and [17:528,1:520]). Copied from the raw header: {keys}.
Added: ORIGFILE, ORIGSEC [1:{cols},1:{rows}], COMMENT cards naming this command and the upstream
file, and CHECKSUM / DATASUM. The exposed part is columns 0..{exposed_last} and rows 0..{rows_last}
(0-based) of the trimmed 520 x 512 frame, so it overlaps the training band of
`ground-ccd-sky-train` (columns 0..352), not the held-out `ground-ccd-sky-val` (columns 361..511).

Source: ground_ccd_saao/a8280271.fits (the raw frame of the section above). Public GitHub
repository astropy/ccdproc (BSD 3-clause licence, copyright 2011-2025 Astropy-ccdproc Developers),
commit 5e7e21d472a5038a359f3fc5b9ccfa89f0f1ae7f, path ccdproc/tests/data/a8280271.fits.
"""


def ccd_fits_section(info: dict) -> str:
    text = CCD_FITS_TEMPLATE.format(
        command=CCD_FITS_COMMAND, version=info["version"], date=info["date"], name=CCD_FITS_NAME,
        rows=CCD_FITS_ROWS, cols=CCD_FITS_COLS, lo=info["min"], hi=info["max"], nbytes=info["bytes"],
        exposed=CCD_FITS_COLS - 16, exposed_last=CCD_FITS_COLS - 17, rows_last=CCD_FITS_ROWS - 1,
        keys=", ".join(CCD_FITS_KEYS))
    return f"{CCD_FITS_BEGIN}{text}{CCD_FITS_END}\n"


BANDS_BEGIN, BANDS_END = "<!-- jwst-bands: begin -->", "<!-- jwst-bands: end -->"
BANDS_COMMAND = COMMAND + " --sets bands"
BANDS_TEMPLATE = """
## The other JWST bands (`jwst-f115w-sky-val`, `jwst-f150w-smoothed-sky-val`, `jwst-f277w-sky-val`, `jwst-f444w-sky-val`)

Made by `{command}` (numpyro-slic {version}, {date}); `--sets bands` rewrites only these four
files, outputs/patches/jwst_{{f115w,f150w_smoothed,f277w,f444w}}_sky_train.npz and this section.
Why these choices, and the noise of every source: docs/noise_sources.md (`benchmarks/noise_survey.py`).

| name | file | what |
|---|---|---|
{rows}

Same preparation as the F150W sets above (`mask_sources` with the same settings,
`mask_extra_galaxies.fits`, the ring's box kept out: {ring_boxes}; columns split with
`split_regions(shape, 0.3, axis=1, gap=8)`, validation = the left columns, training = the rest),
except the whitening, which the upstream noise maps do not allow as they are:
- F115W, and F150W in `jwst-f150w-smoothed-sky-val`: `(data - background) / median_filter(noise_map,
  {median})`. These noise maps hold each pixel's own Poisson term (its square grows with the
  pixel's data value), and dividing sky by them skews the noise negative (docs/noise_sources.md);
  the median-filtered map keeps the depth structure (the step near row 282) without it. The
  smoothed F150W sets hold the windows of the F150W sets above (same masks, split and stride),
  whitened like F115W's, so that the short-wavelength pair is pooled under one whitening
  (`jwst-nircam-sw`).
- F277W, F444W (0.06 arcsec/pixel, 209 x 209): their noise maps sit at the floor 0.02 over
  {floors} of the pixels, {floor_over_sky} the sky's robust sigma, so they cannot whiten. The
  sky's rms steps once between rows, found by `noise_step_map(data, mask, axis=0)`: {steps}.
  The patches are `(data - background) / step map / sigma`.

Measured on the patches (excess kurtosis / lag-1 correlation x, y / |z| > 4 rate over Gaussian;
z about each set's own median and robust sigma):
{stats}

Source lines (copied from shared/data/PROVENANCE.md): jwst_cosmos_web_ring/ (JWST NIRCam,
COSMOS-Web), bands F115W, F150W, F277W, F444W. Public GitHub repository PyAutoLabs/autolens_assistant (MIT
licence, copyright 2025 James W. Nightingale), commit b75b3757b6e4e9a6effc0fb64f9b51a830fa2305, path
dataset/imaging/cosmos_web_ring/wavebands/<BAND>/ (data.fits, noise_map.fits,
mask_extra_galaxies.fits, info.json). F115W and F150W at 0.03 arcsec/pixel (419 x 419), F277W and F444W at
0.06 arcsec/pixel (209 x 209). The underlying JWST data are public archive data of the COSMOS-Web
survey.
"""


def bands_section(sets: dict[str, tuple[PatchSet, PatchSet]], summary: dict) -> str:
    rows, boxes, floors, floor_over, steps, stats = [], [], [], [], [], []
    for stem, (train, val) in sets.items():
        band, whitening = BAND_SETS[stem]
        src = val.provenance["sources"][0]
        size, stride = val.patch_size, src["stride"]
        region = src["region"]
        rows.append(
            f"| `jwst-{stem.replace('_', '-')}-sky-val` | jwst_{stem}_sky_val.npz | {len(val)} held-out JWST NIRCam "
            f"{band} sky patches ({whitening} whitening), {size} x {size} (stride {stride}), "
            f"columns {region[2]}..{region[3] - 1} of the "
            f"{src['image_shape'][0]} x {src['image_shape'][1]} image; training: {len(train)} patches, columns "
            f"{train.provenance['sources'][0]['region'][2]}..{train.provenance['sources'][0]['region'][3] - 1} |"
        )
        boxes.append(f"{band} {src['mask']['also_masked'].split('(rows, cols) ')[1]}")
        if "noise_step" in src:
            st = src["noise_step"]
            floor_over.append(f"{0.02 / st['sigma_after']:.1f} to {0.02 / st['sigma_before']:.1f} times ({band})")
            steps.append(f"{band} at row {st['index']}, {st['sigma_before']:.5f} above it and {st['sigma_after']:.5f} "
                         f"from it on (ratio {st['ratio']:.3f})")
        for role, ps in (("val", val), ("train", train)):
            key = f"jwst_{stem}_sky_{role}"
            stats.append(f"- {key} ({len(ps)} patches): {_short(summary[key])}")
        if whitening == "step":
            floors.append(f"{summary[f'jwst_{stem}_noise_map_floor_fraction']:.1%} ({band})")
    text = BANDS_TEMPLATE.format(
        command=BANDS_COMMAND, version=package_version(), date=utc_now()[:10], rows="\n".join(rows),
        ring_boxes="; ".join(boxes), median=NOISE_MAP_MEDIAN, floors=" and ".join(floors) or "most",
        floor_over_sky=" and ".join(floor_over) or "several times",
        steps="; ".join(steps) or "none", stats="\n".join(stats))
    return f"{BANDS_BEGIN}{text}{BANDS_END}\n"


def _existing_section(path: Path, begin: str = CCD_BEGIN, end: str = CCD_END) -> str:
    """The section between ``begin`` and ``end`` of an existing PROVENANCE.md ('' if none)."""
    if not path.is_file():
        return ""
    text = path.read_text()
    if begin not in text or end not in text:
        return ""
    return text[text.index(begin) : text.index(end) + len(end)] + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="the shared/data folder")
    parser.add_argument("--shipped-out", type=Path, default=Path("numpyro_slic/data/shipped"))
    parser.add_argument("--train-out", type=Path, default=Path("outputs/patches"))
    parser.add_argument(
        "--sets",
        nargs="+",
        choices=["space", "bands", "ccd", "ccd-fits"],
        default=["space", "bands", "ccd", "ccd-fits"],
        help="space: the JWST F150W / HST sets, PSF and ring cutout; bands: the JWST F115W, F277W and "
        "F444W sets; ccd: the ground-based CCD sets; ccd-fits: the raw CCD FITS cutout",
    )
    args = parser.parse_args(argv)
    args.shipped_out.mkdir(parents=True, exist_ok=True)
    args.train_out.mkdir(parents=True, exist_ok=True)
    provenance_path = args.shipped_out / "PROVENANCE.md"
    stats_path = args.train_out / "stats.json"
    summary = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    # The sections after the main text, each rewritten only by its own --sets entry.
    sections = {key: _existing_section(provenance_path, begin, end)
                for key, (begin, end) in (("ccd", (CCD_BEGIN, CCD_END)),
                                          ("ccd-fits", (CCD_FITS_BEGIN, CCD_FITS_END)),
                                          ("bands", (BANDS_BEGIN, BANDS_END)))}
    old_sections = dict(sections)

    if "ccd" in args.sets:
        ccd_train, ccd_val, ccd_frame = ccd_sets(args.data_dir)
        save_patch_set(args.shipped_out / "ground_ccd_sky_val.npz", ccd_val, compress=True)
        save_patch_set(args.shipped_out / "ground_ccd_sky_train.npz", ccd_train, compress=True)
        save_patch_set(args.train_out / "ground_ccd_sky_train.npz", ccd_train)
        summary["ground_ccd_sky_val"] = _ccd_summary(ccd_val)
        summary["ground_ccd_sky_train"] = _ccd_summary(ccd_train)
        summary["ground_ccd_frame"] = ccd_frame
        sections["ccd"] = ccd_section(ccd_train, ccd_val, ccd_frame, summary)
    if "ccd-fits" in args.sets:
        fits_info = ccd_fits_cutout(args.data_dir, args.shipped_out / CCD_FITS_NAME)
        summary["ground_ccd_fits"] = {k: v for k, v in fits_info.items() if k not in ("date", "version")}
        sections["ccd-fits"] = ccd_fits_section(fits_info)
    if "bands" in args.sets:
        band_patch_sets = {}
        for stem, (band, whitening) in BAND_SETS.items():
            train, val = band_sets(args.data_dir, band, whitening)
            save_patch_set(args.shipped_out / f"jwst_{stem}_sky_val.npz", val)
            save_patch_set(args.train_out / f"jwst_{stem}_sky_train.npz", train)
            summary[f"jwst_{stem}_sky_val"] = _summary(val)
            summary[f"jwst_{stem}_sky_train"] = _summary(train)
            if whitening == "step":
                noise_map, _ = load_fits_image(args.data_dir / "jwst_cosmos_web_ring" / band / "noise_map.fits")
                summary[f"jwst_{stem}_noise_map_floor_fraction"] = float(np.mean(noise_map <= 0.02 * (1 + 1e-6)))
            band_patch_sets[stem] = (train, val)
        sections["bands"] = bands_section(band_patch_sets, summary)

    if "space" not in args.sets:
        stats_path.write_text(json.dumps(summary, indent=2) + "\n")
        text = provenance_path.read_text() if provenance_path.is_file() else ""
        for key, new in sections.items():
            old = old_sections[key]
            if new and new != old:
                text = text.replace(old, new) if old else text.rstrip("\n") + "\n\n" + new
        provenance_path.write_text(text)
        print(json.dumps({k: v for k, v in summary.items() if not k.startswith(("jwst_f150w", "hst_"))}, indent=2))
        return

    psf_arrays, ring_arrays, ring_box = psf_and_ring(args.data_dir)
    jwst_train, jwst_val = jwst_sets(args.data_dir, ring_box)
    hst_train, hst_val = hst_sets(args.data_dir)

    save_patch_set(args.shipped_out / "jwst_f150w_sky_val.npz", jwst_val)
    save_patch_set(args.shipped_out / "hst_f814w_sky_val.npz", hst_val)
    atomic_savez(args.shipped_out / "jwst_f150w_psf.npz", **psf_arrays)
    atomic_savez(args.shipped_out / "cosmos_web_ring_f150w.npz", **ring_arrays)
    save_patch_set(args.train_out / "jwst_f150w_sky_train.npz", jwst_train)
    save_patch_set(args.train_out / "hst_f814w_sky_train.npz", hst_train)

    summary.update(
        {
            "jwst_f150w_sky_val": _summary(jwst_val),
            "jwst_f150w_sky_train": _summary(jwst_train),
            "hst_f814w_sky_val": _summary(hst_val),
            "hst_f814w_sky_train": _summary(hst_train),
        }
    )
    stats_path.write_text(json.dumps(summary, indent=2) + "\n")
    provenance_md = PROVENANCE_TEMPLATE.format(
        command=COMMAND,
        version=package_version(),
        date=utc_now()[:10],
        jwst_val_n=len(jwst_val),
        jwst_val_region=jwst_val.provenance["sources"][0]["region"],
        hst_val_n=len(hst_val),
        hst_val_counts=", ".join(
            f"{s['source'].split('/')[-1]}: {s['n_patches']}" for s in hst_val.provenance["sources"]
        ),
        psf_sum=json.loads(str(psf_arrays["provenance"]))["original_sum"],
        ring_region=list(ring_box.as_tuple()),
        jwst_val_stats=_short(summary["jwst_f150w_sky_val"]),
        jwst_train_n=len(jwst_train),
        jwst_train_stats=_short(summary["jwst_f150w_sky_train"]),
        hst_val_stats=_short(summary["hst_f814w_sky_val"]),
        hst_train_n=len(hst_train),
        hst_train_stats=_short(summary["hst_f814w_sky_train"]),
    )
    provenance_path.write_text(provenance_md + "".join("\n" + t for t in sections.values() if t))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
