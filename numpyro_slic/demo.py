"""The embedded end-to-end demo: a simulated JWST lens in real JWST noise, three likelihoods.

1. Load the shipped JWST NIRCam F150W noise model, PSF (0.03"/pixel) and held-out real sky patches.
2. Simulate an SIE + shear lens of a Sersic source with that PSF and pixel scale, and add one real
   held-out JWST noise patch (in units of the sky's robust sigma, which is what the model was
   trained in).
3. Run NUTS three times on the same data: a white Gaussian of the same pixel variance, a stationary
   (correlated) Gaussian with P(k) from the other held-out patches, and SLIC (ScoreLikelihood with
   the learned noise model).
4. Print each posterior beside the truth (ArviZ summary) and save a corner plot of the three
   posteriors over the truth, plus the data, model and residual images, to ``out_dir``.

The score is evaluated at a small diffusion level t (``level_sigma`` noise sd): the observation is
perturbed once at that level (docs/design.md section 1.2) and all three likelihoods are evaluated at the
same level, so the comparison is like for like. Chains start at the true parameters: this compares
posteriors, not optimisers.

Cost. The shipped JWST model is energy-parameterised, so SLIC's value and gradient are one network
forward and backward pass (energy="exact", consistent by construction; a score-parameterised model
would need energy="line", whose value is path-dependent, docs/likelihood.md). The posterior sds span
four decades in NumPyro's unconstrained space, so every run uses the Laplace approximation of the
stationary-Gaussian posterior at the truth (a 13 x 13 Hessian) as a fixed dense metric and only
adapts the step size (the learned model's own Hessian needs second derivatives through the network:
more than 160 s on an H200); trajectories are capped at 2^max_tree_depth - 1 steps. The source's
Sersic index is held at its true value: the amplitude / radius / index degeneracy lengthens
trajectories and says nothing about the noise.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["DemoConfig", "DemoProblem", "demo_potential", "demo_problem", "run_demo", "TRUTH"]

# A galaxy-scale lens at 0.03"/pixel: theta_E = 0.5" (17 pixels), in units of the sky's sigma.
TRUTH = {
    "lens_theta_E": 0.5,
    "lens_e1": 0.08,
    "lens_e2": -0.05,
    "lens_center_x": 0.01,
    "lens_center_y": -0.02,
    "shear_gamma1": 0.03,
    "shear_gamma2": -0.02,
    "source_amp": 4000.0,
    "source_R_sersic": 0.08,
    "source_n_sersic": 1.5,
    "source_e1": 0.1,
    "source_e2": 0.05,
    "source_center_x": 0.04,
    "source_center_y": 0.03,
}
CORNER_PARAMS = ("lens_theta_E", "lens_e1", "lens_e2", "shear_gamma1", "shear_gamma2", "source_amp")


@dataclass(frozen=True)
class DemoConfig:
    """Settings of ``numpyro-slic demo`` (its flags).

    Attributes:
        size: image side (pixels of 0.03"), at most 64 (the held-out patches' size).
        seed: picks the noise patch, the data perturbation and the chains' keys.
        num_warmup: NUTS warmup per likelihood (adapts the step size; the metric is the Laplace one).
        num_samples: draws per likelihood.
        max_tree_depth: cap of the NUTS trajectories (2^depth - 1 gradient evaluations per draw).
        noise_model: shipped name or bundle path of the learned noise model.
        level_sigma: diffusion level, as the sd of the one-off perturbation (sky-sigma units).
        nodes: line-integral nodes, used only for a score-parameterised noise model.
        out_dir: where corner.png, images.png and summary.json go.
        progress: NUTS progress bars.
    """

    size: int = 48
    seed: int = 0
    num_warmup: int = 50
    num_samples: int = 300
    max_tree_depth: int = 4
    noise_model: str = "jwst-nircam-f150w"
    level_sigma: float = 0.1
    nodes: int = 4
    out_dir: str = "outputs/demo"
    progress: bool = True


@dataclass(frozen=True, eq=False)
class DemoProblem:
    """The demo's lens problem, shared by ``run_demo`` and benchmarks/lens_samplers.py.

    Attributes:
        simulator: LensSimulator on the size x size grid (0.03"/pixel, shipped PSF, supersampling 2).
        data: (size, size) clean image + one real noise patch, perturbed once at ``level_sigma``.
        clean: (size, size) the noise-free image at TRUTH.
        noise_patch_index: which shipped held-out patch is the noise (the others fit the Gaussians).
        noises: likelihood name -> noise model ("white Gaussian", "stationary Gaussian", "SLIC").
        levels: likelihood name -> diffusion level t of that noise model with sd ``level_sigma``.
        priors: lens_priors with the source Sersic index held at its true value.
        free: names of the sampled parameters.
    """

    simulator: object
    data: np.ndarray
    clean: np.ndarray
    noise_patch_index: int
    noises: dict
    levels: dict
    priors: dict
    free: tuple[str, ...]


def demo_problem(size: int = 64, seed: int = 0, noise_model: str = "jwst-nircam-f150w",
                 level_sigma: float = 0.1) -> DemoProblem:
    """Builds the demo's data and likelihoods (no inference); see the module docstring."""
    import jax
    import jax.numpy as jnp

    from .data import load_shipped
    from .problems.lens import lens_priors, likelihood_noise
    from .lensing import LensSimulator, PixelGrid
    from .likelihood import level_for_sigma, perturb_observation
    from .noise.bundle import load_noise_model

    val = load_shipped("jwst-f150w-sky-val").patches
    if not 16 <= size <= val.shape[-1]:
        raise ValueError(
            f"demo: size must be between 16 and the shipped held-out patches' {val.shape[-1]} pixels, got {size}."
        )
    rng = np.random.default_rng(seed)
    index = int(rng.integers(len(val)))
    noise_patch = np.asarray(val[index, :size, :size])
    others = np.asarray(np.delete(val, index, axis=0)[:, :size, :size])

    # The held-out patches are in the model's trained units (sky sigma = 1): use it at scale 1.
    learned = load_noise_model(noise_model).with_scale(1.0)
    psf = load_shipped("jwst-f150w-psf")
    sim = LensSimulator(PixelGrid(size, size, psf.pixel_scale), psf=psf.kernel, supersampling=2)
    # One compiled call: op-by-op dispatch of the simulator costs seconds of small compilations.
    clean = np.asarray(jax.jit(lambda s, p: s(p))(sim, {k: jnp.asarray(v) for k, v in TRUTH.items()}))
    noises = {
        "white Gaussian": likelihood_noise("white", patches=others),
        "stationary Gaussian": likelihood_noise("stationary", patches=others),
        "SLIC": likelihood_noise("slic", learned=learned),
    }
    # One perturbation, shared by all three likelihoods; each evaluates at the level of its own
    # schedule that has the same physical width.
    t = level_for_sigma(learned, level_sigma)
    data = np.asarray(perturb_observation(jax.random.key(seed), clean + noise_patch, learned, t))
    return DemoProblem(
        simulator=sim,
        data=data,
        clean=clean,
        noise_patch_index=index,
        noises=noises,
        levels={name: level_for_sigma(noise, level_sigma) for name, noise in noises.items()},
        priors={**lens_priors(flux_scale=TRUTH["source_amp"]), "source_n_sersic": TRUTH["source_n_sersic"]},
        free=tuple(p for p in TRUTH if p != "source_n_sersic"),
    )


def demo_potential(problem: DemoProblem, likelihood: str = "stationary Gaussian"):
    """The demo posterior under one likelihood on NumPyro's flat unconstrained vector, started at TRUTH.

    Args:
        problem: from ``demo_problem``.
        likelihood: a key of ``problem.noises``.

    Returns:
        ``numpyro_slic.infer.FlatPotential``: ``.potential`` maps a (P,) vector to -log posterior
        (nats, up to a constant), P = 13 free parameters; ``.z`` is TRUTH as such a vector.
    """
    from .infer.laplace import flat_potential
    from .problems.lens import lens_model

    return flat_potential(
        lens_model, init_values=TRUTH, model_args=(problem.data,),
        model_kwargs=dict(simulator=problem.simulator, noise=problem.noises[likelihood], priors=problem.priors,
                          t=problem.levels[likelihood]),
    )


def run_demo(config: DemoConfig = DemoConfig()) -> dict:
    """Runs the demo; returns posterior summaries and timings (also written to out_dir/summary.json)."""
    import jax
    import jax.numpy as jnp
    from numpyro.infer import MCMC, NUTS, init_to_value

    from .data.io import atomic_write_json
    from .diagnostics import summary
    from .infer.laplace import laplace_inverse_mass
    from .problems.lens import anchored_reference, lens_model

    if config.num_samples <= len(CORNER_PARAMS):
        raise ValueError(
            f"demo: num_samples must exceed the {len(CORNER_PARAMS)} corner-plot parameters, got {config.num_samples}."
        )
    os.makedirs(config.out_dir, exist_ok=True)
    problem = demo_problem(config.size, config.seed, config.noise_model, config.level_sigma)
    sim, data = problem.simulator, problem.data
    learned = problem.noises["SLIC"]
    if not learned.has_log_prob:
        print(
            "numpyro-slic demo: the noise model is score-parameterised, so SLIC's value is a line integral "
            "whose differences are path-dependent (docs/likelihood.md); NUTS may be slow or inaccurate. "
            "Use an energy-parameterised model (numpyro-slic train --parameterisation energy)."
        )
    print(
        f"numpyro-slic demo: {config.size}x{config.size} lens at 0.03\"/pixel, real JWST F150W noise patch "
        f"#{problem.noise_patch_index}, peak S/N {problem.clean.max():.1f}; NUTS with {config.num_warmup} "
        f"warmup + {config.num_samples} draws per likelihood"
    )
    key = jax.random.key(config.seed + 1)
    # The Laplace metric of the cheap stationary-Gaussian posterior at TRUTH, for every likelihood:
    # the posterior sds span four decades in unconstrained space (lens centres 0.002", log amplitude
    # 0.03, ellipticities 0.01 to 0.02), so with the identity metric the first warmup window runs at
    # step sizes near 1e-4. The demo's SLIC posterior sds are within about 25% of its sds; SLIC's own
    # Hessian differentiates the network twice (more than 160 s on an H200, against 27 s).
    flat = demo_potential(problem, "stationary Gaussian")
    metric = laplace_inverse_mass(flat.potential, flat.z)
    results, posteriors, reference = {}, {}, None
    for name, noise in problem.noises.items():
        slic = name == "SLIC"
        kernel = NUTS(
            lens_model,
            init_strategy=init_to_value(values=TRUTH),
            dense_mass=True,
            inverse_mass_matrix=metric,
            adapt_mass_matrix=False,
            max_tree_depth=config.max_tree_depth,
        )
        mcmc = MCMC(
            kernel,
            num_warmup=config.num_warmup,
            num_samples=config.num_samples,
            progress_bar=config.progress,
        )
        key, k_run = jax.random.split(key)
        start = time.perf_counter()
        mcmc.run(
            k_run, data, simulator=sim, noise=noise, priors=problem.priors, t=problem.levels[name],
            nodes=config.nodes, reference=reference if slic else None, extra_fields=("num_steps",),
        )
        samples = {k: np.asarray(v) for k, v in mcmc.get_samples().items()}  # waits for the chain
        seconds = time.perf_counter() - start
        if name == "stationary Gaussian" and not learned.has_log_prob:  # start SLIC's line integral there
            reference = anchored_reference(data, sim, {**TRUTH, **{k: v.mean() for k, v in samples.items()}})
        table = summary(mcmc, var_names=list(problem.free))
        table.insert(0, "truth", [TRUTH[p] for p in table.index])
        print(f"\n{name} likelihood ({seconds:.0f} s)")
        print(table.drop(columns=["r_hat"]).to_string(float_format=lambda v: f"{v:.4g}"))  # 1 chain: no R-hat
        posteriors[name] = samples
        num_steps = np.asarray(mcmc.get_extra_fields()["num_steps"])
        results[name] = {
            "seconds": seconds,
            "t": problem.levels[name],
            "mean_leapfrog_steps": float(num_steps.mean()),
            "min_ess_bulk": float(table["ess_bulk"].min()),
            "summary": json.loads(table.to_json(orient="index")),
            "truth_z": {p: float((samples[p].mean() - TRUTH[p]) / samples[p].std()) for p in problem.free},
        }

    from .diagnostics.plots import corner_plot, residual_plot

    corner_path = os.path.join(config.out_dir, "corner.png")
    corner_plot(posteriors, TRUTH, CORNER_PARAMS, corner_path)
    images_path = os.path.join(config.out_dir, "images.png")
    best = {k: jnp.asarray(np.median(v)) for k, v in posteriors["SLIC"].items()}
    residual_plot(data, np.asarray(sim({**TRUTH, **best})), images_path)
    out = {
        "config": config.__dict__,
        "noise_patch_index": problem.noise_patch_index,
        "peak_snr": float(problem.clean.max()),
        "results": results,
        "figures": [corner_path, images_path],
    }
    summary_path = os.path.join(config.out_dir, "summary.json")
    atomic_write_json(summary_path, out, indent=2, default=float)
    print("\n|posterior mean - truth| / posterior sd, averaged over parameters: " + ", ".join(
        f"{name} {np.mean(np.abs(list(r['truth_z'].values()))):.2f}" for name, r in results.items()
    ))
    print(f"wrote {corner_path}, {images_path}, {summary_path}")
    return out
