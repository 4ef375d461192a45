"""The fidelity table of every shipped noise model, from its committed ``numpyro-slic validate`` JSON.

    python scripts/fidelity_table.py                  # print the table
    python scripts/fidelity_table.py --write-docs     # rewrite its block in docs/noise_validation.md
    python scripts/fidelity_table.py --check          # exit 1 if that block or a JSON is stale

Each shipped model's result is ``benchmarks/results/fidelity_<model>.json`` (the command that made it
is inside, under ``command``). A JSON whose ``weights_sha256`` is not the shipped bundle's is refused:
it describes another model. The table (``diagnostics.noise_fidelity.comparison_table``) has one
column per model and marks each of issue 11's targets met or not; a tail target reads "n/a" where
the shipped held-out set has fewer than 5 distinct pixels beyond that many sigma
(``noise.fidelity.distinct_tail_counts``).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

from numpyro_slic.data import load_patch_sets
from numpyro_slic.data.io import atomic_write
from numpyro_slic.diagnostics.noise_fidelity import SHIPPED_VAL, comparison_table
from numpyro_slic.noise.bundle import read_bundle_metadata, shipped_models
from numpyro_slic.noise.fidelity import distinct_tail_counts

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "noise_validation.md"
START, END = "<!-- fidelity-table:start (scripts/fidelity_table.py --write-docs) -->", "<!-- fidelity-table:end -->"


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


def with_block(text: str, table: str) -> str:
    """``text`` with the part between the markers replaced by ``table``."""
    if START not in text or END not in text:
        raise ValueError(f"{DOCS} has no fidelity-table markers ({START!r} ... {END!r}).")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=pathlib.Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--models", nargs="+", default=list(shipped_models()))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write-docs", action="store_true", help=f"rewrite the table's block in {DOCS.name}")
    group.add_argument("--check", action="store_true", help=f"exit 1 if the block in {DOCS.name} is stale")
    args = parser.parse_args(argv)

    table = comparison_table(load_results(args.results_dir, args.models), real_distinct_counts(args.models))
    if args.write_docs or args.check:
        text = DOCS.read_text()
        new = with_block(text, table)
        if args.check:
            if new != text:
                print(f"{DOCS} is stale: run python scripts/fidelity_table.py --write-docs", file=sys.stderr)
                return 1
            return 0
        atomic_write(DOCS, lambda f: f.write(new.encode("utf-8")))
        print(f"wrote the table into {DOCS}")
        return 0
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
