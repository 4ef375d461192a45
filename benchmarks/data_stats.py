"""Statistics quoted in docs/data.md that the shipped data's PROVENANCE.md does not record.

1. ``mask_sources`` (defaults: segmentation, FWHM-2 smoothing, 5 pixels, dilation 4) on pure white
   Gaussian noise (512 x 512, seeds 0-3) at nsigma = 2 and 3: the fraction of pixels masked.
2. On the shipped held-out sky patches (``jwst-f150w-sky-val``, ``hst-f814w-sky-val``): lag-2 and
   diagonal correlations, and the sd of the per-patch mean against white noise's 1 / patch side.

    python benchmarks/data_stats.py [--out benchmarks/results/data_stats.json]

Seconds on a CPU.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from numpyro_slic.data import load_shipped, mask_sources
from numpyro_slic.data.io import atomic_write_json


def _corr(p, dy, dx):
    a = p[:, : p.shape[1] - dy, : p.shape[2] - dx]
    b = p[:, dy:, dx:]
    if dx < 0:
        a, b = p[:, : p.shape[1] - dy, -dx:], p[:, dy:, : p.shape[2] + dx]
    a, b = a - p.mean(), b - p.mean()
    return float(np.mean(a * b) / p.var())


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/data_stats.json")
    args = parser.parse_args(argv)
    masked = {}
    for nsigma in (2.0, 3.0):
        fr = [float(np.mean(mask_sources(np.random.default_rng(s).standard_normal((512, 512)), nsigma=nsigma)))
              for s in range(4)]
        masked[str(nsigma)] = {"min": min(fr), "max": max(fr), "per_seed": fr}
    sets = {}
    for name in ("jwst-f150w-sky-val", "hst-f814w-sky-val"):
        p = np.asarray(load_shipped(name).patches, dtype=np.float64)
        sets[name] = {
            "n_patches": int(p.shape[0]), "side": int(p.shape[-1]),
            "lag1_x": _corr(p, 0, 1), "lag1_y": _corr(p, 1, 0),
            "lag2_x": _corr(p, 0, 2), "lag2_y": _corr(p, 2, 0),
            "diag_plus": _corr(p, 1, 1), "diag_minus": _corr(p, 1, -1),
            "patch_mean_sd": float(p.mean(axis=(1, 2)).std()), "white_patch_mean_sd": float(p.std() / p.shape[-1]),
        }
    out = {"mask_fraction_pure_noise": masked, "shipped_val": sets}
    print(out)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    atomic_write_json(args.out, out, indent=1)
    return out


if __name__ == "__main__":
    main()
