"""What Stein calibration buys at the posterior level (issue 3, item 8).

Score-level errors do not say how far a posterior moves (docs/design.md section 6: score error is not
posterior error), so here NUTS posteriors are compared with the exact one. The image model is a
Gaussian blob with three parameters: amplitude (it couples to k = 0 and the low-k modes), x0 and y0
(pixels from the centre). Four likelihoods, all ``ScoreLikelihood(noise, blob, t=t)``:

- exact: the oracle's own log-density at level t (energy="exact"): the reference posterior;
- uncalibrated: the noise model under test (energy="line");
- mean: ``CalibratedNoise(model, fit_calibration(model, ...))``, a mean score map per level;
- mean+gains: the same with ``per_mode_gains=True``.

Two noise models under test:

a. ``biased``: the test double of tests/test_calibration.py, the exact stationary Gaussian score plus
   a constant offset (0.3 per trained unit) with the k = 0 and |k| = 1 modes scaled by 2, on the same
   8 x 8 noise, level (sigma 0.2 trained units) and calibration levels as those tests, so its score
   errors are theirs (0.31, 0.18 mean only, 0.034 mean + gains).
b. ``learned``: a small U-Net trained by ``train_noise_model`` WITHOUT the Gaussian backbone on draws
   of the 16 x 16 stationary Gaussian of tests/test_learned_validation.py (unit variance), so every
   bit of the score is the net's, errors included. Level: sigma(t) = 0.3 noise sd, as there.

Each observation is perturbed once at level t (``perturb_observation``), so the oracle's likelihood at
t is the exact likelihood of the data used (docs/design.md section 1). Calibrations are fitted on 2000
fresh noise patches (neither training data nor any observation's noise) at three levels around t;
the score-level diagnostics (``stein_diagnostics`` against the oracle) use another 2000. The line
integral starts at the residual of the exact posterior mean (``reference``), as in
tests/test_learned_validation.py, with 2 Gauss-Radau nodes: exact for the linear scores of case a;
for the net of case b, values differ from 16 nodes by at most 0.25 nats over 200 posterior-like
points, with trends of at most 0.01 nats per posterior sd (measured once; docs/noise_validation.md).

Per parameter: the mean shift in exact-posterior sds and the sd ratio, per data realisation and
averaged over them (mean and rms shift, mean ratio), with the shifts' Monte Carlo standard errors
from NUTS's effective sample sizes (``mc_se_shift``); NUTS divergences per run.

    python benchmarks/calibration_posterior.py [--realisations 6 3] [--warmup 500 250]
        [--samples 1500 400] [--steps 1000] [--out benchmarks/results/calibration_posterior.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.diagnostics import effective_sample_size
from numpyro.infer import MCMC, NUTS

from numpyro_slic import ScoreLikelihood, StationaryGaussianNoise, VESDE, perturb_observation, train_noise_model
from numpyro_slic.data.io import atomic_write_json
from numpyro_slic.noise import BiasedScore, CalibratedNoise, NoiseModel, TrainConfig, UNetConfig, fit_calibration, stein_diagnostics

PARAMS = ("amp", "x0", "y0")
VARIANTS = ("exact", "uncalibrated", "mean", "mean+gains")
K0 = (0, 0)


def blob(amp, x0, y0, *, shape: tuple[int, int], width: float):
    """Noise-free image ``shape``: a circular Gaussian blob of peak ``amp``; x0, y0 in pixels from the centre."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    yy, xx = yy - (shape[0] - 1) / 2, xx - (shape[1] - 1) / 2
    return amp * jnp.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * width**2))


def biased_power(n: int) -> np.ndarray:
    """P_k of the BiasedScore tests' noise (a copy of tests/test_calibration.py ``biased_power``), trained units."""
    k = np.fft.fftfreq(n) * n
    ky, kx = np.meshgrid(k, k, indexing="ij")
    return 0.3 + 2.0 / (1 + kx**2 + (ky / 3.0) ** 2)


def anisotropic_power(shape, *, corr_y=40.0, corr_x=2.0, floor=1.0) -> np.ndarray:
    """Unit-variance correlated noise of tests/blob_problem.py (these arguments: test_learned_validation)."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.fftfreq(shape[1])[None, :]
    p = 1.0 / (floor + corr_y * ky**2 + corr_x * kx**2)
    return p / p.mean()


@dataclass(frozen=True)
class Case:
    """One posterior comparison: the oracle, the level, the blob and its priors (physical units)."""

    name: str
    oracle: StationaryGaussianNoise
    t: float
    levels: np.ndarray
    truth: dict
    prior: dict  # parameter -> (mean, sd) of a Normal prior
    width: float

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.oracle.event_shape)

    def simulate(self, theta: dict):
        return blob(**theta, shape=self.shape, width=self.width)


def blob_model(case: Case, likelihood: Callable) -> Callable:
    """NumPyro model(data, reference); ``likelihood(mu, reference)`` is the observation's distribution."""

    def model(data, reference):
        theta = {k: numpyro.sample(k, dist.Normal(*case.prior[k])) for k in PARAMS}
        numpyro.sample("obs", likelihood(case.simulate(theta), reference), obs=data)

    return model


def likelihoods(case: Case, models: dict, nodes: int) -> dict:
    """Variant name -> (mu, reference) -> ScoreLikelihood: the oracle's exact one, and the line
    integral of each model's score at the fixed level t."""
    out = {"exact": lambda mu, ref: ScoreLikelihood(case.oracle, mu, t=case.t, energy="exact")}
    for name, noise in models.items():
        out[name] = (lambda noise: lambda mu, ref: ScoreLikelihood(
            noise, mu, t=case.t, energy="line", nodes=nodes, reference=ref))(noise)
    return out


def calibrated(model: NoiseModel, fit_noise, levels, key) -> dict:
    """The three models under test: uncalibrated, mean map only, mean map + per-mode gains."""
    mean_only = fit_calibration(model, fit_noise, levels, key=key)
    with_gains = fit_calibration(model, fit_noise, levels, key=key, per_mode_gains=True)
    return {
        "uncalibrated": model,
        "mean": CalibratedNoise(model, mean_only),
        "mean+gains": CalibratedNoise(model, with_gains),
    }


def score_level(case: Case, models: dict, check_noise, key) -> dict:
    """Stein diagnostics of every variant at the case's level, on fresh noise, against the oracle."""
    out = {}
    for name, model in {"exact": case.oracle, **models}.items():
        d = stein_diagnostics(model, check_noise, case.t, key=key, exact=case.oracle)
        out[name] = {
            "rel_error": float(d.rel_error),
            "rel_error_k0": float(d.rel_error_modes[K0]),
            "spatial_mean_score": d.spatial_mean,
            "spatial_mean_score_se": d.spatial_mean_se,
            "stein_ratio_k0": float(d.stein_ratio[K0]),
            "stein_ratio_k0_se": float(d.stein_ratio_se[K0]),
            "stein_ratio_radial": [float(v) for v in d.stein_ratio_radial],
        }
    return out


def posteriors(case: Case, models: dict, *, realisations: int, key, nuts: dict, nodes: int) -> dict:
    """NUTS posteriors of every variant for ``realisations`` perturbed observations; shifts and ratios.

    ``mc_se_shift`` is the Monte Carlo standard error of a shift, sqrt(var / ESS + var_exact /
    ESS_exact) / sd_exact, from numpyro's effective sample sizes.
    """
    mcmcs = {}
    for name, lik in likelihoods(case, models, nodes).items():
        samples = nuts["samples"] * (nuts["exact_factor"] if name == "exact" else 1)
        mcmcs[name] = MCMC(NUTS(blob_model(case, lik)), num_warmup=nuts["warmup"], num_samples=samples,
                           num_chains=nuts["chains"], chain_method="vectorized", progress_bar=False,
                           jit_model_args=True)
    fields = ("shift", "ratio", "mc_se_shift")
    per_real = {name: {p: {f: [] for f in fields} for p in PARAMS} for name in VARIANTS}
    divergences = {name: [] for name in VARIANTS}
    start = time.perf_counter()
    for r in range(realisations):
        k_noise, k_level, k_mcmc = jax.random.split(jax.random.fold_in(key, r), 3)
        data = case.simulate(case.truth) + case.oracle.sample(k_noise)
        data_t = perturb_observation(k_level, data, case.oracle, case.t)
        draws, ess = {}, {}
        for i, name in enumerate(VARIANTS):
            reference = jnp.zeros(case.shape) if name == "exact" else data_t - case.simulate(
                {p: float(draws["exact"][p].mean()) for p in PARAMS})
            mcmc = mcmcs[name]
            mcmc.run(jax.random.fold_in(k_mcmc, i), data_t, reference, extra_fields=("diverging",))
            by_chain = {p: np.asarray(v, dtype=np.float64) for p, v in mcmc.get_samples(group_by_chain=True).items()}
            draws[name] = {p: v.ravel() for p, v in by_chain.items()}
            ess[name] = {p: float(effective_sample_size(v)) for p, v in by_chain.items()}
            divergences[name].append(int(np.sum(mcmc.get_extra_fields()["diverging"])))
            for p in PARAMS:
                ref, got = draws["exact"][p], draws[name][p]
                se = 0.0 if name == "exact" else np.sqrt(got.var() / ess[name][p] + ref.var() / ess["exact"][p])
                per_real[name][p]["shift"].append(float((got.mean() - ref.mean()) / ref.std()))
                per_real[name][p]["ratio"].append(float(got.std() / ref.std()))
                per_real[name][p]["mc_se_shift"].append(float(se / ref.std()))
        exact_sd = ", ".join(f"{p} {draws['exact'][p].std():.3f}" for p in PARAMS)
        print(f"  {case.name} realisation {r}: exact posterior sd {exact_sd} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    out = {}
    for name in VARIANTS:
        out[name] = {"divergences": divergences[name]}
        for p in PARAMS:
            shift, ratio = np.asarray(per_real[name][p]["shift"]), np.asarray(per_real[name][p]["ratio"])
            out[name][p] = {
                "mean_shift": float(shift.mean()),
                "rms_shift": float(np.sqrt(np.mean(shift**2))),
                "mean_ratio": float(ratio.mean()),
                **{f: per_real[name][p][f] for f in fields},
            }
    return out


def biased_case() -> Case:
    sde = VESDE(0.01, 20.0)
    oracle = StationaryGaussianNoise(biased_power(8), scale=2.0, sde=sde)
    levels = np.asarray(sde.t_of_sigma(np.array([0.1, 0.2, 0.4])))  # trained-unit widths
    return Case(name="biased", oracle=oracle, t=float(levels[1]), levels=levels,
                truth={"amp": 8.0, "x0": 0.3, "y0": -0.4},
                prior={"amp": (6.0, 10.0), "x0": (0.0, 1.5), "y0": (0.0, 1.5)}, width=1.5)


def learned_case() -> Case:
    oracle = StationaryGaussianNoise(anisotropic_power((16, 16)))
    levels = np.asarray(oracle.sde.t_of_sigma(np.array([0.2, 0.3, 0.45])))  # unit variance: trained = physical
    return Case(name="learned", oracle=oracle, t=float(levels[1]), levels=levels,
                truth={"amp": 6.0, "x0": 0.6, "y0": -0.8},
                prior={"amp": (5.0, 10.0), "x0": (0.0, 2.0), "y0": (0.0, 2.0)}, width=1.8)


def case_settings(case: Case) -> dict:
    return {
        "event_shape": list(case.shape),
        "scale": float(case.oracle.scale),
        "sde": {"sigma_min": case.oracle.sde.sigma_min, "sigma_max": case.oracle.sde.sigma_max},
        "t": case.t,
        "sigma_t_physical": float(case.oracle.sigma(case.t)),
        "pixel_sd_physical": float(case.oracle.scale * np.sqrt(np.mean(np.asarray(case.oracle.power)))),
        "calibration_levels": case.levels.tolist(),
        "calibration_sigmas_physical": [float(case.oracle.sigma(t)) for t in case.levels],
        "truth": case.truth,
        "prior_normal_mean_sd": {k: list(v) for k, v in case.prior.items()},
        "blob_width_px": case.width,
    }


def table(name: str, score: dict, post: dict) -> str:
    head = f"{'case':8} {'model':13} {'rel.err':>8} {'k=0':>7} " + " ".join(
        f"{p + ' shift (rms) ratio':>27}" for p in PARAMS)
    rows = [head]
    for v in VARIANTS:
        cells = [f"{post[v][p]['mean_shift']:+7.3f} ({post[v][p]['rms_shift']:.3f}) {post[v][p]['mean_ratio']:6.3f}"
                 for p in PARAMS]
        rows.append(f"{name:8} {v:13} {score[v]['rel_error']:8.4f} {score[v]['rel_error_k0']:7.3f} "
                    + " ".join(f"{c:>27}" for c in cells))
    return "\n".join(rows)


def run_case(case: Case, model: NoiseModel, keys, *, realisations, nuts, nodes, n_noise) -> dict:
    k_fit, k_check, k_cal, k_diag, k_post = keys
    fit_noise = np.asarray(case.oracle.sample(k_fit, (n_noise,)))
    check_noise = np.asarray(case.oracle.sample(k_check, (n_noise,)))
    start = time.perf_counter()
    variants = calibrated(model, fit_noise, case.levels, k_cal)
    score = score_level(case, variants, check_noise, k_diag)
    post = posteriors(case, variants, realisations=realisations, key=k_post, nuts=nuts, nodes=nodes)
    print(table(case.name, score, post), flush=True)
    return {"settings": case_settings(case), "realisations": realisations, "score_level": score,
            "posterior": post, "seconds": time.perf_counter() - start}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # Per case (biased, learned). The learned case is the slow one: NUTS evaluates the net inside
    # XLA while loops, where CPU convolutions run many times slower (docs/noise_validation.md).
    parser.add_argument("--realisations", type=int, nargs=2, default=[6, 3], metavar=("BIASED", "LEARNED"))
    parser.add_argument("--warmup", type=int, nargs=2, default=[500, 250], metavar=("BIASED", "LEARNED"))
    parser.add_argument("--samples", type=int, nargs=2, default=[1500, 400], metavar=("BIASED", "LEARNED"),
                        help="per chain; the exact posterior gets twice as many")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1000, help="training steps of the learned model")
    parser.add_argument("--noise-patches", type=int, default=2000, help="for calibration and for diagnostics, each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "calibration_posterior.json"))
    args = parser.parse_args(argv)
    nuts = [{"warmup": w, "samples": n, "chains": args.chains, "exact_factor": 2}
            for w, n in zip(args.warmup, args.samples)]
    nodes = 2
    start = time.perf_counter()
    key = jax.random.key(args.seed)
    k_biased, k_learned, k_train = jax.random.split(key, 3)

    case_a = biased_case()
    result_a = run_case(case_a, BiasedScore(case_a.oracle), jax.random.split(k_biased, 5),
                        realisations=args.realisations[0], nuts=nuts[0], nodes=nodes, n_noise=args.noise_patches)
    result_a["settings"].update({"offset_trained": 0.3, "gain_low_k": 2.0, "low_k": "k = 0 and |k| = 1"})

    case_b = learned_case()
    net = UNetConfig(width=8, channel_mults=(1,), embed_dim=16, groups=4)
    config = TrainConfig(batch_size=32, learning_rate=3e-3, backbone=False, log_every=max(1, args.steps // 10))
    k_data, k_init = jax.random.split(k_train)
    train = np.asarray(case_b.oracle.sample(k_data, (2048,)))
    history: list = []
    t_train = time.perf_counter()
    learned = train_noise_model(train, steps=args.steps, key=k_init, net=net, config=config, progress=False,
                                history=history)
    t_train = time.perf_counter() - t_train
    print(f"learned: {args.steps} steps in {t_train:.0f} s, final train loss {history[-1]['train_loss']:.4f}",
          flush=True)
    result_b = run_case(case_b, learned, jax.random.split(k_learned, 5),
                        realisations=args.realisations[1], nuts=nuts[1], nodes=nodes, n_noise=args.noise_patches)
    result_b["settings"].update({
        "net": net.to_dict(), "train_config": config.to_dict(), "train_steps": args.steps,
        "train_patches": int(train.shape[0]), "train_seconds": t_train,
        "train_loss_history": [{"step": h["step"], "train_loss": h["train_loss"]} for h in history],
    })

    result = {
        "description": __doc__.split("\n\n")[0],
        "command": " ".join(["python benchmarks/calibration_posterior.py", *(sys.argv[1:] if argv is None else argv)]),
        "nuts": {"biased": nuts[0], "learned": nuts[1], "chain_method": "vectorized", "line_nodes": nodes},
        "noise_patches": args.noise_patches,
        "seed": args.seed,
        "cases": {"biased": result_a, "learned": result_b},
        "versions": {"jax": jax.__version__, "numpyro": numpyro.__version__, "python": platform.python_version()},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "seconds": time.perf_counter() - start,
    }
    atomic_write_json(args.out, result, indent=1)
    print(f"wrote {args.out} ({result['seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
