"""Why a correlated-mixture backbone misses some sources' excess kurtosis: where the tails live.

A ``CorrelatedMixtureBackbone`` models noise as u = L y, a stationary filter L of i.i.d. mixture
pixels y, and fits the mixture by maximum likelihood to the whitened pixels y = L^-1 u. For i.i.d.
y the filter scales the excess kurtosis by r = sum l^4 / (sum l^2)^2 (l: L's kernel on the grid),
so the model's u has about r times its y's. Real noise has that ratio only if its heavy-tailed
part is as correlated as its core. This measures, for each shipped correlated-mixture model on its
training and held-out patches, the excess kurtosis of u and of y (whitened by the model's own
filter), their ratio, r, and the same for the model's exact draws:

    python benchmarks/whitened_tails.py      # -> benchmarks/results/whitened_tails.json, seconds

A real ratio below r means the tails are whiter than the core: single-pixel outliers, which
whitening spreads into several large y values and the model then treats as independent hits.
Above r, the tails are more correlated than the core.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np
import scipy.stats

from numpyro_slic.data import load_patch_sets
from numpyro_slic.data.io import atomic_write_json
from numpyro_slic.noise.bundle import load_noise_model
from numpyro_slic.noise.backbones import CorrelatedMixtureBackbone, _relative_power

MODELS = {
    "jwst-nircam-f150w": ("outputs/patches/jwst_f150w_sky_train.npz", "jwst-f150w-sky-val"),
    "jwst-nircam-sw": (["outputs/patches/jwst_f115w_sky_train.npz",
                        "outputs/patches/jwst_f150w_smoothed_sky_train.npz"],
                       ["jwst-f115w-sky-val", "jwst-f150w-smoothed-sky-val"]),
    "jwst-nircam-lw": (["outputs/patches/jwst_f277w_sky_train.npz", "outputs/patches/jwst_f444w_sky_train.npz"],
                       ["jwst-f277w-sky-val", "jwst-f444w-sky-val"]),
    "ground-ccd-saao": ("ground-ccd-sky-train", "ground-ccd-sky-val"),
}


def _kurtosis(u: np.ndarray, transfer: np.ndarray) -> dict[str, float]:
    y = np.fft.ifft2(np.fft.fft2(u) / transfer).real
    ku, ky = float(scipy.stats.kurtosis(u.ravel())), float(scipy.stats.kurtosis(y.ravel()))
    return {"kurtosis_u": ku, "kurtosis_y": ky, "ratio": ku / ky}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=256, help="exact model draws per model")
    p.add_argument("--out", default="benchmarks/results/whitened_tails.json")
    args = p.parse_args(argv)
    out = {"command": "python benchmarks/whitened_tails.py", "models": {}}
    for name, (train, val) in MODELS.items():
        backbone = load_noise_model(name).backbone
        if not isinstance(backbone, CorrelatedMixtureBackbone):
            # ground-ccd-saao is a Gaussian copula since 2026-12-07: no filter of i.i.d. pixels to test.
            print(f"{name}: a {type(backbone).__name__}, not a filter of i.i.d. pixels; skipped")
            continue
        row = {}
        for role, spec in (("train", train), ("val", val)):
            u = np.asarray(load_patch_sets(spec).patches, np.float64)
            transfer = np.sqrt(np.asarray(_relative_power(backbone.core, backbone.background, u.shape[1:])))
            row[role] = _kurtosis(u, transfer)
        shape = u.shape[1:]
        transfer = np.sqrt(np.asarray(_relative_power(backbone.core, backbone.background, shape)))
        kernel = np.fft.ifft2(transfer).real
        row["iid_ratio_r"] = float((kernel**4).sum() / (kernel**2).sum() ** 2)
        draws = np.asarray(backbone.sample(jax.random.key(0), shape, args.draws), np.float64)
        row["model_draws"] = _kurtosis(draws, transfer)
        row["grid"] = list(shape)
        out["models"][name] = row
        print(name, {k: (round(v["ratio"], 3) if isinstance(v, dict) else v) for k, v in row.items()}, flush=True)
    atomic_write_json(args.out, out, indent=1)
    return out


if __name__ == "__main__":
    main()
