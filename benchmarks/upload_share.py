"""What a FLAME node loads of the Hub upload: the share of its lines each kind of run imports.

The upload is what ``make hub`` assembles (the entrypoint ``src/pancreas_analysis.py`` and the
``pancreas_fl`` package); this script runs it into a temporary folder and reads the list from
there. Each run below starts a fresh interpreter that runs the analysis as a node does (the
entrypoint's classes and query, on the offline engine, on ``data/sample``), and counts the
upload's files among the modules it has imported, and their lines (``wc -l``):

* ``default``: the tutorial's run (FedAvg, no parameters): must load at most half the lines;
* ``exact``: ``strategy="exact"`` with an intercept;
* ``categorical``: a table with a categorical column and blanks (``categorical``,
  ``missing="complete-case"``).

Every uploaded file must be loaded by at least one of them: nothing in the upload is dead on a
node. Run: ``python benchmarks/upload_share.py`` from the repository root (it exits 1 when
either property fails).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
MAX_DEFAULT_SHARE = 0.5

# Runs in a fresh interpreter: the node's two classes on the offline engine, then prints the
# files of every module imported.
_NODE_RUN = """
import json, sys
import pancreas_analysis  # the Hub entrypoint, as FLAME imports it
from flame_offline import StarModelTester
from pancreas_fl.analysis import FederatedLogisticRegression, PancreasAnalyzer
from pancreas_fl.s3 import s3_query

folders, params = json.loads(sys.argv[1]), json.loads(sys.argv[2]) or None
splits = [[{"pancreasData.csv": open(f + "/pancreasData.csv", "rb").read()}] for f in folders]
StarModelTester(
    splits, PancreasAnalyzer, FederatedLogisticRegression, "s3",
    query=s3_query((params or {}).get("dataset", "pancreasData.csv")),
    simple_analysis=False, output_type="pickle",
    analyzer_kwargs=params, aggregator_kwargs=params,
    print_result=False, stream_log_level=100,
)
print(json.dumps(sorted({m.__file__ for m in list(sys.modules.values())
                         if getattr(m, "__file__", None)})))
"""


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines())


def _categorical_sample(folder: Path) -> list[str]:
    """Write data/sample with a categorical column and a few blanks (seeded)."""
    import numpy as np
    import pandas as pd

    folders = []
    for i, node in enumerate(("node1", "node2")):
        frame = pd.read_csv(ROOT / "data" / "sample" / node / "pancreasData.csv")
        rng = np.random.default_rng(i)
        frame.insert(0, "stage", rng.choice(["I", "II", "III"], size=len(frame)))
        column = frame.columns[1]
        frame[column] = frame[column].where(rng.random(len(frame)) > 0.05)
        (folder / node).mkdir(parents=True)
        frame.to_csv(folder / node / "pancreasData.csv", index=False)
        folders.append(str(folder / node))
    return folders


def upload() -> list[Path]:
    """Return the upload's files as ``make hub`` assembles them, as paths under ``src/``."""
    with tempfile.TemporaryDirectory() as tmp:
        hub = Path(tmp) / "hub"
        subprocess.run(
            ["make", "-s", "hub", f"HUB_DIR={hub}"], cwd=ROOT, check=True, capture_output=True
        )
        files = sorted(p.relative_to(hub / "src") for p in (hub / "src").rglob("*") if p.is_file())
    return [SRC / path for path in files]


UPLOAD = upload()


def loaded(folders: list[str], params: dict) -> set[Path]:
    """Return the upload's files a node run with ``params`` imports."""
    out = subprocess.run(
        [sys.executable, "-c", _NODE_RUN, json.dumps(folders), json.dumps(params)],
        cwd=SRC,
        env={"PYTHONPATH": str(SRC), "PANCREAS_FL_SDK": "local", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    files = {Path(f).resolve() for f in json.loads(out.stdout.splitlines()[-1])}
    return {path for path in UPLOAD if path.resolve() in files}


def main() -> int:
    """Print the table; return 1 when the default run loads more than half or a file is dead."""
    total = sum(_lines(path) for path in UPLOAD)
    sample = [str(ROOT / "data" / "sample" / node) for node in ("node1", "node2")]
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "default": loaded(sample, {}),
            "exact": loaded(sample, {"strategy": "exact", "fit_intercept": True}),
            "categorical": loaded(
                _categorical_sample(Path(tmp)),
                {"categorical": ["stage"], "missing": "complete-case"},
            ),
        }
    out = io.StringIO()
    print(f"upload (make hub): {len(UPLOAD)} files, {total:,} lines", file=out)
    print(f"{'run':<12} {'files':>5} {'lines':>7} {'share':>6}", file=out)
    for name, files in runs.items():
        lines = sum(_lines(path) for path in files)
        print(f"{name:<12} {len(files):>5} {lines:>7,} {lines / total:>6.0%}", file=out)
    default_share = sum(_lines(path) for path in runs["default"]) / total
    dead = [path for path in UPLOAD if not any(path in files for files in runs.values())]
    print(
        f"never loaded by a node run: {', '.join(str(p.relative_to(SRC)) for p in dead) or 'none'}",
        file=out,
    )
    sys.stdout.write(out.getvalue())
    return int(default_share > MAX_DEFAULT_SHARE or bool(dead))


if __name__ == "__main__":
    sys.exit(main())
