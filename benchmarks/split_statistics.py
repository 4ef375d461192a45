"""Is each source's held-out band distributed like its training band? And what does an exact
non-Gaussian backbone gain over the stationary Gaussian there?

The fidelity targets of issue 11 ask generated noise to match the *held-out* sky's tails within
25%. A model can only learn the training band, so this script measures how far the two bands differ,
for every source: excess kurtosis and |z| > 3, 4, 5 rates (each set's own median and robust sigma)
on distinct (non-overlapping) crops (16 x 16 for JWST, 32 x 32 otherwise) of the training and
held-out patches. Beside it, the held-out NLL per pixel of a ``CorrelatedMixtureBackbone`` (4
components; an exact density, no net) and of the stationary Gaussian, both fitted to the training
patches, on the held-out crops perturbed once at the level the shipped models' t_min gives (sigma
0.0101), with paired bootstrap errors, and the same statistics of the backbone's exact draws
(``CorrelatedMixtureBackbone.sample``, as many crops as the training band has). The excess kurtosis
is also given with each crop in units of its own median and robust sigma, which takes out what an
rms variation across a band adds.

Sets: the JWST bands whitened as ``scripts/make_shipped_data.py`` whitens them, F150W both ways
(the shipped "noise_map" whitening, and "smoothed", which removes the pixel's own Poisson term,
docs/noise_sources.md finding 1), HST F814W, and the ground CCD. Reads the raw data folder (the
patch sets take seconds to cut), writes JSON:

    python benchmarks/split_statistics.py ../shared/data --out benchmarks/results/split_statistics.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import make_shipped_data as shipped  # noqa: E402

from numpyro_slic.data.io import atomic_write_json  # noqa: E402
from numpyro_slic.noise import fidelity  # noqa: E402
from numpyro_slic.noise.backbones import CorrelatedMixtureBackbone  # noqa: E402

SIGMA = 0.0101  # the shipped models' t_min level, trained units (docs/noise_validation.md)


def jwst_f150w(data_dir: Path, whitening: str):
    prep = shipped.prepare_jwst(data_dir, "F150W", whitening=whitening)
    return shipped.train_val_patches(prep.image, patch_size=64, stride=8, mask=prep.mask,
                                     noise_map=prep.noise_map, val_at_end=False, source=prep.source,
                                     **shipped.SPLIT)


def compare(train, val, crop: int, components: int = 4) -> dict:
    """Statistics of both bands' distinct crops and the held-out NLL of backbone and Gaussian."""
    tr, _ = fidelity.distinct_crops(train.patches, train.positions, crop)
    va, _ = fidelity.distinct_crops(val.patches, val.positions, crop)
    # One unit for both bands: the training band's robust sigma (as a trained model's scale).
    scale = fidelity.pixel_statistics(tr, n_boot=2)["robust_sigma"]
    tr, va = tr / scale, va / scale
    stats = {"train": fidelity.pixel_statistics(tr), "val": fidelity.pixel_statistics(va)}
    # Each crop in units of its own median and robust sigma: kurtosis that a depth (rms) variation
    # across the band would add is gone from this one.
    for band, crops in (("train", tr), ("val", va)):
        flat = crops.reshape(len(crops), -1)
        med = np.median(flat, axis=1, keepdims=True)
        own = (flat - med) / (1.4826 * np.median(np.abs(flat - med), axis=1, keepdims=True))
        stats[band]["excess_kurtosis_crop_normalised"] = float(scipy.stats.kurtosis(own.ravel()))
    keys = ["excess_kurtosis"] + [f"tail_{s}sigma_over_gaussian" for s in (3, 4, 5)]
    extra = ["excess_kurtosis_se", "median", "robust_sigma"] + [f"tail_{s}sigma_count" for s in (3, 4, 5)]
    ratio = {k: stats["val"][k] / stats["train"][k] if stats["train"][k] else float("nan") for k in keys}
    y = fidelity.perturb_once(va, SIGMA, 0)
    gauss, how = fidelity.gaussian_baseline(tr, (crop, crop))
    g_nll = fidelity.gaussian_nll_per_pixel(gauss, y, SIGMA)
    backbone = CorrelatedMixtureBackbone.from_patches(tr, components)
    b_nll = np.asarray(jax.jit(jax.vmap(lambda u: backbone.energy(u, SIGMA)))(jnp.asarray(y)), np.float64)
    # Exact draws of the backbone on the training crops' grid, as many pixels as the training band:
    # the tails the backbone alone believes in.
    draws = np.asarray(backbone.sample(jax.random.key(0), (crop, crop), n=len(tr)), np.float64)
    stats["backbone draws"] = fidelity.pixel_statistics(draws)
    return {
        "crop": crop,
        "scale": scale,
        "n_crops": {"train": len(tr), "val": len(va)},
        **{band: {k: stats[band][k] for k in keys + extra} for band in ("train", "val", "backbone draws")},
        "excess_kurtosis_crop_normalised": {band: stats[band]["excess_kurtosis_crop_normalised"]
                                            for band in ("train", "val")},
        "val_over_train": ratio,
        "nll": {"sigma": SIGMA, "gaussian": how,
                "backbone": f"CorrelatedMixtureBackbone.from_patches(train, {components}), exact",
                **fidelity.paired_bootstrap(b_nll / crop**2, g_nll)},
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/split_statistics.json"))
    args = parser.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    start = time.perf_counter()
    # Crops: 16 x 16 for JWST (its held-out bands hold 12 (F150W) to 2 (F277W) distinct 32 x 32 crops,
    # too few for a bootstrap; the fidelity runs use 16 too), 32 x 32 for HST and the CCD.
    sets = {
        "jwst-f150w (noise_map, shipped)": (jwst_f150w(args.data_dir, "noise_map"), 16),
        "jwst-f150w (smoothed)": (jwst_f150w(args.data_dir, "smoothed"), 16),
        "jwst-f115w (smoothed)": (shipped.band_sets(args.data_dir, "F115W"), 16),
        "jwst-f277w (step)": (shipped.band_sets(args.data_dir, "F277W"), 16),
        "jwst-f444w (step)": (shipped.band_sets(args.data_dir, "F444W"), 16),
        "hst-f814w": (shipped.hst_sets(args.data_dir), 32),
        "ground-ccd": (shipped.ccd_sets(args.data_dir)[:2], 32),
    }
    out = {"command": "python " + " ".join(sys.argv), "sigma": SIGMA, "sources": {}}
    for name, ((train, val), crop) in sets.items():
        out["sources"][name] = r = compare(train, val, crop)
        v, t, n = r["val"], r["train"], r["nll"]
        print(f"{name:32s} kurtosis train {t['excess_kurtosis']:+.3f} val {v['excess_kurtosis']:+.3f}; "
              f">4 sigma x Gaussian train {t['tail_4sigma_over_gaussian']:.2f} val {v['tail_4sigma_over_gaussian']:.2f}; "
              f"backbone - Gaussian NLL {n['diff']:+.4f} +- {n['se_diff']:.4f} ({n['diff_in_se']:+.1f} se); "
              f"backbone draws kurtosis {r['backbone draws']['excess_kurtosis']:+.3f}, "
              f">4 sigma x Gaussian {r['backbone draws']['tail_4sigma_over_gaussian']:.2f}")
    out["seconds"] = time.perf_counter() - start
    atomic_write_json(args.out, out, indent=1)


if __name__ == "__main__":
    main()
