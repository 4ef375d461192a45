"""ScoreLikelihood's distribution contract, property-tested in the style of numpyro's test_distributions.

Every case is drawn by hypothesis (derandomized: the same examples on every run) from real noise
models: WhiteGaussianNoise, StationaryGaussianNoise, GaussianMixtureNoise and a plain score callable
(ScoreFunction), on 1-D and 2-D events, with 0 to 2 leading batch dimensions. Values are checked
against NumPy float64 densities written here, independently of the package.

Documented behaviour under jit: the NaN/inf check needs concrete arrays, so inside ``jax.jit`` (or
grad, vmap) a NaN or inf in the observation or in loc is not an error: it gives NaN log_prob for the
events that hold it, and the other events of the batch stay finite (test_non_finite_...).

Speed: every array computation goes through a few module-level jitted functions that take the noise
model, the distribution or the data as arguments, so examples with the same shapes reuse one
compilation (eager JAX compiles each primitive separately, about ten times slower on first use).
Eager evaluation is exercised where it is the contract: the concrete NaN/inf checks and eager == jit.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpyro.infer import Predictive
from numpyro.infer.util import log_density

from numpyro_slic import ScoreLikelihood
from numpyro_slic.noise import GaussianMixtureNoise, ScoreFunction, StationaryGaussianNoise, WhiteGaussianNoise

# Small and reproducible: the same examples on every run, no example database, no deadline (the
# first example of each shape pays a compilation).
PROPS = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

KINDS = ("white", "stationary", "mixture", "callable")
# A few shapes only (every new shape is a new compilation): 1-D and 2-D events; 0, 1 and 2 batch
# dimensions, with size-1 dimensions among them.
EVENT_SHAPES = ((6,), (3, 4))
BATCH_SHAPES = ((), (3,), (1,), (2, 3), (3, 1))
SIGMA_WHITE = 0.7
MIX_W, MIX_S = np.array([0.9, 0.1]), np.array([1.0, 4.0])
LOG_2PI = math.log(2 * math.pi)


def power_on(shape):
    """A positive, point-symmetric (P_k = P_-k) power spectrum on ``shape``, numpy fftn order."""
    ks = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    return 0.3 + np.exp(-sum(k**2 for k in ks) / 0.05)


def _white_score(var, x):
    return -x / var


def make_noise(kind, event_shape, scale=1.0):
    """One of the real noise models, in physical units ``scale`` x its unit density.

    ``scale`` is stored as an array, so that jitted functions taking the model do not recompile for
    each scale; the plain score is a ``jax.tree_util.Partial`` of a module-level function for the same
    reason (a new lambda per example would be a new static argument).
    """
    ndim = len(event_shape)
    scale = jnp.asarray(scale, jnp.result_type(float))
    if kind == "white":
        return WhiteGaussianNoise(SIGMA_WHITE, event_ndim=ndim, scale=scale)
    if kind == "stationary":
        return StationaryGaussianNoise(power_on(event_shape), scale=scale)
    if kind == "mixture":
        return GaussianMixtureNoise(MIX_W, MIX_S, event_ndim=ndim, scale=scale)
    # "callable": the white model's score as a plain function of x
    return ScoreFunction(jax.tree_util.Partial(_white_score, (SIGMA_WHITE * scale) ** 2), event_shape)


# ---- jitted evaluations -------------------------------------------------------------------------
# One jitted function per test, taking the noise model or the distribution as an argument: examples
# with the same kind, shapes and energy reuse its compilation, and one program per example compiles
# faster than several.
def _likelihood(noise, loc, energy, nodes=8, path="linear"):
    return ScoreLikelihood(noise, loc, energy=energy, nodes=nodes, path=path)


def _grads(noise, loc, value, energy):
    """(d/dloc, d/dvalue) of the summed log_prob, reverse mode."""
    return jax.grad(lambda m, v: _likelihood(noise, m, energy).log_prob(v).sum(), (0, 1))(loc, value)


@eqx.filter_jit
def jit_log_prob(noise, loc, value, energy):
    return _likelihood(noise, loc, energy).log_prob(value)


@eqx.filter_jit
def jit_log_prob_and_grads(noise, loc, value, energy):
    return _likelihood(noise, loc, energy).log_prob(value), _grads(noise, loc, value, energy)


@eqx.filter_jit
def jit_dist_log_prob(d, value):
    return d.log_prob(value)


plain_jit_log_prob = jax.jit(lambda d, value: d.log_prob(value))


def oracle_log_prob(kind, r, scale=1.0):
    """log Q(r) for one event r, NumPy float64, written from the densities' definitions."""
    r = np.asarray(r, np.float64)
    if kind in ("white", "callable"):
        s = SIGMA_WHITE * scale
        return float(np.sum(-0.5 * (r / s) ** 2 - 0.5 * LOG_2PI - np.log(s)))
    if kind == "stationary":
        p = power_on(r.shape) * scale**2
        u = np.fft.fftn(r)
        return float(-0.5 * np.sum(np.abs(u) ** 2 / p) / r.size - 0.5 * np.sum(LOG_2PI + np.log(p)))
    s = MIX_S * scale
    comp = np.log(MIX_W) - 0.5 * (r[..., None] / s) ** 2 - 0.5 * LOG_2PI - np.log(s)
    m = comp.max(-1, keepdims=True)
    return float(np.sum(m[..., 0] + np.log(np.exp(comp - m).sum(-1))))


def energies_for(kind):
    return ("line", "none") if kind == "callable" else ("exact", "line", "none")


@st.composite
def cases(draw, kinds=KINDS, max_batch_ndim=2, min_batch_ndim=0, energies=None):
    kind = draw(st.sampled_from(kinds))
    event_shape = draw(st.sampled_from(EVENT_SHAPES))
    batch_shape = draw(st.sampled_from([b for b in BATCH_SHAPES if min_batch_ndim <= len(b) <= max_batch_ndim]))
    allowed = [e for e in energies_for(kind) if energies is None or e in energies]
    energy = draw(st.sampled_from(allowed))
    seed = draw(st.integers(0, 2**16))
    return kind, event_shape, batch_shape, energy, seed


def loc_and_value(seed, batch_shape, event_shape, scale=1.0, sample_shape=(), dtype=jnp.float32):
    """A model image and an observation near it (residuals of order the noise), physical units.

    Drawn in NumPy float64 and rounded to ``dtype``, so float32 and float64 cases hold the same numbers.
    """
    rng = np.random.default_rng(seed)
    loc = rng.standard_normal(batch_shape + event_shape)
    value = loc + 0.8 * rng.standard_normal(sample_shape + batch_shape + event_shape)
    return jnp.asarray(scale * loc, dtype), jnp.asarray(scale * value, dtype)


def expected_log_prob(kind, energy, residuals, event_shape, scale=1.0):
    """What log_prob must return per event: the density, relative to r = 0 for "line", 0 for "none"."""
    nd = len(event_shape)
    flat = np.asarray(residuals, np.float64).reshape((-1,) + event_shape)
    if energy == "none":
        out = np.zeros(len(flat))
    else:
        zero = oracle_log_prob(kind, np.zeros(event_shape), scale) if energy == "line" else 0.0
        out = np.array([oracle_log_prob(kind, r, scale) - zero for r in flat])
    return out.reshape(np.shape(residuals)[: np.ndim(residuals) - nd])


def value_is_exact(kind, energy):
    # The mixture's score is not linear, so the 8-node line integral is approximate (docs/likelihood.md).
    return not (kind == "mixture" and energy == "line")


# ---- batch and event shapes, and the value ------------------------------------------------------
@eqx.filter_jit
def shapes_program(d, value):
    one = value.reshape((-1,) + d.event_shape)[0]
    return d.log_prob(value), d.log_prob(one), d.log_prob(jnp.broadcast_to(one, d.loc.shape))


@PROPS
@given(cases(), st.sampled_from([(), (2,)]))
def test_shapes_and_values(case, sample_shape):
    kind, event_shape, batch_shape, energy, seed = case
    noise = make_noise(kind, event_shape)
    loc, value = loc_and_value(seed, batch_shape, event_shape, sample_shape=sample_shape)
    d = ScoreLikelihood(noise, loc, energy=energy)
    assert d.batch_shape == batch_shape and d.event_shape == event_shape and d.event_dim == len(event_shape)
    assert jax.eval_shape(d.log_prob, value).shape == sample_shape + batch_shape  # eager shapes
    lp, lp_one, lp_broadcast = shapes_program(d, value)
    assert lp.shape == sample_shape + batch_shape and lp.dtype == jnp.float32
    assert np.all(np.isfinite(lp))
    if value_is_exact(kind, energy):
        want = expected_log_prob(kind, energy, value - loc, event_shape)
        np.testing.assert_allclose(lp, want, rtol=2e-5, atol=2e-4)
    # One event-shaped observation broadcasts against every loc of the batch.
    np.testing.assert_allclose(lp_one, lp_broadcast, rtol=1e-6)
    if noise.can_sample:  # draws are checked for shape here (eval_shape), for values in the plate test
        x = jax.eval_shape(lambda k: d.sample(k, sample_shape), jax.random.key(seed))
        assert x.shape == sample_shape + batch_shape + event_shape and x.dtype == jnp.float32
    else:
        with pytest.raises(ValueError, match="cannot draw noise"):
            d.sample(jax.random.key(seed))


def test_a_plain_callable_makes_all_of_loc_one_event():
    d = ScoreLikelihood(lambda x: -x, jnp.zeros((2, 3, 4)))
    assert d.batch_shape == () and d.event_shape == (2, 3, 4) and d.energy == "line"
    r = np.random.default_rng(0).standard_normal((2, 3, 4))
    np.testing.assert_allclose(d.log_prob(r), -0.5 * np.sum(r**2), rtol=1e-5)
    # A lambda is a non-array pytree leaf: jax.jit refuses the distribution as an argument,
    # eqx.filter_jit takes it (a jax.tree_util.Partial crosses plain jax.jit, test_pytree_round_trip).
    np.testing.assert_allclose(jit_dist_log_prob(d, r), -0.5 * np.sum(r**2), rtol=1e-5)


# ---- dtypes ---------------------------------------------------------------------------------------
@PROPS
@given(cases(max_batch_ndim=1))
def test_dtypes_float32_and_float64(case):
    """float32 by default, float64 throughout under x64; the two agree to float32 precision."""
    kind, event_shape, batch_shape, energy, seed = case

    def evaluate(dtype):
        noise = make_noise(kind, event_shape)
        loc, value = loc_and_value(seed, batch_shape, event_shape, dtype=dtype)
        d = ScoreLikelihood(noise, loc, energy=energy)
        lp, (g_loc, g_value) = jit_log_prob_and_grads(noise, loc, value, energy)
        draws = [jax.eval_shape(lambda k: d.sample(k), jax.random.key(0))] if noise.can_sample else []
        for x in [lp, g_loc, g_value] + draws:
            assert x.dtype == dtype, (x.dtype, dtype)
        return np.asarray(lp, np.float64), np.asarray(g_loc, np.float64)

    lp32, g32 = evaluate(jnp.float32)
    with jax.enable_x64(True):
        lp64, g64 = evaluate(jnp.float64)
    # The same draws, rounded to float32 or not, so the same numbers to float32 precision.
    np.testing.assert_allclose(lp32, lp64, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4 * np.abs(g64).max())


# ---- scales: physical units ----------------------------------------------------------------------
@PROPS
@given(cases(max_batch_ndim=1), st.floats(-6.0, 6.0))
def test_scale_equivariance(case, log10_scale):
    """Scale s and data scaled by s: log_prob shifts by -D log s ("exact"; "line" is relative to r = 0,
    so it does not shift), and the gradients divide by s. From s = 1e-6 to 1e6, in float32."""
    kind, event_shape, batch_shape, energy, seed = case
    s = 10.0**log10_scale
    D = math.prod(event_shape)
    loc, value = loc_and_value(seed, batch_shape, event_shape)

    def value_and_grads(scale):
        noise = make_noise(kind, event_shape, scale)
        m, v = loc_and_value(seed, batch_shape, event_shape, scale=scale)
        return jit_log_prob_and_grads(noise, m, v, energy)

    lp1, (gl1, gv1) = value_and_grads(1.0)
    lps, (gls, gvs) = value_and_grads(s)
    for x in (lps, gls, gvs):
        assert np.all(np.isfinite(x))
    shift = -D * math.log(s) if energy == "exact" else 0.0
    np.testing.assert_allclose(lps, lp1 + shift, rtol=1e-5, atol=1e-5 * (D + abs(shift)))
    np.testing.assert_allclose(gls * s, gl1, rtol=1e-4, atol=1e-5 * np.abs(gl1).max())
    np.testing.assert_allclose(gvs * s, gv1, rtol=1e-4, atol=1e-5 * np.abs(gv1).max())
    np.testing.assert_allclose(gvs, -gls, rtol=1e-6)  # d/dvalue = -d/dloc: a density of value - loc


# ---- NaN and inf --------------------------------------------------------------------------------
@PROPS
@given(cases(), st.sampled_from(["observation", "loc"]), st.sampled_from([np.nan, np.inf, -np.inf]), st.data())
def test_non_finite_raises_when_concrete_and_is_nan_under_jit(case, where, bad, data):
    kind, event_shape, batch_shape, energy, seed = case
    noise = make_noise(kind, event_shape)
    loc, value = loc_and_value(seed, batch_shape, event_shape)
    flat = data.draw(st.integers(0, math.prod(batch_shape + event_shape) - 1), label="pixel")
    index = np.unravel_index(flat, batch_shape + event_shape)
    spoilt = (value if where == "observation" else loc).at[index].set(bad)
    loc_, value_ = (loc, spoilt) if where == "observation" else (spoilt, value)

    what = "observation" if where == "observation" else r"model image \(loc\)"
    with pytest.raises(ValueError, match=f"the {what} has 1 NaN or inf pixel"):
        ScoreLikelihood(noise, loc_, energy=energy).log_prob(value_)

    # Under jit nothing is concrete: no error; the spoilt event's log_prob is NaN (or -inf: an
    # infinite residual has zero density), and the other events are unaffected.
    lp = np.asarray(jit_log_prob(noise, loc_, value_, energy))
    clean = np.asarray(jit_log_prob(noise, loc, value, energy))
    spoilt_event = index[: len(batch_shape)]
    others = np.ones(batch_shape, bool)
    others[spoilt_event] = False
    np.testing.assert_array_equal(lp[others], clean[others])
    if energy != "none":  # "none" is 0 whatever the residual
        assert not np.isfinite(lp[spoilt_event])


def test_non_finite_loc_is_left_to_the_caller_without_validation():
    """validate_args=False skips the loc check (as numpyro's own argument checks); data are still checked."""
    loc = jnp.zeros((2, 3)).at[0, 1].set(jnp.nan)
    d = ScoreLikelihood(WhiteGaussianNoise(1.0, event_ndim=1), loc, validate_args=False)
    lp = d.log_prob(jnp.zeros((2, 3)))
    assert np.isnan(lp[0]) and np.isfinite(lp[1])
    with pytest.raises(ValueError, match="observation has 1 NaN"):
        d.log_prob(jnp.zeros((2, 3)).at[1, 1].set(jnp.inf))


# ---- jit, vmap and grad agree ---------------------------------------------------------------------
@eqx.filter_jit
def transforms_program(noise, loc, value, energy):
    lp = _likelihood(noise, loc, energy).log_prob(value)
    vmapped = jax.vmap(lambda m, v: _likelihood(noise, m, energy).log_prob(v))(loc, value)
    score = jax.vmap(noise.score)(value - loc)  # batch_shape has one dimension here
    fwd = jax.jacfwd(lambda m: _likelihood(noise, m, energy).log_prob(value).sum())(loc)
    return lp, vmapped, score, _grads(noise, loc, value, energy), fwd


@PROPS
@given(cases(min_batch_ndim=1, max_batch_ndim=1))
def test_jit_vmap_grad_agree(case):
    kind, event_shape, batch_shape, energy, seed = case
    noise = make_noise(kind, event_shape)
    loc, value = loc_and_value(seed, batch_shape, event_shape)
    jitted, vmapped, score, (g_loc, g_value), g_fwd = transforms_program(noise, loc, value, energy)
    eager = ScoreLikelihood(noise, loc, energy=energy).log_prob(value)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-5)
    # vmap over the batch == the batch as batch_shape
    np.testing.assert_allclose(vmapped, jitted, rtol=1e-5, atol=1e-5)
    # grad in loc == -score of each event's residual (reverse and forward mode); d/dvalue == +score
    tol = dict(rtol=1e-4, atol=1e-5 * float(np.abs(score).max()))
    np.testing.assert_allclose(g_loc, -score, **tol)
    np.testing.assert_allclose(g_value, score, **tol)
    np.testing.assert_allclose(g_fwd, -score, **tol)


@eqx.filter_jit
def finite_difference_program(noise, loc, value, direction, energy, h=1e-5):
    def f(m):
        return _likelihood(noise, m, energy).log_prob(value).sum()

    fd = (f(loc + h * direction) - f(loc - h * direction)) / (2 * h)
    return fd, jnp.vdot(jax.grad(f)(loc), direction)


@PROPS
@given(cases(energies=("exact", "line")))
def test_gradient_matches_finite_differences(case):
    """Central differences of the value along a random direction, float64: the gradient is the
    derivative of the value (for "line" because the quadrature is exact for a linear score; the
    mixture's 8-node line value is approximate, so the mixture is checked with "exact")."""
    kind, event_shape, batch_shape, energy, seed = case
    if not value_is_exact(kind, energy):
        energy = "exact"
    with jax.enable_x64(True):
        noise = make_noise(kind, event_shape)
        loc, value = loc_and_value(seed, batch_shape, event_shape, dtype=jnp.float64)
        direction = jnp.asarray(np.random.default_rng(seed + 1).standard_normal(loc.shape))
        fd, ad = finite_difference_program(noise, loc, value, direction, energy)
    np.testing.assert_allclose(float(ad), float(fd), rtol=1e-6, atol=1e-7 * float(np.abs(direction).sum()))


# ---- expand, to_event, mask -----------------------------------------------------------------------
@eqx.filter_jit
def expand_program(d, new_batch, keep, value):
    expanded = d.expand(new_batch)
    return (
        d.log_prob(value),
        expanded.log_prob(value),
        d.to_event(1).log_prob(value),
        d.mask(False).log_prob(value),
        d.mask(keep).log_prob(value),
    )


@PROPS
@given(cases(min_batch_ndim=1), st.sampled_from([(), (2,), (1, 2)]))
def test_expand_to_event_and_mask(case, prepend):
    kind, event_shape, batch_shape, energy, seed = case
    loc, value = loc_and_value(seed, batch_shape, event_shape)
    d = ScoreLikelihood(make_noise(kind, event_shape), loc, energy=energy)
    keep = np.arange(math.prod(batch_shape)).reshape(batch_shape) % 2 == 0
    new_batch = prepend + batch_shape
    lp, lp_expanded, lp_event, lp_none, lp_some = expand_program(d, new_batch, keep, value)
    expanded = d.expand(new_batch)
    assert expanded.batch_shape == new_batch and expanded.event_shape == event_shape
    np.testing.assert_allclose(lp_expanded, np.broadcast_to(lp, new_batch), rtol=1e-6)
    if d.noise.can_sample:
        assert jax.eval_shape(lambda k: expanded.sample(k, (2,)), jax.random.key(0)).shape == (2,) + new_batch + event_shape

    reinterpreted = d.to_event(1)
    assert reinterpreted.batch_shape == batch_shape[:-1]
    assert reinterpreted.event_shape == batch_shape[-1:] + event_shape
    np.testing.assert_allclose(lp_event, lp.sum(-1), rtol=1e-5, atol=1e-5)

    assert lp_none.shape == batch_shape and np.all(lp_none == 0)
    np.testing.assert_allclose(lp_some, np.where(keep, lp, 0.0), rtol=1e-6)


# ---- plates and Predictive ------------------------------------------------------------------------
def exposure_model(noise, template, n_exposures, batched_loc, energy, obs=None):
    """n_exposures exposures of amp * template; loc carries the plate's dimension or the plate expands it."""
    amp = numpyro.sample("amp", dist.Normal(1.0, 0.3))
    loc = amp * template
    if batched_loc:
        loc = jnp.broadcast_to(loc, (n_exposures,) + template.shape)
    with numpyro.plate("exposures", n_exposures):
        numpyro.sample("obs", ScoreLikelihood(noise, loc, energy=energy), obs=obs)


@eqx.filter_jit
def plate_program(key, *args):
    """Prior predictive draws, then the joint log-density and the plain likelihood at the first draw."""
    noise, template, _, _, energy = args
    prior = Predictive(exposure_model, num_samples=4)(key, *args)
    obs, amp = prior["obs"][0], prior["amp"][0]
    joint = log_density(exposure_model, args, {"obs": obs}, {"amp": amp})[0]
    return prior, joint, _likelihood(noise, amp * template, energy).log_prob(obs)


@settings(PROPS, max_examples=8)  # each example compiles Predictive and log_density: the slowest here
@given(cases(kinds=("white", "stationary", "mixture"), max_batch_ndim=0), st.sampled_from([1, 3]), st.booleans())
def test_plate_log_density_and_prior_predictive(case, n_exposures, batched_loc):
    kind, event_shape, _, energy, seed = case
    noise = make_noise(kind, event_shape)
    template = jnp.asarray(np.cos(np.arange(math.prod(event_shape))).reshape(event_shape), jnp.float32)
    args = (noise, template, n_exposures, batched_loc, energy)

    prior, joint, per_exposure = plate_program(jax.random.key(seed), *args)
    assert prior["obs"].shape == (4, n_exposures) + event_shape and prior["amp"].shape == (4,)
    assert np.all(np.isfinite(prior["obs"]))
    obs, amp = prior["obs"][0], prior["amp"][0]
    site = numpyro.handlers.trace(numpyro.handlers.substitute(exposure_model, {"amp": amp})).get_trace(*args, obs=obs)["obs"]
    assert site["fn"].batch_shape == (n_exposures,) and site["fn"].event_shape == event_shape
    assert per_exposure.shape == (n_exposures,)
    np.testing.assert_allclose(joint, dist.Normal(1.0, 0.3).log_prob(amp) + per_exposure.sum(), rtol=1e-5, atol=1e-4)


def test_prior_predictive_with_a_plain_score_says_it_cannot_sample():
    def model():
        numpyro.sample("obs", ScoreLikelihood(lambda r: -r, jnp.zeros((3, 4))))

    with pytest.raises(ValueError, match="cannot draw noise"):
        Predictive(model, num_samples=2)(jax.random.key(0))


# ---- pytree flatten / unflatten ---------------------------------------------------------------------
@PROPS
@given(cases(), st.sampled_from([2, 5]), st.sampled_from(["linear", "arc"]))
def test_pytree_round_trip(case, nodes, path):
    kind, event_shape, batch_shape, energy, seed = case
    loc, value = loc_and_value(seed, batch_shape, event_shape)
    d = ScoreLikelihood(make_noise(kind, event_shape), loc, energy=energy, nodes=nodes, path=path)
    leaves, treedef = jax.tree_util.tree_flatten(d)
    d2 = jax.tree_util.tree_unflatten(treedef, leaves)
    assert type(d2) is ScoreLikelihood
    assert (d2.energy, d2.nodes, d2.path, d2.batch_shape, d2.event_shape) == (
        d.energy, d.nodes, d.path, d.batch_shape, d.event_shape)
    # Across a jit boundary as an argument (plain jax.jit: every leaf is an array or a number).
    lp = plain_jit_log_prob(d, value)
    np.testing.assert_array_equal(plain_jit_log_prob(d2, value), lp)
    # Every array leaf is reachable: doubling them doubles loc and the noise parameters.
    doubled = jax.tree.map(lambda x: 2 * x if eqx.is_array(x) else x, d)
    np.testing.assert_array_equal(doubled.loc, 2 * d.loc)
    assert jax.tree.structure(doubled) == treedef
