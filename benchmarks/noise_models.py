"""Cost of the learned noise models on this machine: training throughput, score evaluation, sampling.

    python benchmarks/noise_models.py [--out benchmarks/results/noise_models_cpu.json]

- Training: ``train_noise_model`` with the shipped architecture (scripts/train_shipped_models.sh:
  U-Net width 16, channel_mults (1, 2), one residual block, Gaussian backbone, batch 64, random
  32 x 32 crops of the shipped 64 x 64 JWST held-out patches) for the "score" and "energy"
  parameterisations. Throughput is the training loop's own read-out (``history`` records
  ``patches_per_s`` every ``log_every`` steps); the first read-out includes compilation and is
  left out, the median of the rest is reported.
- Score evaluation: ``jax.vmap(model.unit_score)`` of each shipped model at t_min, under
  ``eqx.filter_jit``, at 64 x 64 and 256 x 256, batch 1 and 8; median wall time of repeated calls
  after a compiling call (``jax.block_until_ready``).
- Sampling: wall time per reverse-SDE step of ``sample_noise_unit`` (Euler-Maruyama: one batched
  score evaluation a step) against one batched score evaluation outside the loop, same batch.

Times depend on the machine and on what else runs on it: the load average at the start and end is
stored with the results.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time

import equinox as eqx
import jax
import numpy as np

from numpyro_slic.data import load_shipped
from numpyro_slic.data.io import atomic_write_json
from numpyro_slic.noise.bundle import load_noise_model, read_bundle_metadata, shipped_models
from numpyro_slic.noise.networks import UNetConfig
from numpyro_slic.noise.sampling import sample_noise_unit
from numpyro_slic.noise.training import TrainConfig, train_noise_model

SHIPPED_NET = UNetConfig(width=16, channel_mults=(1, 2), num_res_blocks=1)


def time_fn(fn, *args, repeats: int, max_seconds: float) -> tuple[float, float, int]:
    """(compile + first call seconds, median seconds of later calls, number of later calls)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    while len(times) < repeats and (len(times) < 3 or sum(times) < max_seconds):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return first, float(np.median(times)), len(times)


def bench_training(parameterisation: str, steps: int, log_every: int) -> dict:
    patches = load_shipped("jwst-f150w-sky-val")
    config = TrainConfig(batch_size=64, crop_size=32, backbone=True, parameterisation=parameterisation,
                         log_every=log_every)
    history: list[dict] = []
    t0 = time.perf_counter()
    train_noise_model(patches, steps=steps, key=jax.random.key(0), net=SHIPPED_NET, config=config,
                      progress=False, history=history)
    wall = time.perf_counter() - t0
    rates = [r["patches_per_s"] for r in history[1:]]  # history[0] includes compilation
    return {
        "parameterisation": parameterisation,
        "net": SHIPPED_NET.to_dict(),
        "batch_size": config.batch_size,
        "crop_size": config.crop_size,
        "backbone": True,
        "steps": steps,
        "log_every": log_every,
        "wall_s": wall,
        "first_readout_patches_per_s_incl_compile": history[0]["patches_per_s"],
        "readouts_patches_per_s": rates,
        "patches_per_s_median": float(np.median(rates)),
        "seconds_per_step_median": config.batch_size / float(np.median(rates)),
    }


def bench_score(name: str, sizes, batches, repeats: int, max_seconds: float) -> list[dict]:
    model = load_noise_model(name)
    meta = read_bundle_metadata(name)
    score = eqx.filter_jit(lambda m, x, t: jax.vmap(m.unit_score, in_axes=(0, None))(x, t))
    out = []
    for size in sizes:
        m = model.with_event_shape((size, size))
        for b in batches:
            x = jax.random.normal(jax.random.key(size + b), (b, size, size))
            first, med, n = time_fn(score, m, x, m.t_min, repeats=repeats, max_seconds=max_seconds)
            out.append({
                "model": name,
                "parameterisation": meta["model"]["parameterisation"],
                "size": size,
                "batch": b,
                "first_call_s_incl_compile": first,
                "median_s": med,
                "repeats": n,
                "us_per_pixel": med / (b * size * size) * 1e6,
            })
            print(f"score {name:18s} {size:3d}x{size:<3d} batch {b}: {med * 1e3:9.2f} ms "
                  f"({out[-1]['us_per_pixel']:.2f} us/pixel, {n} repeats)", flush=True)
    return out


def bench_sampler(name: str, size: int, batch: int, steps: int, repeats: int, max_seconds: float) -> dict:
    model = load_noise_model(name).with_event_shape((size, size))
    score = eqx.filter_jit(lambda m, x, t: jax.vmap(m.unit_score, in_axes=(0, None))(x, t))
    x = jax.random.normal(jax.random.key(0), (batch, size, size))
    _, eval_s, _ = time_fn(score, model, x, 0.5, repeats=repeats, max_seconds=max_seconds)

    def sample(key):
        return sample_noise_unit(model, key, (batch,), method="euler_maruyama", steps=steps, data_variance=1.0)

    first, med, n = time_fn(sample, jax.random.key(1), repeats=2, max_seconds=max_seconds)
    # steps + 1 score evaluations: one per step and the final denoising (Tweedie) step.
    per_eval = med / (steps + 1)
    return {
        "model": name, "size": size, "batch": batch, "steps": steps, "method": "euler_maruyama",
        "sample_s_median": med, "repeats": n, "score_eval_s_outside_loop": eval_s,
        "sample_s_per_score_eval": per_eval, "loop_overhead_ratio": per_eval / eval_s,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="benchmarks/results/noise_models_cpu.json")
    parser.add_argument("--score-steps", type=int, default=16, help="training steps, score model")
    parser.add_argument("--energy-steps", type=int, default=12, help="training steps, energy model")
    parser.add_argument("--log-every", type=int, default=4)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=8.0, help="per case, after 3 repeats")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    meta = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "nproc": len(os.sched_getaffinity(0)),
        "load_average_at_start": list(os.getloadavg()),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "command": " ".join(["python benchmarks/noise_models.py", *(sys.argv[1:] if argv is None else argv)]),
    }
    training = []
    for p, steps in (("score", args.score_steps), ("energy", args.energy_steps)):
        r = bench_training(p, steps, args.log_every)
        training.append(r)
        print(f"train {p:6s}: {r['patches_per_s_median']:6.1f} patches/s median "
              f"({r['seconds_per_step_median']:.2f} s/step; read-outs "
              f"{', '.join(f'{v:.1f}' for v in r['readouts_patches_per_s'])}; {r['wall_s']:.0f} s wall)",
              flush=True)
    scores = [row for name in shipped_models()
              for row in bench_score(name, args.sizes, args.batches, args.repeats, args.max_seconds)]
    sampler = bench_sampler("hst-acs-f814w", 32, 8, 8, args.repeats, args.max_seconds)
    print(f"sampler: {sampler['sample_s_per_score_eval'] * 1e3:.1f} ms per score evaluation inside "
          f"sample_noise_unit vs {sampler['score_eval_s_outside_loop'] * 1e3:.1f} ms outside "
          f"({sampler['loop_overhead_ratio']:.1f}x)")
    meta["load_average_at_end"] = list(os.getloadavg())
    meta["wall_s"] = time.perf_counter() - t0
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    atomic_write_json(args.out, {"meta": meta, "training": training, "score_eval": scores, "sampler": sampler},
                      indent=2)
    print(f"wrote {args.out} ({meta['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
