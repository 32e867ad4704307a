"""pancreas_fl._io: complete files or none, with ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from pancreas_fl._io import atomic_write


def test_atomic_write_creates_a_file_with_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.bin", b"data")
    finally:
        os.umask(old)
    path = tmp_path / "a.bin"
    assert path.read_bytes() == b"data"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_atomic_write_replaces_an_existing_file(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new"


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "a.bin", "not bytes")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
