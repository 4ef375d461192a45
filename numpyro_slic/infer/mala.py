"""Metropolis-adjusted Langevin (MALA) whose Metropolis test needs gradients only.

Proposal (eps = step size, A = inverse mass matrix, L L^T = A, z ~ N(0, I)):

    theta' = theta + (eps^2 / 2) A grad log p(theta) + eps L z.

Acceptance: log alpha = [log p(theta') - log p(theta)] + log q(theta | theta') - log q(theta' | theta).
With ``metropolis="line"`` the bracket is the line integral of the gradient along the segment
theta -> theta' (``line_integral.log_density_difference``; Legin et al. 2024, arXiv:2410.19956), so
the sampler never uses the log-density's value: it is correct with
``ScoreLikelihood(energy="none")``, whose value is 0, where NUTS and HMC are not. A step costs
``line_nodes - 1`` gradient evaluations (the end nodes reuse the current and proposed gradients).
With ``metropolis="value"`` the bracket is the difference of the log-density's values (one
value-and-gradient evaluation per step), for comparison and for likelihoods with a consistent value.

Pure API (blackjax-like, positions are any pytree):

    state = mala.init(position, logdensity_fn)
    state, info = mala.step(key, state, logdensity_fn, step_size, inverse_mass_matrix)

NumPyro API: ``MCMC(MALA(model), ...)`` with dual-averaging step-size adaptation towards
``target_accept_prob`` and optional diagonal or dense mass-matrix adaptation during warmup (NumPyro's
own ``warmup_adapter``, the scheme its HMC uses).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import random
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, PyTree
from numpyro.infer.hmc_util import HMCAdaptState, warmup_adapter
from numpyro.infer.initialization import init_to_uniform

from .base import Metric, _ModelKernel, langevin_proposal, log_proposal_ratio
from .line_integral import gauss_lobatto_nodes, log_density_difference

__all__ = ["MALA", "MALAState", "MALAInfo", "MALAKernelState", "init", "step", "METROPOLIS"]

METROPOLIS = ("line", "value")
# Default of line_tol (nats). Measured on the blob problem (tests/blob_problem.py) from posterior
# draws, whitened by the posterior variances: at the adapted step (eps = 1.4) the Simpson-trapezoid
# difference exceeds 3 nats for 0.2% of proposals and Simpson's error stays below 0.05 nats on the
# rest; at eps = 3 it rejects half of them and leaves errors below 1 nat. At eps = 4 Simpson errs by
# up to 38 nats and the guard misses some: a jump over a whole likelihood well between two nodes
# looks smooth to any rule, hence also MALA's max_step_size.
LINE_TOL = 3.0


class MALAState(NamedTuple):
    """position: pytree; logdensity: log p(position) up to a constant, nats (see ``init``);
    logdensity_grad: grad log p, same pytree as position."""

    position: PyTree
    logdensity: Float[Array, ""]
    logdensity_grad: PyTree


class MALAInfo(NamedTuple):
    """accept_prob: min(1, alpha); is_accepted; num_grad_evals: gradient evaluations this step."""

    accept_prob: Float[Array, ""]
    is_accepted: Array
    num_grad_evals: Int[Array, ""]


def _check_metropolis(metropolis: str, line_nodes: int) -> None:
    if metropolis not in METROPOLIS:
        raise ValueError(f"unknown metropolis={metropolis!r}; choose 'line' (gradients only) or 'value'.")
    gauss_lobatto_nodes(line_nodes)  # validates line_nodes


def init(
    position: PyTree, logdensity_fn: Callable[[PyTree], Float[Array, ""]], *, metropolis: str = "line"
) -> MALAState:
    """The MALA state at ``position``.

    With ``metropolis="line"`` only the gradient is used: ``logdensity`` starts at 0 and then carries
    log p relative to this initial position (the accepted line integrals add up). With "value" it
    is ``logdensity_fn(position)``.
    """
    _check_metropolis(metropolis, 2)
    if metropolis == "value":
        value, grad = jax.value_and_grad(logdensity_fn)(position)
    else:
        grad = jax.grad(logdensity_fn)(position)
        value = jnp.zeros((), ravel_pytree(grad)[0].dtype)
    return MALAState(position, value, grad)


def step(
    key: PRNGKeyArray,
    state: MALAState,
    logdensity_fn: Callable[[PyTree], Float[Array, ""]],
    step_size: float | Float[ArrayLike, ""],
    inverse_mass_matrix: Float[ArrayLike, " d"] | Float[ArrayLike, "d d"] | None = None,
    *,
    metropolis: str = "line",
    line_nodes: int = 3,
    line_tol: float | None = LINE_TOL,
) -> tuple[MALAState, MALAInfo]:
    """One MALA transition.

    Args:
        key: PRNG key.
        state: from ``init`` or a previous step.
        logdensity_fn: position pytree -> log p (nats); with metropolis="line" only its gradient is used.
        step_size: eps (position units after preconditioning; the proposal sd is eps L).
        inverse_mass_matrix: A on the flattened position (``jax.flatten_util.ravel_pytree`` order):
            None (identity), diagonal (d,) or dense (d, d).
        metropolis: "line" (gradient line integral) or "value" (log-density values).
        line_nodes: K, the Gauss-Lobatto nodes of the line integral (K - 1 gradient evaluations per
            step); K = 2 (trapezoid) is exact for Gaussian targets only.
        line_tol: reject the proposal when the K-node integral and the trapezoid rule (its end nodes
            alone) differ by more than this many nats: the segment is then too long for the nodes
            to resolve the log-density along it. The test depends on the pair {theta, theta'} only
            (symmetric), so detailed balance holds. None (or K = 2) disables it.
    """
    _check_metropolis(metropolis, line_nodes)
    x, unravel = ravel_pytree(state.position)
    grad_x = ravel_pytree(state.logdensity_grad)[0]
    metric = Metric(inverse_mass_matrix, x.size, x.dtype)
    key_proposal, key_accept = random.split(key)

    def flat_logdensity(v):
        return logdensity_fn(unravel(v))

    y, z = langevin_proposal(key_proposal, x, grad_x, step_size, metric)
    if metropolis == "value":
        value_y, grad_y = jax.value_and_grad(flat_logdensity)(y)
        delta = value_y - state.logdensity
        num_grad_evals = 1
    else:
        grad_fn = jax.grad(flat_logdensity)
        grad_y = grad_fn(y)
        delta = log_density_difference(grad_fn, x, grad_x, y, grad_y, line_nodes)
        value_y = state.logdensity + delta
        num_grad_evals = line_nodes - 1
    log_alpha = delta + log_proposal_ratio(x, y, grad_y, z, step_size, metric)
    if metropolis == "line" and line_tol is not None and line_nodes > 2:
        trapezoid = 0.5 * jnp.dot(grad_x + grad_y, y - x)
        log_alpha = jnp.where(jnp.abs(delta - trapezoid) > line_tol, -jnp.inf, log_alpha)
    # A NaN ratio (a proposal where the density or its gradient is not finite) is a rejection.
    log_alpha = jnp.where(jnp.isnan(log_alpha), -jnp.inf, log_alpha)
    accept_prob = jnp.exp(jnp.minimum(log_alpha, 0.0))
    accepted = random.uniform(key_accept, (), x.dtype) < accept_prob
    new = jax.tree.map(
        lambda a, b: jnp.where(accepted, a, b),
        MALAState(unravel(y), value_y, unravel(grad_y)),
        state,
    )
    return new, MALAInfo(accept_prob, accepted, jnp.asarray(num_grad_evals, jnp.int32))


class MALAKernelState(NamedTuple):
    """The MCMC state of a MALA chain.

    i: iteration (warmup counts from 0, sampling continues the count); z: unconstrained position
    (dict of sites); logdensity, logdensity_grad: as in MALAState; accept_prob: this step's;
    mean_accept_prob: running mean over warmup or over sampling; num_grad_evals: this step's;
    adapt_state: NumPyro's HMCAdaptState (step_size, inverse_mass_matrix, ...); rng_key.
    """

    i: Int[Array, ""]
    z: PyTree
    logdensity: Float[Array, ""]
    logdensity_grad: PyTree
    accept_prob: Float[Array, ""]
    mean_accept_prob: Float[Array, ""]
    num_grad_evals: Int[Array, ""]
    adapt_state: HMCAdaptState
    rng_key: PRNGKeyArray


class MALA(_ModelKernel):
    """Metropolis-adjusted Langevin as a NumPyro MCMC kernel; the Metropolis test needs only gradients.

    Use it where the likelihood supplies a trustworthy gradient but no trustworthy value:
    ``ScoreLikelihood(..., energy="none")`` (value 0), or a learned score whose "line" energy you do
    not want to pay for at every NUTS leapfrog step. The default test integrates the gradient along
    the proposal's segment (module docstring), so the chain targets the density whose gradient the
    model supplies, exactly up to the quadrature error of ``line_nodes`` nodes.

    Args:
        model: a NumPyro model (or give ``potential_fn``: unconstrained params -> potential energy,
            and ``init_params`` to ``MCMC.run``).
        step_size: initial eps in whitened units (proposal sd eps sqrt(A)).
        adapt_step_size: dual averaging (Hoffman & Gelman 2014) towards ``target_accept_prob`` during
            warmup.
        adapt_mass_matrix: estimate A as the posterior covariance in Stan's warmup windows.
        dense_mass: dense A (else diagonal).
        target_accept_prob: 0.574 is optimal for MALA in high dimension (Roberts & Rosenthal 1998).
        metropolis: "line" (gradients only) or "value" (the potential's value; one evaluation a step).
        line_nodes: Gauss-Lobatto nodes K of the line integral: K - 1 gradient evaluations a step.
            K = 3 (Simpson) is exact for quartic log-densities along the step; raise it for strongly
            non-Gaussian targets, and check by comparing with K + 2.
        line_tol: the symmetric guard of ``step`` (nats): a proposal whose K-node integral and
            trapezoid rule differ by more is rejected as unresolved. None disables it.
        max_step_size: cap on the step actually taken (whitened units). The line integral sees the
            log-density only at K points of the segment, so it must stay short compared with the
            target's scale: a long jump can cross a likelihood well between the nodes and be
            accepted on a wrong log-density difference. Measured on the blob problem without cap
            and guard: dual averaging's restarts at 10x the step (NumPyro's warmup schedule)
            reached eps = 19, and 3 of 12 chains left the posterior for the flat region where the
            blob leaves the image, whose wandering then inflated the mass matrix 10 to 1000x;
            with both, 0 of 72 chains did. The MALA optimum on a Gaussian is eps ~ 1.65 d^(-1/6)
            (Roberts & Rosenthal 1998), below 2 for every d, so the cap binds only on excursions.
        inverse_mass_matrix: initial A, flat (d,) or (d, d) in ``ravel_pytree`` order of the sites.
        init_strategy: NumPyro init strategy.

    Collected by default: ``z``, ``accept_prob``, ``num_grad_evals`` (so ESS per gradient evaluation
    is ``ess / num_grad_evals.sum()``).
    """

    def __init__(
        self,
        model: Callable | None = None,
        potential_fn: Callable | None = None,
        *,
        step_size: float = 1.0,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        dense_mass: bool = False,
        target_accept_prob: float = 0.574,
        metropolis: str = "line",
        line_nodes: int = 3,
        line_tol: float | None = LINE_TOL,
        max_step_size: float = 2.0,
        inverse_mass_matrix: ArrayLike | None = None,
        init_strategy=init_to_uniform,
    ):
        super().__init__(model, potential_fn, init_strategy)
        _check_metropolis(metropolis, line_nodes)
        if not 0 < target_accept_prob < 1:
            raise ValueError(f"MALA: target_accept_prob must be in (0, 1), got {target_accept_prob}.")
        if not 0 < step_size <= max_step_size:
            raise ValueError(
                f"MALA: need 0 < step_size <= max_step_size, got step_size={step_size}, max_step_size={max_step_size}."
            )
        if not isinstance(dense_mass, bool):
            raise TypeError("MALA: dense_mass must be True or False (block-structured masses are not supported).")
        self._step_size = float(step_size)
        self._adapt_step_size = adapt_step_size
        self._adapt_mass_matrix = adapt_mass_matrix
        self._dense_mass = dense_mass
        self._target_accept_prob = float(target_accept_prob)
        self._metropolis = metropolis
        self._line_nodes = int(line_nodes)
        self._max_step_size = float(max_step_size)
        self._line_tol = line_tol
        self._inverse_mass_matrix = inverse_mass_matrix
        self._wa_init = self._wa_update = None

    @property
    def default_fields(self) -> tuple[str, ...]:
        return ("z", "accept_prob", "num_grad_evals")

    def get_diagnostics_str(self, state) -> str:
        step_size = min(float(state.adapt_state.step_size), self._max_step_size)
        return "step size {:.2e}. acc. prob={:.2f}".format(step_size, state.mean_accept_prob)

    def _logdensity_fn(self, model_args, model_kwargs):
        potential = self._potential(model_args, model_kwargs)
        return lambda z: -potential(z)

    def init(self, rng_key, num_warmup, init_params=None, model_args=(), model_kwargs=None):
        self._wa_init, self._wa_update = warmup_adapter(
            num_warmup,
            adapt_step_size=self._adapt_step_size,
            adapt_mass_matrix=self._adapt_mass_matrix,
            dense_mass=self._dense_mass,
            target_accept_prob=self._target_accept_prob,
        )
        return super().init(rng_key, num_warmup, init_params, model_args, model_kwargs)

    def _init_one(self, position, rng_key, model_args, model_kwargs):
        logdensity_fn = self._logdensity_fn(model_args, model_kwargs)
        state = init(position, logdensity_fn, metropolis=self._metropolis)
        rng_key, key_adapt = random.split(rng_key)
        size = ravel_pytree(position)[0].size
        adapt_state = self._wa_init(
            (position,),
            key_adapt,
            self._step_size,
            inverse_mass_matrix=self._inverse_mass_matrix,
            mass_matrix_size=size,
        )._replace(rng_key=None)
        zero = jnp.zeros((), state.logdensity.dtype)
        return MALAKernelState(
            jnp.array(0), position, state.logdensity, state.logdensity_grad, zero, zero,
            jnp.array(0, jnp.int32), adapt_state, rng_key,
        )  # fmt: skip

    def _sample_one(self, state, model_args, model_kwargs):
        rng_key, key_step = random.split(state.rng_key)
        adapt = state.adapt_state
        new, info = step(
            key_step,
            MALAState(state.z, state.logdensity, state.logdensity_grad),
            self._logdensity_fn(model_args, model_kwargs),
            jnp.minimum(adapt.step_size, self._max_step_size),
            adapt.inverse_mass_matrix,
            metropolis=self._metropolis,
            line_nodes=self._line_nodes,
            line_tol=self._line_tol,
        )
        warmup = state.i < self._num_warmup
        adapt = jax.lax.cond(
            warmup,
            lambda a: self._wa_update(state.i, info.accept_prob, (new.position,), a),
            lambda a: a,
            adapt,
        )
        itr = state.i + 1
        n = jnp.where(warmup, itr, itr - self._num_warmup)
        mean_accept_prob = state.mean_accept_prob + (info.accept_prob - state.mean_accept_prob) / n
        return MALAKernelState(
            itr, new.position, new.logdensity, new.logdensity_grad, info.accept_prob, mean_accept_prob,
            info.num_grad_evals, adapt, rng_key,
        )  # fmt: skip

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_wa_init"] = state["_wa_update"] = None
        return state
