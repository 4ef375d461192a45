"""Why the U-Net convolves by im2col on CPU: XLA:CPU convolutions inside loop bodies.

NUTS, MALA, annealed Langevin and the reverse-SDE samplers call the noise network inside
``lax.while_loop`` / ``lax.scan`` bodies. There XLA:CPU runs a convolution fast only when its kernel
is in the canonical HWIO layout with NHWC activations; equinox's NCHW / OIHW convolution, and the
input gradient of ANY convolution (its transpose swaps the kernel's I and O), take a slow path
(jax-ml/jax#12868). An explicit im2col (the 9 shifted views side by side, times the weight matrix)
has no such case: slices, concatenations and matrix products are fast everywhere.

Measured here, each inside a ``lax.fori_loop`` of N iterations and as N separate calls of one
compiled function (per call, median of 3 repeats):

1. One 3 x 3 convolution layer, 16 -> 16 channels at 64 x 64 and 32 -> 32 at 32 x 32: forward,
   input gradient and weight gradient of lax NCHW/OIHW (equinox's layout), lax NHWC/HWIO and
   im2col.
2. The demo's SLIC potential (64 x 64 lens, shipped JWST energy model, value and gradient in the
   13 lens parameters, the quantity NUTS evaluates every leapfrog step) with the net's two
   convolution paths: im2col (the CPU default) and lax NHWC (the path on other backends, forced
   here by reporting another backend to the net).

    python benchmarks/conv_in_loop.py [--out benchmarks/results/conv_in_loop_cpu.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from numpyro_slic.data.io import atomic_write_json


def _time(fn, args, n: int, repeats: int = 3) -> dict:
    """Per-call seconds of fn(*args): n separate calls, and one fori_loop of n iterations."""
    outside = jax.jit(fn)

    def body(i, carry):
        return jax.tree.map(lambda c, o: c + 1e-6 * o, carry, fn(*carry))

    looped = jax.jit(lambda *a: lax.fori_loop(0, n, body, a))
    jax.block_until_ready(outside(*args))
    jax.block_until_ready(looped(*args))
    t_out, t_in = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            jax.block_until_ready(outside(*args))
        t_out.append((time.perf_counter() - start) / n)
        start = time.perf_counter()
        jax.block_until_ready(looped(*args))
        t_in.append((time.perf_counter() - start) / n)
    out, inside = float(np.median(t_out)), float(np.median(t_in))
    return {"outside_ms": 1e3 * out, "inside_loop_ms": 1e3 * inside, "inside_over_outside": inside / out}


def _layers(n: int) -> dict:
    def nchw(x, w):  # x (H, W, C), w (3, 3, C, O), computed as equinox does
        y = lax.conv_general_dilated(jnp.moveaxis(x, -1, 0)[None], jnp.transpose(w, (3, 2, 0, 1)), (1, 1), "SAME")
        return jnp.moveaxis(y[0], 0, -1)

    def nhwc(x, w):
        return lax.conv_general_dilated(x[None], w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]

    def im2col(x, w):
        h, v = x.shape[:2]
        xp = jnp.pad(x, ((1, 1), (1, 1), (0, 0)))
        cols = jnp.concatenate([xp[a:a + h, b:b + v] for a in range(3) for b in range(3)], axis=-1)
        return cols @ w.reshape(-1, w.shape[-1])

    rng = np.random.default_rng(0)
    out = {}
    for c, size in ((16, 64), (32, 32)):
        x = jnp.asarray(rng.normal(size=(size, size, c)), jnp.float32)
        w = jnp.asarray(0.1 * rng.normal(size=(3, 3, c, c)), jnp.float32)
        for name, conv in (("lax_nchw_oihw", nchw), ("lax_nhwc_hwio", nhwc), ("im2col", im2col)):
            cases = {
                "forward": lambda x, w, f=conv: (f(x, w), w),
                "input_gradient": lambda x, w, f=conv: (jax.vjp(lambda y: f(y, w), x)[1](x)[0], w),
                "weight_gradient": lambda x, w, f=conv: (x, jax.grad(lambda v: jnp.sum(f(x, v) * x))(w)),
            }
            for case, fn in cases.items():
                r = _time(fn, (x, w), n)
                out[f"{c}ch_{size}px/{name}/{case}"] = r
                print(f"{c:2d} ch {size}px {name:14s} {case:16s} outside {r['outside_ms']:6.2f} ms  "
                      f"in loop {r['inside_loop_ms']:6.2f} ms  x{r['inside_over_outside']:.1f}", flush=True)
    return out


def _potential(n: int) -> dict:
    from numpyro_slic.demo import demo_potential, demo_problem

    potential, flat, *_ = demo_potential(demo_problem(64, 0), "SLIC")
    value_and_grad = jax.value_and_grad(potential)
    out = {}
    for name, backend in (("im2col", "cpu"), ("lax_nhwc_hwio", "gpu")):
        # The net picks its convolution when traced; report `backend` to it while compiling.
        with mock.patch("numpyro_slic.noise.networks.jax.default_backend", lambda b=backend: b):
            r = _time(lambda f: value_and_grad(f)[1:], (flat,), n)
        out[f"slic_potential_64px/{name}/value_and_grad"] = r
        print(f"SLIC potential 64px {name:14s} outside {r['outside_ms']:6.1f} ms  in loop {r['inside_loop_ms']:6.1f} ms  "
              f"x{r['inside_over_outside']:.1f}", flush=True)
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="calls / loop iterations per timing")
    parser.add_argument("--out", default="benchmarks/results/conv_in_loop_cpu.json")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    results = {**_layers(args.n), **_potential(args.n)}
    out = {"device": str(jax.devices()[0]), "platform": platform.platform(), "cpu_count": os.cpu_count(),
           "jax": jax.__version__, "load_average": [load, os.getloadavg()[0]], "n": args.n, "results": results}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    atomic_write_json(args.out, out, indent=1)
    return out


if __name__ == "__main__":
    main()
