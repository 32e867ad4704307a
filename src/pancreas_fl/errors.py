"""Exceptions raised by pancreas-fl.

Every user-facing error names *where* the problem is (the hospital, i.e. the FLAME node, and
the file), *what* it is and *what to do*, in one line. Messages never contain patient values:
only counts, column names and labels of the file's structure.

A hospital that finds problems with its data in the first round does not fail alone: it
sends them (:class:`~pancreas_fl.messages.Problem`: what is wrong, column names and counts
only; :func:`as_problem`) and the aggregator fails the run once, with one line per hospital
listing all of its problems (:func:`raise_problems`). With a single problem at a single
hospital the error is that problem's own, worded as the hospital would have.

All exceptions here survive a pickle round trip, because they may be raised inside a node
running in another process (or another FLAME container) and be reported by the engine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pancreas_fl.messages import Problem

__all__ = [
    "ConfigError",
    "DataError",
    "HospitalPrivacyProblemsError",
    "HospitalProblemsError",
    "MessageError",
    "OutOfStepError",
    "PancreasFLError",
    "PrivacyError",
    "UsageError",
    "as_error",
    "as_problem",
    "quote_path",
    "raise_problems",
]


def quote_path(path) -> str:
    """Show a path in a one-line message, quoted (repr) where it could mislead.

    That is when it is empty, holds a line break or another control character, or has
    surrounding spaces; otherwise it is shown as it is.
    """
    text = os.fspath(path)
    return text if text.isprintable() and text.strip() == text and text else repr(text)


class PancreasFLError(Exception):
    """Base class of every error raised on purpose by pancreas-fl."""


class ConfigError(PancreasFLError, ValueError):
    """A parameter of the analysis is invalid (raised once, when the node starts).

    The message follows scikit-learn's convention, for example
    ``"'tol' must be a float in (0, inf). Got -1 instead."``.
    """


class OutOfStepError(PancreasFLError, RuntimeError):
    """A hospital's message belongs to another round than the one being combined.

    A message broker that delivers a message twice or late can put a hospital a round ahead
    of the aggregator; combining its update would silently mix rounds.
    """


class MessageError(PancreasFLError, ValueError):
    """A message between the nodes does not follow the wire format, or breaks a bound.

    Raised where the message is received (:mod:`pancreas_fl.wire`), in one line naming the
    sender, the round, the field and what is wrong (never a value the message holds). The
    ``pancreas-fl`` command reports it as a data error (exit status 2).
    """


class UsageError(PancreasFLError):
    """A command-line input that cannot be used: a path, a folder, an output location.

    The ``pancreas-fl`` command reports it in one line and exits with status 2.
    """


class DataError(PancreasFLError, ValueError):
    """A hospital's data cannot be used as it is.

    Parameters
    ----------
    problem : str
        What is wrong, with counts and column names only (never patient values).
    node : str, optional
        The hospital (FLAME node id) whose data is affected.
    file : str, optional
        The dataset key (file name) at that hospital.
    hint : str, optional
        What the data owner or analyst can do about it.
    """

    def __init__(
        self,
        problem: str,
        *,
        node: str | None = None,
        file: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.problem = problem
        self.node = node
        self.file = file
        self.hint = hint
        super().__init__(self._format())

    def _format(self) -> str:
        parts = []
        if self.node is not None:
            parts.append(f"hospital {self.node!r}")
        if self.file is not None:
            parts.append(quote_path(str(self.file)))
        where = ": ".join(parts)
        text = f"{where}: {self.problem}" if where else self.problem
        if self.hint:
            text = f"{text.rstrip('.')}. {self.hint}"
        return text

    def with_context(self, *, node: str | None = None, file: str | None = None) -> DataError:
        """Return a copy that also names the hospital and/or file (existing ones are kept)."""
        return type(self)(
            self.problem,
            node=self.node if self.node is not None else node,
            file=self.file if self.file is not None else file,
            hint=self.hint,
        )

    def __reduce__(self):
        """Pickle with the problem, node, file and hint, so the error crosses processes intact."""
        return (_rebuild_data_error, (type(self), self.problem, self.node, self.file, self.hint))


class PrivacyError(DataError):
    """A hospital refuses to share a model update that could expose individual patients."""


def _rebuild_data_error(cls, problem, node, file, hint):
    return cls(problem, node=node, file=file, hint=hint)


# ------------------------------------------------------- a hospital's problems, sent in round 0
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
