"""Linux namespaces for the node pods.

The check, the ``unshare`` command, and the set-up done inside (loopback up, private mounts).

Every node's SDK serves its API on ``0.0.0.0:8000`` and reaches its nginx at port 80, so each
node needs a network stack of its own: a new network namespace holds only a loopback
interface, which is brought up here; nothing in it can reach any other address. A new mount
namespace (private propagation) lets the pod see its own ``/etc/hosts`` and its upload at
``/opt/code/src`` without touching the host's. A new PID namespace makes the pod's first
process its init: when it ends, the kernel ends every process of the pod.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import shutil
import socket
import struct
import subprocess

__all__ = [
    "UNSHARE_FLAGS",
    "NamespaceUnavailable",
    "bind_mount",
    "check_available",
    "loopback_up",
    "mount",
    "mount_tmpfs",
    "unshare_command",
]

UNSHARE_FLAGS = ("--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc")

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384


class NamespaceUnavailable(RuntimeError):
    """Node pods cannot be isolated on this machine (the message says why, in one line)."""


def check_available(timeout: float = 15.0) -> None:
    """Raise :class:`NamespaceUnavailable` unless a pod's namespaces can be created here."""
    if not hasattr(os, "geteuid") or os.uname().sysname != "Linux":
        raise NamespaceUnavailable("needs Linux network namespaces")
    if os.geteuid() != 0:
        raise NamespaceUnavailable("needs root to create network and mount namespaces")
    unshare = shutil.which("unshare")
    if unshare is None:
        raise NamespaceUnavailable("needs util-linux 'unshare' on PATH")
    try:
        probe = subprocess.run(
            [unshare, *UNSHARE_FLAGS, "true"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise NamespaceUnavailable(f"'unshare' did not finish within {timeout:g} s") from None
    if probe.returncode != 0:
        reason = probe.stderr.decode("utf-8", "replace").strip().splitlines()
        raise NamespaceUnavailable(
            f"'unshare {' '.join(UNSHARE_FLAGS)}' failed: "
            f"{reason[-1] if reason else probe.returncode}"
        )
    if not os.path.isdir("/opt") or not os.path.isfile("/etc/hosts"):
        raise NamespaceUnavailable("needs /opt (a directory) and /etc/hosts (a file) to mount over")


def unshare_command(*argv: str) -> list[str]:
    """``argv`` as the first process of a new pod (network, mount and PID namespaces)."""
    unshare = shutil.which("unshare") or "unshare"
    return [unshare, *UNSHARE_FLAGS, "--", *argv]


# -------------------------------------------------------------------- inside the namespaces
def loopback_up() -> None:
    """Bring up ``lo`` (a new network namespace starts with it down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | _IFF_UP))


_libc = None


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None
) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        _libc.mount.argtypes = (
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
        )

    def _b(value: str | None) -> bytes | None:
        return None if value is None else os.fsencode(value)

    if _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {target}: {os.strerror(errno)}")


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None
) -> None:
    """``mount(2)``: raise ``OSError`` naming ``target`` when it fails."""
    _mount(source, target, fstype, flags, data)


def mount_tmpfs(target: str, *, size: str = "16m") -> None:
    """Mount an empty, private tmpfs at ``target`` (hides what the host has there)."""
    _mount("tmpfs", target, "tmpfs", _MS_NOSUID | _MS_NODEV, f"mode=755,size={size}")


def bind_mount(source: str, target: str, *, readonly: bool) -> None:
    """Bind ``source`` (a file or folder) over ``target``, optionally read-only."""
    _mount(source, target, None, _MS_BIND | _MS_REC, None)
    if readonly:
        _mount(None, target, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY, None)
