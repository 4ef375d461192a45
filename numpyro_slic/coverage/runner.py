"""The injection runner: many NUTS inferences as one vectorised, sharded, resumable computation.

One injection = one draw theta_i from the model's prior, its noise-free image, one REAL held-out noise
tile and one Gaussian perturbation at the problem's diffusion level (the same observation for every
likelihood), then NUTS under each likelihood. Injection ``i`` depends only on ``(seed, i)``, so any
subset of injections, in any order, on any machine, gives the same draws.

How it runs (DESIGN section 7):

- NumPyro's functional HMC API (``numpyro.infer.hmc.hmc``) with the potential as a function of the
  data (``initialize_model(..., dynamic_args=True)``): one chain is a pure function of (key, data,
  start, metric), vmapped over chains and over a batch of injections and jitted once. NUTS's
  while-loops then run to the longest trajectory in the batch, which ``max_tree_depth`` caps.
- The batch axis is sharded over every local device (``jax.sharding``: a 1-d ``Mesh`` over
  ``jax.local_devices()``, ``NamedSharding`` on the injection axis); the batch size is rounded up
  to a multiple of the device count and the last batch is padded, so nothing recompiles.
- Several hosts: start each with ``jax.distributed.initialize()``; ``run_injections`` gives process
  ``jax.process_index()`` every ``jax.process_count()``-th batch, and each writes its own batch files.
  Copy (or share) the output folders into one and ``load_results`` merges them.
- Every finished batch is written at once, atomically (``<out>/<likelihood>/batch_<first id>.npz``
  with its metadata as JSON inside), and ``<out>/index.json`` lists the injection ids done per
  likelihood. A killed run resumes where it stopped: ids already on disk under the same problem,
  seed and settings are skipped; files from other settings are refused, never mixed.
- The metric. Each injection's NUTS starts from a dense metric, the Laplace approximation of a
  cheap Gaussian-likelihood posterior at that injection's truth (``problem.metric_noise``), which
  warmup then adapts (``RunConfig.adapt_mass_matrix``); chains start at a draw from that Laplace
  approximation, not at the truth. The metric changes efficiency, never the target: NUTS is exact
  for any metric.
- Per injection and likelihood the split R-hat, bulk ESS, divergences and mean tree size are kept;
  ``converged`` marks injections with R-hat <= ``max_rhat``, ESS >= ``min_ess`` for every parameter
  and at most ``max_divergence_fraction`` divergent draws. The coverage statistics use converged
  injections only and report how many were left out (and which).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
import time
from functools import lru_cache, partial

import numpy as np

from .problems import CoverageProblem

__all__ = ["RunConfig", "Injections", "make_injections", "run_injections", "load_results", "InjectionResults"]


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """NUTS settings of every injection.

    Attributes:
        num_warmup: warmup iterations per chain (step-size adaptation only; the metric is fixed).
        num_samples: draws kept per chain.
        num_chains: chains per injection (>= 2 for R-hat).
        max_tree_depth: NUTS trajectories have at most 2^depth - 1 steps; in a batch every member
            waits for the longest trajectory, so this also caps the batch's cost per draw.
        target_accept_prob: step-size adaptation target.
        adapt_mass_matrix: adapt the dense metric during warmup (NumPyro's windowed adaptation,
            unregularised), starting from the Laplace one. On the 32 x 32 lens the Laplace metric
            at the truth underestimates the amplitude-radius ridge's variance tenfold; adapting it
            over 400 warmup iterations halved the tree size (26 -> 13 steps) and raised the min
            bulk ESS of 600 draws from 6-39 to 82-288 (two injections). NumPyro's default
            regularisation shrinks towards 1e-3 I, far off for parameters whose posterior sd is
            1e-3, hence off.
        max_divergence_fraction: an injection with more divergent transitions is not converged.
        batch_size: injections per vectorised computation (rounded up to a multiple of the devices).
        max_rhat, min_ess: convergence thresholds of an injection (every parameter).
    """

    num_warmup: int = 400
    num_samples: int = 500
    num_chains: int = 2
    max_tree_depth: int = 5
    target_accept_prob: float = 0.8
    adapt_mass_matrix: bool = True
    batch_size: int = 8
    max_rhat: float = 1.05
    min_ess: float = 100.0
    max_divergence_fraction: float = 0.01

    def __post_init__(self):
        for name in ("num_warmup", "num_samples", "num_chains", "max_tree_depth", "batch_size"):
            value = getattr(self, name)
            if int(value) != value or value < (0 if name == "num_warmup" else 1):
                raise ValueError(f"RunConfig: {name} must be a positive integer, got {value!r}.")
        if self.num_chains < 2:
            raise ValueError("RunConfig: num_chains must be >= 2 so that R-hat can flag an unconverged injection.")
        if not 0 < self.target_accept_prob < 1:
            raise ValueError(f"RunConfig: target_accept_prob must be in (0, 1), got {self.target_accept_prob}.")

    def sampling_dict(self) -> dict:
        """The settings that change the draws (the batch size and thresholds do not)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("batch_size", "max_rhat", "min_ess")}


@dataclasses.dataclass(frozen=True, eq=False)
class Injections:
    """Simulated observations with known truth.

    Attributes:
        ids: ``(n,)`` injection ids.
        truths: ``(n, P)`` parameter values drawn from the prior, in ``problem.params`` order.
        data: ``(n, H, W)`` noise-free image + real noise tile + one perturbation at ``level_sigma``.
        noise_index: ``(n,)`` which tile of ``problem.injection_noise`` each one got.
    """

    ids: np.ndarray
    truths: np.ndarray
    data: np.ndarray
    noise_index: np.ndarray


def _injection_key(seed: int, i):
    import jax

    return jax.random.fold_in(jax.random.key(seed), i)


def make_injections(problem: CoverageProblem, ids, seed: int) -> Injections:
    """Draws theta from the prior (NumPyro ``Predictive``), simulates and adds real noise, per id.

    Tile ``i mod N`` of the N injection-noise tiles goes to injection ``i``: tiles repeat only
    past N injections (with other parameters and another perturbation).
    """
    import jax
    import jax.numpy as jnp

    ids = np.asarray(ids, dtype=np.int64)
    keys = jax.vmap(lambda i: _injection_key(seed, i))(jnp.asarray(ids))
    truths, clean, z = jax.lax.map(_prior_draw(problem), keys)
    noise_index = ids % len(problem.injection_noise)
    data = np.asarray(clean) + problem.injection_noise[noise_index] + problem.level_sigma * np.asarray(z)
    return Injections(ids=ids, truths=np.asarray(truths, np.float64), data=data.astype(np.float32),
                      noise_index=noise_index)


@lru_cache(maxsize=8)
def _prior_draw(problem: CoverageProblem):
    """A jitted key -> (theta (P,), noise-free image, perturbation draw), compiled once per problem."""
    import jax
    import jax.numpy as jnp
    from numpyro.infer import Predictive

    from ..noise import WhiteGaussianNoise

    # The prior draw needs a cheap likelihood: the observation site is not used.
    predictive = Predictive(problem.model, num_samples=1, return_sites=list(problem.params))

    @jax.jit
    def draw(key):
        k_prior, k_perturb = jax.random.split(key)
        theta = {k: v[0] for k, v in predictive(k_prior, None, noise=WhiteGaussianNoise(1.0), t=0.0).items()}
        clean = problem.simulator(theta)
        z = jax.random.normal(k_perturb, clean.shape, clean.dtype)
        return jnp.stack([theta[p] for p in problem.params]), clean, z

    return draw


def _batched_nuts(problem: CoverageProblem, likelihood: str, config: RunConfig):
    """A jitted function (keys (B,), data (B, H, W), truths (B, P)) -> draws and sampler statistics."""
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.hmc import hmc
    from numpyro.infer import init_to_median
    from numpyro.infer.util import initialize_model, unconstrain_fn

    model = partial(problem.model, noise=problem.noises[likelihood], t=problem.levels[likelihood])
    metric_model = partial(problem.model, noise=problem.metric_noise, t=problem.metric_level)
    data0 = jnp.zeros(problem.image_shape, jnp.float32)
    info = initialize_model(jax.random.key(0), model, model_args=(data0,), dynamic_args=True,
                            init_strategy=init_to_median)
    metric_info = initialize_model(jax.random.key(0), metric_model, model_args=(data0,), dynamic_args=True,
                                   init_strategy=init_to_median)
    z_template = info.param_info.z
    _, unravel = ravel_pytree(z_template)
    init_kernel, sample_kernel = hmc(potential_fn_gen=info.potential_fn, algo="NUTS")

    def to_z(data, truth):
        params = {p: truth[j] for j, p in enumerate(problem.params)}
        return ravel_pytree(unconstrain_fn(model, (data,), {}, params))[0]

    def laplace_inverse_mass(data, z):
        potential = lambda flat: metric_info.potential_fn(data)(unravel(flat))  # noqa: E731
        hessian = jax.hessian(potential)(z)
        values, vectors = jnp.linalg.eigh(0.5 * (hessian + hessian.T))
        # At a single noisy point the Hessian need not be positive definite: clip its spectrum.
        values = jnp.clip(values, 1e-3 * values.max(), None)
        return (vectors / values) @ vectors.T

    def chain(key, data, z0, inverse_mass):
        state = init_kernel(unravel(z0), config.num_warmup, inverse_mass_matrix=inverse_mass,
                            adapt_mass_matrix=config.adapt_mass_matrix, dense_mass=True,
                            regularize_mass_matrix=False,
                            target_accept_prob=config.target_accept_prob,
                            max_tree_depth=config.max_tree_depth, model_args=(data,), rng_key=key)

        def step(state, _):
            state = sample_kernel(state, model_args=(data,))
            return state, (ravel_pytree(state.z)[0], state.diverging, state.num_steps)

        # One scan over warmup and sampling (the kernel adapts by its own step count, as NumPyro's
        # fori_collect does): NUTS is traced and compiled once, not once per phase. Same draws to
        # the bit; on 2 CPU cores notebook 03's smoke run went from 131 to 105 s, most of it tracing.
        state, trace = jax.lax.scan(step, state, None, length=config.num_warmup + config.num_samples)
        zs, diverging, num_steps = (a[config.num_warmup:] for a in trace)
        constrained = jax.vmap(lambda z: info.postprocess_fn(data)(unravel(z)))(zs)
        draws = jnp.stack([constrained[p] for p in problem.params], axis=-1)
        return draws, diverging, num_steps, state.adapt_state.step_size

    def injection(key, data, truth):
        z_truth = to_z(data, truth)
        inverse_mass = laplace_inverse_mass(data, z_truth)
        k_start, k_chains = jax.random.split(key)
        # Chains start at draws from the Laplace approximation around the truth, not at the truth.
        chol = jnp.linalg.cholesky(inverse_mass)
        starts = z_truth + jax.random.normal(k_start, (config.num_chains, z_truth.size)) @ chol.T
        keys = jax.random.split(k_chains, config.num_chains)
        return jax.vmap(chain, in_axes=(0, None, 0, None))(keys, data, starts, inverse_mass)

    return jax.jit(jax.vmap(injection))


@lru_cache(maxsize=8)
def _compiled(problem: CoverageProblem, likelihood: str, config: RunConfig, batch: int, devices: tuple):
    """The batched NUTS compiled for ``batch`` injections sharded over ``devices``, and the seconds
    its compilation took (once per process: later calls get the cached executable)."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    sharding = NamedSharding(Mesh(np.array(devices), ("injection",)), PartitionSpec("injection"))
    h, w = problem.image_shape
    shapes = [jax.ShapeDtypeStruct((batch,), jax.random.key(0).dtype, sharding=sharding),
              jax.ShapeDtypeStruct((batch, h, w), jnp.float32, sharding=sharding),
              jax.ShapeDtypeStruct((batch, len(problem.params)), jnp.float32, sharding=sharding)]
    start = time.perf_counter()
    compiled = _batched_nuts(problem, likelihood, config).lower(*shapes).compile()
    return compiled, time.perf_counter() - start


def _slug(likelihood: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", likelihood.lower()).strip("-")


def _chain_diagnostics(draws: np.ndarray, diverging: np.ndarray, config: RunConfig) -> dict:
    """Per injection: R-hat and bulk ESS per parameter, divergences, and the converged flag.

    draws ``(B, chains, draws, P)``; diverging ``(B, chains, draws)``.
    """
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

    b, _, _, p = draws.shape
    rhat = np.array([[split_gelman_rubin(draws[i, :, :, j]) for j in range(p)] for i in range(b)])
    ess = np.array([[effective_sample_size(draws[i, :, :, j]) for j in range(p)] for i in range(b)])
    divergences = diverging.reshape(b, -1).sum(axis=1)
    converged = ((np.nanmax(rhat, axis=1) <= config.max_rhat) & (np.nanmin(ess, axis=1) >= config.min_ess)
                 & (divergences <= config.max_divergence_fraction * diverging[0].size))
    return {"rhat": rhat, "ess_bulk": ess, "divergences": divergences, "converged": converged}


def _metadata(problem: CoverageProblem, likelihood: str, config: RunConfig, seed: int) -> dict:
    return {
        "problem": problem.name,
        "problem_info": problem.info,
        "likelihood": likelihood,
        "t": float(problem.levels[likelihood]),
        "params": list(problem.params),
        "seed": int(seed),
        "sampling": config.sampling_dict(),
    }


def _comparable(meta: dict) -> dict:
    """The settings a batch's results depend on. The problem's learned noise model enters the SLIC
    likelihood only: Gaussian runs made beside one SLIC model stay valid beside another. A SLIC
    model loaded from a bundle is identified by its weights' sha256 (``noise_model_sha256``), so a
    shipped name whose weights changed is a different model, and a name and a path to the same
    weights are the same one; batches written before the checksum was recorded compare by name."""
    keys = ("problem", "problem_info", "likelihood", "t", "params", "seed", "sampling")
    out = json.loads(json.dumps({k: meta[k] for k in keys}))
    info = out["problem_info"]
    if out["likelihood"] != "SLIC":
        info.pop("noise_model", None)
        info.pop("noise_model_sha256", None)
    elif info.get("noise_model_sha256"):
        info.pop("noise_model", None)
    return out


def _same_run(a: dict, b: dict) -> bool:
    return _comparable(a) == _comparable(b)


def _read_batch(path: str) -> dict:
    with np.load(path, allow_pickle=False) as f:
        out = {k: np.asarray(f[k]) for k in f.files if k != "metadata"}
        out["metadata"] = json.loads(str(f["metadata"]))
    return out


def _write_index(out_dir: str) -> None:
    from ..data.io import atomic_write_json

    index = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "*", "batch_*.npz"))):
        batch = _read_batch(path)
        entry = index.setdefault(batch["metadata"]["likelihood"], {"seed": batch["metadata"]["seed"], "ids": {}})
        for i in batch["ids"]:
            entry["ids"][str(int(i))] = os.path.relpath(path, out_dir)
    atomic_write_json(os.path.join(out_dir, "index.json"), index, indent=1)


def _done_ids(out_dir: str, meta: dict) -> set[int]:
    done = set()
    for path in glob.glob(os.path.join(out_dir, _slug(meta["likelihood"]), "batch_*.npz")):
        batch = _read_batch(path)
        if not _same_run(batch["metadata"], meta):
            raise ValueError(
                f"run_injections: {path} was made with other settings (problem, seed, levels or NUTS "
                f"settings differ) than this run. Use another output folder, or the same settings to resume."
            )
        done.update(int(i) for i in batch["ids"])
    return done


def run_injections(
    problem: CoverageProblem,
    likelihood: str,
    num_injections: int,
    out_dir: str,
    *,
    config: RunConfig = RunConfig(),
    seed: int = 0,
    first_id: int = 0,
    progress: bool = True,
    process_index: int | None = None,
    process_count: int | None = None,
) -> dict:
    """Runs injections ``first_id .. first_id + num_injections - 1`` under one likelihood, resumably.

    Args:
        problem: e.g. ``lens_coverage_problem(32, "jwst-f150w")``.
        likelihood: a key of ``problem.noises`` (e.g. "SLIC").
        num_injections: how many injections (ids ``first_id`` onwards).
        out_dir: results folder; batch files go to ``out_dir/<likelihood>/``.
        config: NUTS settings.
        seed: the injections' seed (theta, noise tile, perturbation, chains).
        first_id: the first injection id.
        progress: show a progress bar.
        process_index: this host's index among ``process_count`` (default ``jax.process_index()``):
            it runs every ``process_count``-th batch, starting at this one.
        process_count: number of hosts sharing the run (default ``jax.process_count()``).

    Returns:
        A dict with ``done`` (ids run now), ``skipped`` (ids already on disk), ``seconds``
        (sampling seconds per batch), ``compile_seconds``, ``batch_size`` and ``devices``.
    """
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from ..data.io import atomic_savez

    if likelihood not in problem.noises:
        raise ValueError(f"run_injections: unknown likelihood {likelihood!r}; this problem has {tuple(problem.noises)}.")
    if num_injections < 1:
        raise ValueError(f"run_injections: num_injections must be >= 1, got {num_injections}.")
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    devices = jax.local_devices()
    batch = -(-config.batch_size // len(devices)) * len(devices)
    meta = _metadata(problem, likelihood, config, seed)
    folder = os.path.join(out_dir, _slug(likelihood))
    os.makedirs(folder, exist_ok=True)
    done = _done_ids(out_dir, meta)
    todo = [i for i in range(first_id, first_id + num_injections) if i not in done]
    batches = [todo[k: k + batch] for k in range(0, len(todo), batch)][process_index::process_count]

    sharding = NamedSharding(Mesh(np.array(devices), ("injection",)), PartitionSpec("injection"))
    seconds, compile_seconds = [], None
    from tqdm.auto import tqdm

    bar = tqdm(total=sum(map(len, batches)), desc=f"{likelihood} injections", unit="inj", disable=not progress)
    for ids in batches:
        inj = make_injections(problem, ids, seed)
        pad = batch - len(ids)  # pad the last batch by repeating its last injection: no recompile
        keys = jax.vmap(lambda i: jax.random.fold_in(_injection_key(seed, i), 1))(jnp.asarray(ids + ids[-1:] * pad))
        data = np.concatenate([inj.data, np.repeat(inj.data[-1:], pad, axis=0)])
        truths = np.concatenate([inj.truths, np.repeat(inj.truths[-1:], pad, axis=0)])
        args = [jax.device_put(jnp.asarray(a), sharding) for a in (keys, data, truths.astype(np.float32))]
        if compile_seconds is None:
            compiled, compile_seconds = _compiled(problem, likelihood, config, batch, tuple(devices))
            if progress:
                bar.write(f"{likelihood}: compiled for {batch} injections on {len(devices)} device(s) in {compile_seconds:.0f} s")
        start = time.perf_counter()
        draws, diverging, num_steps, step_size = (np.asarray(x)[: len(ids)] for x in compiled(*args))
        seconds.append(time.perf_counter() - start)
        diagnostics = _chain_diagnostics(draws, diverging, config)
        atomic_savez(
            os.path.join(folder, f"batch_{ids[0]:06d}.npz"),
            ids=np.asarray(ids), truths=inj.truths, noise_index=inj.noise_index,
            draws=draws.astype(np.float32), diverging=diverging, num_steps=num_steps.astype(np.int32),
            step_size=step_size.astype(np.float32), seconds=np.float64(seconds[-1]),
            **diagnostics,
            metadata=json.dumps({**meta, "batch_size": batch, "devices": [str(d) for d in devices],
                                 "compile_seconds": compile_seconds}),
        )
        _write_index(out_dir)
        bar.update(len(ids))
        bar.set_postfix(converged=f"{int(diagnostics['converged'].sum())}/{len(ids)}")
    bar.close()
    return {"done": [i for ids in batches for i in ids], "skipped": sorted(done & set(range(first_id, first_id + num_injections))),
            "seconds": seconds, "compile_seconds": compile_seconds, "batch_size": batch, "devices": len(devices)}


@dataclasses.dataclass(frozen=True, eq=False)
class InjectionResults:
    """Everything on disk for one likelihood, merged and sorted by id.

    Attributes:
        likelihood: the likelihood's name.
        params: the P parameter names.
        metadata: problem, seed and NUTS settings of the run.
        ids: ``(n,)`` injection ids.
        truths: ``(n, P)`` true parameters.
        draws: ``(n, chains, draws, P)`` posterior draws.
        rhat: ``(n, P)`` split R-hat.
        ess_bulk: ``(n, P)`` bulk effective sample size.
        divergences: ``(n,)`` divergent transitions.
        converged: ``(n,)`` the runner's convergence flag.
        num_steps: ``(n, chains, draws)`` leapfrog steps per draw.
        seconds: sampling seconds of each batch file.
    """

    likelihood: str
    params: tuple[str, ...]
    metadata: dict
    ids: np.ndarray
    truths: np.ndarray
    draws: np.ndarray
    rhat: np.ndarray
    ess_bulk: np.ndarray
    divergences: np.ndarray
    converged: np.ndarray
    num_steps: np.ndarray
    seconds: np.ndarray


def load_results(out_dir: str, likelihood: str) -> InjectionResults:
    """Merges every batch file of ``likelihood`` under ``out_dir`` (several runs or hosts welcome).

    Raises:
        FileNotFoundError: no batch of that likelihood there.
        ValueError: batches from different settings, or one id with two different results.
    """
    paths = sorted(glob.glob(os.path.join(out_dir, _slug(likelihood), "batch_*.npz")))
    if not paths:
        raise FileNotFoundError(f"load_results: no batch files for {likelihood!r} under {out_dir!r}.")
    batches = [_read_batch(p) for p in paths]
    meta = batches[0]["metadata"]
    for path, b in zip(paths, batches):
        if not _same_run(b["metadata"], meta):
            raise ValueError(f"load_results: {path} comes from other settings than {paths[0]}; keep runs apart.")
    ids = np.concatenate([b["ids"] for b in batches])
    order = np.argsort(ids, kind="stable")
    unique, first = np.unique(ids[order], return_index=True)
    take = order[first]  # a re-run id (two hosts, same batch) keeps one copy: the draws are identical

    def cat(name):
        return np.concatenate([b[name] for b in batches])[take]

    return InjectionResults(
        likelihood=likelihood, params=tuple(meta["params"]), metadata=meta, ids=unique,
        truths=cat("truths"), draws=cat("draws"), rhat=cat("rhat"), ess_bulk=cat("ess_bulk"),
        divergences=cat("divergences"), converged=cat("converged"), num_steps=cat("num_steps"),
        seconds=np.array([float(b["seconds"]) for b in batches]),
    )
