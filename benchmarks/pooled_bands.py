"""JWST bands: one model per band, or one per pair of bands with the same noise, by held-out likelihood.

docs/noise_sources.md found F115W and F150W to have the same noise, and F277W and F444W too, and
decided on one model per pair trained on both bands' pooled patches. This measures that decision.
For every band it fits the recipe of the shipped F150W model (a `CorrelatedMixtureBackbone` with 4
components and the grid-wide level, no net: exact, fitted in seconds) once to the band's own
training patches and once to the pair's pooled ones, and scores both on the band's held-out patches
with ``numpyro-slic validate`` (exact NLL on distinct 16 x 16 crops, perturbed once at t_min; tails
of exact draws; classifier AUC). Beside each model's own paired difference to the stationary
Gaussian fitted to its training patches, it pairs the two models crop by crop (same crops, same
perturbation) and pairs each with the band's own Gaussian. About 5 minutes on 2 CPU cores:

    python scripts/make_shipped_data.py ../shared/data --sets bands --shipped-out /tmp/bands  # outputs/patches/jwst_*_sky_train.npz
    python benchmarks/pooled_bands.py --out benchmarks/results/pooled_bands.json

(``--shipped-out`` keeps the script from rewriting the shipped held-out sets: their arrays come out
equal, their timestamps not.) Per run the bundles and fidelity.json files go to ``--work``
(outputs/pooled_bands).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from numpyro_slic.cli import main as cli
from numpyro_slic.data.io import atomic_write_json
from numpyro_slic.noise.fidelity import paired_bootstrap

PAIRS = {"sw": ("f115w", "f150w"), "lw": ("f277w", "f444w")}
RECIPE = ["--no-net", "--backbone-kind", "correlated-mixture", "--backbone-components", "4", "--backbone-background",
          "--scale", "1.0", "--no-progress"]
VALIDATE = ["--num-generated", "64", "--nll-size", "16", "--nll-trace", "exact", "--classifier-size", "16",
            "--no-progress"]


def _summary(result: dict) -> dict:
    """The fidelity numbers the docs quote, from one validate result."""
    nll, pixels, tails = result["nll"], result["statistics"]["pixels"], result["statistics"]["tail_over_real"]
    return {
        "nll_model": nll["summary"]["mean_a"],
        "nll_gaussian": nll["summary"]["mean_b"],
        "model_minus_gaussian": {k: nll["summary"][k] for k in
                                 ("diff", "se_diff", "diff_in_se", "median_diff", "se_median_diff", "a_below_b", "n",
                                  "sign_test_p")},
        "excess_kurtosis": {k: pixels[k]["excess_kurtosis"] for k in ("real", "model", "gaussian")},
        "tail_over_real": tails["model"],
        "auc_model": result["classifier"]["model"]["auc"],
        "auc_gaussian": result["classifier"]["gaussian"]["auc"],
    }


def _pair(a: dict, b: dict, n_boot: int) -> dict:
    """Crop-by-crop paired statistics of two validate results' NLLs on the same crops."""
    if a["nll"]["crops"] != b["nll"]["crops"] or a["nll"]["sigma"] != b["nll"]["sigma"]:
        raise ValueError("the two validate runs scored different crops or levels; they cannot be paired.")
    return paired_bootstrap(a["nll"]["model_nll"], b["nll"]["model_nll"], n_boot=n_boot)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--patches", type=Path, default=Path("outputs/patches"), help="jwst_<band>_sky_train.npz files")
    p.add_argument("--val", type=Path, default=Path("numpyro_slic/data/shipped"), help="jwst_<band>_sky_val.npz files")
    p.add_argument("--work", type=Path, default=Path("outputs/pooled_bands"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/pooled_bands.json"))
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    train = {band: str(args.patches / f"jwst_{band}_sky_train.npz") for pair in PAIRS.values() for band in pair}
    val = {band: str(args.val / f"jwst_{band}_sky_val.npz") for band in train}
    start = time.perf_counter()

    bundles = {}
    for name, bands in PAIRS.items():
        bundles[name] = str(args.work / f"jwst-nircam-{name}.zip")
        cli(["train", "--patches", *(train[b] for b in bands), "--val-patches", *(val[b] for b in bands),
             "--out", bundles[name], *RECIPE])
        for band in bands:
            bundles[band] = str(args.work / f"jwst-nircam-{band}.zip")
            cli(["train", "--patches", train[band], "--val-patches", val[band], "--out", bundles[band], *RECIPE])

    rows = {}
    for name, bands in PAIRS.items():
        for band in bands:
            results = {}
            for which, bundle in (("own band", bundles[band]), ("pooled pair", bundles[name])):
                out = args.work / f"{Path(bundle).stem}_on_{band}"
                # Each model's Gaussian is fitted to its own training patches (the bundle's command);
                # the pooled model is also paired with the band's own Gaussian below.
                cli(["validate", bundle, "--val-patches", val[band], *VALIDATE, "--out", str(out)])
                results[which] = json.loads((out / "fidelity.json").read_text())
            own, pooled = results["own band"], results["pooled pair"]
            n_boot = own["nll"]["summary"]["n_boot"]
            rows[band] = {
                "pair": name,
                "own band": _summary(own),
                "pooled pair": _summary(pooled),
                "pooled_minus_own_model": _pair(pooled, own, n_boot),
                "pooled_model_minus_own_gaussian": paired_bootstrap(pooled["nll"]["model_nll"],
                                                                    own["nll"]["gaussian_nll"], n_boot=n_boot),
                "commands": {k: v["command"] for k, v in results.items()},
                "weights_sha256": {k: v["weights_sha256"] for k, v in results.items()},
            }
            d = rows[band]["pooled_minus_own_model"]
            print(f"{band}: pooled - own model {d['diff']:+.4f} +- {d['se_diff']:.4f} ({d['diff_in_se']:+.1f} se), "
                  f"median {d['median_diff']:+.4f}, pooled lower on {d['a_below_b']}/{d['n']}")
    atomic_write_json(args.out, {
        "command": "python benchmarks/pooled_bands.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "recipe": RECIPE,
        "validate": VALIDATE,
        "units": "nats per pixel of the once-perturbed held-out crops (trained units)",
        "bands": rows,
        "wall_s": time.perf_counter() - start,
    }, indent=1)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
