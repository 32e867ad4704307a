"""Writing files so that a failure never leaves a partial one behind, nor only some of them."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

from pancreas_fl.errors import UsageError, quote_path

__all__ = [
    "atomic_write",
    "check_outputs",
    "check_writable",
    "one_line",
    "same_file",
    "write_all",
    "write_outputs",
]


def _temporary(path: str, suffix: str) -> str:
    """Pick a fresh hidden name in ``path``'s folder (same file system, so renames are atomic)."""
    directory = os.path.dirname(os.path.abspath(path))
    return os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.{suffix}")


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _stage(path: str, data: bytes) -> str:
    """Write ``data`` to a new temporary file beside ``path``; return its name.

    It gets the permissions of any new file (0666 less the umask), unlike
    ``tempfile.mkstemp``'s owner-only 0600. An ``OSError`` names ``path``, the file the caller
    asked for, never the temporary one.
    """
    tmp = _temporary(path, "part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise OSError(exc.errno, exc.strerror, path) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return tmp


def check_writable(path) -> None:
    """Check, without touching ``path``, that a file can be written there.

    Creates and removes an empty temporary file in the target folder: the one test that holds
    for every reason a write can fail (permissions, also for root on a read-only mount, a
    missing folder, a full inode table).

    Raises
    ------
    OSError
        With ``filename`` set to ``path``. ``IsADirectoryError`` when ``path`` is a folder.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    os.unlink(_stage(path, b""))


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder.

    The file appears complete (``os.replace``) or not at all; on any error the temporary file
    is removed and the error propagates (an ``OSError`` names ``path``).
    """
    write_all({path: data})


def write_all(files) -> None:
    """Write several files, each complete, and all of them or none.

    Parameters
    ----------
    files : dict of path to bytes
        What to write where.

    Notes
    -----
    First every file is written to a temporary file beside its target; a failure there (a
    full disk, a folder that is not writable) removes them all and changes nothing. Then each
    temporary file replaces its target. Should a replacement fail, the targets already
    replaced get their previous content back (kept as a hard link, or renamed aside where the
    file system has no hard links) and new ones are removed. An ``OSError`` names the target
    path, never a temporary file.
    """
    targets = [os.fspath(path) for path in files]
    staged: list[tuple[str, str]] = []
    try:
        for path, data in zip(targets, files.values(), strict=True):
            staged.append((path, _stage(path, data)))
    except BaseException:
        for _, tmp in staged:
            _unlink_quietly(tmp)
        raise
    committed: list[tuple[str, str | None]] = []  # (target, backup of its previous content)
    try:
        for path, tmp in staged:
            backup = _keep_previous(path)
            try:
                os.replace(tmp, path)
            except OSError as exc:
                if backup is not None:
                    os.replace(backup, path)
                raise OSError(exc.errno, exc.strerror, path) from None
            committed.append((path, backup))
    except BaseException:
        for path, backup in reversed(committed):
            if backup is None:
                _unlink_quietly(path)
            else:
                os.replace(backup, path)
        for _, tmp in staged:
            if os.path.lexists(tmp):
                _unlink_quietly(tmp)
        raise
    for _, backup in committed:
        if backup is not None:
            _unlink_quietly(backup)


def _keep_previous(path: str) -> str | None:
    """Keep ``path``'s current content under a temporary name (``None``: nothing to keep)."""
    if not os.path.lexists(path):
        return None
    backup = _temporary(path, "old")
    try:
        os.link(path, backup, follow_symlinks=False)
    except OSError:
        os.replace(path, backup)  # no hard links here: move it aside
    return backup


# ---------------------------------------------------------------------- what the command shows
def one_line(text: str) -> str:
    """Escape line breaks and other control characters, so that an error is one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def same_file(a, b) -> bool:
    """Whether two paths name the same file: the same resolved path, or the same inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def check_outputs(outputs: dict, inputs: list) -> None:
    """Check every output location before anything runs.

    Parameters
    ----------
    outputs : dict of str to Path or None
        Option (e.g. ``'--out'``) -> the path given (``None``: not asked for).
    inputs : list of (str, Path)
        What each input is (for the message) and its path.

    Raises
    ------
    UsageError
        When an output is an input or another output (after resolving links), is a folder,
        or cannot be written (tried, with an empty temporary file beside it).
    """
    chosen = [(option, Path(path)) for option, path in outputs.items() if path is not None]
    for i, (option, path) in enumerate(chosen):
        shown = f"{option} {quote_path(path)}"
        for other_option, other in chosen[:i]:
            if same_file(path, other):
                raise UsageError(f"{shown}: is also {other_option}; give each output its own file.")
        for what, source in inputs:
            if same_file(path, source):
                raise UsageError(
                    f"{shown}: is {what}; writing there would destroy it. Give another file name."
                )
        try:
            check_writable(path)
        except IsADirectoryError:
            raise UsageError(f"{shown}: is a directory; give a file name.") from None
        except FileNotFoundError as exc:
            if path.parent.is_dir():  # e.g. /proc, where no file can be created
                raise UsageError(f"{shown}: cannot write there ({exc.strerror}).") from None
            raise UsageError(
                f"{shown}: the folder {quote_path(path.parent)} does not exist."
            ) from None
        except OSError as exc:
            raise UsageError(f"{shown}: cannot write there ({exc.strerror}).") from None


def write_outputs(files: dict, options: dict) -> None:
    """Write all outputs or none (:func:`write_all`).

    Parameters
    ----------
    files : dict of path to bytes
    options : dict of str to str
        The path as given (``os.fspath``) -> the option that named it, for the message.

    Raises
    ------
    UsageError
        Naming the option and the path the user gave (never a temporary file).
    """
    try:
        write_all(files)
    except OSError as exc:
        option = options.get(exc.filename, "")
        shown = f"{option} {quote_path(exc.filename)}".strip() if exc.filename else option
        raise UsageError(
            f"{shown}: cannot write ({exc.strerror or exc}); no output was written."
        ) from None
