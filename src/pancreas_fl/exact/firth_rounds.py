r"""Firth's rounds at the aggregator: what to ask the hospitals for, and what their sums give.

The aggregator side of ``penalty="firth"`` (the mathematics is in
:mod:`~pancreas_fl.exact.firth`). :class:`FirthRounds` tells the strategy what each broadcast
asks for (:class:`~pancreas_fl.exact.messages.FirthRequest`), checks and adds what the
hospitals send, and turns the pooled sums into the objective :math:`F = -\ell^*` and its
gradient, which the solver (unpenalized) takes in place of the log-loss sum and its gradient:

* up to :data:`~pancreas_fl.exact.firth.TENSOR_LIMIT` parameters, one round per evaluation:
  the sums and the third-moment sums together;
* above, two: the sums, then, with :math:`\mathcal I^{-1}` broadcast for the same point, the
  hat-weighted sums.

At the end it builds the statistics (:func:`~pancreas_fl.exact.firth.firth_summary`).
"""

from __future__ import annotations

import numpy as np

from pancreas_fl.errors import ConfigError, OutOfStepError
from pancreas_fl.exact import firth
from pancreas_fl.exact.aliasing import find_aliased
from pancreas_fl.exact.curvature import FLOAT64_TRIANGLE_LIMIT as FIRTH_LIMIT
from pancreas_fl.exact.glm import glm_summary, null_deviance
from pancreas_fl.exact.messages import ExactUpdate, FirthRequest
from pancreas_fl.exact.sums import aggregate_terms

__all__ = ["FirthRounds"]


class FirthRounds:
    """The aggregator's Firth bookkeeping for one analysis.

    Parameters
    ----------
    n_params : int
        Parameters of the model (features, plus 1 with an intercept).
    method : {"newton", "lbfgs"}
        The solver's resolved method: Firth needs Newton's information matrix.
    terms : list of str
        The term names (the intercept last), for messages.
    fit_intercept : bool

    Attributes
    ----------
    two_round : bool
        Two rounds per evaluation (more than ``TENSOR_LIMIT`` parameters).
    request : FirthRequest
        What the next broadcast asks the hospitals for.

    Raises
    ------
    ConfigError
        Newton is not the method (its float64 curvature does not fit the budgets).
    """

    def __init__(self, n_params: int, method: str, terms: list[str], *, fit_intercept: bool):
        if method != "newton":
            raise ConfigError(
                "penalty='firth' needs the information matrix, which the hospitals share only "
                "while it fits the curvature budgets in float64 (max_message_mb and "
                f"max_memory_mb: up to {FIRTH_LIMIT:,} parameters with the defaults); this model "
                f"has {n_params}. Use fewer features."
            )
        self.n_params = n_params
        self.terms = terms
        self.fit_intercept = fit_intercept
        self.two_round = n_params > firth.TENSOR_LIMIT
        self.request: FirthRequest = firth.first_request(n_params)
        self._first_half: tuple[dict, dict] | None = None
        self._checked = False

    def pool(self, updates: dict[str, ExactUpdate], round_: int):
        r"""Add a round's updates; return what the solver needs, or ``None`` for another round.

        Returns
        -------
        tuple or None
            ``None`` after the first round of a two-round evaluation (:attr:`request` then
            asks for the hat-weighted sums at the same point); else ``(total, updates, F,
            grad_F)``: the pooled :func:`~pancreas_fl.exact.sums.aggregate_terms`, the
            updates that carried them, and :math:`F = -\ell^*` with its gradient
            (:math:`+\infty` and NaN where the information is not positive definite).
        """
        if self._first_half is not None:  # the second round of a two-round evaluation
            (total, first), self._first_half = self._first_half, None
            self.request = firth.first_request(self.n_params)
            correction = self._sum(updates, (self.n_params,), round_)
            return total, first, *self._objective(total, correction)
        total = aggregate_terms([update["terms"] for update in updates.values()])
        if not self._checked:  # the start point: the design's information
            self._check_design(total["hess"])
            self._checked = True
        if not self.two_round:
            third = self._sum(updates, (self.n_params,) * 3, round_)
            return (
                total,
                updates,
                *self._objective(total, firth.third_moment_correction(third, total["hess"])),
            )
        info_inv = firth.inverse_information(total["hess"])
        if info_inv is None:  # not positive definite: F = inf, the line search steps back
            return total, updates, *self._objective(total, None)
        self._first_half = (total, updates)
        self.request = {"send": "hat", "info_inv": info_inv}
        return None

    @staticmethod
    def _objective(total: dict, correction) -> tuple[float, np.ndarray]:
        return firth.penalized_terms(total["loss"], total["grad"], total["hess"], correction)

    @staticmethod
    def _sum(updates: dict[str, ExactUpdate], shape: tuple, round_: int) -> np.ndarray:
        """Add the hospitals' Firth sums, each checked where it is received."""
        total = np.zeros(shape)
        for node, update in updates.items():
            part = update.get("firth") if isinstance(update, dict) else None
            if not isinstance(part, np.ndarray) or part.dtype.kind != "f":
                part = None
            if part is None or part.shape != shape or not np.all(np.isfinite(part)):
                raise OutOfStepError(
                    f"hospital {node!r} sent no valid Firth sum (expected {shape} finite "
                    f"numbers) in round {round_}: the message is damaged or of another "
                    "round. Start the analysis again."
                )
            total += part
        return total

    def _check_design(self, info0: np.ndarray) -> None:
        """Refuse a design without full rank (its log det I is -inf everywhere)."""
        if np.isfinite(firth.logdet(info0)):
            return
        aliased = find_aliased(info0, fit_intercept=self.fit_intercept).aliased
        names = ", ".join(repr(self.terms[j]) for j in aliased) or "some terms"
        raise ConfigError(
            f"penalty='firth' needs every term estimable, but {names} "
            f"{'is' if len(aliased) == 1 else 'are'} a linear combination of earlier terms "
            "(aliased); leave them out of 'features'."
        )

    def statistics(
        self,
        theta: np.ndarray,
        info: np.ndarray,
        objective: float,
        *,
        design_info: np.ndarray,
        feature_names: list[str],
        n: int,
        n_positive: int,
        rounds: int,
    ) -> dict:
        r"""Return the Wald table from I^-1 at Firth's estimate, and the penalized statistics.

        Parameters
        ----------
        theta, info : numpy.ndarray
            The estimate and the pooled information there.
        objective : float
            :math:`F = -\ell^*` at ``theta``.
        design_info : numpy.ndarray
            The pooled information at :math:`\theta = 0` (for the null model).
        feature_names : list of str
        n, n_positive : int
        rounds : int
        """
        penalized_loglik = -float(objective)
        loss = -penalized_loglik + 0.5 * firth.logdet(info)  # l = l* - 1/2 log det I
        fit_intercept = self.fit_intercept
        summary = glm_summary(
            theta,
            info,
            feature_names=feature_names,
            fit_intercept=fit_intercept,
            n=n,
            deviance=2.0 * loss,
            null_deviance=null_deviance(n, n_positive, fit_intercept=fit_intercept),
            penalty=None,
            rounds=rounds,
        )
        null = firth.null_penalized_loglik(n, n_positive, design_info, fit_intercept=fit_intercept)
        return firth.firth_summary(summary, penalized_loglik, null, fit_intercept=fit_intercept)
