"""Unique ids for messages and stored data, without a system call per id.

Production draws a fresh ``uuid.uuid4()`` (16 bytes of ``os.urandom``) for every message id
and its storage service does the same for every stored object. Offline, ids only need to be
unique within a run and look the same, so each :class:`FlameCore` draws entropy once and then
counts: a run of 300 rounds with 4 analyzers needs 3,000 ids, and a system call each cost
about as much as the rest of the engine's work per round.
"""

from __future__ import annotations

import itertools
import uuid

__all__ = ["UniqueIds"]

#: Hex digits of an id that come from the counter (the UUID's last group: 48 bits).
_COUNTER_DIGITS = 12


class UniqueIds:
    """A source of version-4 UUID strings, unique per source and random across sources.

    The first 20 hex digits (74 random bits besides the version and variant digits) are drawn
    from ``os.urandom`` once, when the source is created (so two node processes forked from one
    tester never share them); the last 12 count the ids handed out.

    Examples
    --------
    >>> ids = UniqueIds()
    >>> first, second = ids(), ids()
    >>> first != second and uuid.UUID(first).version == 4
    True
    """

    __slots__ = ("_count", "_prefix")

    def __init__(self) -> None:
        random = uuid.uuid4().hex
        self._prefix = f"{random[:8]}-{random[8:12]}-{random[12:16]}-{random[16:20]}-"
        self._count = itertools.count()

    def __call__(self) -> str:
        """Return the next id: ``xxxxxxxx-xxxx-4xxx-yxxx-`` then 12 hex digits of the counter."""
        return f"{self._prefix}{next(self._count) & 0xFFFFFFFFFFFF:0{_COUNTER_DIGITS}x}"
