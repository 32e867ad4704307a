"""Writing files so that a failure never leaves a partial one behind."""

from __future__ import annotations

import os
import secrets

__all__ = ["atomic_write"]


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder.

    The file appears complete (``os.replace``) or not at all; on any error the temporary file
    is removed and the error propagates. It gets the permissions of any new file (0666 less
    the umask), unlike ``tempfile.mkstemp``'s owner-only 0600.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
