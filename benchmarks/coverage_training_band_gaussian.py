"""Control for the JWST lens coverage: the stationary Gaussian fitted to the *training* band, in SLIC's slot.

The coverage problem fits its Gaussians to a quarter of the held-out tiles, the band the injection
noise comes from; a learned model is fitted to the training band, whose tiles vary three times less
in mean (the k = 0 mode; ``benchmarks/coverage_lowk_power.py``). This runs the same 100 injections
(same seed, ids, perturbation and NUTS settings as ``numpyro-slic coverage`` defaults) with the
stationary Gaussian of the training band's 32 x 32 tiles as the likelihood, so a verdict that
differs from the in-band Gaussian's is the band's doing, not a non-Gaussian model's. The batches and
the report (where this likelihood is labelled "SLIC", the slot it runs in) go to ``--out``; about
20 minutes on 2 CPU cores:

    python benchmarks/coverage_training_band_gaussian.py --train-patches outputs/patches/jwst_f150w_sky_train.npz \\
        --out benchmarks/results/coverage/lens32-jwst-f150w-training-band-gaussian
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from numpyro_slic.coverage import RunConfig, lens_coverage_problem, run_injections
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
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    tiles = noise_tiles(np.asarray(load_patch_set(args.train_patches).patches, np.float64), args.size)
    gaussian = likelihood_noise("stationary", patches=tiles)
    problem = lens_coverage_problem(args.size, "jwst-f150w", likelihoods=("slic",), noise_model=gaussian)
    # The settings of `numpyro-slic coverage` (its defaults), as the committed Gaussian runs used.
    config = RunConfig(num_warmup=400, num_samples=500, num_chains=2, max_tree_depth=5,
                       batch_size=args.batch_size, min_ess=100.0)
    run_injections(problem, "SLIC", args.injections, args.out, config=config)
    report = coverage_report(args.out)
    print(markdown_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
