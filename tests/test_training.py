"""Denoising score matching training: learning, exact resume after SIGKILL, data parallelism."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from numpyro_slic.noise.analytic import GaussianMixtureNoise, StationaryGaussianNoise, spectral_gaussian_log_prob
from numpyro_slic.noise.backbones import (
    CorrelatedMixtureBackbone,
    GaussianBackbone,
    GaussianCopulaBackbone,
    MixtureBackbone,
)
from numpyro_slic.noise.learned import LearnedNoise
from numpyro_slic.noise.networks import UNet, UNetConfig
from numpyro_slic.noise.sde import VESDE, dsm_loss
from numpyro_slic.noise.training import CHECKPOINT_NAME, TrainConfig, draw_batch, train_noise_model, validation_loss

# One resolution level: the smallest graph, so the many compilations here stay cheap.
TINY = UNetConfig(width=8, channel_mults=(1,), embed_dim=16, groups=4)
SIGMAS = (0.1, 0.5, 2.0)


def _oracle(n: int) -> StationaryGaussianNoise:
    """Correlated (correlation length ~2 px), unit-variance stationary Gaussian noise."""
    k = np.fft.fftfreq(n)
    ky, kx = np.meshgrid(k, k, indexing="ij")
    power = np.exp(-0.5 * (np.hypot(kx, ky) / 0.12) ** 2) + 0.02
    return StationaryGaussianNoise(power * power.size / power.sum())


def test_dsm_loss_irreducible_value():
    """At the true score the DSM loss is 1 - sigma^2 E|s|^2 / D (here checked for white noise)."""
    sde = VESDE()
    x0 = jax.random.normal(jax.random.key(0), (2000, 8))
    z = jax.random.normal(jax.random.key(1), (2000, 8))
    sigma = 0.7
    exact = lambda y, t: -y / (1 + sigma**2)  # noqa: E731
    loss = jax.vmap(lambda a, b: dsm_loss(exact, sigma, a, 0.5, b))(x0, z).mean()
    # Expected 1 - sigma^2 / (1 + sigma^2) = 0.671; the Monte Carlo sd over 16000 terms is ~0.006.
    np.testing.assert_allclose(loss, 1 - sigma**2 / (1 + sigma**2), atol=0.025)
    assert sde.ve_sigma(0.5) == sde.sigma(0.5)


def test_training_lowers_the_validation_loss():
    oracle = _oracle(16)
    train = np.asarray(oracle.sample(jax.random.key(2), (256,)))
    val = np.asarray(oracle.sample(jax.random.key(3), (64,)))
    history = []
    config = TrainConfig(batch_size=16, learning_rate=3e-3, warmup_steps=5, log_every=20, val_every=40,
                         val_sigmas=SIGMAS, keep_best=False)
    model = train_noise_model(train, steps=40, key=jax.random.key(4), net=TINY, config=config,
                              val_patches=val, progress=False, history=history)
    assert [r["step"] for r in history] == [20, 40]
    trained = np.asarray(validation_loss(model, val, sigmas=SIGMAS))
    np.testing.assert_allclose(trained, history[-1]["val_loss_per_level"], rtol=1e-5)
    # A fresh net outputs 0, whose loss is mean(z^2) = 1 at every level (to 1/sqrt(16384) = 0.008).
    fresh = np.ones(len(SIGMAS))
    exact = np.asarray(validation_loss(oracle, val, sigmas=SIGMAS))
    # The oracle gains 0.05, 0.33, 0.22 over a zero score at these levels; 40 steps must win a
    # third of that on average, and cannot beat the exact score (same noise draws, so the
    # comparison is paired; 0.005 allows for the finite validation set).
    assert np.mean(fresh - trained) > np.mean(fresh - exact) / 3
    assert np.all(trained > exact - 0.005)
    assert model.t_min == config.t_min and model.reference_patch.shape == (16, 16)


def test_backbone_starts_at_the_gaussian_fit():
    """With a Gaussian backbone a fresh net is the fitted stationary Gaussian, near the oracle."""
    oracle = _oracle(16)
    train = np.asarray(oracle.sample(jax.random.key(5), (512,)))
    val = np.asarray(oracle.sample(jax.random.key(6), (64,)))
    model = LearnedNoise(UNet(TINY, key=jax.random.key(7)), backbone=GaussianBackbone.from_patches(train, 7))
    got = np.asarray(validation_loss(model, val, sigmas=SIGMAS))
    exact = np.asarray(validation_loss(oracle, val, sigmas=SIGMAS))
    # 512 patches estimate P_k to ~4%; the lag-7 truncation costs little at correlation length 2 px.
    np.testing.assert_allclose(got, exact, atol=0.01)


# The training subprocess. Its history list (train_noise_model appends one record per read-out,
# after writing that step's checkpoint) stops the process for good once the checkpoint of step
# BLOCK_AT is on disk, and says so through a marker file: the parent then SIGKILLs a process that is
# certainly mid-run, whatever the machine's speed (no polling race: the run used to be able to finish
# between two polls).
BLOCK_AT = 4
_SCRIPT = textwrap.dedent(
    """
    import pathlib, sys, time, jax, numpy as np
    from numpyro_slic.noise.networks import UNetConfig
    from numpyro_slic.noise.training import TrainConfig, train_noise_model

    class StopAfterCheckpoint(list):
        def append(self, record):
            super().append(record)
            if record["step"] == int(sys.argv[3]):
                pathlib.Path(sys.argv[4]).write_text(str(record["step"]))
                while True:
                    time.sleep(60)  # until SIGKILL

    data = np.random.default_rng(0).standard_normal((64, 8, 8)).astype(np.float32)
    train_noise_model(data, steps=int(sys.argv[2]), key=jax.random.key(11),
                      net=UNetConfig(width=8, channel_mults=(1,), embed_dim=16, groups=4),
                      config=TrainConfig(batch_size=8, crop_size=4, log_every=1000),
                      checkpoint_dir=sys.argv[1], checkpoint_every=2, progress=False,
                      history=StopAfterCheckpoint())
    """
)


def _train_like_script(steps, checkpoint_dir=None, resume=True):
    data = np.random.default_rng(0).standard_normal((64, 8, 8)).astype(np.float32)
    return train_noise_model(data, steps=steps, key=jax.random.key(11), net=TINY,
                             config=TrainConfig(batch_size=8, crop_size=4, log_every=1000),
                             checkpoint_dir=checkpoint_dir, checkpoint_every=2, resume=resume,
                             progress=False)


def test_resume_after_sigkill_is_exact(tmp_path):
    steps = 60
    script = tmp_path / "train.py"
    script.write_text(_SCRIPT)
    ckpt_dir = tmp_path / "ckpt"
    marker = tmp_path / "blocked"
    proc = subprocess.Popen([sys.executable, str(script), str(ckpt_dir), str(steps), str(BLOCK_AT), str(marker)])
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert proc.poll() is None, "the training subprocess ended before its checkpoint at step BLOCK_AT"
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.05)
        assert proc.poll() is None  # blocked mid-run, after writing the checkpoint of step BLOCK_AT
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    ckpt = ckpt_dir / CHECKPOINT_NAME
    with open(ckpt, "rb") as f:
        header = f.read(4096)
    step_at_kill = int(header.split(b'"step": ')[-1].split(b"}")[0])
    assert step_at_kill == BLOCK_AT  # the last checkpoint before the kill, steps BLOCK_AT + 1.. not run

    resumed = _train_like_script(steps, ckpt_dir)
    uninterrupted = _train_like_script(steps)
    a = jax.tree.leaves(eqx.filter(resumed, eqx.is_array))
    b = jax.tree.leaves(eqx.filter(uninterrupted, eqx.is_array))
    assert len(a) == len(b)
    # Same compiled program on the same inputs: expected bit-identical; 1e-6 allows for nothing else.
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)

    # A checkpoint from another run is refused, naming what differs.
    with pytest.raises(ValueError, match="steps"):
        _train_like_script(steps + 2, ckpt_dir)
    # A truncated checkpoint is reported as such.
    ckpt.write_bytes(ckpt.read_bytes()[:200])
    with pytest.raises(ValueError, match="checkpoint"):
        _train_like_script(steps, ckpt_dir)


def test_data_parallel_matches_single_device(tmp_path):
    """Two forced host devices (sharded batch) give the single-device losses."""
    code = textwrap.dedent(
        """
        import json, jax, numpy as np
        from numpyro_slic.noise.networks import UNetConfig
        from numpyro_slic.noise.training import TrainConfig, train_noise_model
        data = np.random.default_rng(0).standard_normal((32, 8, 8)).astype(np.float32)
        h = []
        train_noise_model(data, steps=3, key=jax.random.key(5),
                          net=UNetConfig(width=8, channel_mults=(1,), embed_dim=16, groups=4),
                          config=TrainConfig(batch_size=8, log_every=1), progress=False, history=h)
        print(json.dumps({"devices": jax.device_count(), "loss": [r["train_loss"] for r in h]}))
        """
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["devices"] == 2
    single = []
    data = np.random.default_rng(0).standard_normal((32, 8, 8)).astype(np.float32)
    train_noise_model(data, steps=3, key=jax.random.key(5), net=TINY,
                      config=TrainConfig(batch_size=8, log_every=1), progress=False, history=single)
    # Sharding changes only the order of float32 sums: 1e-4 relative.
    np.testing.assert_allclose(result["loss"], [r["train_loss"] for r in single], rtol=1e-4)


def test_mixture_backbone_starts_at_the_iid_mixture_fit():
    """With a mixture backbone a fresh energy net is the fitted i.i.d. mixture: its held-out
    log-likelihood matches an oracle whose pixels carry rare one-sided outliers (the raw-CCD case),
    which the Gaussian backbone misses by about 0.1 nats per pixel (measured 1e-4 and 0.096)."""
    oracle = GaussianMixtureNoise((0.99, 0.01), (1.0, 2.0), (16, 16), means=(-0.06, 6.0))
    train = np.asarray(oracle.sample(jax.random.key(5), (512,)))
    val = oracle.sample(jax.random.key(6), (64,))

    def per_pixel(model, t):
        return float(jax.vmap(lambda e: model.log_prob(e, t))(val).mean()) / val[0].size

    exact = per_pixel(oracle, 0.0)
    fits = {}
    for name, backbone in (("mixture", MixtureBackbone.from_patches(train, 2)),
                           ("gaussian", GaussianBackbone.from_patches(train, 7))):
        model = LearnedNoise(UNet(TINY, key=jax.random.key(7)), parameterisation="energy", backbone=backbone)
        fits[name] = per_pixel(model, model.t_min)  # width 0.01: 1e-4 of the unit variance
    assert abs(fits["mixture"] - exact) < 0.005
    assert fits["gaussian"] < exact - 0.05


def test_correlated_mixture_backbone_is_an_exact_density():
    """With one component it is the stationary Gaussian of power c^2 A_k^2 + sigma^2 at every width
    (the filter's log-determinant is right); with two it integrates to 1 (a 1 x 2 grid, summed on a
    fine lattice), also with unnormalised log-weights (logits, as an optimiser leaves them), and its
    score is -grad of its energy."""
    core = GaussianBackbone(jnp.asarray([[0.1, 0.3, 0.1], [0.3, 1.2, 0.3], [0.1, 0.3, 0.1]], jnp.float32))
    one = MixtureBackbone(jnp.zeros(1), jnp.zeros(1), jnp.asarray([0.9]))
    u = jax.random.normal(jax.random.key(0), (8, 8))
    for background in (0.0, 0.05):  # a grid-wide level adds 0.81 * 0.05 * 64 to P_0 only
        backbone = CorrelatedMixtureBackbone(core, one, background)
        for sigma in (0.0, 0.3, 2.0):
            power = (0.81 * core.power((8, 8)) / core.variance).at[0, 0].add(0.81 * background * 64) + sigma**2
            np.testing.assert_allclose(backbone.energy(u, sigma), -spectral_gaussian_log_prob(u, power), rtol=1e-5)
    with pytest.raises(ValueError, match="background must be finite and >= 0"):
        CorrelatedMixtureBackbone(core, one, -0.1)
    two = CorrelatedMixtureBackbone(core, MixtureBackbone(jnp.log(jnp.asarray([0.8, 0.2])), jnp.asarray([0.0, 2.0]),
                                                          jnp.asarray([1.0, 3.0])))
    logits = eqx.tree_at(lambda b: b.mixture.log_weights, two, two.mixture.log_weights + jnp.log(2.0))  # weights sum to 2
    grid = jnp.linspace(-30.0, 30.0, 1201)
    pairs = jnp.stack(jnp.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 1, 2)
    for sigma in (0.0, 0.5):
        for backbone in (two, logits):
            density = jnp.exp(-jax.vmap(lambda v: backbone.energy(v, sigma))(pairs))
            np.testing.assert_allclose(float(density.sum()) * float(grid[1] - grid[0]) ** 2, 1.0, atol=2e-3)
        np.testing.assert_allclose(two.score(u, sigma), -jax.grad(two.energy)(u, sigma), rtol=1e-4, atol=1e-4)


def test_correlated_mixture_backbone_fits_correlations_and_tails():
    """On correlated noise with rare one-sided hits (a raw CCD's row offsets and cosmic rays) the
    fitted backbone beats both the stationary Gaussian backbone (no tails) and the i.i.d. mixture
    backbone (no correlations) in held-out log-likelihood, by margins far above the run-to-run
    scatter of 96 held-out 16 x 16 patches."""
    rng = np.random.default_rng(4)

    def draw(n):
        rows = 0.6 * rng.standard_normal((n, 16, 1))  # one offset per row
        hits = np.where(rng.random((n, 16, 16)) < 0.01, rng.exponential(8.0, (n, 16, 16)), 0.0)
        return rows + rng.standard_normal((n, 16, 16)) + hits

    train, val = draw(512), jnp.asarray(draw(96), jnp.float32)
    nll = {}
    for name, backbone in (("correlated", CorrelatedMixtureBackbone.from_patches(train, 3, radius=7)),
                           ("mixture", MixtureBackbone.from_patches(train, 3)),
                           ("gaussian", GaussianBackbone.from_patches(train, 7))):
        nll[name] = np.asarray(jax.vmap(lambda u: backbone.energy(u, 0.01))(val)) / 256
    assert np.mean(nll["correlated"] - nll["mixture"]) < -0.02  # measured -0.059 +- 0.004
    assert np.mean(nll["correlated"] - nll["gaussian"]) < -0.1  # measured -0.28 +- 0.03


def test_correlated_mixture_backbone_samples_what_it_scores():
    """Exact draws: with one component the mean periodogram of the draws is the backbone's power
    c^2 A_k^2 (background included); with two (a 10% wide component) the pixels' variance and
    kurtosis are the filtered mixture's (kurtosis of a sum of i.i.d. pixels with weights a_i:
    kappa_y sum a_i^4 / (sum a_i^2)^2)."""
    core = GaussianBackbone(jnp.asarray([[0.1, 0.3, 0.1], [0.3, 1.2, 0.3], [0.1, 0.3, 0.1]], jnp.float32))
    one = CorrelatedMixtureBackbone(core, MixtureBackbone(jnp.zeros(1), jnp.zeros(1), jnp.asarray([0.9])), 0.02)
    draws = np.asarray(one.sample(jax.random.key(1), (8, 8), n=4000), np.float64)
    periodogram = np.mean(np.abs(np.fft.fft2(draws)) ** 2, axis=0) / 64
    expected = np.asarray(0.81 * one._relative_power((8, 8)), np.float64)
    np.testing.assert_allclose(periodogram, expected, rtol=0.1)  # 4000 draws: 1.6% sd a mode; max measured 4.7%
    w = jnp.log(jnp.asarray([0.9, 0.1]))
    two = CorrelatedMixtureBackbone(core, MixtureBackbone(w, jnp.zeros(2), jnp.asarray([1.0, 3.0])))
    u = np.asarray(two.sample(jax.random.key(2), (16, 16), n=400), np.float64).ravel()
    m2, m4 = 0.9 + 0.1 * 9.0, 0.9 * 3 + 0.1 * 3 * 81.0
    a = np.fft.ifft2(np.asarray(two._transfer((16, 16), 0.0), np.float64)).real.ravel()  # the filter
    kurtosis = (m4 / m2**2 - 3) * np.sum(a**4) / np.sum(a**2) ** 2
    np.testing.assert_allclose(np.var(u), m2 * np.sum(a**2), rtol=0.03)  # 102 400 pixels; measured -0.3%
    assert abs(scipy.stats.kurtosis(u) - kurtosis) < 0.1 * kurtosis  # measured 4.74 against 4.68



def test_gaussian_copula_backbone_is_an_exact_density():
    """With one component it is the stationary Gaussian of power c^2 c_k + sigma^2 at every width;
    with two it integrates to 1 (a 1 x 2 grid, summed on a fine lattice), its score is the energy's
    central difference, and a value far beyond every component (1e-29 tail probability) keeps a finite energy
    and gradient."""
    core = GaussianBackbone(jnp.asarray([[0.1, 0.3, 0.1], [0.3, 1.2, 0.3], [0.1, 0.3, 0.1]], jnp.float32))
    one = MixtureBackbone(jnp.zeros(1), jnp.asarray([0.2]), jnp.asarray([0.9]))
    u = jax.random.normal(jax.random.key(0), (8, 8))
    for background in (0.0, 0.05):
        backbone = GaussianCopulaBackbone(one, core, background)
        a2 = (core.power((8, 8)) / core.variance).at[0, 0].add(background * 64)
        for sigma in (0.0, 0.3, 2.0):
            power = 0.81 * a2 / a2.mean() + sigma**2
            np.testing.assert_allclose(backbone.energy(u, sigma), -spectral_gaussian_log_prob(u - 0.2, power),
                                       rtol=1e-5)
    with pytest.raises(ValueError, match="background must be finite and >= 0"):
        GaussianCopulaBackbone(one, core, -0.1)
    two = GaussianCopulaBackbone(MixtureBackbone(jnp.log(jnp.asarray([0.8, 0.2])), jnp.asarray([0.0, 2.0]),
                                                 jnp.asarray([1.0, 3.0])), core)
    grid = jnp.linspace(-30.0, 30.0, 1201)
    pairs = jnp.stack(jnp.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 1, 2)
    for sigma in (0.0, 0.5):
        density = jnp.exp(-jax.vmap(lambda v: two.energy(v, sigma))(pairs))
        np.testing.assert_allclose(float(density.sum()) * float(grid[1] - grid[0]) ** 2, 1.0, atol=2e-3)
        # The score against central differences of the energy in float64, on a pixel in the bulk,
        # one beyond the median of its own tail and one 8 sds out (the median only picks a tail).
        with jax.enable_x64(True):
            v = jnp.asarray(u, jnp.float64).at[1, 1].set(0.7).at[4, 4].set(24.0)
            energy, h = eqx.filter_jit(two.energy), 1e-5
            score = np.asarray(eqx.filter_jit(two.score)(v, sigma))
            for i, j in ((0, 0), (1, 1), (4, 4)):  # measured agreement 3e-9
                step = jnp.zeros_like(v).at[i, j].set(h)
                fd = -(float(energy(v + step, sigma)) - float(energy(v - step, sigma))) / (2 * h)
                np.testing.assert_allclose(score[i, j], fd, rtol=1e-6, atol=1e-7)
    far = u.at[2, 3].set(1e4)
    assert np.isfinite(float(two.energy(far, 0.01))) and np.all(np.isfinite(np.asarray(two.score(far, 0.01))))


def test_gaussianised_pixels_are_phi_inverse_of_the_mixture_cdf():
    """z = Phi^-1(F(u)) against scipy in float64, on both sides of a skewed mixture's median (its
    mean and its heaviest component's mean differ from it) and far into both tails, at two widths:
    the tail on u's side of the median gives z to float32 accuracy (measured: max error 6e-7 for
    |z| < 5, 1.5e-7 relative beyond, up to |z| 8.8; taking the lower tail everywhere instead loses
    z above 5 to float32's 1 - F = 0)."""
    from numpyro_slic.noise.backbones import _gaussianised, _median

    w, mu, sd = np.asarray([0.6, 0.3, 0.1]), np.asarray([0.0, 1.5, -6.0]), np.asarray([1.0, 0.7, 4.0])
    mixture = MixtureBackbone(*(jnp.asarray(v, jnp.float32) for v in (np.log(w), mu, sd)))
    for sigma in (0.0, 0.5):
        s = np.hypot(sd, sigma)
        cdf = lambda v: np.sum(w * scipy.stats.norm.cdf((v[..., None] - mu) / s), -1)  # noqa: E731
        sf = lambda v: np.sum(w * scipy.stats.norm.sf((v[..., None] - mu) / s), -1)  # noqa: E731
        median = float(_median(mixture, sigma))
        np.testing.assert_allclose(cdf(np.asarray(median)), 0.5, atol=1e-6)
        u = np.concatenate([median + np.linspace(-0.05, 0.05, 11), np.linspace(-40.0, 20.0, 121)])
        z = np.asarray(_gaussianised(mixture, jnp.asarray(u, jnp.float32), sigma), np.float64)
        u32 = np.asarray(jnp.asarray(u, jnp.float32), np.float64)
        exact = np.where(u32 > median, -scipy.stats.norm.ppf(sf(u32)), scipy.stats.norm.ppf(cdf(u32)))
        bulk = np.abs(exact) < 5
        np.testing.assert_allclose(z[bulk], exact[bulk], atol=2e-6)
        np.testing.assert_allclose(z[~bulk], exact[~bulk], rtol=1e-6)
        assert exact.max() > 6 and exact.min() < -8  # both far tails are in the test
        assert np.all(np.diff(z[11:]) > 0)  # monotone in u


def test_gaussian_copula_backbone_samples_its_marginal_exactly():
    """Exact draws: one pixel's values over 20 000 independent draws follow the mixture's CDF
    (Kolmogorov-Smirnov; measured p 0.08, 0.46, 0.80 on three seeds, where dropping the 5% wide
    component gives a statistic of about 0.05), and the gaussianised draws have the correlation's
    power c_k."""
    from numpyro_slic.noise.backbones import _gaussianised

    core = GaussianBackbone(jnp.asarray([[0.1, 0.3, 0.1], [0.3, 1.2, 0.3], [0.1, 0.3, 0.1]], jnp.float32))
    w, mu, sd = np.asarray([0.95, 0.05]), np.asarray([0.0, 4.0]), np.asarray([1.0, 6.0])
    mixture = MixtureBackbone(*(jnp.asarray(v, jnp.float32) for v in (np.log(w), mu, sd)))
    backbone = GaussianCopulaBackbone(mixture, core, 0.02)
    draws = backbone.sample(jax.random.key(0), (8, 8), n=20000)
    one_pixel = np.asarray(draws[:, 3, 5], np.float64)
    ks = scipy.stats.kstest(one_pixel, lambda v: np.sum(w * scipy.stats.norm.cdf((v[:, None] - mu) / sd), -1))
    assert ks.pvalue > 1e-3
    z = np.asarray(jax.vmap(lambda v: _gaussianised(mixture, v, 0.0))(draws[:2000]), np.float64)
    periodogram = np.mean(np.abs(np.fft.fft2(z)) ** 2, axis=0) / 64
    expected = np.asarray(backbone._correlation_power((8, 8), 0.0), np.float64)
    np.testing.assert_allclose(periodogram, expected, rtol=0.12)  # 2000 draws: 2.2% sd a mode


def test_gaussian_copula_backbone_keeps_single_pixel_hits_single():
    """On correlated noise whose hits are single pixels (a raw detector's) the copula's draws keep the
    training sky's |z| > 4 rate (within 20%) where the correlated mixture's overshoot it more than
    twice (a hit is whitened into a ringing pattern, then re-filtered when drawn), and the copula's
    held-out likelihood is the better (measured -0.031 +- 0.008 nats/pixel on 128 patches)."""
    rng = np.random.default_rng(3)

    def draw(n):
        g = rng.standard_normal((n, 16, 16))
        correlated = (g + np.roll(g, 1, 1) + np.roll(g, 1, 2) + np.roll(np.roll(g, 1, 1), 1, 2)) / 2
        return correlated + np.where(rng.random((n, 16, 16)) < 0.005, rng.exponential(6.0, (n, 16, 16)), 0.0)

    def beyond_4(x):
        centre = np.median(x)
        return np.mean(np.abs(x - centre) > 4 * 1.4826 * np.median(np.abs(x - centre)))

    train, val = draw(1024), jnp.asarray(draw(128), jnp.float32)
    nll, rate = {}, {}
    for cls in (GaussianCopulaBackbone, CorrelatedMixtureBackbone):
        backbone = cls.from_patches(train, 3, radius=4)
        nll[cls] = np.asarray(jax.vmap(lambda u: backbone.energy(u, 0.01))(val), np.float64) / 256
        rate[cls] = beyond_4(np.asarray(backbone.sample(jax.random.key(0), (16, 16), 1024))) / beyond_4(train)
    assert abs(rate[GaussianCopulaBackbone] - 1) < 0.2 and rate[CorrelatedMixtureBackbone] > 2  # 1.04, 5.4
    diff = nll[GaussianCopulaBackbone] - nll[CorrelatedMixtureBackbone]
    assert diff.mean() < -3 * diff.std(ddof=1) / np.sqrt(len(diff))


def test_a_net_trains_on_a_copula_backbone():
    """The copula is a backbone like the others: a net trains on it (a finite validation loss at
    every width), and the model's score is the net's share plus the copula's exact score."""
    rng = np.random.default_rng(8)
    hits = np.where(rng.random((64, 8, 8)) < 0.01, 6.0, 0.0)
    data = (0.5 * rng.standard_normal((64, 1, 1)) + rng.standard_normal((64, 8, 8)) + hits).astype(np.float32)
    config = TrainConfig(batch_size=8, backbone=True, backbone_kind="gaussian-copula", backbone_components=2,
                         backbone_radius=3, backbone_background=True, val_sigmas=SIGMAS)
    model = train_noise_model(data, steps=3, key=jax.random.key(0), net=TINY, config=config, progress=False)
    assert isinstance(model.backbone, GaussianCopulaBackbone) and model.backbone.background > 0
    assert np.all(np.isfinite(validation_loss(model, data[:16], sigmas=SIGMAS)))
    u, t = jnp.asarray(data[0]), 0.1
    sigma = model.unit_sigma(t)
    net_share = model.net(u / jnp.sqrt(1 + sigma**2), jnp.log(sigma)) / sigma
    np.testing.assert_allclose(model.unit_score(u, t), net_share + model.backbone.score(u, sigma), rtol=1e-5,
                               atol=1e-5)

def test_backbone_alone_is_the_backbone_with_exact_draws():
    """``fit_backbone_model``: no net; score, energy and log_prob are the backbone's at sigma(t), the
    density is exact (has_log_prob), draws are the backbone's exact draws widened by sigma(t_min)
    (variance and a Gaussian backbone's mean periodogram), and it is a NoiseModel like any other
    (jit, vmap over observations, grad through ScoreLikelihood)."""
    from numpyro_slic.likelihood import ScoreLikelihood
    from numpyro_slic.noise.training import fit_backbone_model

    oracle = _oracle(8)
    train = np.asarray(oracle.sample(jax.random.key(5), (256,)))
    model = fit_backbone_model(train, config=TrainConfig(backbone=True, t_min=0.05), scale=2.0)
    assert model.net is None and model.has_log_prob and model.exact_sampler and model.scale == 2.0
    u = jax.random.normal(jax.random.key(0), (8, 8))
    for t in (0.05, 0.3):
        sigma = model.unit_sigma(t)
        np.testing.assert_allclose(model.unit_energy(u, t), model.backbone.energy(u, sigma), rtol=1e-6)
        np.testing.assert_allclose(model.unit_score(u, t), model.backbone.score(u, sigma), rtol=1e-6)
        np.testing.assert_allclose(model.unit_log_prob(u, t), -model.backbone.energy(u, sigma), rtol=1e-6)
    draws = np.asarray(model.with_event_shape((8, 8)).unit_sample(jax.random.key(1), (50, 40)), np.float64)
    assert draws.shape == (50, 40, 8, 8)
    power = np.asarray(model.backbone.power((8, 8)), np.float64) + float(model.unit_sigma(0.05)) ** 2
    periodogram = np.mean(np.abs(np.fft.fft2(draws.reshape(-1, 8, 8))) ** 2, axis=0) / 64
    np.testing.assert_allclose(periodogram, power, rtol=0.1)  # 2000 draws: 2.2% sd a mode
    # A NoiseModel like any other: ScoreLikelihood's log-density and its gradient.
    fixed = model.with_event_shape((8, 8))
    d = 2.0 * jnp.asarray(train[0])
    lp = jax.jit(lambda m: ScoreLikelihood(fixed, m, t=0.05, energy="exact").log_prob(d))
    np.testing.assert_allclose(lp(jnp.zeros((8, 8))), -fixed.unit_energy(d / 2.0, 0.05) - 64 * np.log(2.0),
                               rtol=1e-5)
    assert np.all(np.isfinite(np.asarray(jax.grad(lp)(jnp.zeros((8, 8))))))
    with pytest.raises(ValueError, match="nothing to fit"):
        fit_backbone_model(train, config=TrainConfig(backbone=False))
    with pytest.raises(ValueError, match="pass a backbone"):
        LearnedNoise(None)


def test_correlated_mixture_backbone_background_holds_the_k0_power():
    """Patches with a level of their own (a sky background varying on scales beyond the kernel's
    lags) on white noise: the tapered kernel alone holds a fraction of the k = 0 power; with
    ``background=True`` the backbone's A_0^2 (P_0 over the pixel variance) matches the patches'
    ((1 + 0.25 * 256) / 1.25 = 52) and its held-out likelihood is better, by far more than the
    96 patches' scatter."""
    rng = np.random.default_rng(5)

    def draw(n):
        return 0.5 * rng.standard_normal((n, 1, 1)) + rng.standard_normal((n, 16, 16))

    train, val = draw(1024), jnp.asarray(draw(96), jnp.float32)
    nll, a0 = {}, {}
    for background in (False, True):
        backbone = CorrelatedMixtureBackbone.from_patches(train, 2, radius=3, background=background)
        a0[background] = float(backbone._relative_power((16, 16))[0, 0])
        nll[background] = np.asarray(jax.vmap(lambda u: backbone.energy(u, 0.01))(val)) / 256
    assert a0[False] < 6.0  # measured 3.6: the kernel's tapered lags <= 3 see little of the level
    assert abs(a0[True] / 52.0 - 1) < 0.1  # measured 51.3 (seeds 6, 7: 50.9, 47.5; 1024 patches: +-4%)
    diff = nll[True] - nll[False]  # measured -0.022 +- 0.003 nats/pixel
    assert diff.mean() < -0.01 and diff.mean() < -5 * diff.std(ddof=1) / np.sqrt(len(diff))
    with pytest.raises(ValueError, match="backbone_background needs backbone_kind='correlated-mixture'"):
        TrainConfig(backbone_background=True)


def test_draw_batch_turns_and_flips_only_when_asked():
    """Without the options a batch is plain crops (and the same batch as before they existed: the
    crops, levels and noise do not depend on them); rot180 turns about half the crops by 180
    degrees and nothing else; flips adds single flips."""
    data = jnp.arange(2 * 8 * 8, dtype=jnp.float32).reshape(2, 8, 8)  # every pixel tells its place
    key = jax.random.key(3)
    plain = TrainConfig(batch_size=400)
    x0, t, z = draw_batch(data, key, 7, plain, 8)
    assert all(any(jnp.array_equal(x, d) for d in data) for x in x0)
    for option in ({"rot180": True}, {"flips": True}):
        xa, ta, za = draw_batch(data, key, 7, TrainConfig(batch_size=400, **option), 8)
        np.testing.assert_array_equal(ta, t)
        np.testing.assert_array_equal(za, z)
        same = np.array([jnp.array_equal(a, b) for a, b in zip(xa, x0)])
        turned = np.array([jnp.array_equal(a, b[::-1, ::-1]) for a, b in zip(xa, x0)])
        mirrored = np.array([jnp.array_equal(a, b[:, ::-1]) or jnp.array_equal(a, b[::-1]) for a, b in zip(xa, x0)])
        if "rot180" in option:
            assert np.all(same | turned) and not mirrored.any() and 0.4 < turned.mean() < 0.6
        else:  # four equally likely outcomes
            assert np.all(same | turned | mirrored) and 0.15 < turned.mean() < 0.35 and 0.4 < mirrored.mean() < 0.6


def test_bad_inputs():
    with pytest.raises(ValueError, match="multiple of 2"):
        train_noise_model(np.zeros((4, 10, 10), np.float32), steps=1, key=jax.random.key(0),
                          net=UNetConfig(width=8, channel_mults=(1, 2), embed_dim=16, groups=4),
                          config=TrainConfig(crop_size=9), progress=False)
    with pytest.raises(ValueError, match="NaN"):
        train_noise_model(np.full((4, 8, 8), np.nan, np.float32), steps=1, key=jax.random.key(0),
                          net=TINY, progress=False)
    with pytest.raises(ValueError, match="parameterisation"):
        TrainConfig(parameterisation="flow")
    with pytest.raises(ValueError, match="backbone_kind"):
        TrainConfig(backbone_kind="student-t")
    assert TrainConfig(backbone_kind="correlated-mixture").backbone_kind == "correlated-mixture"
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()


def test_fine_tuning_starts_from_init_and_keeps_its_backbone(tmp_path, caplog):
    """``init``: the run starts from the given net (a zero learning rate returns it unchanged), keeps
    its backbone rather than refitting it to the new data, learns from there (10 steps from a trained
    net beat 10 from scratch), and resumes only from its own checkpoints. A run with the same settings
    as the one before it reuses its compiled step."""
    oracle = _oracle(16)
    train = np.asarray(oracle.sample(jax.random.key(20), (256,)))
    other = 1.5 * np.asarray(oracle.sample(jax.random.key(21), (64,)))  # data the backbone never saw
    val = np.asarray(oracle.sample(jax.random.key(22), (64,)))
    kept = TrainConfig(batch_size=16, learning_rate=0.0, val_sigmas=SIGMAS, backbone=True,
                       backbone_kind="correlated-mixture", backbone_components=2)
    with_backbone = train_noise_model(train, steps=2, key=jax.random.key(23), net=TINY, config=kept, progress=False)
    frozen = train_noise_model(other, steps=3, key=jax.random.key(24), net=TINY, config=kept, progress=False,
                               init=with_backbone)
    for a, b in zip(jax.tree.leaves(eqx.filter((with_backbone.net, with_backbone.backbone), eqx.is_array)),
                    jax.tree.leaves(eqx.filter((frozen.net, frozen.backbone), eqx.is_array))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # the EMA's float32 rounding
    refitted = CorrelatedMixtureBackbone.from_patches(other, 2)
    assert not np.allclose(refitted.core.kernel, frozen.backbone.core.kernel)

    # Learning, without a backbone (which here would already be the oracle, leaving the net nothing).
    fast = TrainConfig(batch_size=16, learning_rate=3e-3, warmup_steps=5, val_sigmas=SIGMAS)
    start = train_noise_model(train, steps=60, key=jax.random.key(26), net=TINY, config=fast, progress=False)
    slow = TrainConfig(batch_size=16, learning_rate=3e-4, warmup_steps=2, val_sigmas=SIGMAS)

    def run(**kwargs):
        """The trained model, and how many times the training step was compiled for it."""
        caplog.clear()
        with jax.log_compiles():
            model = train_noise_model(train, steps=10, key=jax.random.key(25), net=TINY, config=slow,
                                      progress=False, **kwargs)
        return model, sum("_train_step" in r.getMessage() for r in caplog.records)

    tuned, compiles_tuned = run(init=start, checkpoint_dir=tmp_path, checkpoint_every=5)
    fresh, compiles_fresh = run()
    # Same settings and shapes as the run before: the compiled step is reused, not rebuilt.
    assert compiles_tuned >= 1 and compiles_fresh == 0, (compiles_tuned, compiles_fresh)
    loss = {name: float(np.mean(validation_loss(m, val, sigmas=SIGMAS)))
            for name, m in (("start", start), ("tuned", tuned), ("fresh", fresh))}
    # 60 steps win 0.05 or more over a fresh net (test_training_lowers_the_validation_loss); 10
    # small steps from there keep it, 10 from scratch cannot get there.
    assert loss["tuned"] < loss["fresh"] - 0.02 and loss["tuned"] < loss["start"] + 0.01, loss

    with pytest.raises(ValueError, match="init_sha256"):
        train_noise_model(train, steps=10, key=jax.random.key(25), net=TINY, config=slow, progress=False,
                          init=tuned, checkpoint_dir=tmp_path)


def test_fine_tuning_refuses_another_architecture():
    data = np.random.default_rng(0).standard_normal((32, 8, 8)).astype(np.float32)
    config = TrainConfig(batch_size=8, backbone=True)
    start = train_noise_model(data, steps=1, key=jax.random.key(0), net=TINY, config=config, progress=False)
    wider = UNetConfig(width=16, channel_mults=(1,), embed_dim=16, groups=4)
    with pytest.raises(ValueError, match="net: init has"):
        train_noise_model(data, steps=1, key=jax.random.key(0), net=wider, config=config, init=start, progress=False)
    with pytest.raises(ValueError, match="backbone_kind: init has gaussian, the run asks for mixture"):
        train_noise_model(data, steps=1, key=jax.random.key(0), net=TINY, progress=False, init=start,
                          config=TrainConfig(batch_size=8, backbone=True, backbone_kind="mixture"))
    with pytest.raises(ValueError, match="without a net"):
        train_noise_model(data, steps=1, key=jax.random.key(0), net=TINY, config=config, progress=False,
                          init=LearnedNoise(None, backbone=start.backbone))
