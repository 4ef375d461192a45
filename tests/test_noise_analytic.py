"""Analytic noise models: exact scores, densities against scipy/numpy, sampling moments, P(k) estimation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

from numpyro_slic.noise import (
    GaussianMixtureNoise,
    ScoreFunction,
    StationaryGaussianNoise,
    VESDE,
    WhiteGaussianNoise,
    fit_pixel_mixture,
)


def anisotropic_power(shape, *, corr_y=30.0, corr_x=4.0, floor=0.05):
    """A smooth, strongly anisotropic spectrum (more power along one axis, like striping)."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.fftfreq(shape[1])[None, :]
    p = 1.0 / (floor + corr_y * ky**2 + corr_x * kx**2)
    return p / p.mean()


MODELS = {
    "white": lambda: WhiteGaussianNoise(0.7, (6, 5), scale=1.3),
    "stationary": lambda: StationaryGaussianNoise(anisotropic_power((6, 5)), scale=0.8),
    "mixture": lambda: GaussianMixtureNoise((0.9, 0.1), (1.0, 4.0), (6, 5), scale=2.0),
    "mixture-means": lambda: GaussianMixtureNoise((0.97, 0.03), (1.0, 3.0), (6, 5), means=(-0.1, 4.0), scale=2.0),
    "stationary-1d": lambda: StationaryGaussianNoise(anisotropic_power((1, 12))[0]),
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("t", [0.0, 0.2, 0.7])
def test_score_is_gradient_of_log_prob(name, t):
    model = MODELS[name]()
    x = 1.5 * model.sample(jax.random.key(0))
    auto = jax.grad(model.log_prob)(x, t)
    np.testing.assert_allclose(model.score(x, t), auto, rtol=1e-5, atol=1e-6 * float(jnp.abs(auto).max()))


def test_white_log_prob_matches_scipy():
    m = WhiteGaussianNoise(0.7, (6, 5), scale=1.3)
    x = np.asarray(m.sample(jax.random.key(1)))
    for t in [0.0, 0.4]:
        sd = np.hypot(0.7, float(m.sde.sigma(t))) * 1.3
        ref = scipy.stats.norm(0, sd).logpdf(x).sum()
        np.testing.assert_allclose(m.log_prob(jnp.asarray(x), t), ref, rtol=1e-5)


@pytest.mark.parametrize("shape", [(6, 5), (4, 4), (9,)])
def test_stationary_matches_dense_gaussian(shape):
    """Exact against a dense multivariate normal built from the autocovariance (periodic grid)."""
    power = anisotropic_power(shape if len(shape) == 2 else (1,) + shape).reshape(shape)
    scale = 0.8
    m = StationaryGaussianNoise(power, scale=scale)
    # Dense covariance from the autocovariance function c = ifft(P), independently of the model code.
    acf = np.real(np.fft.ifftn(power))
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, len(shape))
    lag = (idx[:, None, :] - idx[None, :, :]) % np.array(shape)
    cov = acf[tuple(lag[..., i] for i in range(len(shape)))] * scale**2
    np.testing.assert_allclose(np.asarray(m.covariance()) * scale**2, cov, rtol=1e-5, atol=1e-7)
    x = np.asarray(m.sample(jax.random.key(2)))
    for t in [0.0, 0.3]:
        s2 = (float(m.sde.sigma(t)) * scale) ** 2
        mvn = scipy.stats.multivariate_normal(np.zeros(cov.shape[0]), cov + s2 * np.eye(cov.shape[0]))
        np.testing.assert_allclose(m.log_prob(jnp.asarray(x), t), mvn.logpdf(x.ravel()), rtol=1e-5)
        score_ref = -np.linalg.solve(cov + s2 * np.eye(cov.shape[0]), x.ravel())
        np.testing.assert_allclose(np.ravel(m.score(jnp.asarray(x), t)), score_ref, rtol=2e-4, atol=2e-5)


def test_mixture_log_prob_matches_numpy():
    w, s = np.array([0.9, 0.1]), np.array([1.0, 4.0])
    m = GaussianMixtureNoise(w, s, (6, 5), scale=2.0)
    x = np.asarray(m.sample(jax.random.key(3)))
    for t in [0.0, 0.4]:
        sd = np.sqrt(s**2 + float(m.sde.sigma(t)) ** 2) * 2.0
        pdf = (w * scipy.stats.norm(0, sd).pdf(x[..., None])).sum(-1)
        np.testing.assert_allclose(m.log_prob(jnp.asarray(x), t), np.log(pdf).sum(), rtol=1e-5)


def test_mixture_with_means_log_prob_and_score_match_numpy():
    """One-sided outliers (a positive component, like cosmic-ray hits): density against scipy, and
    the score against the numerical gradient of that density, at t = 0 and t > 0."""
    w, s, mu = np.array([0.97, 0.03]), np.array([1.0, 3.0]), np.array([-0.1, 4.0])
    m = GaussianMixtureNoise(w, s, (6, 5), means=mu, scale=2.0)
    x = np.asarray(m.sample(jax.random.key(3)), dtype=np.float64)
    for t in [0.0, 0.4]:
        sd = np.sqrt(s**2 + float(m.sde.sigma(t)) ** 2) * 2.0

        def log_pdf(v):
            return np.log((w * scipy.stats.norm(2.0 * mu, sd).pdf(v[..., None])).sum(-1))

        np.testing.assert_allclose(m.log_prob(jnp.asarray(x), t), log_pdf(x).sum(), rtol=1e-5)
        h = 1e-4
        numerical = (log_pdf(x + h) - log_pdf(x - h)) / (2 * h)
        np.testing.assert_allclose(m.score(jnp.asarray(x), t), numerical, rtol=1e-3, atol=1e-4)


def test_fit_pixel_mixture_recovers_a_known_mixture():
    """EM from the robust start recovers a core with rare one-sided outliers (0.5%, mean +8 sd):
    weights within 0.002, means and sds within 5% of the truth (200 000 values)."""
    rng = np.random.default_rng(0)
    n = 200_000
    outlier = rng.random(n) < 0.005
    x = np.where(outlier, rng.normal(8.0, 3.0, n), rng.normal(0.0, 1.0, n))
    weights, means, sigmas = fit_pixel_mixture(x, 2)
    np.testing.assert_allclose(weights, [0.995, 0.005], atol=0.002)
    np.testing.assert_allclose(means, [0.0, 8.0], atol=0.05 * 8)
    np.testing.assert_allclose(sigmas, [1.0, 3.0], rtol=0.05)
    fitted = GaussianMixtureNoise.from_patches(x.reshape(-1, 8, 5), 2)
    assert fitted.event_ndim == 2 and fitted.event_shape is None
    # The fit beats the single Gaussian of the same mean and variance in held-out log-likelihood.
    held = np.where(rng.random(n) < 0.005, rng.normal(8.0, 3.0, n), rng.normal(0.0, 1.0, n)).reshape(-1, 8, 5)
    gauss = scipy.stats.norm(x.mean(), x.std()).logpdf(held).mean()
    mix = float(jax.vmap(lambda e: fitted.log_prob(e, 0.0))(jnp.asarray(held)).mean()) / 40
    assert mix > gauss + 0.01


def test_fit_pixel_mixture_binning_changes_nothing_that_matters():
    """EM on binned values (the default) and on every value reach the same fit: parameters within
    1e-3, mean log-likelihood per value within 1e-6 (a bin of width 0.005 sd adds 2e-6 of the core
    variance); outliers beyond 8 sd enter one by one, so a rare far component keeps its place."""
    rng = np.random.default_rng(3)
    n = 40_000
    kind = rng.random(n)
    x = np.where(kind < 0.01, rng.normal(2.0, 1.5, n), rng.normal(0.0, 1.0, n))
    x = np.where(kind > 0.999, rng.normal(30.0, 10.0, n), x)

    def loglik(w, m, s):
        return scipy.special.logsumexp(np.log(w) + scipy.stats.norm(m, s).logpdf(x[:, None]), axis=1).mean()

    binned, exact = fit_pixel_mixture(x, 3), fit_pixel_mixture(x, 3, bin_width=None)
    for a, b in zip(binned, exact):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
    assert abs(loglik(*binned) - loglik(*exact)) < 1e-6
    assert binned[1][-1] > 20  # the far component


def test_fit_pixel_mixture_refuses_bad_input():
    with pytest.raises(ValueError, match="NaN/inf"):
        fit_pixel_mixture(np.array([0.0, np.nan] * 50))
    with pytest.raises(ValueError, match="positive integer"):
        fit_pixel_mixture(np.zeros(1000), 0)


def test_sample_moments():
    key = jax.random.key(4)
    n = 20000
    # Stationary: the empirical covariance of n draws; each entry has sd about sqrt(2 / n) ~ 0.01
    # of the unit diagonal, so 0.05 absolute is 5 sigma.
    m = StationaryGaussianNoise(anisotropic_power((4, 4)))
    x = np.asarray(m.sample(key, (n,))).reshape(n, -1)
    np.testing.assert_allclose(np.cov(x.T), np.asarray(m.covariance()), atol=0.05)
    # Mixture: variance and kurtosis (excess kurtosis of the default mixture is about 17).
    g = GaussianMixtureNoise(event_shape=(50,))
    y = np.asarray(g.sample(key, (4000,))).ravel()
    var = float(g.variance)
    assert abs(y.var() / var - 1) < 0.03  # sd of the variance ratio ~ sqrt((kurt + 2) / N) ~ 0.009
    w, s = np.exp(np.asarray(g.log_weights)), np.asarray(g.sigmas)
    kurt_exact = 3 * (w * s**4).sum() / var**2 - 3
    assert abs(scipy.stats.kurtosis(y) - kurt_exact) < 0.15 * kurt_exact
    # White with scale: physical sd = scale * sigma.
    wn = WhiteGaussianNoise(0.5, (200,), scale=3.0)
    assert abs(np.asarray(wn.sample(key, (100,))).std() / 1.5 - 1) < 0.02  # sd of ratio ~ 0.005


def test_from_patches_recovers_anisotropic_spectrum():
    """P(k) estimated from N patches is within its sampling error of the truth in every mode."""
    shape, n = (16, 16), 400
    truth = StationaryGaussianNoise(anisotropic_power(shape))
    patches = truth.sample(jax.random.key(5), (n,))
    est = StationaryGaussianNoise.from_patches(patches)
    ratio = np.asarray(est.power / truth.power)
    # Each periodogram ordinate is P_k * chi2_2 / 2 (relative sd 1), averaged over n patches and the
    # k / -k pair, so relative sd ~ 1 / sqrt(2 n) = 0.035 (1 / sqrt(n) = 0.05 for self-paired modes).
    assert abs(ratio.mean() - 1) < 0.01
    assert np.all(np.abs(ratio - 1) < 5 / np.sqrt(n))
    # The anisotropy itself is recovered: power along ky vs along kx at the same |k|.
    aniso_est = float(est.power[3, 0] / est.power[0, 3])
    aniso_true = float(truth.power[3, 0] / truth.power[0, 3])
    assert aniso_est == pytest.approx(aniso_true, rel=0.15)  # two modes, each ~3.5% sd
    # Symmetry P_k = P_-k holds exactly, which keeps samples real.
    np.testing.assert_allclose(est.power[1:, 1:], est.power[1:, 1:][::-1, ::-1], rtol=1e-6)


def test_diffusion_family_widens_by_sigma_t():
    m = StationaryGaussianNoise(anisotropic_power((4, 4)), sde=VESDE(0.01, 20.0))
    assert float(m.sigma(0.0)) == 0.0
    np.testing.assert_allclose(m.sigma(1.0), 20.0, rtol=1e-6)
    np.testing.assert_allclose(m.sde.t_of_sigma(m.sigma(0.37)), 0.37, rtol=1e-5)
    t = 0.5
    s2 = float(m.sigma(t)) ** 2
    wider = StationaryGaussianNoise(m.power + s2)
    x = m.sample(jax.random.key(6))
    np.testing.assert_allclose(m.score(x, t), wider.score(x, 0.0), rtol=1e-5)


def test_jit_vmap_grad_on_models():
    m = StationaryGaussianNoise(anisotropic_power((8, 8)))
    xs = m.sample(jax.random.key(7), (3,))
    f = jax.jit(jax.vmap(m.log_prob, in_axes=(0, None)))
    np.testing.assert_allclose(f(xs, 0.1), jnp.stack([m.log_prob(x, 0.1) for x in xs]), rtol=1e-5)
    g = jax.grad(lambda x: jnp.sum(m.score(x, 0.2) ** 2))(xs[0])
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: WhiteGaussianNoise(1.0, scale=0.0), "scale must be a positive"),
        (lambda: WhiteGaussianNoise(1.0, scale=-2.0), "scale must be a positive"),
        (lambda: WhiteGaussianNoise(-1.0), "sigma must be positive"),
        (lambda: StationaryGaussianNoise(np.zeros((4, 4))), "power must be finite and positive"),
        (lambda: GaussianMixtureNoise((0.5, 0.5), (1.0,)), "equal length"),
        (lambda: StationaryGaussianNoise.from_patches(np.full((3, 4, 4), np.nan)), "NaN or inf"),
        (lambda: WhiteGaussianNoise(1.0, (4, 4), event_ndim=2).with_event_shape((5, 5)), "not \\(5, 5\\)"),
        (lambda: WhiteGaussianNoise(1.0).sample(jax.random.key(0)), "fixed event shape"),
        (lambda: ScoreFunction(lambda x: -x).sample(jax.random.key(0)), "fixed event shape|cannot draw"),
    ],
)
def test_bad_input_raises(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_one_spectral_gaussian_formula_serves_the_backbone_and_the_periodogram():
    """GaussianBackbone's energy and score are the stationary model's formula at its own P_k; the
    periodogram estimate is the one from_patches uses."""
    from numpyro_slic.noise.analytic import mean_periodogram, spectral_gaussian_log_prob, spectral_gaussian_score
    from numpyro_slic.noise.backbones import GaussianBackbone

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 8, 10))
    x = x + 0.5 * np.roll(x, 1, axis=-1)
    p = mean_periodogram(x)
    assert p.shape == (8, 10) and abs(p.mean() - 1.25) < 0.05  # variance 1 + 0.5^2
    backbone = GaussianBackbone.from_patches(x, radius=3)
    u = jnp.asarray(rng.normal(size=(12, 14)), jnp.float32)
    p_t = backbone.power(u.shape) + 0.3**2
    np.testing.assert_allclose(backbone.energy(u, 0.3), -spectral_gaussian_log_prob(u, p_t), rtol=1e-6)
    np.testing.assert_allclose(backbone.score(u, 0.3), spectral_gaussian_score(u, p_t), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(spectral_gaussian_score(u, p_t), jax.grad(spectral_gaussian_log_prob)(u, p_t),
                               rtol=1e-4, atol=1e-5)
    model = StationaryGaussianNoise(jnp.asarray(p_t))
    np.testing.assert_allclose(model.unit_log_prob(u, 0.5),
                               spectral_gaussian_log_prob(u, p_t + model.sde.sigma(0.5) ** 2), rtol=1e-6)
