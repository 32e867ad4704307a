"""pancreas_fl.logistic: the per-patient terms both strategies sum at a hospital."""

from __future__ import annotations

import numpy as np
import pytest

from pancreas_fl import logistic
from pancreas_fl.exact import sums
from pancreas_fl.exact.sums import local_terms
from pancreas_fl.logistic import log_loss_sum


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize(
    ("n", "d", "block_rows"), [(0, 3, None), (1, 1, None), (57, 4, 7), (300, 6, None)]
)
def test_log_loss_sum_is_the_exact_sums_loss_bit_for_bit(
    monkeypatch, n, d, block_rows, fit_intercept
):
    rng = np.random.default_rng(n + d)
    X = rng.normal(size=(n, d)) * 3
    y = rng.integers(0, 2, size=n)
    theta = rng.normal(size=d + fit_intercept)
    if block_rows is not None:  # several blocks of rows
        for module in (logistic, sums):
            monkeypatch.setattr(module, "BLOCK_BYTES", block_rows * 8 * theta.size)
    ours = log_loss_sum(X, y, theta, fit_intercept=fit_intercept)
    theirs = local_terms(X, y, theta, fit_intercept=fit_intercept, hessian=False)["loss"]
    assert ours.hex() == theirs.hex()
    assert ours >= 0.0


def test_log_loss_sum_at_zero_is_n_log_2():
    X, y = np.ones((5, 2)), np.array([0, 1, 1, 0, 1])
    assert log_loss_sum(X, y, np.zeros(3), fit_intercept=True) == pytest.approx(5 * np.log(2))
