"""Builds the real data shipped in numpyro_slic/data/shipped/ and the matching training patch sets.

Run from the repository root (takes about ten seconds):

    python scripts/make_shipped_data.py ../shared/data

which writes

    numpyro_slic/data/shipped/   jwst_f150w_sky_val.npz, hst_f814w_sky_val.npz, jwst_f150w_psf.npz,
                                 cosmos_web_ring_f150w.npz, PROVENANCE.md      (package data)
    outputs/patches/             jwst_f150w_sky_train.npz, hst_f814w_sky_train.npz, stats.json

The first argument is the ``shared/data`` folder described by its PROVENANCE.md; ``--shipped-out`` and
``--train-out`` change the two output folders. Validation (shipped) and training patches come from
disjoint bands of each image (``split_regions`` with an 8-pixel gap, about 3x the noise's correlation
length), and no JWST sky patch touches the shipped ring cutout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from numpyro_slic.data import (
    PatchSet,
    Region,
    concatenate_patch_sets,
    load_fits_image,
    mask_sources,
    noise_statistics,
    save_patch_set,
    train_val_patches,
)
from numpyro_slic.data.io import atomic_savez
from numpyro_slic.data.patchset import package_version, utc_now

JWST_UPSTREAM = (
    "PyAutoLabs/autolens_assistant (MIT licence, copyright 2025 James W. Nightingale), commit "
    "b75b3757b6e4e9a6effc0fb64f9b51a830fa2305, dataset/imaging/cosmos_web_ring/wavebands/F150W/"
)
HST_UPSTREAM = {
    "galsim_cosmos_147246_masknoise.fits": "GalSim-developers/GalSim (BSD-style licence), commit "
    "ee177aa50424dbbc5cec4a71cadd6297109c2aa1, examples/data/147246.0_150.416558_1.998697_masknoise.fits",
    "scarlet_Cut_HST.fits": "pmelchior/scarlet (MIT licence), commit "
    "998ca34cf7441bc372280302178de2568990babb, data/test_resampling/Cut_HST.fits",
    "scarlet_Cut_HST1.fits": "pmelchior/scarlet (MIT licence), commit "
    "998ca34cf7441bc372280302178de2568990babb, data/test_resampling/Cut_HST1.fits",
}
COMMAND = "python scripts/make_shipped_data.py ../shared/data"

# Split settings shared by both noise models: 30% of the columns held out, 8-pixel gap.
SPLIT = dict(val_fraction=0.3, axis=1, gap=8)
RING_BOX = 128  # side of the shipped ring cutout, pixels
# Source masking (mask_sources) settings; the GalSim stamp gets a wider margin (see hst_sets).
MASK = dict(method="segmentation", nsigma=3.0, npixels=5, dilate=4, smooth_fwhm=2.0)


def _summary(ps: PatchSet) -> dict:
    stats = noise_statistics(ps.patches)
    return {"n_patches": len(ps), "patch_size": ps.patch_size, **{k: round(v, 4) for k, v in stats.items()}}


def jwst_sets(data_dir: Path, ring_box: Region) -> tuple[PatchSet, PatchSet]:
    band = data_dir / "jwst_cosmos_web_ring" / "F150W"
    image, bad = load_fits_image(band / "data.fits")
    noise_map, _ = load_fits_image(band / "noise_map.fits")
    extra, _ = load_fits_image(band / "mask_extra_galaxies.fits")
    mask = mask_sources(image, mask=bad | (extra > 0), **MASK)
    # The ring's cutout is a fit target: keep its pixels (noise included) out of every patch set.
    mask[ring_box.slices] = True
    source = {
        "source": "jwst_cosmos_web_ring/F150W/data.fits",
        "upstream": JWST_UPSTREAM + "data.fits",
        "hdu": 0,
        "noise_map": "jwst_cosmos_web_ring/F150W/noise_map.fits",
        "mask": {
            "mask_sources": MASK,
            "also_masked": "mask_extra_galaxies.fits > 0; the ring cutout box (rows, cols) "
            f"{list(ring_box.as_tuple())}",
        },
    }
    # noise_map whitening: the noise rms jumps by 1.4x across the image (rows > ~287 are noisier);
    # pooling both levels unwhitened fakes excess kurtosis (a scale mixture).
    return train_val_patches(
        image,
        patch_size=64,
        stride=8,
        mask=mask,
        noise_map=noise_map,
        val_at_end=False,
        source=source,
        **SPLIT,
    )


def hst_sets(data_dir: Path) -> tuple[PatchSet, PatchSet]:
    trains, vals = [], []
    for name, upstream in HST_UPSTREAM.items():
        image, bad = load_fits_image(data_dir / "hst_cosmos_f814w" / name)
        # The GalSim stamp had its other objects masked (replaced) upstream: keep a wider margin
        # around every detection there, and hold out non-overlapping patches only, so that the
        # scarlet cutouts weigh more in the validation set.
        galsim = name.startswith("galsim")
        settings = (MASK | {"dilate": 8}) if galsim else MASK
        mask = mask_sources(image, mask=bad, **settings)
        source = {
            "source": f"hst_cosmos_f814w/{name}",
            "upstream": upstream,
            "hdu": 0,
            "mask": {"mask_sources": settings},
        }
        train, val = train_val_patches(
            image,
            patch_size=32,
            stride=8,
            val_stride=32 if galsim else 16,
            mask=mask,
            val_at_end=True,
            source=source,
            **SPLIT,
        )
        trains.append(train)
        vals.append(val)
    return (
        concatenate_patch_sets(trains, notes={"role": "train"}),
        concatenate_patch_sets(vals, notes={"role": "val"}),
    )


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
    h, w = image.shape
    centre_box = image[h // 2 - 20 : h // 2 + 21, w // 2 - 20 : w // 2 + 21]
    dr, dc = np.unravel_index(np.argmax(centre_box), centre_box.shape)
    row, col = h // 2 - 20 + int(dr), w // 2 - 20 + int(dc)
    box = Region(row - RING_BOX // 2, row + RING_BOX // 2, col - RING_BOX // 2, col + RING_BOX // 2)
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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="the shared/data folder")
    parser.add_argument("--shipped-out", type=Path, default=Path("numpyro_slic/data/shipped"))
    parser.add_argument("--train-out", type=Path, default=Path("outputs/patches"))
    args = parser.parse_args(argv)
    args.shipped_out.mkdir(parents=True, exist_ok=True)
    args.train_out.mkdir(parents=True, exist_ok=True)

    psf_arrays, ring_arrays, ring_box = psf_and_ring(args.data_dir)
    jwst_train, jwst_val = jwst_sets(args.data_dir, ring_box)
    hst_train, hst_val = hst_sets(args.data_dir)

    save_patch_set(args.shipped_out / "jwst_f150w_sky_val.npz", jwst_val)
    save_patch_set(args.shipped_out / "hst_f814w_sky_val.npz", hst_val)
    atomic_savez(args.shipped_out / "jwst_f150w_psf.npz", **psf_arrays)
    atomic_savez(args.shipped_out / "cosmos_web_ring_f150w.npz", **ring_arrays)
    save_patch_set(args.train_out / "jwst_f150w_sky_train.npz", jwst_train)
    save_patch_set(args.train_out / "hst_f814w_sky_train.npz", hst_train)

    summary = {
        "jwst_f150w_sky_val": _summary(jwst_val),
        "jwst_f150w_sky_train": _summary(jwst_train),
        "hst_f814w_sky_val": _summary(hst_val),
        "hst_f814w_sky_train": _summary(hst_train),
    }
    (args.train_out / "stats.json").write_text(json.dumps(summary, indent=2) + "\n")
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
    (args.shipped_out / "PROVENANCE.md").write_text(provenance_md)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
