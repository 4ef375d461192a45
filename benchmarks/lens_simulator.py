"""Speed of the pure-JAX lens simulator: one image, and its value and gradient in the parameters.

The demo's lens (``numpyro_slic.demo.TRUTH``: SIE + shear + Sersic source) on a 64 x 64 grid at
0.03"/pixel, supersampling 2, a 21 x 21 Gaussian PSF (FWHM 0.06"), float32. Timed after
compilation: the median over 5 repeats of the mean time of 50 calls of the jitted function
(``block_until_ready``). "value and gradient" is ``jax.value_and_grad`` of sum(image^2) in all
parameters, the pattern of a likelihood's backward pass through the simulator.

    python benchmarks/lens_simulator.py [--out benchmarks/results/lens_simulator_cpu.json]

Seconds on a CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from numpyro_slic.data.io import atomic_write_json
from numpyro_slic.demo import TRUTH
from numpyro_slic.lensing import LensSimulator, PixelGrid, gaussian_psf_kernel


def _time(fn, arg, calls=50, repeats=5) -> float:
    jax.block_until_ready(fn(arg))  # compile
    per_call = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            out = fn(arg)
        jax.block_until_ready(out)
        per_call.append((time.perf_counter() - start) / calls)
    return 1e3 * float(np.median(per_call))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/lens_simulator_cpu.json")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    sim = LensSimulator(PixelGrid(64, 64, 0.03), psf=gaussian_psf_kernel(0.06, 0.03, 21), supersampling=2)
    params = {k: jnp.float32(v) for k, v in TRUTH.items()}
    image = jax.jit(lambda p: sim(p))
    value_and_grad = jax.jit(jax.value_and_grad(lambda p: jnp.sum(sim(p) ** 2)))
    results = {"image_ms": _time(image, params), "value_and_grad_ms": _time(value_and_grad, params)}
    print(results, flush=True)
    out = {"problem": "64 x 64, 0.03 arcsec/pixel, supersampling 2, 21 x 21 PSF, demo TRUTH, float32",
           "device": str(jax.devices()[0]), "platform": platform.platform(), "cpu_count": os.cpu_count(),
           "jax": jax.__version__, "load_average": [load, os.getloadavg()[0]], "results": results}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    atomic_write_json(args.out, out, indent=1)
    return out


if __name__ == "__main__":
    main()
