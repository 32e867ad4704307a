r"""Install the FLAME SDK (``flame`` 0.6.4 on ``flamesdk`` 0.5.0 or 0.6.0) into a Python.

The SDK is on no package registry. FLAME's images install it from its public git repositories
at release tags, and so does this script by default; ``--wheels DIR`` installs it from a folder
of wheels built from those tags instead, for machines that cannot reach GitHub. When neither
route works, it says so in one line naming both, and installs nothing.

``flame`` 0.6.4 pins ``flamesdk`` 0.5.0 by a git URL, so ``flame`` is installed without its
dependencies, after ``flamesdk`` (the chosen release) and ``opendp``, its only other one.

Used by the Makefile (``make flame-venv``, ``flame-image``, ``test-flame``, ``flame-node``)
and by ``scripts/build_image.py``; only the standard library, any Python 3.

    python3 scripts/flame_sdk.py install --for "make flame-venv" --venv .venv-flame-0.5.0 \\
        --base-python python3.10 --flamesdk 0.5.0 [--wheels DIR] [-- PIP ARGUMENTS]
    python3 scripts/flame_sdk.py check --for "make image" --flamesdk 0.5.0 [--wheels DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FLAME = "0.6.4"
FLAMESDK_RELEASES = ("0.5.0", "0.6.0")
PATTERNS_REPO = "https://github.com/PrivateAIM/python-sdk-patterns.git"
CORE_REPO = "https://github.com/PrivateAIM/python-sdk.git"
OPENDP = "opendp>=0.12.1,<0.13"
GIT_TIMEOUT = 30.0


class SdkUnavailable(RuntimeError):
    """Neither route can install the SDK here (the message is the one line to show)."""


@dataclass(frozen=True)
class SdkSource:
    """Where the SDK comes from: ``"git"`` (the release tags) or ``"wheels"`` (a folder)."""

    route: str
    flamesdk: str
    wheels: Path | None = None

    @property
    def flame_wheel(self) -> Path:
        """The ``flame`` wheel in the folder (wheels route)."""
        return self._folder() / f"flame-{FLAME}-py3-none-any.whl"

    @property
    def flamesdk_wheel(self) -> Path:
        """The ``flamesdk`` wheel in the folder (wheels route)."""
        return self._folder() / f"flamesdk-{self.flamesdk}-py3-none-any.whl"

    def _folder(self) -> Path:
        if self.wheels is None:
            raise ValueError("the git route has no wheels folder")
        return self.wheels

    def describe(self) -> str:
        """One phrase: which releases, from where."""
        where = f"wheels in {self.wheels}" if self.route == "wheels" else "GitHub release tags"
        return f"flame {FLAME} on flamesdk {self.flamesdk}, from {where}"

    def requirements(self) -> tuple[list[str], list[str]]:
        """Return the pip requirements installed with their dependencies, then without."""
        if self.route == "wheels":
            return [str(self.flamesdk_wheel), OPENDP], [str(self.flame_wheel)]
        return (
            [f"flamesdk @ git+{CORE_REPO}@{self.flamesdk}", OPENDP],
            [f"flame @ git+{PATTERNS_REPO}@{FLAME}"],
        )


def choose(wheels: str | None, flamesdk: str) -> SdkSource:
    """Return the source: the folder ``wheels`` when given (not empty), else the git tags."""
    if flamesdk not in FLAMESDK_RELEASES:
        raise ValueError(
            f"FLAMESDK={flamesdk}: flame {FLAME} runs on flamesdk "
            f"{' or '.join(FLAMESDK_RELEASES)}; choose one of these"
        )
    if wheels:
        return SdkSource("wheels", flamesdk, Path(wheels))
    return SdkSource("git", flamesdk)


def both_ways(flamesdk: str) -> str:
    """Return the two ways to get the SDK, for a failure line."""
    return (
        f"either let it come from GitHub (needs git and github.com: PrivateAIM/"
        f"python-sdk-patterns {FLAME}, PrivateAIM/python-sdk {flamesdk}) or set WHEELS=DIR "
        f"to a folder holding flame-{FLAME}-py3-none-any.whl and "
        f"flamesdk-{flamesdk}-py3-none-any.whl"
    )


def _git_reason(stderr: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    if not lines:
        return "no answer"
    last = lines[-1].removeprefix("fatal: ")
    # "unable to access 'https://...': Could not resolve host: github.com" -> the reason
    return last.rsplit("': ", 1)[-1] if "': " in last else last


def check(source: SdkSource, *, runner=subprocess.run, timeout: float = GIT_TIMEOUT) -> None:
    """Raise :class:`SdkUnavailable` unless ``source`` can be installed from here."""
    way = both_ways(source.flamesdk)
    if source.route == "wheels":
        if not source._folder().is_dir():
            raise SdkUnavailable(f"WHEELS={source.wheels} is not a folder; {way}")
        missing = [p.name for p in (source.flame_wheel, source.flamesdk_wheel) if not p.is_file()]
        if missing:
            raise SdkUnavailable(f"no {' and no '.join(missing)} in WHEELS={source.wheels}; {way}")
        return
    if shutil.which("git") is None:
        raise SdkUnavailable(f"the SDK's git route needs git, which is not installed; {way}")
    for repo, tag in ((PATTERNS_REPO, FLAME), (CORE_REPO, source.flamesdk)):
        try:
            done = runner(
                ["git", "ls-remote", "--exit-code", "--tags", repo, f"refs/tags/{tag}"],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
            )
        except subprocess.TimeoutExpired:
            raise SdkUnavailable(
                f"GitHub did not answer within {timeout:g} s ({repo}); {way}"
            ) from None
        if done.returncode == 2:
            raise SdkUnavailable(f"{repo} has no tag {tag}; {way}")
        if done.returncode != 0:
            raise SdkUnavailable(
                f"cannot reach GitHub for the SDK ({_git_reason(done.stderr)}); {way}"
            )


def pip_commands(python: str, source: SdkSource, extra: list[str]) -> list[list[str]]:
    """Return the two pip commands that install the SDK (and ``extra``) into ``python``."""
    with_deps, without = source.requirements()
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    return [[*pip, *extra, *with_deps], [*pip, "--no-deps", *without]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("check", "install"):
        command = sub.add_parser(name)
        command.add_argument("--for", dest="what", default="flame_sdk", help="who asks (errors)")
        command.add_argument("--flamesdk", default=FLAMESDK_RELEASES[0])
        command.add_argument("--wheels", default="", help="a folder of wheels (default: git)")
    install = sub.choices["install"]
    install.add_argument("--venv", required=True, help="the venv to create and install into")
    install.add_argument("--base-python", required=True, help="the Python that creates the venv")
    install.add_argument("pip_args", nargs="*", help="more for pip (after --)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (1 with one line when it cannot)."""
    args = _parser().parse_args(argv)
    try:
        source = choose(args.wheels, args.flamesdk)
        check(source)
    except (ValueError, SdkUnavailable) as exc:
        print(f"{args.what}: {exc}", file=sys.stderr)
        return 1
    if args.command == "check":
        print(f"{source.route} {source.describe()}")
        return 0
    print(f"{args.what}: the FLAME SDK: {source.describe()}")
    subprocess.run([args.base_python, "-m", "venv", args.venv], check=True)
    python = str(Path(args.venv) / "bin" / "python")
    for command in pip_commands(python, source, args.pip_args):
        if subprocess.run(command, check=False).returncode != 0:
            print(
                f"{args.what}: pip could not install the SDK ({source.describe()})", file=sys.stderr
            )
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
