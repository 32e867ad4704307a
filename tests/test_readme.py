"""README.md: every ``python`` block runs as written, with the offline engine."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from _helpers import ROOT

BLOCKS = re.findall(r"^```python\n(.*?)^```$", (ROOT / "README.md").read_text(), re.M | re.S)


def test_the_readme_has_python_blocks():
    assert BLOCKS


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block-{i}" for i in range(1, len(BLOCKS) + 1)])
def test_a_readme_python_block_runs_as_written(tmp_path, code):
    # As from the repository root (data/ beside it), without writing into the checkout.
    (tmp_path / "data").symlink_to(ROOT / "data")
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PANCREAS_FL_SDK": "local"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
