"""A container image as the nodes' root filesystem: what a pod runs when given ``--image``.

FLAME runs each analysis as a container of the image the Hub built. Here the image's root
filesystem comes from ``buildah mount`` (no container runtime: each pod's sandbox chroots into
it, inside the pod's own namespaces, see :mod:`flame_offline.emulator.sandbox`), and its
configuration (environment, entrypoint) from ``buildah inspect``. The analysis then runs
with the image's python, the image's ``/opt/code`` and working directory ``/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CODE_DIR", "ImageRoot", "ImageUnavailable", "mounted", "parse_env"]

CODE_DIR = "opt/code/src"  # under the root
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageUnavailable(ValueError):
    """The image cannot serve as the nodes' root (the message is one line for the user)."""


def parse_env(entries: list[str] | None) -> dict[str, str]:
    """Return an image configuration's ``Env`` (``["KEY=value", ...]``) as a dict."""
    env = {}
    for entry in entries or ():
        key, sep, value = entry.partition("=")
        if sep and key:
            env[key] = value
    return env


@dataclass(frozen=True)
class ImageRoot:
    """An image's root filesystem on this machine, with what its configuration says.

    Parameters
    ----------
    name : str
        The image (for reports).
    root : Path
        Its root filesystem (a ``buildah mount`` of a working container).
    env : dict
        The image's environment (``ENV``); ``PATH`` among it.
    entrypoint : list of str
        The image's ``ENTRYPOINT`` followed by its ``CMD`` (empty when it has none).
    """

    name: str
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        """Return the image's ``PATH`` (the usual one when the image sets none)."""
        return self.env.get("PATH", _DEFAULT_PATH)

    def which(self, program: str) -> str | None:
        """Return where ``program`` is inside the image (as the image sees it), or ``None``."""
        for folder in self.path.split(":"):
            inside = f"{folder.rstrip('/')}/{program}"
            if folder.startswith("/") and os.path.lexists(self.root / inside.lstrip("/")):
                return inside
        return None

    def command(self, entrypoint: str) -> list[str]:
        """Return the analysis command: the entrypoint of the image, else ``python -u`` on it."""
        return list(self.entrypoint) or ["python", "-u", f"/{CODE_DIR}/{entrypoint}"]

    def uploaded(self) -> list[str]:
        """Return the names in the image's ``/opt/code/src`` (what the Hub copied there)."""
        folder = self.root / CODE_DIR
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def check(self, entrypoint: str) -> None:
        """Raise :class:`ImageUnavailable` unless the image holds a python and the entrypoint."""
        if self.which("python") is None:
            raise ImageUnavailable(f"image {self.name}: no 'python' on its PATH ({self.path})")
        script = next((a for a in self.command(entrypoint) if a.endswith(".py")), None)
        if script is None or not (self.root / script.lstrip("/")).is_file():
            raise ImageUnavailable(
                f"image {self.name}: its entrypoint {' '.join(self.command(entrypoint))!r} names "
                f"no file in the image (/{CODE_DIR} holds "
                f"{', '.join(self.uploaded()) or 'nothing'})"
            )


def _buildah(*argv: str, what: str) -> str:
    try:
        done = subprocess.run(
            ["buildah", *argv], capture_output=True, text=True, timeout=300, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageUnavailable(f"{what}: {exc}") from None
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise ImageUnavailable(f"{what}: {lines[-1] if lines else done.returncode}")
    return done.stdout.strip()


@contextlib.contextmanager
def mounted(name: str) -> Iterator[ImageRoot]:
    """Mount the local image ``name`` (a fresh working container) for the run; then remove it."""
    if shutil.which("buildah") is None:
        raise ImageUnavailable(
            f"--image {name}: needs buildah to mount the image (apt-get install buildah)"
        )
    inspected = _buildah(
        "inspect", "--type", "image", name,
        what=f"--image {name}: no such local image (build it with 'make image')",
    )  # fmt: skip
    config = (json.loads(inspected or "{}").get("OCIv1") or {}).get("config") or {}
    container = _buildah("from", "--pull-never", "--quiet", name, what=f"--image {name}")
    try:
        root = Path(_buildah("mount", container, what=f"--image {name}: buildah mount"))
        yield ImageRoot(
            name=name,
            root=root,
            env=parse_env(config.get("Env")),
            entrypoint=[*(config.get("Entrypoint") or ()), *(config.get("Cmd") or ())],
        )
    finally:
        subprocess.run(["buildah", "umount", container], capture_output=True, check=False)
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
