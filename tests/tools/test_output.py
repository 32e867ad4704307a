"""pancreas_fl_tools.output: complete files, all or none, ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from pancreas_fl_tools import output
from pancreas_fl_tools.output import atomic_write, check_writable, write_all


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


def test_write_all_writes_every_file(tmp_path):
    (tmp_path / "b").write_bytes(b"old")
    write_all({tmp_path / "a": b"1", tmp_path / "b": b"2"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    assert (tmp_path / "b").read_bytes() == b"2"


def test_a_failure_while_staging_writes_nothing_and_names_the_target(tmp_path):
    (tmp_path / "a").write_bytes(b"old")
    missing = tmp_path / "no" / "b"
    with pytest.raises(FileNotFoundError) as info:
        write_all({tmp_path / "a": b"new", missing: b"2"})
    assert info.value.filename == str(missing)  # the path asked for, not a temporary file
    assert [p.name for p in tmp_path.iterdir()] == ["a"]
    assert (tmp_path / "a").read_bytes() == b"old"


@pytest.mark.parametrize("links", [True, False], ids=["hard-links", "no-hard-links"])
def test_a_failure_while_replacing_restores_what_was_replaced(tmp_path, monkeypatch, links):
    (tmp_path / "a").write_bytes(b"old a")
    real_replace = os.replace

    def replace(src, dst):
        if os.fspath(dst) == str(tmp_path / "c"):
            raise PermissionError(13, "Permission denied", dst)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    if not links:
        monkeypatch.setattr(os, "link", lambda *a, **k: (_ for _ in ()).throw(OSError(1, "no")))
    with pytest.raises(PermissionError) as info:
        write_all({tmp_path / "a": b"new a", tmp_path / "b": b"new b", tmp_path / "c": b"c"})
    assert info.value.filename == str(tmp_path / "c")
    assert [p.name for p in tmp_path.iterdir()] == ["a"]
    assert (tmp_path / "a").read_bytes() == b"old a"


def test_check_writable_leaves_nothing_behind(tmp_path):
    check_writable(tmp_path / "out.pkl")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda p: p, IsADirectoryError),
        (lambda p: p / "missing" / "x", FileNotFoundError),
        (lambda p: (p / "file").touch() or p / "file" / "x", NotADirectoryError),
    ],
    ids=["folder", "missing-folder", "under-a-file"],
)
def test_check_writable_refuses_what_cannot_be_written(tmp_path, make, error):
    target = make(tmp_path)
    with pytest.raises(error) as info:
        check_writable(target)
    assert info.value.filename == str(target)


def test_temporary_names_are_hidden_and_beside_the_target(tmp_path):
    name = output._temporary(str(tmp_path / "model.pkl"), "part")
    assert os.path.dirname(name) == str(tmp_path)
    assert os.path.basename(name).startswith(".model.pkl.")
