"""Coverage throughput: injections per hour, batched (one vectorised NUTS computation) against one at a time.

For each likelihood of the lens coverage problem (``numpyro_slic.coverage.lens_coverage_problem``):
run ``--batch`` injections as ONE batch, and ``--one-at-a-time`` injections (default: as many) one
injection per batch (batch size 1), both through ``run_injections`` with the same NUTS settings, each
after its own compilation (timed apart and reported, not counted). The batched mode runs first and
every measurement is written at once, so a run cut short keeps what it measured. Reported per
likelihood and mode: sampling seconds, injections per hour, leapfrog steps per second (summed over chains and injections) and the mean tree size. A batch
waits for its longest trajectory (NUTS's while-loop under vmap), so batching pays only where one
evaluation of many images costs less than many evaluations of one: on a GPU, not on a 2-core CPU.

    python benchmarks/coverage.py [--size 32] [--noise jwst-f150w] [--likelihoods white,stationary,slic]
        [--batch 4] [--one-at-a-time 4] [--num-warmup 50] [--num-samples 50] [--out benchmarks/results/coverage_cpu.json]

Full-size injections per hour follow from these by the ratio of NUTS iterations (warmup + draws),
since the cost per iteration does not depend on how many there are (tree sizes aside).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time

import jax
import numpy as np

from numpyro_slic.coverage import RunConfig, lens_coverage_problem, load_results, run_injections
from numpyro_slic.data.io import atomic_write_json

NAMES = {"white": "white Gaussian", "stationary": "stationary Gaussian", "slic": "SLIC"}


def measure(problem, likelihood, config, n):
    """run_injections of n injections in a fresh folder; sampling seconds, compile seconds, steps."""
    out = tempfile.mkdtemp()
    r = run_injections(problem, likelihood, n, out, config=config, progress=False)
    res = load_results(out, likelihood)
    seconds = float(np.sum(r["seconds"]))
    steps = int(res.num_steps.sum())
    return {
        "injections": n,
        "batch_size": config.batch_size,
        "sampling_seconds": seconds,
        "compile_seconds": r["compile_seconds"],
        "injections_per_hour": 3600 * n / seconds,
        "leapfrog_steps": steps,
        "leapfrog_steps_per_second": steps / seconds,
        "mean_tree_size": float(res.num_steps.mean()),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--noise", default="jwst-f150w")
    p.add_argument("--likelihoods", default="white,stationary,slic")
    p.add_argument("--batch", type=int, default=4, help="injections in the batched mode (one batch)")
    p.add_argument("--one-at-a-time", type=int, default=None,
                   help="injections run one per batch (default: --batch; fewer keeps a GPU run short)")
    p.add_argument("--num-warmup", type=int, default=50)
    p.add_argument("--num-samples", type=int, default=50)
    p.add_argument("--num-chains", type=int, default=2)
    p.add_argument("--max-tree-depth", type=int, default=5)
    p.add_argument("--out", default="benchmarks/results/coverage_cpu.json")
    args = p.parse_args(argv)

    kinds = args.likelihoods.split(",")
    problem = lens_coverage_problem(args.size, args.noise, likelihoods=tuple(kinds))
    single = args.batch if args.one_at_a_time is None else args.one_at_a_time
    results = {}
    for kind in kinds:
        name = NAMES[kind]
        entry = results[name] = {}
        for mode, batch, n in (("batched", args.batch, args.batch), ("one_at_a_time", 1, single)):
            config = RunConfig(num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=args.num_chains,
                               max_tree_depth=args.max_tree_depth, batch_size=batch)
            entry[mode] = measure(problem, name, config, n)
            print(name, mode, json.dumps(entry[mode]), file=sys.stderr)
            if len(entry) == 2:
                entry["batched_speedup"] = entry["batched"]["injections_per_hour"] / entry["one_at_a_time"]["injections_per_hour"]
            # Written after every measurement, so a killed run keeps what it measured.
            atomic_write_json(args.out, {
                "command": "python benchmarks/coverage.py " + shlex.join(sys.argv[1:] if argv is None else argv),
                "problem": problem.info,
                "settings": {"num_warmup": args.num_warmup, "num_samples": args.num_samples,
                             "num_chains": args.num_chains, "max_tree_depth": args.max_tree_depth},
                "machine": {"platform": platform.platform(), "processor": platform.processor(),
                            "cpu_count": os.cpu_count(), "devices": [str(d) for d in jax.devices()],
                            "device_kinds": sorted({d.device_kind for d in jax.devices()}), "jax": jax.__version__, "load_average_at_end": os.getloadavg()},
                "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                "results": results,
            }, indent=1)

if __name__ == "__main__":
    main()
