"""Peak host memory of ScoreLikelihood value+gradient on 256 x 256 images and of a few training steps.

Each case runs in a fresh Python process. The process first imports jax and numpyro_slic and loads
what the case needs (the shipped noise model, or the training patches), then reads its peak resident
set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``): the baseline. It then compiles and runs
the case twice and reads the peak again. The number reported is the peak minus the baseline: what
the computation itself (compilation included) adds on top of having the library and model loaded.
Cases:

- ``jwst_energy_exact``: ``ScoreLikelihood(model, loc, t=t_min)`` for an energy U-Net of the
  shipped models' architecture (width 16, mults 1, 2, on a Gaussian backbone), randomly
  initialised: memory does not depend on the weights. (The committed result was measured on the
  JWST energy U-Net of that architecture, shipped until 2026-11-29; no shipped model has an energy
  net since.) energy="exact": value = -E, gradient by autodiff through the U-Net;
  ``jax.jit(jax.value_and_grad)`` in loc, 256 x 256;
- ``hst_score_line4``: the shipped HST score model with energy="line", nodes=4 (4 score calls in
  one vmapped batch), same;
- ``train_batch16_64px``: ``train_noise_model`` for 5 steps, batch 16 of 64 x 64 crops, the shipped
  models' U-Net (width 16, channel_mults (1, 2), Gaussian backbone), on 64 random 64 x 64 patches.

CPU only (JAX_PLATFORMS=cpu): on a GPU the tensors live in device memory, which ru_maxrss does not
see. ru_maxrss is in KiB on Linux (bytes on macOS; converted).

    python benchmarks/memory.py [--out benchmarks/results/memory_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_PRELUDE = """
import json, resource, sys, time
def peak_mib():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 2**10
import jax, jax.numpy as jnp, numpy as np
import numpyro_slic
from numpyro_slic import ScoreLikelihood
from numpyro_slic.noise import load_noise_model
"""

_ENERGY_UNET = """
from numpyro_slic.noise.backbones import GaussianBackbone
from numpyro_slic.noise.learned import LearnedNoise
from numpyro_slic.noise.networks import UNet, UNetConfig
patches = np.random.default_rng(1).standard_normal((8, 32, 32)).astype(np.float32)
net = UNet(UNetConfig(width=16, channel_mults=(1, 2), num_res_blocks=1), key=jax.random.key(0))
model = LearnedNoise(net, parameterisation="energy", backbone=GaussianBackbone.from_patches(patches, 16),
                     reference_patch=patches[0], scale=1.0, t_min=0.001)
"""

_LIKELIHOOD = """
model = {model}
size = 256
rng = np.random.default_rng(0)
loc = jnp.asarray(rng.standard_normal((size, size)), jnp.float32)
obs = loc + float(model.scale) * jnp.asarray(rng.standard_normal((size, size)), jnp.float32)
jax.block_until_ready((loc, obs))
baseline = peak_mib()
f = jax.jit(jax.value_and_grad(
    lambda m: ScoreLikelihood(model, m, t=model.t_min, {kwargs}).log_prob(obs)))
t0 = time.perf_counter()
jax.block_until_ready(f(loc))
t1 = time.perf_counter()
jax.block_until_ready(f(loc + 0.1))
t2 = time.perf_counter()
print(json.dumps(dict(baseline_mib=baseline, peak_mib=peak_mib(), first_call_s=t1 - t0, second_call_s=t2 - t1)))
"""

_TRAINING = """
from numpyro_slic.noise.networks import UNetConfig
from numpyro_slic.noise.training import TrainConfig, train_noise_model
patches = np.random.default_rng(0).standard_normal((64, 64, 64)).astype(np.float32)
baseline = peak_mib()
t0 = time.perf_counter()
train_noise_model(patches, steps=5, key=jax.random.key(0),
                  net=UNetConfig(width=16, channel_mults=(1, 2), num_res_blocks=1),
                  config=TrainConfig(batch_size=16, crop_size=64, backbone=True, log_every=1000),
                  progress=False)
t1 = time.perf_counter()
print(json.dumps(dict(baseline_mib=baseline, peak_mib=peak_mib(), first_call_s=t1 - t0)))
"""

CASES = {
    "jwst_energy_exact": (
        "ScoreLikelihood(energy U-Net width 16 mults (1, 2), randomly initialised, loc, t=t_min) "
        "[energy='exact'], jit(value_and_grad) in loc, 256x256",
        _ENERGY_UNET + _LIKELIHOOD.format(model="model", kwargs=""),
    ),
    "hst_score_line4": (
        "ScoreLikelihood(load_noise_model('hst-acs-f814w'), loc, t=t_min, energy='line', nodes=4), "
        "jit(value_and_grad) in loc, 256x256",
        _LIKELIHOOD.format(model="load_noise_model('hst-acs-f814w')", kwargs="energy='line', nodes=4"),
    ),
    "train_batch16_64px": (
        "train_noise_model: 5 steps, batch 16 of 64x64, UNet width 16 mults (1, 2), backbone",
        _TRAINING,
    ),
}


def run_case(code: str) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(
        [sys.executable, "-c", _PRELUDE + code], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"case failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["added_mib"] = result["peak_mib"] - result["baseline_mib"]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "memory_cpu.json"))
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    args = parser.parse_args(argv)

    import jax  # versions only

    results = {}
    for name in args.cases:
        description, code = CASES[name]
        print(f"{name}: {description} ...", flush=True)
        r = run_case(code)
        r["description"] = description
        results[name] = r
        print(f"  baseline {r['baseline_mib']:.0f} MiB, peak {r['peak_mib']:.0f} MiB, "
              f"added {r['added_mib']:.0f} MiB (first call {r['first_call_s']:.1f} s)", flush=True)

    from numpyro_slic.data.io import atomic_write_json

    report = {
        "command": " ".join(["python benchmarks/memory.py", *(argv if argv is not None else sys.argv[1:])]),
        "what": "peak RSS (ru_maxrss) of a fresh process after the case, minus its peak after importing "
                "jax + numpyro_slic and loading the model / data; MiB; CPU backend",
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "jax": jax.__version__},
        "date": time.strftime("%Y-%m-%d"),
        "results": results,
    }
    atomic_write_json(args.out, report, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
