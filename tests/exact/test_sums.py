"""Local terms at a hospital: values, derivatives and the sums that leave it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss

from pancreas_fl.exact import aggregate_terms, local_terms, sigmoid, standardize, sums


def _data(seed=0, n=50, d=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(8.0, 2.0, size=(n, d))
    y = (rng.random(n) < 0.4).astype(int)
    return X, y


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_loss_gradient_hessian(fit_intercept):
    X, y = _data()
    rng = np.random.default_rng(1)
    theta = rng.normal(0.0, 0.1, size=3 + fit_intercept)
    out = local_terms(X, y, theta, fit_intercept=fit_intercept)
    Xd = np.hstack([X, np.ones((50, 1))]) if fit_intercept else X
    p = 1.0 / (1.0 + np.exp(-(Xd @ theta)))
    assert out["n"] == 50
    assert out["n_pos"] == int(y.sum())
    assert out["loss"] == pytest.approx(50 * log_loss(y, p), rel=1e-12)
    np.testing.assert_allclose(out["grad"], Xd.T @ (p - y), rtol=1e-12)
    np.testing.assert_allclose(out["hess"], Xd.T @ (Xd * (p * (1 - p))[:, None]), rtol=1e-10)
    # central finite differences of the loss
    h = 1e-6
    fd = [
        (
            local_terms(X, y, theta + h * e, fit_intercept=fit_intercept, hessian=False)["loss"]
            - local_terms(X, y, theta - h * e, fit_intercept=fit_intercept, hessian=False)["loss"]
        )
        / (2 * h)
        for e in np.eye(theta.size)
    ]
    np.testing.assert_allclose(fd, out["grad"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_diag_moments_match_the_full_hessian(fit_intercept):
    X, y = _data(2)
    theta = np.full(3 + fit_intercept, 0.05)
    full = local_terms(X, y, theta, fit_intercept=fit_intercept, hessian="full")["hess"]
    mom = local_terms(X, y, theta, fit_intercept=fit_intercept, hessian="diag")["hess"]
    np.testing.assert_allclose(mom["sxx"], np.diag(full)[:3], rtol=1e-12)
    if fit_intercept:
        np.testing.assert_allclose(mom["sx"], full[-1, :3], rtol=1e-12)
        assert mom["s"] == pytest.approx(full[-1, -1], rel=1e-12)
    assert local_terms(X, y, theta, fit_intercept=fit_intercept, hessian=False)["hess"] is None


def test_extreme_linear_predictor_is_stable():
    X, y = _data(3)
    theta = np.array([1e3, -1e3, 1e3])  # |z| ~ 1e4: exp would overflow
    out = local_terms(X, y, theta, fit_intercept=False)
    assert np.isfinite(out["loss"])
    assert np.all(np.isfinite(out["grad"]))
    assert np.all(np.isfinite(out["hess"]))
    assert sigmoid(np.array([-1e4, 0.0, 1e4])).tolist() == [0.0, 0.5, 1.0]


def test_aggregate_equals_pooled():
    X, y = _data(4, n=90)
    parts = [(X[:20], y[:20]), (X[20:70], y[20:70]), (X[70:], y[70:])]
    theta = np.array([0.1, -0.2, 0.05, 0.3])
    agg = aggregate_terms([local_terms(a, b, theta, fit_intercept=True) for a, b in parts])
    pooled = local_terms(X, y, theta, fit_intercept=True)
    assert agg["n"] == 90
    assert agg["n_pos"] == pooled["n_pos"]
    assert agg["loss"] == pytest.approx(pooled["loss"], rel=1e-13)
    np.testing.assert_allclose(agg["grad"], pooled["grad"], rtol=1e-12)
    np.testing.assert_allclose(agg["hess"], pooled["hess"], rtol=1e-12)
    aggd = aggregate_terms(
        [local_terms(a, b, theta, fit_intercept=True, hessian="diag") for a, b in parts]
    )
    pooledd = local_terms(X, y, theta, fit_intercept=True, hessian="diag")["hess"]
    np.testing.assert_allclose(aggd["hess"]["sxx"], pooledd["sxx"], rtol=1e-12)


def test_invalid_inputs():
    X, y = _data()
    with pytest.raises(ValueError, match="theta has 3 entries but the design has 4 columns"):
        local_terms(X, y, np.zeros(3), fit_intercept=True)
    with pytest.raises(ValueError, match="only the labels 0 and 1"):
        local_terms(X, y + 1, np.zeros(3), fit_intercept=False)
    with pytest.raises(ValueError, match="'hessian' must be one of"):
        local_terms(X, y, np.zeros(3), fit_intercept=False, hessian="yes")
    with pytest.raises(ValueError, match="one label per row"):
        local_terms(X, y[:-1], np.zeros(3), fit_intercept=False)
    with pytest.raises(ValueError, match="at least one hospital"):
        aggregate_terms([])


# ------------------------------------------------------------------------------------------
# blocks of rows: no temporary the size of the data


def _plain_terms(X, y, theta, *, fit_intercept, hessian):
    """Compute the sums as one product over all rows, with the design built in full."""
    Xd = np.hstack([X, np.ones((X.shape[0], 1))]) if fit_intercept else X
    z = Xd @ theta
    p = sigmoid(z)
    v = p * sigmoid(-z)
    out = {"loss": float(np.sum(np.logaddexp(0.0, z) - y * z)), "grad": Xd.T @ (p - y)}
    if hessian == "full":
        out["hess"] = (Xd * v[:, None]).T @ Xd
    elif hessian == "diag":
        Xf = Xd[:, :-1] if fit_intercept else Xd
        out["hess"] = {"s": float(np.sum(v)), "sx": v @ Xf, "sxx": v @ (Xf * Xf)}
    return out


def _flat(terms):
    hess = terms.get("hess")
    parts = [np.atleast_1d(terms["loss"]), terms["grad"]]
    if isinstance(hess, dict):
        parts += [np.atleast_1d(hess["s"]), hess["sx"], hess["sxx"]]
    elif hess is not None:
        parts.append(hess.ravel())
    return np.concatenate(parts)


CASES = [
    pytest.param(fi, h, id=f"{'intercept' if fi else 'none'}-{h}")
    for fi in (False, True)
    for h in ("full", "diag", False)
]


@pytest.mark.parametrize(("fit_intercept", "hessian"), CASES)
def test_one_block_is_one_product_over_all_rows_bit_for_bit(fit_intercept, hessian):
    X, y = _data(5, n=200, d=4)
    theta = np.linspace(-0.2, 0.2, 4 + fit_intercept)
    ours = local_terms(X, y, theta, fit_intercept=fit_intercept, hessian=hessian)
    plain = _plain_terms(X, y, theta, fit_intercept=fit_intercept, hessian=hessian)
    assert _flat(ours).tobytes() == _flat(plain).tobytes()


@pytest.mark.parametrize("rows", [1, 7, 64, 199])
@pytest.mark.parametrize(("fit_intercept", "hessian"), CASES)
def test_blocks_of_rows_add_up_to_the_same_sums(monkeypatch, rows, fit_intercept, hessian):
    X, y = _data(6, n=200, d=4)
    theta = np.linspace(-0.2, 0.2, 4 + fit_intercept)
    plain = _plain_terms(X, y, theta, fit_intercept=fit_intercept, hessian=hessian)
    monkeypatch.setattr(sums, "BLOCK_BYTES", rows * 8 * theta.size)
    ours = local_terms(X, y, theta, fit_intercept=fit_intercept, hessian=hessian)
    np.testing.assert_allclose(_flat(ours), _flat(plain), rtol=1e-12)
    assert ours["n"] == 200
    assert ours["n_pos"] == int(y.sum())


@pytest.mark.parametrize("rows", [3, 1000])
@pytest.mark.parametrize(("fit_intercept", "hessian"), CASES)
def test_standardized_sums_need_no_standardized_copy(monkeypatch, rows, fit_intercept, hessian):
    X, y = _data(7, n=120, d=3)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    theta = np.linspace(-0.3, 0.3, 3 + fit_intercept)
    monkeypatch.setattr(sums, "BLOCK_BYTES", rows * 8 * theta.size)
    ours = local_terms(
        X, y, theta, fit_intercept=fit_intercept, hessian=hessian, mean=mean, scale=scale
    )
    copy = local_terms(
        standardize(X, mean, scale), y, theta, fit_intercept=fit_intercept, hessian=hessian
    )
    if rows >= 120:  # one block: the same arithmetic as on a standardized copy
        assert _flat(ours).tobytes() == _flat(copy).tobytes()
    np.testing.assert_allclose(_flat(ours), _flat(copy), rtol=1e-12)


def test_a_hospital_without_rows_sends_zero_sums():
    X, y = np.empty((0, 3)), np.empty(0, dtype=int)
    full = local_terms(X, y, np.zeros(4), fit_intercept=True)
    assert (full["n"], full["n_pos"], full["loss"]) == (0, 0, 0.0)
    assert full["grad"].tolist() == [0.0] * 4
    assert full["hess"].shape == (4, 4)
    assert not full["hess"].any()
    diag = local_terms(X, y, np.zeros(3), fit_intercept=False, hessian="diag")["hess"]
    assert diag["s"] == 0.0
    assert diag["sx"].tolist() == diag["sxx"].tolist() == [0.0] * 3


def test_invalid_standardization():
    X, y = _data()
    with pytest.raises(ValueError, match="'mean' and 'scale' must be given together"):
        local_terms(X, y, np.zeros(3), fit_intercept=False, mean=np.zeros(3))
    with pytest.raises(ValueError, match=r"one entry per feature \(3\). Got shapes \(2,\)"):
        local_terms(X, y, np.zeros(3), fit_intercept=False, mean=np.zeros(2), scale=np.ones(2))
