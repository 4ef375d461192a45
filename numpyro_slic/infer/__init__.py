"""Score-based samplers that run under ``numpyro.infer.MCMC``, and the diffusion-level handler.

- ``MALA``: Metropolis-adjusted Langevin whose Metropolis test is a line integral of the gradient,
  so it is exact with gradient-only likelihoods (``ScoreLikelihood(energy="none")``).
- ``AnnealedLangevin``: the SLIC annealed Langevin sampler; the diffusion level of every
  ScoreLikelihood anneals from large to small within each sample (``diffusion_level`` handler).

The pure samplers (blackjax-like ``init`` / ``step`` pairs) are ``infer.mala`` and
``infer.langevin``. See docs/samplers.md for which to use.

Helpers around any NumPyro model (``infer.laplace``): its potential on NumPyro's flat unconstrained
vector, a MAP point (Adam), the Laplace metric (clipped inverse Hessian), the dense metric a NUTS
run adapted; ``infer.policy.score_kernel`` picks NUTS or the line-test MALA from the noise model.

The ready-made strong-lens model is ``numpyro_slic.problems`` (it was ``numpyro_slic.infer.lens``).
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "Metric": ".base",
    "diffusion_level": ".handlers",
    "AnnealedLangevin": ".langevin",
    "geometric_levels": ".langevin",
    "adapted_metric": ".laplace",
    "clipped_inverse": ".laplace",
    "find_map": ".laplace",
    "flat_potential": ".laplace",
    "laplace_inverse_mass": ".laplace",
    "score_kernel": ".policy",
    "ScoreKernel": ".policy",
    "FlatPotential": ".laplace",
    "dense_block": ".laplace",
    "gauss_lobatto_nodes": ".line_integral",
    "log_density_difference": ".line_integral",
    "MALA": ".mala",
}

__all__ = [
    "MALA",
    "flat_potential",
    "find_map",
    "laplace_inverse_mass",
    "clipped_inverse",
    "adapted_metric",
    "dense_block",
    "FlatPotential",
    "score_kernel",
    "ScoreKernel",
    "AnnealedLangevin",
    "diffusion_level",
    "geometric_levels",
    "gauss_lobatto_nodes",
    "log_density_difference",
    "Metric",
    "mala",
    "langevin",
    "laplace",
    "policy",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, ['langevin', 'laplace', 'mala', 'policy'])

if TYPE_CHECKING:
    from . import langevin, laplace, mala, policy
    from .base import Metric
    from .handlers import diffusion_level
    from .langevin import AnnealedLangevin, geometric_levels
    from .laplace import (
        FlatPotential,
        adapted_metric,
        clipped_inverse,
        dense_block,
        find_map,
        flat_potential,
        laplace_inverse_mass,
    )
    from .policy import ScoreKernel, score_kernel
    from .line_integral import gauss_lobatto_nodes, log_density_difference
    from .mala import MALA
