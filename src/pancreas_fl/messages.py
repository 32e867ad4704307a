"""The messages between the nodes: pancreas-fl's wire format, in one place.

FLAME pickles every message between nodes and moves it through its storage and message
services, so every message here is a plain dict of numbers, numpy arrays, strings and
``None``, and survives a pickle round trip. It carries aggregates (sums over a hospital's
patients, or coefficients fitted on them), counts and column names: never a patient record.

What crosses, round by round (``k`` is the SDK's ``num_iterations``, 0 in the first round)::

    round   hospital -> aggregator (HospitalMessage)       aggregator -> hospitals
    -----   --------------------------------------------   ----------------------------------
    k = 0   node, round, intro (counts, column names,       FedAvg: the global model
            shared parameters, problems), update            exact: ExactBroadcast
    k > 0   node, round, update                             the same
    last    node, round, update                             nothing: the final result goes to
                                                            the analyst (bare coefficients or
                                                            the model dict of results.py)

A hospital that finds problems with its data in round 0 sends them in its introduction
(:class:`Problem`: what is wrong, column names and counts only) and no update, instead of
failing alone; the aggregator then fails the run once, naming every problem of every hospital.

With ``categorical`` columns round 0 is a setup round: the introduction also carries the
level names of each categorical column (only levels held by at least ``min_cell`` patients),
the update is ``None``, and the aggregator answers with :class:`SetupBroadcast` (the agreed
levels). The model rounds follow, the first of them (k = 1) as k = 0 above without the intro::

    k = 0   node, round, intro (+ levels), update None      SetupBroadcast
    k = 1   node, round, update (as k = 0 without setup)    FedAvg / exact broadcast

The update depends on the strategy:

* FedAvg (the tutorial): :class:`FedAvgUpdate`, the hospital's coefficients after one
  warm-started lbfgs step from the global model, and the global model back
  (:data:`FedAvgBroadcast`: the tutorial's bare ``(1, n_features)`` array, or
  :class:`GlobalModel` when there is an intercept).
* exact: :class:`ExactUpdate`, the sums of per-patient log-loss, gradient and curvature terms
  at the point the aggregator asked for (:class:`ExactBroadcast`), and the count of patients
  whose fitted probability there is numerically 0 or 1; with ``standardize=True`` the first
  round sends per-feature moments instead.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["HospitalMessage", "Introduction", "Problem", "SetupBroadcast"]


# --------------------------------------------------------------------- hospital -> aggregator
class Problem(TypedDict):
    """One problem a hospital found with its data (round 0): never a value, never a level."""

    problem: str
    """What is wrong: column names and counts only."""
    hint: str | None
    """What the data owner or analyst can do."""
    file: str
    """The object key (or the ``dataset`` pattern when no key matched)."""
    privacy: bool
    """A disclosure guard refused (:class:`~pancreas_fl.errors.PrivacyError`)."""


class Introduction(TypedDict):
    """Round 0 only: what the aggregator checks and counts before it combines anything."""

    n: int
    """Patients the hospital uses (after dropping incomplete rows)."""
    n_pos: int
    """Of those, patients with label 1 (for the null deviance of the GLM statistics)."""
    n_dropped: int
    """Rows dropped for a missing value (``missing="complete-case"``); a count only."""
    columns: list[str]
    """Feature names (before categorical encoding), then the label name: compared across
    hospitals, never values."""
    params: dict[str, Any]
    """The parameters both roles must agree on (:meth:`pancreas_fl.params.Params.shared`)."""
    problems: list[Problem]
    """Every problem found with the data; empty when there is none (then ``update`` is
    ``None`` and the aggregator fails the run)."""
    levels: dict[str, list[str]] | None
    """With ``categorical``: column -> the level names held here, each by at least
    ``min_cell`` patients (names the hospital chose to send). ``None`` otherwise."""


class HospitalMessage(TypedDict):
    """What :meth:`~pancreas_fl.analysis.PancreasAnalyzer.analysis_method` returns."""

    node: str
    """The hospital's node id (the aggregator combines in the order of the ids)."""
    round: int
    """The round the update is for (the hospital's ``num_iterations``); the aggregator
    refuses a message of another round rather than mix rounds."""
    intro: Introduction | None
    """Round 0 only, else ``None``."""
    update: Any
    """The strategy's update (:class:`pancreas_fl.fedavg.FedAvgUpdate` or
    :class:`pancreas_fl.exact.messages.ExactUpdate`); ``None`` in a setup round
    (``categorical``) and when the intro lists problems."""
    received: str | None
    """``None`` in round 0; then the BLAKE2b digest of the broadcast the update was computed
    from (:func:`pancreas_fl.wire.digest`): the aggregator compares it with what it sent."""


# --------------------------------------------------------------------- aggregator -> hospitals
class SetupBroadcast(TypedDict):
    """The answer to the setup round (``categorical``): the agreed encoding."""

    levels: dict[str, list[str]]
    """Categorical column -> the union of the hospitals' levels, sorted; the first is the
    reference level (no column of its own)."""
