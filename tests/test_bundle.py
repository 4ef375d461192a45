"""Model bundles: exact round trips, every corruption reported, shipped models, the train command."""

import json
import os
import zipfile

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from numpyro_slic.noise.bundle import (
    load_noise_model,
    read_bundle_metadata,
    save_noise_model,
    shipped_models,
)
from numpyro_slic.noise.calibration import CalibratedNoise, ScoreCalibration
from numpyro_slic.noise.backbones import (
    CorrelatedMixtureBackbone,
    GaussianBackbone,
    GaussianCopulaBackbone,
    MixtureBackbone,
)
from numpyro_slic.noise.learned import LearnedNoise
from numpyro_slic.noise.networks import UNet, UNetConfig
from numpyro_slic.noise.sde import VPSDE

TINY = UNetConfig(width=8, channel_mults=(1, 2), embed_dim=16, groups=4)


def _model(parameterisation="score", sde=None, config=TINY, seed=0):
    """A LearnedNoise with every weight drawn at random (numpy: no per-shape compilation)."""
    rng = np.random.default_rng(seed)
    shapes = eqx.filter_eval_shape(UNet, config, key=jax.random.key(0))
    net = jax.tree.map(
        lambda x: jnp.asarray(0.1 * rng.standard_normal(x.shape), x.dtype) if isinstance(x, jax.ShapeDtypeStruct) else x,
        shapes)
    patches = rng.standard_normal((8, 16, 16)).astype(np.float32)
    kwargs = {} if sde is None else {"sde": sde}
    return LearnedNoise(net, parameterisation=parameterisation, backbone=GaussianBackbone.from_patches(patches, 3),
                        reference_patch=patches[0], scale=0.5, t_min=0.002, **kwargs)


def _arrays(model):
    return jax.tree.leaves(eqx.filter(model, eqx.is_array))


@eqx.filter_jit
def _score(model, x):
    return model.score(x, 0.2)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle") / "model.zip"
    model = _model()
    save_noise_model(path, model, {"data": {"source": "synthetic"}, "steps": 3})
    return path, model


def test_round_trip_is_exact(saved):
    path, model = saved
    loaded = load_noise_model(path)
    assert type(loaded) is LearnedNoise
    for a, b in zip(_arrays(model), _arrays(loaded), strict=True):
        np.testing.assert_array_equal(a, b)
    assert (loaded.scale, loaded.t_min, loaded.parameterisation) == (0.5, 0.002, "score")
    x = jax.random.normal(jax.random.key(3), (16, 16))
    np.testing.assert_array_equal(_score(model, x), _score(loaded, x))
    meta = read_bundle_metadata(path)
    assert meta["metadata"] == {"data": {"source": "synthetic"}, "steps": 3}
    assert meta["model"]["net"]["width"] == 8
    assert os.stat(path).st_mode & 0o044  # readable by others like any new file (not mkstemp's 0600)


def _patches_with_hits(seed):
    """(8, 16, 16) white noise with 1% of pixels raised by 6 sd (rare one-sided hits)."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random((8, 16, 16)) < 0.01, 6.0, 0.0) + rng.standard_normal((8, 16, 16))


def _assert_backbone_round_trip(tmp_path, backbone, description):
    """An energy model with ``backbone`` saves and loads exactly, its bundle describing the backbone
    as ``description``; returns the loaded model."""
    model = eqx.tree_at(lambda m: m.backbone, _model("energy"), backbone)
    save_noise_model(tmp_path / "m.zip", model)
    loaded = load_noise_model(tmp_path / "m.zip")
    assert type(loaded.backbone) is type(backbone)
    for a, b in zip(_arrays(model), _arrays(loaded), strict=True):
        np.testing.assert_array_equal(a, b)
    assert read_bundle_metadata(tmp_path / "m.zip")["model"]["backbone"] == description
    return loaded


def test_mixture_backbone_round_trip_and_exact_energy(tmp_path):
    """A model with a MixtureBackbone saves and loads exactly, and its backbone energy is the
    mixture's exact -log density at every width (score = -grad energy)."""
    patches = _patches_with_hits(1)
    backbone = MixtureBackbone.from_patches(patches, 2)
    _assert_backbone_round_trip(tmp_path, backbone, {"kind": "mixture", "components": 2})
    u = jnp.asarray(patches[0], jnp.float32)
    w, mu, sd = (np.asarray(v, np.float64) for v in (jnp.exp(backbone.log_weights), backbone.means, backbone.sigmas))
    for sigma in (0.05, 1.0):
        s = np.sqrt(sd**2 + sigma**2)
        exact = -np.log((w * scipy.stats.norm(mu, s).pdf(np.asarray(u, np.float64)[..., None])).sum(-1)).sum()
        np.testing.assert_allclose(backbone.energy(u, sigma), exact, rtol=1e-5)
        np.testing.assert_allclose(backbone.score(u, sigma), -jax.grad(backbone.energy)(u, sigma), rtol=1e-4, atol=1e-4)


def test_correlated_mixture_backbone_round_trip(tmp_path):
    """A CorrelatedMixtureBackbone (core kernel + whitened-pixel mixture + background level) saves and
    loads exactly."""
    patches = _patches_with_hits(2) + np.linspace(-1.0, 1.0, 8)[:, None, None]  # a level per patch
    backbone = CorrelatedMixtureBackbone.from_patches(patches, 2, radius=3, background=True)
    assert backbone.background > 0
    loaded = _assert_backbone_round_trip(tmp_path, backbone, {
        "kind": "correlated-mixture", "components": 2, "kernel_shape": [7, 7], "floor": 1e-3,
        "background": backbone.background})
    u = jnp.asarray(patches[0], jnp.float32)
    assert float(loaded.backbone.energy(u, 0.1)) == float(backbone.energy(u, 0.1))



def test_gaussian_copula_backbone_round_trip(tmp_path):
    """A GaussianCopulaBackbone (marginal mixture + z's kernel + background level) saves and loads
    exactly."""
    patches = _patches_with_hits(3) + np.linspace(-1.0, 1.0, 8)[:, None, None]  # a level per patch
    backbone = GaussianCopulaBackbone.from_patches(patches, 2, radius=3, background=True)
    assert backbone.background > 0
    loaded = _assert_backbone_round_trip(tmp_path, backbone, {
        "kind": "gaussian-copula", "components": 2, "kernel_shape": [7, 7], "floor": 1e-3,
        "background": backbone.background})
    u = jnp.asarray(patches[0], jnp.float32)
    assert float(loaded.backbone.energy(u, 0.1)) == float(backbone.energy(u, 0.1))

def test_energy_vp_and_calibration_round_trip(tmp_path):
    model = _model("energy", VPSDE(0.1, 20.0), seed=5).with_event_shape((16, 16))
    calibration = ScoreCalibration(
        levels=jnp.array([0.01, 0.1]), sigmas=model.unit_sigma(jnp.array([0.01, 0.1])),
        mean=0.01 * jax.random.normal(jax.random.key(6), (2, 16, 16)), gains=None)
    wrapped = CalibratedNoise(model, calibration)
    save_noise_model(tmp_path / "c.zip", wrapped)
    loaded = load_noise_model(tmp_path / "c.zip")
    assert isinstance(loaded, CalibratedNoise) and loaded.base.has_log_prob
    assert isinstance(loaded.base.sde, VPSDE)
    np.testing.assert_array_equal(loaded.calibration.mean, calibration.mean)
    x = jax.random.normal(jax.random.key(7), (16, 16))
    np.testing.assert_array_equal(_score(wrapped, x), _score(loaded, x))


def _rewrite(src, dst, *, header=None, weights=None):
    with zipfile.ZipFile(src) as zf:
        h = json.loads(zf.read("model.json"))
        w = zf.read("weights.eqx")
    h = header(h) if header else h
    w = weights if weights is not None else w
    with zipfile.ZipFile(dst, "w") as zf:
        zf.writestr("model.json", json.dumps(h))
        zf.writestr("weights.eqx", w)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="No noise-model bundle"):
        load_noise_model(tmp_path / "nope.zip")
    with pytest.raises(FileNotFoundError, match="shipped names"):
        load_noise_model("jwst-nircam-f999w")


def test_truncated_file(saved, tmp_path):
    path, _ = saved
    bad = tmp_path / "truncated.zip"
    bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_noise_model(bad)


def test_checksum_mismatch(saved, tmp_path):
    path, _ = saved
    with zipfile.ZipFile(path) as zf:
        weights = bytearray(zf.read("weights.eqx"))
    weights[-5] ^= 0xFF  # flip bits in the last array
    bad = tmp_path / "corrupt.zip"
    _rewrite(path, bad, weights=bytes(weights))
    with pytest.raises(ValueError, match="sha256"):
        load_noise_model(bad)


def test_architecture_mismatch(saved, tmp_path):
    path, _ = saved

    def claim_wider(h):  # model.json describes a wider net than the weights hold (checksum intact)
        h["model"]["net"]["width"] = 12
        return h

    bad = tmp_path / "mismatch.zip"
    _rewrite(path, bad, header=claim_wider)
    with pytest.raises(ValueError, match="architecture"):
        load_noise_model(bad)


def test_unknown_version_and_bad_metadata(saved, tmp_path):
    path, model = saved
    bad = tmp_path / "future.zip"
    _rewrite(path, bad, header=lambda h: {**h, "format_version": 99})
    with pytest.raises(ValueError, match="version"):
        load_noise_model(bad)
    with pytest.raises(ValueError, match="JSON"):
        save_noise_model(tmp_path / "x.zip", model, {"bad": object()})
    with pytest.raises(TypeError, match="LearnedNoise"):
        save_noise_model(tmp_path / "x.zip", "not a model")
    assert not (tmp_path / "x.zip").exists()


@pytest.mark.parametrize("name", shipped_models())
def test_shipped_models(name):
    try:
        model = load_noise_model(name)
    except FileNotFoundError:
        pytest.skip(f"{name} has not been trained into numpyro_slic/models yet")
    meta = read_bundle_metadata(name)
    assert meta["metadata"]["data"]["train"]["sources"]
    import importlib.resources

    size = (importlib.resources.files("numpyro_slic") / "models" / f"{name}.zip").stat().st_size
    assert size <= 5_000_000
    for shape in [(64, 64), (100, 100)]:
        x = model.scale * jax.random.normal(jax.random.key(0), shape)
        s = _score(model, x)
        assert s.shape == shape and np.all(np.isfinite(np.asarray(s)))
    assert model.with_event_shape((100, 100)).reference().shape == (100, 100)
    # `numpyro-slic validate <name>` finds its held-out sky in the package.
    from numpyro_slic.data import load_patch_sets
    from numpyro_slic.diagnostics.noise_fidelity import SHIPPED_VAL

    val = load_patch_sets(SHIPPED_VAL[name]).patches
    assert val.ndim == 3 and len(val) >= 10 and np.all(np.isfinite(val))


def test_train_command_writes_a_bundle(tmp_path):
    from numpyro_slic.cli import main
    from numpyro_slic.data import PatchSet, save_patch_set
    from numpyro_slic.data.patchset import make_provenance

    rng = np.random.default_rng(0)
    sets = {}
    for role, n in [("train", 32), ("val", 8)]:
        patches = rng.standard_normal((n, 8, 8)).astype(np.float32)
        source = {"source": "synthetic", "sigma": 2.0, "units": "test units"}
        sets[role] = tmp_path / f"{role}.npz"
        save_patch_set(sets[role], PatchSet(patches, np.zeros((n, 3), np.int64),
                                            make_provenance(8, n, [source])))
    out = tmp_path / "model.zip"
    rc = main(["train", "--patches", str(sets["train"]), "--val-patches", str(sets["val"]), "--out", str(out),
               "--steps", "3", "--batch-size", "4", "--width", "8", "--channel-mults", "1",
               "--val-every", "3", "--no-progress"])
    assert rc == 0
    model = load_noise_model(out)
    meta = read_bundle_metadata(out)["metadata"]
    assert model.scale == 2.0 and meta["units"] == ["test units"]
    assert meta["training"]["steps"] == 3 and len(meta["validation"]["dsm_loss"]) == 8
    assert np.all(np.isfinite(np.asarray(_score(model, jnp.ones((8, 8))))))


def test_train_init_from_fine_tunes_a_bundle(tmp_path):
    """``numpyro-slic train --init-from BUNDLE`` takes the architecture, schedule and backbone from the
    bundle (no flags needed), records what it started from, and refuses flags that contradict the
    bundle, --no-net, and a bundle without a net."""
    from numpyro_slic.cli import main
    from numpyro_slic.data import PatchSet, save_patch_set
    from numpyro_slic.data.patchset import make_provenance

    rng = np.random.default_rng(1)
    sets = {}
    for role, n in [("train", 32), ("val", 8)]:
        source = {"source": "synthetic", "sigma": 1.0, "units": "test units"}
        sets[role] = str(tmp_path / f"{role}.npz")
        save_patch_set(sets[role], PatchSet(rng.standard_normal((n, 8, 8)).astype(np.float32),
                                            np.zeros((n, 3), np.int64), make_provenance(8, n, [source])))
    data = ["--patches", sets["train"], "--val-patches", sets["val"], "--batch-size", "4", "--no-progress"]
    first = str(tmp_path / "first.zip")
    assert main(["train", *data, "--out", first, "--steps", "2", "--width", "8", "--channel-mults", "1",
                 "--backbone-kind", "correlated-mixture", "--backbone-components", "2", "--sigma-max", "20"]) == 0
    tuned = str(tmp_path / "tuned.zip")
    assert main(["train", *data, "--out", tuned, "--steps", "2", "--lr", "1e-4", "--init-from", first]) == 0
    a, b = load_noise_model(first), load_noise_model(tuned)
    assert b.net.config == a.net.config and b.sde.to_dict() == a.sde.to_dict() == {"kind": "ve", "sigma_min": 0.01,
                                                                                   "sigma_max": 20.0}
    for x, y in zip(_arrays(a.backbone), _arrays(b.backbone)):
        np.testing.assert_array_equal(x, y)
    training = read_bundle_metadata(tuned)["metadata"]["training"]
    assert training["init_from"] == {"model": first, "weights_sha256": read_bundle_metadata(first)["weights"]["sha256"]}
    assert training["config"]["backbone_components"] == 2 and training["config"]["learning_rate"] == 1e-4

    assert main(["train", *data, "--out", tuned, "--steps", "2", "--init-from", first, "--width", "16"]) == 2
    assert main(["train", *data, "--out", tuned, "--init-from", first, "--no-net"]) == 2
    alone = str(tmp_path / "alone.zip")
    assert main(["train", *data, "--out", alone, "--no-net"]) == 0
    assert main(["train", *data, "--out", tuned, "--steps", "2", "--init-from", alone]) == 2
    assert main(["train", *data, "--out", tuned, "--steps", "2", "--init-from", str(tmp_path / "none.zip")]) == 2


@pytest.mark.parametrize("kind, cls", [("correlated-mixture", CorrelatedMixtureBackbone),
                                       ("gaussian-copula", GaussianCopulaBackbone)])
def test_backbone_alone_bundle_and_train_no_net(tmp_path, kind, cls):
    """``numpyro-slic train --no-net`` writes a bundle with no net ("net": null) that loads to the
    same backbone-alone model, exactly; --backbone-radius sets its kernel's lags (the default 16 is
    capped at 3 on 8 x 8 patches), a radius below 1 is refused; --no-net with --no-backbone is refused."""
    from numpyro_slic.cli import main
    from numpyro_slic.data import PatchSet, save_patch_set
    from numpyro_slic.data.patchset import make_provenance

    rng = np.random.default_rng(0)
    sets = {}
    for role, n in [("train", 32), ("val", 8)]:
        patches = (rng.standard_normal((n, 8, 8)) + np.where(rng.random((n, 8, 8)) < 0.01, 6.0, 0.0)).astype(np.float32)
        source = {"source": "synthetic", "sigma": 1.5, "units": "test units"}
        sets[role] = tmp_path / f"{role}.npz"
        save_patch_set(sets[role], PatchSet(patches, np.zeros((n, 3), np.int64), make_provenance(8, n, [source])))
    out = tmp_path / "backbone.zip"
    rc = main(["train", "--patches", str(sets["train"]), "--val-patches", str(sets["val"]), "--out", str(out),
               "--no-net", "--backbone-kind", kind, "--backbone-components", "2", "--no-progress"])
    assert rc == 0
    meta = read_bundle_metadata(out)
    assert meta["model"]["net"] is None and meta["metadata"]["training"]["steps"] == 0
    assert len(meta["metadata"]["validation"]["dsm_loss"]) == 8
    model = load_noise_model(out)
    assert model.net is None and isinstance(model.backbone, cls) and model.scale == 1.5
    u = jnp.asarray(rng.standard_normal((8, 8)), jnp.float32)
    assert float(model.unit_log_prob(u, 0.01)) == float(-model.backbone.energy(u, model.unit_sigma(0.01)))
    save_noise_model(tmp_path / "again.zip", model)
    again = load_noise_model(tmp_path / "again.zip")
    for a, b in zip(_arrays(model), _arrays(again)):
        np.testing.assert_array_equal(a, b)
    assert model.backbone.core.kernel.shape == (7, 7)
    short = tmp_path / "short.zip"
    assert main(["train", "--patches", str(sets["train"]), "--out", str(short), "--no-net", "--backbone-kind", kind,
                 "--backbone-components", "2", "--backbone-radius", "1", "--no-progress"]) == 0
    assert load_noise_model(short).backbone.core.kernel.shape == (3, 3)
    assert read_bundle_metadata(short)["metadata"]["training"]["config"]["backbone_radius"] == 1
    with pytest.raises(SystemExit) as refused:
        main(["train", "--patches", str(sets["train"]), "--out", str(short), "--no-net", "--backbone-radius", "0"])
    assert refused.value.code == 2
    assert main(["train", "--patches", str(sets["train"]), "--out", str(tmp_path / "x.zip"), "--no-net",
                 "--no-backbone", "--no-progress"]) == 2


def test_unknown_backbone_kind_names_the_fix():
    """A bundle from a newer numpyro-slic with a backbone this one does not know says so."""
    from numpyro_slic.noise.bundle import _backbone_skeleton

    with pytest.raises(ValueError, match="upgrade numpyro-slic"):
        _backbone_skeleton({"kind": "student-t", "components": 2})
