"""Coverage metrics on arrays of posterior draws from many injections: TARP, SBC and a verdict.

Shapes throughout: ``samples`` (n_inj, n_draws, d) holds each injection's posterior draws, all
chains pooled; ``truths`` (n_inj, d) the parameters each injection's data were simulated from.

Both tests reduce each injection to one number that is U(0, 1) when the posterior is calibrated:

- TARP (Lemos et al. 2023, arXiv:2302.03026): f_i, the posterior mass of the ball around a random
  reference point that reaches the truth. Multivariate, one number per injection.
- SBC (Talts et al. 2018, arXiv:1804.06788): the rank of each parameter's truth among its draws.
  One number per injection and parameter.

Both are turned into randomised PIT values, (count + u) / (n + 1) with u ~ U(0, 1), where count
is one of n + 1 equally likely values under calibration: the PIT is then exactly U(0, 1) under
calibration for any number of draws, so a KS test needs no correction for ties and an ECP curve
runs from exactly 0 at alpha = 0 to exactly 1 at alpha = 1.

The pitfalls of the reference TARP package (tarp 0.1.3) avoided here: its reference points live in
[0, 1]^d whatever the scale of theta (here they are drawn in the truths' box, so rescaling theta
changes nothing); it reseeds the generator in every bootstrap iteration (here one stream, so the
bootstrap curves are all distinct). SBC ranks pool all chains and thin them evenly (simuk 0.3 ranks
chain 0 only, unthinned).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy import integrate, stats

__all__ = ["as_draws", "tarp", "TarpResult", "sbc", "SBCResult", "coverage_verdict"]

# Fewest draws per injection that TARP and SBC accept: below this f and the ranks are too coarse
# for the tests to mean anything.
MIN_DRAWS = 10
# SBC's default number of thinned draws L: the largest of these that fits in n_draws. 99 draws
# (100 ranks) resolve a PIT far finer than a few hundred injections can test, and thinning to
# fewer draws than the chains hold keeps autocorrelated draws from bending the rank histogram.
_SBC_DEFAULT_L = (99, 49, 19, 9)


# ---------------------------------------------------------------------------------------- draws
def as_draws(posterior: Any, var_names: Sequence[str] | None = None, *, thin: int = 1) -> tuple[np.ndarray, list[str]]:
    """One injection's posterior as a (n_draws, d) array of scalar parameters, all chains pooled.

    Args:
        posterior: one of
            - an array (n_draws, d), or (chains, draws, d);
            - a dict name -> array (chains, draws) or (draws,), one scalar parameter each;
            - an ArviZ InferenceData (0.x) or DataTree (1.x): its ``posterior`` group, whose
              vector-valued variables become one column per element, named ``name[i]``
              (``name[i,j]`` for matrices);
            - a NumPyro MCMC after ``run`` (``get_samples(group_by_chain=True)``), flattened the
              same way.
        var_names: for dicts, InferenceData and MCMC, the variables to keep, in this order (default:
            all, in their stored order); for arrays, the names of the d columns (default
            ``theta[0]``, ...).
        thin: keep every ``thin``-th draw of each chain.

    Returns:
        draws: float array (n_chains * ceil(n_per_chain / thin), d), chain by chain.
        names: the d column names.
    """
    if not isinstance(thin, (int, np.integer)) or thin < 1:
        raise ValueError(f"as_draws: thin must be a positive integer, got {thin!r}.")
    grouped = _grouped_arrays(posterior, var_names)
    if grouped is None:  # a plain array
        arr = np.asarray(posterior, dtype=float)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise ValueError(f"as_draws: an array must be (n_draws, d) or (chains, draws, d), got shape {arr.shape}.")
        d = arr.shape[-1]
        names = list(var_names) if var_names is not None else [f"theta[{i}]" for i in range(d)]
        if len(names) != d:
            raise ValueError(f"as_draws: {len(names)} names for an array with d = {d} columns.")
        return arr[:, ::thin].reshape(-1, d), names
    columns, names = [], []
    shapes = {name: a.shape[:2] for name, a in grouped.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"as_draws: variables have different (chains, draws) shapes: {shapes}.")
    for name, a in grouped.items():
        a = a[:, ::thin]
        flat = a.reshape(a.shape[0] * a.shape[1], -1)
        columns.append(flat)
        if a.ndim == 2:
            names.append(name)
        else:
            names += [f"{name}[{','.join(map(str, ix))}]" for ix in np.ndindex(*a.shape[2:])]
    if not columns:
        raise ValueError("as_draws: no variables selected.")
    return np.concatenate(columns, axis=1), names


def _grouped_arrays(posterior: Any, var_names: Sequence[str] | None) -> dict[str, np.ndarray] | None:
    """name -> float array (chains, draws, *event) for the structured inputs; None for an array."""
    from numpyro.infer import MCMC

    if isinstance(posterior, MCMC):
        found = {k: np.asarray(v, dtype=float) for k, v in posterior.get_samples(group_by_chain=True).items()}
    elif hasattr(posterior, "posterior"):
        # InferenceData (0.x) and DataTree (1.x) both index their groups by name; the group's
        # variables are xarray objects with named chain and draw dimensions.
        group = posterior["posterior"]
        found = {
            str(k): np.asarray(group[k].transpose("chain", "draw", ...).values, dtype=float)
            for k in group.data_vars
        }
    elif isinstance(posterior, Mapping):
        found = {}
        bad = []
        for k, v in posterior.items():
            a = np.asarray(v, dtype=float)
            if a.ndim == 1:
                a = a[None]
            if a.ndim != 2:
                bad.append(f"{k} {a.shape}")
            found[str(k)] = a
        if bad:
            raise ValueError(
                "as_draws: a dict holds scalar parameters only, each (chains, draws) or (draws,); "
                f"non-scalar: {', '.join(bad)}. Pass an InferenceData or MCMC to flatten vector "
                "sites, or split them into scalar entries."
            )
    else:
        return None
    if var_names is None:
        return found
    missing = [n for n in var_names if n not in found]
    if missing:
        raise ValueError(f"as_draws: variables {missing} not in the posterior (has {list(found)}).")
    return {n: found[n] for n in var_names}


# ---------------------------------------------------------------------------------------- checks
def _check(samples, truths, caller: str) -> tuple[np.ndarray, np.ndarray]:
    samples = np.asarray(samples, dtype=float)
    truths = np.asarray(truths, dtype=float)
    if samples.ndim != 3:
        raise ValueError(f"{caller}: samples must be (n_inj, n_draws, d), got shape {samples.shape}.")
    if truths.ndim != 2:
        raise ValueError(f"{caller}: truths must be (n_inj, d), got shape {truths.shape}.")
    if samples.shape[0] != truths.shape[0]:
        raise ValueError(f"{caller}: {samples.shape[0]} injections in samples but {truths.shape[0]} in truths.")
    if samples.shape[2] != truths.shape[1]:
        raise ValueError(f"{caller}: d = {samples.shape[2]} parameters in samples but {truths.shape[1]} in truths.")
    if samples.shape[0] < 2:
        raise ValueError(f"{caller}: needs at least 2 injections, got {samples.shape[0]}.")
    if samples.shape[1] < MIN_DRAWS:
        raise ValueError(f"{caller}: needs at least {MIN_DRAWS} draws per injection, got {samples.shape[1]}.")
    for name, a in (("samples", samples), ("truths", truths)):
        bad = ~np.isfinite(a)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            raise ValueError(f"{caller}: {name} has NaN or inf in injections {rows[:10].tolist()}{' ...' if rows.size > 10 else ''}.")
    return samples, truths


def _generator(key) -> np.random.Generator:
    """A numpy Generator from an int seed, a numpy Generator (used as is) or a JAX PRNG key."""
    if isinstance(key, np.random.Generator):
        return key
    if isinstance(key, (int, np.integer)):
        return np.random.default_rng(int(key))
    import jax

    data = jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.random.default_rng(np.asarray(data, dtype=np.uint32).ravel().tolist())


def _pit(counts: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Randomised PIT of counts in {0, ..., n}: (count + u) / (n + 1), u ~ U[0, 1), in [0, 1)."""
    return (counts + rng.random(counts.shape)) / (n + 1)


# ------------------------------------------------------------------------------------------ TARP
@dataclass(frozen=True, eq=False)
class TarpResult:
    """TARP expected coverage of one posterior over many injections.

    Attributes:
        alpha: (num_alpha,) credibility levels, 0 to 1 inclusive.
        ecp: (num_alpha,) expected coverage probability: the fraction of injections whose truth
            lies inside the alpha-credible ball around their reference point.
        ecp_bootstrap: (num_bootstrap, num_alpha) ECP of injections resampled with replacement.
        f: (n_inj,) per injection, the posterior mass closer to the reference point than the truth
            is (randomised PIT, see the module docstring); U(0, 1) under calibration.
        atc: area between ECP and the diagonal, integral of (ECP - alpha) d alpha, in [-0.5, 0.5].
            > 0: the truth is covered more often than claimed (under-confident, too wide);
            < 0: over-confident (too narrow). A dispersion error seen from references far from
            the posterior bends ECP both ways and can leave ATC near 0: read it with ks_pvalue.
        ks_pvalue: KS test of f against U(0, 1); small = miscalibrated in some way.
    """

    alpha: np.ndarray
    ecp: np.ndarray
    ecp_bootstrap: np.ndarray
    f: np.ndarray
    atc: float
    ks_pvalue: float

    def band(self, prob: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise bootstrap band of the ECP: (lower, upper), each (num_alpha,)."""
        lo, hi = np.quantile(self.ecp_bootstrap, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        return lo, hi

    def atc_interval(self, prob: float = 0.95) -> tuple[float, float]:
        """Bootstrap percentile interval of the ATC."""
        atc_b = integrate.trapezoid(self.ecp_bootstrap - self.alpha, self.alpha, axis=1)
        lo, hi = np.quantile(atc_b, [(1 - prob) / 2, (1 + prob) / 2])
        return float(lo), float(hi)

    def to_dict(self) -> dict:
        """JSON-ready: lists and floats, with the 95% band and ATC interval."""
        lo, hi = self.band(0.95)
        return {
            "alpha": self.alpha.tolist(),
            "ecp": self.ecp.tolist(),
            "ecp_band95_lower": lo.tolist(),
            "ecp_band95_upper": hi.tolist(),
            "ecp_bootstrap": self.ecp_bootstrap.tolist(),
            "f": self.f.tolist(),
            "atc": self.atc,
            "atc_interval95": list(self.atc_interval(0.95)),
            "ks_pvalue": self.ks_pvalue,
            "n_inj": int(self.f.size),
        }


def tarp(
    samples,
    truths,
    *,
    key,
    num_alpha: int = 101,
    num_bootstrap: int = 200,
    references: str | np.ndarray = "uniform",
    norm: bool = True,
) -> TarpResult:
    """TARP coverage test (Lemos et al. 2023) of posteriors over many injections.

    Args:
        samples: (n_inj, n_draws, d) posterior draws per injection, chains pooled.
        truths: (n_inj, d) true parameters.
        key: int seed, numpy Generator or JAX PRNG key. Three independent streams are spawned from
            it: reference points, PIT jitter, bootstrap; so num_bootstrap does not change f.
        num_alpha: number of credibility levels on [0, 1], ends included.
        num_bootstrap: number of bootstrap resamples of the injections.
        references: "uniform": one reference point per injection, uniform over the box spanned by
            the truths (min to max per parameter), so the references move with theta's scale and
            location; or an (n_inj, d) array of reference points in theta's units.
        norm: measure distances after mapping each parameter by (x - min) / (max - min) of the
            truths (samples, truths and references alike), so that parameters of different units
            weigh alike. With norm=False distances are in theta's own units.

    Returns a TarpResult.
    """
    samples, truths = _check(samples, truths, "tarp")
    n_inj, n_draws, d = samples.shape
    if num_alpha < 2:
        raise ValueError(f"tarp: num_alpha must be >= 2, got {num_alpha}.")
    if num_bootstrap < 1:
        raise ValueError(f"tarp: num_bootstrap must be >= 1, got {num_bootstrap}.")
    rng_ref, rng_pit, rng_boot = _generator(key).spawn(3)
    lo, hi = truths.min(0), truths.max(0)
    width = hi - lo
    if norm and np.any(width <= 0):
        raise ValueError(f"tarp: with norm=True every parameter's truths must vary; constant: {np.nonzero(width <= 0)[0].tolist()}.")
    if isinstance(references, str):
        if references != "uniform":
            raise ValueError(f"tarp: references must be 'uniform' or an (n_inj, d) array, got {references!r}.")
        refs = lo + rng_ref.random((n_inj, d)) * width
    else:
        refs = np.asarray(references, dtype=float)
        if refs.shape != (n_inj, d):
            raise ValueError(f"tarp: references must have shape {(n_inj, d)}, got {refs.shape}.")
    if norm:
        samples, truths, refs = ((x - lo) / width for x in (samples, truths, refs))
    dist_draws = np.linalg.norm(samples - refs[:, None, :], axis=-1)  # (n_inj, n_draws)
    dist_truth = np.linalg.norm(truths - refs, axis=-1)  # (n_inj,)
    closer = (dist_draws < dist_truth[:, None]).sum(1)
    f = _pit(closer, n_draws, rng_pit)

    alpha = np.linspace(0.0, 1.0, num_alpha)
    below = (f[:, None] < alpha).astype(float)  # (n_inj, num_alpha): truth inside the alpha ball
    ecp = below.mean(0)
    # A bootstrap resample is a multinomial count per injection; all resamples come from one
    # stream, so every curve is a fresh draw.
    counts = rng_boot.multinomial(n_inj, np.full(n_inj, 1.0 / n_inj), size=num_bootstrap)
    ecp_bootstrap = counts @ below / n_inj
    atc = float(integrate.trapezoid(ecp - alpha, alpha))
    ks_pvalue = float(stats.kstest(f, "uniform").pvalue)
    return TarpResult(alpha=alpha, ecp=ecp, ecp_bootstrap=ecp_bootstrap, f=f, atc=atc, ks_pvalue=ks_pvalue)


# ------------------------------------------------------------------------------------------- SBC
@dataclass(frozen=True, eq=False)
class SBCResult:
    """Simulation-based calibration ranks and per-parameter uniformity tests.

    Attributes:
        ranks: (n_inj, d) ints in {0, ..., num_ranks - 1}: how many of the L = num_ranks - 1
            thinned draws lie below the truth. High ranks: the posterior sits below the truth.
        pit: (n_inj, d) randomised PIT (rank + u) / num_ranks, U(0, 1) under calibration.
        num_ranks: L + 1, the number of possible ranks.
        names: the d parameter names.
        pvalues: (d,) KS test of each parameter's PIT against U(0, 1).
        pvalue: Bonferroni-adjusted overall p-value, min(1, d * min(pvalues)).
    """

    ranks: np.ndarray
    pit: np.ndarray
    num_ranks: int
    names: list[str]
    pvalues: np.ndarray
    pvalue: float

    def to_dict(self) -> dict:
        """JSON-ready: lists and floats."""
        return {
            "names": list(self.names),
            "num_ranks": self.num_ranks,
            "ranks": self.ranks.tolist(),
            "pvalues": dict(zip(self.names, self.pvalues.tolist())),
            "pvalue": self.pvalue,
            "test": "KS of the randomised PIT against U(0, 1), Bonferroni over parameters",
            "n_inj": int(self.ranks.shape[0]),
        }


def sbc(samples, truths, *, num_ranks: int | None = None, names: Sequence[str] | None = None, key=0) -> SBCResult:
    """Simulation-based calibration (Talts et al. 2018) of posteriors over many injections.

    Each injection's draws (chains pooled) are thinned to L evenly spaced draws and the truth ranked
    among them, per parameter. Uniformity is tested by a KS test of the randomised PIT
    (rank + u) / (L + 1) rather than a chi-square on binned ranks: the jitter makes the PIT exactly
    U(0, 1) under calibration, so the KS p-value is exact, and with no bins to choose the test keeps
    its power against the smooth deviations miscalibration makes (a shift of the PIT's centre for a
    bias, a U or a hump for too narrow or too wide posteriors).

    Args:
        samples: (n_inj, n_draws, d) posterior draws, chains pooled.
        truths: (n_inj, d) true parameters.
        num_ranks: L + 1, with L <= n_draws; default L = the largest of 99, 49, 19, 9 that fits.
            L should not exceed the effective sample size of each injection's draws: correlated
            draws make the ranks non-uniform even for an exact posterior.
        names: the d parameter names (default theta[0], ...).
        key: seed (int, numpy Generator or JAX key) of the PIT jitter.

    Returns an SBCResult.
    """
    samples, truths = _check(samples, truths, "sbc")
    n_inj, n_draws, d = samples.shape
    if num_ranks is None:
        L = next(L for L in _SBC_DEFAULT_L if L <= n_draws)
    elif not 2 <= num_ranks <= n_draws + 1:
        raise ValueError(f"sbc: num_ranks must be in [2, n_draws + 1] = [2, {n_draws + 1}], got {num_ranks}.")
    else:
        L = int(num_ranks) - 1
    names = list(names) if names is not None else [f"theta[{i}]" for i in range(d)]
    if len(names) != d:
        raise ValueError(f"sbc: {len(names)} names for d = {d} parameters.")
    keep = np.round(np.linspace(0, n_draws - 1, L)).astype(int)  # distinct, since L <= n_draws
    ranks = (samples[:, keep, :] < truths[:, None, :]).sum(1)
    pit = _pit(ranks, L, _generator(key))
    pvalues = np.array([stats.kstest(pit[:, j], "uniform").pvalue for j in range(d)])
    return SBCResult(
        ranks=ranks, pit=pit, num_ranks=L + 1, names=names, pvalues=pvalues, pvalue=float(min(1.0, d * pvalues.min()))
    )


# --------------------------------------------------------------------------------------- verdict
def coverage_verdict(tarp_result: TarpResult | None = None, sbc_result: SBCResult | None = None, alpha: float = 0.05) -> dict:
    """Pass/fail of a posterior's calibration from TARP and/or SBC.

    ``alpha`` is the family-wise false-alarm rate: it is split evenly (Bonferroni) between the tests
    given, TARP's KS test and SBC's Bonferroni-adjusted p-value. The TARP ATC and the SBC PIT means
    are reported as the direction of a failure, not tested on their own.

    Returns a dict: passed (bool), alpha, level (the threshold each test's p-value met), reasons
    (one line per check), and the numbers checked: tarp_ks_pvalue, tarp_atc, sbc_pvalue,
    sbc_pvalues (per parameter).
    """
    tests = [r for r in (tarp_result, sbc_result) if r is not None]
    if not tests:
        raise ValueError("coverage_verdict: give a TarpResult, an SBCResult or both.")
    if not 0 < alpha < 1:
        raise ValueError(f"coverage_verdict: alpha must be in (0, 1), got {alpha}.")
    level = alpha / len(tests)
    passed, reasons = True, []
    out: dict[str, Any] = {}
    if tarp_result is not None:
        p, atc = tarp_result.ks_pvalue, tarp_result.atc
        direction = "under-confident" if atc > 0 else "over-confident"
        ok = p >= level
        passed &= ok
        reasons.append(
            f"TARP: KS p = {p:.3g} {'>=' if ok else '<'} {level:.3g}; ATC = {atc:+.3f} (sign alone: {direction})"
        )
        out.update(tarp_ks_pvalue=p, tarp_atc=atc)
    if sbc_result is not None:
        d = len(sbc_result.names)
        ok = sbc_result.pvalue >= level
        passed &= ok
        line = f"SBC: Bonferroni p = {sbc_result.pvalue:.3g} {'>=' if ok else '<'} {level:.3g}"
        bad = [j for j in range(d) if d * sbc_result.pvalues[j] < level]
        if bad:
            # Mean PIT above 1/2: the truth sits above most draws, the posterior is biased low.
            line += "; flagged: " + ", ".join(
                f"{sbc_result.names[j]} (p = {sbc_result.pvalues[j]:.2g}, mean PIT {sbc_result.pit[:, j].mean():.2f})"
                for j in bad
            )
        reasons.append(line)
        out.update(sbc_pvalue=sbc_result.pvalue, sbc_pvalues=dict(zip(sbc_result.names, sbc_result.pvalues.tolist())))
    return {"passed": bool(passed), "alpha": alpha, "level": level, "reasons": reasons, **out}
