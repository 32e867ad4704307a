"""Reading a regular file whole, without ever blocking on a FIFO or a device."""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["NotARegularFileError", "read_regular_file"]


class NotARegularFileError(OSError):
    """The path names a folder, a FIFO, a device or a socket, not a file."""


def read_regular_file(path, *, limit: int | None = None) -> bytes:
    """Read a regular file's content, without ever blocking on a FIFO or a device.

    Parameters
    ----------
    path : str or os.PathLike
    limit : int, optional
        Read at most ``limit + 1`` bytes (so that the caller can tell "larger than limit").

    Raises
    ------
    NotARegularFileError
        For a folder, FIFO, device or socket (opened non-blocking and refused before reading:
        a FIFO would otherwise wait for a writer forever, ``/dev/zero`` never end).
    OSError
        When the file cannot be opened or read.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    if not regular:
        os.close(fd)
        raise NotARegularFileError(errno.EINVAL, "not a regular file", os.fspath(path))
    with os.fdopen(fd, "rb") as handle:
        return handle.read() if limit is None else handle.read(limit + 1)
