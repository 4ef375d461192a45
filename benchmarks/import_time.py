"""What ``import numpyro_slic`` and ``numpyro-slic --help`` cost: wall time and the heavy modules loaded.

Each case runs in a fresh Python process, ``--repeats`` times (the first run also warms the OS file
cache and the bytecode caches, so it is dropped); the statistic is the median (and min) wall time of
the whole process, interpreter start included. Cases:

- ``python -c pass``: the interpreter alone, the floor of every other number;
- ``import numpyro_slic``;
- ``from numpyro_slic import ScoreLikelihood, StationaryGaussianNoise``: the likelihood alone;
- ``numpyro-slic --help`` (as the console script runs it: ``numpyro_slic.cli.main(["--help"])``).

For each case the heavy modules left in ``sys.modules`` (jax, numpyro, equinox, diffrax, optax,
astropy, photutils, matplotlib, arviz, scipy) are recorded too.

    python benchmarks/import_time.py --label after [--root .] [--out benchmarks/results/import_time_cpu.json]

``--root`` is the directory that holds the ``numpyro_slic`` package to measure (put first on
PYTHONPATH), so a checkout of an older commit (``git archive <commit> | tar -x -C /tmp/old``) can be
measured with ``--root /tmp/old --label before``. Results are merged into ``--out`` by label.

Measured here (results/import_time_cpu.json; 2 CPU cores shared with other jobs, load about 8, so
absolute times are noisy), median of 5, before (3ef019f) -> after the lazy re-exports:
``import numpyro_slic`` 2.60 s -> 0.056 s (the bare interpreter: 0.05 s), ``numpyro-slic --help``
5.26 s -> 0.27 s, the likelihood alone 3.61 s -> 2.35 s (jax, numpyro and equinox remain;
diffrax, optax and astropy are no longer loaded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HEAVY = ("jax", "numpyro", "equinox", "diffrax", "optax", "astropy", "photutils", "matplotlib", "arviz",
         "scipy")

CASES = {
    "python -c pass": "pass",
    "import numpyro_slic": "import numpyro_slic",
    "from numpyro_slic import ScoreLikelihood, StationaryGaussianNoise":
        "from numpyro_slic import ScoreLikelihood, StationaryGaussianNoise",
    "numpyro-slic --help": (
        "import contextlib, io\n"
        "from numpyro_slic.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass"
    ),
}

_REPORT = (
    "\nimport json, sys\n"
    f"print('HEAVY=' + json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
)


def _run(code: str, root: str) -> tuple[float, list[str]]:
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    # cwd=root too: ``python -c`` puts the working directory first on sys.path.
    proc = subprocess.run([sys.executable, "-c", code + _REPORT], env=env, cwd=root, capture_output=True,
                          text=True, check=True)
    wall = time.perf_counter() - start
    line = next(x for x in proc.stdout.splitlines() if x.startswith("HEAVY="))
    return wall, json.loads(line[len("HEAVY="):])


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="key of this measurement in --out (e.g. before, after)")
    parser.add_argument("--root", default=os.path.dirname(here), help="directory holding numpyro_slic/")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--commit", default=None, help="the commit measured, recorded as given")
    parser.add_argument("--out", default=os.path.join(here, "results", "import_time_cpu.json"))
    args = parser.parse_args()

    from numpyro_slic.data.io import atomic_write_json

    cases = {}
    for name, code in CASES.items():
        _run(code, args.root)  # warm the file and bytecode caches
        walls, heavy = [], None
        for _ in range(args.repeats):
            wall, heavy = _run(code, args.root)
            walls.append(wall)
        cases[name] = {"median_s": statistics.median(walls), "min_s": min(walls), "walls_s": walls,
                       "heavy_modules_loaded": heavy}
        print(f"{args.label:>8}  {name:<66} median {statistics.median(walls):6.3f} s  min {min(walls):6.3f} s"
              f"  heavy: {', '.join(heavy) or '-'}")

    doc = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            doc = json.load(f)
    doc.setdefault("meta", {}).update({
        "statistic": "wall time of a fresh Python process (interpreter start included), "
                     f"median and min of {args.repeats} runs after one warm-up run",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), load average at end "
                   f"{os.getloadavg()[0]:.2f}",
        "command": "python benchmarks/import_time.py --label LABEL [--root DIR] [--commit HASH]",
    })
    doc.setdefault("runs", {})[args.label] = {"commit": args.commit, "cases": cases}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    atomic_write_json(args.out, doc, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
