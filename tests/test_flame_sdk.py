"""The analysis under the real FLAME SDK (``flame.star``), in the same environment as the engine.

These tests run only where the SDK is installed and selected (``make test-flame``: Python 3.10,
the ml image's libraries, the SDK from ``../shared/wheels``, ``PANCREAS_FL_SDK=flame``);
elsewhere they are skipped. Within one environment the comparisons are bit for bit:

* our classes and the tutorial's own code, both under the SDK's ``StarModelTester``;
* the SDK's ``StarModelTester`` and the offline engine, driving the same classes.

Across machines only the golden file is compared, with a tolerance (other CPUs make OpenBLAS
pick other kernels).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import _tutorial
from _helpers import DATASET, golden_coef, run_analysis, sample_splits
from pancreas_fl import sdk
from pancreas_fl.analysis import FederatedLogisticRegression, PancreasAnalyzer

pytestmark = pytest.mark.skipif(
    sdk.BACKEND != "flame", reason="needs the real FLAME SDK selected (make test-flame)"
)

#: The log types a production node accepts (flamesdk 0.5/0.6); anything else fails the node.
PRODUCTION_LOG_TYPES = {"debug", "info", "notice", "warn", "alert", "emerg", "error", "crit"}


def sdk_run(
    tmp_path, splits, analyzer=PancreasAnalyzer, aggregator=FederatedLogisticRegression, **params
):
    """Run under the SDK's own ``StarModelTester``; return the unpickled final result."""
    from flame.star import StarModelTester

    out = tmp_path / "result.pkl"
    StarModelTester(
        splits,
        analyzer,
        aggregator,
        "s3",
        query=[DATASET],
        simple_analysis=False,
        output_type="pickle",
        analyzer_kwargs=params or None,
        aggregator_kwargs=params or None,
        result_filepath=str(out),
    )
    assert out.exists(), "the SDK's tester wrote no result: a node failed (see stdout)"
    return pickle.loads(out.read_bytes())


def separable_splits() -> list[list[dict[str, bytes]]]:
    """Two hospitals whose label is 1 exactly when ``a > 0``: no finite unpenalized fit."""
    rng = np.random.default_rng(5)
    splits = []
    for _ in range(2):
        x = rng.normal(size=(40, 2))
        rows = [f"{a:.4f},{b:.4f},{int(a > 0)}" for a, b in x]
        splits.append([{DATASET: ("a,b,y\n" + "\n".join(rows) + "\n").encode()}])
    return splits


def coefficients(result) -> bytes:
    """Return the bits of a result's coefficients (and intercept), bare array or model dict."""
    if isinstance(result, np.ndarray):
        return result.tobytes()
    intercept = result["intercept"]
    return result["coef"].tobytes() + (b"" if intercept is None else intercept.tobytes())


# the tutorial's code warns on purpose every round; ours must not (filterwarnings=error)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_ours_equal_the_tutorials_own_code_under_the_sdk_bit_for_bit(tmp_path):
    ours = sdk_run(tmp_path, sample_splits())
    theirs = sdk_run(
        tmp_path, sample_splits(), _tutorial.PancreasAnalyzer, _tutorial.FederatedLogisticRegression
    )
    assert isinstance(ours, np.ndarray)
    assert ours.shape == (1, 8)
    assert ours.tobytes() == theirs.tobytes()
    np.testing.assert_allclose(ours, golden_coef(), rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"weighted": True},
        {"local_steps": 3, "fit_intercept": True},
        {"strategy": "exact"},
        {"strategy": "exact", "fit_intercept": True},
        {"strategy": "exact", "standardize": True, "C": 0.5},
    ],
    ids=[
        "tutorial",
        "weighted",
        "local-steps-intercept",
        "exact",
        "exact-intercept",
        "exact-standardize",
    ],
)
def test_the_engine_equals_the_sdk_bit_for_bit(tmp_path, params):
    splits = sample_splits()
    theirs = sdk_run(tmp_path, splits, **params)
    ours = run_analysis(splits, **params).result
    assert type(ours) is type(theirs)
    assert coefficients(ours) == coefficients(theirs)


def test_every_log_line_uses_a_production_log_type(tmp_path, monkeypatch):
    """The SDK's mock accepts any log type; a production node fails on an unknown one."""
    from flame.utils.mock_flame_core import MockFlameCoreSDK

    seen = []
    original = MockFlameCoreSDK.flame_log

    def recording(self, msg, *args, **kwargs):
        seen.append(kwargs.get("log_type", args[2] if len(args) > 2 else "info"))
        return original(self, msg, *args, **kwargs)

    monkeypatch.setattr(MockFlameCoreSDK, "flame_log", recording)
    # the default run, the exact strategy with its GLM summary, and a fit that cannot converge
    # (separable classes, no penalty: the 'warn' path)
    separable = separable_splits()
    sdk_run(tmp_path, sample_splits())
    sdk_run(tmp_path, sample_splits(), strategy="exact", fit_intercept=True)
    sdk_run(tmp_path, separable, strategy="exact", C=float("inf"), max_iter=5)
    assert "warn" in seen
    assert set(seen) <= PRODUCTION_LOG_TYPES
