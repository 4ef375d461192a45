"""Can the fidelity classifier tell real held-out sky from real *training* sky? Overlapping vs distinct patches.

`numpyro-slic validate`'s classifier two-sample test (``noise.fidelity.classifier_auc``) trains a
small CNN on half of the real held-out patches and half of the generated ones and reports its AUC on
the rest. Until 2026-11-29 it was given the held-out *patches*, which overlap (JWST F150W: 66 patches
of 64 x 64 at stride 8, two distinct 64 x 64 regions), so its test half was a few sky regions whose
quirks every test patch shared. This script measures what that did, with real sky on both sides:

1. JWST F150W, the held-out patches as they were given (64 x 64, overlapping) against the training
   patches (real vs real), and against the training-fitted stationary Gaussian's draws, for four
   seeds of the classifier;
2. every source on distinct (non-overlapping) 16 x 16 crops (``fidelity.distinct_crops``): held-out
   against training crops, against the Gaussian's draws and against the exact draws of a
   ``CorrelatedMixtureBackbone`` (4 components) fitted to the training patches; and training crops
   against the Gaussian's draws.

An AUC well above 0.5 for real vs real says the test separates regions of the sky, not models.
Reads the training patch sets made by ``scripts/make_shipped_data.py`` (JWST and HST: outputs/patches)
and the shipped held-out sets; about 2 minutes on 2 CPU cores:

    python benchmarks/classifier_split.py --patch-dir outputs/patches --out benchmarks/results/classifier_split.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

from numpyro_slic.data.io import atomic_write_json, load_patch_set
from numpyro_slic.noise import fidelity
from numpyro_slic.noise.analytic import StationaryGaussianNoise
from numpyro_slic.noise.backbones import CorrelatedMixtureBackbone

SHIPPED = Path(__file__).resolve().parents[1] / "numpyro_slic" / "data" / "shipped"


def _auc(real, other, seed=0) -> dict:
    r = fidelity.classifier_auc(real, other, seed=seed)
    return {"auc": round(r["auc"], 4), "auc_se": round(r["auc_se"], 4), "n_test_each": r["n_test_real"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--patch-dir", type=Path, default=Path("outputs/patches"),
                   help="where scripts/make_shipped_data.py wrote the JWST and HST training sets")
    p.add_argument("--crop", type=int, default=16)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/classifier_split.json"))
    args = p.parse_args(argv)
    start = time.perf_counter()
    sources = {
        "jwst-f150w": (args.patch_dir / "jwst_f150w_sky_train.npz", SHIPPED / "jwst_f150w_sky_val.npz"),
        "hst-f814w": (args.patch_dir / "hst_f814w_sky_train.npz", SHIPPED / "hst_f814w_sky_val.npz"),
        "ground-ccd": (SHIPPED / "ground_ccd_sky_train.npz", SHIPPED / "ground_ccd_sky_val.npz"),
    }
    out: dict = {"command": "python benchmarks/classifier_split.py " + " ".join(sys.argv[1:] if argv is None else argv),
                 "crop": args.crop}

    train, val = (load_patch_set(f) for f in sources["jwst-f150w"])
    tp, vp = np.asarray(train.patches, np.float64), np.asarray(val.patches, np.float64)
    gauss = StationaryGaussianNoise.from_patches(tp)
    draws = np.asarray(gauss.unit_sample(jax.random.key(1), (64,)), np.float64)
    pick = np.random.default_rng(0).permutation(len(tp))[:64]
    out["jwst-f150w overlapping 64 x 64"] = {
        "held-out vs training patches (real vs real)": _auc(vp, tp[pick]),
        "held-out vs Gaussian draws, classifier seeds 0-3": [_auc(vp, draws, seed=s) for s in range(4)],
        "training vs Gaussian draws": _auc(tp, draws),
    }
    print(out["jwst-f150w overlapping 64 x 64"], flush=True)

    for name, (train_path, val_path) in sources.items():
        train, val = load_patch_set(train_path), load_patch_set(val_path)
        ct = fidelity.distinct_crops(np.asarray(train.patches, np.float64), train.positions, args.crop)[0]
        cv = fidelity.distinct_crops(np.asarray(val.patches, np.float64), val.positions, args.crop)[0]
        gd = np.asarray(StationaryGaussianNoise.from_patches(ct).unit_sample(jax.random.key(1), (len(ct),)))
        backbone = CorrelatedMixtureBackbone.from_patches(np.asarray(train.patches, np.float64), 4)
        bd = np.asarray(backbone.sample(jax.random.key(2), (args.crop, args.crop), len(ct)))
        out[f"{name} distinct {args.crop} x {args.crop}"] = row = {
            "crops train / held-out": [int(len(ct)), int(len(cv))],
            "held-out vs training crops (real vs real)": _auc(cv, ct),
            "held-out vs Gaussian draws": _auc(cv, gd),
            "held-out vs backbone draws": _auc(cv, bd),
            "training vs Gaussian draws": _auc(ct, gd),
        }
        print(name, row, flush=True)
    out["seconds"] = time.perf_counter() - start
    atomic_write_json(args.out, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
