"""The package's one set of Gauss rules (numpyro_slic.quadrature) against independent constructions."""

import numpy as np
import pytest

from numpyro_slic.infer.line_integral import gauss_lobatto_nodes
from numpyro_slic.likelihood import gauss_radau_nodes
from numpyro_slic.quadrature import gauss_legendre, gauss_lobatto, gauss_radau

leg = np.polynomial.legendre


def _radau_by_legendre_roots(k):
    """The rule as it was built before scipy: roots of P_{K-1} + P_K (fixed node -1), mirrored."""
    coeffs = np.zeros(k + 1)
    coeffs[k - 1] = coeffs[k] = 1.0
    free = np.sort(np.real(leg.legroots(coeffs)))
    free = free[free > -1 + 1e-9]
    slope = leg.legder(coeffs)
    for _ in range(3):
        free = free - leg.legval(free, coeffs) / leg.legval(free, slope)
    w_free = (1 - free) / (k**2 * leg.legval(free, np.eye(k)[k - 1]) ** 2)
    x = -np.concatenate([[-1.0], free])
    w = np.concatenate([[2.0 / k**2], w_free])
    order = np.argsort(x)
    return (x[order] + 1) / 2, w[order] / 2


def _lobatto_by_legendre_roots(k):
    """Interior nodes: roots of P'_{K-1}; weights 2 / (K (K - 1) P_{K-1}(x)^2)."""
    p = np.eye(k)[k - 1]
    slope, curvature = leg.legder(p), leg.legder(p, 2)
    interior = np.sort(np.real(leg.legroots(slope))) if k > 2 else np.zeros(0)
    for _ in range(3):
        interior = interior - leg.legval(interior, slope) / leg.legval(interior, curvature)
    x = np.concatenate([[-1.0], interior, [1.0]])
    w = 2.0 / (k * (k - 1) * leg.legval(x, p) ** 2)
    return (x + 1) / 2, w / 2


@pytest.mark.parametrize("k", range(2, 41))
def test_rules_match_the_legendre_root_constructions(k):
    for new, ref in [(gauss_radau, _radau_by_legendre_roots), (gauss_lobatto, _lobatto_by_legendre_roots)]:
        u, w = new(k)
        u_ref, w_ref = ref(k)
        np.testing.assert_allclose(u, u_ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-12)
    x, w = np.polynomial.legendre.leggauss(k)
    u, v = gauss_legendre(k)
    np.testing.assert_allclose(u, (x + 1) / 2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(v, w / 2, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 12, 20])
def test_degrees_of_exactness(k):
    rules = [(gauss_legendre, 2 * k - 1)]
    if k >= 2:
        rules += [(gauss_radau, 2 * k - 2), (gauss_lobatto, 2 * k - 3)]
    for rule, degree in rules:
        u, w = rule(k)
        assert np.all(np.diff(u) > 0) and np.all(w > 0) and abs(w.sum() - 1) < 1e-14
        errors = [abs(np.sum(w * u**deg) - 1.0 / (deg + 1)) for deg in range(degree + 1)]
        assert max(errors) < 1e-13, (rule.__name__, k, max(errors))
    assert gauss_radau(max(k, 2))[0][-1] == 1.0
    assert gauss_lobatto(max(k, 2))[0][0] == 0.0 and gauss_lobatto(max(k, 2))[0][-1] == 1.0


def test_public_wrappers_are_the_shared_rules_and_validate():
    assert gauss_radau_nodes(5) is gauss_radau(5)
    assert gauss_lobatto_nodes(5) is gauss_lobatto(5)
    with pytest.raises(ValueError, match="at least 2 nodes"):
        gauss_radau_nodes(1)
    with pytest.raises(ValueError, match="Gauss-Lobatto rule needs an integer number of nodes >= 2"):
        gauss_lobatto_nodes(2.5)
    u, _ = gauss_radau(4)
    with pytest.raises(ValueError):  # cached arrays are shared, so read-only
        u[0] = 0.0
