"""From injection results on disk to verdicts, a JSON report and the figures.

``coverage_report(out_dir)`` reads every likelihood's batches (``runner.load_results``), keeps the
converged injections (the others are counted and listed, never used), runs TARP and SBC on them and
writes ``coverage.json``, ``tarp.png`` (all likelihoods on one plot) and ``sbc_<likelihood>.png``.
"""

from __future__ import annotations

import glob
import os

import numpy as np

from .metrics import coverage_verdict, sbc, tarp
from .runner import _slug, load_results

__all__ = ["coverage_report", "likelihoods_in", "markdown_table"]

# SBC ranks among L thinned draws; L + 1 is picked from these, the largest that the injections'
# effective sample size supports (ranks among autocorrelated draws are not uniform).
_RANK_CHOICES = (100, 50, 20, 10)


def likelihoods_in(out_dir: str) -> list[str]:
    """The likelihoods that have batch files under ``out_dir``, in the order white, stationary, SLIC."""
    import json

    names = set()
    for path in glob.glob(os.path.join(out_dir, "*", "batch_*.npz")):
        with np.load(path, allow_pickle=False) as f:
            names.add(json.loads(str(f["metadata"]))["likelihood"])
    order = {"white Gaussian": 0, "stationary Gaussian": 1, "SLIC": 2}
    return sorted(names, key=lambda n: (order.get(n, 3), n))


def coverage_report(
    out_dir: str,
    likelihoods: list[str] | None = None,
    *,
    seed: int = 0,
    alpha: float = 0.05,
    figures: bool = True,
) -> dict:
    """TARP and SBC verdicts of every likelihood under ``out_dir``; writes coverage.json and figures.

    Args:
        out_dir: a ``run_injections`` output folder (several runs or hosts merged are fine).
        likelihoods: which to report (default: all found).
        seed: seeds TARP's reference points and bootstrap and the PIT jitter.
        alpha: false-alarm rate of each verdict.
        figures: write tarp.png and sbc_<likelihood>.png.

    Returns the report dict (also in ``out_dir/coverage.json``): per likelihood the injection counts
    (run, converged, left out with their ids), the median R-hat / ESS / divergences, TARP (ATC, KS p,
    the ECP curve), SBC (p per parameter) and the verdict.
    """
    from ..data.io import atomic_write_json

    likelihoods = likelihoods or likelihoods_in(out_dir)
    if not likelihoods:
        raise FileNotFoundError(f"coverage_report: no injection results under {out_dir!r}; run `numpyro-slic coverage` first.")
    report, tarps, sbcs = {"out_dir": out_dir, "alpha": alpha, "likelihoods": {}}, {}, {}
    for name in likelihoods:
        res = load_results(out_dir, name)
        ok = res.converged
        n_ok = int(ok.sum())
        entry = {
            "metadata": res.metadata,
            "injections": int(len(res.ids)),
            "converged": n_ok,
            "not_converged_ids": [int(i) for i in res.ids[~ok]],
            "draws_per_injection": int(res.draws.shape[1] * res.draws.shape[2]),
            "median_max_rhat": float(np.median(res.rhat.max(axis=1))),
            "median_min_ess_bulk": float(np.median(res.ess_bulk.min(axis=1))),
            "injections_with_divergences": int((res.divergences > 0).sum()),
            "mean_leapfrog_steps": float(res.num_steps.mean()),
            "sampling_seconds": float(res.seconds.sum()),
        }
        if n_ok < 10:
            entry["verdict"] = {"passed": None, "reasons": [f"only {n_ok} converged injections: too few to test"]}
            report["likelihoods"][name] = entry
            continue
        samples = res.draws[ok].reshape(n_ok, -1, res.draws.shape[-1])
        truths = res.truths[ok]
        min_ess = float(np.median(res.ess_bulk[ok].min(axis=1)))
        ranks = next((r for r in _RANK_CHOICES if r - 1 <= min(min_ess, samples.shape[1])), _RANK_CHOICES[-1])
        tarps[name] = tarp(samples, truths, key=seed)
        sbcs[name] = sbc(samples, truths, num_ranks=ranks, names=list(res.params), key=seed)
        # The 95% band stays; the raw bootstrap curves (200 x 101 numbers) do not belong in a report.
        entry["tarp"] = {k: v for k, v in tarps[name].to_dict().items() if k != "ecp_bootstrap"}
        entry["sbc"] = sbcs[name].to_dict()
        entry["verdict"] = coverage_verdict(tarps[name], sbcs[name], alpha=alpha)
        # How far the posterior means sit from the truth, in posterior sds: ~0.8 when calibrated.
        z = (samples.mean(axis=1) - truths) / samples.std(axis=1)
        entry["mean_abs_z"] = {p: float(np.mean(np.abs(z[:, j]))) for j, p in enumerate(res.params)}
        entry["rms_z"] = {p: float(np.sqrt(np.mean(z[:, j] ** 2))) for j, p in enumerate(res.params)}
        report["likelihoods"][name] = entry
    if figures and tarps:
        from ..diagnostics.plots import sbc_ecdf_plot, tarp_plot

        report["figures"] = [os.path.join(out_dir, "tarp.png")]
        tarp_plot(tarps, report["figures"][0])
        for name, result in sbcs.items():
            path = os.path.join(out_dir, f"sbc_{_slug(name)}.png")
            sbc_ecdf_plot(result, path)
            report["figures"].append(path)
    atomic_write_json(os.path.join(out_dir, "coverage.json"), report, indent=1, default=_json_default)
    return report


def markdown_table(report: dict) -> str:
    """The verdicts of a ``coverage_report`` as a markdown table, one row per likelihood."""
    rows = ["| likelihood | injections (converged) | TARP ATC | TARP KS p | SBC p (Bonferroni) | "
            "parameters flagged by SBC | mean abs(mean - truth) / sd | verdict |",
            "|---|---|---|---|---|---|---|---|"]
    for name, entry in report["likelihoods"].items():
        verdict = {True: "calibrated", False: "**not calibrated**", None: "untested"}[entry["verdict"]["passed"]]
        if "tarp" not in entry:
            rows.append(f"| {name} | {entry['injections']} ({entry['converged']}) | | | | | | {verdict} |")
            continue
        level = entry["verdict"]["level"]
        d = len(entry["sbc"]["pvalues"])
        flagged = ", ".join(p for p, v in entry["sbc"]["pvalues"].items() if d * v < level) or "none"
        mean_z = sum(entry["mean_abs_z"].values()) / len(entry["mean_abs_z"])
        rows.append(f"| {name} | {entry['injections']} ({entry['converged']}) | {entry['tarp']['atc']:+.3f} | "
                    f"{entry['tarp']['ks_pvalue']:.2g} | {entry['sbc']['pvalue']:.2g} | {flagged} | {mean_z:.2f} | {verdict} |")
    return "\n".join(rows)


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
