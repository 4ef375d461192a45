"""Gauss quadrature rules on [0, 1]: Legendre, Radau (right end node) and Lobatto (both end nodes).

The one place the package builds quadrature rules: ``ScoreLikelihood(energy="line")`` integrates the
score with ``gauss_radau`` (its last node u = 1 is the residual itself, whose score the gradient
needs anyway) and MALA's Metropolis test integrates the gradient with ``gauss_lobatto`` (both end
points are known). Nodes and weights come from scipy's Golub-Welsch roots of Jacobi polynomials:

- Gauss-Legendre, K nodes: the roots of P_K; exact to degree 2K - 1.
- Gauss-Radau, K nodes with x = +1 fixed: the free nodes are the K - 1 nodes of the Gauss-Jacobi
  rule for the weight (1 - x) (alpha = 1, beta = 0), their weights that rule's divided by (1 - x),
  and the fixed node weighs 2 / K^2; exact to degree 2K - 2.
- Gauss-Lobatto, K nodes with x = -1 and +1 fixed: the interior nodes are the K - 2 nodes of the
  Gauss-Jacobi rule for (1 - x)(1 + x), their weights that rule's divided by (1 - x^2), and each end
  weighs 2 / (K (K - 1)); exact to degree 2K - 3.

Rules are float64 NumPy arrays (nodes ascending), mapped from [-1, 1] to [0, 1] (weights halved),
and cached per K. scipy is imported on first use only.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["gauss_legendre", "gauss_radau", "gauss_lobatto"]


def _check(k, least: int, rule: str) -> int:
    if isinstance(k, bool) or int(k) != k or k < least:
        raise ValueError(f"the Gauss-{rule} rule needs an integer number of nodes >= {least}, got {k!r}.")
    return int(k)


def _to_unit_interval(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(x)
    u, v = (x[order] + 1.0) / 2.0, w[order] / 2.0
    u.setflags(write=False)  # cached: a caller must not change the shared arrays
    v.setflags(write=False)
    return u, v


@lru_cache(maxsize=None)
def gauss_legendre(k: int) -> tuple[np.ndarray, np.ndarray]:
    """K-point Gauss-Legendre rule on [0, 1]: nodes (K,) ascending, weights (K,). Exact to degree 2K - 1."""
    from scipy.special import roots_legendre

    k = _check(k, 1, "Legendre")
    x, w = roots_legendre(k)
    return _to_unit_interval(np.asarray(x, np.float64), np.asarray(w, np.float64))


@lru_cache(maxsize=None)
def gauss_radau(k: int) -> tuple[np.ndarray, np.ndarray]:
    """K-point Gauss-Radau rule on [0, 1] whose last node is u = 1: nodes (K,) ascending, weights (K,).

    Exact for polynomials of degree <= 2K - 2.
    """
    from scipy.special import roots_jacobi

    k = _check(k, 2, "Radau")
    free, w_jacobi = roots_jacobi(k - 1, 1.0, 0.0)  # integrates f(x) (1 - x) on [-1, 1]
    x = np.concatenate([free, [1.0]])
    w = np.concatenate([w_jacobi / (1.0 - free), [2.0 / k**2]])
    return _to_unit_interval(x, w)


@lru_cache(maxsize=None)
def gauss_lobatto(k: int) -> tuple[np.ndarray, np.ndarray]:
    """K-point Gauss-Lobatto rule on [0, 1]: nodes (K,) ascending with u[0] = 0, u[-1] = 1; weights (K,).

    Exact for polynomials of degree <= 2K - 3.
    """
    from scipy.special import roots_jacobi

    k = _check(k, 2, "Lobatto")
    if k > 2:
        interior, w_jacobi = roots_jacobi(k - 2, 1.0, 1.0)  # integrates f(x) (1 - x^2) on [-1, 1]
        w_interior = w_jacobi / (1.0 - interior**2)
    else:
        interior, w_interior = np.zeros(0), np.zeros(0)
    end = 2.0 / (k * (k - 1))
    x = np.concatenate([[-1.0], interior, [1.0]])
    w = np.concatenate([[end], w_interior, [end]])
    return _to_unit_interval(x, w)
