"""Coverage metrics: TARP and SBC pass calibrated posteriors and flag miscalibrated ones at the
injection count used here, avoid the reference TARP package's pitfalls, and as_draws reads every
posterior format.

Each detection test is one seed; check_calibrated and check_miscalibrated are the whole test, so
they can be rerun over other seeds. Fraction of seeds 100..149 on which each passes (measured
at 300 injections, 500 draws, family-wise alpha 0.05):

    d   calibrated  over (sd x 0.7)  under (sd x 1.5)  biased (+0.5 sd)
    2   0.94        0.96             1.00              1.00
    3   1.00        1.00             1.00              1.00
    4   1.00        1.00             1.00              1.00

    for s in range(100, 150): check_miscalibrated(s, d, case)   # count AssertionErrors
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import MCMC, NUTS

from numpyro_slic.coverage import as_draws, coverage_verdict, sbc, tarp
from numpyro_slic.diagnostics import sbc_ecdf_plot, tarp_plot, to_inference_data

N_INJ, N_DRAWS, TAU = 300, 500, 1.0
ALPHA = 0.05


def gaussian_problem(seed, d, *, sd_scale=1.0, bias=0.0, n_inj=N_INJ, n_draws=N_DRAWS):
    """theta ~ N(0, I_d), x = theta + N(0, tau^2 I): exact posterior N(x / (1 + tau^2), tau^2 / (1 + tau^2)).

    The draws come from that posterior with its sd times ``sd_scale`` and its mean moved by ``bias``
    posterior sds. Returns (samples (n_inj, n_draws, d), truths (n_inj, d)).
    """
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(n_inj, d))
    x = theta + TAU * rng.normal(size=(n_inj, d))
    mean, sd = x / (1 + TAU**2), np.sqrt(TAU**2 / (1 + TAU**2))
    samples = mean[:, None, :] + bias * sd + sd_scale * sd * rng.normal(size=(n_inj, n_draws, d))
    return samples, theta


# ----------------------------------------------------------------------------- detection power
# One fixed seed per case; pass rates over other seeds in the module docstring.
MISCALIBRATED = {"over": dict(sd_scale=0.7), "under": dict(sd_scale=1.5), "biased": dict(bias=0.5)}


def check_calibrated(seed, d):
    samples, truths = gaussian_problem(seed, d)
    t, s = tarp(samples, truths, key=seed), sbc(samples, truths, key=seed)
    verdict = coverage_verdict(t, s, alpha=ALPHA)
    assert verdict["passed"], verdict["reasons"]
    assert t.ks_pvalue > ALPHA / 2 and s.pvalue > ALPHA / 2
    assert abs(t.atc) < 0.05


def check_miscalibrated(seed, d, case):
    samples, truths = gaussian_problem(seed, d, **MISCALIBRATED[case])
    t, s = tarp(samples, truths, key=seed), sbc(samples, truths, key=seed)
    verdict = coverage_verdict(t, s, alpha=ALPHA)
    assert not verdict["passed"], verdict["reasons"]
    # SBC flags all three; TARP's random references see the dispersion errors but are nearly
    # blind to a shift (its KS p is mostly > 0.025 for the biased case), so its p is not asserted there.
    assert s.pvalue < ALPHA / 2
    if case == "over":
        assert t.ks_pvalue < ALPHA / 2 and t.atc < 0
    elif case == "under":
        assert t.ks_pvalue < ALPHA / 2 and t.atc > 0


@pytest.mark.parametrize("d", [2, 3, 4])
def test_calibrated_passes(d):
    check_calibrated(d, d)


@pytest.mark.parametrize("d", [2, 3, 4])
@pytest.mark.parametrize("case", list(MISCALIBRATED))
def test_miscalibrated_flagged(case, d):
    check_miscalibrated(10 + d, d, case)


# ------------------------------------------------------------------------------- TARP pitfalls
def test_tarp_invariant_to_rescaling_theta():
    # The reference tarp package draws references in [0, 1]^d whatever theta's scale; here they are
    # drawn in the truths' box, so theta ~ 1e4 gives the ECP of its rescaled version, normalised or not.
    samples, truths = gaussian_problem(0, 3, n_inj=100, n_draws=200)
    scale, shift = np.array([1e4, 3e4, 2e3]), np.array([5e4, -1e3, 0.0])
    for norm in (True, False):
        base = tarp(samples, truths, key=7, norm=norm)
        # With norm=False only an isotropic change of units leaves distances' order unchanged.
        s = scale if norm else 1e4
        big = tarp(samples * s + shift, truths * s + shift, key=7, norm=norm)
        np.testing.assert_allclose(big.ecp, base.ecp)
        np.testing.assert_allclose(big.f, base.f)


def test_tarp_alpha_grid_and_bootstrap():
    samples, truths = gaussian_problem(1, 2, n_inj=150, n_draws=100)
    res = tarp(samples, truths, key=jax.random.key(3), num_alpha=51, num_bootstrap=200)
    assert res.alpha.shape == res.ecp.shape == (51,)
    assert res.alpha[0] == 0 and res.alpha[-1] == 1
    assert res.ecp[0] == 0 and res.ecp[-1] == 1
    assert np.all(np.diff(res.ecp) >= 0)
    assert res.ecp_bootstrap.shape == (200, 51)
    # tarp 0.1.3 reseeds inside its bootstrap loop: a handful of distinct curves. Here every one.
    assert len(np.unique(res.ecp_bootstrap, axis=0)) == 200
    lo, hi = res.band(0.95)
    assert np.all(lo <= hi)
    d = res.to_dict()
    assert set(d) >= {"alpha", "ecp", "ecp_bootstrap", "f", "atc", "ks_pvalue"}
    assert isinstance(d["atc"], float) and len(d["f"]) == 150


def test_seeded_calls_reproducible():
    samples, truths = gaussian_problem(2, 3, n_inj=80, n_draws=60)
    for key in (5, jax.random.key(5), jax.random.PRNGKey(5)):
        a, b = tarp(samples, truths, key=key), tarp(samples, truths, key=key)
        np.testing.assert_array_equal(a.ecp_bootstrap, b.ecp_bootstrap)
        np.testing.assert_array_equal(a.f, b.f)
    assert not np.array_equal(tarp(samples, truths, key=6).f, tarp(samples, truths, key=5).f)
    np.testing.assert_array_equal(sbc(samples, truths, key=1).pit, sbc(samples, truths, key=1).pit)


def test_tarp_explicit_references():
    samples, truths = gaussian_problem(3, 2, n_inj=50, n_draws=40)
    # References at the truths: no draw is closer than the truth, so every f is below 1/(n + 1).
    res = tarp(samples, truths, key=0, references=truths, norm=False)
    assert np.all(res.f < 1 / 41)


# ----------------------------------------------------------------------------------------- SBC
def test_sbc_ranks_thin_pooled_draws():
    samples, truths = gaussian_problem(4, 2, n_inj=40, n_draws=300)
    res = sbc(samples, truths, names=["a", "b"])
    assert res.num_ranks == 100 and res.ranks.shape == (40, 2)
    assert res.ranks.min() >= 0 and res.ranks.max() <= 99
    # The kept draws are spread over the whole pooled axis (both ends included), not a prefix.
    keep = np.round(np.linspace(0, 299, 99)).astype(int)
    np.testing.assert_array_equal(res.ranks, (samples[:, keep] < truths[:, None]).sum(1))
    assert np.all((res.pit >= res.ranks / 100) & (res.pit < (res.ranks + 1) / 100))
    assert sbc(samples[:, :30], truths).num_ranks == 20
    assert sbc(samples, truths, num_ranks=301).num_ranks == 301
    d = res.to_dict()
    assert set(d["pvalues"]) == {"a", "b"} and 0 <= d["pvalue"] <= 1


# ------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("fn", [tarp, sbc])
def test_bad_inputs(fn):
    samples, truths = gaussian_problem(5, 2, n_inj=20, n_draws=30)
    kw = {"key": 0}
    with pytest.raises(ValueError, match="injections"):
        fn(samples, truths[:-1], **kw)
    with pytest.raises(ValueError, match="parameters"):
        fn(samples, truths[:, :1], **kw)
    with pytest.raises(ValueError, match=r"\(n_inj, n_draws, d\)"):
        fn(samples[0], truths, **kw)
    with pytest.raises(ValueError, match="draws per injection"):
        fn(samples[:, :5], truths, **kw)
    bad = samples.copy()
    bad[3, 0, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN.*\[3\]"):
        fn(bad, truths, **kw)
    bad = truths.copy()
    bad[7, 0] = np.inf
    with pytest.raises(ValueError, match=r"NaN.*\[7\]"):
        fn(samples, bad, **kw)


def test_bad_options():
    samples, truths = gaussian_problem(6, 2, n_inj=20, n_draws=30)
    with pytest.raises(ValueError, match="num_ranks"):
        sbc(samples, truths, num_ranks=32)
    with pytest.raises(ValueError, match="references"):
        tarp(samples, truths, key=0, references="random")
    with pytest.raises(ValueError, match="references must have shape"):
        tarp(samples, truths, key=0, references=truths[:, :1])
    const = truths.copy()
    const[:, 1] = 1.0
    with pytest.raises(ValueError, match="constant"):
        tarp(samples, const, key=0)
    with pytest.raises(ValueError, match="give a TarpResult"):
        coverage_verdict()


def test_verdict_single_test_and_reasons():
    samples, truths = gaussian_problem(7, 2, bias=0.5)
    s = sbc(samples, truths, names=["x", "y"])
    v = coverage_verdict(sbc_result=s, alpha=0.05)
    assert not v["passed"] and v["level"] == 0.05
    # Draws shifted up: truths sit low among them, mean PIT below 1/2, and both parameters named.
    assert "x (p" in v["reasons"][0] and "y (p" in v["reasons"][0]
    assert s.pit.mean() < 0.4


# ------------------------------------------------------------------------------------- as_draws
def _model():
    numpyro.sample("a", dist.Normal(0.0, 1.0))
    numpyro.sample("v", dist.Normal(jnp.zeros(2), 1.0).to_event(1))


@pytest.fixture(scope="module")
def mcmc():
    m = MCMC(NUTS(_model), num_warmup=50, num_samples=40, num_chains=2, chain_method="vectorized", progress_bar=False)
    m.run(jax.random.key(0))
    return m


def test_as_draws_mcmc_and_arviz(mcmc):
    grouped = mcmc.get_samples(group_by_chain=True)
    draws, names = as_draws(mcmc)
    assert names == ["a", "v[0]", "v[1]"] and draws.shape == (80, 3)
    # Chain by chain: chain 1's draws follow chain 0's.
    np.testing.assert_allclose(draws[40:, 0], grouped["a"][1])
    np.testing.assert_allclose(draws[:, 1:], np.asarray(grouped["v"]).reshape(80, 2))
    idata = to_inference_data(mcmc)
    d2, n2 = as_draws(idata, ["v", "a"], thin=3)
    assert n2 == ["v[0]", "v[1]", "a"] and d2.shape == (2 * 14, 3)
    np.testing.assert_allclose(d2[:14, 2], grouped["a"][0, ::3])
    d3, n3 = as_draws(mcmc, ["v", "a"], thin=3)
    assert n3 == n2
    np.testing.assert_allclose(d3, d2, rtol=1e-6)


def test_as_draws_dict_and_arrays():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 10)), rng.normal(size=(2, 10))
    draws, names = as_draws({"a": a, "b": b}, thin=2)
    assert names == ["a", "b"] and draws.shape == (10, 2)
    np.testing.assert_array_equal(draws[5:, 1], b[1, ::2])
    draws, names = as_draws({"a": a[0]}, ["a"])
    assert draws.shape == (10, 1)
    with pytest.raises(ValueError, match=r"non-scalar: v \(2, 10, 3\)"):
        as_draws({"a": a, "v": rng.normal(size=(2, 10, 3))})
    with pytest.raises(ValueError, match="not in the posterior"):
        as_draws({"a": a}, ["c"])
    with pytest.raises(ValueError, match="different"):
        as_draws({"a": a, "b": b[:, :5]})
    arr = rng.normal(size=(3, 8, 2))
    draws, names = as_draws(arr, thin=4)
    assert names == ["theta[0]", "theta[1]"] and draws.shape == (6, 2)
    np.testing.assert_array_equal(draws[2:4], arr[1, ::4])
    draws, names = as_draws(arr[0], ["x", "y"])
    assert names == ["x", "y"] and draws.shape == (8, 2)
    with pytest.raises(ValueError, match="names"):
        as_draws(arr, ["x"])
    with pytest.raises(ValueError, match="thin"):
        as_draws(arr, thin=0)
    with pytest.raises(ValueError, match="shape"):
        as_draws(rng.normal(size=5))


# --------------------------------------------------------------------------------------- plots
def test_plots_written(tmp_path):
    results = {}
    for name, kw in (("calibrated", {}), ("over-confident", MISCALIBRATED["over"])):
        samples, truths = gaussian_problem(8, 2, n_inj=100, n_draws=100, **kw)
        results[name] = tarp(samples, truths, key=0, num_bootstrap=50)
    tarp_plot(results, str(tmp_path / "tarp.png"))
    samples, truths = gaussian_problem(9, 3, n_inj=100, n_draws=100)
    sbc_ecdf_plot(sbc(samples, truths), str(tmp_path / "sub" / "sbc.png"))
    for f in ("tarp.png", "sub/sbc.png"):
        assert (tmp_path / f).stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["sbc.png", "sub", "tarp.png"]  # no tmp files left
