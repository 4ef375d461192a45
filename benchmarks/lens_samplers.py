"""Samplers on the demo's 64 x 64 lens: SLIC-NUTS against Gaussian-NUTS, and ESS per network evaluation.

The problem is ``numpyro_slic.demo.demo_problem``: an SIE + shear + Sersic lens (13 free
parameters) in one real held-out JWST F150W noise patch, perturbed once at sigma = 0.1 sky sigma.
Runs, one chain each, all from the truth:

Every run uses one fixed metric, the Laplace approximation of the stationary-Gaussian posterior
at the truth (``numpyro_slic.infer.laplace_inverse_mass``), and adapts only its step size: the same preconditioner for
every sampler, and no second derivative through the network (on a GPU, compiling the learned
model's Hessian took minutes).

1. Gaussian-NUTS: the stationary (correlated) Gaussian likelihood, energy="exact".
2. SLIC-NUTS: the shipped energy-parameterised JWST model, energy="exact"; both NUTS runs capped
   at 2^max_tree_depth - 1 steps per draw (default depth 5, 31 steps: at depth 4 most
   trajectories ran to the 15-step cap, 12.6 to 12.9 steps per draw on average, and the slowest
   parameter mixed about half as fast per evaluation).
3. SLIC-MALA: the same model through its score only (energy="none"), MALA with the line-integral
   Metropolis test (3 Gauss-Lobatto nodes: 2 network evaluations a step).
4. SLIC-AnnealedLangevin: energy="none", levels geometric in sigma from ``--al-sigma-max`` down to
   the data's level, ``--al-steps`` steps per level.

``--metric slic-fd`` gives the three SLIC runs their own metric instead: the Laplace approximation
of the SLIC posterior at its mode (``slic_laplace_fd``: 30 Newton steps from the truth, then the
Hessian from central differences of 2 x 13 gradients; 56 network evaluations, no second derivative
through the network). Gaussian-NUTS keeps the Gaussian one.

Reported per run: wall time of the sampling phase (warmup excluded; compilation excluded by a
first warmup call), bulk ESS (min and median over parameters), ESS per second, network
evaluations (NUTS: leapfrog steps, each one value and gradient = one forward and backward pass;
MALA and Langevin: gradient evaluations) and ESS per network evaluation; for the SLIC runs the
posterior-mean shift from SLIC-NUTS in SLIC-NUTS sd. Targets (issue): SLIC-NUTS time per effective
sample <= 3x Gaussian-NUTS; NUTS >= 10x the ESS per network evaluation of MALA.

    python benchmarks/lens_samplers.py [--size 64] [--out benchmarks/results/lens_samplers.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import MCMC, NUTS, init_to_value

from numpyro_slic.data.io import atomic_write_json
from numpyro_slic.demo import TRUTH, demo_potential, demo_problem
from numpyro_slic.diagnostics import summary
from numpyro_slic.infer import MALA, AnnealedLangevin, clipped_inverse, geometric_levels, laplace_inverse_mass
from numpyro_slic.problems import lens_model


def slic_laplace_fd(problem, guess: np.ndarray, *, newton_steps: int = 30, step: float = 0.5):
    """Laplace inverse mass matrix of the SLIC posterior at its mode, from gradients only.

    The mode: Newton steps z <- z - A grad U(z) with A = ``guess`` (the Gaussian Laplace metric) from
    the truth. The Hessian: central differences of grad U along the eigenvectors of A, each scaled
    to ``step`` of its Laplace sd, H S = [grad U(z + step s_j) - grad U(z - step s_j)] / (2 step).
    Returns (inverse mass (13, 13), mode (13,), network evaluations).
    """
    potential, truth, *_ = demo_potential(problem, "SLIC")
    grad = jax.jit(jax.grad(potential))

    def g(z):
        return np.asarray(grad(jnp.asarray(z, truth.dtype)), np.float64)

    z = np.asarray(truth, np.float64)
    for _ in range(newton_steps):
        z = z - guess @ g(z)
    values, vectors = np.linalg.eigh(guess)
    scales = vectors * np.sqrt(values)  # columns: one Laplace sd along each eigenvector
    hs = np.stack([(g(z + step * c) - g(z - step * c)) / (2 * step) for c in scales.T], axis=1)
    inv = np.linalg.inv(scales)
    return clipped_inverse(inv.T @ (scales.T @ hs) @ inv), z, newton_steps + 2 * len(z)


def _run(kernel, args, kwargs, *, warmup, samples, key, extra_fields):
    """Warmup (with compilation) then the timed sampling phase."""
    mcmc = MCMC(kernel, num_warmup=warmup, num_samples=samples, progress_bar=False)
    k_warm, k_run = jax.random.split(key)
    start = time.perf_counter()
    mcmc.warmup(k_warm, *args, extra_fields=extra_fields, **kwargs)
    warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    mcmc.run(k_run, *args, extra_fields=extra_fields, **kwargs)
    jax.block_until_ready(mcmc.get_samples())
    return mcmc, warmup_s, time.perf_counter() - start


def _record(mcmc, seconds, warmup_s, cost_field, free):
    table = summary(mcmc, var_names=list(free))
    evals = int(np.sum(np.asarray(mcmc.get_extra_fields()[cost_field])))
    ess = table["ess_bulk"].to_numpy()
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples().items()}
    return {
        "warmup_seconds": warmup_s,
        "seconds": seconds,
        "network_or_gradient_evals": evals,
        "ess_bulk_min": float(ess.min()),
        "ess_bulk_median": float(np.median(ess)),
        "ess_per_second_min": float(ess.min() / seconds),
        "seconds_per_effective_sample": float(seconds / ess.min()),
        "ess_per_eval_min": float(ess.min() / evals),
        "ess_per_eval_median": float(np.median(ess) / evals),
        "mean": {p: float(samples[p].mean()) for p in free},
        "sd": {p: float(samples[p].std()) for p in free},
    }


def _write(args, problem, results) -> dict:
    """Ratios from the runs so far, written atomically: a run cut off by a time limit keeps what it finished."""
    ratios = {}
    ref = results.get("slic_nuts")
    if ref is not None and "gaussian_nuts" in results:
        ratios["slic_over_gaussian_seconds_per_effective_sample"] = (
            ref["seconds_per_effective_sample"] / results["gaussian_nuts"]["seconds_per_effective_sample"])
    for name in ("slic_mala", "slic_annealed_langevin"):
        if ref is not None and name in results:
            r = results[name]
            r["max_mean_shift_vs_slic_nuts_sd"] = max(abs(r["mean"][p] - ref["mean"][p]) / ref["sd"][p] for p in problem.free)
            r["sd_ratio_range_vs_slic_nuts"] = [
                min(r["sd"][p] / ref["sd"][p] for p in problem.free), max(r["sd"][p] / ref["sd"][p] for p in problem.free)
            ]
            ratios[f"nuts_over_{name.removeprefix('slic_')}_ess_per_eval"] = ref["ess_per_eval_min"] / r["ess_per_eval_min"]
    out = {
        "problem": {"size": args.size, "seed": args.seed, "free_parameters": len(problem.free),
                    "noise_patch_index": problem.noise_patch_index},
        "settings": vars(args),
        "device": str(jax.devices()[0]),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "results": results,
        "ratios": ratios,
    }
    runs = {k: {m: v[m] for m in ("seconds", "ess_bulk_min", "network_or_gradient_evals", "ess_per_eval_min")}
            for k, v in results.items() if "ess_bulk_min" in v}  # not the metric's own entry
    print(json.dumps({"ratios": ratios, **runs}, indent=1), flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    atomic_write_json(args.out, out, indent=1)
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=100, help="NUTS warmup (step size), both likelihoods")
    parser.add_argument("--samples", type=int, default=300, help="NUTS draws (both likelihoods)")
    parser.add_argument("--max-tree-depth", type=int, default=5)
    parser.add_argument("--mala-warmup", type=int, default=500)
    parser.add_argument("--mala-samples", type=int, default=4000)
    parser.add_argument("--al-warmup", type=int, default=50)
    parser.add_argument("--al-samples", type=int, default=200)
    parser.add_argument("--al-sigma-max", type=float, default=1.0, help="first annealing width (sky sigma)")
    parser.add_argument("--al-levels", type=int, default=4)
    parser.add_argument("--al-steps", type=int, default=5, help="Langevin steps per level")
    parser.add_argument("--skip", default="", help="comma-separated runs to skip: mala, langevin")
    parser.add_argument("--metric", choices=("gaussian", "slic-fd"), default="gaussian",
                        help="the SLIC runs' metric: the shared Gaussian Laplace one, or their own (module docstring)")
    parser.add_argument("--noise-model", default="jwst-nircam-f150w",
                        help="SLIC's noise model: a shipped name or a bundle path. The committed runs used the "
                             "energy U-Net shipped until 2026-11-29: git show "
                             "8ea1e40:numpyro_slic/models/jwst-nircam-f150w.zip > jwst-unet.zip")
    parser.add_argument("--out", default="benchmarks/results/lens_samplers.json")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))

    start = time.perf_counter()
    problem = demo_problem(args.size, args.seed, noise_model=args.noise_model)
    learned = problem.noises["SLIC"]
    if not learned.has_log_prob:
        raise SystemExit("lens_samplers: SLIC-NUTS here needs an energy-parameterised noise model (energy='exact').")
    common = dict(simulator=problem.simulator, priors=problem.priors)
    data = (problem.data,)
    init = init_to_value(values=TRUTH)
    key = jax.random.key(args.seed + 10)
    results = {}

    metric = laplace_inverse_mass(*demo_potential(problem, "stationary Gaussian")[:2])
    print(f"problem and metric ready in {time.perf_counter() - start:.1f} s", flush=True)
    nuts = dict(init_strategy=init, dense_mass=True, adapt_mass_matrix=False, max_tree_depth=args.max_tree_depth)

    print("Gaussian-NUTS ...", flush=True)
    kw = dict(noise=problem.noises["stationary Gaussian"], t=problem.levels["stationary Gaussian"], **common)
    mcmc, w_s, s = _run(NUTS(lens_model, inverse_mass_matrix=metric, **nuts), data, kw, warmup=args.warmup,
                        samples=args.samples, key=key, extra_fields=("num_steps",))
    results["gaussian_nuts"] = _record(mcmc, s, w_s, "num_steps", problem.free)
    _write(args, problem, results)

    slic_kw = dict(noise=learned, t=problem.levels["SLIC"], **common)
    if args.metric == "slic-fd":
        start = time.perf_counter()
        metric, _, evals = slic_laplace_fd(problem, metric)
        results["slic_metric"] = {"kind": "slic-fd", "network_evals": evals, "seconds": time.perf_counter() - start}
        print(f"SLIC Laplace metric from {evals} gradients in {time.perf_counter() - start:.1f} s", flush=True)
    print("SLIC-NUTS ...", flush=True)
    mcmc, w_s, s = _run(NUTS(lens_model, inverse_mass_matrix=metric, **nuts), data, slic_kw, warmup=args.warmup,
                        samples=args.samples, key=jax.random.fold_in(key, 1), extra_fields=("num_steps",))
    results["slic_nuts"] = _record(mcmc, s, w_s, "num_steps", problem.free)
    _write(args, problem, results)

    none_kw = dict(slic_kw, energy="none")
    if "mala" not in skip:
        print("SLIC-MALA ...", flush=True)
        kernel = MALA(lens_model, init_strategy=init, dense_mass=True, inverse_mass_matrix=metric,
                      adapt_mass_matrix=False)
        mcmc, w_s, s = _run(kernel, data, none_kw, warmup=args.mala_warmup, samples=args.mala_samples,
                            key=jax.random.fold_in(key, 2), extra_fields=("num_grad_evals",))
        results["slic_mala"] = _record(mcmc, s, w_s, "num_grad_evals", problem.free)
        _write(args, problem, results)
    if "langevin" not in skip:
        print("SLIC-AnnealedLangevin ...", flush=True)
        levels = geometric_levels(learned, args.al_sigma_max, 0.1, args.al_levels)
        kernel = AnnealedLangevin(lens_model, levels, steps_per_level=args.al_steps, dense_mass=True, init_strategy=init)
        mcmc, w_s, s = _run(kernel, data, none_kw, warmup=args.al_warmup, samples=args.al_samples,
                            key=jax.random.fold_in(key, 3), extra_fields=("num_grad_evals",))
        results["slic_annealed_langevin"] = _record(mcmc, s, w_s, "num_grad_evals", problem.free)
        results["slic_annealed_langevin"]["levels"] = [float(t) for t in levels]

    return _write(args, problem, results)


if __name__ == "__main__":
    main()
