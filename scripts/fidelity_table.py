"""The fidelity table of every shipped noise model, from its committed ``numpyro-slic validate`` JSON.

    python scripts/fidelity_table.py                  # print the table
    python scripts/fidelity_table.py --write-docs     # rewrite its block in docs/noise_validation.md
    python scripts/fidelity_table.py --check          # exit 1 if that block or a JSON is stale

Each shipped model's result is ``benchmarks/results/fidelity_<model>.json`` (the command that made it
is inside, under ``command``). A JSON whose ``weights_sha256`` is not the shipped bundle's is refused:
it describes another model. The table (``diagnostics.noise_fidelity.comparison_table``) has one
column per model and marks each of issue 11's targets met or not; a tail target reads "n/a" where
the shipped held-out set has fewer than 5 distinct pixels beyond that many sigma
(``noise.fidelity.distinct_tail_counts``), and a ratio target adds "resolved" where the ratio's 95%
interval (``noise.fidelity.ratio_intervals``) lies wholly inside or wholly outside 1 +- 25%, "not
resolved" where the held-out sky allows both.

A second table, of the same targets under 3-fold cross-validation of the exact recipes
(``benchmarks/crossval_fidelity.py``: the correlated mixture in ``crossval_fidelity.json``, the
Gaussian copula in ``copula_backbone.json``, the copula with its kernel radius chosen on each fold's
training sky in ``crossval_nested_radius_copula.json``, all in ``benchmarks/results``) and of which
recipe each shipped model is, goes in its own block of the same page and is checked the same way.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from numpyro_slic.data import load_patch_sets
from numpyro_slic.data.io import atomic_write
from numpyro_slic.diagnostics.noise_fidelity import SHIPPED_VAL, TAIL_TOLERANCE, comparison_table, target_mark
from numpyro_slic.noise.bundle import read_bundle_metadata, shipped_models
from numpyro_slic.noise.fidelity import distinct_tail_counts, format_intervals

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "noise_validation.md"
START, END = "<!-- fidelity-table:start (scripts/fidelity_table.py --write-docs) -->", "<!-- fidelity-table:end -->"
CV_START, CV_END = "<!-- crossval-table:start (scripts/fidelity_table.py --write-docs) -->", "<!-- crossval-table:end -->"
CV_RESULT = ROOT / "benchmarks" / "results" / "crossval_fidelity.json"
COPULA_RESULT = ROOT / "benchmarks" / "results" / "copula_backbone.json"
NESTED_RESULT = ROOT / "benchmarks" / "results" / "crossval_nested_radius_copula.json"
FAMILY = {"correlated-mixture": "correlated mixture", "gaussian-copula": "Gaussian copula",
          "gaussian": "stationary Gaussian", "mixture": "i.i.d. mixture"}


def load_results(results_dir: pathlib.Path, models) -> dict:
    """name -> the model's validate result, checked against the shipped weights."""
    results = {}
    for name in models:
        path = results_dir / f"fidelity_{name}.json"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `numpyro-slic validate {name} ...` and copy its "
                                    "fidelity.json there (the commands are in docs/noise_validation.md).")
        result = json.loads(path.read_text())
        shipped = read_bundle_metadata(name)["weights"]["sha256"]
        if result["weights_sha256"] != shipped:
            raise ValueError(f"{path} validated weights {result['weights_sha256'][:12]}..., but the shipped "
                             f"{name} has {shipped[:12]}...: rerun its validation.")
        results[name] = result
    return results


def real_distinct_counts(models) -> dict:
    """name -> distinct held-out pixels beyond 3, 4, 5 sigma, from the shipped held-out set(s)."""
    counts = {}
    for name in models:
        val = load_patch_sets(SHIPPED_VAL[name])
        counts[name] = distinct_tail_counts(val.patches, val.positions)
    return counts


def shipped_recipe(name: str) -> str:
    """What the shipped model ``name`` (a crossval source name, e.g. "hst-acs-f814w (backbone
    alone)") is, from its bundle: the backbone family and kernel radius, and whether a net is on it."""
    meta = read_bundle_metadata(name.split(" (")[0])
    config = meta["metadata"]["training"]["config"]
    recipe = f"{FAMILY[config['backbone_kind']]}, radius {config.get('backbone_radius', 16)}"
    return recipe + (", and a net" if meta["model"]["net"] is not None else "")


def crossval_table(result: dict, copula: dict | None = None, nested: dict | None = None) -> str:
    """A markdown table of ``benchmarks/crossval_fidelity.py``'s result: one column per source, each
    row the band / stripes / cells schemes' pooled numbers, and issue 11's targets per scheme; with
    ``copula`` (``benchmarks/crossval_fidelity.py --backbone-kind gaussian-copula``'s result, same
    sources) and ``nested`` (the same with ``--radius nested``), their rows below, and the recipe
    each shipped model is."""
    names = list(result["sources"])
    schemes = [k for k in ("band", "stripes", "cells") if all(k in result["sources"][n] for n in names)]

    def ratio(x):
        return "-" if x is None or x != x else f"{x:.2f}"

    def per_scheme(fn):
        return [" / ".join(fn(result["sources"][n][k]) for k in schemes) for n in names]

    def mark(r, key):
        return target_mark(r["targets"][key], r.get("target_evidence", {}).get(key))

    def intervals(r):
        return format_intervals(r["model_over_real_intervals"]) if "model_over_real_intervals" in r else "-"

    def kurtosis(x):
        return f"{x:+.0f}" if abs(x) >= 100 else f"{x:+.3f}"

    lead = " / ".join(schemes)
    rows = [
        (f"held-out crops ({lead})", per_scheme(lambda r: str(r["nll"]["n"]))),
        (f"NLL model - Gaussian, pooled over the folds, in bootstrap se ({lead})",
         per_scheme(lambda r: f"{r['nll']['diff_in_se']:+.1f}")),
        (f"excess kurtosis, model over real ({lead})", per_scheme(lambda r: ratio(r["model_over_real"]["kurtosis"]))),
        (f"> 4 sigma rate, model over real ({lead})", per_scheme(lambda r: ratio(r["model_over_real"]["4sigma"]))),
        (f"> 5 sigma rate, model over real ({lead})", per_scheme(lambda r: ratio(r["model_over_real"]["5sigma"]))),
        ("model over real, 95% interval: kurtosis; > 3 / 4 / 5 sigma (stripes)",
         [intervals(result["sources"][n]["stripes"]) for n in names] if "stripes" in schemes else None),
        (f"training sky over real: kurtosis; > 4 sigma ({lead})",
         per_scheme(lambda r: f"{ratio(r['training_over_real']['kurtosis'])}; {ratio(r['training_over_real']['4sigma'])}")),
        (f"real held-out pixels beyond 4 / 5 sigma, distinct ({lead})",
         per_scheme(lambda r: f"{r['real']['distinct_beyond']['4']}, {r['real']['distinct_beyond']['5']}")),
        ("real held-out excess kurtosis, fold by fold (stripes)",
         [", ".join(kurtosis(f["real_excess_kurtosis"]) for f in result["sources"][n]["stripes"]["folds"])
          for n in names] if "stripes" in schemes else None),
    ]
    for key, what in (("nll", "NLL beats the Gaussian by > 3 se"),
                      ("kurtosis", f"kurtosis within {TAIL_TOLERANCE:.0%} of real"),
                      ("tail_4sigma", f"> 4 sigma rate within {TAIL_TOLERANCE:.0%}"),
                      ("tail_5sigma", f"> 5 sigma rate within {TAIL_TOLERANCE:.0%}")):
        rows.append((f"target: {what} ({lead})", per_scheme(lambda r, key=key: mark(r, key))))
    def variant_rows(other: dict, label: str) -> list:
        """Rows of another recipe's crossval result: NLL on band and stripes, stripes tails and targets."""
        stripes = [other["sources"][n]["stripes"] for n in names]
        return [
            (f"{label}: NLL model - Gaussian in se (band / stripes)",
             [" / ".join(f"{other['sources'][n][k]['nll']['diff_in_se']:+.1f}" for k in ("band", "stripes"))
              for n in names]),
            (f"{label}: kurtosis; > 4 / 5 sigma rates, model over real (stripes)",
             [f"{ratio(r['model_over_real']['kurtosis'])}; {ratio(r['model_over_real']['4sigma'])} / "
              f"{ratio(r['model_over_real']['5sigma'])}" for r in stripes]),
            (f"{label}: model over real, 95% interval (stripes)", [intervals(r) for r in stripes]),
            (f"{label}: targets NLL / kurtosis / 4 / 5 sigma (stripes)",
             [" / ".join(mark(r, k) for k in ("nll", "kurtosis", "tail_4sigma", "tail_5sigma"))
              for r in stripes]),
        ]

    if copula is not None:
        rows += variant_rows(copula, "Gaussian copula")
    if nested is not None:
        # nested_radius lists the folds source by source, scheme by scheme, in run order.
        folds = [k for k in nested["schemes"] for _ in nested["schemes"][k]]
        records = nested["nested_radius"]
        radii = {name: [r["radius"] for k, r in zip(folds, records[i * len(folds):(i + 1) * len(folds)])
                        if k == "stripes"] for i, name in enumerate(nested["sources"])}
        rows.append(("Gaussian copula, kernel radius chosen on each fold's training sky: radii (stripes folds)",
                     [", ".join(str(r) for r in radii[n]) for n in names]))
        rows += variant_rows(nested, "the same")
    rows.append(("the shipped model's recipe (its bundle)", [shipped_recipe(n) for n in names]))
    lines = ["| | " + " | ".join(f"`{n}`" for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows if cells is not None]
    return "\n".join(lines)


def with_block(text: str, table: str, start: str = START, end: str = END) -> str:
    """``text`` with the part between the markers ``start`` and ``end`` replaced by ``table``."""
    if start not in text or end not in text:
        raise ValueError(f"{DOCS} has no table markers ({start!r} ... {end!r}).")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{table}\n{end}{tail}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=pathlib.Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--models", nargs="+", default=list(shipped_models()))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write-docs", action="store_true", help=f"rewrite the table's block in {DOCS.name}")
    group.add_argument("--check", action="store_true", help=f"exit 1 if the block in {DOCS.name} is stale")
    args = parser.parse_args(argv)

    table = comparison_table(load_results(args.results_dir, args.models), real_distinct_counts(args.models))
    cv_table = crossval_table(*(json.loads(path.read_text()) for path in (CV_RESULT, COPULA_RESULT, NESTED_RESULT)))
    if args.write_docs or args.check:
        text = DOCS.read_text()
        new = with_block(with_block(text, table), cv_table, CV_START, CV_END)
        if args.check:
            if new != text:
                print(f"{DOCS} is stale: run python scripts/fidelity_table.py --write-docs", file=sys.stderr)
                return 1
            return 0
        atomic_write(DOCS, lambda f: f.write(new.encode("utf-8")))
        print(f"wrote the table into {DOCS}")
        return 0
    print(table + "\n\n" + cv_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
