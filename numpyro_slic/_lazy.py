"""Lazy re-exports for the package's ``__init__`` modules (PEP 562 module ``__getattr__``).

``import numpyro_slic`` (or ``numpyro_slic.noise``, ...) then costs almost nothing: a name is imported
from its defining module the first time it is looked up, so using only the likelihood never loads
diffrax, optax, astropy, photutils or matplotlib, and ``numpyro-slic --help`` loads no JAX at all.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Iterable, Mapping


def lazy_exports(
    package: str, exports: Mapping[str, str], submodules: Iterable[str] = ()
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``.

    Args:
        package: the package's ``__name__``.
        exports: public name -> the relative module that defines it (e.g. ``".analytic"``).
        submodules: subpackages / modules listed by ``dir(package)``; attribute access imports any
            submodule (``package.noise``, ``package.noise.bundle``) on first use.
    """
    submodules = frozenset(submodules)

    def __getattr__(name: str):
        if name in exports:
            value = getattr(importlib.import_module(exports[name], package), name)
        elif name.startswith("__"):
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        else:  # any submodule, as when the __init__ imported them all: package.noise.bundle
            try:
                value = importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as err:
                if err.name != f"{package}.{name}":
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        setattr(sys.modules[package], name, value)  # later look-ups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports) | submodules)

    return __getattr__, __dir__
