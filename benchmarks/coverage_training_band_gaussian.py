"""Control for the JWST lens coverage: the stationary Gaussian fitted to the *training* band, in SLIC's slot.

The coverage problem fits its Gaussians to a quarter of the held-out tiles, the band the injection
noise comes from; a learned model is fitted to the training band, whose tiles vary three times less
in mean (the k = 0 mode; ``benchmarks/coverage_lowk_power.py``). This runs the same 100 injections
(same seed, ids and perturbation; NUTS settings read from the in-band Gaussian's committed batches in
``--reference``) with the stationary Gaussian of the training band's 32 x 32 tiles as the likelihood, so a verdict that
differs from the in-band Gaussian's is the band's doing, not a non-Gaussian model's. The batches and
the report (where this likelihood is labelled "SLIC", the slot it runs in) go to ``--out``; about
20 minutes on 2 CPU cores:

    python benchmarks/coverage_training_band_gaussian.py --train-patches outputs/patches/jwst_f150w_sky_train.npz \\
        --reference benchmarks/results/coverage/lens32-jwst-f150w \
        --out benchmarks/results/coverage/lens32-jwst-f150w-training-band-gaussian
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from numpyro_slic.coverage import RunConfig, lens_coverage_problem, load_results, run_injections
from numpyro_slic.coverage.problems import noise_tiles
from numpyro_slic.coverage.report import coverage_report, markdown_table
from numpyro_slic.data.io import load_patch_set
from numpyro_slic.problems.lens import likelihood_noise


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-patches", required=True)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--injections", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--reference", required=True,
                   help="folder of the in-band Gaussian's run whose seed and NUTS settings this one repeats")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    tiles = noise_tiles(np.asarray(load_patch_set(args.train_patches).patches, np.float64), args.size)
    gaussian = likelihood_noise("stationary", patches=tiles)
    problem = lens_coverage_problem(args.size, "jwst-f150w", likelihoods=("slic",), noise_model=gaussian)
    reference = load_results(args.reference, "stationary Gaussian").metadata
    if reference["problem"] != problem.name:
        raise SystemExit(f"--reference holds {reference['problem']!r} runs, not {problem.name!r}.")
    config = RunConfig(**reference["sampling"], batch_size=args.batch_size)
    run_injections(problem, "SLIC", args.injections, args.out, config=config, seed=reference["seed"])
    report = coverage_report(args.out, seed=reference["seed"])
    print(markdown_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
