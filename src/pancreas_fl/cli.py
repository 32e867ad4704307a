"""The ``pancreas-fl`` command: a thin shell over the library.

``pancreas-fl simulate``
    runs the federated analysis on local hospital folders with the offline engine;
``pancreas-fl predict``
    applies a result file to a CSV;
``pancreas-fl sample``
    writes a synthetic cohort.

Exit status: 0 on success, 2 with one line on stderr for bad input or usage, 1 when the
analysis itself fails.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import pickle
import stat
import sys
import threading
import time
from pathlib import Path

from pancreas_fl import results
from pancreas_fl._io import NotARegularFileError, check_writable, read_regular_file, write_all
from pancreas_fl.data import DEFAULT_DATASET
from pancreas_fl.errors import ConfigError, DataError, PancreasFLError
from pancreas_fl.params import resolve_params

__all__ = ["main"]

PROG = "pancreas-fl"
DEFAULT_NODES = ("data/sample/node1", "data/sample/node2")


class UsageError(PancreasFLError):
    """Bad command-line input: exit status 2."""


# ---------------------------------------------------------------------------- helpers
def _quote(path) -> str:
    """A path as shown in a one-line message: quoted (repr) when it holds a control character
    or surrounding spaces, as it is otherwise."""
    text = os.fspath(path)
    return text if text.isprintable() and text.strip() == text and text else repr(text)


def _one_line(text: str) -> str:
    """Escape line breaks and other control characters, so that an error is one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _same_file(a, b) -> bool:
    """Whether two paths name the same file: the same resolved path, or the same inode."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _check_outputs(outputs: dict, inputs: list) -> None:
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
        shown = f"{option} {_quote(path)}"
        for other_option, other in chosen[:i]:
            if _same_file(path, other):
                raise UsageError(f"{shown}: is also {other_option}; give each output its own file.")
        for what, source in inputs:
            if _same_file(path, source):
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
            raise UsageError(f"{shown}: the folder {_quote(path.parent)} does not exist.") from None
        except OSError as exc:
            raise UsageError(f"{shown}: cannot write there ({exc.strerror}).") from None


def _write_outputs(files: dict, options: dict) -> None:
    """Write all outputs or none; a failure names the option and the path the user gave."""
    try:
        write_all(files)
    except OSError as exc:
        option = options.get(exc.filename, "")
        shown = f"{option} {_quote(exc.filename)}".strip() if exc.filename else option
        raise UsageError(
            f"{shown}: cannot write ({exc.strerror or exc}); no output was written."
        ) from None


def _node_names(folders) -> list[str]:
    """Node ids for the hospital folders: their names, or their paths where names repeat.

    Refuses an empty path, a folder that does not exist, the same folder twice (also through
    a link or a trailing slash) and a hospital named like the aggregator.
    """
    from flame_offline.tester import AGGREGATOR_ID

    seen: dict[tuple[int, int], str] = {}
    for folder in folders:
        if folder == "":
            raise UsageError(
                "hospital folder '': an empty path (it would silently mean the current "
                "folder). Give the folder's name, or '.' for the current folder."
            )
        try:
            info = os.stat(folder)
        except OSError:
            info = None
        if info is None or not stat.S_ISDIR(info.st_mode):
            raise UsageError(
                f"hospital folder {_quote(folder)}: not a directory. Give one folder per "
                "hospital, holding its files (e.g. data/sample/node1)."
            )
        key = (info.st_dev, info.st_ino)
        if key in seen:
            raise UsageError(
                f"hospital folders {_quote(seen[key])} and {_quote(folder)} are the same "
                "folder; give each hospital once (its patients would be counted twice)."
            )
        seen[key] = folder
    paths = [Path(folder) for folder in folders]
    names = [
        path.name if path.name not in ("", "..") else path.resolve().name or str(path.resolve())
        for path in paths
    ]
    if len(set(names)) != len(names) or AGGREGATOR_ID in names:
        names = [str(path) for path in paths]
    if AGGREGATOR_ID in names:
        raise UsageError(
            f"hospital folder {AGGREGATOR_ID!r}: the name is the aggregator's node id. Rename "
            "the folder, or give it by a longer path (e.g. sites/aggregator)."
        )
    return names


def _json_ready(obj):
    """Plain JSON values: arrays to lists, non-finite floats to null."""
    if isinstance(obj, dict):
        return {str(key): _json_ready(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(value) for value in obj]
    if hasattr(obj, "tolist"):
        return _json_ready(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# ---------------------------------------------------------------------------- simulate
def _simulation_params(args) -> dict:
    options = {
        "strategy": args.strategy,
        "dataset": args.dataset,
        "label": args.label,
        "max_iter": args.max_iter,
        "tol": args.tol,
        "C": args.C,
        "fit_intercept": args.fit_intercept,
        "weighted": args.weighted,
        "local_steps": args.local_steps,
        "standardize": args.standardize,
        "solver": args.solver,
        "min_patients": args.min_patients,
        "max_param_ratio": args.max_param_ratio,
        "output": args.output,
    }
    params = {key: value for key, value in options.items() if value is not None}
    if isinstance(params.get("label"), str) and params["label"].lstrip("-").isdigit():
        params["label"] = int(params["label"])
    return params


def _log_printer(quiet: bool):
    def show(record) -> None:
        if record.log_type in ("error", "crit"):
            return  # a failure is reported once, by the command itself
        if record.level >= 30:
            print(f"[{record.node_id}] {record.log_type}: {record.message}", file=sys.stderr)
        elif not quiet:
            print(f"[{record.node_id}] {record.message}", flush=True)

    return show


def _where(role: str, node_id: str) -> str:
    return f"{'the aggregator' if role == 'aggregator' else 'hospital'} {node_id!r}"


def _failure(exc, folders_by_node) -> tuple[int, str]:
    """Turn a node failure into (exit status, one line)."""
    error = exc.error
    if isinstance(error, DataError):
        file = error.file
        if error.node in folders_by_node and file is not None:
            file = str(Path(folders_by_node[error.node]) / file)
        return 2, str(type(error)(error.problem, node=error.node, file=file, hint=error.hint))
    if isinstance(error, ConfigError):
        return 2, str(error)
    where = _where(exc.role, exc.node_id)
    return 1, f"the analysis failed at {where}: {exc.error_type}: {error if error else exc}"


def _summary(model, metrics, seconds) -> str:
    reason = {
        "tolerance": "the change fell below tol",
        "max_iter": "max_iter was reached",
        "line_search": "no step could lower the objective any further",
    }.get(model["stop_reason"], model["stop_reason"])
    lines = [
        "",
        f"{model['strategy']}: {model['rounds']} rounds in {seconds:.2f} s; stopped because "
        f"{reason}.",
        f"{'hospital':<16} {'patients':>8} {'label 1':>8} {'accuracy':>9} {'ROC AUC':>8}",
    ]
    for row in metrics:
        auc = "n/a" if row["roc_auc"] is None else f"{row['roc_auc']:.3f}"
        lines.append(
            f"{row['hospital']:<16} {row['patients']:>8} {row['positives']:>8} "
            f"{row['accuracy']:>9.3f} {auc:>8}"
        )
    lines.append("(accuracy and ROC AUC of the final model at each hospital, on its own data)")
    if model.get("statistics"):
        from pancreas_fl.stats import format_summary

        lines += ["", format_summary(model["statistics"])]
    return "\n".join(lines)


def _report(model, metrics, seconds) -> dict:
    return _json_ready(
        {
            "strategy": model["strategy"],
            "rounds": model["rounds"],
            "stop_reason": model["stop_reason"],
            "coef": model["coef"],
            "intercept": model["intercept"],
            "feature_names": model["feature_names"],
            "label": model["label"],
            "params": model["params"],
            "standardization": model["standardization"],
            "statistics": model["statistics"],
            "n_samples": model["n_samples"],
            "metrics": metrics,
            "history": model["history"],
            "seconds_total": seconds,
        }
    )


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (an optional extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'pancreas-fl[plot]'.") from None
    return plt


def _plot(plt, model) -> bytes:
    """The pooled training log-loss per round, as PNG bytes (rejected trial steps marked)."""
    history = [entry for entry in model["history"] if entry["log_loss"] is not None]
    accepted = [entry for entry in history if entry.get("accepted", True)]
    rejected = [entry for entry in history if not entry.get("accepted", True)]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([e["round"] for e in accepted], [e["log_loss"] for e in accepted], marker="o")
    if rejected:
        ax.plot(
            [e["round"] for e in rejected],
            [e["log_loss"] for e in rejected],
            "x",
            color="grey",
            label="rejected trial step",
        )
        ax.legend()
    ax.set_xlabel("round")
    ax.set_ylabel("pooled training log-loss")
    ax.set_title(f"pancreas-fl ({model['strategy']}): convergence")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def _simulate(args) -> int:
    from flame_offline import NodeFailedError, NodeTimeoutError
    from pancreas_fl.simulation import evaluate, read_hospital, simulate

    folders = args.nodes or list(DEFAULT_NODES)
    names = _node_names(folders)
    params = _simulation_params(args)
    # Validated here, before any hospital runs; the resolved output is what FLAME would write
    # (the tutorial's bare array by default). The command itself always asks for the model
    # dict, for the history and the summary.
    resolved = resolve_params(**params)
    write_coef_only = resolved.output == "coef"
    params["output"] = "model"
    outputs = {"--out": args.out, "--report": args.report, "--plot": args.plot}
    inputs = [
        (f"the data file of hospital {name!r}", Path(folder) / resolved.dataset)
        for name, folder in zip(names, folders, strict=True)
    ]
    _check_outputs(outputs, inputs)
    plt = _pyplot() if args.plot else None
    splits = []
    for name, folder in zip(names, folders, strict=True):
        try:
            splits.append(read_hospital(folder, resolved.dataset))
        except DataError as err:
            raise err.with_context(node=name) from None

    start = time.perf_counter()
    try:
        tester = simulate(
            splits,
            node_ids=names,
            isolation=args.isolation,
            timeout=args.timeout,
            log_handler=_log_printer(args.quiet),
            **params,
        )
    except NodeFailedError as exc:
        code, line = _failure(exc, dict(zip(names, folders, strict=True)))
        raise _Exit(code, line) from None
    except NodeTimeoutError as exc:
        senders = ", ".join(repr(m) for m in exc.missing)
        raise _Exit(
            1,
            f"the analysis failed at {_where(exc.role, exc.node_id)}: no {exc.waited_for} "
            f"from {senders} within --timeout "
            f"{args.timeout:g} s. If rounds legitimately take longer, raise --timeout.",
        ) from None
    seconds = time.perf_counter() - start
    model = tester.result
    payload = model["coef"] if write_coef_only else model
    metrics = evaluate(
        model,
        splits,
        names,
        dataset=params.get("dataset", DEFAULT_DATASET),
        label=params.get("label"),
    )
    # every output is rendered first, then written: all of them or none
    files = {args.out: pickle.dumps(payload)}
    if args.report:
        files[args.report] = json.dumps(_report(model, metrics, seconds), indent=2).encode()
    if args.plot:
        files[args.plot] = _plot(plt, model)
    _write_outputs(files, {os.fspath(path): option for option, path in outputs.items() if path})
    print(_summary(model, metrics, seconds))
    print(f"\nwrote {', '.join(_quote(path) for path in files)}")
    return 0


# ---------------------------------------------------------------------------- predict
def _predict(args) -> int:
    import pandas as pd

    from pancreas_fl.data import load_feature_table

    path = Path(args.csv)
    _check_outputs({"--out": args.out}, [("the --model file", args.model), ("the input CSV", path)])
    clf = results.load_model(args.model)
    try:
        raw = read_regular_file(path)
    except NotARegularFileError:
        raise UsageError(f"{_quote(path)}: not a regular file; give a CSV file.") from None
    except OSError as exc:
        raise UsageError(f"{_quote(path)}: cannot read the file ({exc.strerror}).") from None
    names = getattr(clf, "feature_names_in_", None)
    features = load_feature_table(
        raw,
        dataset=str(path),
        feature_names=None if names is None else [str(n) for n in names],
        n_features=clf.n_features_in_,
    )
    if names is None:
        # the tutorial's bare array: columns by position, and nothing can check the order
        print(
            f"{PROG}: warning: {_quote(args.model)} holds bare coefficients without feature "
            f"names: the first {clf.n_features_in_} columns of {_quote(path)} are used in "
            "file order, which cannot be verified. Use the model dict (simulate --output "
            "model), which matches the columns by name.",
            file=sys.stderr,
        )
    X = features if names is not None else features.to_numpy(dtype=float)
    proba = clf.predict_proba(X)[:, 1]
    table = pd.DataFrame(
        {"row": range(1, len(proba) + 1), "probability": proba, "prediction": proba >= 0.5}
    )
    table["prediction"] = table["prediction"].astype(int)
    text = table.to_csv(index=False, float_format="%.6f")
    if args.out:
        _write_outputs({args.out: text.encode()}, {os.fspath(args.out): "--out"})
    else:
        sys.stdout.write(text)
    return 0


# ---------------------------------------------------------------------------- sample
def _sample(args) -> int:
    from pancreas_fl.sample import make_cohort, write_cohort

    out = Path(args.out)
    frames = make_cohort(
        n_nodes=args.nodes, rows=args.rows, n_features=args.features, seed=args.seed
    )
    paths = write_cohort(out, frames)
    for path, frame in zip(paths, frames, strict=True):
        n, d = len(frame), frame.shape[1] - 1
        print(f"{path}: {n} patient{'s' * (n != 1)}, {d} feature{'s' * (d != 1)}")
    return 0


# ---------------------------------------------------------------------------- parser
class _Exit(Exception):
    def __init__(self, code: int, line: str) -> None:
        super().__init__(line)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints the whole usage)
        raise _Exit(2, f"{message} (see '{self.prog} --help')")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (exposed for the documentation and tests)."""
    from pancreas_fl import __version__

    parser = _Parser(
        prog=PROG,
        description="Federated logistic regression for FLAME: simulate, predict, sample.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sim = commands.add_parser(
        "simulate",
        help="run the federated analysis on local hospital folders (offline engine)",
        description="Each NODE_DIR is one hospital; its files become the hospital's s3 "
        "objects. Runs the analysis with the offline FLAME engine, shows every round, "
        "summarizes, and writes the result.",
    )
    sim.add_argument("nodes", nargs="*", metavar="NODE_DIR", help=f"default: {DEFAULT_NODES}")
    sim.add_argument("--strategy", choices=("fedavg", "exact"), help="default: fedavg")
    sim.add_argument(
        "--max-iter", type=int, help="default: 10 (fedavg), 50 (exact), 500 (exact, L-BFGS)"
    )
    sim.add_argument("--tol", type=float, help="default: 1e-8")
    sim.add_argument("--C", type=float, help="inverse L2 strength; inf = no penalty")
    sim.add_argument("--fit-intercept", action="store_true", default=None)
    sim.add_argument("--weighted", action="store_true", default=None, help="fedavg: by counts")
    sim.add_argument("--local-steps", type=int, help="fedavg: lbfgs steps per round")
    sim.add_argument("--standardize", action="store_true", default=None, help="exact only")
    sim.add_argument("--solver", choices=("auto", "newton", "lbfgs"), help="exact only")
    sim.add_argument("--dataset", help="object key of the CSV (default: pancreasData.csv)")
    sim.add_argument("--label", help="label column name or position (default: last)")
    sim.add_argument("--min-patients", type=int, help="privacy guard (default: 10)")
    sim.add_argument("--max-param-ratio", type=float, help="privacy guard (default: 0.33)")
    sim.add_argument("--output", choices=("model", "coef"), help="what --out holds")
    sim.add_argument("--isolation", choices=("thread", "process"), default="thread")
    sim.add_argument(
        "--timeout", type=_positive_float, default=120.0, help="seconds a node may wait"
    )
    sim.add_argument("--out", type=Path, default=Path("pancreas.pkl"))
    sim.add_argument("--report", type=Path, help="write a JSON report")
    sim.add_argument("--plot", type=Path, help="draw the log-loss per round (PNG)")
    sim.add_argument("--quiet", action="store_true", help="no per-round lines")
    sim.set_defaults(run=_simulate)

    pred = commands.add_parser(
        "predict",
        help="probability and predicted label per row of a CSV",
        description="Apply a result file (pancreas-fl's or FLAME's pickled coefficients) to "
        "the rows of a CSV. Writes row, probability, prediction as CSV.",
    )
    pred.add_argument("--model", required=True, type=Path, help="result file (.pkl)")
    pred.add_argument("csv", type=Path, metavar="CSV")
    pred.add_argument("--out", type=Path, help="write here instead of stdout")
    pred.set_defaults(run=_predict)

    samp = commands.add_parser(
        "sample",
        help="write a synthetic pancreatic-cancer cohort (no real patients)",
        description="Writes DIR/node1/pancreasData.csv ... DIR/nodeN/pancreasData.csv.",
    )
    samp.add_argument("--nodes", type=_positive_int, default=2)
    samp.add_argument(
        "--rows", type=_positive_int, default=180, help="average patients per hospital"
    )
    samp.add_argument("--features", type=_positive_int, default=8)
    samp.add_argument("--seed", type=int, default=42, help="default: data/sample's seed")
    samp.add_argument("--out", type=Path, required=True, metavar="DIR")
    samp.set_defaults(run=_sample)
    return parser


def main(argv=None) -> int:
    """Run the command; returns the exit status (also used as the console script)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.run(args)
    except _Exit as exc:
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.code
    except (UsageError, DataError, ConfigError, results.ModelFileError) as exc:
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file that cannot be written or read
        where = f"{_quote(exc.filename)}: " if exc.filename else ""
        print(f"{PROG}: error: {_one_line(f'{where}{exc.strerror or exc}')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        if threading.active_count() > 1:
            # Hospitals running as threads (--isolation thread) cannot be stopped from outside,
            # and finalizing the interpreter while one is inside native code can abort the
            # process (C++ 'terminate called', exit -6) after the line above. Nothing is left
            # to clean up (outputs are written all at once, their temporary files already
            # removed), so leave at once.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
