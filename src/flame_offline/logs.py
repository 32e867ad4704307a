"""Log records of the offline engine.

Every ``flame_log`` call of a node becomes one :class:`LogRecord`. The tester delivers the
records live (also from child processes) to its ``log_handler`` or prints them to stderr.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["LOG_LEVELS", "LOG_TYPES", "LogRecord", "render_log_message"]

#: The log types ``flame_log`` accepts (the SDK's ``log_type`` literals).
LOG_TYPES: tuple[str, ...] = (
    "normal",
    "info",
    "notice",
    "debug",
    "warning",
    "alert",
    "emergency",
    "error",
    "critical-error",
)

#: The :mod:`logging` level of each log type (used for ``stream_log_level``).
LOG_LEVELS: dict[str, int] = {
    "debug": 10,
    "normal": 20,
    "info": 20,
    "notice": 20,
    "warning": 30,
    "error": 40,
    "alert": 40,
    "critical-error": 50,
    "emergency": 50,
}

_PRINTABLE = frozenset(string.printable)


@dataclass(frozen=True)
class LogRecord:
    """One ``flame_log`` call of one node.

    Attributes
    ----------
    node_id : str
        The logging node.
    role : str
        Its FLAME role (``'default'`` or ``'aggregator'``).
    log_type : str
        One of :data:`LOG_TYPES`.
    message : str
        The rendered message (without its trailing newline).
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
        If ``msg`` is none of these (production refuses such a log as well).
    """
    if isinstance(msg, bytes):
        text = "".join(c for c in msg.decode("utf-8", errors="replace") if c in _PRINTABLE)
    elif isinstance(msg, str):
        text = msg
    elif isinstance(msg, Iterable):
        text = sep.join(msg)
    else:
        raise TypeError(
            "flame_log accepts a str, bytes or an iterable of str "
            f"(got {type(msg).__name__}); format the value into a string first."
        )
    return text + end
