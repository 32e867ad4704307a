"""Simulation of the federated rounds and the pooled scikit-learn reference (test helper).

``run_federated`` plays the star pattern in one process: each round every hospital computes
``local_terms`` at the solver's ``next_theta``, the aggregator sums them
(``aggregate_terms``) and calls ``solver.update``. Only sums cross the "network".
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression

from pancreas_fl.exact import FederatedSolver, SolverStep, aggregate_terms, local_terms

Hospital = tuple[np.ndarray, np.ndarray]


@dataclass
class FitResult:
    step: SolverStep
    solver: FederatedSolver
    steps: list[SolverStep] = field(default_factory=list)

    @property
    def theta(self) -> np.ndarray:
        return self.step.best_theta

    @property
    def rounds(self) -> int:
        return self.step.round


def run_federated(hospitals: list[Hospital], *, fit_intercept: bool, **solver_kw) -> FitResult:
    """Run the rounds until the solver is done."""
    d = hospitals[0][0].shape[1]
    solver = FederatedSolver(d + int(fit_intercept), fit_intercept=fit_intercept, **solver_kw)
    theta = solver.initial_theta()
    steps = []
    while True:
        terms = [
            local_terms(X, y, theta, fit_intercept=fit_intercept, hessian=solver.curvature)
            for X, y in hospitals
        ]
        agg = aggregate_terms(terms)
        step = solver.update(theta, agg["loss"], agg["grad"], agg["hess"])
        steps.append(step)
        if step.done:
            return FitResult(step=step, solver=solver, steps=steps)
        theta = step.next_theta


def pool(hospitals: list[Hospital]) -> Hospital:
    return np.vstack([X for X, _ in hospitals]), np.concatenate([y for _, y in hospitals])


def pooled_reference(
    hospitals: list[Hospital], *, fit_intercept: bool, C: float = 1.0, penalty: str | None = "l2"
) -> np.ndarray:
    """Tightly converged pooled sklearn fit, as theta = (coef..., intercept).

    ``penalty=None`` is passed as ``C=inf`` (``penalty`` is deprecated since sklearn 1.8).
    """
    X, y = pool(hospitals)
    model = LogisticRegression(
        C=np.inf if penalty is None else C,
        fit_intercept=fit_intercept,
        solver="newton-cholesky",
        tol=1e-12,
        max_iter=10_000,
    ).fit(X, y)
    theta = model.coef_.ravel()
    if fit_intercept:
        theta = np.append(theta, model.intercept_)
    return theta


def rel_dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def expression_like(
    rng: np.random.Generator,
    n: int,
    d: int,
    *,
    shift: float = 0.0,
    bias: float = 0.0,
    signal: float = 1.0,
) -> Hospital:
    """Unscaled features around 2-14 (log2 expression), labels from a logistic model."""
    X = rng.normal(8.0 + shift, 2.0, size=(n, d))
    beta = np.linspace(-1.0, 1.0, d) * signal / np.sqrt(d)
    z = (X - 8.0) @ beta + bias
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.int64)
    return X, y


def make_hospitals(seed: int, kind: str, d: int = 5) -> list[Hospital]:
    """Generate the hospitals of a ``kind`` of split.

    ``iid``: three equal hospitals; ``noniid``: sizes 40/200/90, shifted features and different
    class balance.
    """
    rng = np.random.default_rng(seed)
    if kind == "iid":
        X, y = expression_like(rng, 300, d)
        return [(X[:100], y[:100]), (X[100:200], y[100:200]), (X[200:], y[200:])]
    if kind == "noniid":
        return [
            expression_like(rng, 40, d, shift=-2.0, bias=-1.5),
            expression_like(rng, 200, d, shift=0.0, bias=0.5),
            expression_like(rng, 90, d, shift=2.5, bias=2.0),
        ]
    raise ValueError(kind)


def wide_hospitals(seed: int, n: int = 600, d: int = 300) -> list[Hospital]:
    """Correlated, uncentred expression-like features (5 latent factors), sparse signal."""
    rng = np.random.default_rng(seed)
    base = rng.normal(8.0, 2.0, size=(1, d))
    latent = rng.normal(size=(n, 5))
    load = rng.normal(0.0, 0.7, size=(5, d))
    X = base + latent @ load + rng.normal(0.0, 1.0, size=(n, d))
    beta = rng.normal(0.0, 1.0, d) * (rng.random(d) < 0.05)
    z = 0.5 * (X - X.mean(axis=0)) @ beta
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.int64)
    cuts = [0, n // 4, (2 * n) // 3, n]
    return [(X[a:b], y[a:b]) for a, b in itertools.pairwise(cuts)]
