"""Optional dependencies: import one, or say which extra of numpyro-slic installs it.

The core install (``pip install numpyro-slic``) has what ``ScoreLikelihood``, the analytic noise
models and loading a shipped noise-model bundle need. Training, FITS/data preparation, ODE
log-densities and noise sampling need ``[train]``; figures need ``[plots]``; ``numpyro-slic demo``
needs ``[demo]``; ``[all]`` is all of them (README.md, Install).
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str) -> ModuleType:
    """``importlib.import_module(module)``, or an ImportError naming the extra that installs it.

    Args:
        module: dotted module name, e.g. ``"astropy.io.fits"``.
        extra: the numpyro-slic extra that provides it: "train", "plots", "demo" or "all".
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        top = module.split(".")[0]
        if err.name is None or err.name.split(".")[0] != top:
            raise  # the module is there but something it imports is not: not ours to explain
        raise ImportError(
            f"{module} is not installed; it comes with numpyro-slic's [{extra}] extra: "
            f"pip install 'numpyro-slic[{extra}]' (or, from a clone, pip install '.[{extra}]')."
        ) from err
