"""How close each strategy gets to the pooled fit, in how many rounds and how much time.

For each strategy (the tutorial's FedAvg, weighted FedAvg, exact, exact + standardize) on
data/sample/ and on a generated non-IID cohort, run the analysis on the offline engine and
compare its coefficients with scikit-learn's ``LogisticRegression`` fit on the pooled data
(the same model: same ``C`` and intercept setting; for ``standardize`` the pooled
``StandardScaler`` + ``LogisticRegression`` pipeline, compared in the standardized space):

* rounds: federated rounds the run took;
* rel. distance: ||theta - theta_pooled|| / ||theta_pooled|| (intercept included);
* log-loss gap: pooled training log-loss of the federated model minus the pooled fit's;
* seconds: median wall time of ``--repeats`` runs.

Usage: ``python benchmarks/quality.py [--repeats 3]`` (prints a Markdown table).
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pancreas_fl.results import model_from_result
from pancreas_fl_tools.sample import make_cohort
from pancreas_fl_tools.simulation import simulate

ROOT = Path(__file__).resolve().parent.parent
DATASET = "pancreasData.csv"

# The tutorial's model (C=1, no intercept) for every strategy, then the exact strategy with
# an intercept, the model an analyst would usually report.
STRATEGIES = {
    "tutorial FedAvg": {},
    "weighted FedAvg": {"weighted": True},
    "exact": {"strategy": "exact"},
    "exact + standardize": {"strategy": "exact", "standardize": True},
    "exact, intercept": {"strategy": "exact", "fit_intercept": True},
    "exact + standardize, intercept": {
        "strategy": "exact",
        "standardize": True,
        "fit_intercept": True,
    },
}


def datasets():
    """Return the data sets by name: their s3 splits and the extra parameters they need."""
    sample = [
        [{DATASET: (ROOT / "data" / "sample" / node / DATASET).read_bytes()}]
        for node in ("node1", "node2")
    ]
    frames = make_cohort(n_nodes=4, rows=[400, 60, 150, 250], n_features=10, seed=7, shift=2.0)
    non_iid = [
        [{DATASET: frame.to_csv(index=False, float_format="%.3f").encode()}] for frame in frames
    ]
    # Wide: solver="auto" takes Newton with the Hessian's packed upper triangle (4.9 MB per
    # hospital and round; see benchmarks/wide.py). (DataSHIELD's 0.33 parameters-per-patient
    # guard would need 3,640 patients per hospital here, so this synthetic set relaxes it to
    # 0.6.)
    frames = make_cohort(n_nodes=3, rows=[2000] * 3, n_features=1100, seed=8, shift=1.0)
    wide = [
        [{DATASET: frame.to_csv(index=False, float_format="%.3f").encode()}] for frame in frames
    ]
    return {
        "data/sample": (sample, {}),
        "non-IID (4 hospitals, 10 genes)": (non_iid, {}),
        "wide (3 hospitals, 1,100 genes)": (wide, {"max_param_ratio": 0.6}),
    }


def pooled(splits):
    """Return the features and labels of all hospitals' rows together."""
    df = pd.concat([pd.read_csv(io.BytesIO(s[0][DATASET])) for s in splits], ignore_index=True)
    return df.iloc[:, :-1], df.iloc[:, -1].to_numpy()


def run(splits, params):
    """Run the analysis once; return the model dict and the wall time in seconds."""
    start = time.perf_counter()
    tester = simulate(splits, stream_log_level=100, **{**params, "output": "model"})
    return tester.result, time.perf_counter() - start


def measure(splits, params, repeats):
    """Compare one strategy's model with the pooled fit; return one row of the table."""
    X, y = pooled(splits)
    reference = LogisticRegression(
        fit_intercept=params.get("fit_intercept", False),
        solver="newton-cholesky",
        tol=1e-12,
        max_iter=1000,
    )
    if params.get("standardize"):
        reference = make_pipeline(StandardScaler(), reference)
    reference.fit(X.to_numpy(), y)
    seconds = []
    for _ in range(repeats):
        model, elapsed = run(splits, params)
        seconds.append(elapsed)
    fitted = reference[-1] if params.get("standardize") else reference
    theirs = np.append(fitted.coef_.ravel(), fitted.intercept_ if fitted.fit_intercept else [])
    space = model["standardization"] if params.get("standardize") else model
    ours = space["coef"].ravel()
    if fitted.fit_intercept:
        ours = np.append(ours, space["intercept"])
    ours_loss = log_loss(y, model_from_result(model).predict_proba(X)[:, 1])
    pooled_loss = log_loss(y, reference.predict_proba(X.to_numpy())[:, 1])
    return {
        "rounds": model["rounds"],
        "rel_distance": float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs)),
        "log_loss_gap": float(ours_loss - pooled_loss),
        "seconds": statistics.median(seconds),
    }


def main(argv=None):
    """Print the Markdown table (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    header = "| data | strategy | rounds | rel. distance | log-loss gap | seconds |"
    print(header)
    print("|---|---|---:|---:|---:|---:|")
    for data_name, (splits, extra) in datasets().items():
        for name, params in STRATEGIES.items():
            row = measure(splits, {**params, **extra}, args.repeats)
            print(
                f"| {data_name} | {name} | {row['rounds']} | {row['rel_distance']:.1e} | "
                f"{row['log_loss_gap']:.1e} | {row['seconds']:.3f} |"
            )


if __name__ == "__main__":
    main()
