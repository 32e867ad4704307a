"""Hospitals' own spreadsheet exports: detecting how a CSV is written, and rewriting it."""

from __future__ import annotations

import csv

import pytest

import _tutorial
from _helpers import DATASET, SAMPLE, run_analysis, sample_splits
from flame_offline import NodeFailedError
from pancreas_fl.dialect import Dialect, detect, to_standard
from pancreas_fl.errors import DataError

SAMPLE_RAW = (SAMPLE / "node1" / DATASET).read_bytes()


def spreadsheet(raw: bytes, *, label="Diagnose_bösartig", encoding="cp1252", crlf=True) -> bytes:
    """Write a tutorial CSV as German Excel exports it: ';', decimal commas, cp1252, CRLF."""
    text = raw.decode().replace(",", ";").replace(".", ",").replace("diagnosis", label)
    return (text.replace("\n", "\r\n") if crlf else text).encode(encoding)


# ---------------------------------------------------------------------------- detection
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (SAMPLE_RAW, (",", ".", "utf-8")),
        (spreadsheet(SAMPLE_RAW), (";", ",", "cp1252")),
        (spreadsheet(SAMPLE_RAW, encoding="utf-8"), (";", ",", "utf-8")),
        (spreadsheet(SAMPLE_RAW, label="diagnosis€", encoding="cp1252"), (";", ",", "cp1252")),
        (SAMPLE_RAW.replace(b",", b";"), (";", ".", "utf-8")),
        (b"a;b;y\r\n1;2;0\r\n3;4;1\r\n", (";", ".", "utf-8")),  # whole numbers only
        (b'"weight, kg";age;y\n70,5;65;1\n80,25;70;0\n', (";", ",", "utf-8")),
        # a comma in a ';' export's column name: ';' splits the header wider, rows alike
        (b"weight, kg;age;y\n70,5;65;1\n80,25;70;0\n", (";", ",", "utf-8")),
        # a ';' in a comma file's column name: only ',' splits the rows as the header
        (b"a;b,c\n1.5,2\n3.5,4\n", (",", ".", "utf-8")),
        (b"Gr\xf6\xdfe,y\n1.5,0\n", (",", ".", "cp1252")),  # comma-separated latin-1
    ],
    ids=[
        "tutorial",
        "german-excel",
        "semicolon-utf8",
        "cp1252-euro",
        "semicolon-points",
        "semicolon-integers",
        "quoted-comma-name",
        "comma-in-name",
        "semicolon-in-name",
        "latin1-comma",
    ],
)
def test_unambiguous_exports_are_detected(raw, expected):
    dialect = detect(raw)
    assert (dialect.sep, dialect.decimal, dialect.encoding) == expected
    assert dialect.ambiguous is None
    assert dialect.given == ()


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"a;b;y\n1,5;2.5;0\n", "semicolon-separated with both decimal commas and decimal points"),
        (b"K\xc3\x84S,K\xc4S,y\n1,2,0\n", "UTF-8 and single-byte text mixed"),
        (b"a\x81,y\n1,0\n", "neither UTF-8 nor cp1252 text"),
    ],
    ids=["both-decimal-marks", "mixed-encodings", "cp1252-undefined"],
)
def test_ambiguous_files_are_read_as_the_tutorial_reads_them(raw, why):
    dialect = detect(raw)
    assert dialect.standard
    assert dialect.ambiguous == why
    assert to_standard(raw, dialect, "f.csv") is raw  # refused later, as before
    assert dialect.describe() == (
        f"comma-separated, decimal points, UTF-8 (the tutorial's format: {why})"
    )


@pytest.mark.parametrize(
    "raw",
    [b"a,b\x00\n", "a;b\n1,5;2\n".encode("utf-16"), "a;b\n1,5;2\n".encode("utf-16-le")],
    ids=["nul", "utf16-bom", "utf16-le"],
)
def test_nul_bytes_and_utf16_are_left_to_the_readers_checks(raw):
    assert detect(raw).encoding == "utf-8"


def test_given_parts_override_the_detection():
    raw = spreadsheet(SAMPLE_RAW)
    dialect = detect(raw, encoding="latin-1")
    assert (dialect.sep, dialect.decimal, dialect.encoding) == (";", ",", "latin-1")
    assert dialect.given == ("encoding",)
    assert dialect.describe().endswith("(sep, decimal detected, encoding as given)")
    assert detect(raw, sep=";", decimal=",", encoding="cp1252").describe().endswith("(as given)")
    # tab-separated with decimal commas: only when given
    tabbed = b"a\tb\ty\n1,5\t2,5\t0\n"
    assert detect(tabbed).standard
    assert (detect(tabbed, sep="\t").sep, detect(tabbed, sep="\t").decimal) == ("\t", ",")
    # decimal commas given on a file whose header does not split at ';': not ',' separated
    assert detect(b"a\n1,5\n", decimal=",").sep == ";"


def test_describe_names_the_format_and_what_was_detected():
    assert Dialect(";", ",", "cp1252").describe() == (
        "semicolon-separated (';'), decimal commas, cp1252 (Windows-1252) (detected)"
    )
    assert Dialect().describe() == "comma-separated, decimal points, UTF-8 (detected)"


# ---------------------------------------------------------------------------- rewriting
def test_the_tutorials_format_is_passed_on_as_the_same_bytes():
    assert to_standard(SAMPLE_RAW, detect(SAMPLE_RAW), "f.csv") is SAMPLE_RAW


def test_a_spreadsheet_export_is_rewritten_to_the_tutorials_csv_digit_for_digit():
    raw = spreadsheet(SAMPLE_RAW)
    rewritten = to_standard(raw, detect(raw), "f.csv")
    assert rewritten == SAMPLE_RAW.replace(b"diagnosis", "Diagnose_bösartig".encode())


def test_lines_quotes_and_blanks_are_kept():
    raw = 'name;"a; b";y\r\n"x, 1";1,5;0\r\n\r\n"two\r\nlines";;1\r\n'.encode("cp1252")
    rewritten = to_standard(raw, detect(raw), "f.csv")
    assert rewritten == b'name,a; b,y\n"x, 1",1.5,0\n\n"two\r\nlines",,1\n'
    assert rewritten.count(b"\n") == raw.count(b"\n")  # messages name the same lines


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("9,266", "9.266"),
        ("-0,5", "-0.5"),
        (",5", ".5"),
        ("1,5E-3", "1.5E-3"),
        (" 2,25 ", " 2.25 "),
        ("12", "12"),
        ("", ""),
        ("1.234,5", '"1.234,5"'),  # a thousands separator: not a number, refused later
        ("Stadium II,a", '"Stadium II,a"'),
    ],
)
def test_decimal_commas_become_points_and_nothing_else_changes(field, expected):
    raw = f"a;y\n{field};0\n".encode()
    rewritten = to_standard(raw, Dialect(";", ",", "utf-8", ("sep", "decimal")), "f.csv")
    assert rewritten == f"a,y\n{expected},0\n".encode()


def test_a_decimal_point_in_a_decimal_comma_file_is_refused_by_column():
    raw = b"KRAS;TP53;y\n1,5;2.5;0\n2,5;3.5;1\n"
    with pytest.raises(
        DataError,
        match=r"f\.csv: uses decimal commas, but 2 value\(s\) in column\(s\) 'TP53' are written "
        r"with a decimal point\. Write every fraction with a decimal comma, or give decimal='\.'",
    ) as info:
        to_standard(raw, detect(raw, decimal=","), "f.csv")
    assert "2.5" not in str(info.value)


def test_a_byte_cp1252_leaves_undefined_is_refused_when_cp1252_is_given():
    raw = b"a;y\n1,5;0\n\x81;1\n"
    with pytest.raises(DataError, match=r"is not cp1252 text \(byte 0x81 at offset 10, line 3"):
        to_standard(raw, detect(raw, encoding="cp1252"), "f.csv")


def test_the_same_mark_for_separator_and_decimal_is_refused():
    with pytest.raises(DataError, match=r"cannot be read with commas as both the separator"):
        to_standard(b"a,b\n1,2\n", Dialect(",", ",", "utf-8", ("sep", "decimal")), "f.csv")


def test_a_field_over_the_csv_limit_is_one_line_with_its_line_number():
    raw = b"a;y\n1,5;0\n" + b'"' + b"x" * (csv.field_size_limit() + 10) + b'";1\n'
    with pytest.raises(DataError, match=r"line 3 has a field longer than 131,072 characters"):
        to_standard(raw, detect(raw, sep=";"), "f.csv")


def test_a_file_that_is_not_utf8_as_given_is_left_to_the_readers_check():
    raw = b"a;y\n1,5;\xe9\n"
    assert to_standard(raw, detect(raw, encoding="utf-8"), "f.csv") is raw


# ---------------------------------------------------------------------------- end to end
def german_splits():
    return [
        [{DATASET: spreadsheet((SAMPLE / node / DATASET).read_bytes())}]
        for node in ("node1", "node2")
    ]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # the tutorial's
def test_a_german_export_of_data_sample_gives_the_tutorials_result_bit_for_bit():
    tutorial = run_analysis(
        sample_splits(),
        analyzer=_tutorial.PancreasAnalyzer,
        aggregator=_tutorial.FederatedLogisticRegression,
    ).result
    export = run_analysis(german_splits()).result
    assert export.shape == tutorial.shape == (1, 8)
    assert export.tobytes() == tutorial.tobytes()


def test_a_german_export_gives_the_exact_strategys_result_bit_for_bit():
    params = {"strategy": "exact", "fit_intercept": True}
    expected = run_analysis(sample_splits(), **params).result
    got = run_analysis(german_splits(), **params).result
    assert got["coef"].tobytes() == expected["coef"].tobytes()
    assert got["statistics"]["std_err"] == expected["statistics"]["std_err"]
    assert got["label"] == "Diagnose_bösartig"


def test_each_hospital_logs_how_it_read_its_file_once_without_values():
    records = []
    # one hospital's export, the other's tutorial file (UTF-8, the same column names)
    utf8 = (SAMPLE / "node2" / DATASET).read_text().replace("diagnosis", "Diagnose_bösartig")
    splits = [german_splits()[0], [{DATASET: utf8.encode()}]]
    run_analysis(splits, log_handler=records.append, node_ids=["h1", "h2"])
    notices = {
        r.node_id: r.message for r in records if r.log_type == "notice" and "read as" in r.message
    }
    assert notices == {
        "h1": "pancreasData.csv: read as semicolon-separated (';'), decimal commas, cp1252 "
        "(Windows-1252) (detected)",
        "h2": "pancreasData.csv: read as comma-separated, decimal points, UTF-8 (detected)",
    }
    assert sum("read as" in r.message for r in records) == 2


def test_explicit_parameters_override_the_detection_at_every_hospital():
    raw = spreadsheet(SAMPLE_RAW)
    records = []
    run_analysis(
        [[{DATASET: raw}], [{DATASET: raw}]],
        sep=";",
        decimal=",",
        encoding="latin-1",
        log_handler=records.append,
    )
    notices = [r.message for r in records if "read as" in r.message]
    assert len(notices) == 2
    assert all(m.endswith("latin-1 (as given)") for m in notices)


def test_a_headerless_export_is_refused_without_showing_its_first_row():
    rows = spreadsheet(SAMPLE_RAW).split(b"\r\n", 1)[1]  # the export without its header row
    data = [{DATASET: rows}]
    with pytest.raises(NodeFailedError, match=r"the first row has no column names") as info:
        run_analysis([data, data])
    assert "9,266" not in str(info.value)
    assert "9.266" not in str(info.value)


def test_a_decimal_number_among_a_headers_names_is_refused_as_a_missing_header():
    rows = b"Alter;6,523;y\n70;1,5;0\n"
    rewritten = to_standard(rows, detect(rows), "f.csv")
    assert rewritten.split(b"\n")[0] == b"Alter,6.523,y"  # the reader's header check refuses it
