"""Damage to the messages between the nodes (test helper): where, how, and a run that suffers it.

A :class:`Damage` names a direction (``"up"``: a hospital's message to the aggregator;
``"down"``: the aggregator's broadcast to a hospital), a round, a hospital, a leaf of the
message (its index among the message's leaves, modulo their number) and a kind of damage.
:func:`run_damaged` runs the star pattern by hand as ``_star.run_by_hand`` does (every message
pickled across), damaging the chosen message in transit, on the receiving side.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from _star import Run, StubCore, crossing
from pancreas_fl.analysis import FederatedLogisticRegression, PancreasAnalyzer

#: Every kind of damage; each applies to some leaves (see :func:`damaged`).
KINDS = (
    "times_1e300",  # the largest value of a float array (or a float) times 1e300
    "nan",
    "inf",
    "complex",
    "object",
    "float32",
    "wrong_shape",  # one entry fewer (or a 2-d array for a float)
    "none",
    "string",
    "negative",  # a count, loss or float below 0; an array's largest value -1e6 times it
    "missing_key",  # the leaf's key removed from its dict
    "extra_key",  # a key added beside the leaf
)


@dataclass(frozen=True)
class Damage:
    direction: str
    round: int
    node: int
    leaf: int | tuple  # an index among the leaves, or a path of keys ("update", "coef")
    kind: str


def leaves(message: Any, path: tuple = ()) -> list[tuple]:
    """Every leaf's path (dict keys, in order); the message itself when it is no dict."""
    if isinstance(message, dict) and message:
        found = []
        for key, value in message.items():
            found.extend(leaves(value, (*path, key)))
        return found
    return [path]


def _get(message, path):
    for key in path:
        message = message[key]
    return message


def _damage_value(value: Any, kind: str) -> Any:
    """Return the damaged value (or the value itself when the kind does not apply)."""
    if kind == "none":
        return None
    if kind == "string":
        return "damaged"
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        out = value.copy()
        if out.size == 0:
            return out
        flat = out.reshape(-1)
        if kind == "times_1e300":
            flat[int(np.argmax(np.abs(flat)))] *= 1e300
        elif kind in ("nan", "inf"):
            flat[int(np.argmax(np.abs(flat)))] = np.nan if kind == "nan" else np.inf
        elif kind == "complex":
            return out.astype(np.complex128)
        elif kind == "object":
            return out.astype(object)
        elif kind == "float32":
            return out.astype(np.float32)
        elif kind == "wrong_shape":
            return out[:-1] if out.ndim == 1 else out[:, :-1]
        elif kind == "negative":  # far out: a plausible change is not damage checks can see
            i = int(np.argmax(np.abs(flat)))
            flat[i] = -1e6 * (abs(flat[i]) + 1.0)
        return out
    if isinstance(value, float):
        return {
            "times_1e300": value * 1e300,
            "nan": float("nan"),
            "inf": float("inf"),
            "complex": complex(value, 1.0),
            "object": [value],
            "float32": np.float32(value),
            "wrong_shape": np.array([[value]]),
            "negative": -abs(value) - 1.0,
        }.get(kind, value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return {"negative": -1, "times_1e300": float(value), "wrong_shape": [value]}.get(
            kind, value
        )
    return value


def damaged(message: Any, leaf: int, kind: str) -> Any:
    """Return a deep copy of ``message`` with one leaf damaged (``leaf`` modulo the leaves)."""
    message = copy.deepcopy(message)
    if isinstance(leaf, tuple):
        path = leaf
    else:
        paths = leaves(message)
        path = paths[leaf % len(paths)]
    if not path:  # the message itself (a bare array, None)
        return _damage_value(message, kind)
    parent = _get(message, path[:-1])
    if kind == "missing_key":
        del parent[path[-1]]
    elif kind == "extra_key":
        parent["damaged"] = 1.0
    else:
        parent[path[-1]] = _damage_value(parent[path[-1]], kind)
    return message


def run_damaged(splits, damage: Damage | None, max_rounds: int = 500, **params) -> Run:
    """Run the analysis by hand; ``damage`` hits one message in transit (or none)."""
    hospitals = [
        PancreasAnalyzer(StubCore(f"node-{i + 1}", "default"), **params) for i in range(len(splits))
    ]
    aggregator = FederatedLogisticRegression(StubCore("aggregator", "aggregator"), **params)
    run = Run(hospitals, aggregator)
    for k in range(max_rounds):
        messages = [crossing(h.analyze(data)) for h, data in zip(hospitals, splits, strict=True)]
        if damage is not None and damage.direction == "up" and damage.round == k:
            i = damage.node % len(messages)
            messages[i] = damaged(messages[i], damage.leaf, damage.kind)
        run.sent.append(messages)
        result, converged = aggregator.aggregate(messages, simple_analysis=False)
        if converged:
            run.result = result
            return run
        run.broadcasts.append(result)
        for i, hospital in enumerate(hospitals):
            received = crossing(result)
            hit = damage is not None and damage.direction == "down" and damage.round == k + 1
            if hit and i == damage.node % len(hospitals):
                received = damaged(received, damage.leaf, damage.kind)
            hospital.latest_result = received
    raise AssertionError(f"no convergence in {max_rounds} rounds")
