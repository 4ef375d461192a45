"""How often ``noise.fidelity.ratio_intervals`` holds the true ratio, on noise whose truth is known.

Real and generated sets are both i.i.d. Student-t pixels of the same dof, so every generated-over-
real ratio is 1; the fraction of repeats whose 95% interval holds 1 is the interval's coverage
(docs/noise_validation.md, "How precisely the held-out sky knows each ratio"):

    python benchmarks/ratio_interval_coverage.py --out benchmarks/results/ratio_interval_coverage.json

About 25 s on this project's 2-core CPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from numpyro_slic.data.io import atomic_write_json
from numpyro_slic.diagnostics.noise_fidelity import model_over_real
from numpyro_slic.noise import fidelity


def coverage(repeats: int, tiles: int, draws: int, size: int, dof: float, n_boot: int) -> dict:
    """Fraction of ``repeats`` whose intervals hold 1, per ratio, and the median interval."""
    i = np.arange(tiles)
    corners = np.stack([np.zeros(tiles), size * (i // 8), size * (i % 8)], 1).astype(np.int64)  # disjoint tiles
    held, ends = {}, {}
    for rep in range(repeats):
        rng = np.random.default_rng(rep)
        real, generated = rng.standard_t(dof, (tiles, size, size)), rng.standard_t(dof, (draws, size, size))
        points = model_over_real(fidelity.compare_statistics(real, {"model": generated}, n_boot=2))
        found = fidelity.ratio_intervals(real, corners, generated, points, block=size, n_boot=n_boot, seed=rep)
        for name, (lo, hi) in found["intervals"].items():
            held[name] = held.get(name, 0) + int(lo <= 1.0 <= hi)
            ends.setdefault(name, []).append((lo, hi))
    return {name: {"coverage": held[name] / repeats, "median_interval": np.median(ends[name], axis=0).tolist()}
            for name in held}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--tiles", type=int, default=48, help="real tiles (each one block)")
    parser.add_argument("--draws", type=int, default=256)
    parser.add_argument("--size", type=int, default=16, help="tile side, pixels")
    parser.add_argument("--dof", type=float, default=6.0, help="Student-t degrees of freedom")
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--out", default="benchmarks/results/ratio_interval_coverage.json")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = {"settings": vars(args), "level": 0.95,
              "ratios": coverage(args.repeats, args.tiles, args.draws, args.size, args.dof, args.n_boot)}
    result["seconds"] = time.perf_counter() - start
    atomic_write_json(args.out, result, indent=1)
    for name, r in result["ratios"].items():
        print(f"{name:9s} coverage {r['coverage']:.3f}, median interval {r['median_interval'][0]:.2f}-"
              f"{r['median_interval'][1]:.2f}")
    print(f"wrote {args.out} ({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
