"""A learned noise model, trained by the public API, validated against an exact oracle end to end.

Noise: stationary Gaussian with a known anisotropic spectrum on 16 x 16 pixels,
``blob_problem.anisotropic_power(corr_y=40, corr_x=2, floor=1)`` (unit variance; neighbour
correlation 0.46 along y, 0.05 along x), so every score and posterior has an exact answer. It is
short-ranged on purpose: on 16 x 16 patches the backbone's kernel reaches 7 lags under a cosine taper,
and with blob_problem's default spectrum (correlated over ~5 px) that estimate alone is 7% off.

Model: a tiny U-Net trained by ``train_noise_model`` for 300 steps on 2048 oracle patches WITH the
Gaussian backbone (``TrainConfig(backbone=True)``): the Gaussian part is estimated from the training
patches and the net learns only what that estimate misses. The score error below therefore measures
the estimate plus the net. Without the backbone the same net and budget reach only 53% (25% after
1000 steps; measured, not rerun here: the net alone is not what this file validates).

Level: sigma(t) = 0.3 noise sd. The observation is perturbed once at that level
(``perturb_observation``), so ``ScoreLikelihood(..., t=t)`` of an exact score is the exact likelihood
of the perturbed data, and the learned model is judged at the level where it is used.

Value for NUTS: the model is score-parameterised, hence not exactly conservative, so the line
integral (energy="line") starts next to the posterior, at the residual of an exact-likelihood fit
(``reference=data_t - simulate(fit)``). The energy parameterisation (conservative by construction,
energy="exact") was measured too: score error 0.036, the same posterior agreement, 2.3x the
training time; this file uses the score one, the package default.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest

import blob_problem as bp
from numpyro_slic import ScoreLikelihood, perturb_observation
from numpyro_slic.noise import StationaryGaussianNoise, WhiteGaussianNoise
from numpyro_slic.noise.learned import LearnedNoise
from numpyro_slic.noise.networks import UNet, UNetConfig
from numpyro_slic.noise.training import TrainConfig, train_noise_model

TINY = UNetConfig(width=8, channel_mults=(1,), embed_dim=16, groups=4)
SIGMA_LEVEL = 0.3  # noise sd units (the oracle has unit variance, so trained = physical units)
SCORE_TOL = 0.05  # the relative score error bound
# The Gauss-Radau rule with 2 nodes (one net call besides the end point): on this model, values at
# 200 posterior draws differ from a 16-node rule by at most 5e-5 nats (measured), far below the
# O(1) nat differences NUTS acts on.
NODES = 2


@pytest.fixture(scope="module")
def oracle():
    return StationaryGaussianNoise(bp.anisotropic_power(corr_y=40.0, corr_x=2.0, floor=1.0))


@pytest.fixture(scope="module")
def level(oracle):
    return float(oracle.sde.t_of_sigma(SIGMA_LEVEL))


@pytest.fixture(scope="module")
def learned(oracle):
    train = np.asarray(oracle.sample(jax.random.key(1), (2048,)))
    config = TrainConfig(batch_size=32, learning_rate=3e-3, backbone=True, log_every=1000)
    return train_noise_model(train, steps=300, key=jax.random.key(4), net=TINY, config=config,
                             progress=False)


def relative_score_error(model, oracle, t, n=512):
    """||s_model - s_exact|| / ||s_exact|| over n held-out draws of Q_t (oracle draws + sigma(t) z)."""
    k_noise, k_level = jax.random.split(jax.random.key(2))
    x = oracle.sample(k_noise, (n,))
    x = x + oracle.sigma(t) * jax.random.normal(k_level, x.shape)
    exact = jax.vmap(lambda u: oracle.score(u, t))(x)
    got = jax.vmap(lambda u: model.score(u, t))(x)
    return float(jnp.linalg.norm(got - exact) / jnp.linalg.norm(exact))


def test_score_error_at_the_level_used(learned, oracle, level):
    assert learned.backbone is not None and learned.t_min <= level
    err = relative_score_error(learned, oracle, level)
    # Measured 0.037. The backbone estimate alone gives 0.040, mostly from the cosine taper of its
    # 7-lag kernel (the periodogram of the same 2048 patches: 0.020); the net removes a little.
    assert err <= SCORE_TOL, err
    # The check has teeth: models that ignore the correlations fail the same bound by far.
    white = relative_score_error(WhiteGaussianNoise(1.0), oracle, level)  # measured 0.58
    untrained = LearnedNoise(UNet(TINY, key=jax.random.key(7)))  # no backbone: score 0, error 1
    assert white > 10 * SCORE_TOL, white
    assert relative_score_error(untrained, oracle, level) > 10 * SCORE_TOL


@pytest.fixture(scope="module")
def perturbed_problem(oracle, level):
    """Perturbed data, its exact posterior (NUTS with the oracle's log-density at level t)."""
    data = bp.observe(oracle, jax.random.key(10))
    data_t = perturb_observation(jax.random.key(11), data, oracle, level)
    exact = bp.run_nuts(lambda mu: numpyro.factor("obs", oracle.log_prob(data_t - mu, level)),
                        seed=0, num_samples=5000)
    return data_t, exact


@pytest.mark.slow
def test_nuts_with_learned_likelihood_matches_exact_posterior(learned, level, perturbed_problem):
    data_t, exact = perturbed_problem
    fit = {name: float(draws.mean()) for name, draws in exact.items()}
    reference = data_t - bp.simulate(**fit)

    def likelihood(mu):
        numpyro.sample("obs", ScoreLikelihood(learned, mu, t=level, energy="line", nodes=NODES,
                                              reference=reference), obs=data_t)

    samples = bp.run_nuts(likelihood, seed=1, num_warmup=300, num_samples=1000)
    # Tolerances (the issue's). Monte Carlo error, measured over 8 seeds of the exact likelihood with
    # these settings: sd 0.008 to 0.018 for mean shifts and 0.013 to 0.018 for sd ratios. The
    # model's own error, measured with 4 x 3000 draws (two seeds): shifts <= 0.04 sd (y0), sd
    # ratios 0.98 to 1.0. The bounds sit more than 3 Monte Carlo sds beyond that.
    for name, (shift, ratio) in bp.compare(samples, exact).items():
        assert abs(shift) < 0.1, (name, shift)
        assert abs(ratio - 1) < 0.1, (name, ratio)
