"""Held-out NLL, model against Gaussian, crop by crop: statistics that a few huge crops cannot swamp.

`numpyro-slic validate` stores every crop's NLL (model by the probability-flow ODE, the
training-fitted stationary Gaussian exactly, same perturbed crops) in its JSON. Its headline is the
mean paired difference in bootstrap standard errors. Where a few crops hold cosmic-ray hits, which
cost the Gaussian thousands of nats, that standard error is the error of those few crops, and the
mean cannot show a model that wins on every other crop too. This script rereads the stored per-crop
values and adds, per result, the median paired difference with its bootstrap error (the same
resamples), the number of crops where the model is lower, and the two-sided sign-test p-value
(``noise.fidelity.paired_bootstrap``). No model is evaluated: it takes a second.

    python benchmarks/nll_robust.py benchmarks/results/fidelity_*.json --out benchmarks/results/nll_robust.json

With ``--against OLD.json`` each result's model is paired with OLD's model instead of with its
Gaussian (new minus old, per crop): a model retrained or fine-tuned, scored by the same validate
command. The two must share crops, level and perturbation, else it stops and says which differs.

    python benchmarks/nll_robust.py NEW/fidelity.json --against benchmarks/results/fidelity_hst-acs-f814w.json --out OUT.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from numpyro_slic.data.io import atomic_write_json
from numpyro_slic.noise.fidelity import paired_bootstrap


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", type=Path, help="fidelity JSON files written by numpyro-slic validate")
    p.add_argument("--against", type=Path, default=None,
                   help="a fidelity JSON whose model each result's model is paired with (new - old), not the Gaussian")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/nll_robust.json"))
    args = p.parse_args(argv)
    old = None if args.against is None else json.loads(args.against.read_text())
    rows = {}
    for path in sorted(args.results):
        result = json.loads(path.read_text())
        nll = result["nll"]
        if old is None:
            other = nll["gaussian_nll"]
        else:
            same = {k: old["nll"].get(k) == nll.get(k) for k in ("crops", "sigma", "perturbation")}
            if not all(same.values()):
                p.error(f"{path} and {args.against} differ in {[k for k, v in same.items() if not v]}: not paired")
            other = old["nll"]["model_nll"]
        summary = paired_bootstrap(nll["model_nll"], other, n_boot=nll["summary"]["n_boot"])
        rows[path.name] = {"model": result["model"], "sigma": nll["sigma"], **summary}
        print(f"{path.name}: mean {summary['diff']:+.4f} +- {summary['se_diff']:.4f} ({summary['diff_in_se']:+.1f} se), "
              f"median {summary['median_diff']:+.4f} +- {summary['se_median_diff']:.4f}, "
              f"model lower on {summary['a_below_b']}/{summary['n']}, sign test p = {summary['sign_test_p']:.2g}")
    out = {"command": "python benchmarks/nll_robust.py " + " ".join(str(r) for r in args.results)
           + ("" if old is None else f" --against {args.against}"),
           "what": "paired model - " + ("Gaussian" if old is None else f"{old['model']} (from {args.against})")
           + " held-out NLL per crop (nats/pixel), reread from each JSON's nll",
           "results": rows}
    atomic_write_json(args.out, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
