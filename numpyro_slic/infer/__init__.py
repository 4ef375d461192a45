"""Score-based samplers that run under ``numpyro.infer.MCMC``, and the diffusion-level handler.

- ``MALA``: Metropolis-adjusted Langevin whose Metropolis test is a line integral of the gradient,
  so it is exact with gradient-only likelihoods (``ScoreLikelihood(energy="none")``).
- ``AnnealedLangevin``: the SLIC annealed Langevin sampler; the diffusion level of every
  ScoreLikelihood anneals from large to small within each sample (``diffusion_level`` handler).

The pure samplers (blackjax-like ``init`` / ``step`` pairs) are ``infer.mala`` and
``infer.langevin``. See docs/samplers.md for which to use.

- ``lens_model`` / ``lens_priors`` / ``likelihood_noise`` / ``anchored_reference``: a ready-made
  strong-lens NumPyro model.
"""

from . import langevin, mala
from .base import Metric
from .handlers import diffusion_level
from .langevin import AnnealedLangevin, geometric_levels
from .lens import LIKELIHOODS, anchored_reference, lens_model, lens_priors, likelihood_noise
from .line_integral import gauss_lobatto_nodes, log_density_difference
from .mala import MALA

__all__ = [
    "MALA",
    "lens_model",
    "lens_priors",
    "likelihood_noise",
    "anchored_reference",
    "LIKELIHOODS",
    "AnnealedLangevin",
    "diffusion_level",
    "geometric_levels",
    "gauss_lobatto_nodes",
    "log_density_difference",
    "Metric",
    "mala",
    "langevin",
]
