"""Log-density differences in parameter space from gradients alone.

    log p(y) - log p(x) = integral_0^1 grad log p(x + u (y - x)) . (y - x) du

evaluated with a K-node Gauss-Lobatto(-Legendre) rule on [0, 1]. Its two end nodes are x and y,
where a Metropolis-Hastings step knows the gradient already (the current state's, and the
proposal's, which the next step needs anyway), so a K-node rule costs K - 2 new gradient
evaluations, run as one vmapped batch. It integrates polynomials in u of degree <= 2K - 3 exactly,
so the difference is exact when log p is a polynomial of degree <= 2K - 2 along the segment
(K = 2, the trapezoid, is exact for Gaussian targets; K = 3, Simpson, for quartics).
Per new gradient evaluation this is more accurate than K-node Gauss-Legendre, which has no end
nodes: Gauss-Legendre with n nodes costs n new evaluations for degree 2n - 1, Lobatto with n + 2
nodes the same n for degree 2n + 1. This is the Metropolis test of the SLIC gravitational-wave
follow-up (Legin et al. 2024, arXiv:2410.19956), with the end points reused.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..quadrature import gauss_lobatto

__all__ = ["gauss_lobatto_nodes", "log_density_difference"]


def gauss_lobatto_nodes(k: int) -> tuple[np.ndarray, np.ndarray]:
    """K-point Gauss-Lobatto rule on [0, 1]: nodes (K,) ascending with u[0] = 0, u[-1] = 1; weights (K,).

    Exact for polynomials of degree <= 2K - 3 (``numpyro_slic.quadrature.gauss_lobatto``).
    """
    return gauss_lobatto(k)


def log_density_difference(
    grad_fn: Callable[[Float[Array, " d"]], Float[Array, " d"]],
    x: Float[Array, " d"],
    grad_x: Float[Array, " d"],
    y: Float[Array, " d"],
    grad_y: Float[Array, " d"],
    nodes: int,
) -> Float[Array, ""]:
    """log p(y) - log p(x) (nats) by the K-node Gauss-Lobatto rule along the segment x -> y.

    Args:
        grad_fn: flat position (d,) -> grad log p (d,); called (vmapped) at the K - 2 interior nodes.
        x: the first flat position.
        y: the second flat position.
        grad_x: grad log p at ``x``.
        grad_y: grad log p at ``y``.
        nodes: K >= 2.
    """
    u, w = gauss_lobatto_nodes(nodes)
    u = jnp.asarray(u, dtype=x.dtype)
    w = jnp.asarray(w, dtype=x.dtype)
    delta = y - x
    total = w[0] * jnp.dot(grad_x, delta) + w[-1] * jnp.dot(grad_y, delta)
    if nodes > 2:
        interior = jax.vmap(grad_fn)(x + u[1:-1, None] * delta)  # (K - 2, d)
        total = total + jnp.dot(w[1:-1], interior @ delta)
    return total
