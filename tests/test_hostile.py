"""Hostile input, end to end: the one promise of every command, whatever it is given.

Exit 2 with one line on stderr (no traceback, no patient value), no output file and every
input unchanged; or exit 0 with a correct result. Never exit 1 for bad input, never a hang.

Every class found by hostile testing (issue 8) has a case here, run once through the CLI's
``main()`` in this process, and so do the classes that already held: encodings, delimiters,
ragged rows, missing-value spellings, hostile pickles, signals and killed nodes (the last two
through the console script). The details of each class (every message, the library's API) are
tested at the unit level in ``test_data.py``, ``test_results.py``, ``test_io.py`` and
``test_simulation.py``. A Hypothesis property test mutates a hospital's CSV at random.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import _tutorial
from _helpers import DATASET, SAMPLE, run_analysis
from pancreas_fl.dialect import detect
from pancreas_fl_tools.cli import main

NAMES = ["KRAS", "TP53", "CDKN2A", "SMAD4", "MUC1", "MSLN", "S100P", "KRT19"]


def sample_values() -> set[str]:
    """Collect the sample hospitals' cell values that could only come from a patient (x.yyy)."""
    values = set()
    for node in ("node1", "node2"):
        for line in (SAMPLE / node / DATASET).read_text().splitlines()[1:]:
            values.update(v for v in line.split(",") if len(v) >= 5 and "." in v)
    return values


SECRETS = sample_values()


def run(argv, capsys):
    code = main([os.fspath(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def files_under(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` (following no links), with its content."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and os.access(path, os.R_OK):
            found[str(path.relative_to(root))] = path.read_bytes()
    return found


def assert_refused(code, err, match, secrets=()):
    """Check the promise for bad input: exit 2, one line naming the problem, no value.

    One line per hospital when several hospitals have problems: every problem is reported in
    one run.
    """
    assert code == 2, err
    lines = err.splitlines()
    assert lines, err
    if len(lines) > 1:
        hospitals = [re.match(r"pancreas-fl: error: hospital ('[^']*')", line) for line in lines]
        assert all(hospitals), err
        assert len({hospital.group(1) for hospital in hospitals}) == len(lines), err
    assert all(line.startswith("pancreas-fl: error: ") for line in lines), err
    assert any(re.search(match, line) for line in lines), err
    for secret in (*SECRETS, *(s for s in secrets if len(s) >= 4)):
        assert secret not in err, f"{secret!r} leaked: {err}"


@pytest.fixture
def site(tmp_path):
    """Make a writable copy of data/sample/ (node1, node2) and an empty output folder."""
    for name in ("node1", "node2"):
        shutil.copytree(SAMPLE / name, tmp_path / name)
    (tmp_path / "out").mkdir()
    return tmp_path


def csv_of(site, node="node1") -> Path:
    return site / node / DATASET


def rewrite(site, change, node="node1") -> None:
    path = csv_of(site, node)
    path.write_bytes(change(path.read_bytes()))


def set_column(site, column, values, node="node1") -> None:
    path = csv_of(site, node)
    frame = pd.read_csv(path, dtype=str)
    frame[column] = [values[i % len(values)] for i in range(len(frame))]
    path.write_text(frame.to_csv(index=False, lineterminator="\n"))


def model_file(site, *, names=NAMES, bare=False, **extra) -> Path:
    coef = np.linspace(-0.3, 0.3, len(NAMES)).reshape(1, -1)
    result = coef if bare else {"coef": coef, "feature_names": list(names), **extra}
    path = site / ("bare.pkl" if bare else "model.pkl")
    path.write_bytes(pickle.dumps(result))
    return path


def simulate_argv(site, *nodes, out="out/m.pkl"):
    return ["simulate", *(site / n for n in nodes or ("node1", "node2")), "--out", site / out]


def headerless(raw: bytes) -> bytes:
    return raw.split(b"\n", 1)[1]


def first_row(site, node="node1") -> list[str]:
    return csv_of(site, node).read_text().splitlines()[1].split(",")


def nest(levels):
    item = []
    for _ in range(levels):
        item = [item, item]
    return item


# ---------------------------------------------------------------------------- the cases
# Each case prepares the site (a copy of the sample hospitals) and returns the command line,
# the pattern its one error line must match, and values that must not appear in it.


def case_no_header(site):
    secrets = first_row(site)
    rewrite(site, headerless)
    return (
        simulate_argv(site),
        r"hospital 'node1': .*node1/pancreasData.csv: the first row has no column names",
        secrets,
    )


def case_no_header_at_both(site):
    # used to print both hospitals' first patients in the 'columns differ' error
    secrets = first_row(site) + first_row(site, "node2")
    rewrite(site, headerless)
    rewrite(site, headerless, "node2")
    return simulate_argv(site), r"the first row has no column names", secrets


def case_same_folder_twice(site):
    argv = ["simulate", site / "node1", f"{site / 'node1'}/", site / "node2"]
    return [*argv, "--out", site / "out/m.pkl"], r"are the same folder; give each hospital once", ()


def case_same_folder_through_a_link(site):
    (site / "link").symlink_to(site / "node1")
    return simulate_argv(site, "node1", "link", "node2"), r"are the same folder", ()


def case_out_is_a_hospitals_csv(site):
    return (
        simulate_argv(site, out="node1/pancreasData.csv"),
        r"--out .*node1/pancreasData.csv: is the data file of hospital 'node1'; writing there "
        r"would destroy it",
        (),
    )


def case_report_is_out(site):
    argv = [*simulate_argv(site), "--report", site / "out/m.pkl"]
    return argv, r"--report .*m.pkl: is also --out; give each output its own file", ()


def case_predict_out_is_its_input(site):
    argv = ["predict", "--model", model_file(site), csv_of(site), "--out", csv_of(site)]
    return argv, r"--out .*: is the input CSV; writing there would destroy it", ()


def case_predict_out_is_the_model(site):
    model = model_file(site)
    argv = ["predict", "--model", model, csv_of(site), "--out", model]
    return argv, r"--out .*model.pkl: is the --model file", ()


def case_report_unwritable(site):
    # --out could be written, --report cannot: checked before anything runs, nothing written
    argv = [*simulate_argv(site), "--report", site / "node1/pancreasData.csv/r.json"]
    return argv, r"--report .*r.json: cannot write there \(Not a directory\)", ()


def case_pickle_bomb_shared_references(site):
    (site / "bomb.pkl").write_bytes(pickle.dumps(nest(40), protocol=2))  # 2**40 paths
    argv = ["predict", "--model", site / "bomb.pkl", csv_of(site)]
    return argv, r"bomb.pkl: nested more than 32 levels deep", ()


def case_pickle_nested_100000_deep(site):
    (site / "deep.pkl").write_bytes(b"\x80\x02" + b"]" * 100_000 + b"a" * 99_999 + b".")
    argv = ["predict", "--model", site / "deep.pkl", csv_of(site)]
    return argv, r"deep.pkl: nested more than 32 levels deep", ()


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo owned > owned.txt",))


def case_pickle_that_runs_code(site):
    (site / "evil.pkl").write_bytes(pickle.dumps({"coef": _Exploit()}))
    argv = ["predict", "--model", site / "evil.pkl", csv_of(site)]
    return argv, r"evil.pkl: refusing to load: the file refers to (posix|os|nt)\.system", ()


def case_text_labels_that_are_measurements(site):
    set_column(site, "diagnosis", ["37.2", "38.5", "unknown"])
    return (
        simulate_argv(site),
        r"label column 'diagnosis' must be 0/1, found value\(s\) 'unknown' and 2 other",
        ("37.2", "38.5"),
    )


def case_duplicate_feature_names(site):
    model = model_file(site, names=["KRAS"] * 8)
    argv = ["predict", "--model", model, csv_of(site)]
    return argv, r"model.pkl: duplicate feature name\(s\) 'KRAS'", ()


def case_predict_field_over_the_csv_limit(site):
    rewrite(site, lambda raw: raw.replace(b"\n", b"\n" + b"7" * 140_000, 1))
    argv = ["predict", "--model", model_file(site), csv_of(site)]
    return argv, r"pancreasData.csv: line 2 has a field longer than 131,072 characters", ()


def case_hospital_named_aggregator(site):
    shutil.copytree(site / "node1", site / "aggregator")
    argv = ["simulate", "aggregator", "node2", "--out", "out/m.pkl"]  # run in site
    return argv, r"hospital folder 'aggregator': the name is the aggregator's node id", ()


def case_column_name_over_the_csv_limit(site):
    rewrite(site, lambda raw: b"K" * 140_000 + raw[4:])
    return simulate_argv(site), r"line 1 \(the header\) has a field longer than 131,072", ()


def case_header_wider_than_any_shareable_model(site):
    wide = ",".join(f"g{i}" for i in range(100_000)).encode()
    rewrite(site, lambda raw: wide + b"\n" + raw.split(b"\n", 1)[1])
    return (
        simulate_argv(site),
        r"hospital 'node1': .*: has 100,000 columns but at most 225 data rows",
        (),
    )


def case_extreme_values(site, scale=1e200, strategy="exact"):
    frame = pd.read_csv(csv_of(site))
    frame["KRAS"] = frame["KRAS"] / frame["KRAS"].abs().max() * scale
    csv_of(site).write_text(frame.to_csv(index=False))
    return (
        [*simulate_argv(site), "--strategy", strategy],
        r"225 value\(s\) beyond ±1e150 in column\(s\) 'KRAS' \(225\)",
        (),
    )


def case_bare_array_with_another_width(site):
    rewrite(site, lambda raw: b"\n".join(b",".join(r.split(b",")[:5]) for r in raw.split(b"\n")))
    argv = ["predict", "--model", model_file(site, bare=True), csv_of(site)]
    return argv, r"has 5 columns but the model has 8 features", ()


def case_dataset_missing_lists_the_files(site):
    (site / "node1" / "audit.log").write_bytes(b"x")
    argv = [*simulate_argv(site), "--dataset", "cohort.csv"]
    return argv, r"cohort.csv: not found; the folder holds 'audit.log', 'pancreasData.csv'", ()


def case_line_break_in_a_folder_name(site):
    (site / "node1").rename(site / "new\nline")
    rewrite(site, lambda raw: raw.split(b"\n", 1)[0] + b"\n", "new\nline")
    return simulate_argv(site, "new\nline", "node2"), r"hospital 'new\\nline': '.*new\\nline", ()


def case_utf16_without_a_byte_order_mark(site):
    rewrite(site, lambda raw: raw.decode().encode("utf-16-le"))
    return simulate_argv(site), r"is UTF-16-LE text without a byte-order mark", ()


def case_empty_folder_argument(site):
    return ["simulate", "", site / "node2", "--out", site / "out/m.pkl"], r"an empty path", ()


# the classes that already held
def case_mixed_encodings(site):
    # UTF-8 and latin-1 in one file: ambiguous, so read as UTF-8 and refused as before
    rewrite(site, lambda raw: raw.replace(b"KRAS", b"KR\xc4S", 1).replace(b"MSLN", b"MSL\xc3\x84"))
    return simulate_argv(site), r"is not UTF-8 text \(invalid byte at offset 2, line 1\)", ()


def case_values_joined_by_another_delimiter_in_the_first_row(site):
    # the first row is a patient's values joined by ';' (no header): never a column name
    secrets = first_row(site)
    rewrite(site, lambda raw: b";," + headerless(raw).replace(b",", b";"))
    return simulate_argv(site), r"field\(s\) that read as decimal numbers", secrets


def case_semicolons_with_both_decimal_marks(site):
    # ';' with decimal commas and points in one file: ambiguous, refused as before
    rewrite(site, lambda raw: raw.replace(b",", b";").replace(b".", b",", 5))
    return simulate_argv(site), r"is not comma-separated", ()


def case_utf16_with_a_byte_order_mark(site):
    rewrite(site, lambda raw: raw.decode().encode("utf-16"))
    return simulate_argv(site), r"is UTF-16 text \(byte-order mark at byte 0\)", ()


def case_other_delimiter(site, delimiter=b";"):
    rewrite(site, lambda raw: raw.replace(b",", delimiter))
    return simulate_argv(site), r"is not comma-separated", ()


def case_ragged_row(site):
    def ragged(raw):
        lines = raw.split(b"\n")
        lines[2:6] = [line + b",1.5,2.5" for line in lines[2:6]]  # file lines 3 to 6
        return b"\n".join(lines)

    rewrite(site, ragged)
    return simulate_argv(site), r"line 3 has 11 fields, header has 9 \(4 such rows in all\)", ()


def case_missing_value_spelling(site, spelling=""):
    rewrite(site, lambda raw: re.sub(rb"\n[^,]*,", f"\n{spelling},".encode(), raw, count=3))
    return simulate_argv(site), r"has 3 missing value\(s\) in column\(s\) 'KRAS' \(3\)", ()


def case_every_problem_of_every_hospital(site):
    set_column(site, "KRAS", ["high", "low", "high"])
    set_column(site, "TP53", ["", "7.5", "8.5", "9.5"])
    set_column(site, "diagnosis", ["1", "2", "2"], node="node2")
    return (
        simulate_argv(site),
        r"^pancreas-fl: error: hospital 'node1': \S*node1/pancreasData\.csv: 2 problems: "
        r"\(1\) 1 feature column\(s\) 'KRAS' are not numeric; "
        r"\(2\) has 57 missing value\(s\) in column\(s\) 'TP53' \(57\)\. "
        r"Export numbers only .*Say what a blank means",
        (),
    )


CASES = {
    name.removeprefix("case_"): function
    for name, function in dict(globals()).items()
    if name.startswith("case_")
}
PARAMETRIZED = {
    "extreme_values": [
        {"scale": 1e200, "strategy": "exact"},
        {"scale": 3e201, "strategy": "exact"},
        {"scale": 1e308, "strategy": "fedavg"},
    ],
    "other_delimiter": [{"delimiter": d} for d in (b"\t", b"|")],  # ';' is read (dialect)
    "missing_value_spelling": [{"spelling": s} for s in ("", "NA", "nan", "null", "N/A")],
}
REFUSALS = [
    pytest.param(name, kwargs, id=f"{name}-{'-'.join(map(str, kwargs.values()))}".rstrip("-"))
    for name in CASES
    for kwargs in PARAMETRIZED.get(name, [{}])
]


@pytest.mark.parametrize(("case", "kwargs"), REFUSALS)
def test_hostile_input_is_refused_in_one_line(site, capsys, monkeypatch, case, kwargs):
    monkeypatch.chdir(site)  # nothing may land in the working folder either
    argv, match, secrets = CASES[case](site, **kwargs)
    before = files_under(site)
    code, _, err = run(argv, capsys)
    assert_refused(code, err, match, secrets)
    assert files_under(site) == before  # inputs unchanged, no output, no temporary file


# ---------------------------------------------------------------------------- exit 0, correct
def test_unrelated_files_in_a_hospital_folder_are_not_read(site, capsys):
    unreadable = site / "node1" / "audit.log"
    unreadable.write_bytes(b"x")
    unreadable.chmod(0)
    (site / "node1" / "scan.bin").write_bytes(bytes(range(256)) * 20_000)  # 5 MB, not UTF-8
    os.mkfifo(site / "node1" / "fifo")  # reading it would block forever
    code, _, err = run([*simulate_argv(site), "--quiet"], capsys)
    assert code == 0, err
    reference = run_analysis(
        [[{DATASET: csv_of(site, n).read_bytes()}] for n in ("node1", "node2")]
    )
    assert pickle.loads((site / "out/m.pkl").read_bytes()).tobytes() == reference.result.tobytes()


def test_a_hospital_folder_named_aggregator_is_fine_by_a_longer_path(site, capsys):
    (site / "sites").mkdir()
    shutil.copytree(site / "node1", site / "sites" / "aggregator")
    code, stdout, err = run([*simulate_argv(site, "sites/aggregator", "node2"), "--quiet"], capsys)
    assert code == 0, err
    assert "sites/aggregator" in stdout


def test_a_bare_array_predicts_with_a_warning_that_the_order_cannot_be_verified(site, capsys):
    model = model_file(site, bare=True)
    code, stdout, err = run(["predict", "--model", model, csv_of(site)], capsys)
    assert code == 0, err
    assert err.count("\n") == 1
    assert err.startswith(f"pancreas-fl: warning: {model} holds bare coefficients without ")
    assert "cannot be verified. Use the model dict (simulate --output model)" in err
    table = pd.read_csv(io.StringIO(stdout))
    X = pd.read_csv(csv_of(site)).iloc[:, :8].to_numpy()
    coef = pickle.loads(model.read_bytes())
    np.testing.assert_allclose(table["probability"], 1 / (1 + np.exp(-X @ coef.ravel())), atol=1e-6)


def test_a_model_dict_matches_columns_by_name_without_a_warning(site, capsys):
    # the same model with names: reordered columns give the same predictions
    model = model_file(site)
    frame = pd.read_csv(csv_of(site))
    shuffled = site / "shuffled.csv"
    shuffled.write_text(frame[list(reversed(frame.columns))].to_csv(index=False))
    code, stdout, err = run(["predict", "--model", model, shuffled], capsys)
    assert (code, err) == (0, "")
    assert stdout == run(["predict", "--model", model, csv_of(site)], capsys)[1]


def test_a_huge_round_count_in_a_model_dict_predicts(site, capsys):
    model = model_file(site, rounds=2**40)
    code, stdout, err = run(["predict", "--model", model, csv_of(site)], capsys)
    assert (code, err) == (0, "")
    assert (
        stdout == run(["predict", "--model", model_file(site, rounds=7), csv_of(site)], capsys)[1]
    )


def test_a_write_that_fails_late_leaves_no_output(site, capsys, monkeypatch):
    # every location passed the check, then the disk fills up while writing the report: the
    # model (staged first) is not written either, and the error names --report's path
    real_open = os.open
    opened = []

    def full_disk(path, flags, *args):
        if ".r.json." in os.fspath(path):
            opened.append(path)
            if len(opened) == 2:  # the first is the check before the run
                raise OSError(28, "No space left on device", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", full_disk)
    report = site / "out" / "r.json"
    code, _, err = run([*simulate_argv(site), "--report", report, "--quiet"], capsys)
    assert code == 2
    assert err == (
        f"pancreas-fl: error: --report {report}: cannot write (No space left on device); "
        "no output was written.\n"
    )
    assert list((site / "out").iterdir()) == []


# ---------------------------------------------------------------------------- random mutations
_RNG = np.random.default_rng(8)
_BASE = {}
for _name, _n in (("a", 40), ("b", 30)):
    _X = _RNG.normal(10.0, 2.0, size=(_n, 3))
    _y = (_X[:, 0] + _RNG.normal(0, 2.0, _n) > 10.0).astype(int)
    _frame = pd.DataFrame(_X, columns=["KRAS", "TP53", "MSLN"]).assign(diagnosis=_y)
    _BASE[_name] = _frame.to_csv(index=False, float_format="%.3f", lineterminator="\n").encode()
_BASE_SECRETS = {
    v for line in _BASE["a"].decode().splitlines()[1:] for v in line.split(",") if "." in v
}
_BASE_SECRETS |= {v.replace(".", ",") for v in _BASE_SECRETS}  # as a spreadsheet writes them
_BYTES = st.sampled_from(
    [b",", b"\n", b"\r\n", b'"', b";", b"\t", b" ", b"\x00", b"\xff", b"\xef\xbb\xbf",
     b"1", b"-", b".", b"e9", b"NA", b"x", b"inf", b"1e400", b"True"]
)  # fmt: skip


@st.composite
def mutated(draw):
    """Hospital a's CSV after one to three random mutations."""
    raw = _BASE["a"]
    for _ in range(draw(st.integers(1, 3))):
        kinds = ["truncate", "insert", "delimiter", "header", "no-header", "line", "spreadsheet"]
        kind = draw(st.sampled_from(kinds))
        at = draw(st.integers(0, len(raw)))
        if kind == "spreadsheet":  # a German export: ';', decimal commas, cp1252, CRLF
            raw = raw.replace(b",", b";").replace(b".", b",")
            if draw(st.booleans()):
                raw = raw.replace(b"diagnosis", "Diagnose_bösartig".encode("cp1252"))
            if draw(st.booleans()):
                raw = raw.replace(b"\n", b"\r\n")
        elif kind == "truncate":
            raw = raw[:at]
        elif kind == "insert":
            raw = raw[:at] + b"".join(draw(st.lists(_BYTES, min_size=1, max_size=4))) + raw[at:]
        elif kind == "delimiter":
            new = draw(st.sampled_from([b";", b"\t", b"|", b" "]))
            raw = raw[:at] + raw[at:].replace(b",", new)
        elif kind == "no-header":  # the export without its header row
            raw = raw.partition(b"\n")[2]
        elif kind == "header":
            header, _, rest = raw.partition(b"\n")
            names = header.split(b",")
            if draw(st.booleans()) or len(names) < 2:  # the header again, as a row
                lines = raw.split(b"\n")
                lines.insert(draw(st.integers(0, len(lines))), header)
                raw = b"\n".join(lines)
            else:  # a duplicated column name
                i, j = draw(st.integers(0, len(names) - 1)), draw(st.integers(0, len(names) - 1))
                names[i] = names[j]
                raw = b",".join(names) + b"\n" + rest
        else:  # drop or repeat a line
            lines = raw.split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines[i : i + 1] = [] if draw(st.booleans()) else [lines[i], lines[i]]
            raw = b"\n".join(lines)
    return raw


def in_tutorials_format(raw: bytes) -> bytes:
    """Return the file as pandas reads it in its detected dialect, as the tutorial's CSV.

    Independent of pancreas-fl's rewriting: pandas parses the separator, decimal mark and
    encoding itself, and writes every float so that it reads back to the same bits.
    """
    dialect = detect(raw)
    if dialect.standard:
        return raw
    frame = pd.read_csv(
        io.BytesIO(raw), sep=dialect.sep, decimal=dialect.decimal, encoding=dialect.encoding
    )
    return frame.to_csv(index=False).encode()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # the tutorial's
@settings(
    max_examples=int(os.environ.get("PANCREAS_FL_HOSTILE_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(raw=mutated())
def test_any_mutation_of_a_csv_exits_2_in_one_line_or_0_with_the_tutorials_result(raw):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, content in (("a", raw), ("b", _BASE["b"])):
            (root / name).mkdir()
            (root / name / DATASET).write_bytes(content)
        out = root / "m.pkl"
        stdout, stderr = io.StringIO(), io.StringIO()
        argv = ["simulate", str(root / "a"), str(root / "b"), "--out", str(out), "--quiet"]
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(sys, "stdout", stdout)
            mp.setattr(sys, "stderr", stderr)
            code = main([*argv, "--timeout", "60"])
        err = stderr.getvalue()
        assert (root / "a" / DATASET).read_bytes() == raw  # the input is unchanged
        if code == 2:
            assert err.count("\n") == 1, err
            assert err.startswith("pancreas-fl: error: "), err
            leaked = [v for v in _BASE_SECRETS if v in err]
            assert not leaked, err
            assert not out.exists()
        else:
            assert code == 0, err
            assert err == ""
            splits = [[{DATASET: in_tutorials_format(raw)}], [{DATASET: _BASE["b"]}]]
            tutorial = run_analysis(
                splits,
                analyzer=_tutorial.PancreasAnalyzer,
                aggregator=_tutorial.FederatedLogisticRegression,
            )
            written = pickle.loads(out.read_bytes())
            assert written.shape == tutorial.result.shape
            assert written.tobytes() == tutorial.result.tobytes()
        assert sorted(p.name for p in root.iterdir()) == sorted(
            ["a", "b", *(["m.pkl"] if code == 0 else [])]
        )


# ---------------------------------------------------------------------------- signals, killed nodes
def start(site, *extra):
    """Start the console script on a run that would take hours; wait until its rounds begin."""
    argv = [
        sys.executable, "-m", "pancreas_fl_tools.cli", "simulate", "node1", "node2",
        "--max-iter", "1000000", "--tol", "1e-300", "--out", "out/m.pkl", *extra,
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv, cwd=site, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    for line in proc.stdout:
        if "round 1:" in line:
            return proc
    proc.kill()
    pytest.fail(f"the run ended before round 1: {proc.communicate()[1]}")


def finish(proc):
    try:
        return proc.communicate(timeout=120)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the command did not end")


def test_ctrl_c_ends_the_run_with_one_line_and_no_output(site):
    proc = start(site, "--isolation", "thread")
    proc.send_signal(signal.SIGINT)
    err = finish(proc)
    assert (proc.returncode, err) == (130, "pancreas-fl: interrupted\n")
    assert list((site / "out").iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the node via /proc")
def test_a_killed_hospital_process_fails_the_run_in_one_line(site):
    proc = start(site, "--isolation", "process")
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    nodes = children  # the command's children are its node processes, in participant order
    os.kill(int(nodes[0]), signal.SIGKILL)
    err = finish(proc)
    assert proc.returncode == 1
    assert err.count("\n") == 1
    assert err.startswith("pancreas-fl: error: the analysis failed at hospital 'node1': ")
    assert "exit code -9" in err
    assert list((site / "out").iterdir()) == []
