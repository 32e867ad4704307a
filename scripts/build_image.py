"""``make image``: build the project's Dockerfile into an image, offline but for PyPI and Debian.

As root, with buildah (``--isolation chroot``; no container runtime, no daemon):

1. installs podman, buildah and mmdebstrap from Debian's packages when they are missing;
2. takes ``python:3.10`` as the base when it is present or can be pulled; otherwise builds (once)
   a stand-in the way the official image is made: a Debian bookworm root filesystem
   (``mmdebstrap --variant=minbase``) with a CPython 3.10 in ``/usr/local`` (this machine's,
   from ``--standin-python``), and tags it ``localhost/python-standin:3.10``;
3. builds the Dockerfile on the Hub upload (what ``make hub`` assembled), with the FLAME SDK
   from its git release tags, or from a folder of wheels (``--wheels``), through the
   Dockerfile's build argument ``FLAME_SDK_SOURCE``;
4. prints the image's size and its Python, numpy, pandas, scikit-learn and SDK versions.

Each failure is one line on stderr and exit status 1. Only the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flame_sdk

OFFICIAL_BASE = "docker.io/library/python:3.10"
STANDIN_BASE = "localhost/python-standin:3.10"
TOOLS = {"buildah": "buildah", "podman": "podman", "mmdebstrap": "mmdebstrap"}
# What python:3.10's CPython links against (its lib-dynload modules), plus what pip needs.
STANDIN_PACKAGES = (
    "ca-certificates",
    "netbase",
    "tzdata",
    "libbz2-1.0",
    "libexpat1",
    "libffi8",
    "libgdbm6",
    "libgdbm-compat4",
    "liblzma5",
    "libncursesw6",
    "libreadline8",
    "libsqlite3-0",
    "libssl3",
    "libtirpc3",
    "libuuid1",
    "zlib1g",
    "git",
)
_VERSIONS = """\
import importlib.metadata as m, json, platform
def v(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return None
print(json.dumps({"python": platform.python_version(),
    **{n: v(n) for n in ("numpy", "pandas", "scikit-learn", "flame", "flamesdk")}}))
"""


class BuildError(RuntimeError):
    """The image cannot be built here (the message is the one line to show)."""


def _run(argv, *, what: str, timeout: float | None = None, **kwargs) -> str:
    """Run ``argv``; return its stdout, or raise :class:`BuildError` with its last error line."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
    except subprocess.TimeoutExpired:
        raise BuildError(f"{what}: no answer within {timeout:g} s") from None
    except OSError as exc:
        raise BuildError(f"{what}: {exc.strerror}") from None
    if done.returncode != 0:
        raise BuildError(f"{what}: {last_line(done.stderr) or f'exit status {done.returncode}'}")
    return done.stdout


def last_line(text: str) -> str:
    """Return the last non-empty line of ``text`` (stripped): where a tool says why it failed."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# ------------------------------------------------------------------------------ the checks
def check_root(euid: int | None = None) -> None:
    """Raise unless running as root (buildah's chroot isolation and mmdebstrap need it)."""
    if (os.geteuid() if euid is None else euid) != 0:
        raise BuildError("needs root (buildah builds with chroot isolation): run 'sudo make image'")


def check_user_namespaces(runner=subprocess.run) -> None:
    """Raise unless this machine can create user namespaces (buildah's build steps use them)."""
    try:
        done = runner(
            ["unshare", "--user", "--map-root-user", "--mount", "true"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"cannot create user namespaces here ({exc})") from None
    if done.returncode != 0:
        raise BuildError(
            "this machine allows no user namespaces, which buildah needs "
            f"('unshare --user': {last_line(done.stderr) or done.returncode}); "
            "enable them (sysctl user.max_user_namespaces=15000) or build elsewhere"
        )


def missing_tools(which=shutil.which) -> list[str]:
    """Return the Debian packages of the tools that are not on PATH."""
    return [package for tool, package in TOOLS.items() if which(tool) is None]


def install_tools(packages: list[str], runner=subprocess.run) -> None:
    """``apt-get install`` the packages; raise with one line when Debian cannot be reached."""
    if shutil.which("apt-get") is None:
        raise BuildError(f"needs {', '.join(packages)}, and there is no apt-get to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        done = runner(argv, capture_output=True, text=True, env=env, check=False)
        # apt-get update fails softly: its warnings say a source could not be fetched
        fetch_failed = "Failed to fetch" in done.stderr or "Could not resolve" in done.stderr
        if done.returncode != 0 or (argv[1] == "update" and fetch_failed):
            raise BuildError(
                f"cannot install {', '.join(packages)}: Debian's packages are not reachable "
                f"({last_line(done.stderr) or done.returncode}); check the network or apt's "
                "sources, or install them yourself"
            )


# ---------------------------------------------------------------------------- the base image
def image_exists(name: str) -> bool:
    """Whether the local store has the image ``name``."""
    done = subprocess.run(
        ["buildah", "inspect", "--type", "image", name], capture_output=True, check=False
    )
    return done.returncode == 0


def try_pull(name: str) -> str | None:
    """Pull ``name``; return ``None`` when it worked, else why not (one line)."""
    done = subprocess.run(
        ["buildah", "pull", "--retry", "0", "--quiet", name],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode == 0:
        return None
    return pull_failure(done.stderr) or f"exit status {done.returncode}"


def pull_failure(stderr: str) -> str:
    """Return why a pull failed, in a few words (the registry's host when it is unreachable)."""
    reason = last_line(stderr)
    if "no such host" in reason or "dial tcp" in reason or "connection refused" in reason:
        host = re.search(r"(?:lookup|dial tcp) ([A-Za-z][\w.-]+)", reason)
        return f"{host.group(1) if host else 'the registry'} is not reachable"
    return reason


def standin_prefix(python: str) -> Path:
    """Return the installation prefix of ``python``, a CPython 3.10 (not a venv) to copy."""
    if not python:
        raise BuildError(
            "python:3.10 cannot be had, and there is no CPython 3.10 here to build its stand-in "
            "from: install one (e.g. pyenv install 3.10) or set OLDEST_PYTHON"
        )
    info = _run(
        [
            python,
            "-c",
            "import sys, json; print(json.dumps([sys.version_info[:2], sys.base_prefix]))",
        ],
        what=f"--standin-python {python}",
    )
    version, prefix = json.loads(info)
    if version != [3, 10]:
        raise BuildError(f"--standin-python {python}: Python {version[0]}.{version[1]}, not 3.10")
    prefix = Path(prefix)
    if (
        not (prefix / "bin" / "python3.10").is_file()
        or not (prefix / "lib" / "python3.10").is_dir()
    ):
        raise BuildError(f"--standin-python {python}: {prefix} is not a whole CPython installation")
    return prefix


def fix_prefix(root: Path, old_prefix: Path) -> int:
    """Point the copied installation's scripts at ``/usr/local``; return how many files changed.

    The pip scripts' shebangs name the interpreter they were installed with; the build
    configuration (``_sysconfigdata``, ``pkg-config`` files, ``python3.10-config``) names its
    prefix. Both must name ``/usr/local``, where the stand-in has the interpreter.
    """
    local = root / "usr" / "local"
    old = str(old_prefix)
    changed = 0
    candidates = [p for p in (local / "bin").iterdir() if p.is_file() and not p.is_symlink()]
    candidates += list((local / "lib").glob("python3.10/_sysconfigdata_*.py"))
    candidates += list((local / "lib" / "pkgconfig").glob("*.pc"))
    for path in candidates:
        data = path.read_bytes()
        if old.encode() not in data[:65536] or b"\0" in data[:4096]:
            continue  # a binary (python3.10 itself) or unrelated
        text = data.decode("utf-8")
        if text.startswith("#!"):
            first, _, rest = text.partition("\n")
            if old in first:
                text = "#!/usr/local/bin/python3.10\n" + rest
        path.write_text(text.replace(old, "/usr/local"), encoding="utf-8")
        changed += 1
    return changed


def build_standin(python: str, work: Path) -> str:
    """Build the stand-in for ``python:3.10`` and tag it; return a description (one phrase)."""
    prefix = standin_prefix(python)
    rootfs = work / "standin-rootfs"
    if rootfs.exists():
        shutil.rmtree(rootfs)
    _run(
        [
            "mmdebstrap",
            "--quiet",
            "--variant=minbase",
            f"--include={','.join(STANDIN_PACKAGES)}",
            "bookworm",
            str(rootfs),
        ],
        what="mmdebstrap (Debian bookworm root filesystem)",
    )
    local = rootfs / "usr" / "local"
    for part in ("bin", "include", "lib", "share"):
        if (prefix / part).is_dir():
            shutil.copytree(prefix / part, local / part, symlinks=True, dirs_exist_ok=True)
    fix_prefix(rootfs, prefix)
    _run(["chroot", str(rootfs), "ldconfig"], what="ldconfig in the stand-in")
    version = _run(
        [
            "chroot",
            str(rootfs),
            "/usr/local/bin/python3.10",
            "-c",
            "import platform, ssl, "
            "sqlite3, zlib, bz2, lzma, ctypes; print(platform.python_version())",
        ],
        what="the stand-in's python (missing libraries?)",
    ).strip()
    container = _run(["buildah", "from", "scratch"], what="buildah from scratch").strip()
    try:
        mount = Path(_run(["buildah", "mount", container], what="buildah mount").strip())
        _run(["cp", "-a", f"{rootfs}/.", f"{mount}/"], what="copying the stand-in's root")
        _run(
            [
                "buildah",
                "config",
                "--env",
                "PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--env",
                "LANG=C.UTF-8",
                "--env",
                f"PYTHON_VERSION={version}",
                "--cmd",
                "python3",
                "--label",
                f"org.opencontainers.image.description=stand-in for python:3.10: Debian "
                f"bookworm minbase, CPython {version} from {prefix}",
                container,
            ],
            what="buildah config",
        )
        _run(["buildah", "commit", "--quiet", container, STANDIN_BASE], what="buildah commit")
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
        shutil.rmtree(rootfs, ignore_errors=True)
    return f"CPython {version} from {prefix}"


def choose_base(python: str, work: Path, *, rebuild: bool = False) -> str:
    """Return the base image to build on, printing one line that says which and why."""
    if image_exists(OFFICIAL_BASE):
        print(f"make image: base {OFFICIAL_BASE} (present locally)")
        return OFFICIAL_BASE
    why = try_pull(OFFICIAL_BASE)
    if why is None:
        print(f"make image: base {OFFICIAL_BASE} (pulled)")
        return OFFICIAL_BASE
    if image_exists(STANDIN_BASE) and not rebuild:
        print(
            f"make image: base {STANDIN_BASE}, the stand-in for python:3.10 built earlier "
            f"(python:3.10: {why}; make image STANDIN=rebuild builds it again)"
        )
        return STANDIN_BASE
    started = time.monotonic()
    what = build_standin(python, work)
    print(
        f"make image: base {STANDIN_BASE}, a stand-in for python:3.10 (python:3.10: {why}): "
        f"Debian bookworm minbase + {what}, built in {time.monotonic() - started:.0f} s"
    )
    return STANDIN_BASE


# --------------------------------------------------------------------------------- the build
def build_args(base: str, source: flame_sdk.SdkSource) -> list[str]:
    """Return the Dockerfile's build arguments for ``base`` and the SDK ``source``.

    The git route installs ``flame`` as FLAME's images do, with the ``flamesdk`` its release
    pins (0.5.0), unless another core release is asked for.
    """
    args = {"BASE_IMAGE": base, "FLAME_SDK_SOURCE": source.route}
    if source.route == "wheels" or source.flamesdk != flame_sdk.FLAMESDK_RELEASES[0]:
        args["FLAMESDK"] = source.flamesdk  # else the git route installs what flame pins
    return [f"--build-arg={key}={value}" for key, value in args.items()]


def host_pip_volumes(work: Path, environ=os.environ) -> list[str]:
    """Volumes that give the build's pip the host's CA bundle (an intercepting proxy's CA).

    Only when the host's pip is told to use a bundle (``PIP_CERT`` or ``cert`` in
    ``/etc/pip.conf``); mounted for the ``RUN`` steps only, nothing of it stays in the image.
    """
    cert = environ.get("PIP_CERT")
    if not cert and Path("/etc/pip.conf").is_file():
        found = re.search(r"^\s*cert\s*=\s*(\S+)", Path("/etc/pip.conf").read_text(), re.M)
        cert = found.group(1) if found else None
    if not cert or not Path(cert).is_file():
        return []
    conf = work / "pip.conf"
    conf.write_text("[global]\ncert = /run/host-ca.crt\n", encoding="utf-8")
    return [
        f"--volume={Path(cert).resolve()}:/run/host-ca.crt:ro",
        f"--volume={conf}:/etc/pip.conf:ro",
    ]


def stage_context(upload: Path, source: flame_sdk.SdkSource, context: Path) -> None:
    """Stage the build context: the Hub upload as ``src/``, the SDK's wheels when used."""
    if not upload.is_dir():
        raise BuildError(f"no Hub upload in {upload}: run 'make hub' first")
    if context.exists():
        shutil.rmtree(context)
    shutil.copytree(upload, context / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (context / "sdk-wheels").mkdir()
    if source.route == "wheels":
        for wheel in (source.flame_wheel, source.flamesdk_wheel):
            shutil.copy2(wheel, context / "sdk-wheels" / wheel.name)


def versions(image: str) -> dict:
    """Return the image's Python, library and SDK versions, from its own python."""
    container = _run(["buildah", "from", "--pull-never", image], what="buildah from").strip()
    try:
        out = _run(
            ["buildah", "run", "--isolation", "chroot", container, "python", "-c", _VERSIONS],
            what="the image's python",
        )
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
    return json.loads(last_line(out))


def image_size(image: str) -> str:
    """Return the image's size as buildah counts it."""
    return _run(
        ["buildah", "images", "--format", "{{.Size}}", image], what="buildah images"
    ).strip()


def describe(image: str, seconds: float, size: str, found: dict) -> str:
    """Return the closing line: the image, its build time, size and versions."""
    libs = ", ".join(
        f"{name} {found.get(name)}"
        for name in ("numpy", "pandas", "scikit-learn", "flame", "flamesdk")
    )
    return f"make image: {image} built in {seconds:.0f} s, {size}: Python {found['python']}, {libs}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="localhost/pancreas-fl:latest")
    parser.add_argument("--dockerfile", type=Path, default=Path("Dockerfile"))
    parser.add_argument("--upload", type=Path, default=Path("dist/hub/src"), help="make hub's")
    parser.add_argument("--work", type=Path, default=Path("build/image"))
    parser.add_argument("--wheels", default="", help="the SDK's wheels (default: git tags)")
    parser.add_argument("--flamesdk", default=flame_sdk.FLAMESDK_RELEASES[0])
    parser.add_argument("--standin-python", default="python3.10", help="a CPython 3.10 to copy")
    parser.add_argument("--rebuild-standin", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Build the image; return the exit status (1 with one line on stderr when it cannot)."""
    args = _parser().parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # our lines in order with the tools' output
    started = time.monotonic()
    try:
        check_root()
        try:
            source = flame_sdk.choose(args.wheels, args.flamesdk)
            flame_sdk.check(source)
        except (ValueError, flame_sdk.SdkUnavailable) as exc:
            raise BuildError(str(exc)) from None
        missing = missing_tools()
        if missing:
            print(f"make image: installing {', '.join(missing)} (apt-get)")
            install_tools(missing)
        check_user_namespaces()
        work = args.work.resolve()
        work.mkdir(parents=True, exist_ok=True)
        base = choose_base(args.standin_python, work, rebuild=args.rebuild_standin)
        context = work / "context"
        stage_context(args.upload, source, context)
        print(f"make image: the FLAME SDK: {source.describe()}")
        argv = [
            "buildah",
            "bud",
            "--quiet",
            "--isolation",
            "chroot",
            "--pull=false",
            "--layers=false",
            *build_args(base, source),
            *host_pip_volumes(work),
            "--file",
            str(args.dockerfile.resolve()),
            "--tag",
            args.image,
            str(context),
        ]
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            raise BuildError(f"buildah bud failed: {last_line(done.stderr)}")
        seconds = time.monotonic() - started
        print(describe(args.image, seconds, image_size(args.image), versions(args.image)))
    except BuildError as exc:
        print(f"make image: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
