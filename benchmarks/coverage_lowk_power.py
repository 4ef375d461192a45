"""Noise power by |k| band on a coverage problem's grid: the injection tiles against each likelihood's model.

A source's total flux and size are degenerate with the tile's mean (the k = 0 mode), so a likelihood
whose k = 0 power is wrong biases them while its per-pixel held-out likelihood barely moves (one mode
of H W). This script prints and writes, for ``lens_coverage_problem(size, noise)``, the mean
periodogram of the injection tiles (the truth), of the training band's tiles, and the power of the
problem's stationary Gaussian, of the white Gaussian and of each learned model given (a
``CorrelatedMixtureBackbone``-based bundle: its mixture's variance times A_k^2), in five |k| bands.
Seconds:

    python benchmarks/coverage_lowk_power.py --train-patches outputs/patches/jwst_f150w_sky_train.npz \\
        --models jwst-nircam-f150w outputs/jwst_bg/jwst-nircam-f150w.zip --out benchmarks/results/coverage_lowk_power_jwst.json
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from numpyro_slic.coverage.problems import lens_coverage_problem, noise_tiles
from numpyro_slic.data.io import atomic_write_json, load_patch_set
from numpyro_slic.noise.bundle import load_noise_model
from numpyro_slic.noise.backbones import CorrelatedMixtureBackbone

BANDS = ((0.0, 1.5), (1.5, 3.5), (3.5, 8.0), (8.0, 32.0))  # |k| in cycles per tile (the grid side = 32 here)


def _mean_periodogram(x: np.ndarray) -> np.ndarray:
    return np.mean(np.abs(np.fft.fft2(x)) ** 2, axis=0) / (x.shape[1] * x.shape[2])


def _bands(power: np.ndarray) -> dict:
    n = power.shape[0]
    k = np.fft.fftfreq(n) * n
    kr = np.hypot(*np.meshgrid(k, k, indexing="ij"))
    out = {"k=0": float(power[0, 0])}
    for lo, hi in BANDS:
        out[f"{lo}<|k|<={hi} per tile"] = float(power[(kr > lo) & (kr <= hi)].mean())
    return out


def _model_power(name: str, shape) -> np.ndarray:
    backbone = load_noise_model(name).backbone
    if not isinstance(backbone, CorrelatedMixtureBackbone):
        raise SystemExit(f"{name}: this script reads a CorrelatedMixtureBackbone's power; the model has "
                         f"{type(backbone).__name__}.")
    w = np.exp(np.asarray(backbone.mixture.log_weights, np.float64))
    mu, sd = np.asarray(backbone.mixture.means, np.float64), np.asarray(backbone.mixture.sigmas, np.float64)
    variance = np.sum(w * (sd**2 + mu**2)) - np.sum(w * mu) ** 2
    return variance * np.asarray(backbone._relative_power(shape), np.float64)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--noise", default="jwst-f150w")
    p.add_argument("--train-patches", required=True, help="the learned model's training patch set (.npz)")
    p.add_argument("--models", nargs="*", default=[], help="bundles (names or paths) with a correlated-mixture backbone")
    p.add_argument("--out", default="benchmarks/results/coverage_lowk_power_jwst.json")
    args = p.parse_args(argv)
    problem = lens_coverage_problem(args.size, args.noise)
    shape = (args.size, args.size)
    rows = {
        "injection tiles": _bands(_mean_periodogram(np.asarray(problem.injection_noise, np.float64))),
        "stationary Gaussian (the problem's)": _bands(np.asarray(problem.noises["stationary Gaussian"].power, np.float64)),
        "training band tiles": _bands(_mean_periodogram(noise_tiles(
            np.asarray(load_patch_set(args.train_patches).patches, np.float64), args.size))),
    }
    for name in args.models:
        rows[f"model {name}"] = _bands(_model_power(name, shape))
    for name, row in rows.items():
        print(f"{name:60s}", " ".join(f"{v:7.2f}" for v in row.values()))
    atomic_write_json(args.out, {"command": "python benchmarks/coverage_lowk_power.py " + " ".join(
        sys.argv[1:] if argv is None else argv), "units": "noise power per Fourier mode, sky-sigma units squared",
        "problem": problem.name, "bands": rows}, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
