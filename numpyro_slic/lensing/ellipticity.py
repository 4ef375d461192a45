"""Ellipticity conventions shared by the mass and light profiles (lenstronomy's ``param_util``).

An ellipse of axis ratio q = minor/major <= 1 whose major axis makes the angle phi (radians,
counter-clockwise from +x) is written as the complex ellipticity

    e1 + i e2 = (1 - q) / (1 + q) * exp(2 i phi),

so (e1, e2) = (0, 0) is round and |e| < 1. Sampling e1 and e2 avoids the phi wrap-around and the
q = 1 coordinate singularity.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

__all__ = ["ellipticity_to_phi_q", "phi_q_to_ellipticity", "MAX_ELLIPTICITY"]

# lenstronomy clips |e| here (q >= 5e-5) so that q stays positive.
MAX_ELLIPTICITY = 0.9999


def ellipticity_to_phi_q(
    e1: Float[ArrayLike, "*shape"], e2: Float[ArrayLike, "*shape"]
) -> tuple[Float[Array, "*shape"], Float[Array, "*shape"]]:
    """(e1, e2) -> (phi, q): major-axis angle in radians and axis ratio minor/major.

    |e| is clipped at ``MAX_ELLIPTICITY`` as lenstronomy does. phi is arbitrary (0) for e = 0, and
    its gradient there is undefined: profiles that need gradients at e = 0 must not go through phi
    (``sie_deflection`` has its own near-round branch).
    """
    e1, e2 = jnp.asarray(e1), jnp.asarray(e2)
    phi = 0.5 * jnp.arctan2(e2, e1)
    c = jnp.minimum(jnp.sqrt(e1**2 + e2**2), MAX_ELLIPTICITY)
    return phi, (1.0 - c) / (1.0 + c)


def phi_q_to_ellipticity(
    phi: Float[ArrayLike, "*shape"], q: Float[ArrayLike, "*shape"]
) -> tuple[Float[Array, "*shape"], Float[Array, "*shape"]]:
    """(phi, q) -> (e1, e2), the inverse of ``ellipticity_to_phi_q`` for 0 < q <= 1."""
    phi, q = jnp.asarray(phi), jnp.asarray(q)
    c = (1.0 - q) / (1.0 + q)
    return c * jnp.cos(2.0 * phi), c * jnp.sin(2.0 * phi)
