"""``import numpyro_slic`` and ``numpyro-slic --help`` load only what they use (fresh processes)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEAVY = ("jax", "numpyro", "equinox", "diffrax", "optax", "astropy", "photutils", "matplotlib", "arviz")


def _loaded_after(code: str) -> set[str]:
    """The HEAVY top-level packages in sys.modules after running ``code`` in a new interpreter."""
    report = f"\nimport json, sys\nprint('LOADED=' + json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code + report], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("LOADED="))
    return set(json.loads(line[len("LOADED="):]))


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["train", "--help"]])
def test_cli_help_imports_nothing_heavy(argv):
    code = (
        "import contextlib, io\n"
        "from numpyro_slic.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        main({argv!r})\n"
        "    except SystemExit:\n"
        "        pass"
    )
    loaded = _loaded_after(code)
    assert not loaded & {"jax", "diffrax", "optax", "astropy", "photutils", "matplotlib"}, loaded


def test_import_numpyro_slic_is_light():
    assert not _loaded_after("import numpyro_slic") & {"diffrax", "optax", "astropy", "photutils", "matplotlib"}


def test_the_likelihood_alone_loads_no_training_ode_or_fits_stack():
    loaded = _loaded_after(
        "import jax.numpy as jnp\n"
        "from numpyro_slic import ScoreLikelihood, StationaryGaussianNoise, WhiteGaussianNoise\n"
        "noise = WhiteGaussianNoise(event_shape=(4, 4), sigma=1.0)\n"
        "ScoreLikelihood(noise, jnp.zeros((4, 4)), t=0.1, energy='line').log_prob(jnp.ones((4, 4)))\n"
    )
    assert "jax" in loaded
    assert not loaded & {"diffrax", "optax", "astropy", "photutils", "matplotlib", "arviz"}, loaded


def test_lazy_exports_resolve():
    import numpyro_slic
    import numpyro_slic.data
    import numpyro_slic.diagnostics
    import numpyro_slic.infer
    import numpyro_slic.noise
    import numpyro_slic.problems

    for module in (numpyro_slic, numpyro_slic.noise, numpyro_slic.data, numpyro_slic.infer,
                   numpyro_slic.diagnostics, numpyro_slic.problems):
        for name in module.__all__:
            assert getattr(module, name) is not None, (module.__name__, name)
        assert set(module.__all__) <= set(dir(module))
    # augment() is the function even after its module of the same name is imported.
    import numpyro_slic.data.augment  # noqa: F401

    assert callable(numpyro_slic.data.augment) and not isinstance(numpyro_slic.data.augment, type(numpyro_slic))
    # Submodules are attributes on first use, as when the __init__ modules imported them all.
    assert callable(numpyro_slic.noise.flow.ode_log_prob) and callable(numpyro_slic.problems.lens.lens_model)
    with pytest.raises(AttributeError):
        numpyro_slic.no_such_name
    with pytest.raises(AttributeError):
        numpyro_slic.noise.no_such_module


# docs/design.md section 4: who may import whom inside the package (one-way arrows).
ALLOWED = {
    "lensing": set(),
    "likelihood": {"noise", "quadrature"},
    "infer": {"likelihood", "noise", "quadrature"},
    "problems": {"likelihood", "noise", "lensing"},
}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_one_way_dependencies(package):
    import ast

    root = ROOT / "numpyro_slic"
    path = root / package
    files = sorted(path.rglob("*.py")) if path.is_dir() else [root / f"{package}.py"]
    used = set()
    for file in files:
        pkg = list(file.relative_to(ROOT).with_suffix("").parts[:-1])  # the file's package, e.g. [numpyro_slic, infer]
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = pkg[: len(pkg) - node.level + 1] if node.level else []
                names = [".".join(base + ([node.module] if node.module else []))]
                if not node.module:  # from .. import x, y: the names are modules
                    names = [f"{names[0]}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            used |= {n.split(".")[1] for n in names if n.startswith("numpyro_slic.")}
    used -= {package, "_lazy", "_extras"}
    assert used <= ALLOWED[package], (package, used - ALLOWED[package])
