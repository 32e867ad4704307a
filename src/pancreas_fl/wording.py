"""How a one-line message lists column names, object keys and per-column counts.

At most :data:`MAX_LISTED` are shown, then how many more: a message stays one readable line
however wide the table. Names only, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["MAX_LISTED", "listed", "listed_counts"]

MAX_LISTED = 20
"""Names (or counts) listed in one message."""


def listed(names: Sequence[str], *, kind: str = "column") -> str:
    """Format names as ``'a', 'b'``, at most :data:`MAX_LISTED`, then ``and N more {kind}s``."""
    shown = ", ".join(repr(str(n)) for n in names[:MAX_LISTED])
    if len(names) > MAX_LISTED:
        shown += f" and {len(names) - MAX_LISTED} more {kind}s"
    return shown


def listed_counts(counts: Mapping[str, int]) -> str:
    """Format per-column counts as ``'a' (2), 'b' (1)``, at most :data:`MAX_LISTED` columns."""
    items = list(counts.items())
    detail = ", ".join(f"{str(name)!r} ({n})" for name, n in items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        detail += f" and {len(items) - MAX_LISTED} more column(s)"
    return detail
