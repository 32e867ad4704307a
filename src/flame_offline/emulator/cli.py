"""``python -m flame_offline.emulator``: run the Hub entrypoint as a real FLAME analysis.

Exit status: 0 the analysis executed and its final result was written; 1 it failed (a node
failed or stopped, or nothing was submitted); 2 usage error; 3 node pods cannot be isolated
on this machine (needs root and Linux namespaces); 4 the time limit was reached; 130
interrupted (Ctrl-C or SIGTERM). Every node process is ended in every case.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path

from flame_offline.emulator import image as images
from flame_offline.emulator.broker import Fault
from flame_offline.emulator.netns import NamespaceUnavailable
from flame_offline.emulator.report import describe
from flame_offline.emulator.runner import RunConfig, UsageError, run

__all__ = ["EXIT_CODES", "main"]

EXIT_CODES = {"executed": 0, "failed": 1, "usage": 2, "no-namespaces": 3, "timeout": 4}
EXIT_INTERRUPTED = 130
DEFAULT_HOSPITALS = ("data/sample/node1", "data/sample/node2")
DEFAULT_UPLOAD = ("src/pancreas_analysis.py", "src/pancreas_fl")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flame_offline.emulator",
        description=(
            "Run a FLAME analysis locally as FLAME runs it: one pod (network, mount and PID "
            "namespaces) per node, the real SDK, every node service over HTTP. Needs root."
        ),
    )
    parser.add_argument(
        "hospitals",
        nargs="*",
        type=Path,
        metavar="HOSPITAL_DIR",
        help="one folder per hospital; each file is an s3 object "
        f"(default: {' '.join(DEFAULT_HOSPITALS)})",
    )
    parser.add_argument(
        "--upload",
        action="append",
        type=Path,
        metavar="PATH",
        help="a file or folder of the upload, placed at /opt/code/src/<name>; repeat for more "
        f"(default: {' '.join(DEFAULT_UPLOAD)})",
    )
    parser.add_argument(
        "--entrypoint",
        default="pancreas_analysis.py",
        help="the uploaded file FLAME runs (default: %(default)s)",
    )
    nodes = parser.add_mutually_exclusive_group(required=True)
    nodes.add_argument(
        "--python",
        help="the nodes' interpreter: a Python 3.10 venv like FLAME's image (make flame-image)",
    )
    nodes.add_argument(
        "--image",
        metavar="NAME",
        help="run every pod in this local image's root filesystem instead (make image: "
        "localhost/pancreas-fl:latest): its python, its /opt/code, its entrypoint; "
        "--upload does not apply",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path("build/flame-node"),
        help="final_result, summary.json and logs/ go here (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="longest run in seconds (default: %(default)s)"
    )
    parser.add_argument(
        "--status-interval",
        type=float,
        default=1.0,
        help="seconds between the orchestrator's status checks "
        "(production: 10; default: %(default)s)",
    )
    parser.add_argument(
        "--duplicate",
        action="append",
        default=[],
        metavar="SPEC",
        help="fault: the broker delivers one message twice; SPEC is "
        "category=C[,from=NODE][,to=NODE][,nth=N], "
        "e.g. category=intermediate_data,from=aggregator,nth=2",
    )
    parser.add_argument(
        "--delay",
        action="append",
        default=[],
        metavar="SPEC",
        help="fault: the broker delivers one message late; SPEC as for --duplicate plus seconds=S",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def _config(args) -> RunConfig:
    folders = args.hospitals or [Path(p) for p in DEFAULT_HOSPITALS]
    hospitals: dict[str, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            raise UsageError(f"hospital folder {folder}: not a directory")
        name = folder.resolve().name
        if name == "aggregator" or name in hospitals:
            raise UsageError(
                f"hospital folder {folder}: its name {name!r} is taken; hospitals are named "
                "after their folders, which must differ (and not be 'aggregator')"
            )
        hospitals[name] = folder.resolve()
    upload = args.upload or [Path(p) for p in DEFAULT_UPLOAD]
    if args.image and args.upload:
        raise UsageError("--upload does not apply with --image: the image holds its /opt/code")
    if not args.upload and not args.image and not all(p.exists() for p in upload):
        raise UsageError(
            "no src/pancreas_analysis.py and src/pancreas_fl here: run from the repository "
            "root or pass --upload"
        )
    if not 0 < args.timeout <= 86400:
        raise UsageError(f"--timeout must be in (0, 86400] seconds. Got {args.timeout:g} instead.")
    if not 0.05 <= args.status_interval <= 60:
        raise UsageError(
            "--status-interval must be in [0.05, 60] seconds. "
            f"Got {args.status_interval:g} instead."
        )
    faults = [Fault.parse("duplicate", s) for s in args.duplicate]
    faults += [Fault.parse("delay", s) for s in args.delay]
    names = {*hospitals, "aggregator"}
    for fault in faults:
        for name in (fault.sender, fault.recipient):
            if name is not None and name not in names:
                raise UsageError(
                    f"fault {fault.describe()!r}: no node named {name!r} "
                    f"({', '.join(sorted(names))})"
                )
    return RunConfig(
        hospitals=hospitals,
        upload=[p.resolve() for p in upload],
        entrypoint=args.entrypoint,
        python=os.path.abspath(args.python) if args.python else "python",
        out_dir=args.out_dir.resolve(),
        timeout=args.timeout,
        status_interval=args.status_interval,
        faults=faults,
    )


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv=None) -> int:
    """Run the emulator on ``argv`` (default: the command line); return the exit status."""
    args = _parser().parse_args(argv)
    try:
        config = _config(args)
    except (UsageError, ValueError) as exc:
        print(f"flame-node: {exc}", file=sys.stderr)
        return EXIT_CODES["usage"]
    # Ctrl-C, kill and a closed terminal all end the run the same way (even where the shell
    # started us with SIGINT ignored, as it does for background jobs)
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, _interrupt) for signum in signals}
    try:
        with contextlib.ExitStack() as stack:
            if args.image:
                config.image = stack.enter_context(images.mounted(args.image))
                config.python = config.image.which("python") or "python"
            result = run(config)
    except NamespaceUnavailable as exc:
        print(f"flame-node: cannot isolate the nodes here: {exc}.", file=sys.stderr)
        return EXIT_CODES["no-namespaces"]
    except (UsageError, images.ImageUnavailable) as exc:
        print(f"flame-node: {exc}", file=sys.stderr)
        return EXIT_CODES["usage"]
    except KeyboardInterrupt:
        print("flame-node: interrupted; every node was stopped.", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if args.json:
        import json

        print(json.dumps(result.summary, indent=2))
    else:
        print(describe(result.summary, config.out_dir))
    return EXIT_CODES[result.outcome]
