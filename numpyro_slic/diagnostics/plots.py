"""Figures: posteriors over the truth (corner), data / model / residual images, real vs generated noise,
coverage (TARP expected coverage, SBC ECDF differences).

matplotlib is imported inside each function with the Agg backend, so importing this module is cheap
and no display is needed.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from .._extras import require

__all__ = [
    "corner_plot", "residual_plot", "noise_comparison_plot", "noise_spectra_plot", "pixel_histogram_plot",
    "tarp_plot", "sbc_ecdf_plot",
]

_COLOURS = ("C3", "C0", "C2", "C1", "C4")


def _pyplot():
    matplotlib = require("matplotlib", "plots")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "plots")

    return plt


def _save(fig, path):
    from ..data.io import atomic_write

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))


def corner_plot(
    posteriors: Mapping[str, Mapping[str, np.ndarray]],
    truth: Mapping[str, float] | None,
    params: Sequence[str],
    path: str,
) -> None:
    """Overlaid corner plots of several posteriors (name -> {param: draws}) with the truth marked.

    ``truth=None`` (real data) draws the posteriors only.
    """
    corner = require("corner", "plots")

    plt = _pyplot()
    names = list(posteriors)
    arrays = {n: np.column_stack([np.ravel(posteriors[n][p]) for p in params]) for n in names}
    # Common ranges so that every posterior is visible, with the truth inside.
    marks = [np.array([truth[p] for p in params])] if truth is not None else []
    lo = np.min([a.min(0) for a in arrays.values()] + marks, axis=0)
    hi = np.max([a.max(0) for a in arrays.values()] + marks, axis=0)
    pad = 0.05 * (hi - lo + 1e-12)
    ranges = list(zip(lo - pad, hi + pad))
    fig = None
    for name, colour in zip(names, _COLOURS):
        fig = corner.corner(
            arrays[name],
            fig=fig,
            labels=[p.replace("_", " ") for p in params],
            range=ranges,
            color=colour,
            plot_datapoints=False,
            plot_density=False,
            levels=(0.393, 0.865),  # 1 and 2 sigma of a 2-d Gaussian
            hist_kwargs={"density": True},
            smooth=1.0,
        )
    handles = [plt.Line2D([], [], color=c, label=n) for n, c in zip(names, _COLOURS)]
    if truth is not None:
        corner.overplot_lines(fig, [truth[p] for p in params], color="k", linestyle="--")
        handles.append(plt.Line2D([], [], color="k", linestyle="--", label="truth"))
    fig.legend(handles=handles, loc="upper right", fontsize=11, frameon=False)
    _save(fig, path)
    plt.close(fig)


def residual_plot(data: np.ndarray, model: np.ndarray, path: str) -> None:
    """Data, model and residual images side by side (pixel units of the data)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    vmax = np.percentile(np.abs(data), 99.5)
    for ax, img, title in zip(axes, (data, model, data - model), ("data", "model (posterior median)", "residual")):
        lim = vmax if title != "residual" else np.percentile(np.abs(data - model), 99.5)
        im = ax.imshow(img, origin="lower", cmap="RdBu_r" if title == "residual" else "magma",
                       vmin=-lim if title == "residual" else None, vmax=lim)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046)
    _save(fig, path)
    plt.close(fig)


def noise_comparison_plot(
    real: np.ndarray, generated: np.ndarray, path: str, *, shuffle_seed: int = 0, show_key: bool = True
) -> list[str]:
    """The "which one is real?" figure: real and generated patches in a shuffled grid.

    Args:
        real: patches, shape (n, H, W) each; the first min(n_real, n_generated) of each.
        generated: as ``real``.
        path: image file to write.
        shuffle_seed: seed of the panel order.
        show_key: write the answer key in a small caption under the figure (R/G per panel,
            row-major). False for a figure shown to people who are to guess; give them the key later.

    Returns the answer key, one "real"/"generated" per panel, row-major.
    """
    plt = _pyplot()
    n = min(len(real), len(generated))
    panels = [(p, "real") for p in real[:n]] + [(p, "generated") for p in generated[:n]]
    order = np.random.default_rng(shuffle_seed).permutation(len(panels))
    panels = [panels[i] for i in order]
    cols = min(4, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.6 * rows), squeeze=False)
    lim = np.percentile(np.abs(real[:n]), 99.5)
    for ax, (img, _) in zip(axes.ravel(), panels):
        ax.imshow(img, origin="lower", cmap="gray", vmin=-lim, vmax=lim)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    key = [label for _, label in panels]
    if show_key:
        fig.text(0.5, -0.02, "key: " + " ".join("R" if k == "real" else "G" for k in key), ha="center", fontsize=8)
    _save(fig, path)
    plt.close(fig)
    return key


_SPECTRA_PANELS = (("radial", "radial average, |k|"), ("kx_marginal", "mean over ky, |kx|"),
                   ("ky_marginal", "mean over kx, |ky|"), ("kx_cut_ky0", "cut ky = 0, |kx| (stripes)"))


def noise_spectra_plot(
    k: np.ndarray,
    spectra: Mapping[str, Mapping[str, np.ndarray]],
    path: str,
    *,
    styles: Mapping[str, tuple[str, str, str]],
    reference: str = "real",
    extra_ratios: Mapping[str, tuple[Mapping[str, np.ndarray], str]] | None = None,
    title: str = "",
) -> None:
    """Mean power spectra (top, log) and their ratios to ``reference`` (bottom) of several sets.

    Args:
        k: |k| in cycles per pixel of each spectrum point.
        spectra: set name -> ``noise.fidelity.spectra`` dict (radial, kx / ky marginals, cuts).
        styles: set name -> (colour, line style, legend label); sets are drawn in this order.
        extra_ratios: label -> (ratio dict, colour) drawn in the ratio panels only (a control).
    """
    plt = _pyplot()
    fig, axes = plt.subplots(2, len(_SPECTRA_PANELS), figsize=(4.2 * len(_SPECTRA_PANELS), 6.5), sharex=True,
                             gridspec_kw={"height_ratios": [2, 1.3]})
    for j, (s, panel_title) in enumerate(_SPECTRA_PANELS):
        for name, (c, ls, label) in styles.items():
            axes[0, j].plot(k, spectra[name][s], color=c, ls=ls, label=label)
            if name != reference:
                axes[1, j].plot(k, np.asarray(spectra[name][s]) / np.asarray(spectra[reference][s]), color=c, ls=ls)
        for label, (ratios, c) in (extra_ratios or {}).items():
            axes[1, j].plot(k, ratios[s], color=c, lw=0.8, label=label)
        axes[1, j].axhline(1, color="k", lw=0.6)
        axes[0, j].set_yscale("log")
        axes[0, j].set_title(panel_title, fontsize=10)
        axes[1, j].set_xlabel("cycles / pixel")
    axes[0, 0].set_ylabel("mean power (trained units$^2$)")
    axes[1, 0].set_ylabel(f"ratio to {reference}")
    axes[0, 0].legend(fontsize=7, frameon=False)
    if extra_ratios:
        axes[1, 0].legend(fontsize=7, frameon=False)
    fig.suptitle(title)
    _save(fig, path)
    plt.close(fig)


def pixel_histogram_plot(
    sets: Mapping[str, np.ndarray], path: str, *, styles: Mapping[str, tuple[str, str, str]],
    reference: str = "real", title: str = "",
) -> None:
    """Pixel histograms (log density) of several sets, with N(median, robust sigma) of ``reference``."""
    from scipy import stats

    from ..data.stats import robust_sigma

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(-7, 7, 113)
    centres = 0.5 * (bins[1:] + bins[:-1])
    for name, (c, ls, label) in styles.items():
        dens, _ = np.histogram(np.ravel(sets[name]), bins=bins, density=True)
        ax.step(centres, np.where(dens > 0, dens, np.nan), where="mid", color=c, ls=ls, label=label)
    ref = np.ravel(sets[reference])
    rs = robust_sigma(ref)
    ax.plot(centres, stats.norm.pdf(centres, np.median(ref), rs), color="0.6", lw=0.8,
            label=f"N(median, robust sigma {rs:.2f})")
    ax.set_yscale("log")
    ax.set_ylim(1e-6, 1)
    ax.set_xlabel("pixel value (trained units)")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=7, frameon=False)
    _save(fig, path)
    plt.close(fig)


def tarp_plot(results: Mapping[str, "TarpResult"], path: str, *, band_prob: float = 0.95) -> None:
    """Expected coverage (TARP) of several likelihoods on one axes, against the diagonal.

    Each curve comes with its pointwise bootstrap band (``band_prob``); the legend gives its ATC
    (> 0 under-confident, < 0 over-confident) and the KS p-value of f against U(0, 1).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 5))
    ax.plot([0, 1], [0, 1], color="k", linestyle="--", linewidth=1, label="calibrated")
    for (name, res), colour in zip(results.items(), _COLOURS * (len(results) // len(_COLOURS) + 1)):
        lo, hi = res.band(band_prob)
        ax.fill_between(res.alpha, lo, hi, color=colour, alpha=0.2, linewidth=0)
        ax.plot(res.alpha, res.ecp, color=colour,
                label=f"{name} ({res.f.size}): ATC {res.atc:+.3f}, KS p {res.ks_pvalue:.2g}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("credibility level")
    ax.set_ylabel("expected coverage")
    ax.set_title(f"TARP (injections in brackets; {100 * band_prob:g}% bootstrap bands)", fontsize=10)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    _save(fig, path)
    plt.close(fig)


def sbc_ecdf_plot(sbc_result: "SBCResult", path: str, *, ci_prob: float = 0.95) -> None:
    """SBC: per parameter, ECDF minus the uniform CDF of the rank PIT, with ArviZ's simultaneous
    ``ci_prob`` band (one panel per parameter).

    Reading it: a curve above zero throughout = truths low among the draws (posterior biased high),
    below = biased low; above then below = a U-shaped PIT (too narrow, over-confident); below then
    above = a hump (too wide, under-confident).
    """
    from .arviz_io import plot_ecdf_difference

    plt = _pyplot()
    d = len(sbc_result.names)
    cols = min(d, 4)
    rows = int(np.ceil(d / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False, sharey=True,
                             constrained_layout=True)
    for j, ax in enumerate(axes.ravel()):
        if j >= d:
            ax.axis("off")
            continue
        plot_ecdf_difference(sbc_result.pit[:, j], ax=ax, ci_prob=ci_prob)
        ax.set_title(f"{sbc_result.names[j]}  (KS p {sbc_result.pvalues[j]:.2g})", fontsize=9)
        ax.set_xlabel("PIT")
    for ax in axes[:, 0]:
        ax.set_ylabel("ECDF - PIT")
    fig.suptitle(f"SBC, {sbc_result.ranks.shape[0]} injections, {sbc_result.num_ranks} ranks, {100 * ci_prob:g}% simultaneous bands", fontsize=10)
    _save(fig, path)
    plt.close(fig)
