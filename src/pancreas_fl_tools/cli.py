"""The ``pancreas-fl`` command: a thin shell over the library.

``pancreas-fl simulate``
    runs the federated analysis on local hospital folders with the offline engine;
``pancreas-fl predict``
    applies a result file to a CSV;
``pancreas-fl show``
    prints a result file (FLAME's download) as a table or JSON, and draws its forest plot;
``pancreas-fl sample``
    writes a synthetic cohort.

Exit status: 0 on success, 2 with one line on stderr for bad input or usage, 1 when the
analysis itself fails.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
from pathlib import Path

from pancreas_fl import results
from pancreas_fl.constraints import Boolean, ColumnNames, ColumnRef, FillValues, Interval, Options
from pancreas_fl.errors import (
    ConfigError,
    DataError,
    HospitalProblemsError,
    MessageError,
    UsageError,
    quote_path,
)
from pancreas_fl.files import NotARegularFileError, read_regular_file
from pancreas_fl.params import PARAMETERS, resolve_params
from pancreas_fl_tools import report
from pancreas_fl_tools.output import check_outputs, one_line, write_outputs

__all__ = ["main"]

PROG = "pancreas-fl"
DEFAULT_NODES = ("data/sample/node1", "data/sample/node2")


# ---------------------------------------------------------------------------- simulate
def _simulation_params(args) -> dict:
    """Collect the analysis parameters given on the command line (unset ones are left out)."""
    values = {parameter.name: getattr(args, parameter.name) for parameter in PARAMETERS}
    if values.get("fill") is not None:  # --fill NAME=VALUE, repeated
        fill = {}
        for name, value in values["fill"]:
            if name in fill:
                raise UsageError(f"--fill {name}=... is given twice; give each column once.")
            fill[name] = value
        values["fill"] = fill
    return {name: value for name, value in values.items() if value is not None}


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


def _failure(exc, folders_by_node) -> tuple[int, list[str]]:
    """Turn a node failure into (exit status, lines).

    One line, or one per hospital with problems.
    """
    error = exc.error
    if isinstance(error, HospitalProblemsError):  # one line per hospital
        return 2, [_failure_line(report, folders_by_node) for report in error.reports]
    if isinstance(error, DataError):
        return 2, [_failure_line(error, folders_by_node)]
    if isinstance(error, (ConfigError, MessageError)):  # a damaged message names its sender
        return 2, [str(error)]
    where = _where(exc.role, exc.node_id)
    return 1, [f"the analysis failed at {where}: {exc.error_type}: {error if error else exc}"]


def _failure_line(error: DataError, folders_by_node) -> str:
    """Format a hospital's error, naming its file by its path in the hospital's folder."""
    file = error.file
    if error.node in folders_by_node and file is not None:
        file = str(Path(folders_by_node[error.node]) / file)
    return str(type(error)(error.problem, node=error.node, file=file, hint=error.hint))


def _simulate(args) -> int:
    from pancreas_fl_tools.simulation import (
        evaluate,
        hospital_names,
        locate_datasets,
        read_hospitals,
    )

    folders = args.nodes or list(DEFAULT_NODES)
    names = hospital_names(folders)
    params = _simulation_params(args)
    # Validated here, before any hospital runs; the resolved output is what FLAME would write
    # (the tutorial's bare array by default). The command itself always asks for the model
    # dict, for the history and the summary.
    resolved = resolve_params(**params)
    params["output"] = "model"
    outputs = {"--out": args.out, "--report": args.report, "--plot": args.plot}
    paths = _every_hospital(locate_datasets, folders, names, resolved.dataset)
    inputs = [
        (f"the data file of hospital {name!r}", path)
        for name, path in zip(names, paths, strict=True)
    ]
    check_outputs(outputs, inputs)
    plt = _pyplot() if args.plot else None  # missing matplotlib: say so up front
    splits = _every_hospital(read_hospitals, folders, names, resolved.dataset)
    model, seconds = _run(args, splits, names, folders, params)
    dialect = {"sep": resolved.sep, "decimal": resolved.decimal, "encoding": resolved.encoding}
    metrics = evaluate(
        model, splits, names, dataset=resolved.dataset, label=resolved.label, dialect=dialect
    )
    files = report.render_outputs(
        model,
        metrics,
        seconds,
        out=args.out,
        coef_only=resolved.output == "coef",
        report=args.report,
        plot=args.plot,
        plt=plt,
    )
    write_outputs(files, {os.fspath(path): option for option, path in outputs.items() if path})
    print(report.summary_text(model, metrics, seconds))
    print(f"\nwrote {', '.join(quote_path(path) for path in files)}")
    return 0


def _every_hospital(read, folders, names, dataset: str) -> list:
    """Call ``read`` for all hospitals; several hospitals' problems leave with one line each."""
    try:
        return read(folders, names, dataset)
    except HospitalProblemsError as exc:
        raise _Exit(2, *(str(problem) for problem in exc.reports)) from None


def _pyplot():
    """Return matplotlib's pyplot; without matplotlib, a usage error."""
    try:
        return report.pyplot()
    except ImportError as exc:
        raise UsageError(str(exc)) from None


def _run(args, splits, names, folders, params) -> tuple[dict, float]:
    """Run the analysis; return the model dict and the seconds it took.

    A node's failure or timeout leaves with its exit status and lines.
    """
    from flame_offline import NodeFailedError, NodeTimeoutError
    from pancreas_fl_tools.simulation import simulate

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
        code, lines = _failure(exc, dict(zip(names, folders, strict=True)))
        raise _Exit(code, *lines) from None
    except NodeTimeoutError as exc:
        senders = ", ".join(repr(m) for m in exc.missing)
        raise _Exit(
            1,
            f"the analysis failed at {_where(exc.role, exc.node_id)}: no {exc.waited_for} "
            f"from {senders} within --timeout "
            f"{args.timeout:g} s. If rounds legitimately take longer, raise --timeout.",
        ) from None
    return tester.result, time.perf_counter() - start


def _read_csv(path: Path) -> bytes:
    """Read a CSV given on the command line, in the tutorial's format (as hospitals do).

    A spreadsheet export (``;``, decimal commas, cp1252) is rewritten when unambiguous
    (:mod:`pancreas_fl.dialect`); a usage error when the file cannot be read.
    """
    from pancreas_fl.dialect import detect, to_standard

    try:
        raw = read_regular_file(path)
    except NotARegularFileError:
        raise UsageError(f"{quote_path(path)}: not a regular file; give a CSV file.") from None
    except OSError as exc:
        raise UsageError(f"{quote_path(path)}: cannot read the file ({exc.strerror}).") from None
    return to_standard(raw, detect(raw), str(path))


# ---------------------------------------------------------------------------- predict
def _predict(args) -> int:
    from sklearn.pipeline import Pipeline

    from pancreas_fl_tools.patients import load_feature_table, read_raw_features

    path = Path(args.csv)
    check_outputs({"--out": args.out}, [("the --model file", args.model), ("the input CSV", path)])
    clf = results.load_model(args.model)
    raw = _read_csv(path)
    if isinstance(clf, Pipeline):  # categorical features or fill values: raw columns
        from pancreas_fl.encoding import Encoding, encode_frame

        spec, model = Encoding.from_dict(clf[0].encoding), clf[-1]
        frame = read_raw_features(raw, dataset=str(path), encoding=spec)
        proba = model.predict_proba(encode_frame(frame, spec, file=str(path)))[:, 1]
        return _write_predictions(proba, args.out)
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
            f"{PROG}: warning: {quote_path(args.model)} holds bare coefficients without feature "
            f"names: the first {clf.n_features_in_} columns of {quote_path(path)} are used in "
            "file order, which cannot be verified. Use the model dict (simulate --output "
            "model), which matches the columns by name.",
            file=sys.stderr,
        )
    X = features if names is not None else features.to_numpy(dtype=float)
    return _write_predictions(clf.predict_proba(X)[:, 1], args.out)


def _write_predictions(proba, out) -> int:
    import pandas as pd

    table = pd.DataFrame(
        {"row": range(1, len(proba) + 1), "probability": proba, "prediction": proba >= 0.5}
    )
    table["prediction"] = table["prediction"].astype(int)
    text = table.to_csv(index=False, float_format="%.6f")
    if out:
        write_outputs({out: text.encode()}, {os.fspath(out): "--out"})
    else:
        sys.stdout.write(text)
    return 0


# ---------------------------------------------------------------------------- show
def _show(args) -> int:
    from pancreas_fl_tools.show import read_view, view_json, view_text

    inputs = [("the result file", args.result)]
    if args.names_from:
        inputs.append(("the --names-from CSV", args.names_from))
    check_outputs({"--plot": args.plot}, inputs)
    plt = _pyplot() if args.plot else None  # missing matplotlib: say so up front
    view = read_view(args.result)
    if args.names_from and view.bare:
        view = read_view(args.result, feature_names=_names_from(args.names_from, view.n_features))
    elif args.names_from:
        print(
            f"{PROG}: warning: --names-from is ignored: {quote_path(args.result)} is a model "
            "dict, which names its own features.",
            file=sys.stderr,
        )
    files = {}
    if args.plot:
        from pancreas_fl_tools.forest import forest_png

        try:
            files[args.plot] = forest_png(view, plt)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    print(view_json(view) if args.json else view_text(view))
    if files:
        write_outputs(files, {os.fspath(args.plot): "--plot"})
        print(f"\nwrote {quote_path(args.plot)}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _names_from(csv: Path, n_features: int) -> list[str]:
    """Return a bare array's feature names: the first columns of the CSV's header."""
    from pancreas_fl_tools.patients import load_feature_table

    path = Path(csv)
    features = load_feature_table(_read_csv(path), dataset=str(path), n_features=n_features)
    return [str(name) for name in features.columns]


# ---------------------------------------------------------------------------- sample
def _sample(args) -> int:
    from pancreas_fl_tools.sample import make_cohort, write_cohort

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
    """Leave with ``code``, printing each of ``lines`` as one line.

    One line per hospital with problems; control characters within a line are escaped.
    """

    def __init__(self, code: int, *lines: str) -> None:
        super().__init__(lines[0])
        self.code = code
        self.lines = lines


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


def _column(text: str) -> str | int:
    """``--label``: a column name, or a position when it is an integer (``-1``: the last)."""
    return int(text) if text.lstrip("-").isdigit() else text


def _fill_pair(text: str) -> tuple[str, float | int | str]:
    """``--fill NAME=VALUE``: VALUE is a number where it reads as one, else a level name."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"must be NAME=VALUE, got {text!r}")
    for kind in (int, float):
        try:
            number = kind(value)
        except ValueError:
            continue
        if math.isfinite(number):
            return name, number
    return name, value


def _add_parameter(group, parameter) -> None:
    """Add one ``simulate`` option from a row of the parameter table.

    ``max_iter`` becomes ``--max-iter``. Values are converted here and validated by
    :func:`resolve_params`, so the command and the Python API word every refusal alike.
    """
    constraint = parameter.constraint
    default = parameter.describe_default().replace("`", "")
    kwargs = {"dest": parameter.name, "default": None}
    if isinstance(constraint, Boolean):
        kwargs["action"] = "store_true"
    elif isinstance(constraint, Options):  # None: not given (the default)
        kwargs["choices"] = tuple(choice for choice in constraint.choices if choice is not None)
        if not all(choice.replace("-", "").isalnum() for choice in kwargs["choices"]):
            kwargs["metavar"] = parameter.name.upper()  # ',' and ';' read badly in {...}
    elif isinstance(constraint, Interval):
        kwargs.update(type=constraint.kind, metavar=constraint.kind.__name__.upper())
    elif isinstance(constraint, ColumnRef):
        kwargs.update(type=_column, metavar="COLUMN")
    elif isinstance(constraint, ColumnNames):
        kwargs.update(nargs="+", metavar="NAME")
    elif isinstance(constraint, FillValues):
        kwargs.update(action="append", type=_fill_pair, metavar="NAME=VALUE")
    kwargs["help"] = f"{parameter.help.replace('`', '')} (default: {default})"
    group.add_argument("--" + parameter.name.replace("_", "-"), **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser (exposed for the documentation and tests)."""
    from pancreas_fl import __version__

    parser = _Parser(
        prog=PROG,
        description="Federated logistic regression for FLAME: simulate, predict, show, sample.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_simulate, _add_predict, _add_show, _add_sample):
        add(commands)
    return parser


def _add_simulate(commands) -> None:
    """``simulate``: the analysis on hospital folders, with every parameter of the table."""
    sim = commands.add_parser(
        "simulate",
        help="run the federated analysis on local hospital folders (offline engine)",
        description="Each NODE_DIR is one hospital; its files become the hospital's s3 "
        "objects. Runs the analysis with the offline FLAME engine, shows every round, "
        "summarizes, and writes the result.",
    )
    sim.add_argument("nodes", nargs="*", metavar="NODE_DIR", help=f"default: {DEFAULT_NODES}")
    analysis = sim.add_argument_group(
        "analysis parameters", "as in analyzer_kwargs/aggregator_kwargs (README: Parameters)"
    )
    for parameter in PARAMETERS:
        _add_parameter(analysis, parameter)
    sim.add_argument("--isolation", choices=("thread", "process"), default="thread")
    sim.add_argument(
        "--timeout", type=_positive_float, default=120.0, help="seconds a node may wait"
    )
    sim.add_argument(
        "--out", type=Path, default=Path("pancreas.pkl"), help="the result (default: pancreas.pkl)"
    )
    sim.add_argument("--report", type=Path, help="write a JSON report")
    sim.add_argument(
        "--plot",
        type=Path,
        help="draw the log-loss and the stopping rule's quantity per round (PNG)",
    )
    sim.add_argument("--quiet", action="store_true", help="no per-round lines")
    sim.set_defaults(run=_simulate)


def _add_predict(commands) -> None:
    """``predict``: a result file applied to the rows of a CSV."""
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


def _add_show(commands) -> None:
    """``show``: a result file printed as a table, JSON or forest plot."""
    show = commands.add_parser(
        "show",
        help="print a result file (FLAME's download) as a table, JSON or forest plot",
        description="Read a result file (the aggregator's result FLAME hands out, or "
        "simulate's --out) without running code from it, and print it as simulate prints "
        "that result: the GLM table with odds ratios and 95%% intervals for the exact "
        "strategy, the coefficients otherwise.",
    )
    show.add_argument("result", type=Path, metavar="RESULT", help="result file (.pkl)")
    show.add_argument("--json", action="store_true", help="print JSON instead of the table")
    show.add_argument(
        "--plot", type=Path, metavar="FILE", help="draw the forest plot of odds ratios (PNG)"
    )
    show.add_argument(
        "--names-from",
        type=Path,
        metavar="CSV",
        help="name a bare array's coefficients by the first columns of this CSV's header "
        "(a hospital file, in training order)",
    )
    show.set_defaults(run=_show)


def _add_sample(commands) -> None:
    """``sample``: a synthetic cohort written as hospital folders."""
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


def main(argv=None) -> int:
    """Run the command; returns the exit status (also used as the console script)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.run(args)
    except _Exit as exc:
        for line in exc.lines:
            print(f"{PROG}: error: {one_line(line)}", file=sys.stderr)
        return exc.code
    except (UsageError, DataError, ConfigError, results.ModelFileError) as exc:
        print(f"{PROG}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file that cannot be written or read
        where = f"{quote_path(exc.filename)}: " if exc.filename else ""
        print(f"{PROG}: error: {one_line(f'{where}{exc.strerror or exc}')}", file=sys.stderr)
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
