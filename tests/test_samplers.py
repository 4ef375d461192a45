"""Score-based samplers under numpyro.infer.MCMC: MALA (line-integral Metropolis test) and
AnnealedLangevin, checked against the exact posterior of the blob problem; the diffusion_level
handler; chain methods; the pure init/step API."""

import os
import pickle
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro import handlers
from numpyro.infer import MCMC
from numpyro.infer.util import log_density

import blob_problem as bp
from doubles import Levels
from numpyro_slic import ScoreLikelihood
from numpyro_slic.infer import (
    AnnealedLangevin,
    MALA,
    diffusion_level,
    gauss_lobatto_nodes,
    geometric_levels,
    langevin,
    log_density_difference,
    mala,
)
from numpyro_slic.noise import NoiseModel, StationaryGaussianNoise, WhiteGaussianNoise


# ---- quadrature and the line integral ------------------------------------------------------------
@pytest.mark.parametrize("k", [2, 3, 4, 6, 10])
def test_gauss_lobatto_rule_is_exact_to_degree_2k_minus_3(k):
    u, w = gauss_lobatto_nodes(k)
    assert u[0] == 0.0 and u[-1] == 1.0 and np.all(np.diff(u) > 0)
    errors = [abs(np.sum(w * u**deg) - 1.0 / (deg + 1)) for deg in range(2 * k - 1)]
    assert max(errors[:-1]) < 1e-13
    # Degree 2K - 2 is where the rule first errs; its error constant shrinks like 1 / (2K)!, so it
    # stands out of round-off by orders of magnitude rather than by a fixed amount.
    assert errors[-1] > 100 * max(max(errors[:-1]), 1e-16)


def test_log_density_difference_from_gradients():
    """A quartic log-density: exact with K = 3 (Simpson, degree 3 integrand), not with K = 2."""
    logp = lambda x: -0.25 * jnp.sum(x**4) + jnp.sum(x[:-1] * x[1:])  # noqa: E731
    grad = jax.grad(logp)
    x = jnp.array([0.3, -1.2, 0.8], jnp.float64) if jax.config.x64_enabled else jnp.array([0.3, -1.2, 0.8])
    y = x + jnp.array([0.9, 0.4, -1.1])
    exact = float(logp(y) - logp(x))
    line = lambda k: float(log_density_difference(grad, x, grad(x), y, grad(y), k))  # noqa: E731
    assert line(3) == pytest.approx(exact, rel=1e-5)
    assert abs(line(2) - exact) > 0.05


# ---- the blob problem: exact posterior from NUTS with the exact likelihood --------------------------
@pytest.fixture(scope="module")
def blob():
    noise = StationaryGaussianNoise(bp.anisotropic_power())
    data = bp.observe(noise, jax.random.key(10))
    reference = bp.run_nuts(bp.exact_likelihood(noise, data), seed=0)
    return noise, data, reference


def _score_only(noise, data):
    """The observation site from the score alone: a plain callable, value 0 (energy="none")."""

    def likelihood(mu):
        numpyro.sample("obs", ScoreLikelihood(noise.score, mu, energy="none"), obs=data)

    return likelihood


def _run(kernel, likelihood, *, num_warmup, num_samples, seed=1, num_chains=4):
    mcmc = MCMC(
        kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
        chain_method="vectorized", progress_bar=False,
    )  # fmt: skip
    mcmc.run(jax.random.key(seed), likelihood)
    return mcmc


def _samples(mcmc):
    return {k: np.asarray(v) for k, v in mcmc.get_samples().items()}


# Tolerances for MALA: 4 chains x 2500 draws give a bulk ESS of about 4000 per parameter (measured
# 0.43 ESS per draw), so the mean shift between sampler and reference (whose ESS is similar) has an
# sd of about sqrt(2 / 4000) = 0.02 posterior sd and the sd ratio about 0.02: the 0.1 sd and
# 10% bounds are about 4 standard errors, and a wrong Metropolis test (e.g. the trapezoid rule,
# measured: shifts up to 0.5 sd, sd ratios up to 5) fails them.
@pytest.mark.slow
def test_mala_score_only_matches_exact_posterior(blob):
    noise, data, reference = blob
    mcmc = _run(MALA(bp.model), _score_only(noise, data), num_warmup=500, num_samples=2500)
    for name, (shift, ratio) in bp.compare(_samples(mcmc), reference).items():
        assert abs(shift) < 0.1, (name, shift)
        assert abs(ratio - 1) < 0.1, (name, ratio)
    extra = mcmc.get_extra_fields()
    assert np.all(np.asarray(extra["num_grad_evals"]) == 2)  # line_nodes=3: K - 1 per step
    # Dual averaging steers towards 0.574, but the step it ends with is an average that still
    # remembers the 10x restart of the last window: over 12 runs of 4 chains the sampling
    # acceptance was 0.38 to 0.67 (per chain 0.23 to 0.66; ESS per step barely changes, since
    # MALA's efficiency eps^2 x acceptance is flat around the optimum).
    assert 0.3 < float(np.mean(extra["accept_prob"])) < 0.8


@pytest.mark.slow
def test_mala_value_metropolis_matches_exact_posterior(blob):
    noise, data, reference = blob

    def likelihood(mu):
        numpyro.sample("obs", ScoreLikelihood(noise, mu, energy="exact"), obs=data)

    mcmc = _run(
        MALA(bp.model, metropolis="value", dense_mass=True), likelihood, num_warmup=500, num_samples=2500
    )
    for name, (shift, ratio) in bp.compare(_samples(mcmc), reference).items():
        assert abs(shift) < 0.1 and abs(ratio - 1) < 0.1, (name, shift, ratio)
    assert np.all(np.asarray(mcmc.get_extra_fields()["num_grad_evals"]) == 1)


def test_line_and_value_tests_agree_step_by_step(blob):
    """Same state, same key: the line-integral acceptance equals the value-based one (5 nodes)."""
    noise, data, _ = blob

    def logdensity(params):
        prior = (
            dist.Normal(5.0, 3.0).log_prob(params["amp"])
            + dist.Normal(0.0, 2.0).log_prob(params["x0"])
            + dist.Normal(0.0, 2.0).log_prob(params["y0"])
        )
        return prior + noise.log_prob(data - bp.simulate(**params))

    position = {"amp": jnp.array(5.0), "x0": jnp.array(0.2), "y0": jnp.array(-0.5)}
    imm = jnp.array([0.5, 0.08, 0.05])  # about the posterior variances

    @jax.jit
    @jax.vmap
    def both(key):
        s_line = mala.init(position, logdensity)
        s_value = mala.init(position, logdensity, metropolis="value")
        _, i_line = mala.step(key, s_line, logdensity, 1.5, imm, line_nodes=5)
        _, i_value = mala.step(key, s_value, logdensity, 1.5, imm, metropolis="value")
        return i_line, i_value

    i_line, i_value = both(jax.random.split(jax.random.key(0), 20))
    assert 0.05 < float(np.mean(i_value.accept_prob)) < 0.95  # a mix of easy and hard proposals
    # float32 values of a log-density near -300: the value difference itself is good to ~1e-4.
    np.testing.assert_allclose(i_line.accept_prob, i_value.accept_prob, atol=2e-3)
    assert np.all(np.asarray(i_line.num_grad_evals) == 4) and np.all(np.asarray(i_value.num_grad_evals) == 1)


# AnnealedLangevin: each draw is one anneal over 6 levels (sigma 3 -> 0.1 geometric, then t = 0) of
# 20 unadjusted steps with alpha = 0.2. Measured on this problem (4 x 1000 draws, four seeds): mean
# shifts <= 0.045 posterior sd, sd ratios 1.009 to 1.050 (the O(alpha) variance inflation of
# unadjusted Langevin: alpha / 8 = 2.5% per unit-curvature direction on a Gaussian), ESS about 0.9
# per draw. Bounds: 4000 draws give shift and sd-ratio standard errors of about 0.025 against the
# reference, so |shift| < 0.15 and 0.95 < ratio < 1.12 allow the measured bias plus 3-4 standard
# errors; a wrongly preconditioned chain (or a sign error in the step) fails them (an unannealed one
# does not: it measured the same here, see docs/samplers.md).
@pytest.mark.slow
def test_annealed_langevin_accuracy(blob):
    noise, data, reference = blob
    levels = np.append(geometric_levels(noise, 3.0, 0.1, 5), 0.0)
    kernel = AnnealedLangevin(bp.model, levels, steps_per_level=20, step_size=0.2)

    # The noise model itself, not its plain score function (valid at t = 0 only): the levels must
    # reach a score that depends on them.
    def likelihood(mu):
        numpyro.sample("obs", ScoreLikelihood(noise, mu, energy="none"), obs=data)

    mcmc = _run(kernel, likelihood, num_warmup=200, num_samples=1000)
    samples = _samples(mcmc)
    for name, (shift, ratio) in bp.compare(samples, reference).items():
        assert abs(shift) < 0.15, (name, shift)
        assert 0.95 < ratio < 1.12, (name, ratio)
    extra = mcmc.get_extra_fields()
    assert np.all(np.asarray(extra["num_grad_evals"]) == 6 * 20 + 6)
    # The would-be Metropolis probability of the last level's steps: small discretisation error.
    assert float(np.mean(extra["metropolis_prob"])) > 0.95
    # One anneal nearly decorrelates consecutive draws.
    ess = numpyro.diagnostics.effective_sample_size(np.asarray(mcmc.get_samples(group_by_chain=True)["amp"]))
    assert ess > 0.5 * 4000


# ---- the diffusion_level handler ------------------------------------------------------------------
H, W = 8, 6


def _handler_model(noise, data):
    a = numpyro.sample("a", dist.Normal(0.0, 1.0))
    mu = a * jnp.ones((H, W))
    numpyro.sample("plain", ScoreLikelihood(noise, mu), obs=data)
    with numpyro.plate("exposures", 2):
        numpyro.sample("plated", ScoreLikelihood(noise, mu), obs=jnp.stack([data, -data]))
    with handlers.mask(mask=False):
        numpyro.sample("masked", ScoreLikelihood(noise, mu), obs=data)
    numpyro.sample("other", dist.Normal(a, 2.0), obs=0.3)
    numpyro.factor("factor", -(a**2))


def test_diffusion_level_sets_t_on_score_likelihood_sites_only():
    noise = StationaryGaussianNoise(bp.anisotropic_power((H, W)), scale=0.5)
    data = noise.sample(jax.random.key(0))
    model = handlers.substitute(_handler_model, {"a": 0.4})
    plain = handlers.trace(model).get_trace(noise, data)
    for leveled in (diffusion_level(model, t=0.3), diffusion_level(0.3)(model)):
        tr = handlers.trace(leveled).get_trace(noise, data)
        assert float(tr["plain"]["fn"].t) == pytest.approx(0.3)
        assert float(tr["plated"]["fn"].base_dist.t) == pytest.approx(0.3)
        assert tr["plated"]["fn"].batch_shape == (2,)
        assert float(tr["masked"]["fn"].base_dist.t) == pytest.approx(0.3)
        # The value is the level-t density: Q_t(d - mu) of the noise model.
        expected = noise.log_prob(data - 0.4, 0.3)
        np.testing.assert_allclose(tr["plain"]["fn"].log_prob(data), expected, rtol=1e-6)
        assert float(plain["plain"]["fn"].t) == 0.0
        # Every other site is untouched.
        for name in ("a", "other", "factor"):
            np.testing.assert_allclose(
                tr[name]["fn"].log_prob(tr[name]["value"]), plain[name]["fn"].log_prob(plain[name]["value"])
            )
    # The level may be traced (annealing samplers scan over it).
    joint = jax.jit(lambda t: log_density(diffusion_level(_handler_model, t=t), (noise, data), {}, {"a": 0.4})[0])
    eager = log_density(diffusion_level(_handler_model, t=0.3), (noise, data), {}, {"a": 0.4})[0]
    np.testing.assert_allclose(joint(0.3), eager, rtol=1e-6)
    # ... and the joint changes by exactly the level-t minus level-0 noise densities of the
    # unmasked ScoreLikelihood events (plain, and the plate's two exposures).
    residuals = [data - 0.4, data - 0.4, -data - 0.4]
    change = sum(noise.log_prob(r, 0.3) - noise.log_prob(r, 0.0) for r in residuals)
    np.testing.assert_allclose(joint(0.3) - joint(0.0), change, rtol=1e-3)
    with pytest.raises(TypeError, match="needs the level"):
        diffusion_level()


# ---- chain methods, warmup/run, potential_fn, the pure API ------------------------------------------
def _tiny_model(data):
    """Two parameters, a 4-pixel white-noise ScoreLikelihood: compiles fast."""
    a = numpyro.sample("a", dist.Normal(0.0, 3.0))
    b = numpyro.sample("b", dist.HalfNormal(2.0))  # constrained: exercises postprocess_fn
    mu = a + b * jnp.linspace(-1.0, 1.0, 4)
    numpyro.sample("obs", ScoreLikelihood(WhiteGaussianNoise(0.5, event_ndim=1), mu, energy="none"), obs=data)


TINY_DATA = jnp.array([0.1, 0.9, 1.4, 2.3])


@pytest.mark.parametrize("kernel", ["mala", "annealed"])
def test_vectorized_equals_sequential(kernel):
    def make():
        if kernel == "mala":
            return MALA(_tiny_model)
        return AnnealedLangevin(_tiny_model, [0.5, 0.2, 0.0], steps_per_level=4)

    out = {}
    for method in ("vectorized", "sequential"):
        mcmc = MCMC(make(), num_warmup=20, num_samples=5, num_chains=2, chain_method=method, progress_bar=False)
        mcmc.run(jax.random.key(2), TINY_DATA)
        out[method] = mcmc.get_samples(group_by_chain=True)
        assert out[method]["b"].shape == (2, 5) and np.all(np.asarray(out[method]["b"]) > 0)
    # Same per-chain keys, same arithmetic up to float32 reassociation under vmap.
    for name in ("a", "b"):
        np.testing.assert_allclose(out["vectorized"][name], out["sequential"][name], atol=1e-4)


@pytest.mark.slow
def test_parallel_chains_on_two_host_devices():
    """chain_method="parallel" (pmap) on two CPU devices; needs XLA_FLAGS set before jax starts."""
    script = textwrap.dedent(
        """
        import jax, jax.numpy as jnp, numpy as np, numpyro, numpyro.distributions as dist
        from numpyro.infer import MCMC
        from numpyro_slic import ScoreLikelihood
        from numpyro_slic.infer import AnnealedLangevin
        from numpyro_slic.noise import WhiteGaussianNoise
        assert jax.local_device_count() == 2
        def model(data):
            a = numpyro.sample("a", dist.Normal(0.0, 3.0))
            noise = WhiteGaussianNoise(0.5, event_ndim=1)
            numpyro.sample("obs", ScoreLikelihood(noise, a + jnp.zeros(4), energy="none"), obs=data)
        out = {}
        for method in ("parallel", "sequential"):
            mcmc = MCMC(AnnealedLangevin(model, [0.5, 0.0], steps_per_level=4), num_warmup=10,
                        num_samples=5, num_chains=2, chain_method=method, progress_bar=False)
            mcmc.run(jax.random.key(0), jnp.array([0.1, 0.9, 1.4, 2.3]))
            out[method] = np.asarray(mcmc.get_samples(group_by_chain=True)["a"])
        np.testing.assert_allclose(out["parallel"], out["sequential"], atol=1e-4)
        print("ok")
        """
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


def test_warmup_then_run_and_post_warmup_state():
    mcmc = MCMC(MALA(_tiny_model), num_warmup=100, num_samples=50, progress_bar=False)
    mcmc.warmup(jax.random.key(3), TINY_DATA)
    step_size = float(mcmc.post_warmup_state.adapt_state.step_size)
    mcmc.run(jax.random.key(4), TINY_DATA)
    assert mcmc.get_samples()["a"].shape == (50,)
    assert float(mcmc.last_state.adapt_state.step_size) == step_size  # no adaptation after warmup
    assert int(mcmc.last_state.i) == 150


@pytest.mark.parametrize("kernel", ["mala", "annealed"])
def test_mcmc_with_kernel_pickles_and_reruns(kernel):
    make = {"mala": lambda: MALA(_tiny_model), "annealed": lambda: AnnealedLangevin(_tiny_model, [0.5, 0.0])}[kernel]
    mcmc = MCMC(make(), num_warmup=10, num_samples=10, progress_bar=False)
    mcmc.run(jax.random.key(6), TINY_DATA)
    restored = pickle.loads(pickle.dumps(mcmc))
    np.testing.assert_array_equal(restored.get_samples()["a"], mcmc.get_samples()["a"])
    restored.run(jax.random.key(7), TINY_DATA)
    assert restored.get_samples()["a"].shape == (10,)


def test_mala_with_potential_fn():
    """No model: a potential function and init_params, as with NumPyro's HMC."""
    cov = jnp.array([[1.0, 0.8], [0.8, 1.0]])
    prec = jnp.linalg.inv(cov)
    kernel = MALA(potential_fn=lambda x: 0.5 * x @ prec @ x, dense_mass=True)
    mcmc = MCMC(kernel, num_warmup=300, num_samples=12000, progress_bar=False)
    mcmc.run(jax.random.key(5), init_params=jnp.array([2.0, -1.0]))
    x = np.asarray(mcmc.get_samples())
    # ESS ~ 2500 to 7500 (dense mass: whitened target; measured 940 to 2500 per 4000 draws over 8
    # seeds on jax 0.10), so a covariance element's sd is at most 0.03: within 0.12 of the truth.
    # (4000 draws, sd up to 0.045, failed at 0.122 on jax 0.12.1's random stream.)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.12)
    with pytest.raises(ValueError, match="needs init_params"):
        MCMC(MALA(potential_fn=lambda x: x @ x), num_warmup=1, num_samples=1, progress_bar=False).run(
            jax.random.key(0)
        )


def test_pure_api_on_a_pytree():
    def logdensity(p):
        return -0.5 * jnp.sum(p["u"] ** 2) - 0.5 * (p["v"] / 2.0) ** 2

    position = {"u": jnp.zeros(2), "v": jnp.array(1.0)}
    state = mala.init(position, logdensity)

    @jax.jit
    def chain(state, key):
        def body(s, k):
            s, info = mala.step(k, s, logdensity, 1.2, jnp.array([1.0, 1.0, 4.0]))
            return s, (s.position["v"], info.accept_prob)

        return jax.lax.scan(body, state, jax.random.split(key, 4000))

    _, (v, acc) = chain(state, jax.random.key(0))
    assert np.std(np.asarray(v)) == pytest.approx(2.0, rel=0.1)  # ESS ~ 1000: sd to 2-3%
    assert 0.3 < float(np.mean(acc)) < 0.95


def test_unadjusted_langevin_matches_its_gaussian_theory():
    """On N(0, 4) with A = 4 (unit whitened curvature), unadjusted Langevin at alpha = 1 has
    stationary sd 2 / sqrt(1 - alpha / 4) = 2.309 (module docstring); the Metropolis-adjusted
    step (trapezoid rule, exact for Gaussians) has sd 2."""

    def logdensity(p):
        return -0.5 * (p["x"] / 2.0) ** 2

    def chain(adjusted):
        def body(s, k):
            s, info = langevin.step(k, s, logdensity, 1.0, jnp.array([4.0]), adjusted=adjusted)
            return s, (s.position["x"], info.metropolis_prob)

        state = langevin.init({"x": jnp.array(0.0)}, logdensity)
        return jax.jit(lambda key: jax.lax.scan(body, state, jax.random.split(key, 20000))[1])(jax.random.key(0))

    # Autocorrelation 1 - alpha / 2 = 0.5 per step: ESS ~ 20000 / 3, so the sd is good to ~1%.
    x, prob = chain(False)
    assert float(np.std(np.asarray(x))) == pytest.approx(2.0 / np.sqrt(0.75), rel=0.03)
    assert 0.8 < float(np.mean(prob)) < 1.0  # the move would often have been rejected
    x, _ = chain(True)
    assert float(np.std(np.asarray(x))) == pytest.approx(2.0, rel=0.03)


def test_bad_input_raises_with_the_fix():
    with pytest.raises(ValueError, match="exactly one of"):
        MALA()
    with pytest.raises(ValueError, match="unknown metropolis"):
        MALA(_tiny_model, metropolis="values")
    with pytest.raises(ValueError, match="nodes >= 2"):
        MALA(_tiny_model, line_nodes=1)
    with pytest.raises(ValueError, match="target_accept_prob"):
        MALA(_tiny_model, target_accept_prob=1.2)
    with pytest.raises(ValueError, match="must not increase"):
        AnnealedLangevin(_tiny_model, [0.0, 0.5])
    with pytest.raises(ValueError, match="t >= 0"):
        AnnealedLangevin(_tiny_model, [0.5, -0.1])
    with pytest.raises(ValueError, match="steps_per_level"):
        AnnealedLangevin(_tiny_model, [0.5, 0.0], steps_per_level=0)
    with pytest.raises(TypeError, match="needs a NumPyro model"):
        AnnealedLangevin(None, [0.0])
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        geometric_levels(WhiteGaussianNoise(1.0), 0.1, 1.0, 4)


def test_annealed_langevin_refuses_levels_outside_a_sites_range():
    """Levels reach the sites traced, where nothing can check them: the kernel checks them at init.

    Before, levels ending at 0 ran a learned model at its t_min, and a plain score function at
    every level, silently.
    """
    narrow = Levels(WhiteGaussianNoise(0.5, (4,)), 0.1, 0.8)

    def model(data, score_only=False):
        a = numpyro.sample("a", dist.Normal(0.0, 3.0))
        mu = a + jnp.linspace(-1.0, 1.0, 4)
        numpyro.sample("wide", ScoreLikelihood(WhiteGaussianNoise(0.5, event_ndim=1), mu, energy="none"), obs=data)
        with numpyro.plate("exposures", 2):
            numpyro.sample("narrow", ScoreLikelihood(narrow, mu, t=0.1, energy="none"), obs=jnp.stack([data, data]))
        if score_only:
            numpyro.sample("plain", ScoreLikelihood(lambda r: -r / 0.25, mu, energy="none"), obs=data)

    def init(levels, **kwargs):
        kernel = AnnealedLangevin(model, levels, steps_per_level=2)
        return kernel.init(jax.random.key(0), 2, model_args=(TINY_DATA,), model_kwargs=kwargs)

    with pytest.raises(ValueError, match=r"level t=0 is outside \[0.1, 0.8\].* site 'narrow'.*not 0"):
        init([0.5, 0.2, 0.0])
    with pytest.raises(ValueError, match=r"level t=0.9 is outside \[0.1, 0.8\].* site 'narrow'"):
        init([0.9, 0.5, 0.1])
    with pytest.raises(ValueError, match=r"level t=0.5 is outside \[0, 0\].* site 'plain'.*levels=\[0.0\] only"):
        init([0.5, 0.1], score_only=True)
    assert np.all(np.isfinite(init([0.5, 0.1]).grad_moments))  # in range: accepted
