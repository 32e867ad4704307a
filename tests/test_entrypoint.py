"""The FLAME entrypoints: the Hub's uploaded folder and ``python -m pancreas_fl``.

FLAME's Hub runs ``python -u /opt/code/<folder>/<entrypoint>`` with working directory ``/``,
nothing of ours installed, the entrypoint's folder first on ``sys.path``. These tests run the
entrypoint the same way (fresh interpreter, only a copy of the uploaded folder, an unrelated
working directory) up to the point where ``StarModel`` starts. Without the SDK the offline
engine's ``StarModel`` then refuses to act as a production node, which proves the whole
import chain and the call reached it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from _helpers import ROOT

UPLOAD = ROOT / "src"  # the folder the README tells analysts to upload
ENTRYPOINT = "pancreas_analysis.py"


def hub_copy(tmp_path: Path) -> Path:
    """What the Hub builds: the uploaded folder under /opt/code/ (no egg-info, no caches)."""
    target = tmp_path / "opt" / "code" / "src"
    shutil.copytree(UPLOAD, target, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    return target


def run_isolated(args, cwd):
    """Run like the Hub: the dependencies importable, pancreas-fl itself not installed.

    ``-S`` skips ``site`` and so the ``.pth`` files with which the development install makes
    pancreas_fl importable; the dependencies' folder is given on ``PYTHONPATH`` instead.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["PANCREAS_FL_SDK"] = "local"
    env["PYTHONPATH"] = os.pathsep.join(sorted({str(Path(np.__file__).parents[1])}))
    return subprocess.run(
        [sys.executable, "-S", "-s", "-u", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_hub_entrypoint_starts_star_model_from_the_uploaded_folder(tmp_path):
    upload = hub_copy(tmp_path)
    elsewhere = tmp_path / "root"
    elsewhere.mkdir()
    proc = run_isolated([str(upload / ENTRYPOINT)], cwd=elsewhere)
    assert proc.returncode != 0
    assert "cannot run as a production FLAME node" in proc.stderr, proc.stderr
    # every frame of the traceback is in the uploaded copy, none in the repository
    frames = re.findall(r'File "([^"]+)"', proc.stderr)
    ours = [f for f in frames if "pancreas" in f]
    assert ours, proc.stderr
    assert all(f.startswith(str(upload)) for f in ours if "pancreas_fl" in f), ours
    assert any(f.endswith("entrypoint.py") for f in ours)


def test_the_uploaded_folder_imports_the_package_from_itself(tmp_path):
    upload = hub_copy(tmp_path)
    probe = upload / "probe.py"
    probe.write_text("import pancreas_fl, sys; print(pancreas_fl.__file__)\n")
    proc = run_isolated([str(probe)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(upload / "pancreas_fl" / "__init__.py")


def test_python_dash_m_starts_the_node(tmp_path):
    env = {**os.environ, "PANCREAS_FL_SDK": "local"}
    proc = subprocess.run(
        [sys.executable, "-m", "pancreas_fl"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "cannot run as a production FLAME node" in proc.stderr


def test_the_dockerfile_runs_the_same_entrypoint_as_the_hub():
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.10" in text
    assert re.search(r"ARG FLAME_SDK_REF=\S+", text)
    assert f'"/opt/code/src/{ENTRYPOINT}"' in text
    assert "WORKDIR /" in text
    assert (UPLOAD / ENTRYPOINT).is_file()
