"""Exceptions raised by pancreas-fl.

Every user-facing error names *where* the problem is (the hospital, i.e. the FLAME node, and
the file), *what* it is and *what to do*, in one line. Messages never contain patient values:
only counts, column names and labels of the file's structure.

All exceptions here survive a pickle round trip, because they may be raised inside a node
running in another process (or another FLAME container) and be reported by the engine.
"""

from __future__ import annotations

import os

__all__ = [
    "ConfigError",
    "DataError",
    "MessageError",
    "OutOfStepError",
    "PancreasFLError",
    "PrivacyError",
    "UsageError",
    "quote_path",
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
