"""``python -m pancreas_fl``: the node entrypoint, inside FLAME only; elsewhere one line says so.

FLAME runs ``src/pancreas_analysis.py``; this alias starts the same node when the real FLAME
SDK is active. Anywhere else (the offline engine, or any argument given) there is no node to
start: it says so in one line and where to go instead (``pancreas-fl --help``), exit status 2.
"""

import sys

USAGE = (
    "python -m pancreas_fl is the FLAME node entrypoint (FLAME runs src/pancreas_analysis.py, "
    "which starts this node's part of an analysis inside FLAME); it takes no arguments. For "
    "local use, run pancreas-fl --help."
)


def run(argv: list[str]) -> int:
    """Start this FLAME node's part of the analysis, or say in one line why not."""
    from pancreas_fl import sdk

    if argv or sdk.BACKEND != "flame":
        print(f"pancreas_fl: {USAGE}", file=sys.stderr)
        return 2
    from pancreas_fl.entrypoint import main

    main()
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
