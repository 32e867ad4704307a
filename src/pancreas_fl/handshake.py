"""Round 0 at the aggregator, whatever the strategy: the hospitals and the aggregator agree.

:func:`introduce` is the aggregator's first step: it checks that every hospital runs with the
same shared parameters, reports every problem the hospitals found with their data (in one
error, :func:`~pancreas_fl.errors.raise_problems`), checks that they have the same columns
(:func:`check_same_columns`), agrees the categorical levels, and keeps names and counts
(:class:`Agreement`). Only names and counts cross, never a value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pancreas_fl.errors import ConfigError, DataError, raise_problems
from pancreas_fl.messages import Introduction
from pancreas_fl.params import DEFAULT_DATASET, SHARED_PARAMS, Params
from pancreas_fl.wording import listed

if TYPE_CHECKING:
    from pancreas_fl.encoding import Encoding

__all__ = ["Agreement", "check_same_columns", "introduce"]


@dataclass(frozen=True)
class Agreement:
    """What round 0 agreed: the model's columns, and the hospitals' counts; nothing else.

    (Not a cohort of patients: the aggregator never sees one.)

    Attributes
    ----------
    feature_names : list of str
    label : str
        The label column's name.
    n_samples : dict of str to int
        Patients per hospital (node id -> count), in the order of the node ids.
    n_positive : int
        Patients with label 1, over all hospitals.
    n_dropped : dict of str to int or None
        Incomplete rows each hospital dropped (``missing="complete-case"``), else ``None``.
    encoding : Encoding or None
        How the chosen columns become the model's (``features``, ``categorical``, ``fill``,
        ``missing``); ``None`` for the tutorial's table, used as it is.
    """

    feature_names: list[str]
    label: str
    n_samples: dict[str, int]
    n_positive: int
    n_dropped: dict[str, int] | None = None
    encoding: Encoding | None = None

    @property
    def n_total(self) -> int:
        """Patients over all hospitals."""
        return sum(self.n_samples.values())


def introduce(intros: dict[str, Introduction], params: Params) -> Agreement:
    """Round 0 at the aggregator: check that the hospitals agree with it, and count them.

    Parameters
    ----------
    intros : dict of str to Introduction
        Every hospital's introduction, by node id, in the order of the node ids.
    params : Params
        The aggregator's validated parameters.

    Raises
    ------
    ConfigError
        A hospital runs with another value of a shared parameter.
    DataError
        Hospitals sent problems with their data (every problem of every hospital, one line
        per hospital: :func:`pancreas_fl.errors.raise_problems`), or the hospitals'
        columns differ (names only cross, never values).
    """
    for node, intro in intros.items():
        theirs = intro["params"]
        for name in SHARED_PARAMS:
            if theirs[name] != getattr(params, name):
                raise ConfigError(
                    f"hospital {node!r} runs with {name}={theirs[name]!r} but the aggregator "
                    f"with {name}={getattr(params, name)!r}; pass the same value in "
                    "analyzer_kwargs and aggregator_kwargs."
                )
    raise_problems({node: intro["problems"] for node, intro in intros.items()})
    columns = {node: tuple(intro["columns"]) for node, intro in intros.items()}
    check_same_columns(columns, file=params.dataset)
    first = next(iter(columns.values()))
    feature_names, encoding = list(first[:-1]), None
    if params.uses_column_options:
        # the column options only: the tutorial's run never loads the encoding
        from pancreas_fl.encoding import Encoding, union_levels

        levels = union_levels({node: intro["levels"] or {} for node, intro in intros.items()})
        encoding = Encoding(
            tuple(feature_names), levels=levels, fill=params.fill or {}, missing=params.missing
        )
        feature_names = encoding.feature_names
    return Agreement(
        feature_names=feature_names,
        label=first[-1],
        n_samples={node: intro["n"] for node, intro in intros.items()},
        n_positive=sum(intro["n_pos"] for intro in intros.values()),
        n_dropped=(
            {node: intro["n_dropped"] for node, intro in intros.items()}
            if params.missing == "complete-case"
            else None
        ),
        encoding=encoding,
    )


def check_same_columns(
    columns_by_node: Mapping[str, Sequence[str]], *, file: str = DEFAULT_DATASET
) -> None:
    """Check that all hospitals have the same columns in the same order.

    Called by the aggregator with each hospital's column names (only names cross the
    network, never data).

    Parameters
    ----------
    columns_by_node : dict of str to tuple of str
        Hospital (node id) → its column names, e.g. ``HospitalData.columns``.
    file : str, default "pancreasData.csv"
        The dataset key, for the message.

    Raises
    ------
    DataError
        Naming every hospital that differs from the most common column layout and how
        (missing, extra or reordered columns).
    """
    layouts = {str(node): tuple(str(c) for c in cols) for node, cols in columns_by_node.items()}
    if len(set(layouts.values())) <= 1:
        return
    counts = Counter(layouts.values())
    reference = max(layouts.values(), key=lambda cols: counts[cols])
    agreeing = [node for node, cols in layouts.items() if cols == reference]
    # Without a strict majority nobody can tell which hospital is "wrong": the first one is
    # only a point of comparison, and the message says so.
    majority = len(agreeing) * 2 > len(layouts)
    first = agreeing[0]
    differences = []
    for node, cols in layouts.items():
        if cols == reference:
            continue
        missing = [c for c in reference if c not in cols]
        extra = [c for c in cols if c not in reference]
        if not missing and not extra:
            differences.append(
                f"hospital {node!r} has the same columns as {first!r} in a different order"
            )
        elif majority:
            parts = [f"lacks {listed(missing)}"] if missing else []
            parts += [f"has extra {listed(extra)}"] if extra else []
            differences.append(f"hospital {node!r} " + " and ".join(parts))
        elif missing and extra:
            differences.append(
                f"hospital {node!r} has {listed(extra)} where {first!r} has {listed(missing)}"
            )
        elif missing:
            differences.append(f"hospital {node!r} lacks {listed(missing)} (which {first!r} has)")
        else:
            differences.append(
                f"hospital {node!r} has extra {listed(extra)} (which {first!r} lacks)"
            )
    compared = f"compared with {listed(agreeing, kind='hospital')}" if majority else "no majority"
    raise DataError(
        f"hospitals' columns differ: {'; '.join(differences)} ({compared})",
        file=file,
        hint="All hospitals must export the same columns in the same order",
    )
