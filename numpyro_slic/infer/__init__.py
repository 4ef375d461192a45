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

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "Metric": ".base",
    "diffusion_level": ".handlers",
    "AnnealedLangevin": ".langevin",
    "geometric_levels": ".langevin",
    "LIKELIHOODS": ".lens",
    "anchored_reference": ".lens",
    "lens_model": ".lens",
    "lens_priors": ".lens",
    "likelihood_noise": ".lens",
    "gauss_lobatto_nodes": ".line_integral",
    "log_density_difference": ".line_integral",
    "MALA": ".mala",
}

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
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, ['langevin', 'mala'])

if TYPE_CHECKING:
    from . import langevin, mala
    from .base import Metric
    from .handlers import diffusion_level
    from .langevin import AnnealedLangevin, geometric_levels
    from .lens import LIKELIHOODS, anchored_reference, lens_model, lens_priors, likelihood_noise
    from .line_integral import gauss_lobatto_nodes, log_density_difference
    from .mala import MALA
