"""Shared parts of the gradient-based kernels: the preconditioning metric, the Langevin proposal and
its density ratio, and the NumPyro adapter.

The samplers themselves are pure functions (``mala.init`` / ``mala.step``, ``langevin.init`` /
``langevin.step`` / ``langevin.anneal``) on positions that are any pytree; ``_ModelKernel`` turns
such a pair into a ``numpyro.infer.mcmc.MCMCKernel``: it builds the potential and the constraining
``postprocess_fn`` from a model with ``initialize_model`` (so sampling runs in unconstrained space),
and runs one chain per key, or a batch of chains under ``vmap`` when MCMC passes a batch of keys
(``chain_method="vectorized"``).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import random
from jax.scipy.linalg import solve_triangular
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray
from numpyro.infer.initialization import init_to_uniform
from numpyro.infer.mcmc import MCMCKernel
from numpyro.infer.util import initialize_model
from numpyro.util import identity, is_prng_key

__all__ = ["Metric", "langevin_proposal", "log_proposal_ratio"]


class Metric(eqx.Module):
    """A constant preconditioner A (the "inverse mass matrix") and a factor L with L L^T = A.

    Langevin-type proposals move by (eps^2 / 2) A grad + eps L z, z ~ N(0, I); the reverse proposal
    density needs L^{-1}. ``inverse_mass_matrix`` is None (identity), a diagonal (d,) or dense (d, d).
    """

    inverse_mass_matrix: Float[Array, " d"] | Float[Array, "d d"]
    factor: Float[Array, " d"] | Float[Array, "d d"]

    def __init__(self, inverse_mass_matrix: Float[ArrayLike, "..."] | None, size: int, dtype=float):
        if inverse_mass_matrix is None:
            inverse_mass_matrix = jnp.ones(size, dtype)
        a = jnp.asarray(inverse_mass_matrix, dtype)
        if a.shape not in ((size,), (size, size)):
            raise ValueError(
                f"inverse_mass_matrix has shape {a.shape}; for {size} unconstrained parameters it must "
                f"be ({size},) (diagonal) or ({size}, {size}) (dense)."
            )
        self.inverse_mass_matrix = a
        self.factor = jnp.sqrt(a) if a.ndim == 1 else jnp.linalg.cholesky(a)

    @property
    def dense(self) -> bool:
        return self.inverse_mass_matrix.ndim == 2

    def precondition(self, v: Float[Array, " d"]) -> Float[Array, " d"]:
        """A v."""
        return self.inverse_mass_matrix @ v if self.dense else self.inverse_mass_matrix * v

    def scale(self, z: Float[Array, " d"]) -> Float[Array, " d"]:
        """L z: a N(0, A) draw from a standard normal z."""
        return self.factor @ z if self.dense else self.factor * z

    def whiten(self, v: Float[Array, " d"]) -> Float[Array, " d"]:
        """L^{-1} v."""
        return solve_triangular(self.factor, v, lower=True) if self.dense else v / self.factor


def langevin_proposal(
    key: PRNGKeyArray, x: Float[Array, " d"], grad_x: Float[Array, " d"], step_size, metric: Metric
) -> tuple[Float[Array, " d"], Float[Array, " d"]]:
    """Flat proposal x + (eps^2/2) A grad + eps L z and the standard normal z it used."""
    z = random.normal(key, x.shape, x.dtype)
    return x + 0.5 * step_size**2 * metric.precondition(grad_x) + step_size * metric.scale(z), z


def log_proposal_ratio(
    x: Float[Array, " d"],
    y: Float[Array, " d"],
    grad_y: Float[Array, " d"],
    z: Float[Array, " d"],
    step_size,
    metric: Metric,
) -> Float[Array, ""]:
    """log q(x | y) - log q(y | x) for the Langevin proposal y = x + (eps^2/2) A grad_x + eps L z."""
    back = metric.whiten(x - y - 0.5 * step_size**2 * metric.precondition(grad_y)) / step_size
    return -0.5 * jnp.sum(back**2) + 0.5 * jnp.sum(z**2)


class _ModelKernel(MCMCKernel):
    """An MCMCKernel around a pure sampler; subclasses give ``_init_one`` and ``_sample_one``.

    ``_init_one(position, rng_key, model_args, model_kwargs)`` and
    ``_sample_one(state, model_args, model_kwargs)`` handle one chain; the state is a NamedTuple with
    fields ``i``, ``z`` (unconstrained position) and ``rng_key`` (MCMC.warmup/run replace it).
    """

    def __init__(self, model: Callable | None, potential_fn: Callable | None, init_strategy=init_to_uniform):
        if (model is None) == (potential_fn is None):
            raise ValueError(f"{type(self).__name__}: give exactly one of `model` or `potential_fn`.")
        self._model = model
        self._potential_fn = potential_fn
        self._init_strategy = init_strategy
        self._potential_fn_gen = None
        self._postprocess_fn = None
        self._num_warmup = 0
        self._vectorized = False

    @property
    def model(self):
        return self._model

    @property
    def sample_field(self) -> str:
        return "z"

    def _model_for_potential(self) -> Callable:
        """The model whose potential is sampled (a subclass may wrap the user's model)."""
        return self._model

    def _potential(self, model_args, model_kwargs, **extra_kwargs) -> Callable:
        """Unconstrained position -> potential energy (negative log joint, nats)."""
        if self._potential_fn_gen is None:
            return self._potential_fn
        return self._potential_fn_gen(*model_args, **model_kwargs, **extra_kwargs)

    def init(self, rng_key, num_warmup, init_params=None, model_args=(), model_kwargs=None):
        model_kwargs = {} if model_kwargs is None else model_kwargs
        self._num_warmup = int(num_warmup)
        self._vectorized = not is_prng_key(rng_key)
        if self._vectorized:
            rng_key, key_init = jnp.swapaxes(jax.vmap(random.split)(rng_key), 0, 1)
        else:
            rng_key, key_init = random.split(rng_key)
        if self._model is not None:
            info = initialize_model(
                key_init,
                self._model_for_potential(),
                dynamic_args=True,
                init_strategy=self._init_strategy,
                model_args=model_args,
                model_kwargs=model_kwargs,
            )
            self._check_model_trace(info.model_trace)
            self._potential_fn_gen = info.potential_fn
            self._postprocess_fn = info.postprocess_fn
            if init_params is None:
                init_params = info.param_info.z
        elif init_params is None:
            raise ValueError(
                f"{type(self).__name__} built from a potential_fn needs init_params: pass "
                "MCMC.run(..., init_params=...) (one position, or one per chain with a leading chain axis)."
            )

        def init_one(position, key):
            return self._init_one(position, key, model_args, model_kwargs)

        return jax.vmap(init_one)(init_params, rng_key) if self._vectorized else init_one(init_params, rng_key)

    def sample(self, state, model_args, model_kwargs):
        model_kwargs = {} if model_kwargs is None else model_kwargs

        def sample_one(state):
            return self._sample_one(state, model_args, model_kwargs)

        return jax.vmap(sample_one)(state) if self._vectorized else sample_one(state)

    def postprocess_fn(self, model_args, model_kwargs):
        if self._postprocess_fn is None:
            return identity
        return self._postprocess_fn(*model_args, **(model_kwargs or {}))

    def _check_model_trace(self, model_trace: dict) -> None:
        """Checks the model once, on the trace ``initialize_model`` ran, before any chain starts
        (a hook: the default checks nothing)."""

    @abstractmethod
    def _init_one(self, position, rng_key, model_args, model_kwargs):
        """The initial state of one chain at ``position`` (unconstrained)."""

    @abstractmethod
    def _sample_one(self, state, model_args, model_kwargs):
        """One transition of one chain."""
