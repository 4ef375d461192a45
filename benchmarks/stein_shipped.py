"""Stein identity E[s] = 0 of the shipped HST noise model on its held-out real sky patches.

``noise.calibration.stein_diagnostics`` of ``load_noise_model("hst-acs-f814w")`` on the 134 shipped
``hst-f814w-sky-val`` patches (each perturbed once at the level, key 0), at sigma = 0.05 and 0.2
(trained units): the spatial mean of the score with its standard error over patches, and the k = 0
Stein ratio (identity: 1). A constant score offset is what biases amplitudes (docs/design.md
section 6); ``fit_calibration`` / ``CalibratedNoise`` removes it.

    python benchmarks/stein_shipped.py [--out benchmarks/results/stein_shipped.json]

Under a minute on a CPU.
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

from numpyro_slic.data import load_shipped
from numpyro_slic.data.io import atomic_write_json
from numpyro_slic.noise.bundle import load_noise_model
from numpyro_slic.noise.calibration import stein_diagnostics

SIGMAS = (0.05, 0.2)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/stein_shipped.json")
    args = parser.parse_args(argv)
    model = load_noise_model("hst-acs-f814w")
    patches = np.asarray(load_shipped("hst-f814w-sky-val").patches)
    model = model.with_event_shape(patches.shape[1:])
    rows = []
    for sigma in SIGMAS:
        t = float(model.sde.t_of_sigma(sigma))
        d = stein_diagnostics(model, patches, t, key=jax.random.key(0))
        k0 = (0,) * (patches.ndim - 1)
        row = {"sigma": sigma, "t": t, "n": int(d.n),
               "spatial_mean_score": float(d.spatial_mean), "spatial_mean_score_se": float(d.spatial_mean_se),
               "stein_ratio_k0": float(d.stein_ratio[k0]), "stein_ratio_k0_se": float(d.stein_ratio_se[k0])}
        rows.append(row)
        print(row, flush=True)
    out = {"noise_model": "hst-acs-f814w", "patches": "hst-f814w-sky-val", "jax": jax.__version__, "results": rows}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    atomic_write_json(args.out, out, indent=1)
    return out


if __name__ == "__main__":
    main()
