"""Noise survey of every real sky source in shared/data: marginals, tails, correlations, stripes, anisotropy.

    python benchmarks/noise_survey.py [--data-dir /work/shared/data] [--out benchmarks/results/noise_survey.json]
                                      [--figures docs/figures] [--sources jwst-f115w hst-scarlet-cut-hst ...]

About a minute on 2 CPU cores. Writes the JSON (atomically, with this command in it) and two figures,
docs/figures/noise_survey_histograms.png and docs/figures/noise_survey_anisotropy.png; the page
that reads them is docs/noise_sources.md.

Sources: the four JWST NIRCam bands of the COSMOS-Web ring field (F115W, F150W at 0.03"/px; F277W,
F444W at 0.06"/px), the three HST ACS F814W COSMOS cutouts, and the raw ground-based SAAO CCD frame.
Each is prepared exactly as scripts/make_shipped_data.py prepares it for the patch sets (its
``prepare_jwst`` / ``prepare_hst`` / ``prepare_ccd``: ``mask_sources``, the JWST extra-galaxy masks
and the ring's box, the CCD reduction), then put in robust-sigma units: z = (x - median) / robust
sigma over the unmasked sky, with x = (image - background) / noise map (JWST) or image - background.
JWST bands are measured under two whitenings: "noise_map" (the upstream noise_map.fits, the
preparation of the shipped F150W sets) and the one scripts/make_shipped_data.py uses for the new
bands ("smoothed": the noise map median-filtered 9 x 9, for F115W / F150W; "step": a two-level
map from ``noise_step_map``, for F277W / F444W, whose noise maps are floored at a constant).

Statistics (all on unmasked sky pixels; lags (dy, dx) in pixels, x along a row, y along a column):
- robust sigma, excess kurtosis (also of z clipped at +-20), skewness, |z| > 3, 4, 5 over the
  Gaussian rate with the counts above and below, and the number of distinct tail events
  (8-connected groups of |z| > 4 pixels);
- lag-1 and lag-2 correlations along rows and columns, the two diagonals, long-range correlation
  (mean over lags 4..16), the correlation function to lag 16 along each axis;
- striping: the variance of column means (over rows) and of row means (over columns) relative to
  iid noise of the same variance, and relative to what lags 1..3 along that axis explain, also
  after a running mean over 33 lines is removed from them (large-scale background changes); z
  clipped at +-5 here, so that one cosmic-ray hit does not set a line's mean;
- directional (flip) asymmetries: diagonal correlations (dy, dx) - (dy, -dx), and the reversal
  statistic E[a^2 b - a b^2] of neighbouring pairs (a, b) along x and along y (z clipped at +-5),
  which changes sign under a flip of that axis and is 0 for any Gaussian or reversible noise;
- power anisotropy: mean Hann-windowed periodogram of the fully unmasked 32 x 32 patches at
  stride 16 (each patch's mean removed; jackknife over groups of patches in 64 x 64 blocks): power on the ky = 0 axis (patterns constant along columns,
  i.e. vertical stripes) over power on the kx = 0 axis (horizontal stripes), geometric mean over
  |k| = 1..4 / 32 (low) and 1..16 / 32 (all) cycles per pixel;
- noise-level homogeneity: ``noise_step_map`` ratio along rows and along columns of the whitened sky;
- the number of non-overlapping (stride = size) and stride-8 sky patches of 32 x 32 and 64 x 64
  with no masked pixel;
- JWST: whether the noise map depends on the pixel's own value (correlation of noise_map / its
  9 x 9 median with z, and the least-squares slope of noise_map^2 on the data).
Standard errors: delete-one-block jackknife over an 8 x 8 grid of blocks (patch statistics: over
patches). The decisions (which flips and rotations each source allows) use 3 standard errors.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi
import scipy.stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import make_shipped_data as msd  # noqa: E402  (the shared preparation of every source)

from numpyro_slic.data import extract_sky_patches, noise_step_map, robust_sigma, sky_background  # noqa: E402
from numpyro_slic.data.io import atomic_write_json  # noqa: E402
from numpyro_slic.data.patchset import package_version, utc_now  # noqa: E402
from numpyro_slic.data.stats import _lag_correlation, _pairs  # noqa: E402
from numpyro_slic.noise.analytic import mean_periodogram  # noqa: E402
from numpyro_slic.noise.fidelity import spectra  # noqa: E402

GAUSS_TAIL = {s: 2.0 * scipy.stats.norm.sf(s) for s in (3, 4, 5)}
LONG_LAGS = range(4, 17)
MAX_LAG = 16
DIAGONALS = ((1, 1), (1, 2), (2, 1))
N_BLOCKS = 8
SPEC_SIZE, SPEC_STRIDE, SPEC_GROUP = 32, 16, 64
STRIPE_DETREND = 33  # lines in the running mean removed from column / row means
Z_CUT = 3.0  # standard errors for a "detected" asymmetry

SOURCES = {
    "jwst-f115w": ("jwst", "F115W"),
    "jwst-f150w": ("jwst", "F150W"),
    "jwst-f277w": ("jwst", "F277W"),
    "jwst-f444w": ("jwst", "F444W"),
    "hst-galsim-147246": ("hst", "galsim_cosmos_147246_masknoise.fits"),
    "hst-scarlet-cut-hst": ("hst", "scarlet_Cut_HST.fits"),
    "hst-scarlet-cut-hst1": ("hst", "scarlet_Cut_HST1.fits"),
    "ground-ccd-saao": ("ccd", None),
}


# ---- preparation --------------------------------------------------------------------------------


def preparations(data_dir: Path, name: str) -> tuple[dict, str, dict]:
    """name -> ({whitening: Prepared}, primary whitening, source info)."""
    kind, item = SOURCES[name]
    if kind == "jwst":
        primary = "step" if item in ("F277W", "F444W") else "smoothed"
        preps = {w: msd.prepare_jwst(data_dir, item, w) for w in ("noise_map", primary)}
    elif kind == "hst":
        primary, preps = "none", {"none": msd.prepare_hst(data_dir, item)}
    else:
        primary, preps = "none", {"none": msd.prepare_ccd(data_dir)[0]}
    p = preps[primary]
    info = {"file": p.source["source"], "upstream": p.source["upstream"], "shape": list(p.image.shape),
            "pixel_scale_arcsec": None if not np.isfinite(p.pixel_scale) else p.pixel_scale,
            "mask": p.source["mask"], "primary_whitening": primary}
    return preps, primary, info


def standardise(p) -> tuple[np.ndarray, np.ndarray, dict]:
    """z (0 at masked pixels), the usable-sky map and the units, as extract_sky_patches computes them."""
    good = ~p.mask & np.isfinite(p.image)
    background = sky_background(p.image, ~good)
    x = p.image - background
    if p.noise_map is not None:
        good &= np.isfinite(p.noise_map) & (p.noise_map > 0)
        x = np.where(good, x / np.where(good, p.noise_map, 1.0), 0.0)
    sigma = robust_sigma(x, ~good)
    median = float(np.median(x[good]))
    z = np.where(good, (x - median) / sigma, 0.0)
    return z, good, {"background": background, "robust_sigma": sigma, "median_before_scaling": median,
                     "robust_sigma_units": "of (image - background) / noise map" if p.noise_map is not None
                     else "image units",
                     "robust_sigma_image_units": robust_sigma(p.image - background, ~good)}


# ---- statistics ---------------------------------------------------------------------------------


def _reversal(z: np.ndarray, good: np.ndarray, dy: int, dx: int) -> float:
    zc = np.clip(z, -5.0, 5.0)
    a, b = _pairs(zc, dy, dx)
    ga, gb = _pairs(good, dy, dx)
    ok = ga & gb
    a, b = a[ok], b[ok]
    return float(np.mean(a * a * b - a * b * b))


def _stripes(z: np.ndarray, good: np.ndarray, corr_y: list[float], corr_x: list[float]) -> dict:
    """Variance of column / row means over iid noise's, and over what lags 1..3 along that axis give.

    z is clipped at +-5 first. Also after removing each sequence's running mean over STRIPE_DETREND lines ("detrended"), which
    takes out large-scale background changes (the depth regions' sky levels differ) and keeps
    line-to-line stripes; iid means lose a fraction 1 / STRIPE_DETREND of their variance to it.
    """
    z = np.clip(z, -5.0, 5.0)  # a line's mean must not be set by one cosmic-ray hit
    var = float(np.var(z[good]))
    out = {}
    for key, axis, corr in (("columns", 0, corr_y), ("rows", 1, corr_x)):
        n = good.sum(axis=axis)
        ok = n >= z.shape[axis] // 4
        means = (z * good).sum(axis=axis)[ok] / n[ok]
        iid = float(np.mean(var / n[ok]))
        short = float(np.mean(var / n[ok] * (1.0 + 2.0 * sum((1 - k / n[ok]) * c for k, c in zip((1, 2, 3), corr)))))
        detrended = means - ndi.uniform_filter1d(means, STRIPE_DETREND, mode="nearest")
        out[f"{key}_var_over_iid"] = float(np.var(means)) / iid
        out[f"{key}_var_over_short_range"] = float(np.var(means)) / short
        out[f"{key}_detrended_var_over_short_range"] = float(np.var(detrended)) / (short * (1 - 1 / STRIPE_DETREND))
        out[f"n_{key}"] = int(ok.sum())
    out["columns_over_rows"] = out["columns_var_over_short_range"] / out["rows_var_over_short_range"]
    out["columns_over_rows_detrended"] = (out["columns_detrended_var_over_short_range"]
                                          / out["rows_detrended_var_over_short_range"])
    return out


def scalar_stats(z: np.ndarray, good: np.ndarray) -> dict:
    """The statistics that get jackknife errors (z already standardised; recomputed on the kept pixels)."""
    v = z[good]
    med = float(np.median(v))
    rs = float(robust_sigma(v))
    u = (v - med) / rs
    out = {
        "std": float(np.std(u)),
        "excess_kurtosis": float(scipy.stats.kurtosis(u)),
        "excess_kurtosis_clipped_20sigma": float(scipy.stats.kurtosis(np.clip(u, -20, 20))),
        "skewness": float(scipy.stats.skew(u)),
    }
    for s in (3, 4, 5):
        out[f"tail_ratio_{s}sigma"] = float(np.mean(np.abs(u) > s) / GAUSS_TAIL[s])
    c = {}
    for k in (1, 2, 3):
        c[f"x{k}"] = _lag_correlation(z, good, 0, k)
        c[f"y{k}"] = _lag_correlation(z, good, k, 0)
    out.update(lag1_x=c["x1"], lag1_y=c["y1"], lag2_x=c["x2"], lag2_y=c["y2"])
    out["lag1_y_over_x"] = c["y1"] / c["x1"]
    out["lag2_y_over_x"] = c["y2"] / c["x2"]
    out["lag2_y_minus_x"] = c["y2"] - c["x2"]
    out["long_range_x"] = float(np.mean([_lag_correlation(z, good, 0, k) for k in LONG_LAGS]))
    out["long_range_y"] = float(np.mean([_lag_correlation(z, good, k, 0) for k in LONG_LAGS]))
    out["long_range_y_minus_x"] = out["long_range_y"] - out["long_range_x"]
    for dy, dx in DIAGONALS:
        plus, minus = _lag_correlation(z, good, dy, dx), _lag_correlation(z, good, dy, -dx)
        out[f"diag_{dy}_{dx}"], out[f"diag_{dy}_-{dx}"] = plus, minus
        out[f"diag_asym_{dy}_{dx}"] = plus - minus
    out["reversal_x"] = _reversal(z, good, 0, 1)
    out["reversal_y"] = _reversal(z, good, 1, 0)
    stripes = _stripes(z, good, [c["y1"], c["y2"], c["y3"]], [c["x1"], c["x2"], c["x3"]])
    out.update({f"stripes_{k}": v for k, v in stripes.items() if not k.startswith("n_")})
    return out


def jackknife(z: np.ndarray, good: np.ndarray, n_blocks: int) -> tuple[dict, dict]:
    """scalar_stats and their delete-one-block jackknife standard errors."""
    full = scalar_stats(z, good)
    h, w = z.shape
    rows = np.array_split(np.arange(h), n_blocks)
    cols = np.array_split(np.arange(w), n_blocks)
    reps = []
    for r in rows:
        for c in cols:
            keep = good.copy()
            keep[r[0] : r[-1] + 1, c[0] : c[-1] + 1] = False
            if good[r[0] : r[-1] + 1, c[0] : c[-1] + 1].sum() == 0:
                continue  # a wholly masked block changes nothing
            reps.append(scalar_stats(z, keep))
    n = len(reps)
    se = {k: float(np.sqrt((n - 1) / n * np.sum((np.array([r[k] for r in reps]) - np.mean([r[k] for r in reps])) ** 2)))
          for k in full}
    return full, {"se": se, "n_blocks_used": n}


def correlation_functions(z: np.ndarray, good: np.ndarray) -> dict:
    return {"lags": list(range(1, MAX_LAG + 1)),
            "x": [_lag_correlation(z, good, 0, k) for k in range(1, MAX_LAG + 1)],
            "y": [_lag_correlation(z, good, k, 0) for k in range(1, MAX_LAG + 1)]}


def tails(z: np.ndarray, good: np.ndarray) -> dict:
    v = z[good]
    out = {}
    for s in (3, 4, 5):
        out[f"above_{s}sigma"] = int(np.sum(v > s))
        out[f"below_minus_{s}sigma"] = int(np.sum(v < -s))
    _, n_events = ndi.label(good & (np.abs(z) > 4), structure=np.ones((3, 3)))
    out["distinct_events_4sigma"] = int(n_events)
    return out


def power_anisotropy(z: np.ndarray, good: np.ndarray) -> dict:
    """Axis power ratios of the Hann-windowed mean periodogram of 32 x 32 sky patches, with jackknife errors."""
    try:
        ps = extract_sky_patches(z, patch_size=SPEC_SIZE, stride=SPEC_STRIDE, mask=~good,
                                 normalise=False, subtract_background=False)
    except ValueError:
        return {"n_patches": 0}
    p = ps.patches.astype(np.float64)
    p = p - p.mean(axis=(1, 2), keepdims=True)
    win = np.outer(np.hanning(SPEC_SIZE), np.hanning(SPEC_SIZE))
    per_patch = np.stack([mean_periodogram((q * win)[None]) for q in p])
    per_patch /= np.mean(win**2)
    # Overlapping patches are not independent: the jackknife leaves out one group at a time, the
    # patches whose origins share a SPEC_GROUP x SPEC_GROUP block of the image.
    groups = [tuple(g) for g in ps.positions[:, 1:] // SPEC_GROUP]
    keys = sorted(set(groups))
    each = np.stack([per_patch[[g == key for g in groups]].sum(axis=0) for key in keys])
    weights = np.array([sum(g == key for g in groups) for key in keys], dtype=np.float64)
    n = len(each)
    j = np.arange(1, SPEC_SIZE // 2 + 1)

    def summary(power):
        s = spectra(power)
        ratio = s["kx_cut_ky0"] / s["ky_cut_kx0"]
        return {
            "vertical_over_horizontal_low": float(np.exp(np.mean(np.log(ratio[j <= 4])))),
            "vertical_over_horizontal_all": float(np.exp(np.mean(np.log(ratio)))),
            "ky0_axis_over_radial_low": float(np.exp(np.mean(np.log((s["kx_cut_ky0"] / s["radial"])[j <= 4])))),
            "kx0_axis_over_radial_low": float(np.exp(np.mean(np.log((s["ky_cut_kx0"] / s["radial"])[j <= 4])))),
        }, s

    total, count = each.sum(axis=0), weights.sum()
    full, s = summary(total / count)
    reps = [summary((total - e) / (count - w))[0] for e, w in zip(each, weights)] if n > 2 else []
    se = {k: float(np.sqrt((n - 1) / n * np.sum((np.array([r[k] for r in reps]) - np.mean([r[k] for r in reps])) ** 2)))
          for k in full} if reps else {}
    return {"n_patches": len(p), "n_groups": n, **full, "se": se, "k_cycles_per_pixel": (j / SPEC_SIZE).tolist(),
            "radial": s["radial"].tolist(), "ky0_axis": s["kx_cut_ky0"].tolist(), "kx0_axis": s["ky_cut_kx0"].tolist()}


def patch_counts(z: np.ndarray, good: np.ndarray) -> dict:
    out = {}
    for size in (32, 64):
        for stride, label in ((size, "non_overlapping"), (8, "stride_8")):
            try:
                n = len(extract_sky_patches(z, patch_size=size, stride=stride, mask=~good,
                                            normalise=False, subtract_background=False))
            except ValueError:
                n = 0
            out[f"{label}_{size}"] = n
    return out


def homogeneity(z: np.ndarray, good: np.ndarray) -> dict:
    out = {}
    for axis, key in ((0, "rows"), (1, "columns")):
        _, info = noise_step_map(z, ~good, axis=axis, margin=max(8, z.shape[axis] // 16))
        out[f"step_between_{key}"] = {"index": info["index"], "ratio": info["ratio"]}
    return out


def noise_map_check(p, z: np.ndarray, good: np.ndarray) -> dict:
    """Does the upstream noise map depend on each pixel's own value (a Poisson term from the data)?"""
    nm = p.noise_map
    local = nm / ndi.median_filter(nm, size=msd.NOISE_MAP_MEDIAN, mode="nearest")
    a = np.vstack([np.ones(good.sum()), p.image[good]]).T
    intercept, slope = np.linalg.lstsq(a, nm[good] ** 2, rcond=None)[0]
    return {
        "corr_local_noise_map_with_z": float(np.corrcoef(local[good], z[good])[0, 1]),
        "noise_map_squared_fit": {"intercept": float(intercept), "slope_per_data_unit": float(slope)},
        "floor_fraction": float(np.mean(nm <= 0.02 * (1 + 1e-6))),
        "local_noise_map_p05_p95": [float(v) for v in np.percentile(local[good], [5, 95])],
    }


def decide(stats: dict, se: dict, spec: dict) -> dict:
    """Which flips / rotations the measured asymmetries allow (|stat| <= Z_CUT se: no evidence against)."""

    def zscore(key, value=None, ref=0.0, errs=se):
        value = stats[key] if value is None else value
        err = errs.get(key, float("nan"))
        return float((value - ref) / err) if err > 0 else float("nan")

    z_diag = max(abs(zscore(f"diag_asym_{dy}_{dx}")) for dy, dx in DIAGONALS)
    z_rev_x, z_rev_y = abs(zscore("reversal_x")), abs(zscore("reversal_y"))
    z_lag1 = abs(zscore("lag1_y_over_x", ref=1.0))
    z_lag2 = abs(zscore("lag2_y_minus_x"))
    # Signed z-scores of the three stripe tests (> 0: vertical, i.e. patterns constant along columns).
    key = "stripes_columns_over_rows_detrended"
    z_means = float(np.log(stats[key]) / (se[key] / stats[key]))
    z_long = zscore("long_range_y_minus_x")
    pse = spec.get("se", {})
    z_power = (float(np.log(spec["vertical_over_horizontal_low"]) /
                     (pse["vertical_over_horizontal_low"] / spec["vertical_over_horizontal_low"])))\
        if pse.get("vertical_over_horizontal_low") else float("nan")
    anisotropic = {"lag1": z_lag1, "lag2": z_lag2, "mean_variance": abs(z_means),
                   "long_range": abs(z_long), "axis_power_low_k": abs(z_power)}
    xy_symmetric = all(not (v > Z_CUT) for v in anisotropic.values())
    # Stripes: the axis power and the long-range correlations (the sensitive tests) must agree.
    sensitive = (z_power, z_long)
    if min(sensitive) > Z_CUT or max(sensitive) < -Z_CUT:
        direction = "vertical" if z_power > 0 else "horizontal"
    elif max(abs(v) for v in sensitive) > Z_CUT and np.sign(z_power) == np.sign(z_long):
        direction = ("vertical" if z_long > 0 else "horizontal") + ", weak (one test of two)"
    elif abs(z_means) > Z_CUT and max(abs(v) for v in sensitive) <= Z_CUT:
        direction = ("vertical" if z_means > 0 else "horizontal") + ", line-mean test only"
    elif max(abs(z_power), abs(z_long), abs(z_means)) > Z_CUT:
        direction = "inconclusive"
    else:
        direction = "none detected"
    return {
        "z_scores": {"diagonal_asymmetry_max": z_diag, "reversal_x": z_rev_x, "reversal_y": z_rev_y,
                     **{f"xy_{k}": v for k, v in anisotropic.items()},
                     "stripes_signed": {"axis_power_low_k": z_power, "long_range": z_long, "mean_variance": z_means}},
        "stripe_direction": direction,
        "flip_left_right": bool(z_diag <= Z_CUT and z_rev_x <= Z_CUT),
        "flip_up_down": bool(z_diag <= Z_CUT and z_rev_y <= Z_CUT),
        "rot180": bool(z_rev_x <= Z_CUT and z_rev_y <= Z_CUT),
        "rot90": bool(xy_symmetric and z_diag <= Z_CUT and z_rev_x <= Z_CUT and z_rev_y <= Z_CUT),
    }


def survey_one(p, n_blocks: int, with_noise_map_check: bool) -> tuple[dict, np.ndarray, np.ndarray]:
    z, good, units = standardise(p)
    stats, jk = jackknife(z, good, n_blocks)
    spec = power_anisotropy(z, good)
    out = {
        "units": units,
        "n_sky_pixels": int(good.sum()),
        "masked_fraction": float(1 - good.mean()),
        **stats,
        "se": jk["se"],
        "n_jackknife_blocks": jk["n_blocks_used"],
        "tails": tails(z, good),
        "correlation_function": correlation_functions(z, good),
        "power": spec,
        "noise_level_homogeneity": homogeneity(z, good),
        "patches": patch_counts(z, good),
        "decision": decide(stats, jk["se"], spec),
    }
    if with_noise_map_check:
        out["noise_map_check"] = noise_map_check(p, z, good)
    if "noise_step" in p.source:
        out["noise_step"] = p.source["noise_step"]
    return out, z, good


COMPARED = (("jwst-f115w", "jwst-f150w"), ("jwst-f277w", "jwst-f444w"), ("jwst-f150w", "jwst-f444w"),
            ("jwst-f115w", "jwst-f277w"), ("hst-galsim-147246", "hst-scarlet-cut-hst"),
            ("hst-scarlet-cut-hst", "hst-scarlet-cut-hst1"), ("hst-galsim-147246", "hst-scarlet-cut-hst1"))
COMPARED_STATS = ("excess_kurtosis", "skewness", "tail_ratio_3sigma", "tail_ratio_4sigma", "lag1_x", "lag1_y",
                  "lag2_x", "lag2_y", "long_range_y_minus_x")


POOLED = {"jwst-sw (f115w + f150w)": ("jwst-f115w", "jwst-f150w"),
          "jwst-lw (f277w + f444w)": ("jwst-f277w", "jwst-f444w"),
          "hst (3 images)": ("hst-galsim-147246", "hst-scarlet-cut-hst", "hst-scarlet-cut-hst1")}
POOLED_STATS = {"lag1_y_over_x": 1.0, "lag2_y_minus_x": 0.0, "long_range_y_minus_x": 0.0, "diag_asym_1_1": 0.0,
                "diag_asym_1_2": 0.0, "diag_asym_2_1": 0.0, "reversal_x": 0.0, "reversal_y": 0.0}


def pooled_symmetry(sources: dict) -> dict:
    """Inverse-variance means of the symmetry statistics over sources that would share one model.

    z = (mean - value under the symmetry) / its standard error; a model trained on the pooled patches
    sees this mean asymmetry (for HST the images' lag-1 anisotropies have opposite signs, so read
    each image's own too).
    """
    out = {}
    for label, names in POOLED.items():
        if not all(n in sources for n in names):
            continue
        sts = [sources[n]["preparations"][sources[n]["primary_whitening"]] for n in names]
        entry = {}
        for key, ref in POOLED_STATS.items():
            w = np.array([1.0 / st["se"][key] ** 2 for st in sts])
            x = np.array([st[key] for st in sts])
            mean, se = float(np.sum(w * x) / np.sum(w)), float(1.0 / np.sqrt(np.sum(w)))
            entry[key] = {"mean": mean, "se": se, "z": (mean - ref) / se}
        out[label] = entry
    return out


def comparisons(sources: dict) -> dict:
    """Differences of the primary preparations' statistics between pairs of sources, in standard errors.

    The two jackknife errors are added in quadrature (independent noise; shared sky structure, the
    same sky in two JWST bands, would make this conservative or not, so read it as a guide).
    """
    out = {}
    for a, b in COMPARED:
        if a not in sources or b not in sources:
            continue
        sa = sources[a]["preparations"][sources[a]["primary_whitening"]]
        sb = sources[b]["preparations"][sources[b]["primary_whitening"]]
        out[f"{a} - {b}"] = {
            k: {"difference": sa[k] - sb[k], "z": (sa[k] - sb[k]) / float(np.hypot(sa["se"][k], sb["se"][k]))}
            for k in COMPARED_STATS
        }
    return out


# ---- figures ------------------------------------------------------------------------------------


def figures(results: dict, samples: dict, out_dir: Path) -> list[str]:
    from numpyro_slic.diagnostics.plots import _pyplot, _save

    plt = _pyplot()
    names = list(results["sources"])
    ncol = 4
    nrow = int(np.ceil(len(names) / ncol))
    bins = np.linspace(-8, 8, 65)
    centres = 0.5 * (bins[1:] + bins[:-1])
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.9 * nrow), sharex=True, sharey=True, squeeze=False)
    for ax, name in zip(axes.flat, names):
        src = results["sources"][name]
        primary = src["primary_whitening"]
        for whitening, (colour, ls, label) in ((primary, ("C0", "-", f"{primary} (survey)")),
                                                ("noise_map", ("k", ":", "noise_map.fits (shipped F150W way)"))):
            if whitening not in samples[name]:
                continue
            v = samples[name][whitening]
            dens, _ = np.histogram(np.clip(v, bins[0], bins[-1] - 1e-9), bins=bins, density=True)
            label = label if primary != "none" else "sky"
            ax.step(centres, np.where(dens > 0, dens, np.nan), where="mid", color=colour, ls=ls, lw=1.0, label=label)
        ax.plot(centres, scipy.stats.norm.pdf(centres), color="C3", lw=0.8, ls="--", label="N(0, 1)")
        st = src["preparations"][primary]
        ax.set_title(f"{name}: excess kurtosis {st['excess_kurtosis']:+.2f}\n(clipped at 20: "
                     f"{st['excess_kurtosis_clipped_20sigma']:+.2f}), |z| > 4: {st['tail_ratio_4sigma']:.1f}x Gaussian",
                     fontsize=8)
        ax.set_yscale("log")
        ax.set_ylim(1e-6, 1)
        ax.legend(fontsize=6, frameon=False, loc="upper right")
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("z (robust sigma)")
    for ax in axes[:, 0]:
        ax.set_ylabel("density")
    fig.suptitle("Sky pixels of every source, robust-sigma units (outer bins: beyond +-8)", fontsize=9)
    hist_path = out_dir / "noise_survey_histograms.png"
    _save(fig, hist_path)
    plt.close(fig)

    fig, axes = plt.subplots(nrow * 2, ncol, figsize=(3.6 * ncol, 2.5 * nrow * 2), squeeze=False)
    for i, name in enumerate(names):
        src = results["sources"][name]
        st = src["preparations"][src["primary_whitening"]]
        r, c = 2 * (i // ncol), i % ncol
        cf = st["correlation_function"]
        ax = axes[r, c]
        ax.plot(cf["lags"], cf["x"], "o-", ms=2.5, color="C0", lw=1, label="along x (rows)")
        ax.plot(cf["lags"], cf["y"], "s-", ms=2.5, color="C1", lw=1, label="along y (columns)")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylim(-0.05, 0.6)
        ax.set_title(f"{name}\nstripes: {st['decision']['stripe_direction']}; "
                     f"lags 4-16: x {st['long_range_x']:.3f}, y {st['long_range_y']:.3f}", fontsize=8)
        ax.set_xlabel("lag (pixels)", fontsize=7)
        ax.set_ylabel("correlation", fontsize=7)
        ax.legend(fontsize=6, frameon=False)
        ax = axes[r + 1, c]
        pw = st["power"]
        if pw.get("n_patches", 0):
            k = np.asarray(pw["k_cycles_per_pixel"])
            ax.semilogy(k, pw["ky0_axis"], color="C1", lw=1, label="ky = 0 axis (vertical stripes)")
            ax.semilogy(k, pw["kx0_axis"], color="C0", lw=1, label="kx = 0 axis (horizontal)")
            ax.semilogy(k, pw["radial"], color="0.5", lw=1, ls="--", label="radial mean")
            ax.set_title(f"power, {pw['n_patches']} patches 32 x 32: ky=0 / kx=0\n"
                         f"at |k| <= 1/8: {pw['vertical_over_horizontal_low']:.2f} +- "
                         f"{pw['se'].get('vertical_over_horizontal_low', float('nan')):.2f}", fontsize=8)
        ax.set_xlabel("|k| (cycles / pixel)", fontsize=7)
        ax.legend(fontsize=6, frameon=False)
    for i in range(len(names), nrow * ncol):
        r, c = 2 * (i // ncol), i % ncol
        axes[r, c].set_visible(False)
        axes[r + 1, c].set_visible(False)
    fig.tight_layout()
    aniso_path = out_dir / "noise_survey_anisotropy.png"
    _save(fig, aniso_path)
    plt.close(fig)
    return [os.path.relpath(hist_path, ROOT), os.path.relpath(aniso_path, ROOT)]


# ---- tables -------------------------------------------------------------------------------------


def _pm(st: dict, key: str, fmt: str = ".3f", sign: bool = False) -> str:
    f = ("+" if sign else "") + fmt
    return f"{st[key]:{f}} +- {st['se'][key]:{fmt}}"


def markdown_tables(results: dict) -> str:
    """The tables of docs/noise_sources.md, from the JSON alone."""
    src = results["sources"]
    prim = {n: s["preparations"][s["primary_whitening"]] for n, s in src.items()}
    lines = ["### Marginal distribution", "",
             "| source | whitening | pixel scale | sky pixels (masked) | robust sigma (image units) | excess kurtosis "
             "(clipped at 20) | skewness | \\|z\\| > 3, 4, 5 over Gaussian | \\|z\\| > 4 counts: above / below (events) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for n, st in prim.items():
        t = st["tails"]
        scale = src[n]["pixel_scale_arcsec"]
        lines.append(
            f"| {n} | {src[n]['primary_whitening']} | {scale if scale else '-'} | {st['n_sky_pixels']} "
            f"({st['masked_fraction']:.0%}) | {st['units']['robust_sigma_image_units']:.4g} | "
            f"{_pm(st, 'excess_kurtosis', sign=True)} ({st['excess_kurtosis_clipped_20sigma']:+.3f}) | "
            f"{_pm(st, 'skewness', sign=True)} | {st['tail_ratio_3sigma']:.2f}, {st['tail_ratio_4sigma']:.1f}, "
            f"{st['tail_ratio_5sigma']:.0f} | {t['above_4sigma']} / {t['below_minus_4sigma']} ({t['distinct_events_4sigma']}) |")
    lines += ["", "### Correlations and anisotropy", "",
              "| source | lag-1 x, y | lag-1 y / x | lag-2 x, y | lags 4-16 x, y | diagonals (1,1), (1,-1) | "
              "diagonals (2,1), (2,-1) | largest diagonal asymmetry (se) | reversal x, y (se) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for n, st in prim.items():
        z = st["decision"]["z_scores"]
        lines.append(
            f"| {n} | {st['lag1_x']:.3f}, {st['lag1_y']:.3f} | {_pm(st, 'lag1_y_over_x')} | {st['lag2_x']:.3f}, "
            f"{st['lag2_y']:.3f} | {st['long_range_x']:.3f}, {st['long_range_y']:.3f} | {st['diag_1_1']:.3f}, "
            f"{st['diag_1_-1']:.3f} | {st['diag_2_1']:.3f}, {st['diag_2_-1']:.3f} | {z['diagonal_asymmetry_max']:.1f} | {z['reversal_x']:.1f}, {z['reversal_y']:.1f} |")
    lines += ["", "### Stripes, power anisotropy, homogeneity and patches", "",
              "| source | column / row means: variance over iid | detrended ratio columns / rows | "
              "power ky=0 / kx=0 axis, \\|k\\| <= 1/8 | stripes | noise step ratio rows, columns | "
              "non-overlapping 32 x 32, 64 x 64 (stride 8) |",
              "|---|---|---|---|---|---|---|"]
    for n, st in prim.items():
        pw, h, pc = st["power"], st["noise_level_homogeneity"], st["patches"]
        power = (f"{pw['vertical_over_horizontal_low']:.2f} +- {pw['se']['vertical_over_horizontal_low']:.2f} "
                 f"({pw['n_patches']} patches)") if pw.get("se") else "-"
        lines.append(
            f"| {n} | {st['stripes_columns_var_over_iid']:.2f} / {st['stripes_rows_var_over_iid']:.2f} | "
            f"{_pm(st, 'stripes_columns_over_rows_detrended', '.2f')} | {power} | {st['decision']['stripe_direction']} | "
            f"{h['step_between_rows']['ratio']:.3f}, {h['step_between_columns']['ratio']:.3f} | "
            f"{pc['non_overlapping_32']}, {pc['non_overlapping_64']} ({pc['stride_8_32']}, {pc['stride_8_64']}) |")
    lines += ["", "### JWST: the upstream noise map against the survey's whitening", "",
              "| band | whitening | excess kurtosis | skewness | \\|z\\| > 3: above / below | \\|z\\| > 4 over Gaussian "
              "| noise step ratio rows | corr(noise map / its 9 x 9 median, z) | noise map at the 0.02 floor |",
              "|---|---|---|---|---|---|---|---|---|"]
    for n, s in src.items():
        if "noise_map" not in s["preparations"]:
            continue
        for w, st in s["preparations"].items():
            chk = s["preparations"]["noise_map"]["noise_map_check"]
            corr = f"{chk['corr_local_noise_map_with_z']:.3f}" if w == "noise_map" else ""
            floor = f"{chk['floor_fraction']:.1%}" if w == "noise_map" else ""
            lines.append(
                f"| {n} | {w} | {_pm(st, 'excess_kurtosis', sign=True)} | {_pm(st, 'skewness', sign=True)} | "
                f"{st['tails']['above_3sigma']} / {st['tails']['below_minus_3sigma']} | {st['tail_ratio_4sigma']:.1f} | "
                f"{st['noise_level_homogeneity']['step_between_rows']['ratio']:.3f} | "
                f"{corr} | {floor} |")
    lines += ["", "### Differences between sources (difference, in standard errors)", "",
              "| pair | excess kurtosis | skewness | \\|z\\| > 4 ratio | lag-1 x | lag-1 y | lag-2 x | lag-2 y | "
              "lags 4-16 y - x |", "|---|---|---|---|---|---|---|---|---|"]
    for pair, c in results.get("comparisons", {}).items():
        cells = [f"{c[k]['difference']:+.3f} ({c[k]['z']:+.1f})" if k != "tail_ratio_4sigma" else
                 f"{c[k]['difference']:+.1f} ({c[k]['z']:+.1f})"
                 for k in ("excess_kurtosis", "skewness", "tail_ratio_4sigma", "lag1_x", "lag1_y", "lag2_x",
                           "lag2_y", "long_range_y_minus_x")]
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    lines += ["", "### Symmetry statistics pooled over the sources that would share a model (value, in standard errors)", "",
              "| pool | lag-1 y / x | lag-2 y - x | lags 4-16 y - x | diagonal (1,1) | diagonal (1,2) | diagonal (2,1) | "
              "reversal x | reversal y |", "|---|---|---|---|---|---|---|---|---|"]
    for label, entry in results.get("pooled_symmetry", {}).items():
        lines.append(f"| {label} | " + " | ".join(f"{entry[k]['mean']:+.3f} ({entry[k]['z']:+.1f})" for k in POOLED_STATS) + " |")
    lines += ["", "### What the measured symmetries allow (3 standard errors)", "",
              "| source | flip left-right | flip up-down | 180-degree turn | 90-degree turns | x-y anisotropy (se): "
              "lag-1, lag-2, lags 4-16, axis power, line means |", "|---|---|---|---|---|---|"]
    for n, st in prim.items():
        d = st["decision"]
        z = d["z_scores"]
        yes = {True: "allowed", False: "no"}
        lines.append(
            f"| {n} | {yes[d['flip_left_right']]} | {yes[d['flip_up_down']]} | {yes[d['rot180']]} | {yes[d['rot90']]} | "
            f"{z['xy_lag1']:.1f}, {z['xy_lag2']:.1f}, {z['xy_long_range']:.1f}, {z['xy_axis_power_low_k']:.1f}, "
            f"{z['xy_mean_variance']:.1f} |")
    return "\n".join(lines) + "\n"


# ---- main ---------------------------------------------------------------------------------------


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/work/shared/data"),
                        help="the shared/data folder (its PROVENANCE.md describes it)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/noise_survey.json")
    parser.add_argument("--figures", type=Path, default=ROOT / "docs/figures", help="folder for the figures ('' for none)")
    parser.add_argument("--sources", nargs="+", choices=list(SOURCES), default=list(SOURCES))
    parser.add_argument("--n-blocks", type=int, default=N_BLOCKS, help="jackknife blocks per side")
    parser.add_argument("--tables", type=Path, default=None,
                        help="print the markdown tables of this survey JSON and exit (nothing is measured)")
    args = parser.parse_args(argv)
    if args.tables is not None:
        import json

        print(markdown_tables(json.loads(args.tables.read_text())))
        return {}
    command = "python benchmarks/noise_survey.py" + ("" if argv is None and len(sys.argv) == 1 else
                                                      " " + shlex.join(sys.argv[1:] if argv is None else argv))
    start = time.perf_counter()
    results = {
        "command": command,
        "created": utc_now(),
        "package_version": package_version(),
        "data_dir": str(args.data_dir),
        "settings": {"jackknife_blocks_per_side": args.n_blocks, "long_range_lags": [LONG_LAGS[0], LONG_LAGS[-1]],
                     "diagonal_lags": [list(d) for d in DIAGONALS], "power_patch_size": SPEC_SIZE,
                     "decision_z_cut": Z_CUT, "noise_map_median_filter": msd.NOISE_MAP_MEDIAN,
                     "stripe_detrend_lines": STRIPE_DETREND, "power_patch_stride": SPEC_STRIDE,
                     "power_jackknife_group": SPEC_GROUP,
                     "mask_sources": msd.MASK},
        "sources": {},
    }
    samples = {}
    for name in args.sources:
        t0 = time.perf_counter()
        preps, primary, info = preparations(args.data_dir, name)
        entry = {**info, "preparations": {}}
        samples[name] = {}
        for whitening, p in preps.items():
            stats, z, good = survey_one(p, args.n_blocks, with_noise_map_check=(whitening == "noise_map"))
            entry["preparations"][whitening] = stats
            samples[name][whitening] = z[good]
        entry["seconds"] = time.perf_counter() - t0
        results["sources"][name] = entry
        st = entry["preparations"][primary]
        print(f"{name:22s} {primary:9s} kurt {st['excess_kurtosis']:+.3f} (clip {st['excess_kurtosis_clipped_20sigma']:+.3f}) "
              f"|z|>4 {st['tail_ratio_4sigma']:5.1f}x lag1 x/y {st['lag1_x']:.3f}/{st['lag1_y']:.3f} "
              f"stripes {st['decision']['stripe_direction']} ({entry['seconds']:.0f} s)", flush=True)
    results["comparisons"] = comparisons(results["sources"])
    results["pooled_symmetry"] = pooled_symmetry(results["sources"])
    if str(args.figures):
        results["figures"] = figures(results, samples, args.figures)
    results["seconds"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, results, indent=1)
    print(markdown_tables(results))
    return results


if __name__ == "__main__":
    main()
