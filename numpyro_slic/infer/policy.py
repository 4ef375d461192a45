"""Which sampler a score-based likelihood can use: NUTS on an exact energy, else the line-test MALA.

NUTS needs a log-density value whose gradient is the score. A noise model with ``has_log_prob``
(energy-parameterised, or analytic) gives one (ScoreLikelihood's ``energy="exact"``). A
score-parameterised learned model does not: its line-integral value is path-dependent
(docs/likelihood.md), so NUTS would see inconsistent value and gradient; MALA with
``metropolis="line"`` integrates the gradient itself along each proposal and needs no value
(``energy="none"``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

from jaxtyping import ArrayLike

__all__ = ["ScoreKernel", "score_kernel"]


@dataclasses.dataclass(frozen=True)
class ScoreKernel:
    """A kernel for a model with a ScoreLikelihood, and how to run it.

    Attributes:
        kernel: a ``numpyro.infer.NUTS`` or ``numpyro_slic.infer.MALA``.
        model_kwargs: extra model keyword arguments ({} or {"energy": "none"}).
        extra_fields: the per-step statistics worth collecting with ``MCMC.run(extra_fields=...)``.
        has_value: whether the potential includes the likelihood's value (NUTS); with MALA's
            line test (energy="none") it is the prior only, so no divergences nor MAP potential.
        description: one line for logs, e.g. "NUTS (energy='exact'), dense mass matrix".
    """

    kernel: object
    model_kwargs: dict
    extra_fields: tuple[str, ...]
    has_value: bool
    description: str


def score_kernel(
    model: Callable,
    noise,
    *,
    step_size: float | None = None,
    inverse_mass_matrix: Mapping | ArrayLike | None = None,
    max_tree_depth: int = 10,
    target_accept_prob: float = 0.8,
    line_nodes: int = 3,
    mala_step_size: float = 0.5,
) -> ScoreKernel:
    """NUTS (dense metric) when ``noise.has_log_prob``, else MALA with the line Metropolis test.

    Args:
        model: the NumPyro model; it must take an ``energy`` keyword passed to its ScoreLikelihood
            (as ``numpyro_slic.problems.lens_model``) for the MALA case.
        noise: the NoiseModel of the model's ScoreLikelihood.
        step_size: NUTS's initial step size (None: NumPyro's 1.0).
        inverse_mass_matrix: a start metric: (P, P) array or NumPyro's structured dict (e.g. from
            ``adapted_metric``); MALA takes its single block (``dense_block``). None: identity.
        max_tree_depth: NUTS's tree-depth cap (2^depth - 1 gradients a draw at most).
        target_accept_prob: NUTS's step-size adaptation target.
        line_nodes: Gauss-Lobatto nodes of MALA's Metropolis line integral (K - 1 gradients a step).
        mala_step_size: MALA's initial step size.
    """
    from numpyro.infer import NUTS

    from .laplace import dense_block
    from .mala import MALA

    if noise.has_log_prob:
        kernel = NUTS(model, dense_mass=True, target_accept_prob=target_accept_prob, max_tree_depth=max_tree_depth,
                      step_size=1.0 if step_size is None else step_size, inverse_mass_matrix=inverse_mass_matrix)
        return ScoreKernel(kernel, {}, ("diverging", "num_steps", "accept_prob"), True,
                           "NUTS (energy='exact'), dense mass matrix")
    matrix = None if inverse_mass_matrix is None else dense_block(inverse_mass_matrix)
    kernel = MALA(model, dense_mass=True, metropolis="line", line_nodes=line_nodes, step_size=mala_step_size,
                  inverse_mass_matrix=matrix)
    return ScoreKernel(kernel, {"energy": "none"}, ("accept_prob", "num_grad_evals"), False,
                       f"MALA (energy='none', line Metropolis test, {line_nodes} nodes), dense mass matrix")
