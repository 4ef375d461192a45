"""sample_noise on analytic models, whose sample statistics are known exactly."""

import equinox as eqx
import jax
import numpy as np
import pytest

from numpyro_slic.noise import (
    VESDE,
    VPSDE,
    GaussianMixtureNoise,
    LearnedNoise,
    NoiseModel,
    ScoreFunction,
    StationaryGaussianNoise,
)
from numpyro_slic.noise.networks import UNet, UNetConfig
from numpyro_slic.noise.sampling import diffusion_g2, sample_noise, sample_noise_unit
from doubles import Levels

SDE = VESDE(0.01, 20.0)  # small range: few steps suffice
N = 8
SCALE = 1.5


def _anisotropic_power(n):
    k = np.fft.fftfreq(n) * n
    ky, kx = np.meshgrid(k, k, indexing="ij")
    # Red and elongated along y (power falls 3x faster in kx): stripes, as in JWST noise.
    return 0.3 + 2.0 / (1 + kx**2 + (ky / 3.0) ** 2)


POWER = _anisotropic_power(N)
# t_min at sigma = 0.02 (trained units): Tweedie's shrinkage sigma^2 / P <= 0.13% per mode.
STATIONARY = Levels(StationaryGaussianNoise(POWER, scale=SCALE, sde=SDE), float(SDE.t_of_sigma(0.02)))


def test_g2_is_the_derivative_of_the_schedule():
    # VE geometric schedule: d sigma^2 / dt = 2 log(sigma_max / sigma_min) sigma(t)^2.
    t = 0.37
    expected = 2 * np.log(20.0 / 0.01) * float(SDE.sigma(t)) ** 2
    np.testing.assert_allclose(float(diffusion_g2(STATIONARY, t)), expected, rtol=1e-5)


@pytest.mark.parametrize("sde", [VESDE(0.01, 20.0), VPSDE(0.1, 20.0)], ids=["ve", "vp"])
def test_learned_g2_at_the_bounds_of_its_levels(sde):
    """A learned model holds t inside [t_min, t_max]; at the bounds g^2 is still the schedule's.

    jnp.clip's derivative at its bounds is 1/2, which used to halve g^2 exactly where the reverse SDE
    and the probability-flow ODE start and end.
    """
    # g^2 never calls the net, so its shapes stand in for it (building one costs seconds).
    net = eqx.filter_eval_shape(UNet, UNetConfig(width=8, channel_mults=(1,), embed_dim=16, groups=4),
                                key=jax.random.key(0))
    model = LearnedNoise(net, sde, t_min=0.05, t_max=0.9)

    def analytic(t):  # d ve_sigma(t)^2 / dt
        if isinstance(sde, VESDE):
            return 2 * float(sde.sigma(t)) ** 2 * np.log(sde.sigma_max / sde.sigma_min)
        # ve_sigma^2 = 1 / alpha^2 - 1 with d(-2 log alpha)/dt = beta(t).
        return (1 + float(sde.ve_sigma(t)) ** 2) * (sde.beta_min + t * (sde.beta_max - sde.beta_min))

    for t in (model.t_min, 0.5, model.t_max):
        np.testing.assert_allclose(float(diffusion_g2(model, t)), analytic(t), rtol=1e-5, err_msg=f"t={t}")


@pytest.mark.parametrize(
    "method, kwargs",
    [("euler_maruyama", dict(steps=200)), ("pc", dict(steps=200)), ("ode", {})],
)
def test_stationary_power_spectrum(method, kwargs):
    n = 2000
    x = sample_noise(STATIONARY, jax.random.key(1), (n,), method=method, **kwargs)
    assert x.shape == (n, N, N)
    p_hat = np.mean(np.abs(np.fft.fft2(np.asarray(x, np.float64) / SCALE)) ** 2, axis=0) / N**2
    ratio = p_hat / POWER
    # Error model: |X_k|^2 / D is P_k times Exp(1) for complex modes (relative sd 1 / sqrt(n) of
    # the mean) and chi^2_1 for the 4 self-conjugate modes (sd sqrt(2 / n)). Modes k and -k are
    # identical, so 34 independent modes: max |z| < 4.5 fails by chance with p ~ 2e-4.
    self_conj = np.zeros((N, N), bool)
    self_conj[:: N // 2, :: N // 2] = True
    sd = np.where(self_conj, np.sqrt(2 / n), np.sqrt(1 / n))
    assert np.max(np.abs(ratio - 1) / sd) < 4.5
    # Mean over all 64 modes: sd 1 / sqrt(32 n) = 0.4%; allow 4 sd for the sampler's bias
    # (measured below 0.4% for these settings).
    assert abs(ratio.mean() - 1) < 4 / np.sqrt(32 * n)
    # Stationary and zero-mean: the pixel mean's sd is sqrt(P_0 / (D n)).
    assert abs(float(x.mean()) / SCALE) < 4 * np.sqrt(POWER[0, 0] / (N * N * n))


@pytest.mark.parametrize(
    "method, kwargs", [("euler_maruyama", dict(steps=200)), ("pc", dict(steps=200)), ("ode", {})]
)
def test_mixture_kurtosis(method, kwargs):
    model = Levels(GaussianMixtureNoise(event_shape=(N, N), sde=SDE), float(SDE.t_of_sigma(0.02)))
    n = 1000
    x = np.asarray(sample_noise(model, jax.random.key(2), (n,), method=method, **kwargs), np.float64)
    x = x.ravel()  # i.i.d. pixels: n * 64 independent values
    # Exact moments of the zero-mean mixture: E x^2p = (2p - 1)!! sum_j w_j s_j^2p.
    w, s = np.exp(np.asarray(model.base.log_weights)), np.asarray(model.base.sigmas)
    m2, m4, m6, m8 = (np.sum(w * s ** (2 * p)) * c for p, c in [(1, 1), (2, 3), (3, 15), (4, 105)])
    kurt = m4 / m2**2  # 19.96 for the default 95% N(0, 1) + 5% N(0, 25)
    # Standard error of m4_hat / m2_hat^2 by the delta method (about 0.7 here, 3.5%).
    var1 = (m8 - m4**2) / m2**4 + 4 * m4**2 * (m4 - m2**2) / m2**6 - 4 * m4 * (m6 - m4 * m2) / m2**5
    se = np.sqrt(var1 / x.size)
    k_hat = np.mean(x**4) / np.mean(x**2) ** 2
    assert abs(k_hat - kurt) < 4 * se
    # The variance too: sd of the mean of x^2 is sqrt((m4 - m2^2) / n_values), 1.7% here.
    assert abs(np.mean(x**2) - m2) < 4 * np.sqrt((m4 - m2**2) / x.size)


def test_units_padding_and_denoising():
    key = jax.random.key(3)
    # 6 draws in chunks of 4: the last chunk is padded, the padding dropped.
    config = dict(method="euler_maruyama", steps=20, batch_size=4)
    raw = sample_noise_unit(STATIONARY, key, (3, 2), denoise=False, **config)
    phys = sample_noise(STATIONARY, key, (3, 2), denoise=False, **config)
    assert phys.shape == (3, 2, N, N)
    np.testing.assert_allclose(np.asarray(phys), SCALE * np.asarray(raw), rtol=1e-6)
    assert len(np.unique(np.asarray(raw)[..., 0, 0])) == 6  # six different draws
    # denoise=True adds Tweedie's step x + sigma(t_min)^2 s(x, t_min) to the same draws.
    den = sample_noise_unit(STATIONARY, key, (3, 2), **config)
    var = float(STATIONARY.unit_sigma(STATIONARY.t_min)) ** 2
    raw = np.asarray(raw, np.float64)
    tweedie = raw - var * np.fft.ifft2(np.fft.fft2(raw) / (POWER + var)).real
    np.testing.assert_allclose(np.asarray(den), tweedie, rtol=1e-5, atol=1e-5)


def test_free_event_shape_and_errors():
    free = GaussianMixtureNoise(sde=SDE)  # any 2-d shape
    x = sample_noise(free, jax.random.key(5), (2,), event_shape=(4, 6), method="euler_maruyama", steps=5)
    assert x.shape == (2, 4, 6)
    with pytest.raises(ValueError, match="event shape"):
        sample_noise(free, jax.random.key(5), (2,))
    with pytest.raises(ValueError, match="method"):
        sample_noise(STATIONARY, jax.random.key(5), method="heun")
    with pytest.raises(ValueError, match="diffusion levels"):
        sample_noise(ScoreFunction(lambda x: -x, (4,)), jax.random.key(5))
    with pytest.raises(ValueError, match="snr"):
        sample_noise(STATIONARY, jax.random.key(5), snr=0.0)
