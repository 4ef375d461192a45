"""Fit the real JWST COSMOS-Web Einstein ring (NIRCam F150W) under SLIC and Gaussian likelihoods.

    python scripts/fit_cosmos_web_ring.py --likelihoods slic,stationary,white

Model: SIE + external shear lensing an elliptical Sersic source, plus an elliptical Sersic lens
light and a constant sky offset, through the shipped F150W PSF at 0.03"/pixel (supersampling 2).
The same NumPyro model (``numpyro_slic.problems.lens_model``) runs under each likelihood; only
the noise model changes:

- ``slic``: the learned JWST F150W noise model (``--noise-model``, a shipped name or a bundle path);
- ``stationary``: a correlated Gaussian, P(k) from the shipped held-out real sky patches;
- ``white``: an i.i.d. Gaussian of those patches' pixel variance.

Units. The noise models live in noise-map-whitened units, so the fit does too:
d' = (data - sky) / noise_map / s and M'(theta) = (M(theta) + sky offset) / noise_map / s, where s is
the robust sigma recorded with the shipped sky patches (the learned model's ``scale`` in units of
(data - sky) / noise_map; it is checked to agree, and the model is rescaled to scale 1 in d' units).
The whitened simulator and the mask fill are ``numpyro_slic.problems.whitening``.

Masked pixels carry no information about theta: the cutout's mask (another galaxy) and, by
default, the lens light's unresolved core (``--core-radius`` 3.5 pixels, where a single Sersic
leaves residuals of tens of sigma and makes the posterior geometry too hard for NUTS). There the
data are replaced by the same pixels of one real held-out sky patch (not used for the Gaussian
baselines) and the model by 0, so their residual is a fixed, real, theta-independent noise
realisation. The score models are image models and see a noise-like residual everywhere (a zero
residual would be noise-free, i.e. off the training data of the learned model).

Inference: the observation is perturbed once at diffusion width ``--level-sigma`` (sky-sigma units;
the likelihood at that level is then exact, docs/design.md section 1) and every likelihood is evaluated
at that same width. Per likelihood: Adam (optax) on the negative log posterior in NumPyro's
unconstrained space (``numpyro_slic.infer.find_map``; the first from a rough initial guess with
amplitudes by linear least squares, later ones refining the previous MAP point), then NUTS with a dense mass matrix from jittered copies
of that MAP point. The Gaussian likelihoods run first; SLIC's warmup starts from the step size and
dense mass matrix the first of them adapted (same model and data), so it needs fewer warmup draws,
and ``--slic-max-tree-depth`` caps its cost per draw (each leapfrog step is one network gradient).

SLIC's log-density value is consistent with its gradient here: the shipped JWST model is energy-parameterised
(``has_log_prob``), so ScoreLikelihood's default ``energy="exact"`` gives a value whose gradient is
the learned score by construction, which is what NUTS needs. A score-parameterised model
(``--noise-model`` naming such a bundle) has no consistent value (docs/likelihood.md, "Learned
scores are not exactly conservative"); the script then falls back to numpyro_slic's MALA on the
gradient only (``energy="none"``), whose Metropolis test integrates the score along each proposal
(``--line-nodes`` Gauss-Lobatto nodes), with ``--mala-thinning`` MALA steps per kept draw. That
choice is ``numpyro_slic.infer.score_kernel``.

Outputs: an ArviZ summary per likelihood (94% HDI) on stdout; a JSON file (``--out``) with the
posterior summaries, MAP points, timings and residual statistics; a corner plot of the lens
parameters with the likelihoods overlaid and a data/model/residual figure (``--fig-dir``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Bool, Float

__all__ = [
    "FitConfig", "RingData", "load_ring", "ring_simulator", "ring_priors", "fit_ring", "parse_config", "main",
]

LENS_PARAMS = (
    "lens_theta_E", "lens_e1", "lens_e2", "lens_center_x", "lens_center_y", "shear_gamma1", "shear_gamma2",
)
CORNER_PARAMS = ("lens_theta_E", "lens_e1", "lens_e2", "shear_gamma1", "shear_gamma2", "lens_center_x", "lens_center_y")


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """Settings of one run (the command-line flags).

    Attributes:
        likelihoods: any of "slic", "stationary", "white", in the order they run.
        size: side of the square crop around the lens (pixels, multiple of 4).
        num_warmup, num_samples: NUTS warmup and kept draws per chain, Gaussian likelihoods.
        num_chains: chains per likelihood (SLIC too).
        chain_method: "sequential" (best on CPU) or "vectorized" (chains in lockstep; on a GPU two
            chains then cost about one, since a 72 x 72 network call does not fill the device).
        seed: PRNG seed (perturbation, jitter, samplers).
        map_steps: Adam steps of the first MAP search (from the rough initial guess).
        refine_steps: Adam steps refining the previous MAP point under each later likelihood.
        slic_warmup, slic_samples: SLIC's warmup and kept draws per chain (NUTS; warmup adapts step
            size and dense mass matrix, starting from a Gaussian run's when there is one).
        slic_max_tree_depth: NUTS tree-depth cap of SLIC (2^depth - 1 network gradients a draw at most).
        mala_thinning, line_nodes: only for a score-parameterised noise model (MALA fallback): MALA
            steps per kept draw (warmup too), and Gauss-Lobatto nodes of the Metropolis line
            integral (K - 1 gradients a step).
        core_radius: also mask pixels closer than this to the lens light peak (pixels; 0: none).
        level_sigma: diffusion width of the one-off data perturbation (sky-sigma units).
        noise_model: shipped name or bundle path of the learned noise model.
        fill_index: which shipped sky patch fills the masked pixels (left out of the baselines).
        supersampling: sub-pixels per pixel side in the simulator.
        max_tree_depth: NUTS tree-depth cap of the Gaussian runs (2^depth - 1 gradients at most).
        out: JSON output path; fig_dir: figure directory (None: no figures).
        progress: show NUTS progress bars.
    """

    likelihoods: tuple[str, ...] = ("slic", "stationary", "white")
    size: int = 72
    num_warmup: int = 300
    num_samples: int = 300
    num_chains: int = 2
    chain_method: str = "sequential"
    seed: int = 0
    map_steps: int = 1000
    refine_steps: int = 200
    slic_warmup: int = 200
    slic_samples: int = 300
    slic_max_tree_depth: int = 6
    mala_thinning: int = 16
    line_nodes: int = 3
    core_radius: float = 3.5
    level_sigma: float = 0.2
    noise_model: str = "jwst-nircam-f150w"
    fill_index: int = 0
    supersampling: int = 2
    max_tree_depth: int = 8
    out: str = "outputs/real_lens/real_lens_fit.json"
    fig_dir: str | None = "outputs/real_lens"  # docs/figures holds the committed ones: --fig-dir docs/figures
    progress: bool = True


@dataclasses.dataclass(frozen=True, eq=False)
class RingData:
    """The cropped ring, ready for a fit in whitened units.

    Attributes:
        data: (H, W) whitened data d' = (data - sky) / noise_map / s; masked pixels hold the fill.
        mask: (H, W) True where the cutout's mask is set (another galaxy).
        noise_map: (H, W) per-pixel noise rms (data units).
        psf: (K, K) PSF kernel, unit sum.
        patches: (N, 64, 64) held-out real sky patches (d' units) for the Gaussian baselines.
        sky: background subtracted from the data (data units).
        scale: s, the sky patches' robust sigma (units of (data - sky) / noise_map).
        sky_unit: data units per unit of the ``sky`` parameter (s times the median noise map).
        pixel_scale: arcsec per pixel.
        origin: (row, col) of the crop in the shipped 128 x 128 cutout.
        lens_xy: (x, y) of the lens light centroid on the crop's grid (arcsec).
    """

    data: Float[np.ndarray, "H W"]
    mask: Bool[np.ndarray, "H W"]
    noise_map: Float[np.ndarray, "H W"]
    psf: Float[np.ndarray, "K K"]
    patches: Float[np.ndarray, "N P P"]
    sky: float
    scale: float
    sky_unit: float
    pixel_scale: float
    origin: tuple[int, int]
    lens_xy: tuple[float, float]


def load_ring(size: int = 80, *, fill_index: int = 0, core_radius: float = 0.0) -> RingData:
    """Crops the shipped COSMOS-Web F150W cutout around the lens and whitens it (see RingData).

    The sky is the 3-sigma-clipped median of the cutout's unmasked pixels more than 50 pixels (1.5")
    from the lens; the fit adds a free constant offset to it.
    """
    from astropy.stats import sigma_clipped_stats

    from numpyro_slic.data import load_shipped
    from numpyro_slic.problems import fill_masked

    if size % 4 or not 16 <= size <= 120:
        raise ValueError(f"--size must be a multiple of 4 in [16, 120] (the cutout is 128 pixels), got {size}.")
    cut = load_shipped("cosmos-web-ring-f150w")
    val = load_shipped("jwst-f150w-sky-val")
    (source,) = val.provenance["sources"]
    scale = float(source["sigma"])
    if not 0 <= fill_index < len(val.patches):
        raise ValueError(f"--fill-index must be in [0, {len(val.patches)}), got {fill_index}.")

    peak = np.unravel_index(np.argmax(cut.data), cut.data.shape)
    r0, c0 = peak[0] - size // 2, peak[1] - size // 2
    if r0 < 0 or c0 < 0 or r0 + size > cut.data.shape[0] or c0 + size > cut.data.shape[1]:
        raise ValueError(f"--size {size} does not fit in the cutout around the lens at {peak}; use a smaller size.")
    rows, cols = slice(r0, r0 + size), slice(c0, c0 + size)

    yy, xx = np.mgrid[: cut.data.shape[0], : cut.data.shape[1]]
    far = (np.hypot(yy - peak[0], xx - peak[1]) > 50) & ~cut.mask
    _, sky, _ = sigma_clipped_stats(cut.data[far], sigma=3.0)

    noise_map = cut.noise_map[rows, cols]
    mask = cut.mask[rows, cols] | (np.hypot(yy - peak[0], xx - peak[1]) < core_radius)[rows, cols]
    data = (cut.data[rows, cols] - sky) / noise_map / scale
    grid_y = (np.arange(size) - (size - 1) / 2) * cut.pixel_scale
    core = np.s_[size // 2 - 2: size // 2 + 3]
    weights = np.clip(data[core, core], 0, None)
    lens_x = float((weights * grid_y[None, core]).sum() / weights.sum())
    lens_y = float((weights * grid_y[core, None]).sum() / weights.sum())
    data = fill_masked(data, mask, val.patches[fill_index])
    patches = np.delete(val.patches, fill_index, axis=0)

    return RingData(
        data=data.astype(np.float32),
        mask=mask,
        noise_map=noise_map.astype(np.float32),
        psf=cut.psf.kernel,
        patches=np.asarray(patches, dtype=np.float32),
        sky=float(sky),
        scale=scale,
        sky_unit=float(scale * np.median(noise_map)),
        pixel_scale=float(cut.pixel_scale),
        origin=(int(r0), int(c0)),
        lens_xy=(lens_x, lens_y),
    )


def ring_simulator(ring: RingData, supersampling: int = 2):
    """params -> M'(theta) in the whitened units of ``ring.data`` (0 on masked pixels).

    ``params`` is LensSimulator's flat dict plus ``"sky"``, a constant offset in units of ``ring.sky_unit``.
    """
    from numpyro_slic.lensing import LensSimulator, PixelGrid
    from numpyro_slic.problems import WhitenedSimulator

    size = ring.data.shape[0]
    lens = LensSimulator(PixelGrid(size, size, ring.pixel_scale), psf=ring.psf, supersampling=supersampling)
    return WhitenedSimulator(lens, ring.noise_map, ring.scale, mask=ring.mask, sky_unit=ring.sky_unit)


def ring_priors(ring: RingData) -> dict:
    """``lens_priors`` (SIE + shear + Sersic source + Sersic lens light) plus a sky offset.

    Amplitude priors are log-uniform over [1, 1e4] flux/arcsec^2 (flux_scale 100: the ring is about
    70, the lens light's R_sersic brightness a few hundred); Einstein radius uniform on
    [0.2", 2.0"]; lens mass and light centres Normal(centroid of the light, 0.1"); sky offset
    Normal(0, 0.5) in units of ``ring.sky_unit`` (about the sky's pixel sigma).
    """
    import numpyro.distributions as dist

    from numpyro_slic.problems import lens_priors

    priors = lens_priors(flux_scale=100.0, lens_light=True)
    x0, y0 = ring.lens_xy
    for prefix in ("lens_", "lens_light_"):
        priors[prefix + "center_x"] = dist.Normal(x0, 0.1)
        priors[prefix + "center_y"] = dist.Normal(y0, 0.1)
    priors["sky"] = dist.Normal(0.0, 0.5)
    return priors


def _initial_guess(ring: RingData, sim) -> dict[str, float]:
    """A rough start: theta_E 0.75" (the ring's radius by eye), round lens, source behind the lens,
    de Vaucouleurs-like lens light; amplitudes and sky by linear least squares on the whitened data."""
    x0, y0 = ring.lens_xy
    shape = {
        "lens_theta_E": 0.75, "lens_e1": 0.0, "lens_e2": 0.0, "lens_center_x": x0, "lens_center_y": y0,
        "shear_gamma1": 0.0, "shear_gamma2": 0.0,
        "source_R_sersic": 0.1, "source_n_sersic": 1.0, "source_e1": 0.0, "source_e2": 0.0,
        "source_center_x": x0, "source_center_y": y0,
        "lens_light_R_sersic": 0.2, "lens_light_n_sersic": 3.0, "lens_light_e1": 0.0, "lens_light_e2": 0.0,
        "lens_light_center_x": x0, "lens_light_center_y": y0,
    }
    columns = []
    sim = eqx.filter_jit(sim)
    for amps in ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)):
        p = shape | {"source_amp": amps[0], "lens_light_amp": amps[1], "sky": amps[2]}
        columns.append(np.asarray(sim({k: jnp.asarray(v) for k, v in p.items()})).ravel())
    coef, *_ = np.linalg.lstsq(np.stack(columns, 1), np.where(ring.mask, 0.0, ring.data).ravel(), rcond=None)
    return shape | {
        "source_amp": float(np.clip(coef[0], 2.0, 5e3)),
        "lens_light_amp": float(np.clip(coef[1], 2.0, 5e3)),
        "sky": float(np.clip(coef[2], -1.0, 1.0)),
    }


def _noise_models(config: FitConfig, ring: RingData) -> dict:
    from numpyro_slic.problems import LIKELIHOODS, likelihood_noise, wrapped_stationary_noise

    unknown = [k for k in config.likelihoods if k not in LIKELIHOODS]
    if unknown:
        raise ValueError(f"unknown likelihood(s) {unknown}; choose from {LIKELIHOODS}.")
    size = ring.data.shape[0]
    noises = {}
    for kind in config.likelihoods:
        if kind == "slic":
            from numpyro_slic.noise.bundle import load_noise_model

            learned = load_noise_model(config.noise_model)
            # The model's scale is in units of (data - sky) / noise_map; the fit divides by s too.
            if abs(learned.scale / ring.scale - 1) > 1e-3:
                print(
                    f"note: the learned model's scale {learned.scale:.4f} differs from the sky patches' "
                    f"sigma {ring.scale:.4f}; using scale {learned.scale / ring.scale:.4f} in fit units"
                )
            base = getattr(learned, "base", learned)
            if base.event_shape is not None and tuple(base.event_shape) != (size, size):
                raise ValueError(
                    f"the noise model {config.noise_model!r} is fixed to {tuple(base.event_shape)} images; "
                    f"run with --size {base.event_shape[0]}."
                )
            if learned is base:
                learned = learned.with_scale(learned.scale / ring.scale)
            else:  # a CalibratedNoise: rescale its base
                learned = eqx.tree_at(lambda m: m.base, learned, base.with_scale(base.scale / ring.scale))
            noises[kind] = likelihood_noise("slic", learned=learned)
        elif kind == "stationary":
            noises[kind] = wrapped_stationary_noise(ring.patches, size)
        else:
            noises[kind] = likelihood_noise("white", patches=ring.patches)
    return noises


def _slic_kernel(config: FitConfig, noise, adapted: tuple[float, dict] | None):
    """SLIC's sampler (``score_kernel``: NUTS on an exact log_prob, else MALA on the gradient), started
    from the step size and dense metric of the first Gaussian run when there is one.

    Returns (ScoreKernel, steps per kept draw, description)."""
    from numpyro_slic.infer import score_kernel
    from numpyro_slic.problems import lens_model

    step_size, matrix = adapted if adapted is not None else (None, None)
    chosen = score_kernel(lens_model, noise, step_size=step_size, inverse_mass_matrix=matrix,
                          max_tree_depth=config.slic_max_tree_depth, line_nodes=config.line_nodes)
    source = "the first Gaussian run's" if adapted is not None else "the identity"
    what = "and step size " if chosen.has_value else ""
    thinning = 1 if chosen.has_value else config.mala_thinning
    return chosen, thinning, f"{chosen.description} {what}adapted from {source}"


def _residual_stats(ring: RingData, residual: np.ndarray) -> dict:
    r = residual[~ring.mask]
    lens_r = np.hypot(*np.meshgrid(*(np.arange(ring.data.shape[0]) - (ring.data.shape[0] - 1) / 2,) * 2))
    near = (lens_r < 36) & ~ring.mask
    return {
        "rms_all": float(np.sqrt(np.mean(r**2))),
        "rms_within_36px": float(np.sqrt(np.mean(residual[near] ** 2))),
        "sky_patches_rms": float(np.sqrt(np.mean(ring.patches**2))),
        "max_abs": float(np.abs(r).max()),
    }


def fit_ring(config: FitConfig) -> dict:
    """Runs the fit for every likelihood in ``config``; returns the results (also written to config.out).

    Returns a dict with "config", "data" (crop, units, sky), "results" (per likelihood: t, seconds,
    MAP point and potential, "summary" {param: {mean, sd, hdi94_lb, hdi94_ub, ess_bulk, r_hat, ...}},
    divergences, residual stats) and "figures".
    """
    from numpyro.infer import MCMC, NUTS

    from numpyro_slic.diagnostics import summary
    from numpyro_slic.infer import adapted_metric, find_map, flat_potential
    from numpyro_slic.problems import lens_model
    from numpyro_slic.likelihood import level_for_sigma, perturb_observation

    start_all = time.perf_counter()
    ring = load_ring(config.size, fill_index=config.fill_index, core_radius=config.core_radius)
    sim = ring_simulator(ring, config.supersampling)
    priors = ring_priors(ring)
    noises = _noise_models(config, ring)
    init = _initial_guess(ring, sim)

    key = jax.random.key(config.seed)
    key, k_perturb = jax.random.split(key)
    first = next(iter(noises.values()))
    # One perturbation shared by all likelihoods (each evaluates at its level of the same width).
    obs = np.asarray(perturb_observation(k_perturb, ring.data, first, level_for_sigma(first, config.level_sigma)))
    params = [k for k, v in priors.items() if not isinstance(v, float)]

    print(
        f"COSMOS-Web ring, F150W: {config.size}x{config.size} crop at cutout (row, col) {ring.origin}, "
        f"{int(ring.mask.sum())} masked pixels filled with real sky; sky {ring.sky:.5f}, s = {ring.scale:.4f}; "
        f"level sigma {config.level_sigma}; {config.num_chains} chain(s) per likelihood ({config.chain_method}): "
        f"{config.num_warmup} warmup + {config.num_samples} draws (Gaussian), {config.slic_warmup} + "
        f"{config.slic_samples} (SLIC)"
    )
    results, posteriors, medians = {}, {}, {}
    start_values, adapted = init, None
    for kind in sorted(noises, key=lambda k: k == "slic"):  # the Gaussian runs first: SLIC reuses their adaptation
        noise = noises[kind]
        t = level_for_sigma(noise, config.level_sigma)
        slic = kind == "slic"
        model_kwargs = {"data": obs, "simulator": sim, "noise": noise, "priors": priors, "t": t}
        if slic:
            chosen, thinning, sampler = _slic_kernel(config, noise, adapted)
            kernel, fields, has_value = chosen.kernel, chosen.extra_fields, chosen.has_value
            model_kwargs |= chosen.model_kwargs
            warmup, samples_ = config.slic_warmup * thinning, config.slic_samples * thinning
        else:
            kernel = NUTS(lens_model, dense_mass=True, target_accept_prob=0.8, max_tree_depth=config.max_tree_depth)
            fields, thinning, sampler = ("diverging", "num_steps", "accept_prob"), 1, "NUTS, dense mass matrix adapted"
            has_value = True
            warmup, samples_ = config.num_warmup, config.num_samples
        key, k_map, k_jitter, k_run = jax.random.split(key, 4)
        start = time.perf_counter()
        # The first MAP search starts at the rough guess; later ones refine the previous MAP point.
        # (Without a likelihood value, MALA's case, the potential is the prior's.)
        steps = config.map_steps if start_values is init else config.refine_steps
        flat = flat_potential(lens_model, init_values=start_values, model_kwargs=model_kwargs, key=k_map)
        z_map, map_potential = find_map(flat.potential, flat.z, steps)
        map_values = {k: float(v) for k, v in flat.constrain(z_map).items()}
        start_values = map_values
        map_seconds = time.perf_counter() - start
        # Jittered starts (0.01 in unconstrained units) so that chains are not identical copies.
        jitter = 0.01 * jax.random.normal(k_jitter, (config.num_chains,) + z_map.shape, z_map.dtype)
        init_params = jax.vmap(flat.unravel)(z_map + jitter)
        if config.num_chains == 1:
            init_params = jax.tree_util.tree_map(lambda x: x[0], init_params)
        mcmc = MCMC(kernel, num_warmup=warmup, num_samples=samples_, num_chains=config.num_chains,
                    thinning=thinning, chain_method=config.chain_method, progress_bar=config.progress)
        mcmc.run(k_run, init_params=init_params, extra_fields=fields, **model_kwargs)
        samples = jax.block_until_ready(mcmc.get_samples())  # MCMC.run returns before the device is done
        seconds = time.perf_counter() - start
        if adapted is None and not slic:
            adapted = adapted_metric(mcmc)
        table = summary(mcmc, var_names=params, ci_prob=0.94)
        print(f"\n{kind} likelihood (t = {t:.4f}; MAP {map_seconds:.0f} s, total {seconds:.0f} s)")
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
        samples = {k: np.asarray(v) for k, v in samples.items()}
        extra = mcmc.get_extra_fields()
        median = {k: jnp.asarray(np.median(samples[k])) for k in params}
        model_image = np.asarray(eqx.filter_jit(sim)(median))
        posteriors[kind], medians[kind] = samples, model_image
        results[kind] = {
            "t": t,
            "seconds": seconds,
            "map_seconds": map_seconds,
            "map": map_values,
            "map_potential": map_potential if has_value else None,
            "sampler": sampler,
            "warmup_per_chain": warmup // thinning,  # draws of `thinning` sampler steps each
            "draws_per_chain": samples_ // thinning,
            "thinning": thinning,
            "summary": json.loads(table.to_json(orient="index")),
            "mean_accept_prob": float(np.mean(extra["accept_prob"])),
            "gradients_per_draw": float(np.mean(extra["num_steps"]) if has_value
                                        else np.mean(extra["num_grad_evals"]) * thinning),
            "divergences": int(np.sum(extra["diverging"])) if has_value else None,
            # Sampling wall time (compilation included) over all draws, warmup included.
            "seconds_per_draw": (seconds - map_seconds) * thinning / (config.num_chains * (warmup + samples_)),
            "residual": _residual_stats(ring, np.where(ring.mask, 0.0, obs - model_image)),
        }
    results = {k: results[k] for k in config.likelihoods}
    posteriors = {k: posteriors[k] for k in config.likelihoods}
    medians = {k: medians[k] for k in config.likelihoods}

    figures = []
    if config.fig_dir:
        figures = [
            _corner_figure(posteriors, os.path.join(config.fig_dir, "real_lens_corner.png")),
            _image_figure(ring, obs, medians, posteriors, sim, os.path.join(config.fig_dir, "real_lens_images.png")),
        ]
    out = {
        "config": dataclasses.asdict(config),
        "data": {
            "name": "cosmos-web-ring-f150w",
            "crop_origin_in_cutout": list(ring.origin),
            "size": config.size,
            "pixel_scale": ring.pixel_scale,
            "masked_pixels": int(ring.mask.sum()),
            "sky_data_units": ring.sky,
            "sky_unit_data_units": ring.sky_unit,
            "scale_s": ring.scale,
            "units": "(data - sky) / noise_map / s",
            "lens_light_centroid": list(ring.lens_xy),
        },
        "initial_guess": init,
        "results": results,
        "figures": figures,
        "total_seconds": time.perf_counter() - start_all,
    }
    if config.out:
        from numpyro_slic.data.io import atomic_write_json

        os.makedirs(os.path.dirname(os.path.abspath(config.out)), exist_ok=True)
        atomic_write_json(config.out, out, indent=1, default=float)
    print("\ntheta_E (arcsec), mean +- sd [94% HDI]: " + "; ".join(
        f"{k} {r['summary']['lens_theta_E']['mean']:.4f} +- {r['summary']['lens_theta_E']['sd']:.4f} "
        f"[{r['summary']['lens_theta_E']['hdi94_lb']:.4f}, {r['summary']['lens_theta_E']['hdi94_ub']:.4f}]"
        for k, r in results.items()
    ))
    print(f"total {out['total_seconds']:.0f} s; wrote {config.out or '(no JSON)'} {' '.join(figures)}")
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _corner_figure(posteriors: dict, path: str) -> str:
    from numpyro_slic.diagnostics.plots import corner_plot

    corner_plot(posteriors, None, CORNER_PARAMS, path)
    return path


def _image_figure(ring, obs, medians, posteriors, sim, path: str) -> str:
    """Top: data, then each likelihood's posterior-median model; bottom: the data minus the lens light
    (first likelihood), then each residual (sky-sigma units, masked pixels greyed)."""
    plt = _pyplot()
    kinds = list(medians)
    n = len(kinds) + 1
    fig, axes = plt.subplots(2, n, figsize=(3.4 * n, 6.6))
    extent = (np.array([-1, 1, -1, 1]) * ring.data.shape[0] * ring.pixel_scale / 2).tolist()
    shown = np.ma.masked_where(ring.mask, obs)
    vmax = np.percentile(obs[~ring.mask], 99.0)
    first = posteriors[kinds[0]]
    no_source = {k: jnp.asarray(np.median(v)) for k, v in first.items()} | {"source_amp": jnp.asarray(0.0)}
    lens_light = np.asarray(eqx.filter_jit(sim)(no_source))
    panels = [(axes[0, 0], shown, "data (sky-sigma units)", "magma", (-2, vmax)),
              (axes[1, 0], np.ma.masked_where(ring.mask, obs - lens_light), f"data - lens light ({kinds[0]})",
               "magma", (-2, 12))]
    for i, kind in enumerate(kinds, start=1):
        res = np.ma.masked_where(ring.mask, obs - medians[kind])
        rms = float(np.sqrt(np.mean(res.compressed() ** 2)))
        panels.append((axes[0, i], np.ma.masked_where(ring.mask, medians[kind]), f"model ({kind})", "magma",
                       (-2, vmax)))
        panels.append((axes[1, i], res, f"residual ({kind}), rms {rms:.2f}", "RdBu_r", (-5, 5)))
    for ax, img, title, cmap, (lo, hi) in panels:
        cm = plt.get_cmap(cmap).copy()
        cm.set_bad("0.6")
        im = ax.imshow(img, origin="lower", cmap=cm, vmin=lo, vmax=hi, extent=extent)
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def parse_config(argv: list[str] | None = None) -> FitConfig:
    """The FitConfig of the command-line flags ``argv`` (None: sys.argv[1:])."""
    defaults = FitConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--likelihoods", default=",".join(defaults.likelihoods),
                        help="comma-separated, any of slic,stationary,white (default: all three)")
    parser.add_argument("--size", type=int, default=defaults.size, help="crop side in pixels (multiple of 4)")
    parser.add_argument("--warmup", type=int, default=defaults.num_warmup)
    parser.add_argument("--samples", type=int, default=defaults.num_samples)
    parser.add_argument("--chains", type=int, default=defaults.num_chains)
    parser.add_argument("--chain-method", choices=("sequential", "vectorized"), default=defaults.chain_method,
                        help="vectorized runs the chains in lockstep (use on a GPU)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--map-steps", type=int, default=defaults.map_steps)
    parser.add_argument("--refine-steps", type=int, default=defaults.refine_steps)
    parser.add_argument("--slic-warmup", type=int, default=defaults.slic_warmup, help="SLIC warmup draws per chain")
    parser.add_argument("--slic-samples", type=int, default=defaults.slic_samples, help="SLIC draws kept per chain")
    parser.add_argument("--slic-max-tree-depth", type=int, default=defaults.slic_max_tree_depth)
    parser.add_argument("--mala-thinning", type=int, default=defaults.mala_thinning,
                        help="MALA steps per draw (score-parameterised noise models only)")
    parser.add_argument("--line-nodes", type=int, default=defaults.line_nodes,
                        help="MALA line-test nodes (score-parameterised noise models only)")
    parser.add_argument("--core-radius", type=float, default=defaults.core_radius,
                        help="also mask the lens light's core within this many pixels")
    parser.add_argument("--level-sigma", type=float, default=defaults.level_sigma)
    parser.add_argument("--max-tree-depth", type=int, default=defaults.max_tree_depth)
    parser.add_argument("--noise-model", default=defaults.noise_model, help="shipped name or bundle path")
    parser.add_argument("--out", default=defaults.out, help="JSON output path")
    parser.add_argument("--fig-dir", default=defaults.fig_dir, help="figure directory ('' for none); "
                        "--fig-dir docs/figures replaces the figures the docs show")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    return FitConfig(
        likelihoods=tuple(k.strip() for k in args.likelihoods.split(",") if k.strip()),
        size=args.size,
        num_warmup=args.warmup,
        num_samples=args.samples,
        num_chains=args.chains,
        chain_method=args.chain_method,
        seed=args.seed,
        map_steps=args.map_steps,
        refine_steps=args.refine_steps,
        slic_warmup=args.slic_warmup,
        slic_samples=args.slic_samples,
        slic_max_tree_depth=args.slic_max_tree_depth,
        mala_thinning=args.mala_thinning,
        line_nodes=args.line_nodes,
        core_radius=args.core_radius,
        level_sigma=args.level_sigma,
        noise_model=args.noise_model,
        max_tree_depth=args.max_tree_depth,
        out=args.out,
        fig_dir=args.fig_dir or None,
        progress=not args.no_progress,
    )


def main(argv: list[str] | None = None) -> dict:
    return fit_ring(parse_config(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
