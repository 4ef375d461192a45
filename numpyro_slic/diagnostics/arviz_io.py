"""The ArviZ bridge: every ArviZ call of the package is in this module.

Works with ArviZ 0.x (Python 3.11 resolves 0.23: ``from_numpyro`` returns an ``InferenceData``,
``summary`` takes ``hdi_prob`` and reports an HDI) and ArviZ 1.x (Python >= 3.12: an xarray
``DataTree``; ``summary`` takes ``ci_prob``/``ci_kind`` and defaults to an 89% ETI). ``summary``
here computes the credible interval itself from the draws (default: 94% HDI), with the algorithms
ArviZ uses (HDI: the narrowest interval between two draws holding floor(prob * n) + 1 of them;
ETI: linearly interpolated quantiles), and names its columns the same way under both, e.g.
``hdi94_lb``, ``hdi94_ub``. Mean and sd are computed here too (sd with ddof=1, as ArviZ 0.x).
ArviZ's own are not used because ``arviz>=0.18`` admits arviz_stats versions whose summary gets
them wrong: arviz_stats 1.0.0 to 1.3.1 compute an ETI whatever ``ci_kind`` says (read in their
source; measured on 1.0.0), and 1.0.0 to 1.3.2 an sd with ddof=0 (xarray's ``std``).
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import jax
import numpy as np
from numpyro import handlers
from numpyro.infer import MCMC, init_to_sample

from .._extras import require
from ..likelihood import ScoreLikelihood

with warnings.catch_warnings():
    # ArviZ 0.23 announces its 1.0 refactor with a FutureWarning on every import.
    warnings.simplefilter("ignore", FutureWarning)
    az = require("arviz", "demo")

__all__ = ["to_inference_data", "summary", "ess_per_gradient", "ARVIZ_MAJOR"]

ARVIZ_MAJOR = int(az.__version__.split(".")[0])

_STATS = ("mean", "sd")
_DIAGNOSTICS = ("ess_bulk", "ess_tail", "r_hat", "mcse_mean", "mcse_sd")
# Sample-stat fields that count gradient evaluations per draw: ours, and NumPyro HMC/NUTS's
# num_steps (leapfrog steps, one gradient each; ArviZ renames it n_steps).
_COST_FIELDS = ("num_grad_evals", "n_steps", "num_steps")


def _has_only_exact_likelihoods(mcmc: MCMC) -> bool:
    """False when an observed ScoreLikelihood site has a relative (energy "line"/"ode") or zero
    ("none") value: its pointwise log-likelihood is then not a log-density, and LOO/WAIC from it
    would be wrong."""
    model = mcmc.sampler.model
    if model is None:
        return False
    seeded = handlers.substitute(handlers.seed(model, 0), substitute_fn=init_to_sample)
    trace = handlers.trace(seeded).get_trace(*mcmc._args, **mcmc._kwargs)
    for site in trace.values():
        if site["type"] != "sample" or not site["is_observed"]:
            continue
        leaves = _score_likelihoods(site["fn"])
        if any(leaf.energy != "exact" for leaf in leaves):
            return False
    return True


def _score_likelihoods(fn) -> list[ScoreLikelihood]:
    is_sl = lambda x: isinstance(x, ScoreLikelihood)  # noqa: E731
    return [leaf for leaf in jax.tree.leaves(fn, is_leaf=is_sl) if is_sl(leaf)]


def to_inference_data(mcmc: MCMC, *, log_likelihood: bool | None = None, **kwargs: Any):
    """``az.from_numpyro(mcmc, ...)``: an InferenceData (ArviZ 0.x) or an xarray DataTree (1.x).

    Works for any NumPyro kernel, ours included (their per-draw stats, e.g. ``accept_prob`` ->
    ``acceptance_rate``, ``num_grad_evals``, ``metropolis_prob``, land in ``sample_stats``).

    Args:
        mcmc: a NumPyro MCMC after ``run``.
        log_likelihood: add the pointwise log-likelihood group. Default: only when every observed
            ScoreLikelihood site has energy="exact"; with "line" the values are relative to a
            reference residual and with "none" they are 0, so LOO/WAIC from them would mislead.
        kwargs: passed on to ``az.from_numpyro`` (coords, dims, prior, posterior_predictive, ...).
    """
    if not isinstance(mcmc, MCMC):
        raise TypeError(f"to_inference_data takes a numpyro.infer.MCMC after run(), got {type(mcmc).__name__}.")
    if log_likelihood is None:
        log_likelihood = _has_only_exact_likelihoods(mcmc)
    return az.from_numpyro(mcmc, log_likelihood=log_likelihood, **kwargs)


def _as_data(data):
    return to_inference_data(data, log_likelihood=False) if isinstance(data, MCMC) else data


def _interval(draws: np.ndarray, ci_prob: float, ci_kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the credible interval, per column of ``draws`` (n draws x k)."""
    if ci_kind == "eti":
        lower, upper = np.quantile(draws, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0)
        return lower, upper
    # HDI as in ArviZ 0.x (_hdi) and arviz_stats 1.x (method="nearest"): among the intervals from
    # draw i to draw i + m of the sorted draws, m = floor(prob * n), the narrowest.
    n = draws.shape[0]
    ordered = np.sort(draws, axis=0)
    m = min(int(np.floor(ci_prob * n)), n - 1)
    widths = np.subtract(ordered[m:], ordered[: n - m], dtype=np.float64)
    start = np.argmin(widths, axis=0)
    columns = np.arange(draws.shape[1])
    return ordered[start, columns], ordered[start + m, columns]


def _add_stats(df, posterior, ci_prob: float, ci_kind: str, interval: tuple[str, str]):
    """Our mean, sd and interval for every row of an ArviZ summary, rows labelled ``name`` or
    ``name[i, j]`` in C order of the variable's non-sample dims (ArviZ 0.x and 1.x alike)."""
    names = [str(label).split("[", 1)[0] for label in df.index]
    mean, sd, lower, upper = (np.empty(len(df)) for _ in range(4))
    for name in dict.fromkeys(names):
        rows = [i for i, n in enumerate(names) if n == name]
        values = posterior[name].transpose("chain", "draw", ...)
        draws = np.asarray(values, dtype=np.float64).reshape(values.shape[0] * values.shape[1], -1)
        if draws.shape[1] != len(rows):
            raise RuntimeError(
                f"summary: {len(rows)} summary rows for {name!r} but {draws.shape[1]} elements per draw."
            )
        mean[rows], sd[rows] = draws.mean(axis=0), draws.std(axis=0, ddof=1)
        lower[rows], upper[rows] = _interval(draws, ci_prob, ci_kind)
    return df.assign(**{"mean": mean, "sd": sd, interval[0]: lower, interval[1]: upper})


def summary(
    data,
    *,
    var_names: Sequence[str] | None = None,
    ci_prob: float = 0.94,
    ci_kind: str = "hdi",
    kind: str = "all",
    round_to: int | str = "none",
) -> "pandas.DataFrame":
    """Posterior summary with an explicit credible interval, the same columns under ArviZ 0.x and 1.x.

    The diagnostics (ESS, R-hat, MCSE) come from ``az.summary``; mean, sd and the interval are
    computed here from the draws (all chains together), so the interval is the kind asked for and
    sd has ddof=1 under every ArviZ version.

    Args:
        data: an MCMC after run(), or the output of ``to_inference_data``.
        var_names: variables to include (default all posterior variables).
        ci_prob: probability of the credible interval (0.94 = ArviZ 0.x's default; 1.x's is 0.89).
        ci_kind: "hdi" (highest density) or "eti" (equal-tailed).
        kind: "all", "stats" (mean, sd, interval) or "diagnostics" (ESS, R-hat, MCSE).
        round_to: decimals, or "none" for raw numbers (default).

    Returns a DataFrame with one row per scalar parameter and columns, in this order, among
    mean, sd, {ci_kind}{100 ci_prob}_lb, {ci_kind}{100 ci_prob}_ub, ess_bulk, ess_tail, r_hat,
    mcse_mean, mcse_sd.
    """
    if ci_kind not in ("hdi", "eti"):
        raise ValueError(f"summary: ci_kind must be 'hdi' or 'eti', got {ci_kind!r}.")
    if not 0 < ci_prob < 1:
        raise ValueError(f"summary: ci_prob must be in (0, 1), got {ci_prob}.")
    if kind not in ("all", "stats", "diagnostics"):
        raise ValueError(f"summary: kind must be 'all', 'stats' or 'diagnostics', got {kind!r}.")
    if round_to != "none" and (isinstance(round_to, bool) or not isinstance(round_to, int)):
        raise ValueError(f"summary: round_to must be a number of decimals or 'none', got {round_to!r}.")
    data = _as_data(data)
    label = f"{ci_kind}{100 * ci_prob:g}"
    interval = (f"{label}_lb", f"{label}_ub")
    if ARVIZ_MAJOR >= 1:
        df = az.summary(data, var_names=var_names, kind=kind, ci_prob=ci_prob, ci_kind=ci_kind, round_to="none")
    else:
        df = az.summary(data, var_names=var_names, kind=kind, hdi_prob=ci_prob, round_to="none")
    # ArviZ's mean, sd and interval columns (hdi_3%/hdi_97% in 0.x, hdi94_lb/eti94_ub/... in 1.x)
    # are replaced by ours.
    df = df[[c for c in df.columns if c in _DIAGNOSTICS]]
    if kind != "diagnostics":
        df = _add_stats(df, data["posterior"], ci_prob, ci_kind, interval)
    order = {"all": _STATS + interval + _DIAGNOSTICS, "stats": _STATS + interval, "diagnostics": _DIAGNOSTICS}[kind]
    df = df[list(order)]
    return df if round_to == "none" else df.round(round_to)


def ess_per_gradient(data, *, var_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Bulk ESS per gradient evaluation of the sampling phase, per parameter (all chains together).

    The cost is the sum of the per-draw gradient counts in ``sample_stats``: ``num_grad_evals`` for
    MALA and AnnealedLangevin, ``n_steps`` for HMC/NUTS (run them with
    ``extra_fields=("num_steps",)``). Warmup is not counted.
    """
    data = _as_data(data)
    stats = data["sample_stats"]
    field = next((f for f in _COST_FIELDS if f in stats), None)
    if field is None:
        raise ValueError(
            "ess_per_gradient: sample_stats has no gradient count (num_grad_evals or n_steps); for "
            "NUTS/HMC run MCMC with extra_fields=('num_steps',)."
        )
    cost = float(np.asarray(stats[field]).sum())
    ess = az.ess(data, var_names=var_names, method="bulk")
    names = var_names if var_names is not None else list(data["posterior"].data_vars)
    return {name: np.asarray(ess[name]) / cost for name in names}


def plot_ecdf_difference(pit_values, *, ax, ci_prob: float = 0.95, seed: int = 0, color: str = "C0") -> None:
    """Draw ECDF(PIT) - PIT of PIT values on ``ax``, with ArviZ's simultaneous ``ci_prob`` band.

    The band (Säilynoja et al. 2022) holds the whole ECDF-difference curve of ``ci_prob`` of
    U(0, 1) samples of the same size, so a curve leaving it anywhere is evidence against
    uniformity at level 1 - ci_prob. ArviZ 0.x: ``plot_ecdf(difference=True,
    confidence_bands="optimized")`` on an evaluation grid fixed in advance (the band is calibrated
    only on points that do not depend on the values). ArviZ 1.x: the band of
    ``arviz_stats.ecdf_utils.ecdf_pit``, the one ``arviz_plots.plot_ecdf_pit(method="envelope")``
    draws; that plot is not called because in arviz-plots 1.3 its envelope method fails
    (``np.linspace`` given a DataArray) and it draws one figure of its own rather than on ``ax``.

    Args:
        pit_values: (n,) values in [0, 1], e.g. SBC's randomised PIT of one parameter.
        ax: a matplotlib Axes.
        ci_prob: probability of the simultaneous band.
        seed: seed of the band's simulations (1.x always simulates; 0.x only for discrete data).
        color: colour of the curve and band.
    """
    pit = np.ravel(np.asarray(pit_values, dtype=float))
    if ARVIZ_MAJOR >= 1:
        from arviz_stats.ecdf_utils import ecdf_pit

        x, ecdf, lower, upper = ecdf_pit(pit, ci_prob, 1000, rng=np.random.default_rng(seed))
        ax.fill_between(x, lower - x, upper - x, step="post", color=color, alpha=0.2, linewidth=0)
        ax.step(x, ecdf - x, where="post", color=color)
    else:
        from scipy import stats

        az.plot_ecdf(
            pit,
            cdf=stats.uniform.cdf,
            eval_points=np.linspace(0, 1, 201),
            difference=True,
            confidence_bands="optimized",
            ci_prob=ci_prob,
            random_state=seed,
            plot_kwargs={"color": color},
            fill_kwargs={"color": color, "alpha": 0.2},
            ax=ax,
        )
    ax.axhline(0.0, color="k", linewidth=0.8, linestyle=":")
    ax.set_xlim(0, 1)
