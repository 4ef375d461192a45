"""A ready-made NumPyro strong-lens model: a prior for every parameter and any noise model as likelihood.

    sim = LensSimulator(PixelGrid(64, 64, 0.03), psf=psf, supersampling=2)
    priors = lens_priors(flux_scale=50.0)
    noise = likelihood_noise("slic", learned=load_noise_model("jwst-nircam-f150w"))
    mcmc = MCMC(NUTS(lens_model), num_warmup=300, num_samples=300)
    mcmc.run(key, data, simulator=sim, noise=noise, priors=priors)

The likelihood switch is the noise model: "slic" (a learned noise model, or any NoiseModel),
"stationary" (a correlated Gaussian, P(k) estimated from sky patches) and "white" (i.i.d. Gaussian
of the patches' variance); all go through the same ScoreLikelihood line, so the three posteriors
differ only by the noise model.

Any JAX simulator plugs in: ``simulator`` is any callable params -> image taking the dict of sampled
parameters (see numpyro_slic.lensing's module docstring).
"""

from __future__ import annotations

from typing import Callable, Mapping

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jaxtyping import Array, ArrayLike, Float

from ..likelihood import ScoreLikelihood
from ..noise import NoiseModel, StationaryGaussianNoise, WhiteGaussianNoise

__all__ = ["lens_priors", "lens_model", "likelihood_noise", "anchored_reference", "LIKELIHOODS"]

LIKELIHOODS = ("slic", "stationary", "white")


def _ellipticity():
    # |e| up to ~0.5 (axis ratio ~ 0.33); lenstronomy's e1, e2 are the components.
    return dist.TruncatedNormal(0.0, 0.2, low=-0.5, high=0.5)


def lens_priors(
    *,
    flux_scale: float = 1.0,
    theta_E: tuple[float, float] = (0.2, 2.0),
    center_sd: float = 0.1,
    source_center_sd: float = 0.3,
    shear: bool = True,
    lens_light: bool = False,
) -> dict[str, dist.Distribution | float]:
    """Priors for SIE (+ shear) + Sersic source (+ Sersic lens light), lenstronomy's names, arcsec.

    Args:
        flux_scale: typical source amplitude (surface brightness, data units / arcsec^2); the
            amplitude priors are log-uniform over four decades around it.
        theta_E: uniform range of the Einstein radius (arcsec).
        center_sd: sd (arcsec) of the Gaussian priors on lens and source centres.
        source_center_sd: as ``center_sd``.

    Replace any entry by a float to hold that parameter fixed, or by another distribution.
    """
    priors: dict[str, dist.Distribution | float] = {
        "lens_theta_E": dist.Uniform(*theta_E),
        "lens_e1": _ellipticity(),
        "lens_e2": _ellipticity(),
        "lens_center_x": dist.Normal(0.0, center_sd),
        "lens_center_y": dist.Normal(0.0, center_sd),
    }
    if shear:
        priors |= {"shear_gamma1": dist.Normal(0.0, 0.05), "shear_gamma2": dist.Normal(0.0, 0.05)}
    priors |= {
        "source_amp": dist.LogUniform(1e-2 * flux_scale, 1e2 * flux_scale),
        "source_R_sersic": dist.LogUniform(0.01, 1.0),
        "source_n_sersic": dist.Uniform(0.5, 5.0),
        "source_e1": _ellipticity(),
        "source_e2": _ellipticity(),
        "source_center_x": dist.Normal(0.0, source_center_sd),
        "source_center_y": dist.Normal(0.0, source_center_sd),
    }
    if lens_light:
        priors |= {
            "lens_light_amp": dist.LogUniform(1e-2 * flux_scale, 1e2 * flux_scale),
            "lens_light_R_sersic": dist.LogUniform(0.02, 3.0),
            "lens_light_n_sersic": dist.Uniform(0.5, 8.0),
            "lens_light_e1": _ellipticity(),
            "lens_light_e2": _ellipticity(),
            "lens_light_center_x": dist.Normal(0.0, center_sd),
            "lens_light_center_y": dist.Normal(0.0, center_sd),
        }
    return priors


def lens_model(
    data: Float[ArrayLike, "H W"] | None,
    *,
    simulator: Callable,
    noise: NoiseModel,
    priors: Mapping[str, dist.Distribution | float],
    t: float = 0.0,
    energy: str | None = None,
    nodes: int = 8,
    reference: Float[ArrayLike, "H W"] | None = None,
):
    """NumPyro model: parameters from ``priors``, image = simulator(params), data ~ ScoreLikelihood.

    With ``data=None`` the observation is sampled (prior predictive / simulation-based calibration).
    ``t``, ``energy``, ``nodes`` and ``reference`` are passed to ScoreLikelihood. With a learned noise
    model and energy="line", pass ``reference=data - simulator(anchor)`` for a parameter point
    ``anchor`` near the posterior (e.g. a Gaussian-likelihood fit): see ``anchored_reference``.
    """
    params = {
        name: numpyro.sample(name, prior) if isinstance(prior, dist.Distribution) else jnp.asarray(prior)
        for name, prior in priors.items()
    }
    image = simulator(params)
    numpyro.sample(
        "obs", ScoreLikelihood(noise, image, t=t, energy=energy, nodes=nodes, reference=reference), obs=data
    )


def anchored_reference(
    data: Float[ArrayLike, "H W"], simulator: Callable, anchor: Mapping[str, ArrayLike]
) -> Float[Array, "H W"]:
    """The residual data - simulator(anchor): a line-integral start next to the posterior.

    A score network is not exactly conservative, so the line-integral value depends on the path;
    what NUTS needs is that value DIFFERENCES between nearby parameter points match the score
    integrated between them. Starting every line integral at a fixed residual far from the data (a
    held-out noise patch) makes that error first order in the step; starting at the residual of a
    point inside the posterior cut it 2 to 5 times on the demo's lens (benchmarks/line_consistency.py,
    docs/likelihood.md). The residual at ``anchor`` is noise-like, so the path stays on the learned
    model's training data. Values from different anchors differ by a constant only for a
    conservative score; for NUTS with a learned model prefer an energy-parameterised one.
    """
    params = {k: jnp.asarray(v) for k, v in anchor.items()}
    return jnp.asarray(data) - simulator(params)


def likelihood_noise(
    kind: str,
    *,
    learned: NoiseModel | None = None,
    patches: Float[ArrayLike, "n H W"] | None = None,
) -> NoiseModel:
    """The noise model behind each likelihood of the switch.

    - "slic": ``learned`` (a trained noise model, or any NoiseModel);
    - "stationary": StationaryGaussianNoise.from_patches(patches) (the correlated-Gaussian baseline);
    - "white": WhiteGaussianNoise with the patches' pixel standard deviation.
    """
    if kind not in LIKELIHOODS:
        raise ValueError(f"likelihood_noise: unknown kind {kind!r}; choose one of {LIKELIHOODS}.")
    if kind == "slic":
        if learned is None:
            raise ValueError('likelihood_noise("slic") needs learned=<noise model>, e.g. load_noise_model(...).')
        return learned
    if patches is None:
        raise ValueError(f'likelihood_noise("{kind}") needs patches=<sky-noise patches (N, H, W)> to estimate it from.')
    patches = np.asarray(patches)
    if kind == "stationary":
        return StationaryGaussianNoise.from_patches(patches)
    return WhiteGaussianNoise(float(patches.std()))
