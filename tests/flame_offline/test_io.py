"""Result files: all or nothing."""

from __future__ import annotations

import os

import pytest

from flame_offline._io import write_files


def test_every_file_is_written(tmp_path):
    old = tmp_path / "a.txt"
    old.write_bytes(b"old")
    write_files({str(old): b"new", tmp_path / "b.bin": b"\x00"})
    assert old.read_bytes() == b"new"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00"
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.bin"]


def test_a_failure_leaves_every_target_untouched(tmp_path):
    old = tmp_path / "a.txt"
    old.write_bytes(b"old")
    with pytest.raises(FileNotFoundError):
        write_files({str(old): b"new", str(tmp_path / "no-folder" / "b.txt"): b"b"})
    assert old.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_new_files_get_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        write_files({tmp_path / "r.txt": b"x"})
    finally:
        os.umask(umask)
    assert (tmp_path / "r.txt").stat().st_mode & 0o777 == 0o644
