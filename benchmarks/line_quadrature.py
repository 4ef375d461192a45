"""Quadrature error of energy="line" on heavy-tailed noise, by the number of Gauss-Radau nodes K.

The case of tests/test_likelihood.py::test_line_energy_differences_equal_exact[mixture]: the
95% / 5% Gaussian mixture (``GaussianMixtureNoise(event_shape=(8, 6), scale=0.5)``) at t = 0, a
reference residual and two residuals drawn from it with the test's keys (the second times 1.3).
The line value's difference log Q(r1) - log Q(r2), computed from the score alone (a plain callable)
along the straight path, against the exact difference, in float64. The mixture's score switches
sharply between its components, so the integrand is far from a polynomial in u and the error
falls slowly with K (for Gaussian noise the rule is exact from K = 2).

    python benchmarks/line_quadrature.py [--out benchmarks/results/line_quadrature.json]

A few seconds on a CPU.
"""

from __future__ import annotations

import argparse
import os

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

from numpyro_slic import ScoreLikelihood  # noqa: E402
from numpyro_slic.data.io import atomic_write_json  # noqa: E402
from numpyro_slic.noise import GaussianMixtureNoise  # noqa: E402

NODES = (2, 4, 8, 16, 24, 32, 48)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/line_quadrature.json")
    args = parser.parse_args(argv)
    noise = GaussianMixtureNoise(event_shape=(8, 6), scale=0.5)
    keys = jax.random.split(jax.random.key(4), 3)
    ref = noise.sample(keys[0])
    r1, r2 = noise.sample(keys[1]), 1.3 * noise.sample(keys[2])
    exact = float(noise.log_prob(r1) - noise.log_prob(r2))
    zero = jnp.zeros((8, 6))
    rows = []
    for k in NODES:
        lik = ScoreLikelihood(noise.score, zero, nodes=k, reference=ref)
        line = float(lik.log_prob(r1) - lik.log_prob(r2))
        rows.append({"nodes": k, "line": line, "relative_error": abs(line - exact) / abs(exact)})
        print(f"K = {k:2d}: relative error {rows[-1]['relative_error']:.1e}", flush=True)
    out = {"dtype": str(r1.dtype), "jax": jax.__version__, "exact_difference": exact, "results": rows}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    atomic_write_json(args.out, out, indent=1)
    return out


if __name__ == "__main__":
    main()
