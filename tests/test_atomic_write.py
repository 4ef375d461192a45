"""numpyro_slic.data.io.atomic_write: the package's one atomic file writer."""

import json
import os
import stat

import numpy as np
import pytest

from numpyro_slic.data.io import atomic_savez, atomic_write, atomic_write_json


class Boom(RuntimeError):
    pass


def _fail_midway(f):
    f.write(b"half of the new cont")
    raise Boom("interrupted")


def test_writes_and_replaces(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write(path, lambda f: f.write(b"first"))
    assert path.read_bytes() == b"first"
    atomic_write(str(path), lambda f: f.write(b"second"))
    assert path.read_bytes() == b"second"
    assert os.listdir(tmp_path) == ["out.bin"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask  # like any new file, not 0600


def test_failure_mid_write_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    atomic_write_json(path, {"version": 1})
    with pytest.raises(Boom):
        atomic_write(path, _fail_midway)
    assert json.loads(path.read_text()) == {"version": 1}
    assert os.listdir(tmp_path) == ["out.json"]
    with pytest.raises(TypeError):  # not JSON-serialisable: fails inside the writer
        atomic_write_json(path, {"version": object()})
    assert json.loads(path.read_text()) == {"version": 1}
    assert os.listdir(tmp_path) == ["out.json"]


def test_failure_on_a_new_path_leaves_nothing(tmp_path):
    with pytest.raises(Boom):
        atomic_write(tmp_path / "new.bin", _fail_midway)
    with pytest.raises(KeyboardInterrupt):  # BaseException too
        atomic_write(tmp_path / "new.bin", lambda f: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert os.listdir(tmp_path) == []


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write(tmp_path / "no" / "such.bin", lambda f: f.write(b"x"))


def test_savez_and_json_round_trip(tmp_path):
    atomic_savez(tmp_path / "a.npz", x=np.arange(3.0), y=np.eye(2))
    with np.load(tmp_path / "a.npz") as z:
        np.testing.assert_array_equal(z["x"], np.arange(3.0))
        np.testing.assert_array_equal(z["y"], np.eye(2))
    atomic_write_json(tmp_path / "a.json", {"a": np.float32(1.5)}, default=float)
    assert json.loads((tmp_path / "a.json").read_text()) == {"a": 1.5}
    assert sorted(os.listdir(tmp_path)) == ["a.json", "a.npz"]
