"""Saving and loading PatchSets as ``.npz`` files with embedded JSON provenance."""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from typing import Any, BinaryIO, Callable

import numpy as np

from .patchset import FORMAT, FORMAT_VERSION, PatchSet

__all__ = ["save_patch_set", "load_patch_set", "atomic_write", "atomic_savez", "atomic_write_json"]


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """Calls ``write(binary file)`` on a temporary file beside ``path``, then renames it onto ``path``.

    The package's one atomic file writer (patch sets, JSON results, model bundles, training
    checkpoints, figures). A crash or an exception in ``write`` never leaves a half-written file at
    ``path`` (an existing file stays as it was) nor the temporary file behind. The data are flushed
    and fsynced before the rename (``os.replace``, atomic on POSIX and Windows within one file
    system). The temporary file is opened like any other (permissions follow the umask, unlike
    ``tempfile.mkstemp``'s 0600). The directory of ``path`` must exist.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Directory {directory!r} does not exist; create it before saving {path!r}.")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_savez(path: str | os.PathLike, *, compress: bool = False, **arrays) -> None:
    """``np.savez(path, **arrays)`` (``np.savez_compressed`` with ``compress``), written atomically."""
    savez = np.savez_compressed if compress else np.savez
    atomic_write(path, lambda f: savez(f, **arrays))


def atomic_write_json(path: str | os.PathLike, obj, **dump_kwargs) -> None:
    """``json.dump(obj)`` to ``path`` (UTF-8), written atomically; ``dump_kwargs`` go to json.dumps."""
    atomic_write(path, lambda f: f.write(json.dumps(obj, **dump_kwargs).encode("utf-8")))


def save_patch_set(path: str | os.PathLike, patch_set: PatchSet, *, compress: bool = False) -> None:
    """Writes ``patch_set`` to ``path`` (an ``.npz``, deflate-compressed with ``compress``), atomically.

    ``load_patch_set`` reads both kinds. The file holds ``patches`` (float32 ``(N, P, P)``),
    ``positions`` (int64 ``(N, 3)``) and ``provenance`` (the provenance dict as a JSON string), so
    it loads with plain ``np.load(path)`` and no pickle.
    """
    if not isinstance(patch_set, PatchSet):
        raise TypeError(f"save_patch_set takes a PatchSet, got {type(patch_set).__name__}.")
    atomic_savez(
        path,
        compress=compress,
        patches=patch_set.patches,
        positions=patch_set.positions,
        provenance=np.array(json.dumps(patch_set.provenance, sort_keys=True)),
    )


def load_patch_set(path: str | os.PathLike) -> PatchSet:
    """Reads a PatchSet written by ``save_patch_set``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is truncated, corrupt, or not a patch-set file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No patch-set file at {path!r}.")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not an .npz archive")
        with loaded:
            contents = {name: loaded[name] for name in loaded.files}
        missing = {"patches", "positions", "provenance"} - set(contents)
        if missing:
            raise ValueError(f"it lacks {sorted(missing)}")
        provenance = json.loads(str(contents["provenance"]))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        # json.JSONDecodeError is a ValueError; numpy raises ValueError for a garbled array header.
        raise ValueError(
            f"Cannot read the patch set {path!r} (truncated, corrupt, or not a patch-set file?): "
            f"{type(err).__name__}: {err}. Re-create it with save_patch_set."
        ) from err
    if provenance.get("format") != FORMAT or provenance.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path!r} holds format {provenance.get('format')!r} version "
            f"{provenance.get('format_version')!r}; "
            f"this version of numpyro-slic reads {FORMAT!r} version {FORMAT_VERSION}."
        )
    return PatchSet(contents["patches"], contents["positions"], provenance)

