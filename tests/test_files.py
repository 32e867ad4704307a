"""pancreas_fl.files: reads that never block on a FIFO, a folder or a device."""

from __future__ import annotations

import os

import pytest

from pancreas_fl.files import NotARegularFileError, read_regular_file


def test_read_regular_file_refuses_a_fifo_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(NotARegularFileError):
        read_regular_file(tmp_path / "fifo")
    with pytest.raises(NotARegularFileError):
        read_regular_file(tmp_path)  # a folder


def test_read_regular_file_reads_at_most_one_byte_past_the_limit(tmp_path):
    (tmp_path / "f").write_bytes(b"0123456789")
    assert read_regular_file(tmp_path / "f") == b"0123456789"
    assert read_regular_file(tmp_path / "f", limit=3) == b"0123"
