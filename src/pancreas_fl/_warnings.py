"""Silencing one expected warning, exactly where it is expected, also under threads.

``warnings.catch_warnings`` saves and restores the process-wide filter list. When two threads
use it at once (the offline engine's thread isolation, or the SDK's ``StarModelTester``, runs
every hospital in a thread of one process), one thread's exit can restore a list that drops
the other's filter while that thread is still inside its block, and the expected warning
escapes. Every use in pancreas-fl therefore goes through :func:`ignoring`, which serializes
the blocks with one lock.
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager

__all__ = ["ignoring"]

_LOCK = threading.RLock()


@contextmanager
def ignoring(*categories: type[Warning]):
    """Ignore warnings of exactly these categories inside the ``with`` block.

    Parameters
    ----------
    *categories : Warning subclasses
        For example scikit-learn's ``ConvergenceWarning`` around a fit that stops after a
        fixed number of iterations on purpose.
    """
    with _LOCK, warnings.catch_warnings():
        for category in categories:
            warnings.filterwarnings("ignore", category=category)
        yield
