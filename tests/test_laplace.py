"""numpyro_slic.infer.laplace and .policy on small models whose answers are known in closed form."""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import MCMC, NUTS

from numpyro_slic.infer import (
    MALA,
    adapted_metric,
    clipped_inverse,
    dense_block,
    find_map,
    flat_potential,
    laplace_inverse_mass,
    score_kernel,
)
from numpyro_slic.noise import WhiteGaussianNoise

MU = np.array([1.0, -2.0])
SD = np.array([0.5, 3.0])


def gaussian_model():
    numpyro.sample("a", dist.Normal(MU[0], SD[0]))
    numpyro.sample("b", dist.Normal(MU[1], SD[1]))


def positive_model():
    numpyro.sample("s", dist.LogNormal(0.0, 1.0))


def test_flat_potential_is_numpyros_flat_vector():
    fp = flat_potential(gaussian_model, init_values={"a": 0.5, "b": 1.0})
    np.testing.assert_allclose(fp.z, [0.5, 1.0])  # sorted site order, unconstrained = constrained here
    expected = 0.5 * np.sum(((np.array([0.5, 1.0]) - MU) / SD) ** 2) + np.sum(np.log(SD)) + np.log(2 * np.pi)
    np.testing.assert_allclose(fp.potential(fp.z), expected, rtol=1e-6)
    assert set(fp.unravel(fp.z)) == {"a", "b"}
    # A constrained site: z is log(s), constrain maps back.
    fp = flat_potential(positive_model, init_values={"s": 2.0})
    np.testing.assert_allclose(fp.z, [np.log(2.0)], rtol=1e-6)
    np.testing.assert_allclose(fp.constrain(fp.z)["s"], 2.0, rtol=1e-6)


def test_find_map_reaches_the_mode_and_laplace_is_the_covariance():
    fp = flat_potential(gaussian_model, init_values={"a": 0.0, "b": 0.0})
    z, value = find_map(fp.potential, fp.z, steps=600, learning_rate=0.3)
    np.testing.assert_allclose(z, MU, atol=2e-2)
    assert value == pytest.approx(float(fp.potential(z)))
    np.testing.assert_allclose(laplace_inverse_mass(fp.potential, z), np.diag(SD**2), rtol=1e-4, atol=1e-8)
    z0, value0 = find_map(fp.potential, fp.z, steps=0)
    np.testing.assert_array_equal(z0, fp.z) and value0 == pytest.approx(float(fp.potential(fp.z)))


def test_clipped_inverse():
    h = np.array([[4.0, 1.0], [1.0, 3.0]])
    np.testing.assert_allclose(clipped_inverse(h), np.linalg.inv(h))  # positive definite: exact
    indefinite = np.diag([10.0, -1.0])
    inv = clipped_inverse(indefinite)
    np.testing.assert_allclose(inv, np.diag([0.1, 1 / (1e-3 * 10.0)]))  # -1 clipped to 1e-3 x 10
    assert inv.dtype == np.float64 and np.all(np.linalg.eigvalsh(inv) > 0)
    np.testing.assert_allclose(clipped_inverse(np.array([[2.0, 1.0], [0.0, 2.0]])),
                               clipped_inverse(np.array([[2.0, 0.5], [0.5, 2.0]])))  # symmetrised first


def test_adapted_metric_and_dense_block():
    mcmc = MCMC(NUTS(gaussian_model, dense_mass=True), num_warmup=150, num_samples=5, num_chains=2,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.key(0))
    step_size, matrix = adapted_metric(mcmc)
    assert isinstance(step_size, float) and step_size > 0
    block = dense_block(matrix)
    assert block.shape == (2, 2) and list(matrix) == [("a", "b")]
    # NUTS takes the structured form back; the adapted variances are the right order of magnitude.
    assert 0.05 < block[0, 0] < 1.0 and 2.0 < block[1, 1] < 30.0
    NUTS(gaussian_model, dense_mass=True, step_size=step_size, inverse_mass_matrix=matrix)
    np.testing.assert_array_equal(dense_block(jnp.eye(3)), jnp.eye(3))
    with pytest.raises(ValueError, match="2 blocks"):
        dense_block({("a",): jnp.eye(1), ("b",): jnp.eye(1)})


def test_score_kernel_policy():
    exact = score_kernel(gaussian_model, WhiteGaussianNoise(1.0), step_size=0.1, max_tree_depth=5)
    assert isinstance(exact.kernel, NUTS) and exact.has_value and exact.model_kwargs == {}
    assert set(exact.extra_fields) == {"diverging", "num_steps", "accept_prob"}
    score_only = SimpleNamespace(has_log_prob=False)  # the policy reads only this (a score-parameterised model)
    line = score_kernel(gaussian_model, score_only, inverse_mass_matrix={("a", "b"): jnp.eye(2)}, line_nodes=4)
    assert isinstance(line.kernel, MALA) and not line.has_value and line.model_kwargs == {"energy": "none"}
    assert "num_grad_evals" in line.extra_fields and "4 nodes" in line.description
