"""Whole analyses with every pod in the project's image (``make image``), as FLAME runs them.

Each test runs ``python -m flame_offline.emulator --image NAME`` (``FLAME_IMAGE``, set by
``make test-flame-node IMAGE=...``) and compares with the offline engine run *in the image*:
its python, numpy, pandas and scikit-learn, the repository's ``src`` copied into a working
container of the image for the reference run only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from test_scenarios import _REFERENCE, HOSPITALS, REPO, RUN_TIMEOUT, SRC

from flame_offline.emulator import image, netns

pytestmark = pytest.mark.flame_node


@pytest.fixture(scope="module")
def image_name():
    name = os.environ.get("FLAME_IMAGE")
    if not name:
        pytest.skip("no image: run 'make test-flame-node IMAGE=localhost/pancreas-fl:latest'")
    try:
        netns.check_available()
    except netns.NamespaceUnavailable as exc:
        pytest.skip(f"cannot isolate node pods here: {exc}")
    return name


def run_emulator(name, out_dir, hospitals=HOSPITALS):
    argv = [sys.executable, "-m", "flame_offline.emulator", *map(str, hospitals)]
    argv += ["--image", name, "--out-dir", str(out_dir), "--timeout", str(RUN_TIMEOUT)]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, timeout=RUN_TIMEOUT + 120, check=False
    )
    summary_path = out_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return done, summary


def offline_result_in_image(name, summary) -> bytes:
    """Return the offline engine's final result, computed by the image's own python."""
    node_ids = [n["node_id"] for n in summary["nodes"] if n["role"] == "default"]
    with image.mounted(name) as root:
        scratch = root.root / "tmp" / "reference"
        shutil.copytree(SRC, scratch / "src", ignore=shutil.ignore_patterns("__pycache__"))
        folders = []
        for hospital in HOSPITALS:
            shutil.copytree(hospital, scratch / "data" / hospital.name)
            folders.append(f"/tmp/reference/data/{hospital.name}")
        python = root.which("python")
        done = subprocess.run(
            [shutil.which("chroot"), str(root.root), python, "-c", _REFERENCE,
             repr((folders, node_ids, {}))],
            env={"PATH": root.path, "PYTHONPATH": "/tmp/reference/src",
                 "PANCREAS_FL_SDK": "local"},
            capture_output=True, timeout=300, check=True, cwd="/",
        )  # fmt: skip
    return done.stdout


def test_the_image_gives_the_offline_engine_result_bit_for_bit(image_name, tmp_path):
    done, summary = run_emulator(image_name, tmp_path / "out")
    assert done.returncode == 0, done.stderr.decode()
    assert summary["outcome"] == "executed"
    assert summary["image"] == image_name
    assert summary["command"] == ["python", "-u", "/opt/code/src/pancreas_analysis.py"]
    assert summary["uploaded"] == ["pancreas_analysis.py", "pancreas_fl"]
    assert "warning" not in summary  # nothing of pancreas-fl is installed in the image
    assert [n["status"] for n in summary["nodes"]] == ["executed"] * 3
    assert len(summary["rounds"]) == 11
    result = (tmp_path / "out" / "final_result").read_bytes()
    assert result == offline_result_in_image(image_name, summary)
    assert f"in image {image_name}".encode() in done.stdout


def test_bad_hospital_data_ends_every_node_in_the_image(image_name, tmp_path):
    bad = tmp_path / "badhospital"
    bad.mkdir()
    lines = (HOSPITALS[1] / "pancreasData.csv").read_text().splitlines()
    (bad / "pancreasData.csv").write_text(
        "\n".join([lines[0]] + ["x" + line for line in lines[1:]]) + "\n"
    )
    done, summary = run_emulator(image_name, tmp_path / "out", hospitals=[HOSPITALS[0], bad])
    assert done.returncode == 1
    assert summary["outcome"] == "failed"
    failure = summary["failure"]
    assert failure["node"] == "aggregator"
    assert "pancreasData.csv: 1 feature column(s) 'KRAS' are not numeric" in failure["error"]
    assert len(failure["error"].splitlines()) == 1
    statuses = {n["name"]: n["status"] for n in summary["nodes"]}
    assert statuses == {"node1": "stopped", "badhospital": "stopped", "aggregator": "failed"}
    assert not (tmp_path / "out" / "final_result").exists()


def test_an_unknown_image_is_one_line(image_name, tmp_path):
    done, _ = run_emulator("localhost/no-such-image:never", tmp_path / "out")
    assert done.returncode == 2
    err = done.stderr.decode()
    assert err.startswith("flame-node: --image localhost/no-such-image:never: no such local image")
    assert len(err.strip().splitlines()) == 1
