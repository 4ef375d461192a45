"""One galaxy injection in real ground-based CCD noise, under every likelihood, with several chain seeds.

The posterior-level check of a noise model on strongly non-Gaussian noise (cosmic rays and hot
pixels on a Gaussian core): ``galaxy_coverage_problem`` (numpyro_slic.coverage) on the held-out
ground-ccd tiles, NUTS exactly as the coverage runner runs it (its batched kernel: Laplace dense
metric at the truth, adapted in warmup, chains started from the Laplace approximation), for the
white and stationary Gaussians (robust fit: fit tiles with a pixel beyond ``--fit-max-abs`` are
dropped), the stationary Gaussian fitted to all fit tiles (``plain``: what a mean periodogram of
sky with cosmic rays gives) and SLIC with the given noise model.

Injections are chosen by a stated rule, not by their results: ``hit`` is the first injection id
(seed ``--seed``) whose noise tile has a pixel beyond ``--hit-sigma`` where the noise-free galaxy
is brighter than ``--hit-where`` sky sigma; ``clean`` is the first whose tile has no pixel beyond
5 sigma. Each is run ``--seeds`` times (different chain keys, same data), to show the run-to-run
scatter. Per likelihood, injection, seed and parameter: posterior mean, sd, (mean - truth) / sd,
bulk ESS and R-hat. The corner plot overlays the first seed's posteriors of the ``hit`` injection.

    python benchmarks/ccd_galaxy.py --model outputs/ccd_model/ground-ccd-saao.zip \
        --out benchmarks/results/ccd_galaxy_single.json --figure docs/figures/ccd_galaxy_corner.png

``--hit-study K`` instead places K galaxies from the prior on every injection tile that holds a pixel
beyond ``--hit-sigma`` (ids tile + N k, k < K, for N injection tiles: other galaxies, centres and
perturbations on the same sky) and runs every likelihood once per injection, in one batch. Per
likelihood it reports all of them, and apart those whose hit pixel lies where the noise-free
galaxy is brighter than ``--hit-where`` ("on the galaxy") and the rest: how many, how many
converged, how many have a parameter beyond 3 posterior sd, and the median and largest
max |mean - truth| / sd.

    python benchmarks/ccd_galaxy.py --hit-study 20 --hit-sigma 10 --hit-where 0.5 \
        --out benchmarks/results/ccd_galaxy_hit_study.json

``--summarise DIR`` instead reads a ``numpyro-slic coverage --problem galaxy --noise ground-ccd``
folder and splits every likelihood's converged injections by whether their noise tile has a pixel
beyond ``--hit-sigma`` where the galaxy is brighter than ``--hit-where`` ("hit") or not: per group,
the mean and max over injections of the largest |mean - truth| / sd among the parameters, the mean
|mean - truth| / sd, and the share of injections with some parameter beyond 3 sd.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from numpyro_slic.coverage import RunConfig, galaxy_coverage_problem, make_injections
from numpyro_slic.coverage.runner import _batched_nuts, _chain_diagnostics  # the runner's own NUTS
from numpyro_slic.data.io import atomic_write_json


def _command(argv) -> str:
    """The command line that ran this script, for the result JSON."""
    return "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])


def _clean_images(problem, truths) -> np.ndarray:
    """Noise-free images ``(B, H, W)`` of parameter rows ``truths`` ``(B, P)``, one compiled call."""
    simulate = jax.jit(jax.vmap(lambda t: problem.simulator(dict(zip(problem.params, t)))))
    return np.asarray(simulate(jnp.asarray(truths, jnp.float32)))


def pick(problem, seed, hit_sigma, hit_where, limit=400):
    """(hit id, clean id) by the rule in the module docstring."""
    inj = make_injections(problem, range(limit), seed)
    clean = _clean_images(problem, inj.truths)
    hit = clean_id = None
    for i, image in enumerate(clean):
        noise = problem.injection_noise[inj.noise_index[i]]
        if hit is None and np.any((np.abs(noise) > hit_sigma) & (image > hit_where)):
            hit = i
        if clean_id is None and np.abs(noise).max() <= 5.0:
            clean_id = i
        if hit is not None and clean_id is not None:
            return hit, clean_id, inj
    raise RuntimeError("no injection fits the rule among the first", limit)


def summarise(out_dir, hit_sigma, hit_where, out_path, argv):
    """The --summarise mode (module docstring)."""
    from numpyro_slic.coverage import load_results

    index = json.load(open(os.path.join(out_dir, "index.json")))
    result = {"command": _command(argv),
              "folder": out_dir, "rule": f"hit: |noise| > {hit_sigma} where the galaxy > {hit_where}",
              "likelihoods": {}}
    problem = None
    for name in index:
        res = load_results(out_dir, name)
        meta = res.metadata
        if problem is None:
            info = meta["problem_info"]
            if "tiles" not in info:
                # Rebuilt with today's split these batches would be paired with other noise tiles.
                raise SystemExit(f"{out_dir}: made with the tile split before 2026-11-29 (overlapping tiles); "
                                 "summarise it at that code: git checkout ddb4c89 -- numpyro_slic benchmarks")
            problem = galaxy_coverage_problem(info["size"], info["noise_source"], likelihoods=("white",),
                                              level_sigma=info["level_sigma"], seed=info["split_seed"],
                                              fit_max_abs=info.get("fit_max_abs"),
                                              subtract_background="background_subtracted" in info)
        inj = make_injections(problem, res.ids, meta["seed"])
        images = _clean_images(problem, res.truths)
        noise = problem.injection_noise[inj.noise_index]
        hit = np.any((np.abs(noise) > hit_sigma) & (images > hit_where), axis=(1, 2))
        flat = res.draws.reshape(len(res.ids), -1, len(res.params))
        z = np.abs(flat.mean(1) - res.truths) / flat.std(1)
        entry = {"injections": int(len(res.ids)), "converged": int(res.converged.sum()),
                 "min_ess_bulk": float(res.ess_bulk.min()), "groups": {}}
        for group, sel in (("all", np.ones_like(hit)), ("hit", hit), ("no hit", ~hit)):
            sel = sel & res.converged
            zz = z[sel]
            entry["groups"][group] = {
                "n": int(sel.sum()), "ids": [int(i) for i in res.ids[sel]] if group == "hit" else None,
                "mean_abs_z": float(zz.mean()) if len(zz) else None,
                "mean_max_abs_z": float(zz.max(1).mean()) if len(zz) else None,
                "max_abs_z": float(zz.max()) if len(zz) else None,
                "share_beyond_3sd": float((zz.max(1) > 3).mean()) if len(zz) else None,
                "per_injection_max_abs_z": [float(v) for v in zz.max(1)] if group == "hit" else None,
            }
        # Every injection, converged or not: the docs' per-injection table reads these.
        entry["per_injection"] = {
            str(int(i)): {"max_abs_z": float(zi.max()), "worst_parameter": res.params[int(zi.argmax())],
                          "converged": bool(ok), "hit": bool(h)}
            for i, zi, ok, h in zip(res.ids, z, res.converged, hit)
        }
        result["likelihoods"][name] = entry
        print(name, {g: (v["n"], v["mean_abs_z"], v["share_beyond_3sd"]) for g, v in entry["groups"].items()})
    atomic_write_json(out_path, result)
    print("wrote", out_path)
    return 0


def hit_study(args, choices, labels, config, argv) -> int:
    """The --hit-study mode (module docstring)."""
    robust = choices["white"][0]
    n_tiles = len(robust.injection_noise)
    tiles = [i for i, t in enumerate(robust.injection_noise) if np.abs(t).max() > args.hit_sigma]
    ids = np.array([tile + n_tiles * k for tile in tiles for k in range(args.hit_study)])
    inj = make_injections(robust, ids, args.seed)
    images = _clean_images(robust, inj.truths)
    noise = robust.injection_noise[inj.noise_index]
    on_galaxy = np.any((np.abs(noise) > args.hit_sigma) & (images > args.hit_where), axis=(1, 2))
    out = {
        "command": _command(argv),
        "problem": robust.name, "problem_info": robust.info, "sampling": config.sampling_dict(),
        "rule": f"tiles with |noise| > {args.hit_sigma}; 'on the galaxy': such a pixel where the galaxy > "
                f"{args.hit_where} sky sigma",
        "tiles": {str(t): float(np.abs(robust.injection_noise[t]).max()) for t in tiles},
        "ids": ids.tolist(), "on_galaxy": on_galaxy.tolist(),
        "snr": np.sqrt((images**2).sum(axis=(1, 2))).tolist(),
        "platform": {"machine": platform.machine(), "jax": jax.__version__, "devices": str(jax.devices())},
        "likelihoods": {},
    }
    for kind in args.likelihoods.split(","):
        problem, name = choices[kind]
        fn = _batched_nuts(problem, name, config)
        keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(1000), i))(jnp.asarray(ids))
        start = time.perf_counter()
        draws, diverging, _, _ = (np.asarray(x) for x in fn(keys, jnp.asarray(inj.data),
                                                             jnp.asarray(inj.truths, jnp.float32)))
        seconds = time.perf_counter() - start
        diag = _chain_diagnostics(draws, diverging, config)
        flat = draws.reshape(len(ids), -1, len(robust.params))
        z = np.abs(flat.mean(1) - inj.truths) / flat.std(1)
        worst = z.max(1)
        entry = {"seconds_incl_compile": seconds, "max_abs_z": worst.tolist(),
                 "worst_parameter": [robust.params[j] for j in z.argmax(1)],
                 "converged": diag["converged"].tolist(), "groups": {}}
        for group, sel in (("all", np.ones_like(on_galaxy)), ("on the galaxy", on_galaxy),
                           ("off the galaxy", ~on_galaxy)):
            w = worst[sel]
            entry["groups"][group] = {
                "n": int(sel.sum()), "converged": int(diag["converged"][sel].sum()),
                "beyond_3sd": int((w > 3).sum()), "median_max_abs_z": float(np.median(w)) if len(w) else None,
                "max_abs_z": float(w.max()) if len(w) else None}
        out["likelihoods"][labels[kind]] = entry
        print(labels[kind], f"{seconds:.0f}s", entry["groups"], flush=True)
        atomic_write_json(args.out, out)
    print("wrote", args.out)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="ground-ccd noise model (bundle path)")
    ap.add_argument("--seed", type=int, default=0, help="injection seed (as numpyro-slic coverage --seed)")
    ap.add_argument("--seeds", type=int, default=3, help="chain seeds per injection")
    ap.add_argument("--fit-max-abs", type=float, default=5.0)
    ap.add_argument("--hit-sigma", type=float, default=10.0)
    ap.add_argument("--hit-where", type=float, default=0.5)
    ap.add_argument("--num-warmup", type=int, default=300)
    ap.add_argument("--num-samples", type=int, default=500)
    ap.add_argument("--max-tree-depth", type=int, default=5)
    ap.add_argument("--likelihoods", default="white,stationary,plain,slic")
    ap.add_argument("--out", default="benchmarks/results/ccd_galaxy_single.json")
    ap.add_argument("--figure", default="docs/figures/ccd_galaxy_corner.png")
    ap.add_argument("--summarise", default=None, metavar="DIR", help="summarise a coverage folder instead")
    ap.add_argument("--hit-study", type=int, default=None, metavar="K",
                    help="K galaxies on every injection tile with a hit, every likelihood once, instead")
    args = ap.parse_args(argv)
    if args.summarise:
        return summarise(args.summarise, args.hit_sigma, args.hit_where, args.out, argv)

    robust = galaxy_coverage_problem(noise_model=args.model, fit_max_abs=args.fit_max_abs, seed=args.seed)
    plain = galaxy_coverage_problem(likelihoods=("stationary",), seed=args.seed)
    choices = {"white": (robust, "white Gaussian"), "stationary": (robust, "stationary Gaussian"),
               "plain": (plain, "stationary Gaussian"), "slic": (robust, "SLIC")}
    labels = {"white": "white Gaussian (robust fit)", "stationary": "stationary Gaussian (robust fit)",
              "plain": "stationary Gaussian (plain fit)", "slic": "SLIC"}
    config = RunConfig(num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=2,
                       max_tree_depth=args.max_tree_depth)
    if args.hit_study:
        return hit_study(args, choices, labels, config, argv)
    hit, clean, inj = pick(robust, args.seed, args.hit_sigma, args.hit_where)
    cases = {"hit": hit, "clean": clean}
    out = {
        "command": _command(argv),
        "problem": robust.name, "problem_info": robust.info,
        "plain_fit_mean_power": float(jnp.mean(plain.noises["stationary Gaussian"].power)),
        "robust_fit_mean_power": float(jnp.mean(robust.noises["stationary Gaussian"].power)),
        "sampling": config.sampling_dict(), "chain_seeds": args.seeds,
        "rule": {"hit": f"first id with |noise| > {args.hit_sigma} where the galaxy > {args.hit_where}",
                 "clean": "first id with max |noise| <= 5"},
        "platform": {"machine": platform.machine(), "jax": jax.__version__, "devices": str(jax.devices())},
        "injections": {},
    }
    posteriors = {}
    for case, i in cases.items():
        noise = robust.injection_noise[inj.noise_index[i]]
        image = np.asarray(robust.simulator(dict(zip(robust.params, jnp.asarray(inj.truths[i], jnp.float32)))))
        on = image > args.hit_where
        entry = {"id": int(i), "noise_tile": int(inj.noise_index[i]),
                 "truth": dict(zip(robust.params, map(float, inj.truths[i]))),
                 "max_abs_noise": float(np.abs(noise).max()),
                 "max_abs_noise_on_galaxy": float(np.abs(noise[on]).max()) if on.any() else None,
                 "snr": float(np.sqrt((image**2).sum())), "likelihoods": {}}
        for kind in args.likelihoods.split(","):
            problem, name = choices[kind]
            fn = _batched_nuts(problem, name, config)
            keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(1000 + i), s))(jnp.arange(args.seeds))
            data = jnp.repeat(jnp.asarray(inj.data[i:i + 1]), args.seeds, axis=0)
            truths = jnp.repeat(jnp.asarray(inj.truths[i:i + 1], jnp.float32), args.seeds, axis=0)
            start = time.perf_counter()
            draws, diverging, num_steps, _ = (np.asarray(x) for x in fn(keys, data, truths))
            seconds = time.perf_counter() - start
            diag = _chain_diagnostics(draws, diverging, config)
            flat = draws.reshape(args.seeds, -1, len(robust.params))
            mean, sd = flat.mean(1), flat.std(1)
            truth = inj.truths[i][None]
            entry["likelihoods"][labels[kind]] = {
                "seconds_incl_compile": seconds,
                "mean_tree_steps": float(num_steps.mean()),
                "per_seed": [{p: {"mean": float(mean[s, j]), "sd": float(sd[s, j]),
                                  "z": float((mean[s, j] - truth[0, j]) / sd[s, j]),
                                  "ess_bulk": float(diag["ess_bulk"][s, j]), "rhat": float(diag["rhat"][s, j])}
                              for j, p in enumerate(robust.params)} | {"divergences": int(diag["divergences"][s])}
                             for s in range(args.seeds)],
            }
            if case == "hit":
                posteriors[labels[kind]] = {p: flat[0, :, j] for j, p in enumerate(robust.params)}
            print(case, labels[kind], f"{seconds:.0f}s", "z:", np.round((mean - truth) / sd, 2).tolist(),
                  "min ess", float(diag["ess_bulk"].min()), flush=True)
        out["injections"][case] = entry
        atomic_write_json(args.out, out)
    if args.figure and posteriors:
        from numpyro_slic.diagnostics.plots import corner_plot

        corner_plot(posteriors, out["injections"]["hit"]["truth"], list(robust.params), args.figure)
    print("wrote", args.out, args.figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
