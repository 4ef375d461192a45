"""Cost of ScoreLikelihood's value and gradient against the floor.

The floor is what any score-based likelihood gradient must pay: one score evaluation at the residual
plus one vector-Jacobian product of the simulator. We time, with theta -> log p(d | theta):

- floor:    s = score(d - M(theta)); vjp_M(-s)                       (hand-written)
- gradient: jax.grad through ScoreLikelihood(energy="none")          (target <= 1.2 x floor)
- line:     jax.value_and_grad, energy="line", K nodes               (target <= (K/2 + 1) x floor)
- exact:    jax.value_and_grad, energy="exact" (stationary Gaussian only: it has a log_prob)

for 64 x 64 and 256 x 256 images, with the stationary-Gaussian score (two FFTs) and a small conv net
(5 layers, 32 channels, as sized in docs/design.md section 6). Ratios are measured in one run on one
machine; absolute times depend on the machine.

    python benchmarks/likelihood.py [--out benchmarks/results/likelihood.json] [--sizes 64 256]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from numpyro_slic import ScoreFunction, ScoreLikelihood, StationaryGaussianNoise
from numpyro_slic.data.io import atomic_write_json


def simulator(size):
    """A 7-parameter image model (two elliptical Gaussian blobs): a stand-in for M(theta)."""
    yy, xx = jnp.mgrid[:size, :size] / size - 0.5

    def sim(theta):
        a1, x1, y1, w1, a2, x2, y2 = theta
        b1 = a1 * jnp.exp(-((xx - x1) ** 2 + 2 * (yy - y1) ** 2) / (2 * w1**2))
        b2 = a2 * jnp.exp(-((xx - x2) ** 2 + (yy - y2) ** 2) / (2 * 0.05**2))
        return b1 + b2

    theta = jnp.array([3.0, 0.05, -0.02, 0.1, 1.5, -0.2, 0.15])
    return sim, theta


class ConvScore(eqx.Module):
    """Small fully convolutional score net: 5 conv layers, 32 channels, 3 x 3 kernels."""

    layers: list

    def __init__(self, key, width=32, depth=5):
        keys = jax.random.split(key, depth)
        chans = [1] + [width] * (depth - 1) + [1]
        self.layers = [eqx.nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, key=keys[i]) for i in range(depth)]

    def __call__(self, x):
        h = x[None]
        for layer in self.layers[:-1]:
            h = jax.nn.gelu(layer(h))
        return self.layers[-1](h)[0] - x  # a Gaussian-like term keeps the value scale sensible


def power_spectrum(size):
    k = np.fft.fftfreq(size)
    p = 1.0 / (0.02 + 30 * k[:, None] ** 2 + 4 * k[None, :] ** 2)
    return p / p.mean()


def time_fn(fn, *args, repeats):
    out = fn(*args)
    jax.block_until_ready(out)  # compile + warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench_case(size, score_name, nodes_list, repeats):
    sim, theta = simulator(size)
    if score_name == "stationary":
        noise = StationaryGaussianNoise(power_spectrum(size))
    else:
        noise = ScoreFunction(ConvScore(jax.random.key(0)))
    stat = StationaryGaussianNoise(power_spectrum(size))
    data = sim(theta) + stat.sample(jax.random.key(1))

    @eqx.filter_jit
    def floor(theta):
        mu, vjp = jax.vjp(sim, theta)
        return vjp(-noise.score(data - mu, 0.0))[0]

    def logp(energy, nodes=8):
        return lambda th: ScoreLikelihood(noise, sim(th), energy=energy, nodes=nodes).log_prob(data)

    result = {"size": size, "score": score_name, "floor_s": time_fn(floor, theta, repeats=repeats)}
    grad = eqx.filter_jit(jax.grad(logp("none")))
    np.testing.assert_allclose(grad(theta), floor(theta), rtol=1e-4, atol=1e-3)  # same quantity
    result["gradient_s"] = time_fn(grad, theta, repeats=repeats)
    result["gradient_ratio"] = result["gradient_s"] / result["floor_s"]
    result["line"] = {}
    for k in nodes_list:
        vg = eqx.filter_jit(jax.value_and_grad(logp("line", k)))
        t = time_fn(vg, theta, repeats=repeats)
        result["line"][str(k)] = {
            "seconds": t,
            "ratio": t / result["floor_s"],
            "target_ratio": k / 2 + 1,
            "meets_target": bool(t / result["floor_s"] <= k / 2 + 1),
        }
    if noise.has_log_prob:
        vg = eqx.filter_jit(jax.value_and_grad(logp("exact")))
        result["exact_s"] = time_fn(vg, theta, repeats=repeats)
        result["exact_ratio"] = result["exact_s"] / result["floor_s"]
    result["gradient_meets_target"] = bool(result["gradient_ratio"] <= 1.2)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--nodes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "likelihood.json"))
    args = parser.parse_args(argv)

    results = []
    for size in args.sizes:
        for score_name in ["stationary", "convnet"]:
            r = bench_case(size, score_name, args.nodes, args.repeats)
            results.append(r)
            line = ", ".join(f"K={k}: {v['ratio']:.2f}x (<= {v['target_ratio']:.0f}x)" for k, v in r["line"].items())
            print(
                f"{size:4d}x{size:<4d} {score_name:10s} floor {r['floor_s'] * 1e3:8.3f} ms | "
                f"gradient {r['gradient_ratio']:.2f}x (<= 1.2x) | line {line}"
                + (f" | exact {r['exact_ratio']:.2f}x" if "exact_ratio" in r else "")
            )
    meta = {
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "repeats": args.repeats,
        "statistic": "median wall time of value (and) gradient per call, after compilation",
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    atomic_write_json(args.out, {"meta": meta, "results": results}, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
