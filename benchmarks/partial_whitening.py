"""Between the two exact families: does a partly whitened copula keep the filter's likelihood and the
copula's tails?

On the JWST short-wavelength sky the two exact backbones pull apart under cross-validation
(docs/noise_validation.md): ``CorrelatedMixtureBackbone`` (a filter of i.i.d. mixture pixels)
beats the stationary Gaussian by more than 3 se and overshoots the tails, ``GaussianCopulaBackbone``
(the mixture as each pixel's marginal) gets the tails and misses the likelihood. Both are a linear
stationary map and a per-pixel map; they differ in where the marginal is imposed. This family puts
it anywhere between: with A_k the filter recipe's transfer function and B_k = A_k^alpha,

    u = F^-1[B_k F(v)],   v a Gaussian copula (4-component mixture marginal, radius-16 correlation)
    fitted to the partly whitened training patches y = F^-1[F(u) / B_k],

an exact normalised density (-log Q(u) = E_copula(y) + sum_k log B_k) with exact draws. alpha = 0 is
the copula; alpha = 1 a copula of the fully whitened pixels, the filter recipe but for the
copula's fitted residual correlation. Each alpha is fitted to every fold's training patches and
scored by ``crossval_fidelity``'s machinery (exact held-out NLL on distinct crops against the
stationary Gaussian, 512 exact draws a fold, pooled over the folds); the training patches' own NLL
per alpha is recorded too, the one criterion that could choose alpha without held-out data.

    python benchmarks/partial_whitening.py ../shared/data   # -> benchmarks/results/partial_whitening.json

About 5 minutes on this project's 2-core CPU (SW and F150W, stripes, four alphas).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import crossval_fidelity as cv  # noqa: E402

from numpyro_slic.data.io import atomic_write_json  # noqa: E402
from numpyro_slic.noise.backbones import CorrelatedMixtureBackbone, GaussianCopulaBackbone  # noqa: E402

COMPONENTS, RADIUS = 4, 16  # the shipped recipe's, for both the filter and the copula


def partly_whitened(patches, alpha: float, record: list):
    """The family's member ``alpha`` fitted to ``patches`` (``(n, H, W)``): ``crossval_fidelity``'s
    (nll, draw) pair. Appends the training patches' NLL per pixel at width ``cv.SIGMA`` to ``record``."""
    x = np.asarray(patches, np.float64)
    filt = CorrelatedMixtureBackbone.from_patches(x, COMPONENTS, RADIUS, background=True)

    def transfer(shape):
        return filt._transfer(tuple(shape), 0.0) ** alpha

    y = np.fft.ifft2(np.fft.fft2(x) / np.asarray(transfer(x.shape[1:]))).real
    copula = GaussianCopulaBackbone.from_patches(y, COMPONENTS, RADIUS, background=True)

    def energy(u):
        b = transfer(u.shape)
        return copula.energy(jnp.fft.ifft2(jnp.fft.fft2(u) / b).real, cv.SIGMA) + jnp.sum(jnp.log(b))

    per_patch = jax.jit(jax.vmap(energy))

    def nll(v):
        return np.asarray(per_patch(jnp.asarray(v, jnp.float32)), np.float64) / np.prod(v.shape[1:])

    def draw(key, shape, n):
        v = copula.sample(key, tuple(shape), n)
        return np.asarray(jnp.fft.ifft2(jnp.fft.fft2(v) * transfer(shape)).real, np.float64)

    record.append(float(np.mean(np.concatenate([nll(x[i:i + 64]) for i in range(0, len(x), 64)]))))
    return nll, draw


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/partial_whitening.json"))
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.5, 0.75, 1.0])
    parser.add_argument("--sources", nargs="+", default=["jwst-nircam-sw", "jwst-nircam-f150w"])
    parser.add_argument("--schemes", nargs="+", choices=list(cv.SCHEMES), default=["stripes"])
    args = parser.parse_args(argv)
    start = time.perf_counter()
    key = jax.random.key(0)
    chosen = cv.select_sources(args.data_dir, args.sources)
    out = {"command": "python " + " ".join(sys.argv), "alphas": {}}
    for alpha in args.alphas:
        print(f"alpha {alpha}", flush=True)
        training_nll = []
        results = cv.run(chosen, args.schemes, lambda train, crop: partly_whitened(train.patches, alpha, training_nll),
                         512, lambda i: jax.random.fold_in(key, i))
        # Folds in cv.run's order: source by source, scheme by scheme, fold by fold.
        out["alphas"][str(alpha)] = {"training_nll_per_fold": training_nll, "sources": results}
    out["seconds"] = time.perf_counter() - start
    atomic_write_json(args.out, out)
    print(f"wrote {args.out} ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
