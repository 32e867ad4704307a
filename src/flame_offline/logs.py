"""Log records of the offline engine, with production's log types.

Every ``flame_log`` call of a node that production would submit to the FLAME Hub becomes one
:class:`LogRecord`. The tester delivers the records live (also from node processes) to its
``log_handler``, or prints them to stderr.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["LOG_LEVELS", "LOG_TYPES", "LogRecord", "check_log_type", "render_log_message"]

#: The log types a production node accepts (flamesdk 0.5/0.6, ``LogTypeLiteral``).
LOG_TYPES: tuple[str, ...] = ("debug", "info", "notice", "warn", "alert", "emerg", "error", "crit")

#: The :mod:`logging` level of each log type, as production registers them.
LOG_LEVELS: dict[str, int] = {
    "debug": 10,
    "info": 20,
    "notice": 25,
    "warn": 30,
    "alert": 33,
    "emerg": 36,
    "error": 40,
    "crit": 50,
}

#: Spellings of the SDK's local mock (and common guesses) and their production log type.
_PRODUCTION_SPELLING: dict[str, str] = {
    "normal": "info",
    "warning": "warn",
    "emergency": "emerg",
    "critical-error": "crit",
    "critical": "crit",
}

_PRINTABLE = frozenset(string.printable)


def check_log_type(log_type: Any) -> None:
    """Raise ``ValueError`` unless ``log_type`` is one of production's :data:`LOG_TYPES`.

    Production marks a node that logs with any other type failed; the message names the
    production spelling when there is one (``'warning'`` → ``'warn'``).
    """
    if log_type in LOG_TYPES:
        return
    spelling = _PRODUCTION_SPELLING.get(log_type) if isinstance(log_type, str) else None
    advice = (
        f"use {spelling!r}"
        if spelling is not None
        else f"use one of {', '.join(repr(t) for t in LOG_TYPES)}"
    )
    raise ValueError(
        f"log_type {log_type!r} is not a production FLAME log type; {advice} "
        "(a production node that logs with another type is marked failed)."
    )


@dataclass(frozen=True)
class LogRecord:
    """One ``flame_log`` call of one node, as production submits it.

    Attributes
    ----------
    node_id : str
        The logging node.
    role : str
        Its FLAME role (``'default'`` or ``'aggregator'``).
    log_type : str
        One of :data:`LOG_TYPES`.
    message : str
        The rendered message (``msg`` joined with ``sep``, plus ``end``; a held message
        prepended when the call has ``append=True``).
    created : float
        ``time.time()`` when the node logged it.
    """

    node_id: str
    role: str
    log_type: str
    message: str
    created: float

    @property
    def level(self) -> int:
        """The :mod:`logging` level of the record's log type."""
        return LOG_LEVELS[self.log_type]


def render_log_message(msg: str | bytes | Iterable[str], sep: str, end: str) -> str:
    """Render ``msg`` the way production's logger does.

    ``bytes`` are decoded as UTF-8 (invalid bytes replaced) and reduced to printable
    characters, a ``str`` is kept, any other iterable of ``str`` is joined with ``sep``;
    ``end`` is appended.

    Raises
    ------
    TypeError
        If ``msg`` is none of these (production marks such a node failed).
    """
    if isinstance(msg, bytes):
        text = "".join(c for c in msg.decode("utf-8", errors="replace") if c in _PRINTABLE)
    elif isinstance(msg, str):
        text = msg
    elif isinstance(msg, Iterable):
        parts = list(msg)
        if not all(isinstance(part, str) for part in parts):
            raise TypeError(
                "flame_log joins an iterable msg with sep, so every element must be a str "
                f"(got {', '.join(sorted({type(p).__name__ for p in parts}))}); format the "
                "values into strings first."
            )
        text = sep.join(parts)
    else:
        raise TypeError(
            "flame_log accepts a str, bytes or an iterable of str "
            f"(got {type(msg).__name__}); format the value into a string first."
        )
    return text + end
