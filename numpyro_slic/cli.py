"""The ``numpyro-slic`` command.

One function per subcommand (``cmd_<name>``), each registered by an ``_add_<name>`` function.
Heavy imports (jax, astropy, ...) happen inside the subcommands, so ``numpyro-slic --help`` is fast.
"""

from __future__ import annotations

import argparse
import shlex
import sys

__all__ = ["main", "build_parser", "cmd_train", "cmd_demo", "cmd_coverage", "cmd_validate"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``numpyro-slic`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    # What ran, for bundles and results: the arguments given, also when main is called from Python.
    args.command_line = "numpyro-slic " + shlex.join(argv)
    return int(args.func(args) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="numpyro-slic",
        description="Score-based likelihood characterization (SLIC) for NumPyro.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo(sub)
    _add_train(sub)
    _add_coverage(sub)
    _add_validate(sub)
    return parser


# ---- demo --------------------------------------------------------------------------------------------


def _add_demo(sub) -> None:
    from .demo import DemoConfig  # light: the module imports jax only inside run_demo

    d = DemoConfig()
    p = sub.add_parser(
        "demo",
        help="fit a simulated JWST lens in real JWST noise with SLIC, correlated- and white-Gaussian NUTS",
        description=(
            "The embedded end-to-end example: the shipped JWST F150W noise model, PSF and held-out real "
            "sky patches; a simulated SIE + shear + Sersic lens plus one real noise patch; NUTS under "
            "the SLIC, stationary-Gaussian and white-Gaussian likelihoods. Prints each posterior beside "
            "the truth and writes a corner plot, the images and a JSON summary. No downloads."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--size", type=int, default=d.size, help="image side in pixels (0.03\"/pixel), <= 64")
    p.add_argument("--seed", type=int, default=d.seed, help="picks the noise patch and seeds the chains")
    p.add_argument("--num-warmup", type=int, default=d.num_warmup,
                   help="NUTS warmup per likelihood (step size; the metric is the posterior's Laplace approximation)")
    p.add_argument("--num-samples", type=int, default=d.num_samples, help="draws per likelihood")
    p.add_argument("--max-tree-depth", type=int, default=d.max_tree_depth,
                   help="cap of the NUTS trajectories (2^depth - 1 gradient evaluations per draw)")
    p.add_argument("--nodes", type=int, default=d.nodes,
                   help="line-integral nodes of the SLIC value (score-parameterised noise models only)")
    p.add_argument("--level-sigma", type=float, default=d.level_sigma,
                   help="diffusion level of the score, as a Gaussian sd in units of the sky sigma")
    p.add_argument("--noise-model", default=d.noise_model, help="shipped name or path of a bundle")
    p.add_argument("--out", default=d.out_dir, help="output directory")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import DemoConfig, run_demo

    run_demo(
        DemoConfig(
            size=args.size,
            seed=args.seed,
            num_warmup=args.num_warmup,
            num_samples=args.num_samples,
            max_tree_depth=args.max_tree_depth,
            nodes=args.nodes,
            level_sigma=args.level_sigma,
            noise_model=args.noise_model,
            out_dir=args.out,
            progress=not args.no_progress,
        )
    )
    return 0


# ---- train -------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _backbone_radius(text: str) -> int | str:
    return "auto" if text == "auto" else _positive_int(text)


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 1,2,2, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a learned noise model on sky-noise patches and write a model bundle",
        description=(
            "Train a learned noise model (U-Net score or energy, denoising score matching) on sky "
            "noise and write a bundle that load_noise_model reads. Input: FITS images (sources are "
            "masked and patches cut from disjoint training / validation bands of each image) or a "
            "patch-set .npz written by numpyro_slic.data.save_patch_set. Interrupted runs resume "
            "from --checkpoint-dir."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--fits", nargs="+", metavar="FILE", help="FITS images of sky")
    src.add_argument("--patches", nargs="+", metavar="NPZ",
                     help="training patch set(s) (.npz or shipped name); several of one patch size are pooled (e.g. two bands "
                          "with the same noise, docs/noise_sources.md)")
    p.add_argument("--val-patches", nargs="+", metavar="NPZ", help="validation patch set(s) (.npz), pooled as "
                   "--patches; with --fits the validation band of each image is used instead")
    p.add_argument("--out", required=True, help="bundle file to write (.zip)")
    data = p.add_argument_group("FITS input")
    data.add_argument("--hdu", default=None, help="HDU index or EXTNAME (default: first 2-D image)")
    data.add_argument("--patch-size", type=int, default=64, help="patch side, pixels")
    data.add_argument("--stride", type=int, default=16, help="step between patch origins, pixels")
    data.add_argument("--val-fraction", type=float, default=0.2, help="fraction of each image kept for validation")
    net = p.add_argument_group("network")
    net.add_argument("--width", type=int, default=32, help="channels at full resolution")
    net.add_argument("--channel-mults", type=_int_tuple, default=(1, 2, 2), help="channel multiplier per level")
    net.add_argument("--num-res-blocks", type=int, default=1, help="residual blocks per level")
    net.add_argument("--padding", choices=("zeros", "circular"), default="zeros", help="convolution padding")
    model = p.add_argument_group("model")
    model.add_argument("--parameterisation", choices=("score", "energy"), default="score")
    model.add_argument("--backbone", action=argparse.BooleanOptionalAction, default=True,
                       help="add a backbone fitted to the training patches (the net learns the rest)")
    model.add_argument("--backbone-kind", choices=("gaussian", "mixture", "correlated-mixture", "gaussian-copula"),
                       default="gaussian",
                       help="gaussian: stationary Gaussian (right correlations); mixture: i.i.d. Gaussian-mixture "
                            "pixels (right marginal tails; nearly white noise with rare outliers); "
                            "correlated-mixture: both (correlated noise with rare outliers, e.g. a raw CCD); "
                            "gaussian-copula: both, the marginal exactly (single-pixel outliers)")
    model.add_argument("--backbone-components", type=int, default=3,
                       help="components of a backbone's pixel mixture")
    model.add_argument("--backbone-radius", type=_backbone_radius, default=16,
                       help="largest lag of a backbone's correlation kernel, pixels (capped at half the patch "
                            "side), or 'auto': the one of 6, 8, 10, 12, 16 whose backbone, fitted on one half of "
                            "the training patches, best fits the other half (noise.radius.choose_backbone_radius)"),
    model.add_argument("--backbone-background", action="store_true",
                       help="correlated-mixture or copula backbone: add a grid-wide background level holding the k = 0 "
                            "power its kernel misses (sky backgrounds varying beyond the kernel's lags)")
    model.add_argument("--rot180", action="store_true",
                       help="augment with random 180-degree turns (every surveyed source allows them; docs/noise_sources.md)")
    model.add_argument("--flips", action="store_true",
                       help="augment with random left-right and up-down flips (not for JWST F115W/F150W: tilted stripes)")
    model.add_argument("--sde", choices=("ve", "vp"), default="ve")
    model.add_argument("--sigma-min", type=float, default=0.01, help="VE sigma_min (trained units)")
    model.add_argument("--sigma-max", type=float, default=50.0, help="VE sigma_max (trained units)")
    model.add_argument("--t-min", type=float, default=1e-3, help="smallest training level t")
    model.add_argument("--scale", type=float, default=None,
                       help="physical units per trained unit (default: the patch set's sigma)")
    model.add_argument("--units", default=None, help="what physical units mean, for the bundle's metadata")
    model.add_argument("--init-from", default=None, metavar="MODEL",
                       help="fine-tune: start from this bundle's (or shipped model's) net and keep its backbone; "
                            "the network, model and backbone settings come from it (lower --lr)")
    model.add_argument("--no-net", action="store_true",
                       help="no U-Net: the fitted backbone alone (an exact density with exact draws; no "
                            "training steps), for data too few for a net to beat it (JWST F150W)")
    train = p.add_argument_group("training")
    train.add_argument("--steps", type=int, default=20000)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--crop-size", type=int, default=None, help="random-crop side (default: patch size)")
    train.add_argument("--lr", type=float, default=3e-4, help="peak learning rate")
    train.add_argument("--ema-decay", type=float, default=0.999)
    train.add_argument("--val-every", type=int, default=500, help="steps between validations")
    train.add_argument("--keep-best", action=argparse.BooleanOptionalAction, default=True,
                       help="return the best-validated EMA weights (early stopping)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--checkpoint-dir", default=None, help="directory for resumable checkpoints")
    train.add_argument("--checkpoint-every", type=int, default=1000)
    train.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                       help="continue from a checkpoint in --checkpoint-dir")
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    train.add_argument("--summary", default=None, help="also write the bundle's metadata to this JSON file")
    # The defaults of the settings --init-from takes from its bundle: a flag left at its default
    # gives way to the bundle's value, a flag set to another value than the bundle's is an error.
    p.set_defaults(func=cmd_train, init_defaults={k: p.get_default(k) for k in _INIT_SETTINGS})


# ``numpyro-slic train`` flags that describe the model being trained, with where --init-from's bundle
# holds each: its network config, sde, or model description.
_INIT_SETTINGS = {
    "width": ("net", "width"), "channel_mults": ("net", "channel_mults"),
    "num_res_blocks": ("net", "num_res_blocks"), "padding": ("net", "padding"),
    "parameterisation": ("model", "parameterisation"), "t_min": ("model", "t_min"),
    "sde": ("sde", "kind"), "sigma_min": ("sde", "sigma_min"), "sigma_max": ("sde", "sigma_max"),
    "backbone": ("model", "backbone"), "backbone_kind": ("model", "backbone_kind"),
    "backbone_components": ("model", "backbone_components"), "backbone_background": ("model", "backbone_background"),
    "backbone_radius": ("model", "backbone_radius"),
}


def _init_settings(args: argparse.Namespace):
    """--init-from: the model to start from, and ``args`` with its settings filled in from it.

    Raises ValueError where a flag was given another value than the bundle's.
    """
    import copy

    from .noise.bundle import load_noise_model, read_bundle_metadata
    from .noise.calibration import CalibratedNoise
    from .noise.backbones import backbone_kind

    init = load_noise_model(args.init_from)
    meta = read_bundle_metadata(args.init_from)
    if isinstance(init, CalibratedNoise):  # its calibration was fitted to the old net's score
        print(f"numpyro-slic train: --init-from {args.init_from}: its score calibration is not carried over "
              "(refit one on the new model: noise.calibration.fit_calibration).", file=sys.stderr)
        init = init.base
    if getattr(init, "net", None) is None:
        raise ValueError(f"--init-from {args.init_from}: that model has no net to start from (a backbone "
                         "alone is fitted in a second: train with --no-net instead).")
    trained = meta.get("metadata", {}).get("training", {}).get("config", {})
    backbone = {"backbone": init.backbone is not None, "backbone_kind": backbone_kind(init.backbone) or "gaussian",
                "backbone_components": trained.get("backbone_components", args.backbone_components),
                "backbone_background": trained.get("backbone_background", args.backbone_background),
                "backbone_radius": trained.get("backbone_radius", args.backbone_radius)}
    source = {"net": init.net.config.to_dict(), "sde": init.sde.to_dict(),
              "model": {"parameterisation": init.parameterisation, "t_min": init.t_min, **backbone}}
    args = copy.copy(args)
    clashes = []
    for dest, (where, key) in _INIT_SETTINGS.items():
        value = source[where].get(key)
        if value is None:  # a VP schedule has no sigma_min/max
            continue
        value = tuple(value) if isinstance(value, list) else value
        given = getattr(args, dest)
        if given != args.init_defaults[dest] and given != value:
            clashes.append(f"--{dest.replace('_', '-')} {given} (the bundle's: {value})")
        setattr(args, dest, value)
    if clashes:
        raise ValueError(f"--init-from {args.init_from}: these flags differ from the model they start from: "
                         + ", ".join(clashes) + ". Drop them; the bundle's settings are used.")
    return init, meta["weights"]["sha256"], args


def _fits_patch_sets(args):
    from .data import (concatenate_patch_sets, load_fits_image, mask_sources, train_val_patches)

    hdu = args.hdu
    if hdu is not None and hdu.lstrip("-").isdigit():
        hdu = int(hdu)
    trains, vals = [], []
    for path in args.fits:
        image, bad = load_fits_image(path, hdu)
        mask = mask_sources(image, mask=bad)
        train, val = train_val_patches(image, patch_size=args.patch_size, stride=args.stride,
                                       val_fraction=args.val_fraction, mask=mask, source=path)
        trains.append(train)
        vals.append(val)
    return concatenate_patch_sets(trains), concatenate_patch_sets(vals)


def cmd_train(args: argparse.Namespace) -> int:
    """``numpyro-slic train``: patches in, bundle out (see ``numpyro-slic train --help``)."""
    import dataclasses
    import json
    import os
    import time

    import jax
    import numpy as np

    from .noise.analytic import StationaryGaussianNoise
    from .noise.bundle import save_noise_model
    from .noise.networks import UNetConfig
    from .noise.sde import VESDE, VPSDE
    from .noise.training import TrainConfig, fit_backbone_model, train_noise_model, validation_loss

    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        print(f"numpyro-slic train: the directory of --out ({out_dir}) does not exist.", file=sys.stderr)
        return 2
    init = init_sha = None
    if args.init_from:
        if args.no_net:
            print("numpyro-slic train: --init-from starts from a net, so it cannot go with --no-net.", file=sys.stderr)
            return 2
        try:
            init, init_sha, args = _init_settings(args)
        except (ValueError, FileNotFoundError) as err:
            print(f"numpyro-slic train: {err}", file=sys.stderr)
            return 2
    if args.fits:
        train, val = _fits_patch_sets(args)
    else:
        from .data import load_patch_sets

        train = load_patch_sets(args.patches)
        val = None if args.val_patches is None else load_patch_sets(args.val_patches)

    net = UNetConfig(width=args.width, channel_mults=args.channel_mults,
                     num_res_blocks=args.num_res_blocks, padding=args.padding)
    config = TrainConfig(batch_size=args.batch_size, crop_size=args.crop_size, learning_rate=args.lr,
                         ema_decay=args.ema_decay, t_min=args.t_min, val_every=args.val_every,
                         keep_best=args.keep_best,
                         parameterisation=args.parameterisation, backbone=args.backbone,
                         backbone_kind=args.backbone_kind, backbone_components=args.backbone_components,
                         backbone_background=args.backbone_background,
                         rot180=args.rot180, flips=args.flips)
    sde = VESDE(args.sigma_min, args.sigma_max) if args.sde == "ve" else VPSDE()
    if init is not None:  # every setting the CLI has no flag for (norm, embedding, ...) too
        net, sde = init.net.config, init.sde
    if args.no_net and not args.backbone:
        print("numpyro-slic train: --no-net keeps only the backbone, so it cannot go with --no-backbone.",
              file=sys.stderr)
        return 2
    radius_choice = None
    if args.backbone_radius == "auto":
        from .noise.radius import choose_backbone_radius

        try:
            radius_choice = choose_backbone_radius(train, config=config, sde=sde)
        except ValueError as err:
            print(f"numpyro-slic train: --backbone-radius auto: {err}", file=sys.stderr)
            return 2
        print(f"--backbone-radius auto: {radius_choice.radius} (NLL per pixel of each half's crops under the other "
              f"half's fit: {', '.join(f'{r}: {v:.5f}' for r, v in radius_choice.nll.items())})", file=sys.stderr)
    config = dataclasses.replace(
        config, backbone_radius=args.backbone_radius if radius_choice is None else radius_choice.radius)
    history: list = []
    start = time.perf_counter()
    if args.no_net:
        model = fit_backbone_model(train, config=config, sde=sde, scale=args.scale, val_patches=val)
    else:
        model = train_noise_model(
            train, steps=args.steps, key=jax.random.key(args.seed), net=net, config=config, sde=sde,
            scale=args.scale, val_patches=val, checkpoint_dir=args.checkpoint_dir,
            checkpoint_every=args.checkpoint_every, resume=args.resume, progress=args.progress,
            history=history, init=init,
        )
    wall = time.perf_counter() - start

    # Throughput from every read-out after the first (which includes compilation).
    rates = [r["patches_per_s"] for r in history[1:]] or [r["patches_per_s"] for r in history]
    summary = {
        "units": args.units or sorted({s.get("units", "?") for s in train.provenance["sources"]}),
        "scale": model.scale,
        "patch_size": int(train.patch_size),
        "data": {"train": train.provenance, "val": None if val is None else val.provenance},
        "training": {
            "net": None if args.no_net else net.to_dict(),
            "config": config.to_dict(),
            "sde": sde.to_dict(),
            "steps": 0 if args.no_net else args.steps,
            "init_from": None if init is None else {"model": args.init_from, "weights_sha256": init_sha},
            "radius_choice": None if radius_choice is None else radius_choice.to_dict(),
            "seed": args.seed,
            "device": jax.devices()[0].device_kind,
            "n_devices": jax.device_count(),
            "wall_s_this_session": wall,
            "patches_per_s_median": float(np.median(rates)) if rates else None,
            "final_train_loss": history[-1]["train_loss"] if history else None,
            "history": history,
        },
        "command": args.command_line,
    }
    if val is not None:
        # The returned weights (the best-validated ones with --keep-best) and, on the same noise
        # draws, the stationary Gaussian fitted to the training patches: what the net adds.
        sigmas = list(config.val_sigmas)
        summary["validation"] = {"sigmas": sigmas,
                                 "dsm_loss": [float(v) for v in validation_loss(model, val, sigmas=sigmas)]}
        if val.patch_size == train.patch_size:
            gauss = StationaryGaussianNoise.from_patches(train.patches)
            summary["validation"]["dsm_loss_gaussian_baseline"] = [
                float(v) for v in validation_loss(gauss, val, sigmas=sigmas)]
    save_noise_model(args.out, model, summary)
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(summary, f, indent=1)
    what = "the backbone alone" if args.no_net else f"{args.steps} steps"
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB): {what}, {wall:.0f} s", file=sys.stderr)
    if "validation" in summary:
        v = summary["validation"]
        print("validation DSM loss by sigma:", {s: round(x, 5) for s, x in zip(v["sigmas"], v["dsm_loss"])},
              file=sys.stderr)
        if "dsm_loss_gaussian_baseline" in v:
            print("Gaussian baseline:          ",
                  {s: round(x, 5) for s, x in zip(v["sigmas"], v["dsm_loss_gaussian_baseline"])}, file=sys.stderr)
    return 0


# ---- coverage ----------------------------------------------------------------------------------------

_LIKELIHOOD_NAMES = {"white": "white Gaussian", "stationary": "stationary Gaussian", "slic": "SLIC"}


def _likelihood_list(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [n for n in names if n not in _LIKELIHOOD_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of {','.join(_LIKELIHOOD_NAMES)}, got {text!r}")
    return names


def _add_coverage(sub) -> None:
    p = sub.add_parser(
        "coverage",
        help="coverage test (TARP, SBC) of the SLIC and Gaussian likelihoods on injections in real noise",
        description=(
            "Injects lenses (or galaxies) drawn from the prior into REAL held-out sky-noise tiles, runs NUTS under each "
            "likelihood for every injection (vectorised over injections, sharded over local devices), and "
            "tests the posteriors' calibration with TARP and SBC. Batches are written as they finish: "
            "rerun the same command to resume, or merge folders from several machines. Writes "
            "coverage.json, tarp.png and sbc_<likelihood>.png to --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--problem", choices=("lens", "galaxy"), default="lens",
                   help="the inference problem: the demo's lens (13 parameters), or a PSF-convolved elliptical "
                        "exponential galaxy (6 parameters, pixel units; for noise like ground-ccd)")
    p.add_argument("--size", type=int, default=32, choices=(16, 32, 64),
                   help="image side in pixels (lens: the field is 1.92\" at every size)")
    p.add_argument("--noise", choices=("jwst-f150w", "jwst-sw", "jwst-lw", "hst-f814w", "ground-ccd"),
                   default="jwst-f150w",
                   help="real held-out noise and the noise model of that source (jwst-nircam-f150w, jwst-nircam-sw: "
                        "F115W + F150W, jwst-nircam-lw: F277W + F444W, hst-acs-f814w, ground-ccd-saao)")
    p.add_argument("--noise-model", default=None,
                   help="the SLIC likelihood's noise model: shipped name or bundle path (default: the source's)")
    p.add_argument("--fit-max-abs", type=float, default=None,
                   help="fit the Gaussian likelihoods only to fit tiles with no pixel beyond this many sky sigma "
                        "(a robust baseline for noise with cosmic rays; default: all fit tiles)")
    p.add_argument("--likelihoods", type=_likelihood_list, default="white,stationary,slic",
                   help="comma-separated subset of white,stationary,slic")
    p.add_argument("--sky-sd", type=float, default=None,
                   help="lens problem: fit a constant sky level with a Normal(0, SKY_SD) prior (sky sigma), "
                        "as a real fit does; default: none")
    p.add_argument("--subtract-background", action="store_true",
                   help="subtract the fit tiles' mean level from every tile, as a fit subtracts the background of "
                        "nearby blank sky; default: the held-out patches keep their own level")
    p.add_argument("--injections", type=int, default=100, help="number of injections per likelihood")
    p.add_argument("--first-id", type=int, default=0, help="first injection id (split a run over machines)")
    p.add_argument("--seed", type=int, default=0, help="seeds the injections and the chains")
    p.add_argument("--level-sigma", type=float, default=0.1,
                   help="diffusion level of the likelihoods, as the sd of the one-off perturbation (sky sigma)")
    nuts = p.add_argument_group("NUTS")
    nuts.add_argument("--num-warmup", type=int, default=400, help="warmup per chain (step size and dense metric)")
    nuts.add_argument("--num-samples", type=int, default=500, help="draws per chain")
    nuts.add_argument("--num-chains", type=int, default=2)
    nuts.add_argument("--max-tree-depth", type=int, default=5)
    nuts.add_argument("--batch-size", type=int, default=8, help="injections per vectorised computation")
    nuts.add_argument("--min-ess", type=float, default=100.0, help="an injection with less bulk ESS is not converged")
    p.add_argument("--out", default="outputs/coverage", help="output folder")
    p.add_argument("--report-only", action="store_true", help="skip inference: report what is on disk")
    p.add_argument("--no-report", action="store_true",
                   help="only run injections (e.g. one host of several, or a GPU without ArviZ); report later "
                        "with --report-only where the folders are merged")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=cmd_coverage)


def cmd_coverage(args: argparse.Namespace) -> int:
    """``numpyro-slic coverage``: injections, NUTS per likelihood, TARP and SBC (see --help)."""
    from .coverage import RunConfig, galaxy_coverage_problem, lens_coverage_problem, run_injections

    if args.report_only and args.no_report:
        raise SystemExit("numpyro-slic coverage: --report-only and --no-report together do nothing; choose one.")
    if not args.report_only:
        factory = {"lens": lens_coverage_problem, "galaxy": galaxy_coverage_problem}[args.problem]
        extra = {}
        if args.sky_sd is not None:
            if args.problem != "lens":
                raise SystemExit("numpyro-slic coverage: --sky-sd is an option of the lens problem.")
            extra["sky_sd"] = args.sky_sd
        problem = factory(args.size, args.noise, level_sigma=args.level_sigma, seed=args.seed,
                          likelihoods=args.likelihoods, noise_model=args.noise_model, fit_max_abs=args.fit_max_abs,
                          subtract_background=args.subtract_background, **extra)
        config = RunConfig(num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=args.num_chains,
                           max_tree_depth=args.max_tree_depth, batch_size=args.batch_size, min_ess=args.min_ess)
        n_tiles = problem.info["tiles_injection"]
        print(f"numpyro-slic coverage: {problem.name}, {args.injections} injections from id {args.first_id}, "
              f"{n_tiles} distinct real noise tiles (Gaussians fitted on {problem.info['tiles_fit']} tiles of the "
              f"held-out sky they do not touch)", file=sys.stderr)
        if args.first_id + args.injections > n_tiles:
            print(f"numpyro-slic coverage: ids past {n_tiles - 1} reuse noise tiles (with other parameters), so "
                  f"the test holds {n_tiles} independent noise draws, not {args.first_id + args.injections}",
                  file=sys.stderr)
        for kind in args.likelihoods:
            run_injections(problem, _LIKELIHOOD_NAMES[kind], args.injections, args.out, config=config,
                           seed=args.seed, first_id=args.first_id, progress=not args.no_progress)
    if args.no_report:
        print(f"wrote the batches to {args.out}; report with --report-only", file=sys.stderr)
        return 0
    from .coverage.report import coverage_report, markdown_table

    report = coverage_report(args.out, seed=args.seed)
    print(markdown_table(report))
    for name, entry in report["likelihoods"].items():
        for reason in entry["verdict"].get("reasons", []):
            print(f"{name}: {reason}")
    print(f"wrote {args.out}/coverage.json and figures", file=sys.stderr)
    return 0


# ---- validate ----------------------------------------------------------------------------------------


def _add_validate(sub) -> None:
    p = sub.add_parser(
        "validate",
        help="fidelity of a noise model to real held-out noise: NLL vs a Gaussian, tails, classifier AUC",
        description=(
            "Held-out negative log-likelihood per pixel (probability-flow ODE) against the stationary "
            "Gaussian fitted to the training patches, on the same once-perturbed patches, with bootstrap "
            "standard errors of the paired difference; kurtosis, |z| > 3, 4, 5 tail rates and power spectra "
            "of the model's draws (probability-flow ODE by default) against the real patches; a small CNN's "
            "real-vs-generated AUC beside its AUC for the Gaussian's exact draws. Writes fidelity.json and "
            "figures to --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("model", help="shipped model name or bundle path")
    p.add_argument("--val-patches", nargs="+", default=None,
                   help="held-out real patches: shipped name(s) or .npz, several pooled (default: the shipped "
                        "model's held-out set, or the --val-patches files of the bundle's training command)")
    p.add_argument("--train-patches", nargs="+", default=None,
                   help="training patches (.npz or shipped names, several pooled) for the Gaussian baseline "
                        "(default: the bundle's training --patches files if present, else the bundle's "
                        "GaussianBackbone)")
    p.add_argument("--num-generated", type=int, default=64, help="draws of the model")
    p.add_argument("--sampler", choices=["ode", "sde"], default="ode",
                   help="how a score model is drawn from: the probability-flow ODE (the density the NLL scores) "
                        "or the reverse SDE (Euler-Maruyama); a backbone alone is drawn exactly")
    p.add_argument("--sde-steps", type=int, default=100, help="Euler-Maruyama steps of the reverse SDE (--sampler sde)")
    p.add_argument("--level-sigma", type=float, default=None,
                   help="NLL level as a width in trained units (default: the model's t_min)")
    p.add_argument("--nll-size", type=int, default=None,
                   help="side of the non-overlapping crops scored by the ODE (default: the patch size)")
    p.add_argument("--nll-patches", type=int, default=None, help="at most this many crops (random subset)")
    p.add_argument("--nll-trace", choices=["hutchinson", "exact"], default="hutchinson",
                   help="divergence in the ODE: Hutchinson probes, or exact (D JVPs a stage: small crops only)")
    p.add_argument("--nll-probes", type=int, default=4, help="Hutchinson probes per crop")
    p.add_argument("--nll-rtol", type=float, default=1e-4, help="ODE rtol = atol")
    p.add_argument("--nll-control", type=int, default=4,
                   help="crops on which the ODE also scores the Gaussian, against its exact value")
    p.add_argument("--classifier-steps", type=int, default=200)
    p.add_argument("--classifier-size", type=int, default=None,
                   help="side of the distinct real crops (and generated tiles) the classifier compares "
                        "(default: --nll-size); smaller crops, more independent ones")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples of the NLL")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/validate", help="output directory")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    """``numpyro-slic validate``: prints the fidelity table, writes fidelity.json and figures."""
    from .diagnostics.noise_fidelity import ValidateConfig, format_table, run_validation

    def one_or_all(specs):  # a single set keeps the plain-string form of earlier fidelity.json files
        return specs[0] if specs and len(specs) == 1 else specs

    result = run_validation(ValidateConfig(
        model=args.model, val_patches=one_or_all(args.val_patches), train_patches=one_or_all(args.train_patches),
        num_generated=args.num_generated, sampler=args.sampler, sde_steps=args.sde_steps, level_sigma=args.level_sigma,
        nll_size=args.nll_size, nll_patches=args.nll_patches, nll_trace=args.nll_trace,
        nll_probes=args.nll_probes, nll_rtol=args.nll_rtol, nll_control=args.nll_control,
        classifier_steps=args.classifier_steps, classifier_size=args.classifier_size, bootstrap=args.bootstrap,
        seed=args.seed, out_dir=args.out, command=args.command_line,
        progress=not args.no_progress))
    print(format_table(result))
    print(f"wrote {args.out}/fidelity.json and figures ({result['seconds']['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
