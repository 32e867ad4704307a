"""A pod's root filesystem from an image: set up inside the pod's mount namespace.

The image's root (a ``buildah mount``) is shared by every pod and must stay as built, yet a
container's root is writable. So each pod gets an overlay: the image's root below, a tmpfs of
its own above, as a container runtime does. On it go what a container has: a fresh ``/proc``
(the pod's PID namespace), the host's ``/dev`` and ``/sys`` (read-only), an empty ``/tmp``,
and the pod's ``/etc/hosts``. Everything is mounted in the pod's private mount namespace and
disappears with it.
"""

from __future__ import annotations

import os
import shutil

from flame_offline.emulator import netns

__all__ = ["enter", "prepare"]

_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8


def prepare(image_root: str, hosts: str, scratch: str, name: str) -> str:
    """Mount the pod's root (an overlay on ``image_root``) under ``scratch``; return its path."""
    layer = os.path.join(scratch, f"{name}.layer")
    root = os.path.join(scratch, f"{name}.root")
    os.makedirs(layer, exist_ok=True)
    os.makedirs(root, exist_ok=True)
    netns.mount_tmpfs(layer, size="512m")
    os.makedirs(f"{layer}/upper")
    os.makedirs(f"{layer}/work")
    netns.mount(
        "overlay",
        root,
        "overlay",
        0,
        f"lowerdir={image_root},upperdir={layer}/upper,workdir={layer}/work",
    )
    for folder in ("proc", "dev", "sys", "tmp", "etc"):
        os.makedirs(f"{root}/{folder}", exist_ok=True)
    netns.mount("proc", f"{root}/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None)
    netns.bind_mount("/dev", f"{root}/dev", readonly=False)
    netns.bind_mount("/sys", f"{root}/sys", readonly=True)
    netns.mount("tmpfs", f"{root}/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=1777,size=256m")
    if not os.path.isfile(f"{root}/etc/hosts"):
        with open(f"{root}/etc/hosts", "w", encoding="utf-8"):
            pass
    netns.bind_mount(hosts, f"{root}/etc/hosts", readonly=True)
    return root


def enter(root: str, command: list[str]) -> list[str]:
    """Return ``command`` run chrooted in ``root`` (working directory ``/``, the image's PATH)."""
    return [shutil.which("chroot") or "/usr/sbin/chroot", root, *command]
