"""NumPyro effect handlers for score-based likelihoods.

``diffusion_level`` runs any model with every ``ScoreLikelihood`` sample site at another diffusion
level t, without changing the model's code; annealing samplers use it to walk t from large to small.
"""

from __future__ import annotations

from typing import Callable

import jax
from jaxtyping import ArrayLike, Float
from numpyro.primitives import Messenger

from ..likelihood import ScoreLikelihood

__all__ = ["diffusion_level", "score_likelihood_sites"]


def _is_score_likelihood(x) -> bool:
    return isinstance(x, ScoreLikelihood)


def score_likelihood_sites(model_trace: dict) -> dict[str, list[ScoreLikelihood]]:
    """The ScoreLikelihoods of each sample site of a model trace, found inside wrappers as
    ``diffusion_level`` finds them; sites without one are left out."""
    sites = {}
    for name, msg in model_trace.items():
        if msg["type"] == "sample":
            found = [d for d in jax.tree.leaves(msg["fn"], is_leaf=_is_score_likelihood) if _is_score_likelihood(d)]
            if found:
                sites[name] = found
    return sites


class diffusion_level(Messenger):
    """Replaces each ScoreLikelihood ``fn`` of a sample site by ``fn.with_level(t)``.

    Other sites (priors, ``numpyro.factor``, other distributions) are untouched. A ScoreLikelihood
    wrapped by a plate (``ExpandedDistribution``), ``to_event`` (``Independent``) or ``mask``
    (``MaskedDistribution``) is found inside the wrapper. Used around a model, this handler is
    outermost, so it overrides a level set by another ``diffusion_level`` inside the model.

    Usage::

        with diffusion_level(t=0.4):
            model(data)
        leveled = diffusion_level(model, t=0.4)   # as a decorator-like wrapper
        with diffusion_level(0.4): ...            # the level may also be given positionally

    Args:
        fn: the model (optional; without it use the handler as a context manager).
        t: the diffusion level, a float or a scalar array (it may be traced, e.g. inside
            ``lax.scan``); each noise model checks concrete values against its [t_min, t_max].
    """

    def __init__(self, fn: Callable | float | None = None, t: float | Float[ArrayLike, ""] | None = None):
        if t is None and fn is not None and not callable(fn):
            fn, t = None, fn  # diffusion_level(0.4): the level given positionally
        if t is None:
            raise TypeError("diffusion_level needs the level: diffusion_level(t=...) or diffusion_level(model, t=...).")
        self.t = t
        super().__init__(fn)

    def process_message(self, msg) -> None:
        if msg["type"] != "sample":
            return
        # Rebuild the distribution only when it holds a ScoreLikelihood; other sites keep their fn.
        if not any(map(_is_score_likelihood, jax.tree.leaves(msg["fn"], is_leaf=_is_score_likelihood))):
            return
        msg["fn"] = jax.tree.map(
            lambda d: d.with_level(self.t) if _is_score_likelihood(d) else d,
            msg["fn"],
            is_leaf=_is_score_likelihood,
        )
