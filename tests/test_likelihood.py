"""ScoreLikelihood: the NumPyro distribution contract, gradients, energies and posterior exactness."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from numpyro.infer import Predictive, log_likelihood

import blob_problem as bp
from numpyro_slic import ScoreLikelihood, perturb_observation
from numpyro_slic.likelihood import gauss_radau_nodes, level_for_sigma
from numpyro_slic.noise import GaussianMixtureNoise, StationaryGaussianNoise, WhiteGaussianNoise

H, W = 8, 6


@pytest.fixture(scope="module")
def stationary():
    return StationaryGaussianNoise(bp.anisotropic_power((H, W)), scale=0.5)


@pytest.fixture(scope="module")
def mixture():
    return GaussianMixtureNoise(event_shape=(H, W), scale=0.5)


# ---- quadrature ----------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [2, 3, 5, 8, 12])
def test_gauss_radau_rule_is_exact_to_degree_2k_minus_2(k):
    u, w = gauss_radau_nodes(k)
    assert u[-1] == 1.0 and np.all(np.diff(u) > 0) and np.all(u > 0)
    errors = [abs(np.sum(w * u**deg) - 1.0 / (deg + 1)) for deg in range(2 * k)]
    assert max(errors[:-1]) < 1e-14
    # ... and not beyond: degree 2K - 1 is where the rule first errs (the error constant shrinks
    # like 1 / (2K)!, so it stands out of round-off only for moderate K).
    if k <= 8:
        assert errors[-1] > 100 * max(max(errors[:-1]), 1e-16)


# ---- shapes, batching and the numpyro contract ----------------------------------------------------
def test_shapes_and_batching(stationary):
    loc = jnp.zeros((3, H, W))
    d = ScoreLikelihood(stationary, loc)
    assert d.event_shape == (H, W) and d.batch_shape == (3,)
    assert d.energy == "exact"
    x = d.sample(jax.random.key(0), (5,))
    assert x.shape == (5, 3, H, W)
    assert d.log_prob(x).shape == (5, 3)
    assert d.log_prob(x[0, 0]).shape == (3,)  # one observation broadcast against three locs
    # i.i.d. models take their event shape from loc; a plain callable makes all of loc one event.
    white = ScoreLikelihood(WhiteGaussianNoise(1.0), jnp.zeros((2, 4, 5)))
    assert white.event_shape == (4, 5) and white.batch_shape == (2,)
    func = ScoreLikelihood(lambda r: -r, jnp.zeros((2, 4, 5)))
    assert func.event_shape == (2, 4, 5) and func.batch_shape == () and func.energy == "line"
    one_d = ScoreLikelihood(WhiteGaussianNoise(1.0, event_ndim=1), jnp.zeros((4, 7)))
    assert one_d.event_shape == (7,) and one_d.batch_shape == (4,)


@pytest.mark.parametrize("energy", ["exact", "line", "none"])
def test_gradients_are_the_score_in_both_modes(stationary, energy):
    key1, key2 = jax.random.split(jax.random.key(1))
    loc = 0.3 * jax.random.normal(key1, (H, W))
    value = loc + stationary.sample(key2)
    score = stationary.score(value - loc)

    def f(loc, value):
        return ScoreLikelihood(stationary, loc, energy=energy).log_prob(value)

    tol = dict(rtol=1e-4, atol=1e-5 * float(jnp.abs(score).max()))
    np.testing.assert_allclose(jax.grad(f, 0)(loc, value), -score, **tol)
    np.testing.assert_allclose(jax.grad(f, 1)(loc, value), score, **tol)
    np.testing.assert_allclose(jax.jacfwd(f, 0)(loc, value), -score, **tol)
    # Second-order forward-over-reverse works too (NUTS never needs it, but jax users may).
    assert np.all(np.isfinite(jax.jacfwd(jax.grad(f))(loc, value)))


def test_gradient_reaches_simulator_parameters_through_vjp(stationary):
    """d/dtheta log p = -J^T s: compare with the exact likelihood's autodiff gradient."""
    ys, xs = np.mgrid[:H, :W]

    def sim(theta):
        return theta[0] * jnp.exp(-((xs - theta[1]) ** 2 + (ys - theta[2]) ** 2) / 4.0)

    theta = jnp.array([2.0, 2.5, 3.1])
    d = sim(jnp.array([2.2, 2.0, 3.5])) + stationary.sample(jax.random.key(3))
    g_line = jax.grad(lambda th: ScoreLikelihood(stationary.score, sim(th)).log_prob(d))(theta)
    g_exact = jax.grad(lambda th: stationary.log_prob(d - sim(th)))(theta)
    np.testing.assert_allclose(g_line, g_exact, rtol=1e-4)


@pytest.mark.parametrize("energy", ["line", "none", "ode"])
def test_noise_parameter_gradients_raise_unless_exact(energy):
    """Only "exact" differentiates in the noise parameters, t and reference; the others raise.

    They used to return d/dsigma = 0 silently (the custom JVP dropped every tangent but r's).
    """
    sigma = 1.3
    x = sigma * jax.random.normal(jax.random.key(4), (H, W))
    loc = jnp.zeros((H, W))

    def log_p(sigma, loc=loc, energy=energy, t=0.0, reference=None):
        return ScoreLikelihood(WhiteGaussianNoise(sigma), loc, energy=energy, t=t, reference=reference).log_prob(x)

    # White Gaussian: d/dsigma log p = |x|^2 / sigma^3 - D / sigma.
    analytic = float(jnp.sum(x**2)) / sigma**3 - x.size / sigma
    np.testing.assert_allclose(jax.grad(log_p)(sigma, energy="exact"), analytic, rtol=1e-5)
    fix = "energy='exact'.*or hold the noise model, t and reference fixed"
    with pytest.raises(ValueError, match=fix):
        jax.grad(log_p)(sigma)
    with pytest.raises(ValueError, match=fix):
        jax.jacfwd(log_p)(sigma)  # forward mode (NUTS(forward_mode_differentiation=True)) too
    with pytest.raises(ValueError, match=fix):
        jax.grad(lambda t: log_p(sigma, t=t))(0.3)
    with pytest.raises(ValueError, match=fix):
        jax.grad(lambda ref: log_p(sigma, reference=ref))(jnp.zeros((H, W)))
    # Held fixed, the noise parameters leave the gradient in loc as it was: minus the score.
    score = -x / sigma**2
    np.testing.assert_allclose(jax.grad(lambda m: log_p(sigma, loc=m))(loc), -score, rtol=1e-5)
    np.testing.assert_allclose(jax.jit(jax.grad(lambda m: log_p(sigma, loc=m)))(loc), -score, rtol=1e-5)
    assert float(jax.grad(lambda s: log_p(jax.lax.stop_gradient(s)))(sigma)) == 0.0


@pytest.mark.parametrize("path", ["linear", "arc"])
@pytest.mark.parametrize("which", ["stationary", "mixture"])
def test_line_energy_differences_equal_exact(which, path, request):
    """log Q(r1) - log Q(r2) from the score's line integral matches the exact density (rel 1e-4, f32)."""
    noise = request.getfixturevalue(which)
    score_only = noise.score  # a plain callable: no log_prob available to ScoreLikelihood
    # The mixture's score switches sharply between its components (heavy tails at t = 0), so its
    # integrand is far from a polynomial in u: measured in float64 on this case, the relative error is
    # 7e-2 with 8 nodes, 7e-5 with 24, 2e-6 with 32 and 4e-10 with 48 (the Gaussian's is exact at K = 2).
    nodes = 8 if which == "stationary" else 48
    keys = jax.random.split(jax.random.key(4), 3)
    ref = noise.sample(keys[0])
    r1, r2 = noise.sample(keys[1]), 1.3 * noise.sample(keys[2])
    zero = jnp.zeros((H, W))

    def line(r):
        return ScoreLikelihood(score_only, zero, nodes=nodes, reference=ref, path=path).log_prob(r)

    exact = float(noise.log_prob(r1) - noise.log_prob(r2))
    assert abs(exact) > 5  # a difference worth measuring
    np.testing.assert_allclose(float(line(r1) - line(r2)), exact, rtol=1e-4)
    # The value is the log-density relative to the reference residual.
    np.testing.assert_allclose(float(line(r1)), float(noise.log_prob(r1) - noise.log_prob(ref)), rtol=1e-4)


def test_level_t_is_the_exact_likelihood_of_perturbed_data(stationary):
    t = level_for_sigma(stationary, 0.13 * 0.5)  # 0.13 noise sd, as in the SLIC GW follow-up
    np.testing.assert_allclose(stationary.sigma(t), 0.065, rtol=1e-5)
    d = stationary.sample(jax.random.key(5))
    d_t = perturb_observation(jax.random.key(6), d, stationary, t)
    np.testing.assert_allclose(np.std(np.asarray(d_t - d)), 0.065, rtol=0.3)  # 48 pixels
    loc = jnp.full((H, W), 0.1)
    at_t = ScoreLikelihood(stationary, loc, energy="line", t=t)
    exact_t = ScoreLikelihood(stationary, loc, energy="exact", t=t)
    assert float(exact_t.log_prob(d_t)) == pytest.approx(float(stationary.log_prob(d_t - loc, t)), rel=1e-6)
    diff = lambda L: float(L.log_prob(d_t) - L.log_prob(d_t + 0.05))  # noqa: E731
    assert diff(at_t) == pytest.approx(diff(exact_t), rel=1e-4)
    # The gradient is the score of Q_t, measurably not that of Q (relative change ~ sigma_t^2 / P_k).
    grad_t = jax.grad(lambda v: at_t.log_prob(v))(d_t)
    np.testing.assert_allclose(grad_t, stationary.score(d_t - loc, t), rtol=1e-4, atol=1e-4)
    change = jnp.linalg.norm(grad_t - stationary.score(d_t - loc, 0.0)) / jnp.linalg.norm(grad_t)
    assert change > 0.01


def test_jit_vmap_and_pytree_roundtrip(stationary):
    loc = jnp.zeros((H, W))
    d = ScoreLikelihood(stationary, loc, energy="line")
    leaves, treedef = jax.tree_util.tree_flatten(d)
    d2 = jax.tree_util.tree_unflatten(treedef, leaves)
    x = stationary.sample(jax.random.key(7))
    assert float(d2.log_prob(x)) == float(d.log_prob(x))
    assert (d2.energy, d2.nodes, d2.path, d2.event_shape) == (d.energy, d.nodes, d.path, d.event_shape)
    # The distribution crosses a jit boundary as an argument (eqx.filter_jit: it holds a noise model).
    jitted = eqx.filter_jit(lambda dist, v: dist.log_prob(v))
    np.testing.assert_allclose(jitted(d, x), d.log_prob(x), rtol=1e-6)
    locs = jnp.stack([loc, loc + 0.1, loc - 0.2])
    vm = jax.vmap(lambda m: ScoreLikelihood(stationary, m, energy="line").log_prob(x))(locs)
    np.testing.assert_allclose(vm, ScoreLikelihood(stationary, locs, energy="line").log_prob(x), rtol=1e-5)


def test_predictive_and_log_likelihood(stationary):
    def model(obs=None):
        amp = numpyro.sample("amp", numpyro.distributions.Normal(1.0, 0.1))
        numpyro.sample("obs", ScoreLikelihood(stationary, amp * jnp.ones((H, W))), obs=obs)

    prior = Predictive(model, num_samples=200)(jax.random.key(8))
    assert prior["obs"].shape == (200, H, W)
    # Predictive draws loc + noise: the pixel sd is the noise's (0.5) plus the amplitude prior's (0.1).
    np.testing.assert_allclose(np.std(prior["obs"] - prior["amp"][:, None, None]), 0.5, rtol=0.05)
    ll = log_likelihood(model, {"amp": prior["amp"][:10]}, obs=prior["obs"][0])["obs"]
    expected = jax.vmap(lambda a: stationary.log_prob(prior["obs"][0] - a))(prior["amp"][:10])
    np.testing.assert_allclose(ll, expected, rtol=1e-5)


# ---- bad input ----------------------------------------------------------------------------------
def test_bad_input_raises_with_the_fix(stationary):
    loc = jnp.zeros((H, W))
    with pytest.raises(ValueError, match="does not end in the noise model's event shape"):
        ScoreLikelihood(stationary, jnp.zeros((H + 1, W)))
    with pytest.raises(ValueError, match="does not end in the event shape"):
        ScoreLikelihood(stationary, loc).log_prob(jnp.zeros((H, W + 2)))
    bad = np.zeros((H, W), np.float32)
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="1 NaN or inf pixel"):
        ScoreLikelihood(stationary, loc).log_prob(bad)
    bad[2, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        perturb_observation(jax.random.key(0), bad, stationary, 0.1)
    with pytest.raises(ValueError, match="unknown energy='exakt'"):
        ScoreLikelihood(stationary, loc, energy="exakt")
    with pytest.raises(ValueError, match="energy='exact' needs a noise model with an exact log_prob"):
        ScoreLikelihood(stationary.score, loc, energy="exact")
    with pytest.raises(ValueError, match="outside StationaryGaussianNoise's valid range"):
        ScoreLikelihood(stationary, loc, t=1.5)
    with pytest.raises(ValueError, match="outside ScoreFunction's valid range"):
        ScoreLikelihood(stationary.score, loc, t=0.2)
    with pytest.raises(ValueError, match="scale must be a positive"):
        ScoreLikelihood(StationaryGaussianNoise(stationary.power, scale=0.0), loc)
    with pytest.raises(ValueError, match="unknown path"):
        ScoreLikelihood(stationary, loc, path="spiral")
    with pytest.raises(ValueError, match="nodes must be an integer >= 2"):
        ScoreLikelihood(stationary, loc, energy="line", nodes=1)
    with pytest.raises(ValueError, match="cannot draw noise"):
        ScoreLikelihood(stationary.score, loc).sample(jax.random.key(0))
    with pytest.raises(ValueError, match="takes 2-d events"):
        ScoreLikelihood(WhiteGaussianNoise(1.0), jnp.zeros(5))


# ---- posteriors: NUTS with ScoreLikelihood against NUTS with the exact likelihood -----------------
@pytest.fixture(scope="module")
def blob_stationary():
    noise = StationaryGaussianNoise(bp.anisotropic_power())
    data = bp.observe(noise, jax.random.key(10))
    reference = bp.run_nuts(bp.exact_likelihood(noise, data), seed=0)
    return noise, data, reference


@pytest.fixture(scope="module")
def blob_mixture():
    noise = GaussianMixtureNoise(event_shape=(bp.SIZE, bp.SIZE), scale=0.4)
    data = bp.observe(noise, jax.random.key(11))
    reference = bp.run_nuts(bp.exact_likelihood(noise, data), seed=0)
    return noise, data, reference


def _score_only_line(noise, data, **kwargs):
    def likelihood(mu):
        numpyro.sample("obs", ScoreLikelihood(noise.score, mu, energy="line", **kwargs), obs=data)

    return likelihood


# Tolerances: 4 chains x 2500 draws give ESS of several thousand per parameter here, so the mean
# shift between two independent runs has sd about sqrt(2 / ESS) < 0.03 posterior sd and the sd
# ratio about 0.02: the 0.1 sd and 10% bounds are 3 to 5 standard errors.
@pytest.mark.slow
@pytest.mark.parametrize("which", ["blob_stationary", "blob_mixture"])
def test_nuts_score_only_line_matches_exact_posterior(which, request):
    noise, data, reference = request.getfixturevalue(which)
    samples = bp.run_nuts(_score_only_line(noise, data), seed=1)
    for name, (shift, ratio) in bp.compare(samples, reference).items():
        assert abs(shift) < 0.1, (name, shift)
        assert abs(ratio - 1) < 0.1, (name, ratio)


@pytest.mark.slow
def test_nuts_forward_mode_matches(blob_stationary):
    noise, data, reference = blob_stationary
    samples = bp.run_nuts(_score_only_line(noise, data), seed=2, forward_mode_differentiation=True)
    for name, (shift, ratio) in bp.compare(samples, reference).items():
        assert abs(shift) < 0.1 and abs(ratio - 1) < 0.1, (name, shift, ratio)


@pytest.mark.slow
def test_white_gaussian_likelihood_is_measurably_wrong(blob_stationary):
    """The point of SLIC: ignoring the noise correlations gives overconfident, shifted posteriors."""
    noise, data, reference = blob_stationary
    white = WhiteGaussianNoise(1.0)  # the right per-pixel variance (unit), no correlations

    def likelihood(mu):
        numpyro.sample("obs", ScoreLikelihood(white, mu), obs=data)

    cmp = bp.compare(bp.run_nuts(likelihood, seed=1), reference)
    worst_ratio = min(ratio for _, ratio in cmp.values())
    worst_shift = max(abs(shift) for shift, _ in cmp.values())
    assert worst_ratio < 0.7 or worst_shift > 0.5, cmp


@pytest.mark.slow
def test_energy_none_misleads_nuts(blob_stationary):
    """Right gradient, zero value: NUTS's tree weights and divergence checks break (docs/design.md s. 2)."""
    noise, data, reference = blob_stationary

    def likelihood(mu):
        numpyro.sample("obs", ScoreLikelihood(noise.score, mu, energy="none"), obs=data)

    # Measured here: mean shifts up to 7 sd and sd ratios 2 to 8; a short run shows it plainly.
    cmp = bp.compare(bp.run_nuts(likelihood, seed=1, num_warmup=200, num_samples=200), reference)
    worst = max(max(abs(shift), abs(ratio - 1)) for shift, ratio in cmp.values())
    assert worst > 0.5, cmp


def test_ode_energy_matches_exact_density(stationary):
    """energy="ode": probability-flow log-density, within 0.1 nats of the exact one; gradient = score."""
    keys = jax.random.split(jax.random.key(12), 2)
    loc = jnp.zeros((H, W))
    r1, r2 = stationary.sample(keys[0]), 1.4 * stationary.sample(keys[1])
    ode = ScoreLikelihood(stationary, loc, energy="ode")
    assert abs(float(ode.log_prob(r1)) - float(stationary.log_prob(r1))) < 0.1
    exact = float(stationary.log_prob(r1) - stationary.log_prob(r2))
    assert abs(float(ode.log_prob(r1) - ode.log_prob(r2)) - exact) < 0.1
    np.testing.assert_allclose(jax.grad(ode.log_prob)(r1), stationary.score(r1), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="energy='ode' integrates the score over diffusion levels"):
        ScoreLikelihood(stationary.score, loc, energy="ode")
