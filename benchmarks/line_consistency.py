"""Is a learned model's log-density value consistent with its score along sampler paths?

NUTS needs value differences log p(d | theta_b) - log p(d | theta_a) that equal the gradient
integrated along the way. A score network is not exactly conservative, so ScoreLikelihood's
energy="line" value depends on where its line integral starts. On the demo's lens (the shipped JWST
model, one real held-out noise patch, the demo's truth) we take pairs of parameter points about
one posterior sd apart and compare:

- path: the parameter gradient (what samplers see) integrated along the straight parameter segment
  a -> b with 16-node Gauss-Legendre: the reference;
- line values with the default reference (a held-out real patch) and K = 4, 8 nodes;
- line values from the residual at the truth (``anchored_reference``), K = 2, 4;
- the exact value (energy="exact") when the model has a log_prob (energy parameterisation),
  for which path and value agree by construction.

Also reports the antisymmetric fraction of the score's Jacobian on a 16 x 16 real patch.

    python benchmarks/line_consistency.py [--noise-model jwst-nircam-f150w] [--out ...json]

The shipped JWST model is energy-parameterised (the "exact" column then equals "path" up to
quadrature); the table in docs/likelihood.md came from the score-parameterised model it replaced,
``git show 5265385:numpyro_slic/models/jwst-nircam-f150w.zip > jwst-score.zip`` and
``--noise-model jwst-score.zip``, with the demo's truth at theta_E = 0.6".
"""

from __future__ import annotations

import argparse
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from numpyro_slic.data import load_shipped
from numpyro_slic.data.io import atomic_write_json
from numpyro_slic.demo import TRUTH
from numpyro_slic.problems import anchored_reference
from numpyro_slic.lensing import LensSimulator, PixelGrid
from numpyro_slic.likelihood import ScoreLikelihood, level_for_sigma, perturb_observation
from numpyro_slic.noise.bundle import load_noise_model

# Posterior sds of the demo's stationary-Gaussian fit (48 x 48, seed 0): the step scale per parameter.
POSTERIOR_SD = {
    "lens_theta_E": 0.0013, "lens_e1": 0.008, "lens_e2": 0.008, "lens_center_x": 0.002,
    "lens_center_y": 0.002, "shear_gamma1": 0.005, "shear_gamma2": 0.005, "source_amp": 120.0,
    "source_R_sersic": 0.003, "source_e1": 0.018, "source_e2": 0.019, "source_center_x": 0.0013,
    "source_center_y": 0.0012,
}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise-model", default="jwst-nircam-f150w")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--out", default="benchmarks/results/line_consistency.json")
    args = parser.parse_args(argv)

    model = load_noise_model(args.noise_model).with_scale(1.0)
    psf = load_shipped("jwst-f150w-psf")
    sim = LensSimulator(PixelGrid(args.size, args.size, psf.pixel_scale), psf=psf.kernel, supersampling=2)
    val = load_shipped("jwst-f150w-sky-val").patches
    truth = {k: jnp.asarray(v) for k, v in TRUTH.items()}
    t = level_for_sigma(model, 0.1)
    data = perturb_observation(jax.random.key(1), sim(truth) + val[0, : args.size, : args.size], model, t)
    names = list(POSTERIOR_SD)
    scale = jnp.asarray([POSTERIOR_SD[k] for k in names])

    def params(v):
        return {**truth, **{k: truth[k] + v[i] * scale[i] for i, k in enumerate(names)}}

    def log_lik(v, reference, nodes, energy="line"):
        return ScoreLikelihood(model, sim(params(v)), t=t, nodes=nodes, energy=energy, reference=reference).log_prob(data)

    anchor = anchored_reference(data, sim, truth)
    variants = {
        "default_reference_K4": jax.jit(lambda v: log_lik(v, None, 4)),
        "default_reference_K8": jax.jit(lambda v: log_lik(v, None, 8)),
        "anchored_K2": jax.jit(lambda v: log_lik(v, anchor, 2)),
        "anchored_K4": jax.jit(lambda v: log_lik(v, anchor, 4)),
    }
    if model.has_log_prob:
        variants["exact"] = jax.jit(lambda v: log_lik(v, None, 2, "exact"))
    grad = jax.jit(jax.grad(lambda v: log_lik(v, anchor, 2)))  # the gradient is the score's, any energy
    u, w = np.polynomial.legendre.leggauss(16)
    u, w = (u + 1) / 2, w / 2

    rows = []
    key = jax.random.key(3)
    for _ in range(args.pairs):
        key, ka, kb = jax.random.split(key, 3)
        a = jax.random.normal(ka, (len(names),))
        b = a + 0.5 * jax.random.normal(kb, (len(names),))
        row = {"path": float(sum(wi * jnp.dot(grad(a + ui * (b - a)), b - a) for ui, wi in zip(u, w)))}
        row |= {name: float(f(b) - f(a)) for name, f in variants.items()}
        rows.append(row)
        print(row, flush=True)
    rel = {
        name: float(np.median([abs(r[name] - r["path"]) / abs(r["path"]) for r in rows])) for name in variants
    }

    x = jnp.asarray(val[1, :16, :16])
    jac = jax.jacfwd(lambda z: model.score(z.reshape(16, 16), t).ravel())(x.ravel())
    antisym = float(jnp.linalg.norm(0.5 * (jac - jac.T)) / jnp.linalg.norm(jac))
    out = {
        "noise_model": args.noise_model,
        "size": args.size,
        "sigma_level": 0.1,
        "pairs": rows,
        "median_relative_error_vs_path": rel,
        "jacobian_antisymmetric_fraction": antisym,
        "jax": jax.__version__,
    }
    print(json.dumps({"median_relative_error_vs_path": rel, "jacobian_antisymmetric_fraction": antisym}, indent=1))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    atomic_write_json(args.out, out, indent=1)
    return out


if __name__ == "__main__":
    main()
