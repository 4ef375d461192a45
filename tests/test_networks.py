"""U-Net, schedules and LearnedNoise: shapes, equivariance, VP/VE forms, energy consistency."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from numpyro_slic.noise.analytic import StationaryGaussianNoise
from numpyro_slic.noise.backbones import GaussianBackbone
from numpyro_slic.noise.learned import LearnedNoise
from numpyro_slic.noise.networks import UNet, UNetConfig
from numpyro_slic.noise.sde import VESDE, VPSDE

TINY = UNetConfig(width=8, channel_mults=(1, 2, 2), embed_dim=16, groups=4)


@eqx.filter_jit
def apply(net, x, log_sigma):
    """One compiled evaluation per net structure and input shape, shared by the tests."""
    return net(x, log_sigma)


def random_net(config: UNetConfig, seed: int, scale=0.2) -> UNet:
    """A UNet with every weight drawn at random, so zero-initialised layers hide nothing.

    The shapes come from eval_shape and the values from numpy, which compiles nothing.
    """
    rng = np.random.default_rng(seed)
    shapes = eqx.filter_eval_shape(UNet, config, key=jax.random.key(0))
    return jax.tree.map(
        lambda x: jnp.asarray(scale * rng.standard_normal(x.shape), x.dtype)
        if isinstance(x, jax.ShapeDtypeStruct) else x,
        shapes,
    )


@pytest.fixture(scope="module")
def net():
    return random_net(TINY, 1)


def test_fresh_net_outputs_zero():
    out = apply(UNet(TINY, key=jax.random.key(0)), jnp.ones((16, 16)), 0.0)
    assert np.all(np.asarray(out) == 0.0)


@pytest.mark.parametrize("shape", [(16, 16), (32, 48), (13, 30)])
def test_any_size(net, shape):
    """Multiples of 2^(L-1) = 4 run as they are; other sizes are padded and cropped back."""
    x = jax.random.normal(jax.random.key(2), shape)
    out = apply(net, x, jnp.log(0.3))
    assert out.shape == shape
    assert np.all(np.isfinite(np.asarray(out)))
    assert float(jnp.std(out)) > 1e-3


def test_circular_padding_is_exactly_translation_equivariant():
    net = random_net(UNetConfig(width=8, channel_mults=(1, 2, 2), embed_dim=16, groups=4, padding="circular"), 4)
    x = jax.random.normal(jax.random.key(5), (32, 32))
    shift = (8, -4)  # multiples of 2^(L-1) = 4: the pooling grid is preserved
    a = jnp.roll(apply(net, x, 0.1), shift, axis=(0, 1))
    b = apply(net, jnp.roll(x, shift, axis=(0, 1)), 0.1)
    # float32 rounding in a few hundred accumulated products: 1e-4 of the output scale.
    np.testing.assert_allclose(a, b, atol=1e-4 * float(jnp.abs(a).max()))


def test_zero_padding_is_translation_equivariant_in_the_interior():
    cfg = UNetConfig(width=8, channel_mults=(1, 2), embed_dim=16, groups=4)
    net = random_net(cfg, 7)
    x = jax.random.normal(jax.random.key(8), (96, 96))
    # Receptive-field radius of this net, measured: pixels of the gradient of the centre output.
    g = eqx.filter_jit(jax.grad(lambda y, n: n(y, 0.1)[48, 48]))(x, net)
    rows = np.nonzero(np.abs(np.asarray(g)).sum(1))[0]
    radius = int(max(48 - rows.min(), rows.max() - 48))
    assert radius < 40  # finite: the "pixel" norm keeps the net local
    shift = 4
    a = apply(net, x, 0.1)[shift:]
    b = apply(net, x[shift:], 0.1)
    lo, hi = radius + 1, 96 - shift - radius - 1
    assert hi - lo >= 8
    np.testing.assert_allclose(a[lo:hi, lo:hi], b[lo:hi, lo:hi], atol=1e-4 * float(jnp.abs(a).max()))


@pytest.fixture(params=["cpu", "gpu"])
def conv_backend(request, monkeypatch):
    """Both convolution paths of the net, on this machine: im2col ("cpu") and lax NHWC (other backends)."""
    monkeypatch.setattr(jax, "default_backend", lambda: request.param)
    return request.param


@pytest.mark.parametrize("kernel,padding", [(3, "zeros"), (3, "circular"), (1, "zeros")])
def test_convolution_matches_a_direct_sum(conv_backend, kernel, padding):
    """_apply_conv is the cross-correlation of eqx.nn.Conv2d (same padding), summed out by hand."""
    from numpyro_slic.noise.networks import _apply_conv, _conv

    conv = _conv(3, 5, jax.random.key(0), padding, kernel=kernel)
    conv = eqx.tree_at(lambda c: c.bias, conv, jnp.arange(5.0).reshape(5, 1, 1))
    x = np.random.default_rng(0).normal(size=(9, 7, 3)).astype(np.float32)
    r = kernel // 2
    xp = np.pad(x, ((r, r), (r, r), (0, 0)), mode="constant" if padding == "zeros" else "wrap")
    w = np.asarray(conv.weight)  # (Co, Ci, kh, kw)
    expected = np.zeros((9, 7, 5))
    for a in range(kernel):
        for b in range(kernel):
            expected += np.einsum("hwi,oi->hwo", xp[a:a + 9, b:b + 7], w[:, :, a, b])
    expected += np.arange(5.0)
    np.testing.assert_allclose(np.asarray(_apply_conv(conv, jnp.asarray(x))), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel,padding", [(3, "zeros"), (3, "circular"), (1, "zeros")])
def test_convolution_paths_have_the_same_derivatives(kernel, padding, monkeypatch):
    """The im2col path (CPU) and the lax path (GPU/TPU) of _apply_conv agree in value, input
    gradient and the weight gradient of a function of the input gradient (the second-order term an
    energy net's training differentiates). _apply_conv is the only place the paths differ, so this
    and the net-level values below cover the whole net without compiling its second derivative
    twice (that took 110-170 s on 2 cores)."""
    from numpyro_slic.noise.networks import _apply_conv, _conv

    conv = _conv(3, 5, jax.random.key(0), padding, kernel=kernel)
    conv = eqx.tree_at(lambda c: c.weight, conv, jax.random.normal(jax.random.key(1), conv.weight.shape))
    x = jax.random.normal(jax.random.key(2), (9, 7, 3))

    def evaluate():
        # tanh makes the input gradient depend on the weights nonlinearly, so the second-order
        # weight gradient is not zero.
        f = lambda c, y: jnp.sum(jnp.tanh(_apply_conv(c, y)) * y[..., :1])
        grad_x = jax.grad(f, argnums=1)(conv, x)
        grad_w = eqx.filter_grad(lambda c: jnp.sum(jax.grad(f, argnums=1)(c, x) ** 2))(conv)
        return [_apply_conv(conv, x), grad_x, *jax.tree.leaves(grad_w)]

    results = {}
    for backend in ("cpu", "gpu"):
        monkeypatch.setattr(jax, "default_backend", lambda b=backend: b)
        results[backend] = jax.jit(lambda: evaluate())()  # a new lambda per backend: traced afresh
    for a, b in zip(*results.values()):
        assert float(jnp.max(jnp.abs(b))) > 0
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(b))))


@pytest.mark.parametrize("config", [TINY, UNetConfig(width=8, channel_mults=(1, 2), embed_dim=16, groups=4,
                                                     norm="group", padding="circular")])
def test_convolution_paths_agree_in_the_net(config, monkeypatch):
    """The whole net (every block, skip, up- and down-sampling) gives the same values on both paths."""
    net = random_net(config, 7)
    x = jax.random.normal(jax.random.key(8), (16, 24))
    results = {}
    for backend in ("cpu", "gpu"):
        monkeypatch.setattr(jax, "default_backend", lambda b=backend: b)
        results[backend] = jax.jit(lambda: net(x, -0.5))()  # a new lambda per backend: traced afresh
    b = np.asarray(results["gpu"])
    assert np.abs(b).max() > 1e-3
    np.testing.assert_allclose(np.asarray(results["cpu"]), b, rtol=1e-4, atol=1e-5 * float(np.abs(b).max()))


def test_config_round_trip_and_errors():
    assert UNetConfig.from_dict(TINY.to_dict()) == TINY
    assert TINY.multiple == 4
    with pytest.raises(ValueError, match="groups"):
        UNetConfig(width=6, groups=4)
    with pytest.raises(ValueError, match="newer"):
        UNetConfig.from_dict({**TINY.to_dict(), "attention": True})
    with pytest.raises(ValueError, match="vmap"):
        UNet(TINY, key=jax.random.key(0))(jnp.ones((2, 8, 8)), 0.0)


def test_vp_schedule_ve_form():
    sde = VPSDE(0.1, 20.0)
    t = jnp.array([1e-3, 0.1, 0.5, 1.0])
    np.testing.assert_allclose(sde.alpha(t) ** 2 + sde.sigma(t) ** 2, 1.0, rtol=1e-6)
    np.testing.assert_allclose(sde.ve_sigma(t), sde.sigma(t) / sde.alpha(t), rtol=1e-5)
    np.testing.assert_allclose(sde.t_of_ve_sigma(sde.ve_sigma(t)), t, rtol=1e-4)
    x0, z = jnp.ones(3), jnp.array([0.5, -1.0, 2.0])
    # The native VP draw divided by alpha is the VE-form draw x0 + ve_sigma z.
    np.testing.assert_allclose(sde.perturb(x0, 0.3, z) / sde.alpha(0.3), x0 + sde.ve_sigma(0.3) * z, rtol=1e-5)
    ve = VESDE(0.01, 50.0)
    np.testing.assert_allclose(ve.t_of_ve_sigma(ve.ve_sigma(t)), t, rtol=1e-5)


def test_vp_net_is_exposed_in_ve_form(net):
    """s_VE(y, t) = alpha s_VP(alpha y, t) with s_VP(x, t) = F(x, log sigma_VE) / sigma_VP."""
    sde = VPSDE()
    model = LearnedNoise(net, sde)
    y = jax.random.normal(jax.random.key(9), (16, 16))
    t = 0.2
    a, s_vp = sde.alpha(t), sde.sigma(t)
    expected = a * net(a * y, jnp.log(sde.ve_sigma(t))) / s_vp
    np.testing.assert_allclose(model.unit_score(y, t), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.unit_sigma(t), s_vp / a, rtol=1e-6)


def test_energy_parameterisation_is_consistent(net):
    x = jax.random.normal(jax.random.key(10), (4, 16, 16))
    model = LearnedNoise(net, parameterisation="energy", backbone=GaussianBackbone.from_patches(x, 4),
                         scale=2.0)
    score_model = LearnedNoise(net)
    assert model.has_log_prob and not score_model.has_log_prob
    with pytest.raises(NotImplementedError):
        score_model.log_prob(x[0], 0.1)

    t = 0.15
    x0, x1 = 2.0 * x[0], 2.0 * x[1]  # physical units (scale 2)
    log_prob = eqx.filter_jit(jax.vmap(lambda m, y: m.log_prob(y, t), (None, 0)))
    score = eqx.filter_jit(jax.vmap(lambda m, y: m.score(y, t), (None, 0)))
    # score is -grad E: compare with a central difference of log_prob along a random direction.
    v = jax.random.normal(jax.random.key(11), x0.shape)
    h = 1e-2
    lp = log_prob(model, jnp.stack([x0 + h * v, x0 - h * v, x0, x1]))
    fd = (lp[0] - lp[1]) / (2 * h)
    np.testing.assert_allclose(fd, jnp.sum(score(model, x0[None])[0] * v), rtol=2e-3)
    # log_prob differences equal the line integral of the score (16-node Gauss-Legendre).
    nodes, weights = np.polynomial.legendre.leggauss(16)
    us = jnp.asarray(0.5 * (nodes + 1))[:, None, None]
    path = score(model, x0 + us * (x1 - x0))
    line = 0.5 * jnp.sum(jnp.asarray(weights)[:, None, None] * path * (x1 - x0))
    # float32 log_prob values of a few hundred nats carry ~1e-4 relative rounding.
    np.testing.assert_allclose(lp[3] - lp[2], line, rtol=2e-3)


def test_backbone_matches_stationary_gaussian():
    """On a grid larger than the correlation length, the backbone is the fitted Gaussian's score."""
    oracle_power = _smooth_power(32)
    oracle = StationaryGaussianNoise(oracle_power)
    patches = oracle.sample(jax.random.key(12), (400,))
    backbone = GaussianBackbone.from_patches(patches, radius=8)
    fitted = StationaryGaussianNoise.from_patches(patches)
    u = oracle.sample(jax.random.key(13), ())
    sigma = 0.1
    exact = fitted.unit_score(u, fitted.sde.t_of_sigma(sigma))
    got = backbone.score(u, sigma)
    # Truncating the autocovariance at lag 8 (correlation length ~2 px) and the taper change the
    # score by well under 10% of its norm.
    assert float(jnp.linalg.norm(got - exact) / jnp.linalg.norm(exact)) < 0.1
    # Any grid size works; P_k stays positive.
    assert np.all(np.asarray(backbone.power((50, 70))) > 0)
    # The energy's gradient is the score.
    np.testing.assert_allclose(-jax.grad(backbone.energy)(u, sigma), got, rtol=1e-3, atol=1e-4)


def test_reference_crops_and_mirrors(net):
    patch = jnp.arange(64.0).reshape(8, 8)
    model = LearnedNoise(net, reference_patch=patch, scale=3.0)
    with pytest.raises(ValueError, match="event shape"):
        model.reference()
    small = model.with_event_shape((4, 4)).reference()
    np.testing.assert_array_equal(small, 3.0 * patch[2:6, 2:6])
    big = model.with_event_shape((12, 10)).reference()
    assert big.shape == (12, 10)
    np.testing.assert_array_equal(big[2:10, 1:9], 3.0 * patch)
    assert LearnedNoise(net).with_event_shape((4, 4)).reference().sum() == 0


def test_levels_are_clipped_and_scale_changes(net):
    model = LearnedNoise(net, t_min=0.01)
    u = jax.random.normal(jax.random.key(14), (16, 16))
    np.testing.assert_array_equal(model.unit_score(u, 0.0), model.unit_score(u, 0.01))
    rescaled = model.with_scale(4.0)
    np.testing.assert_allclose(rescaled.score(4.0 * u, 0.1), model.unit_score(u, 0.1) / 4.0, rtol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        model.with_scale(-1.0)


def _smooth_power(n):
    k = np.fft.fftfreq(n)
    ky, kx = np.meshgrid(k, k, indexing="ij")
    p = np.exp(-0.5 * (np.hypot(kx, ky) / 0.15) ** 2) + 0.05
    return p * p.size / p.sum()
