"""Parameter checks with scikit-learn's messages, shared by every module that takes options.

Example message: ``"'tol' must be a float in (0, inf). Got -1 instead."``
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from pancreas_fl.errors import ConfigError

__all__ = ["check_bool", "check_choice", "check_int", "check_real"]


def _fail(name: str, expected: str, value: Any):
    raise ConfigError(f"{name!r} must be {expected}. Got {value!r} instead.")


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"  # numpy.bool_ too


def _bound(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:g}"


def check_int(name: str, value: Any, low: int = 1) -> int:
    """``value`` as an ``int`` in ``[low, inf)`` (bools are refused)."""
    if _is_bool(value) or not isinstance(value, numbers.Integral) or value < low:
        _fail(name, f"an int in [{low}, inf)", value)
    return int(value)


def check_real(
    name: str,
    value: Any,
    *,
    low: float = 0.0,
    high: float = math.inf,
    closed: str = "neither",
) -> float:
    """``value`` as a ``float`` in the interval from ``low`` to ``high``.

    Parameters
    ----------
    closed : {'neither', 'left', 'right', 'both'}
        Which ends belong to the interval (an infinite end is only included when closed,
        e.g. ``C`` in ``(0, inf]`` where ``inf`` means no penalty).
    """
    left, right = closed in ("left", "both"), closed in ("right", "both")
    ok = isinstance(value, numbers.Real) and not _is_bool(value) and not math.isnan(value)
    ok = ok and (value >= low if left else value > low)
    ok = ok and (value <= high if right else value < high)
    if not ok:
        interval = f"{'[' if left else '('}{_bound(low)}, {_bound(high)}{']' if right else ')'}"
        _fail(name, f"a float in {interval}", value)
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a ``bool`` (``True``/``False`` only, not 0/1)."""
    if not _is_bool(value):
        _fail(name, "a bool (True or False)", value)
    return bool(value)


def check_choice(name: str, value: Any, choices) -> Any:
    """``value`` if it is one of ``choices`` (strings, or ``None``)."""
    if not any(value is c or (isinstance(value, str) and value == c) for c in choices):
        _fail(name, f"one of {', '.join(repr(c) for c in choices)}", value)
    return value
