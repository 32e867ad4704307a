"""The FLAME entrypoints: the Hub's uploaded folder and ``python -m pancreas_fl``.

FLAME's Hub runs ``python -u /opt/code/<folder>/<entrypoint>`` with working directory ``/``,
nothing of ours installed, the entrypoint's folder first on ``sys.path``. These tests run the
entrypoint the same way (fresh interpreter, only a copy of the uploaded folder, an unrelated
working directory) up to the point where ``StarModel`` starts: a stand-in for the image's
SDK records how it was called. What a real node then does is the node emulator's part
(``make flame-node``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from _helpers import ROOT

SRC = ROOT / "src"
ENTRYPOINT = "pancreas_analysis.py"
#: What analysts upload to the FLAME Hub (``make hub`` assembles it): the entrypoint and the
#: analysis package. Not the offline engine (flame_offline), which FLAME never runs.
UPLOAD_SET = (ENTRYPOINT, "pancreas_fl")

#: A stand-in for the SDK preinstalled in FLAME's images: its ``StarModel`` prints how it was
#: called, as JSON, instead of starting a node.
FAKE_SDK = {
    "flame/__init__.py": "",
    "flame/star/__init__.py": textwrap.dedent(
        """
        import json, sys

        class StarAnalyzer:
            def __init__(self, flame): self.flame = flame

        class StarAggregator:
            def __init__(self, flame): self.flame = flame

        class StarModelTester: ...

        class StarModel:
            def __init__(self, analyzer, aggregator, data_type, query=None, **kwargs):
                files = [sys.modules[c.__module__].__file__ for c in (analyzer, aggregator)]
                print(json.dumps({
                    "classes": [analyzer.__name__, aggregator.__name__],
                    "files": files,
                    "data_type": data_type,
                    "query": query,
                    **kwargs,
                }))
        """
    ),
}


def hub_copy(tmp_path: Path) -> Path:
    """Build the upload set as the Hub does, under /opt/code/src/ (no egg-info, no caches)."""
    target = tmp_path / "opt" / "code" / "src"
    target.mkdir(parents=True)
    shutil.copy(SRC / ENTRYPOINT, target / ENTRYPOINT)
    shutil.copytree(
        SRC / "pancreas_fl",
        target / "pancreas_fl",
        ignore=shutil.ignore_patterns("__pycache__", "__main__.py"),  # python -m: local only
    )
    return target


def fake_sdk(tmp_path: Path) -> Path:
    root = tmp_path / "image-site-packages"
    for name, text in FAKE_SDK.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def run_isolated(args, cwd, *, sdk: Path | None = None):
    """Run like the Hub: the image's libraries importable, pancreas-fl itself not installed.

    ``-S`` skips ``site`` and so the ``.pth`` files with which the development install makes
    pancreas_fl (and flame_offline) importable; the dependencies' folder, and the stand-in
    SDK if given, are put on ``PYTHONPATH`` instead.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PANCREAS_FL_SDK")}
    paths = [str(Path(np.__file__).parents[1])]
    if sdk is not None:
        paths.insert(0, str(sdk))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return subprocess.run(
        [sys.executable, "-S", "-s", "-u", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def star_model_call(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_hub_entrypoint_starts_star_model_as_production_needs(tmp_path):
    upload = hub_copy(tmp_path)
    elsewhere = tmp_path / "root"
    elsewhere.mkdir()
    call = star_model_call(
        run_isolated([str(upload / ENTRYPOINT)], cwd=elsewhere, sdk=fake_sdk(tmp_path))
    )
    assert call == {
        "classes": ["PancreasAnalyzer", "FederatedLogisticRegression"],
        "files": [str(upload / "pancreas_fl" / "analysis.py")] * 2,
        "data_type": "s3",
        # production returns no data for query=None: the key must be asked for
        "query": ["pancreasData.csv"],
        "simple_analysis": False,
        "output_type": "pickle",
        "analyzer_kwargs": None,
        "aggregator_kwargs": None,
    }


@pytest.mark.parametrize(
    ("params", "query"),
    [
        ({"strategy": "exact", "fit_intercept": True}, ["pancreasData.csv"]),
        ({"dataset": "cohort.csv"}, ["cohort.csv"]),
    ],
)
def test_main_passes_parameters_to_both_roles_and_queries_the_dataset(tmp_path, params, query):
    upload = hub_copy(tmp_path)
    script = upload / "edited_entrypoint.py"
    script.write_text(f"from pancreas_fl import main\nmain(**{params!r})\n")
    call = star_model_call(run_isolated([str(script)], cwd=tmp_path, sdk=fake_sdk(tmp_path)))
    assert call["query"] == query
    assert call["analyzer_kwargs"] == call["aggregator_kwargs"] == params


def test_the_upload_set_runs_without_the_offline_engine(tmp_path):
    # no SDK and no engine: one line says what is missing, rather than a wrong fallback
    upload = hub_copy(tmp_path)
    proc = run_isolated([str(upload / ENTRYPOINT)], cwd=tmp_path)
    assert proc.returncode != 0
    assert "ImportError: Neither the FLAME SDK (flame.star)" in proc.stderr.splitlines()[-1]
    assert not (upload / "flame_offline").exists()


def test_the_uploaded_folder_imports_the_package_from_itself(tmp_path):
    upload = hub_copy(tmp_path)
    probe = upload / "probe.py"
    probe.write_text("import pancreas_fl, sys; print(pancreas_fl.__file__)\n")
    proc = run_isolated([str(probe)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(upload / "pancreas_fl" / "__init__.py")


def test_python_dash_m_starts_the_node(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(fake_sdk(tmp_path)), "PANCREAS_FL_SDK": "auto"}
    proc = subprocess.run(
        [sys.executable, "-m", "pancreas_fl"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert star_model_call(proc)["query"] == ["pancreasData.csv"]


@pytest.mark.parametrize(
    ("args", "backend"),
    [(["--help"], "auto"), (["simulate", "data/sample/node1"], "auto"), ([], "local")],
    ids=["help", "a-command", "off-flame"],
)
def test_python_dash_m_off_a_node_says_so_in_one_line(tmp_path, args, backend):
    env = {**os.environ, "PANCREAS_FL_SDK": backend}
    if backend == "auto":
        env["PYTHONPATH"] = str(fake_sdk(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "pancreas_fl", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert re.fullmatch(
        r"pancreas_fl: python -m pancreas_fl is the FLAME node entrypoint .* For local use, run "
        r"pancreas-fl --help\.\n",
        proc.stderr,
    )


def files_below(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_hub_assembles_exactly_the_upload_set(tmp_path):
    out = tmp_path / "hub"
    proc = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "hub", f"HUB_DIR={out}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    uploaded = files_below(out / "src")
    assert uploaded == files_below(hub_copy(tmp_path))
    assert {name.split("/")[0] for name in uploaded} == set(UPLOAD_SET)
    lines = sum(len((out / "src" / name).read_bytes().splitlines()) for name in uploaded)
    assert re.search(rf"{len(uploaded)} files, {lines} lines, \d+ KiB", proc.stdout), proc.stdout


def test_the_dockerfile_runs_the_same_entrypoint_as_the_hub():
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.10" in text
    assert re.search(r"ARG FLAME_SDK_REF=\S+", text)
    assert f'"/opt/code/src/{ENTRYPOINT}"' in text
    assert "WORKDIR /" in text
    assert (SRC / ENTRYPOINT).is_file()
    for item in UPLOAD_SET:
        assert f"COPY src/{item}" in text


def test_a_dataset_pattern_queries_every_object_and_a_key_only_itself():
    from pancreas_fl.s3 import s3_query

    assert s3_query("site*_export.csv") == []
    assert s3_query("pancreasData.csv") == ["pancreasData.csv"]
    assert s3_query(3) == []
