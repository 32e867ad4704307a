"""Every problem of every hospital, reported once: the round-0 problem reports.

A hospital that finds problems with its data in the first round does not fail alone: it
sends them (:class:`~pancreas_fl.messages.Problem`, column names and counts only) and the
aggregator fails the run once, with one line per hospital listing all of its problems
(:func:`raise_problems`). With a single problem at a single hospital the error is that
problem's own (:class:`~pancreas_fl.errors.DataError` or
:class:`~pancreas_fl.errors.PrivacyError`, worded as the hospital would have).
"""

from __future__ import annotations

from collections.abc import Mapping

from pancreas_fl.errors import DataError, PrivacyError
from pancreas_fl.messages import Problem

__all__ = [
    "HospitalPrivacyProblemsError",
    "HospitalProblemsError",
    "as_error",
    "as_problem",
    "raise_problems",
]


class HospitalProblemsError(DataError):
    """Problems at several hospitals: one line per hospital (``reports``).

    Parameters
    ----------
    reports : list of DataError
        One per hospital, each naming the hospital, its file and all of its problems.
    """

    def __init__(self, reports: list[DataError]) -> None:
        self.reports = list(reports)
        super().__init__("\n".join(str(report) for report in self.reports))

    def with_context(self, *, node=None, file=None) -> HospitalProblemsError:
        """Every report names its hospital already."""
        return self

    def __reduce__(self):
        """Pickle as the list of reports, so the error crosses processes intact."""
        return (type(self), (self.reports,))


class HospitalPrivacyProblemsError(HospitalProblemsError, PrivacyError):
    """Several hospitals refuse to share, every one for a disclosure guard."""


def as_problem(error: DataError) -> Problem:
    """Convert a hospital's :class:`DataError` to the plain dict it sends."""
    return {
        "problem": error.problem,
        "hint": error.hint,
        "file": str(error.file) if error.file is not None else "",
        "privacy": isinstance(error, PrivacyError),
    }


def as_error(node: str | None, problems: list[Problem]) -> DataError:
    """One hospital's problems as one error (one line): all problems, then all hints.

    ``node`` is ``None`` where the hospital is not known (a file read on its own).
    """
    privacy = all(problem["privacy"] for problem in problems)
    cls = PrivacyError if privacy else DataError
    files = list(dict.fromkeys(problem["file"] for problem in problems if problem["file"]))
    if len(problems) == 1:
        text = problems[0]["problem"]
    else:
        text = f"{len(problems)} problems: " + "; ".join(
            f"({i}) {problem['problem']}" for i, problem in enumerate(problems, 1)
        )
    hints = list(dict.fromkeys(p["hint"] for p in problems if p["hint"]))
    hint = hints[0] if len(hints) == 1 else ". ".join(h.rstrip(". ") for h in hints)
    return cls(text, node=node, file=files[0] if len(files) == 1 else None, hint=hint or None)


def raise_problems(problems_by_node: Mapping[str, list[Problem]]) -> None:
    """Raise one error naming every hospital's problems, if there are any.

    Parameters
    ----------
    problems_by_node : dict of str to list of Problem
        By node id, in the order of the node ids.

    Raises
    ------
    DataError, PrivacyError
        One hospital has problems: one line.
    HospitalProblemsError
        Several hospitals have problems: one line per hospital.
    """
    reports = [as_error(node, problems) for node, problems in problems_by_node.items() if problems]
    if len(reports) == 1:
        raise reports[0]
    if reports:
        privacy = all(isinstance(report, PrivacyError) for report in reports)
        raise (HospitalPrivacyProblemsError if privacy else HospitalProblemsError)(reports)
