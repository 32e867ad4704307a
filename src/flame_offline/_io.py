"""Writing result files all or nothing."""

from __future__ import annotations

import os
import secrets

__all__ = ["write_files"]


def write_files(files: dict[str, bytes]) -> None:
    """Write every ``path: content`` of ``files``, or none of them.

    Each file is first written in full to a temporary file beside it; only when all of them
    are written are they renamed into place (``os.replace``, atomic per file). On any error
    the temporary files are removed and the error propagates, so no partial file is left and
    no target is touched. New files get ordinary permissions (0666 less the umask).
    """
    staged: list[tuple[str, str]] = []
    try:
        for path, content in files.items():
            path = os.fspath(path)
            folder = os.path.dirname(os.path.abspath(path))
            name = f".{os.path.basename(path)}.{secrets.token_hex(6)}.part"
            tmp = os.path.join(folder, name)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
