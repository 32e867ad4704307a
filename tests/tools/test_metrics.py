"""Metrics equal scikit-learn's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from pancreas_fl_tools.metrics import accuracy, log_loss_mean, predict_proba, roc_auc


def test_metrics_equal_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=200)
    p = np.round(rng.random(200), 2)  # with ties
    assert log_loss_mean(y, p) == pytest.approx(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)))
    assert accuracy(y, p) == pytest.approx(accuracy_score(y, p >= 0.5))
    assert roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), rel=1e-12)
    assert math.isnan(roc_auc(np.ones(5), np.linspace(0, 1, 5)))


def test_predict_proba():
    X = np.array([[1.0, 2.0], [0.0, -1.0]])
    p = predict_proba(X, [0.5, -0.25, 0.1], fit_intercept=True)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-(X @ [0.5, -0.25] + 0.1))))
    with pytest.raises(ValueError, match="only the labels 0 and 1"):
        accuracy([0, 2], [0.1, 0.2])
