"""Parameter constraints with scikit-learn's messages: one wording per check.

A constraint checks a value and describes itself, in the spirit of scikit-learn's
``_parameter_constraints``. The description serves both the error message and the
documentation, so the two cannot drift apart. Example message:
``"'tol' must be a float in (0, inf). Got -1 instead."``

The ``check_*`` functions are shorthands for the modules whose arguments are not analysis
parameters (the sample generator, the solver, the disclosure guard).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from pancreas_fl.errors import ConfigError

__all__ = [
    "Boolean",
    "ColumnNames",
    "ColumnRef",
    "FillValues",
    "Interval",
    "NonEmptyStr",
    "Options",
    "check_bool",
    "check_choice",
    "check_int",
    "check_real",
]


def _fail(name: str, expected: str, value: Any):
    raise ConfigError(f"{name!r} must be {expected}. Got {value!r} instead.")


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"  # numpy.bool_ too


def _bound(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:g}"


@dataclass(frozen=True)
class Interval:
    """An ``int`` or ``float`` between ``low`` and ``high``.

    Parameters
    ----------
    kind : {int, float}
        The type; bools are refused for both, NaN for floats.
    low, high : float
        The ends.
    closed : {'neither', 'left', 'right', 'both'}
        Which ends belong to the interval (an infinite end only when closed, e.g. ``C`` in
        ``(0, inf]`` where ``inf`` means no penalty).
    """

    kind: type
    low: float
    high: float = math.inf
    closed: str = "neither"

    def describe(self) -> str:
        """For example ``"a float in (0, inf]"``."""
        left, right = self.closed in ("left", "both"), self.closed in ("right", "both")
        interval = f"{'[' if left else '('}{_bound(self.low)}, {_bound(self.high)}"
        interval += "]" if right else ")"
        return f"{'an int' if self.kind is int else 'a float'} in {interval}"

    def check(self, name: str, value: Any):
        """Return ``value`` as ``kind``, or raise :class:`ConfigError`."""
        left, right = self.closed in ("left", "both"), self.closed in ("right", "both")
        number = numbers.Integral if self.kind is int else numbers.Real
        ok = isinstance(value, number) and not _is_bool(value)
        ok = ok and not (self.kind is float and math.isnan(value))
        ok = ok and (value >= self.low if left else value > self.low)
        ok = ok and (value <= self.high if right else value < self.high)
        if not ok:
            _fail(name, self.describe(), value)
        return self.kind(value)


@dataclass(frozen=True)
class Options:
    """One of a fixed set of strings (or ``None``, where it is one of the choices)."""

    choices: tuple

    def describe(self) -> str:
        """For example ``"one of 'auto', 'newton', 'lbfgs'"``."""
        return f"one of {', '.join(repr(c) for c in self.choices)}"

    def check(self, name: str, value: Any) -> str:
        """Return ``value``, or raise :class:`ConfigError`."""
        if not any(value is c or (isinstance(value, str) and value == c) for c in self.choices):
            _fail(name, self.describe(), value)
        return value


@dataclass(frozen=True)
class Boolean:
    """``True`` or ``False`` (not 0/1)."""

    def describe(self) -> str:
        """Return ``"a bool (True or False)"``."""
        return "a bool (True or False)"

    def check(self, name: str, value: Any) -> bool:
        """Return ``value`` as ``bool``, or raise :class:`ConfigError`."""
        if not _is_bool(value):
            _fail(name, self.describe(), value)
        return bool(value)


@dataclass(frozen=True)
class NonEmptyStr:
    """A non-empty string; ``meaning`` says what it names (e.g. "the s3 object key")."""

    meaning: str

    def describe(self) -> str:
        """For example ``"a non-empty str (the s3 object key)"``."""
        return f"a non-empty str ({self.meaning})"

    def check(self, name: str, value: Any) -> str:
        """Return ``value``, or raise :class:`ConfigError`."""
        if not isinstance(value, str) or not value:
            _fail(name, self.describe(), value)
        return value


@dataclass(frozen=True)
class ColumnRef:
    """A column by name (``str``) or position (``int``, negative from the end), or ``None``."""

    def describe(self) -> str:
        """Return ``"a column name (str), a column position (int) or None"``."""
        return "a column name (str), a column position (int) or None"

    def check(self, name: str, value: Any):
        """Return ``value`` (an int position as ``int``), or raise :class:`ConfigError`."""
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, numbers.Integral) and not _is_bool(value):
            return int(value)
        _fail(name, self.describe(), value)
        return None  # unreachable: _fail raises


@dataclass(frozen=True)
class ColumnNames:
    """A non-empty list of distinct column names (non-empty ``str``), or ``None``."""

    def describe(self) -> str:
        """Return ``"a non-empty list of distinct column names (str) or None"``."""
        return "a non-empty list of distinct column names (str) or None"

    def check(self, name: str, value: Any):
        """Return ``value`` as a ``tuple`` of ``str`` (or ``None``), else raise ``ConfigError``."""
        if value is None:
            return None
        ok = isinstance(value, (list, tuple)) and len(value) > 0
        ok = ok and all(isinstance(item, str) and item.strip() for item in value)
        if not ok or len(set(value)) != len(value):
            _fail(name, self.describe(), value)
        return tuple(value)


@dataclass(frozen=True)
class FillValues:
    """A dict mapping column names to the value a blank stands for, or ``None``.

    A value is a finite number (``int`` or ``float``, not ``bool``) or a non-empty ``str``
    (a level of a categorical column).
    """

    def describe(self) -> str:
        """Describe what a valid value is."""
        return "a dict mapping column names (str) to a finite number or a non-empty str, or None"

    def check(self, name: str, value: Any):
        """Return a copy of ``value`` (or ``None``), or raise :class:`ConfigError`."""
        if value is None:
            return None
        if not isinstance(value, dict) or not value:
            _fail(name, self.describe(), value)
        for column, fill in value.items():
            number = isinstance(fill, numbers.Real) and not _is_bool(fill)
            ok = isinstance(column, str) and bool(column.strip())
            ok = ok and (
                (number and math.isfinite(fill)) or (isinstance(fill, str) and fill.strip())
            )
            if not ok:
                _fail(name, self.describe(), value)
        return {
            column: (
                fill if isinstance(fill, str) else fill.item() if hasattr(fill, "item") else fill
            )
            for column, fill in value.items()
        }


def check_int(name: str, value: Any, low: int = 1) -> int:
    """``value`` as an ``int`` in ``[low, inf)`` (bools are refused)."""
    return Interval(int, low, closed="left").check(name, value)


def check_real(
    name: str,
    value: Any,
    *,
    low: float = 0.0,
    high: float = math.inf,
    closed: str = "neither",
) -> float:
    """``value`` as a ``float`` in the interval from ``low`` to ``high`` (see :class:`Interval`)."""
    return Interval(float, low, high, closed).check(name, value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a ``bool`` (``True``/``False`` only, not 0/1)."""
    return Boolean().check(name, value)


def check_choice(name: str, value: Any, choices) -> Any:
    """``value`` if it is one of ``choices`` (strings, or ``None``)."""
    return Options(tuple(choices)).check(name, value)
