"""Whole analyses on the local FLAME node: the unmodified Hub entrypoint under the real SDK.

Each test runs ``python -m flame_offline.emulator`` as a user would, with the image venv's
interpreter for the nodes (``FLAME_IMAGE_PYTHON``, set by ``make test-flame-node``), and
compares with the offline engine run *in that same interpreter* (the same Python, numpy,
pandas and scikit-learn builds; ``PANCREAS_FL_SDK=local``, the repository's ``src`` on the
path), with the hospitals' node ids of the run, so both aggregate in the same order.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from flame_offline.emulator import netns

pytestmark = pytest.mark.flame_node

REPO = Path(__file__).resolve().parents[3]
SRC = REPO / "src"
HOSPITALS = [REPO / "data" / "sample" / "node1", REPO / "data" / "sample" / "node2"]
RUN_TIMEOUT = 300  # the emulator's own limit; the subprocess gets more


@pytest.fixture(scope="module")
def image_python():
    python = os.environ.get("FLAME_IMAGE_PYTHON")
    if not python:
        pytest.skip(
            "no image venv: run 'make test-flame-node' (it builds .venv-flame-image-$(FLAMESDK) "
            "and sets FLAME_IMAGE_PYTHON)"
        )
    if not os.access(python, os.X_OK):
        pytest.skip(f"FLAME_IMAGE_PYTHON={python} is not an executable")
    try:
        netns.check_available()
    except netns.NamespaceUnavailable as exc:
        pytest.skip(f"cannot isolate node pods here: {exc}")
    return os.path.abspath(python)


def run_emulator(python, out_dir, hospitals=HOSPITALS, upload=None, extra=()):
    argv = [sys.executable, "-m", "flame_offline.emulator", *map(str, hospitals)]
    for path in upload or ():
        argv += ["--upload", str(path)]
    argv += ["--python", python, "--out-dir", str(out_dir), "--timeout", str(RUN_TIMEOUT), *extra]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, timeout=RUN_TIMEOUT + 120, check=False
    )
    summary_path = out_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return done, summary


_REFERENCE = """\
import pickle, sys
from pancreas_fl_tools.simulation import read_hospital, simulate
from pancreas_fl import sdk
assert sdk.BACKEND == "local", sdk.describe()
folders, node_ids, params = eval(sys.argv[1])
tester = simulate([read_hospital(f) for f in folders], node_ids=node_ids, **params)
sys.stdout.buffer.write(pickle.dumps(tester.result))
"""


def offline_result(python, summary, **params) -> bytes:
    """Return the offline engine's final result, pickled as the SDK pickles it, in ``python``."""
    node_ids = [n["node_id"] for n in summary["nodes"] if n["role"] == "default"]
    arguments = repr(([str(h) for h in HOSPITALS], node_ids, params))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC), "PANCREAS_FL_SDK": "local"}
    done = subprocess.run(
        [python, "-c", _REFERENCE, arguments], env=env, capture_output=True, timeout=300, check=True
    )
    return done.stdout


def without_wall_times(result: bytes) -> bytes:
    """Pickle the model dict again with its per-round wall times zeroed."""
    model = pickle.loads(result)
    for entry in model["history"]:
        entry["seconds"] = 0.0
    return pickle.dumps(model)


def assert_every_node_ended(summary):
    assert all(node["status"] in ("executed", "failed", "stopped") for node in summary["nodes"])
    assert all(node["exit_code"] is not None for node in summary["nodes"])


@pytest.fixture(scope="module")
def default_run(image_python, tmp_path_factory):
    out = tmp_path_factory.mktemp("default")
    done, summary = run_emulator(image_python, out)
    return done, summary, out


def test_a_default_fedavg_is_bit_identical_to_the_offline_engine(image_python, default_run):
    done, summary, out = default_run
    assert done.returncode == 0, done.stderr.decode()
    assert summary["outcome"] == "executed"
    assert summary["uploaded"] == ["pancreas_analysis.py", "pancreas_fl"]
    assert [n["status"] for n in summary["nodes"]] == ["executed"] * 3
    assert len(summary["rounds"]) == 11  # the tutorial: max_iter=10 -> 11 rounds
    assert summary["final_results"][0]["node"] == "aggregator"
    assert (out / "final_result").read_bytes() == offline_result(image_python, summary)
    assert b"flame-node: executed" in done.stdout


def test_b_exact_strategy_via_the_edited_entrypoint(image_python, tmp_path):
    entry = tmp_path / "upload" / "pancreas_analysis.py"
    entry.parent.mkdir()
    source = (SRC / "pancreas_analysis.py").read_text()
    assert source.rstrip().endswith("    main()")
    entry.write_text(
        source.rstrip()[: -len("main()")] + 'main(strategy="exact", fit_intercept=True)\n'
    )
    done, summary = run_emulator(
        image_python, tmp_path / "out", upload=[entry, SRC / "pancreas_fl"]
    )
    assert done.returncode == 0, done.stderr.decode()
    result = (tmp_path / "out" / "final_result").read_bytes()
    model = pickle.loads(result)
    assert (model["strategy"], model["params"]["fit_intercept"]) == ("exact", True)
    expected = offline_result(image_python, summary, strategy="exact", fit_intercept=True)
    assert without_wall_times(result) == without_wall_times(expected)


def test_c_bad_hospital_data_ends_every_node_promptly(image_python, tmp_path):
    bad = tmp_path / "badhospital"
    bad.mkdir()
    lines = (HOSPITALS[1] / "pancreasData.csv").read_text().splitlines()
    rows = [lines[0]] + ["x" + line for line in lines[1:]]  # KRAS becomes text
    (bad / "pancreasData.csv").write_text("\n".join(rows) + "\n")
    done, summary = run_emulator(image_python, tmp_path / "out", hospitals=[HOSPITALS[0], bad])
    assert done.returncode == 1
    assert summary["outcome"] == "failed"
    assert_every_node_ended(summary)
    failure = summary["failure"]
    # the hospital sends its problems; the aggregator fails the run once, naming it
    assert failure["node"] == "aggregator"
    problem = "pancreasData.csv: 1 feature column(s) 'KRAS' are not numeric"
    assert problem in failure["error"]
    assert failure["error"].startswith("hospital '")  # its node id
    assert len(failure["error"].splitlines()) == 1
    aggregator_stream = (tmp_path / "out" / "logs" / "aggregator.stream.log").read_text()
    assert f"error  failed    {failure['error']}" in aggregator_stream
    hospital_stream = (tmp_path / "out" / "logs" / "badhospital.stream.log").read_text()
    assert problem in hospital_stream  # and in the hospital's own log, for its data owner
    assert not (tmp_path / "out" / "final_result").exists()
    assert summary["final_results"] == []
    assert summary["wall_seconds"] - failure["seconds"] < 60
    statuses = {n["name"]: n["status"] for n in summary["nodes"]}
    assert statuses == {"node1": "stopped", "badhospital": "stopped", "aggregator": "failed"}


def test_d_duplicate_and_delayed_messages_give_the_same_result(image_python, default_run, tmp_path):
    """Check that duplicated and delayed messages leave the result unchanged.

    flamesdk 0.6 drops a redelivered message by its id, so any message may be duplicated.
    flamesdk 0.5.0 keeps both copies, and whether a node then reads a stale one depends on
    the timing of its 1 s polls: there the duplicate is a ready check (harmless to it).
    """
    done_a, summary_a, out_a = default_run
    assert done_a.returncode == 0
    sdk = summary_a["sdk"]["flamesdk"]
    duplicated = (
        "category=ready_check,from=aggregator,to=node1"
        if sdk == "0.5.0"
        else "category=intermediate_data,from=aggregator,to=node1,nth=2"
    )
    delayed = "category=intermediate_data,from=node2,nth=3,seconds=2"
    done, summary = run_emulator(
        image_python, tmp_path / "out", extra=["--duplicate", duplicated, "--delay", delayed]
    )
    assert done.returncode == 0, done.stderr.decode()
    assert len(summary["faults"]) == 2
    assert (tmp_path / "out" / "final_result").read_bytes() == (out_a / "final_result").read_bytes()


def test_e_starmodel_without_query_fails_as_in_production(image_python, tmp_path):
    entry = tmp_path / "upload" / "pancreas_analysis.py"
    entry.parent.mkdir()
    entry.write_text(
        "from flame.star import StarModel\n"
        "from pancreas_fl import FederatedLogisticRegression, PancreasAnalyzer\n\n\n"
        "def main():\n"
        "    # the tutorial's call: no query, so production's get_s3_data(None) returns None\n"
        "    StarModel(PancreasAnalyzer, FederatedLogisticRegression, 's3',\n"
        "              simple_analysis=False, output_type='pickle')\n\n\n"
        "if __name__ == '__main__':\n"
        "    main()\n"
    )
    done, summary = run_emulator(
        image_python, tmp_path / "out", upload=[entry, SRC / "pancreas_fl"]
    )
    assert done.returncode == 1
    assert_every_node_ended(summary)
    # both hospitals got data=None and said so; the aggregator failed the run once
    assert summary["failure"]["node"] == "aggregator"
    error = summary["failure"]["error"]
    assert len(error.splitlines()) == 2  # one line per hospital
    assert error.count("this hospital received no data (data=None)") == 2
    assert error.count("Start the analysis with query=['pancreasData.csv']") == 2
    assert not (tmp_path / "out" / "final_result").exists()


def test_f_an_upload_without_the_package_fails_at_import(image_python, tmp_path):
    """Nothing of pancreas-fl is installed in the image: only what is uploaded imports."""
    done, summary = run_emulator(
        image_python, tmp_path / "out", upload=[SRC / "pancreas_analysis.py"]
    )
    assert done.returncode == 1
    assert_every_node_ended(summary)
    assert summary["uploaded"] == ["pancreas_analysis.py"]
    failed = [n for n in summary["nodes"] if n["status"] == "failed"]
    assert failed
    assert all(
        n["ended"].endswith("ModuleNotFoundError: No module named 'pancreas_fl'") for n in failed
    )


_DAMAGING_ENTRYPOINT = '''\
"""The Hub entrypoint with one hospital whose installation damages its round-2 message."""

import numpy as np

from flame.star import StarModel
from pancreas_fl import FederatedLogisticRegression, PancreasAnalyzer


class DamagedAnalyzer(PancreasAnalyzer):
    """The first hospital (by node id) sends NaN coefficients in round 2."""

    def analysis_method(self, data, aggregator_results):
        message = super().analysis_method(data, aggregator_results)
        aggregator = self.flame.get_aggregator_id()
        hospitals = sorted({self.id, *self.partner_node_ids} - {aggregator})
        if self.num_iterations == 2 and self.id == hospitals[0]:
            message["update"]["coef"] = np.full_like(message["update"]["coef"], np.nan)
        return message


if __name__ == "__main__":
    StarModel(DamagedAnalyzer, FederatedLogisticRegression, "s3", query=["pancreasData.csv"],
              simple_analysis=False, output_type="pickle")
'''


def test_g_a_damaged_round_2_message_fails_the_run_naming_its_hospital(image_python, tmp_path):
    entry = tmp_path / "upload" / "pancreas_analysis.py"
    entry.parent.mkdir()
    entry.write_text(_DAMAGING_ENTRYPOINT)
    done, summary = run_emulator(
        image_python, tmp_path / "out", upload=[entry, SRC / "pancreas_fl"]
    )
    assert done.returncode == 1, done.stderr.decode()
    assert summary["outcome"] == "failed"
    assert_every_node_ended(summary)
    failure = summary["failure"]
    assert failure["node"] == "aggregator"
    damaged = sorted(n["node_id"] for n in summary["nodes"] if n["role"] == "default")[0]
    assert failure["error"] == (
        f"hospital {damaged!r} sent a round-2 update whose coef holds 8 non-finite value(s); "
        "its data or installation is faulty. The analysis is stopped; no result is written."
    )
    aggregator_stream = (tmp_path / "out" / "logs" / "aggregator.stream.log").read_text()
    assert f"error  failed    {failure['error']}" in aggregator_stream
    assert "Traceback" not in failure["error"]
    assert not (tmp_path / "out" / "final_result").exists()
    assert summary["final_results"] == []
    assert summary["wall_seconds"] - failure["seconds"] < 60
