"""ode_log_prob against the exact log-densities of the analytic models."""

import jax
import numpy as np
import pytest

from numpyro_slic.noise import NoiseModel, StationaryGaussianNoise, VESDE, WhiteGaussianNoise
from doubles import Levels
from numpyro_slic.noise.flow import ode_log_prob

SDE = VESDE(0.01, 20.0)
T_MIN = float(SDE.t_of_sigma(0.1))  # a learned model's typical lowest level: 0.1 noise sd


def _power(n):
    k = np.fft.fftfreq(n) * n
    ky, kx = np.meshgrid(k, k, indexing="ij")
    return 0.3 + 2.0 / (1 + kx**2 + (ky / 3.0) ** 2)


def _stationary(n, scale=1.7):
    return StationaryGaussianNoise(_power(n), scale=scale, sde=SDE)


@pytest.mark.parametrize(
    "exact, variance",
    [
        (_stationary(8), float(_power(8).mean())),
        (_stationary(16), float(_power(16).mean())),
        (WhiteGaussianNoise(0.8, (8, 8), scale=1.7, sde=SDE), 0.64),
    ],
    ids=["stationary8", "stationary16", "white8"],
)
def test_matches_exact_log_prob(exact, variance):
    model = Levels(exact, T_MIN)  # exposes only the score: the ODE cannot peek at log_prob
    x = exact.sample(jax.random.key(0))
    expected = float(exact.log_prob(x, T_MIN))  # includes -D log(scale): physical units
    # The acceptance number: 0.1 nats (measured: within 0.02 nats here).
    assert abs(float(ode_log_prob(model, x, data_variance=variance)) - expected) < 0.1
    # Without the data variance the prior at t_max adds an error of at most D v / (2 sigma_max^2)
    # nats (module docstring); at a typical x the two terms cancel to well inside it.
    bound = x.size * variance / (2 * 20.0**2)
    assert abs(float(ode_log_prob(model, x)) - expected) < min(0.1, bound)


def test_gradient():
    exact = _stationary(8)
    model = Levels(exact, T_MIN)
    x = exact.sample(jax.random.key(1))
    v = 1.0
    grad = jax.grad(lambda y: ode_log_prob(model, y, data_variance=v))(x)
    # For Gaussian noise the ODE is linear and its trace constant, so the only approximation, the
    # isotropic prior N(0, sigma_T^2 + v) at t_max, scales each Fourier mode of the score by
    # (P_k + sigma_T^2) / (v + sigma_T^2): up to 0.4% here.
    factor = (np.asarray(exact.power) + 20.0**2) / (v + 20.0**2)
    expected = np.fft.ifft2(factor * np.fft.fft2(np.asarray(exact.score(x, T_MIN), np.float64))).real
    # The adjoint of a float32 solve to rtol 1e-5: measured 3e-5 relative.
    np.testing.assert_allclose(np.asarray(grad), expected, rtol=0, atol=2e-4 * np.abs(expected).max())


def test_hutchinson_is_unbiased():
    exact = _stationary(8)
    model = Levels(exact, T_MIN)
    x = exact.sample(jax.random.key(2))
    reference = float(ode_log_prob(model, x, data_variance=1.0))
    m = 48
    keys = jax.random.split(jax.random.key(3), m)
    draws = np.asarray(
        jax.vmap(lambda k: ode_log_prob(model, x, data_variance=1.0, trace="hutchinson", key=k))(keys)
    )
    se = draws.std(ddof=1) / np.sqrt(m)
    assert abs(draws.mean() - reference) < 4 * se  # fails by chance with p ~ 6e-5
    # Its spread: the path-integrated Jacobian A = -1/2 int g^2 ds/dx dt is circulant with
    # eigenvalues a_k = 1/2 log((P_k + sigma_T^2) / (P_k + sigma_t^2)) and diagonal mean(a), so a
    # Rademacher probe has variance 2 sum_{a != b} A_ab^2 = 2 (sum_k a_k^2 - D mean(a)^2): 2.6^2.
    p, s_t = np.asarray(exact.power), float(SDE.sigma(T_MIN))
    a = 0.5 * np.log((p + 20.0**2) / (p + s_t**2))
    sd = np.sqrt(2 * (np.sum(a**2) - a.size * a.mean() ** 2))
    # An sd from 48 draws: relative error about 1 / sqrt(2 * 47) = 10% (more for heavy tails).
    assert 0.6 < draws.std(ddof=1) / sd < 1.4


def test_hutchinson_is_exact_for_iid_pixels():
    # A diagonal Jacobian: e^T J e = tr J for every Rademacher probe.
    exact = WhiteGaussianNoise(0.8, (8, 8), sde=SDE)
    model = Levels(exact, T_MIN)
    x = exact.sample(jax.random.key(4))
    a = ode_log_prob(model, x, trace="hutchinson", key=jax.random.key(5), n_probes=3)
    b = ode_log_prob(model, x)
    # The identity is exact: in float64 the two agree to 2e-11 nats (measured, jax 0.10 and 0.12).
    # In float32 the two traces differ by rounding, which changes the adaptive solver's accepted
    # steps, and each result is then only as accurate as the solver's tolerance: rtol = 1e-5 on
    # log Q = -81, the sum of a prior term of about -280 and a divergence integral of about +200
    # nats, i.e. about 2e-3 nats per path. Measured |a - b|: 5e-4 (jax 0.10), 1.3e-3 nats (jax
    # 0.12); both are 7e-3 nats from the analytic log Q_t (the prior at t_max). A wrong trace would
    # be off by O(1) nats or more, so 5e-3 nats (6e-5 of |log Q|) still tests the identity.
    np.testing.assert_allclose(float(a), float(b), atol=5e-3)


def test_t_zero_only_when_the_model_allows_it():
    exact = _stationary(8, scale=1.0)  # analytic: t_min = 0
    x = exact.sample(jax.random.key(6))
    # Starts at t_eps, sigma about sigma_min = 0.01: log Q_{t_eps} - log Q_0 is O(D sigma^2 / P)
    # = O(0.02) nats.
    assert abs(float(ode_log_prob(exact, x, 0.0, data_variance=1.0)) - float(exact.log_prob(x))) < 0.1
    with pytest.raises(ValueError, match="outside"):
        ode_log_prob(Levels(exact, T_MIN), x, 0.0)
    with pytest.raises(ValueError, match="needs key"):
        ode_log_prob(exact, x, trace="hutchinson")
    with pytest.raises(ValueError, match="one event"):
        ode_log_prob(exact, x[:4])
    with pytest.raises(ValueError, match="trace"):
        ode_log_prob(exact, x, trace="diag")
