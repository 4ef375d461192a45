"""The ArviZ bridge with every kernel: conversion, summaries with an explicit interval, ESS per
gradient evaluation. Runs unchanged under ArviZ 0.x (Python 3.11) and 1.x (Python >= 3.12)."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import MCMC, NUTS

from numpyro_slic import ScoreLikelihood
from numpyro_slic.diagnostics import ess_per_gradient, summary, to_inference_data
from numpyro_slic.infer import MALA, AnnealedLangevin
from numpyro_slic.noise import WhiteGaussianNoise

DATA = jnp.array([[0.3, 1.1, 1.6, 2.4, 3.1], [0.2, 0.8, 1.9, 2.2, 3.3]])
X = jnp.arange(5.0) - 2.0
CHAINS, DRAWS = 2, 300


def model(data, energy="exact"):
    """Intercept and slope (centred pixels: nearly uncorrelated); two exposures of a 5-pixel
    white-noise ScoreLikelihood (a plate)."""
    a = numpyro.sample("a", dist.Normal(0.0, 3.0))
    b = numpyro.sample("b", dist.HalfNormal(3.0))
    mu = a + b * X
    with numpyro.plate("exposure", 2):
        numpyro.sample("obs", ScoreLikelihood(WhiteGaussianNoise(0.3, event_ndim=1), mu, energy=energy), obs=data)


KERNELS = {
    "nuts": lambda: NUTS(model),
    "mala": lambda: MALA(model),
    "annealed": lambda: AnnealedLangevin(model, [0.4, 0.2, 0.0], steps_per_level=5),
}


def _run(kernel, energy):
    mcmc = MCMC(
        KERNELS[kernel](), num_warmup=300, num_samples=DRAWS, num_chains=CHAINS,
        chain_method="vectorized", progress_bar=False,
    )  # fmt: skip
    extra = ("num_steps",) if kernel == "nuts" else ()
    mcmc.run(jax.random.key(0), DATA, energy=energy, extra_fields=extra)
    return mcmc


@pytest.fixture(scope="module")
def runs():
    return {(k, e): _run(k, e) for k in KERNELS for e in ("exact", "none") if not (k == "nuts" and e == "none")}


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_conversion_with_every_kernel(runs, kernel):
    mcmc = runs[(kernel, "exact")]
    data = to_inference_data(mcmc)
    post = data["posterior"]
    assert post["a"].shape == (CHAINS, DRAWS) and post["b"].shape == (CHAINS, DRAWS)
    # Constrained values (postprocess_fn ran): the HalfNormal slope is positive.
    assert np.all(np.asarray(post["b"]) > 0)
    np.testing.assert_allclose(np.asarray(post["a"]), np.asarray(mcmc.get_samples(group_by_chain=True)["a"]))
    stats = data["sample_stats"]
    expected = {"nuts": {"n_steps", "diverging"}, "mala": {"acceptance_rate", "num_grad_evals"},
                "annealed": {"num_grad_evals", "metropolis_prob"}}[kernel]  # fmt: skip
    assert expected <= set(stats.data_vars), set(stats.data_vars)
    # energy="exact": the pointwise log-likelihood is a true log-density, so it is included:
    # one value per exposure (the plate), equal to the noise model's density of the residual.
    loglik = np.asarray(data["log_likelihood"]["obs"])
    assert loglik.shape == (CHAINS, DRAWS, 2)
    a, b = float(post["a"][0, 0]), float(post["b"][0, 0])
    noise = WhiteGaussianNoise(0.3, event_ndim=1)
    expected_ll = [noise.log_prob(DATA[i] - (a + b * X)) for i in range(2)]
    np.testing.assert_allclose(loglik[0, 0], expected_ll, rtol=1e-4)


@pytest.mark.parametrize("kernel", ["mala", "annealed"])
def test_gradient_only_likelihood_gets_no_log_likelihood_group(runs, kernel):
    """energy="none" gives log-likelihood 0: leaving it out keeps LOO/WAIC from using it."""
    data = to_inference_data(runs[(kernel, "none")])
    assert "log_likelihood" not in data and "posterior" in data
    forced = to_inference_data(runs[(kernel, "none")], log_likelihood=True)
    assert np.all(np.asarray(forced["log_likelihood"]["obs"]) == 0)


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_summary_has_explicit_interval_and_version_independent_columns(runs, kernel):
    mcmc = runs[(kernel, "exact")]
    a = np.asarray(mcmc.get_samples()["a"])
    df = summary(mcmc)  # an MCMC is converted first
    assert list(df.columns) == [
        "mean", "sd", "hdi94_lb", "hdi94_ub", "ess_bulk", "ess_tail", "r_hat", "mcse_mean", "mcse_sd",
    ]  # fmt: skip
    assert list(df.index) == ["a", "b"]
    assert df.loc["a", "mean"] == pytest.approx(a.mean(), rel=1e-5)
    assert df.loc["a", "sd"] == pytest.approx(a.std(ddof=1), rel=1e-4)
    # A 94% HDI holds 94% of the draws (to a few draws of 600). MALA and Langevin chains repeat a
    # draw on every rejection, so an end point can be a value held by several draws: 94% lies
    # between the share strictly inside and the share with both ends included.
    lb, ub = df.loc["a", "hdi94_lb"], df.loc["a", "hdi94_ub"]
    strictly, closed = np.mean((a > lb) & (a < ub)), np.mean((a >= lb) & (a <= ub))
    assert strictly - 2.5 / a.size <= 0.94 <= closed + 2.5 / a.size
    assert df.loc["a", "r_hat"] < 1.05  # two chains of 300 draws on a 2-parameter Gaussian
    eti = summary(to_inference_data(mcmc), ci_kind="eti", ci_prob=0.8, kind="stats")
    assert list(eti.columns) == ["mean", "sd", "eti80_lb", "eti80_ub"]
    np.testing.assert_allclose(
        [eti.loc["a", "eti80_lb"], eti.loc["a", "eti80_ub"]], np.quantile(a, [0.1, 0.9]), rtol=1e-3, atol=1e-3
    )
    diag = summary(mcmc, kind="diagnostics", var_names=["b"])
    assert list(diag.columns) == ["ess_bulk", "ess_tail", "r_hat", "mcse_mean", "mcse_sd"]
    assert list(diag.index) == ["b"]


def test_ess_per_gradient(runs):
    per_grad = {k: ess_per_gradient(runs[(k, "exact")]) for k in KERNELS}
    mala_run = runs[("mala", "exact")]
    cost = CHAINS * DRAWS * 2  # line_nodes=3: two gradient evaluations per MALA step
    ess_a = numpyro.diagnostics.effective_sample_size(np.asarray(mala_run.get_samples(group_by_chain=True)["a"]))
    # ArviZ's rank-normalised bulk ESS and NumPyro's ESS agree to ~10% on a Gaussian posterior.
    assert float(per_grad["mala"]["a"]) == pytest.approx(ess_a / cost, rel=0.2)
    # An anneal costs 3 x 5 + 3 gradients per draw and gives nearly independent draws.
    assert float(per_grad["annealed"]["a"]) < 1.0 / 18 * 1.5
    assert all(float(v["a"]) > 0 for v in per_grad.values())


def test_ess_per_gradient_needs_the_cost(runs):
    mcmc = MCMC(NUTS(model), num_warmup=20, num_samples=20, progress_bar=False)
    mcmc.run(jax.random.key(1), DATA)  # no extra_fields=("num_steps",)
    with pytest.raises(ValueError, match="num_steps"):
        ess_per_gradient(mcmc)


def test_bad_input():
    with pytest.raises(TypeError, match="numpyro.infer.MCMC"):
        to_inference_data({"a": np.zeros(3)})
    with pytest.raises(ValueError, match="ci_kind"):
        summary(None, ci_kind="hpd")
    with pytest.raises(ValueError, match="ci_prob"):
        summary(None, ci_prob=94)


def skewed_model():
    """Skewed posteriors (no data): an Exponential(1) rate, whose 94% HDI [0, 2.81] and ETI
    [0.03, 3.51] differ clearly, and a 2 x 3 block of lognormals with different scales (rows of the
    summary in C order)."""
    numpyro.sample("rate", dist.Exponential(1.0))
    loc = jnp.arange(6.0).reshape(2, 3) / 2
    numpyro.sample("z", dist.LogNormal(loc, 0.8).to_event(2))


def _reference_hdi(x, prob):
    """Brute force: the narrowest window of floor(prob * n) + 1 consecutive sorted draws."""
    x = np.sort(x)
    m = int(np.floor(prob * x.size))
    best = min(range(x.size - m), key=lambda i: x[i + m] - x[i])
    return x[best], x[best + m]


@pytest.fixture(scope="module")
def skewed():
    mcmc = MCMC(NUTS(skewed_model), num_warmup=300, num_samples=1000, num_chains=2,
                chain_method="vectorized", progress_bar=False)  # fmt: skip
    mcmc.run(jax.random.key(3))
    return mcmc


def test_summary_interval_is_the_kind_asked_for_on_a_skewed_posterior(skewed):
    """HDI when asked for hdi, ETI when asked for eti, under every ArviZ (arviz_stats 1.0.0 to
    1.3.1's summary gives an ETI whatever ci_kind says; the interval is computed here)."""
    samples = {k: np.asarray(v, dtype=np.float64) for k, v in skewed.get_samples().items()}
    hdi = summary(skewed, kind="stats")
    eti = summary(skewed, ci_kind="eti", kind="stats")
    assert list(hdi.columns) == ["mean", "sd", "hdi94_lb", "hdi94_ub"]
    assert list(eti.columns) == ["mean", "sd", "eti94_lb", "eti94_ub"]
    rate = samples["rate"]
    np.testing.assert_allclose(hdi.loc["rate", ["hdi94_lb", "hdi94_ub"]], _reference_hdi(rate, 0.94), rtol=1e-6)
    np.testing.assert_allclose(eti.loc["rate", ["eti94_lb", "eti94_ub"]], np.quantile(rate, [0.03, 0.97]), rtol=1e-6)
    # They are not the same interval: the HDI of an exponential starts at the smallest draws and is
    # narrower (exact values: HDI [0, 2.81], ETI [0.030, 3.51]).
    assert hdi.loc["rate", "hdi94_lb"] < 0.5 * eti.loc["rate", "eti94_lb"]
    assert hdi.loc["rate", "hdi94_ub"] < eti.loc["rate", "eti94_ub"] - 0.3
    # Every element of the 2 x 3 block, in C order: z[i, j] row = element (i, j).
    z = samples["z"].reshape(-1, 6)
    rows = [label for label in hdi.index if str(label).startswith("z")]
    assert len(rows) == 6
    for k, row in enumerate(rows):
        np.testing.assert_allclose(hdi.loc[row, "mean"], z[:, k].mean(), rtol=1e-5)
        np.testing.assert_allclose(hdi.loc[row, "sd"], z[:, k].std(ddof=1), rtol=1e-5)  # ddof=0 in arviz_stats < 1.3.3
        np.testing.assert_allclose(hdi.loc[row, ["hdi94_lb", "hdi94_ub"]], _reference_hdi(z[:, k], 0.94), rtol=1e-6)
        np.testing.assert_allclose(eti.loc[row, ["eti94_lb", "eti94_ub"]], np.quantile(z[:, k], [0.03, 0.97]), rtol=1e-6)
        width_hdi = hdi.loc[row, "hdi94_ub"] - hdi.loc[row, "hdi94_lb"]
        assert width_hdi < eti.loc[row, "eti94_ub"] - eti.loc[row, "eti94_lb"]
    # round_to rounds the interval too.
    rounded = summary(skewed, var_names=["rate"], kind="stats", round_to=2)
    assert rounded.loc["rate", "hdi94_ub"] == round(hdi.loc["rate", "hdi94_ub"], 2)
