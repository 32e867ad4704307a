"""The FLAME Hub upload (``make hub``): what a node runs, and what it loads of it."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
UPLOAD = [SRC / "pancreas_analysis.py", *sorted((SRC / "pancreas_fl").rglob("*.py"))]

# A fresh interpreter runs the node classes as FLAME wires them (on the offline engine, which
# stands in for the SDK), then prints the names of every module imported.
NODE_RUN = """
import json, sys
import pancreas_analysis
from flame_offline import StarModelTester
from pancreas_fl.analysis import FederatedLogisticRegression, PancreasAnalyzer

params = json.loads(sys.argv[2]) or None
splits = [[{"pancreasData.csv": open(f + "/pancreasData.csv", "rb").read()}]
          for f in json.loads(sys.argv[1])]
StarModelTester(
    splits, PancreasAnalyzer, FederatedLogisticRegression, "s3", query=["pancreasData.csv"],
    simple_analysis=False, output_type="pickle", analyzer_kwargs=params,
    aggregator_kwargs=params, print_result=False, stream_log_level=100,
)
print(json.dumps(sorted(sys.modules)))
"""

NOT_IN_THE_TUTORIALS_RUN = (
    "pancreas_fl.exact",  # the exact strategy: its solver, sums and GLM statistics
    "pancreas_fl.column_options",  # the column-option table
    "pancreas_fl.encoding",  # categorical encoding (column options only)
    "pancreas_fl_tools",  # never on a node
)


def modules_of_a_node_run(params: dict) -> set[str]:
    folders = [str(ROOT / "data" / "sample" / node) for node in ("node1", "node2")]
    env = {**os.environ, "PANCREAS_FL_SDK": "local", "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", NODE_RUN, json.dumps(folders), json.dumps(params)],
        cwd=SRC,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_the_tutorials_run_loads_nothing_of_the_exact_strategy_nor_the_column_options():
    modules = modules_of_a_node_run({})
    assert "pancreas_fl.fedavg" in modules
    assert sorted(m for m in modules if m.startswith(NOT_IN_THE_TUTORIALS_RUN)) == []


def test_the_exact_strategy_loads_its_subpackage_only_when_chosen():
    modules = modules_of_a_node_run({"strategy": "exact", "fit_intercept": True})
    assert {"pancreas_fl.exact.solver", "pancreas_fl.exact.glm"} <= modules
    assert not any(
        m.startswith(("pancreas_fl.column_options", "pancreas_fl_tools")) for m in modules
    )


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("path", UPLOAD, ids=lambda p: str(p.relative_to(SRC)))
def test_nothing_in_the_upload_imports_the_local_tools_or_the_offline_engine(path):
    # pancreas_fl.sdk falls back to the engine by name where the SDK is missing (never on a
    # node), and pancreas_fl._moved names old paths' new homes: neither imports them.
    assert not {
        m for m in imported_modules(path) if m.startswith(("pancreas_fl_tools", "flame_offline"))
    }
