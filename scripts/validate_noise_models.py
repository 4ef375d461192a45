"""Does each shipped noise model generate noise that looks like the real held-out sky?

    python scripts/validate_noise_models.py [--out benchmarks/results/noise_validation.json]
        [--fig-dir docs/figures] [--models hst-acs-f814w jwst-nircam-f150w]

For each shipped model (``numpyro_slic.noise.bundle.load_noise_model``) this draws N patches by the
reverse SDE (``noise.sampling.sample_noise_unit``, trained units) and compares them with the shipped
held-out real patches (``numpyro_slic.data.load_shipped``) and with two references:

- ``gaussian``: exact draws of ``StationaryGaussianNoise.from_patches(real)``, the stationary
  Gaussian fitted to *all* the held-out patches (in-sample: its power spectrum is the real one up to
  the draws' own noise, so it is the strongest stationary Gaussian there is for these statistics);
- ``gaussian_sde``: the same Gaussian drawn through the same reverse SDE as the model (same method,
  steps, N). Against ``gaussian`` it measures what the sampler alone does to the statistics (too few
  steps widen the draws), so model-vs-real differences can be read net of it;
- ``mixture_control``: the same for an i.i.d. non-Gaussian density with an exact sampler (a scale
  mixture with the real sets' excess kurtosis, about 0.2): does the sampler keep kurtosis and tails?

Statistics, all on pooled pixels in trained units (robust sigma about 1):
- two-sample Kolmogorov-Smirnov statistic and p-value against the real pixels (``scipy.stats.ks_2samp``),
  raw and after subtracting each set's median ("centred": the JWST held-out band sits 0.1 sigma
  below its training band). Pixels are correlated (lag-1 correlation 0.3 to 0.5) and JWST's patches
  overlap (stride 8), so the p-values assume far more independent data than there are: compare the
  statistics, and the real-vs-real reference (first vs second half of the held-out set);
- excess kurtosis, with a bootstrap standard error over whole patches;
- fraction of pixels more than 3 and 4 robust sigma from the median (each set's own median and
  robust sigma, so a shape statistic like the kurtosis; Gaussian: 2.70e-3 and 6.33e-5);
- mean periodograms: radially averaged, marginal over ky (a function of |kx|) and over kx (a
  function of |ky|), and the axis cuts ky = 0 and kx = 0 (vertical stripes put their power at
  ky = 0); ratios generated / real, and their geometric means in three |k| bands.

Figures (``--fig-dir``): a "which one is real?" grid per model (the shuffle's key is in the JSON and
in the figure's caption), mean power spectra with ratios per model, pixel histograms (log y).
Deterministic: every random draw comes from ``--seed`` folded with the model's fixed index, so
``--models`` subsets reproduce the same numbers; the JSON is updated in place for those models.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import jax
import numpy as np

from numpyro_slic.data import load_shipped
from numpyro_slic.data.io import atomic_write_json
from numpyro_slic.diagnostics.plots import noise_comparison_plot, noise_spectra_plot, pixel_histogram_plot
from numpyro_slic.noise.analytic import GaussianMixtureNoise, StationaryGaussianNoise, mean_periodogram
from numpyro_slic.noise.bundle import load_noise_model, read_bundle_metadata
from numpyro_slic.noise.fidelity import BANDS, band_ratios, ks, pixel_statistics, spectra
from numpyro_slic.noise.sampling import sample_noise_unit

# Fixed order: a model's random draws depend on its index here, not on --models.
MODELS = {
    "hst-acs-f814w": {"data": "hst-f814w-sky-val", "tag": "hst_f814w"},
    "jwst-nircam-f150w": {"data": "jwst-f150w-sky-val", "tag": "jwst_f150w"},
}
# Core sd of the mixture control, so that 0.95 a^2 + 0.05 * 2.3 a^2 = 1 (excess kurtosis 0.21).
MIXTURE_SD = 1 / np.sqrt(0.95 + 0.05 * 2.3)


def pixel_summary(patches: np.ndarray, rng: np.random.Generator, n_boot: int) -> dict:
    """``noise.fidelity.pixel_statistics`` (kurtosis with a bootstrap error over whole patches, tails,
    lag-1 correlations), its bootstrap seeded from ``rng``."""
    return pixel_statistics(patches, n_boot=n_boot, seed=int(rng.integers(2**31)))


# ---- one model ----------------------------------------------------------------------------------


def validate(name: str, index: int, args) -> dict:
    """Draws, statistics, figures and the JSON entry for one shipped model (trained units)."""
    spec = MODELS[name]
    timings = {}
    t0 = time.perf_counter()
    patch_set = load_shipped(spec["data"])
    real = np.asarray(patch_set.patches, dtype=np.float64)
    h, w = real.shape[1:]
    n_gen = args.n[name]
    steps = args.steps[name]
    key = jax.random.fold_in(jax.random.key(args.seed), index)
    k_model, k_gauss, k_gauss_sde, k_mix, k_mix_sde = jax.random.split(key, 5)
    rng = np.random.default_rng([args.seed, index])

    model = load_noise_model(name).with_event_shape((h, w))
    meta = read_bundle_metadata(name)
    sampler = {"method": args.method, "steps": steps, "data_variance": 1.0, "denoise": True}
    gauss = StationaryGaussianNoise.from_patches(real, sde=model.sde)

    t = time.perf_counter()
    generated = np.asarray(sample_noise_unit(model, k_model, (n_gen,), **sampler), dtype=np.float64)
    timings["model_sampling_s"] = time.perf_counter() - t
    t = time.perf_counter()
    gauss_exact = np.asarray(gauss.unit_sample(k_gauss, (n_gen,)), dtype=np.float64)
    gauss_sde = np.asarray(sample_noise_unit(gauss, k_gauss_sde, (n_gen,), **sampler), dtype=np.float64)
    # A non-Gaussian control with an exact sampler: i.i.d. scale mixture of unit variance, excess
    # kurtosis 0.21 (like the real sets'), 8x the model's pixels (cheap: elementwise score).
    mixture = GaussianMixtureNoise((0.95, 0.05), MIXTURE_SD * np.array([1.0, np.sqrt(2.3)]), (h, w), sde=model.sde)
    mix_exact = np.asarray(mixture.unit_sample(k_mix, (8 * n_gen,)), dtype=np.float64)
    mix_sde = np.asarray(sample_noise_unit(mixture, k_mix_sde, (8 * n_gen,), **sampler), dtype=np.float64)
    timings["control_sampling_s"] = time.perf_counter() - t
    if not np.all(np.isfinite(generated)):
        raise RuntimeError(f"{name}: the reverse SDE gave non-finite draws; raise --*-steps.")

    half = len(real) // 2
    sets = {"real": real, "model": generated, "gaussian": gauss_exact, "gaussian_sde": gauss_sde}
    summary = {k: pixel_summary(v, rng, args.bootstrap) for k, v in sets.items()}
    controls = {k: pixel_summary(v, rng, args.bootstrap) for k, v in (("mixture_exact", mix_exact),
                                                                     ("mixture_sde", mix_sde))}
    compare = ("model", "gaussian", "gaussian_sde")
    ks_raw = {k: ks(sets[k], real) for k in compare}
    ks_centred = {k: ks(sets[k], real, centred=True) for k in compare}
    ks_raw["real_first_vs_second_half"] = ks(real[:half], real[half:])
    ks_centred["real_first_vs_second_half"] = ks(real[:half], real[half:], centred=True)

    spec_sets = {k: spectra(mean_periodogram(v)) for k, v in sets.items()}
    n = min(h, w)
    ratios = {k: {s: spec_sets[k][s] / spec_sets["real"][s] for s in spec_sets["real"]} for k in compare}
    # What the sampler does to a density whose exact draws we have: Gaussian via SDE / exact.
    ratios["sampler_control"] = {
        s: spec_sets["gaussian_sde"][s] / spec_sets["gaussian"][s] for s in spec_sets["real"]
    }
    bands = {k: {s: band_ratios(r, n) for s, r in rs.items()} for k, rs in ratios.items()}

    figs = make_figures(name, spec["tag"], real, patch_set.positions, sets, spec_sets, ratios, args, rng)
    timings["total_s"] = time.perf_counter() - t0
    result = {
        "model": name,
        "weights_sha256": meta["weights"]["sha256"],
        "parameterisation": meta["model"]["parameterisation"],
        "real_set": spec["data"],
        "event_shape": [h, w],
        "n_real": int(len(real)),
        "n_generated": n_gen,
        "units": "trained units (the model's unit_* functions; held-out patches as shipped)",
        "sampler": {**sampler, "function": "numpyro_slic.noise.sampling.sample_noise_unit"},
        "gaussian_baseline": "StationaryGaussianNoise.from_patches(all held-out real patches), "
        "exact draws (in-sample fit)",
        "pixels": summary,
        "mixture_control": {
            "what": "i.i.d. 0.95 N(0, a^2) + 0.05 N(0, 2.3 a^2), unit variance: exact draws vs the same "
            "reverse SDE (does the sampler keep kurtosis and tails?)",
            **controls,
        },
        "ks_vs_real": ks_raw,
        "ks_vs_real_centred": ks_centred,
        "spectra": {
            "k_cycles_per_pixel": (np.arange(1, n // 2 + 1) / n).tolist(),
            "mean_periodogram": {k: {s: v.tolist() for s, v in d.items()} for k, d in spec_sets.items()},
            "ratio_to_real": {k: {s: v.tolist() for s, v in d.items()} for k, d in ratios.items() if k in compare},
            "sampler_control_ratio": {s: v.tolist() for s, v in ratios["sampler_control"].items()},
            "band_geometric_mean_ratio": bands,
            "bands_cycles_per_pixel": {b: list(v) for b, v in BANDS.items()},
        },
        **figs,
        "seconds": timings,
    }
    return result


# ---- figures ------------------------------------------------------------------------------------


_STYLE = {
    "real": ("k", "-", "real (held-out)"),
    "model": ("C3", "-", "learned model (reverse SDE)"),
    "gaussian": ("C0", "--", "stationary Gaussian (exact draws)"),
    "gaussian_sde": ("C2", ":", "stationary Gaussian (same reverse SDE)"),
}


def spread_out(positions: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of n patches chosen far apart (greedy max-min distance; other images count as far).

    JWST's held-out patches overlap (stride 8, side 64): random picks would show the same pixels
    twice in the "which one is real?" grid and give the real ones away.
    """
    src, rc = positions[:, 0], positions[:, 1:].astype(np.float64)
    chosen = [int(rng.integers(len(positions)))]
    for _ in range(n - 1):
        d = np.min([np.where(src == src[c], np.hypot(*(rc - rc[c]).T), np.inf) for c in chosen], axis=0)
        chosen.append(int(np.argmax(d)))
    return np.sort(chosen)


def make_figures(name, tag, real, positions, sets, spec_sets, ratios, args, rng) -> dict:
    os.makedirs(args.fig_dir, exist_ok=True)
    paths = {
        "grid": os.path.join(args.fig_dir, f"noise_which_is_real_{tag}.png"),
        "spectra": os.path.join(args.fig_dir, f"noise_spectra_{tag}.png"),
        "histogram": os.path.join(args.fig_dir, f"noise_histogram_{tag}.png"),
    }

    # "Which one is real?": 8 real patches far apart and the first 8 generated ones, shuffled.
    n_show = min(8, len(sets["model"]))
    real_idx = spread_out(np.asarray(positions), n_show, rng)
    shuffle_seed = args.seed + 1000 * (list(MODELS).index(name) + 1)
    key = noise_comparison_plot(real[real_idx], sets["model"][:n_show], paths["grid"], shuffle_seed=shuffle_seed)

    n = min(real.shape[1:])
    k = np.arange(1, n // 2 + 1) / n
    noise_spectra_plot(k, spec_sets, paths["spectra"], styles=_STYLE,
                       extra_ratios={"sampler control": (ratios["sampler_control"], "0.5")},
                       title=f"{name}: power spectra, {len(sets['model'])} generated vs {len(real)} real patches")
    pixel_histogram_plot(sets, paths["histogram"], styles=_STYLE, title=f"{name}: pixel histogram")

    return {
        "which_is_real": {
            "figure": paths["grid"],
            "shuffle_seed": shuffle_seed,
            "real_patch_indices": real_idx.tolist(),
            "generated_draw_indices": list(range(n_show)),
            "key_row_major": key,
        },
        "figures": {k: v for k, v in paths.items() if k != "grid"},
    }


# ---- report -------------------------------------------------------------------------------------


def print_tables(results: dict) -> None:
    """Markdown tables of the headline numbers (what docs/noise_validation.md quotes)."""
    print("\n| model | set | KS raw | KS centred | excess kurtosis | >4 sigma / Gaussian | std | lag-1 x, y |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        for s in ("real", "model", "gaussian", "gaussian_sde"):
            p = r["pixels"][s]
            ksr = r["ks_vs_real"].get(s, r["ks_vs_real"]["real_first_vs_second_half"])
            ksc = r["ks_vs_real_centred"].get(s, r["ks_vs_real_centred"]["real_first_vs_second_half"])
            label = "real (KS: 1st vs 2nd half)" if s == "real" else s
            print(f"| {name} | {label} | {ksr['statistic']:.4f} (p {ksr['pvalue']:.1e}) | "
                  f"{ksc['statistic']:.4f} (p {ksc['pvalue']:.1e}) | {p['excess_kurtosis']:+.3f} +- "
                  f"{p['excess_kurtosis_se']:.3f} | {p['tail_4sigma_over_gaussian']:.1f} "
                  f"({p['tail_4sigma_count']}) | {p['std']:.3f} | {p['lag1_x']:.3f}, {p['lag1_y']:.3f} |")
    print("\n| model | mixture control | excess kurtosis | >4 sigma / Gaussian | std |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        for s in ("mixture_exact", "mixture_sde"):
            p = r["mixture_control"][s]
            print(f"| {name} | {s} | {p['excess_kurtosis']:+.3f} +- {p['excess_kurtosis_se']:.3f} | "
                  f"{p['tail_4sigma_over_gaussian']:.1f} ({p['tail_4sigma_count']}) | {p['std']:.4f} |")
    print("\n| model | ratio to real | spectrum | low k | mid k | high k |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        bands = r["spectra"]["band_geometric_mean_ratio"]
        for who in ("model", "gaussian", "gaussian_sde", "sampler_control"):
            for s in ("radial", "kx_marginal", "ky_marginal", "kx_cut_ky0"):
                b = bands[who][s]
                print(f"| {name} | {who} | {s} | {b['low']:.3f} | {b['mid']:.3f} | {b['high']:.3f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="benchmarks/results/noise_validation.json")
    parser.add_argument("--fig-dir", default="docs/figures")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--hst-n", type=int, default=64, help="generated 32 x 32 HST patches")
    parser.add_argument("--jwst-n", type=int, default=32, help="generated 64 x 64 JWST patches")
    # Reverse-SDE steps: the variance excess of the draws falls roughly as 1 / steps (measured on
    # the fitted Gaussians: +6% at 20, +2.6% at 30, +1.0% at 50 Euler-Maruyama steps); the
    # sampler-control rows of the JSON report it for the settings used.
    parser.add_argument("--hst-steps", type=int, default=50)
    parser.add_argument("--jwst-steps", type=int, default=40)
    parser.add_argument("--method", default="euler_maruyama", choices=["euler_maruyama", "pc"],
                        help="pc costs two score evaluations a step, euler_maruyama one")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples (kurtosis)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.n = {"hst-acs-f814w": args.hst_n, "jwst-nircam-f150w": args.jwst_n}
    args.steps = {"hst-acs-f814w": args.hst_steps, "jwst-nircam-f150w": args.jwst_steps}

    t0 = time.perf_counter()
    doc = {"models": {}}
    if os.path.exists(args.out) and set(args.models) != set(MODELS):
        with open(args.out) as f:
            doc = json.load(f)  # a subset rerun replaces only its models' entries
    load_start = os.getloadavg()
    for name in args.models:
        result = validate(name, list(MODELS).index(name), args)
        doc["models"][name] = result
        print(f"{name}: {result['seconds']['total_s']:.0f} s "
              f"(sampling {result['seconds']['model_sampling_s']:.0f} s)", flush=True)
    doc["meta"] = {
        "command": " ".join(["python scripts/validate_noise_models.py", *(sys.argv[1:] if argv is None else argv)]),
        "seed": args.seed,
        "machine": platform.platform(),
        "nproc": len(os.sched_getaffinity(0)),
        "load_average_at_start": list(load_start),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "wall_s_last_run": time.perf_counter() - t0,
        "models_in_last_run": args.models,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    atomic_write_json(args.out, doc, indent=1)
    print_tables(doc["models"])
    print(f"\nwrote {args.out} and figures in {args.fig_dir} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
