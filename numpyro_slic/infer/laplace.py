"""A NumPyro model's posterior on NumPyro's flat unconstrained vector: potential, MAP and Laplace metric.

    fp = flat_potential(model, model_kwargs=dict(data=data, ...), init_values=start)
    z_map, value = find_map(fp.potential, fp.z, steps=1000)
    metric = laplace_inverse_mass(fp.potential, z_map)          # (P, P) dense inverse mass matrix
    NUTS(model, dense_mass=True, inverse_mass_matrix=metric, adapt_mass_matrix=False)

The flat vector is NumPyro HMC's own (``ravel_pytree`` of the unconstrained sample sites, in sorted
site order), so a (P, P) matrix over it is a valid ``inverse_mass_matrix`` for NUTS and MALA.
Potentials are -log posterior in nats (up to a constant), as ``numpyro.infer.util.potential_energy``.
"""

from __future__ import annotations

from typing import Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

__all__ = ["FlatPotential", "flat_potential", "find_map", "laplace_inverse_mass", "clipped_inverse", "adapted_metric",
           "dense_block"]


class FlatPotential(NamedTuple):
    """A model's potential on the flat unconstrained vector.

    Attributes:
        potential: (P,) vector -> -log posterior (scalar, nats up to a constant); jit/grad-able.
        z: (P,) the start point (``init_values``) as such a vector.
        unravel: (P,) vector -> {site: unconstrained value}, NumPyro's ``init_params`` structure.
        constrain: (P,) vector -> {site: constrained value} (the sampled parameters).
    """

    potential: Callable[[Float[Array, " P"]], Float[Array, ""]]
    z: Float[Array, " P"]
    unravel: Callable[[Float[Array, " P"]], dict]
    constrain: Callable[[Float[Array, " P"]], dict]


def flat_potential(
    model: Callable,
    *,
    init_values: Mapping[str, ArrayLike],
    model_args: tuple = (),
    model_kwargs: Mapping | None = None,
    key: jax.Array | None = None,
) -> FlatPotential:
    """``model``'s potential energy on NumPyro HMC's flat unconstrained vector (see FlatPotential).

    Args:
        model: a NumPyro model.
        init_values: {site: constrained value} of the start point; sites left out are drawn from
            their prior with ``key`` (numpyro's ``init_to_value``).
        model_args: the model's positional arguments.
        model_kwargs: the model's keyword arguments.
        key: PRNG key for sites missing from ``init_values`` (default ``jax.random.key(0)``).
    """
    from jax.flatten_util import ravel_pytree
    from numpyro.infer import init_to_value
    from numpyro.infer.util import initialize_model

    info = initialize_model(
        jax.random.key(0) if key is None else key, model, model_args=model_args, model_kwargs=dict(model_kwargs or {}),
        init_strategy=init_to_value(values=dict(init_values)),
    )
    z, unravel = ravel_pytree(info.param_info.z)
    return FlatPotential(
        potential=lambda flat: info.potential_fn(unravel(flat)),
        z=z,
        unravel=unravel,
        constrain=lambda flat: info.postprocess_fn(unravel(flat)),
    )


def find_map(
    potential: Callable[[Float[Array, " P"]], Float[Array, ""]],
    z: Float[ArrayLike, " P"],
    steps: int,
    *,
    learning_rate: float = 0.03,
    final_fraction: float = 0.03,
) -> tuple[Float[Array, " P"], float]:
    """Adam on ``potential`` from ``z`` with a cosine-decay learning rate: a MAP point.

    Large steps first move the far parameters (a lens's source, its light), the decay settles them.

    Args:
        potential: (P,) -> scalar, e.g. ``flat_potential(...).potential``.
        z: (P,) start (unconstrained units).
        steps: Adam steps (0: return ``z`` and its potential).
        learning_rate: initial Adam step (unconstrained units).
        final_fraction: the learning rate decays to this fraction of ``learning_rate``.

    Returns:
        (z_map (P,), potential(z_map) as a float). Needs optax (``numpyro-slic[train]``).
    """
    from .._extras import require

    optax = require("optax", "train")
    z = jnp.asarray(z)
    if steps > 0:
        opt = optax.adam(optax.cosine_decay_schedule(learning_rate, steps, alpha=final_fraction))

        @jax.jit
        def step(z, state):
            grad = jax.grad(potential)(z)
            updates, state = opt.update(grad, state, z)
            return optax.apply_updates(z, updates), state

        state = opt.init(z)
        for _ in range(steps):
            z, state = step(z, state)
    return z, float(jax.jit(potential)(z))


def clipped_inverse(hessian: Float[ArrayLike, "P P"], floor: float = 1e-3) -> Float[np.ndarray, "P P"]:
    """Inverse of a (P, P) Hessian (symmetrised) with its eigenvalues clipped to >= ``floor`` x the largest.

    At a single noisy point the Hessian need not be positive definite; the clipped inverse is, and
    it is the exact inverse when all eigenvalues are above the floor. Units: the inverse of the
    Hessian's (unconstrained units^2). Returns float64.
    """
    hessian = np.asarray(hessian, dtype=np.float64)
    values, vectors = np.linalg.eigh(0.5 * (hessian + hessian.T))
    values = np.clip(values, floor * values.max(), None)
    return (vectors / values) @ vectors.T


def laplace_inverse_mass(
    potential: Callable[[Float[Array, " P"]], Float[Array, ""]], z: Float[ArrayLike, " P"], floor: float = 1e-3
) -> Float[np.ndarray, "P P"]:
    """The Laplace approximation's covariance at ``z``: ``clipped_inverse`` of the potential's Hessian.

    Used as a fixed dense NUTS metric when the posterior sds span decades in unconstrained space
    (the identity metric's first warmup window then crawls at tiny step sizes). Returns (P, P) float64.
    """
    return clipped_inverse(jax.jit(jax.hessian(potential))(jnp.asarray(z)), floor)


def adapted_metric(mcmc) -> tuple[float, dict]:
    """The step size and inverse mass matrix a NUTS/HMC run (``numpyro.infer.MCMC``) adapted, averaged over chains.

    Returns (step_size, matrix); matrix is NumPyro's structured form {(site names,): (d, d) dense
    or (d,) diagonal block in ``ravel_pytree`` order}, which NUTS takes back as
    ``inverse_mass_matrix``; ``dense_block`` turns a one-block one into a plain matrix (MALA's form).
    """
    state = mcmc.last_state.adapt_state
    chains = mcmc.num_chains > 1  # then every leaf has a leading chain axis
    step_size = float(jnp.mean(state.step_size)) if chains else float(state.step_size)
    matrix = {k: jnp.mean(v, 0) if chains else v for k, v in state.inverse_mass_matrix.items()}
    return step_size, matrix


def dense_block(matrix: Mapping[tuple, ArrayLike] | ArrayLike) -> Array:
    """NumPyro's structured inverse mass matrix with one block (all sites together) as its (P, P) array.

    A plain array passes through. Raises ValueError for several blocks (``dense_blocks`` runs).
    """
    if not isinstance(matrix, Mapping):
        return jnp.asarray(matrix)
    if len(matrix) != 1:
        raise ValueError(f"dense_block: the mass matrix has {len(matrix)} blocks {list(matrix)}; expected one.")
    return jnp.asarray(next(iter(matrix.values())))
