"""Annealed (unadjusted) Langevin sampling with score-based likelihoods.

The SLIC posterior sampler: unadjusted Langevin steps driven by
grad_theta log p_t(d | theta) + grad_theta log p(theta), while the diffusion level t of every
ScoreLikelihood in the model anneals from large to small; each anneal ends at the last level, where
the sample is taken. Only gradients are used, so ``ScoreLikelihood(energy="none")`` is fine.

Step (Song & Ermon 2019 convention; alpha = step size, A = preconditioner, L L^T = A):

    theta' = theta + (alpha / 2) A grad log p_t(theta) + sqrt(alpha) L z,   z ~ N(0, I).

Step-size rule in parameter space. For a target with curvature H (Hessian of -log p) the step is
stable iff alpha lambda < 4 for every eigenvalue lambda of A^{1/2} H A^{1/2}; on a Gaussian it
converges to a variance inflated by 1 / (1 - alpha lambda / 4) (sd bias about alpha lambda / 8) with
per-step autocorrelation 1 - alpha lambda / 2. So the right step is a fixed alpha in units where the
target's curvature is about 1: A_t ~ (E_{p_t}[-grad^2 log p_t])^{-1}, one per level. We estimate it
without Hessians or values from the Fisher identity (integration by parts)

    E_{p_t}[grad log p_t grad log p_t^T] = E_{p_t}[-grad^2 log p_t]   (= Sigma_t^{-1} for a Gaussian),

averaging the outer products (or squares, for a diagonal A) of the gradients the sampler evaluates
at each level during warmup. Why not Song & Ermon's eps_t = eps sigma_t^2 / sigma_min^2? It is
right in data space, where the perturbed density's variance is about sigma_t^2. In parameter space
the likelihood's curvature at level t scales like 1 / (s^2 + sigma_t^2) (white noise of variance
s^2; for correlated noise it depends on which Fourier modes the model image occupies), so the step
should grow like (s^2 + sigma_t^2), not sigma_t^2 (with sigma_min = 0.13 s and sigma_t = s that is
a factor 1.98, not 59), and the prior caps the growth: the posterior is never broader than the prior.
The Fisher estimate contains all three effects; it reduces to Song & Ermon's rule for white noise,
a negligible prior and sigma_t >> s.

What one MCMC sample is (``AnnealedLangevin``): the end of one anneal started from the previous
sample: len(levels) x steps_per_level Langevin steps. The high levels let a chain move between
modes that the final level separates; at the final level the chain is unadjusted Langevin, so
its samples carry the O(alpha) bias above (measured numbers: docs/samplers.md). With
``levels=[t]`` and ``steps_per_level=1`` the kernel is plain unadjusted Langevin at level t.
During warmup every step is Metropolis-adjusted with the trapezoid-rule line integral (exact for
Gaussian targets, free: both gradients are at hand) so that the early, unadapted steps cannot
diverge; after warmup nothing is rejected, and ``metropolis_prob`` (the acceptance probability the
final level's steps would have had) measures the discretisation error.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import random
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray, PyTree
from numpyro.infer.hmc_util import build_adaptation_schedule
from numpyro.infer.initialization import init_to_uniform

from ..likelihood import level_for_sigma
from ..noise.base import NoiseModel, as_noise_model
from .base import Metric, _ModelKernel, langevin_proposal, log_proposal_ratio
from .handlers import diffusion_level, score_likelihood_sites
from .line_integral import log_density_difference

__all__ = [
    "AnnealedLangevin",
    "AnnealedLangevinState",
    "LangevinState",
    "LangevinInfo",
    "AnnealInfo",
    "init",
    "step",
    "anneal",
    "geometric_levels",
]

# Relative ridge added to each level's gradient second-moment (precision) estimate, so that a
# coordinate whose first gradients happen to be ~0 gets a large but finite step; 1e-6 of the mean
# precision changes no converged estimate measurably.
_RIDGE = 1e-6
# Pseudo-count with which a warmup window's estimate carries into the next window: the estimate
# adapts continuously during warmup, and early (off-equilibrium) gradients are forgotten at the
# window ends of NumPyro's (Stan's) warmup schedule. 20 gradients give a precision to about 30%.
_CARRY_COUNT = 20.0


class LangevinState(NamedTuple):
    """position: pytree; logdensity_grad: grad log p at position (same pytree)."""

    position: PyTree
    logdensity_grad: PyTree


class LangevinInfo(NamedTuple):
    """metropolis_prob: the Metropolis acceptance probability of the move (trapezoid rule);
    is_accepted: False only for an adjusted step that was rejected; num_grad_evals: 1."""

    metropolis_prob: Float[Array, ""]
    is_accepted: Bool[Array, ""]
    num_grad_evals: Int[Array, ""]


class AnnealInfo(NamedTuple):
    """metropolis_prob: (L,) mean per level; grad_moments: (L, d) sums of squared gradients (or
    (L, d, d) outer products with dense preconditioners) of the finite gradients evaluated at each
    level, flat ``ravel_pytree`` order; grad_counts: (L,) how many; num_grad_evals: total."""

    metropolis_prob: Float[Array, " L"]
    grad_moments: Float[Array, "L d"] | Float[Array, "L d d"]
    grad_counts: Float[Array, " L"]
    num_grad_evals: Int[Array, ""]


def init(position: PyTree, logdensity_fn: Callable[[PyTree], Float[Array, ""]]) -> LangevinState:
    """The Langevin state at ``position`` (one gradient evaluation; the value is never used)."""
    return LangevinState(position, jax.grad(logdensity_fn)(position))


def _transition(key, x, grad_x, grad_fn, step_size, metric: Metric, adjusted):
    """One flat Langevin move; returns (x', grad', proposal gradient, Metropolis probability, accepted)."""
    key_proposal, key_accept = random.split(key)
    eps = jnp.sqrt(step_size)  # the MALA proposal with eps^2 = alpha
    y, z = langevin_proposal(key_proposal, x, grad_x, eps, metric)
    grad_y = grad_fn(y)
    log_alpha = log_density_difference(grad_fn, x, grad_x, y, grad_y, 2) + log_proposal_ratio(
        x, y, grad_y, z, eps, metric
    )
    prob = jnp.where(jnp.isnan(log_alpha), 0.0, jnp.exp(jnp.minimum(log_alpha, 0.0)))
    accepted = jnp.where(adjusted, random.uniform(key_accept, (), x.dtype) < prob, True)
    return jnp.where(accepted, y, x), jnp.where(accepted, grad_y, grad_x), grad_y, prob, accepted


def step(
    key: PRNGKeyArray,
    state: LangevinState,
    logdensity_fn: Callable[[PyTree], Float[Array, ""]],
    step_size: float | Float[ArrayLike, ""],
    inverse_mass_matrix: Float[ArrayLike, " d"] | Float[ArrayLike, "d d"] | None = None,
    *,
    adjusted: bool | Bool[ArrayLike, ""] = False,
) -> tuple[LangevinState, LangevinInfo]:
    """One Langevin step theta + (alpha/2) A grad + sqrt(alpha) L z; Metropolis-adjusted if ``adjusted``.

    Args:
        logdensity_fn: position pytree -> log p (only its gradient is used).
        step_size: alpha, in the units of A (alpha = 0.2 with A = the target's covariance is a
            2.5% sd bias on a Gaussian).
        inverse_mass_matrix: A on the flat position: None (identity), (d,) or (d, d).
        adjusted: apply the Metropolis test (trapezoid line integral: exact for Gaussian targets).
    """
    x, unravel = ravel_pytree(state.position)
    grad_x = ravel_pytree(state.logdensity_grad)[0]
    metric = Metric(inverse_mass_matrix, x.size, x.dtype)
    grad_fn = jax.grad(lambda v: logdensity_fn(unravel(v)))
    x, grad_x, _, prob, accepted = _transition(key, x, grad_x, grad_fn, step_size, metric, adjusted)
    return LangevinState(unravel(x), unravel(grad_x)), LangevinInfo(prob, accepted, jnp.array(1, jnp.int32))


def anneal(
    key: PRNGKeyArray,
    state: LangevinState,
    logdensity_fn: Callable[[PyTree, Float[Array, ""]], Float[Array, ""]],
    levels: Float[ArrayLike, " L"],
    steps_per_level: int,
    step_size: float | Float[ArrayLike, ""],
    inverse_mass_matrices: Float[ArrayLike, "L d"] | Float[ArrayLike, "L d d"] | None = None,
    *,
    adjusted: bool | Bool[ArrayLike, ""] = False,
) -> tuple[LangevinState, AnnealInfo]:
    """One anneal: ``steps_per_level`` Langevin steps at each level t of ``levels`` in turn.

    Args:
        logdensity_fn: (position, t) -> log p_t (only gradients are used).
        levels: (L,) diffusion levels, typically decreasing; the state's gradient must be at
            levels[-1] on entry and is at levels[-1] on exit.
        inverse_mass_matrices: one A per level, (L, d) or (L, d, d); None is the identity.
    Returns the state at the end and an AnnealInfo. Costs L * steps_per_level gradient
    evaluations, plus L (one at each level's start) when L > 1.
    """
    x, unravel = ravel_pytree(state.position)
    grad_x = ravel_pytree(state.logdensity_grad)[0]
    levels = jnp.atleast_1d(jnp.asarray(levels, x.dtype))
    num_levels, d = levels.shape[0], x.size
    if inverse_mass_matrices is None:
        inverse_mass_matrices = jnp.ones((num_levels, d), x.dtype)
    inverse_mass_matrices = jnp.asarray(inverse_mass_matrices, x.dtype)
    if inverse_mass_matrices.shape[0] != num_levels:
        raise ValueError(
            f"anneal: {num_levels} levels but {inverse_mass_matrices.shape[0]} inverse mass matrices; "
            "give one per level."
        )
    dense = inverse_mass_matrices.ndim == 3

    def moment(g):
        finite = jnp.all(jnp.isfinite(g))
        g = jnp.where(finite, g, 0.0)
        return (jnp.outer(g, g) if dense else g * g), finite.astype(x.dtype)

    def level(carry, inputs):
        x, grad_x = carry
        t, a, key = inputs
        metric = Metric(a, d, x.dtype)
        grad_fn = jax.grad(lambda v: logdensity_fn(unravel(v), t))
        if num_levels > 1:
            grad_x = grad_fn(x)
            moments, count = moment(grad_x)
        else:
            moments, count = moment(jnp.zeros_like(x))[0], jnp.zeros((), x.dtype)

        def one_step(carry, key):
            x, grad_x, moments, count, probs = carry
            x, grad_x, grad_y, prob, _ = _transition(key, x, grad_x, grad_fn, step_size, metric, adjusted)
            m, c = moment(grad_y)
            return (x, grad_x, moments + m, count + c, probs + prob), None

        init = (x, grad_x, moments, count, jnp.zeros((), x.dtype))
        (x, grad_x, moments, count, probs), _ = jax.lax.scan(one_step, init, random.split(key, steps_per_level))
        return (x, grad_x), (moments, count, probs / steps_per_level)

    (x, grad_x), (moments, counts, probs) = jax.lax.scan(
        level, (x, grad_x), (levels, inverse_mass_matrices, random.split(key, num_levels))
    )
    evals = num_levels * steps_per_level + (num_levels if num_levels > 1 else 0)
    return LangevinState(unravel(x), unravel(grad_x)), AnnealInfo(probs, moments, counts, jnp.array(evals, jnp.int32))


def geometric_levels(
    noise: NoiseModel, sigma_max: float, sigma_min: float, num_levels: int
) -> Float[np.ndarray, " L"]:
    """Diffusion levels t (decreasing) whose widths sigma(t) are geometric from sigma_max to sigma_min.

    Widths are in the noise model's physical units (``noise.sigma``). Levels with sigma_t much
    below the noise's own sd change the posterior little (its curvature goes like 1 / (s^2 +
    sigma_t^2)), so end at the level the data were perturbed at, or append t = 0 for an exact
    analytic noise model: ``np.append(geometric_levels(...), 0.0)``.
    """
    noise = as_noise_model(noise)
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"geometric_levels needs 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}.")
    if int(num_levels) != num_levels or num_levels < 2:
        raise ValueError(f"geometric_levels needs num_levels >= 2, got {num_levels!r}.")
    sigmas = np.geomspace(sigma_max, sigma_min, int(num_levels))
    return np.array([level_for_sigma(noise, float(s)) for s in sigmas])


class AnnealedLangevinState(NamedTuple):
    """The MCMC state of an AnnealedLangevin chain.

    i: iteration; z: unconstrained position (dict of sites) at the last level; logdensity_grad:
    its gradient there; metropolis_prob: mean Metropolis probability of this anneal's last-level
    steps (1 = no discretisation error); num_grad_evals: this iteration's; grad_moments (L, d) or
    (L, d, d), grad_counts (L,): the running gradient second moments per level that set each
    level's preconditioner A_l = (grad_moments_l / grad_counts_l)^{-1} (frozen after warmup);
    rng_key.
    """

    i: Int[Array, ""]
    z: PyTree
    logdensity_grad: PyTree
    metropolis_prob: Float[Array, ""]
    num_grad_evals: Int[Array, ""]
    grad_moments: Float[Array, "L d"] | Float[Array, "L d d"]
    grad_counts: Float[Array, " L"]
    rng_key: PRNGKeyArray


def _inverse_mass_matrices(moments, counts, dense: bool):
    """Per level A_l = (mean gradient second moment + ridge)^{-1}: (L, d) or (L, d, d)."""
    if dense:
        precision = moments / counts[:, None, None]
        d = precision.shape[-1]
        scale = jnp.trace(precision, axis1=-2, axis2=-1) / d
        precision = precision + _RIDGE * scale[:, None, None] * jnp.eye(d, dtype=precision.dtype)
        a = jnp.linalg.inv(precision)
        return 0.5 * (a + jnp.swapaxes(a, -1, -2))
    precision = moments / counts[:, None]
    return 1.0 / (precision + _RIDGE * jnp.mean(precision, axis=-1, keepdims=True))


_LEVEL_KWARG = "_numpyro_slic_diffusion_level"


class _Leveled:
    """``model`` with an extra keyword that, when given, runs it under ``diffusion_level``.

    A class rather than a closure so that the kernel (and an MCMC holding it) can be pickled.
    """

    def __init__(self, model: Callable):
        self.model = model

    def __call__(self, *args, **kwargs):
        t = kwargs.pop(_LEVEL_KWARG, None)
        if t is None:
            return self.model(*args, **kwargs)
        with diffusion_level(t=t):
            return self.model(*args, **kwargs)


class AnnealedLangevin(_ModelKernel):
    """Annealed unadjusted Langevin as a NumPyro MCMC kernel (module docstring: schedule, step rule).

    Each MCMC iteration is one anneal from the current sample through ``levels``
    (``steps_per_level`` steps each); the sample is where it ends, at ``levels[-1]``. Every
    ScoreLikelihood site of the model is set to the current level by the ``diffusion_level``
    handler, so any model works unmodified; other sites are untouched. Warmup iterations adapt one
    preconditioner per level (Fisher identity) and are Metropolis-adjusted (trapezoid rule).

    Use it when the posterior may be multimodal (the broad high levels connect modes), or as the
    sampler of the SLIC papers. For a unimodal posterior, MALA gives far more effective samples
    per gradient evaluation and is exact; here the last level is unadjusted Langevin with an
    O(step_size) bias (docs/samplers.md gives the measured accuracy and cost).

    Args:
        model: a NumPyro model with one or more ScoreLikelihood sites.
        levels: diffusion levels t, largest first; the last is where samples are taken (usually the
            level of the model's ScoreLikelihood: the data's perturbation level, or 0 for an exact
            analytic noise model). ``geometric_levels`` makes a schedule geometric in sigma. Every
            level must lie in each ScoreLikelihood site's [t_min, t_max] (checked at init; ValueError
            otherwise). All sites share t, so sites whose noise models have different schedules
            anneal at different widths sigma(t).
        steps_per_level: Langevin steps at each level (one anneal = len(levels) * steps_per_level).
        step_size: alpha in units of each level's estimated posterior curvature (module docstring):
            the last level's sd bias is about alpha / 8 per unit-curvature direction on a
            Gaussian, and steps above ~4 / (largest whitened curvature) diverge.
        dense_mass: dense per-level preconditioners (captures correlations; d^2 per level) instead
            of diagonal ones.
        init_strategy: NumPyro init strategy.

    Collected by default: ``z``, ``num_grad_evals``, ``metropolis_prob``.
    """

    def __init__(
        self,
        model: Callable,
        levels: Float[ArrayLike, " L"],
        *,
        steps_per_level: int = 20,
        step_size: float = 0.2,
        dense_mass: bool = False,
        init_strategy=init_to_uniform,
    ):
        if model is None or not callable(model):
            raise TypeError("AnnealedLangevin needs a NumPyro model (a callable) with ScoreLikelihood sites.")
        super().__init__(model, None, init_strategy)
        levels = np.atleast_1d(np.asarray(levels, dtype=float))
        if levels.ndim != 1 or levels.size == 0 or not np.all(np.isfinite(levels)) or np.any(levels < 0):
            raise ValueError(f"AnnealedLangevin: levels must be a non-empty 1-d array of t >= 0, got {levels!r}.")
        if np.any(np.diff(levels) > 0):
            raise ValueError(
                "AnnealedLangevin: levels must not increase (anneal from large t to small t); "
                f"got {levels!r}. Reverse the array."
            )
        if int(steps_per_level) != steps_per_level or steps_per_level < 1:
            raise ValueError(f"AnnealedLangevin: steps_per_level must be an integer >= 1, got {steps_per_level!r}.")
        if not step_size > 0:
            raise ValueError(f"AnnealedLangevin: step_size must be positive, got {step_size}.")
        if not isinstance(dense_mass, bool):
            raise TypeError("AnnealedLangevin: dense_mass must be True or False.")
        self._levels = levels
        self._steps_per_level = int(steps_per_level)
        self._step_size = float(step_size)
        self._dense_mass = dense_mass
        self._leveled_model = _Leveled(model)

    @property
    def levels(self) -> np.ndarray:
        return self._levels

    @property
    def default_fields(self) -> tuple[str, ...]:
        return ("z", "num_grad_evals", "metropolis_prob")

    def get_diagnostics_str(self, state) -> str:
        return "last-level Metropolis prob={:.2f}".format(state.metropolis_prob)

    def _model_for_potential(self):
        return self._leveled_model

    def _check_model_trace(self, model_trace):
        # The levels reach each ScoreLikelihood traced (inside lax.scan), where it cannot check
        # them, and a level outside a noise model's range is silently wrong there: a learned model
        # clips it to its range, a plain score function ignores t. So check them here, once.
        lo, hi = float(self._levels.min()), float(self._levels.max())
        for name, likelihoods in score_likelihood_sites(model_trace).items():
            for noise in (d.noise for d in likelihoods):
                bad = lo if lo < noise.t_min else hi if hi > noise.t_max else None
                if bad is not None:
                    raise ValueError(
                        f"AnnealedLangevin: level t={bad:g} is outside [{noise.t_min:g}, {noise.t_max:g}], "
                        f"the levels where the noise model ({type(noise).__name__}) of ScoreLikelihood site "
                        f"{name!r} is valid. Give levels inside that range for every ScoreLikelihood site: "
                        "end at t_min or above (for a learned model the level the data were perturbed at, "
                        "not 0), e.g. geometric_levels(noise, sigma_max, sigma_min, num_levels) with "
                        "sigma_min >= noise.sigma(noise.t_min); a plain score function takes levels=[0.0] only."
                    )

    def _logdensity_fn(self, model_args, model_kwargs):
        def logdensity(z, t):
            return -self._potential(model_args, model_kwargs, **{_LEVEL_KWARG: t})(z)

        return logdensity

    def _init_one(self, position, rng_key, model_args, model_kwargs):
        logdensity = self._logdensity_fn(model_args, model_kwargs)
        levels = jnp.asarray(self._levels)
        # One gradient per level at the start position seeds each level's preconditioner estimate.
        grads = jax.vmap(lambda t: ravel_pytree(jax.grad(logdensity)(position, t))[0])(levels)  # (L, d)
        grads = jnp.where(jnp.isfinite(grads), grads, 0.0)
        moments = jnp.einsum("li,lj->lij", grads, grads) if self._dense_mass else grads**2
        unravel = ravel_pytree(position)[1]
        return AnnealedLangevinState(
            jnp.array(0), position, unravel(grads[-1]), jnp.ones((), grads.dtype),
            jnp.array(len(self._levels), jnp.int32), moments, jnp.ones(len(self._levels), grads.dtype), rng_key,
        )  # fmt: skip

    def _sample_one(self, state, model_args, model_kwargs):
        rng_key, key_anneal = random.split(state.rng_key)
        warmup = state.i < self._num_warmup
        new, info = anneal(
            key_anneal,
            LangevinState(state.z, state.logdensity_grad),
            self._logdensity_fn(model_args, model_kwargs),
            jnp.asarray(self._levels),
            self._steps_per_level,
            self._step_size,
            _inverse_mass_matrices(state.grad_moments, state.grad_counts, self._dense_mass),
            adjusted=warmup,
        )
        moments = jnp.where(warmup, state.grad_moments + info.grad_moments, state.grad_moments)
        counts = jnp.where(warmup, state.grad_counts + info.grad_counts, state.grad_counts)
        # At the end of the start buffer and of each middle window but the last (Stan's schedule),
        # keep the estimate with a small weight only, so later, better-equilibrated gradients
        # dominate; the last middle window and the end buffer together give the final estimate.
        ends = [w.end for w in build_adaptation_schedule(self._num_warmup)[:-2]]
        window_end = warmup & jnp.any(state.i == jnp.asarray(ends, dtype=jnp.result_type(int))) if ends else False
        keep = jnp.where(window_end, _CARRY_COUNT / counts, 1.0)
        moments = moments * (keep[:, None, None] if self._dense_mass else keep[:, None])
        counts = counts * keep
        return AnnealedLangevinState(
            state.i + 1, new.position, new.logdensity_grad, info.metropolis_prob[-1], info.num_grad_evals,
            moments, counts, rng_key,
        )  # fmt: skip
