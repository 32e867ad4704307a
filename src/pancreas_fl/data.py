"""Load and validate one hospital's data exactly as the FLAME pancreas tutorial reads it.

A FLAME analyzer node receives its data in the *s3* format: a list with one dict per data
source, each mapping an object key (file name) to the object's content as ``bytes``. The
tutorial does::

    df = pd.read_csv(BytesIO(data[0]["pancreasData.csv"]))
    X, y = df.iloc[:, :-1], df.iloc[:, -1]

:func:`load_hospital_data` makes the *same* ``pd.read_csv(BytesIO(raw))`` call and the *same*
``iloc`` slicing for the default (last-column) label, then converts the features once exactly
as scikit-learn's ``LogisticRegression.fit`` converts that frame in every fit, so a model
fitted on ``HospitalData.X`` / ``HospitalData.y`` is bit-identical to the tutorial's. Only
that float64 matrix (and the 0/1 labels) is kept: the frame is dropped, and the file's text is
never held as one string (a hospital holds its CSV bytes and one matrix). It parses the file
once and checks it first, so that a bad file gives one clear line (what is wrong, where, and
what to do) instead of a pandas or scikit-learn traceback.

Every message contains counts, line numbers and column names only, never a patient value.
The only values ever named are distinct *label* values when the label is not 0/1 and they are
clearly category codes (words or small whole numbers, each held by at least
:data:`~pancreas_fl.privacy.DEFAULT_MIN_CLASS_SIZE` patients), because the data owner needs
them to fix the encoding. Column names are named: they are what the hospital chose to export,
and they also travel to the aggregator (see :func:`check_same_columns`).

Checks, in order (cheap structural checks first, all before pandas parses the file):

1. ``data`` is a non-empty list of dicts (what FLAME delivers for ``data_type='s3'``);
2. one source holds the dataset key (the first such source is used, as ``data[0]`` is in the
   tutorial when it holds the key);
3. the object is bytes, not empty, without NUL bytes (UTF-16 with or without a byte-order
   mark is named as such) and valid UTF-8 (a UTF-8 byte-order mark is fine);
4. the header (read with :mod:`csv`, because pandas silently renames duplicates to ``x.1``
   and empty names to ``Unnamed: 1``) uses commas, is a header at all (a first row of values,
   or one holding any decimal number, is a patient's record, not column names, and is never
   shown), has no over-long, empty or duplicate names and no field over the :mod:`csv`
   module's limit of 131,072 characters;
5. the header is not wider than the privacy guard could ever accept (more features than the
   file has rows), and the rows can hold as many fields as the header has;
6. pandas parses it (ragged rows are reported by line), and it has at least one row;
7. the label column exists and at least one feature column remains;
8. every feature is numeric, nothing is missing or infinite, and no magnitude exceeds
   :data:`MAX_ABS_VALUE` (squares and their sums must stay finite);
9. the label is 0/1 (ints, floats 0.0/1.0 or booleans) and, unless disabled, both classes are
   present.

Checks 1 to 7 stop at the first problem: what follows needs a table with a label and
features. Checks 8 and 9 all run, and every failing one is a problem of its own
(:func:`read_hospital_data` returns them all; :func:`load_hospital_data` raises one error
listing them all, in one line), so that a data owner fixes a file once, not once per run.

Boolean feature columns (``True``/``False`` in the file, parsed by pandas as ``bool``) are
accepted: scikit-learn converts them to 0.0/1.0 exactly as it would a 0/1 column, so they are
numeric for the model.
"""

from __future__ import annotations

import codecs
import csv
import ctypes
import io
import math
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO

import numpy as np
import pandas as pd

from pancreas_fl._warnings import ignoring
from pancreas_fl.errors import ConfigError, DataError, as_error, as_problem
from pancreas_fl.params import DEFAULT_DATASET
from pancreas_fl.privacy import DEFAULT_MIN_CLASS_SIZE
from pancreas_fl.s3 import find_object
from pancreas_fl.wording import listed, listed_counts

__all__ = [
    "DEFAULT_DATASET",
    "MAX_ABS_VALUE",
    "MAX_NAME_LENGTH",
    "HospitalData",
    "load_feature_table",
    "load_hospital_data",
    "read_hospital_data",
]


MAX_NAME_LENGTH = 255
"""Longest column name accepted (characters). Names travel to the aggregator and into
messages; a longer one is not a variable name."""

MAX_ABS_VALUE = 1e150
"""Largest feature magnitude accepted. Its square is at most 1e300, so sums of squares over up
to 10**8 patients (the exact strategy's curvature, standardization's moments) stay finite in
float64 (largest 1.8e308); beyond it the statistics overflow."""

_MAX_ABS_TEXT = f"{MAX_ABS_VALUE:g}".replace("e+", "e")  # '1e150'
_CHUNK = 1 << 20  # bytes of a file decoded at a time
_MAX_LISTED = 20  # object keys / column names listed in one message
_MAX_LABEL_VALUES = 10  # distinct label values listed in one message
_MAX_CODE_LENGTH = 32  # a label value longer than this is not a category code
_BLANK = re.compile(r"\s*")
_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe", " ": "space"}
# What pandas reads as missing (its default na_values) or boolean: a first row made of these
# and numbers is a patient's record, not a header.
_NA_SPELLINGS = frozenset(
    {
        *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND"),
        *("1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"),
        *("True", "False", "TRUE", "FALSE", "true", "false"),
    }
)


@dataclass(frozen=True, eq=False)
class HospitalData:
    """One hospital's validated data: one float64 matrix of features and the 0/1 labels.

    Parameters
    ----------
    X : array_like of shape (n_samples, n_features)
        The feature columns, as float64. :func:`load_hospital_data` makes it exactly as
        scikit-learn's ``LogisticRegression.fit`` converts the tutorial's
        ``df.iloc[:, :-1]`` (a C-ordered float64 array), once: a fit on ``X`` is a fit on
        that frame, bit for bit, without converting it again in every round.
    y : array_like of shape (n_samples,)
        The labels, 0/1 (converted to int64).
    feature_names : tuple of str
        The feature column names, in file order.
    label_name : str
        The label column name.

    Attributes
    ----------
    X : numpy.ndarray of shape (n_samples, n_features)
        float64, C-contiguous, read-only (a view; copied only if the given array was not
        float64 and C-contiguous).
    y : numpy.ndarray of shape (n_samples,)
        int64, read-only.

    Notes
    -----
    No DataFrame is kept: :attr:`features` and :attr:`labels` are pandas views of ``X`` and
    ``y``, made on request without copying. Instances compare and hash by identity
    (``eq=False``).
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    label_name: str

    def __post_init__(self) -> None:
        """Check the fields; keep read-only views of the arrays (float64 C order, int64)."""
        X = np.ascontiguousarray(self.X, dtype=np.float64).view()
        y = np.asarray(self.y).astype(np.int64, copy=False).view()
        if X.ndim != 2 or y.ndim != 1:
            raise ValueError("X must be 2-dimensional and y 1-dimensional")
        if X.shape[0] != y.shape[0]:
            raise ValueError("X and y must have the same number of rows")
        names = tuple(str(name) for name in self.feature_names)
        if len(names) != X.shape[1]:
            raise ValueError("feature_names must name every column of X, in order")
        X.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "feature_names", names)
        object.__setattr__(self, "label_name", str(self.label_name))

    def __reduce__(self):
        """Pickle through the constructor, so that an unpickled copy is read-only too."""
        return (type(self), (self.X, self.y, self.feature_names, self.label_name))

    @property
    def n_samples(self) -> int:
        """Number of patients (rows)."""
        return len(self.y)

    @property
    def n_features(self) -> int:
        """Number of feature columns."""
        return len(self.feature_names)

    @property
    def n_positive(self) -> int:
        """Number of patients with label 1."""
        return int(np.count_nonzero(self.y == 1))

    @property
    def columns(self) -> tuple[str, ...]:
        """Feature names followed by the label name: what :func:`check_same_columns` compares."""
        return (*self.feature_names, self.label_name)

    @property
    def features(self) -> pd.DataFrame:
        """``X`` as a DataFrame with the feature names: a view, no copy (float64 columns)."""
        return pd.DataFrame(self.X, columns=list(self.feature_names), copy=False)

    @property
    def labels(self) -> pd.Series:
        """``y`` as a Series named after the label column: a view, no copy."""
        return pd.Series(self.y, name=self.label_name, copy=False)

    def to_numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(X, y)``: the arrays themselves (float64 C-contiguous and int64, read-only)."""
        return self.X, self.y


def load_hospital_data(
    data: object,
    *,
    dataset: str = DEFAULT_DATASET,
    label: str | int | None = None,
    require_both_classes: bool = True,
) -> HospitalData:
    """Read and validate one hospital's CSV from FLAME's s3 data.

    Parameters
    ----------
    data : list of dict
        What FLAME hands to ``analysis_method`` for ``data_type='s3'``: one dict per data
        source, mapping object keys to ``bytes``.
    dataset : str, default "pancreasData.csv"
        The object key of the CSV file.
    label : str, int or None, default None
        The label column: ``None`` for the last column (the tutorial), a column name, or a
        column position (negative positions count from the end). All other columns are
        features, in file order.
    require_both_classes : bool, default True
        Refuse a hospital whose patients all have the same label (FedAvg needs both classes
        at every hospital).

    Returns
    -------
    HospitalData

    Raises
    ------
    DataError
        When the data cannot be used; the message names the file, every problem found
        (counts and column names only) and what to do, in one line.
    ConfigError
        When ``dataset`` or ``label`` has an invalid type.

    See Also
    --------
    read_hospital_data : The same, returning every problem instead of raising.
    """
    hospital, problems = read_hospital_data(
        data, dataset=dataset, label=label, require_both_classes=require_both_classes
    )
    if problems:
        raise problems[0] if len(problems) == 1 else _all_problems(problems)
    return hospital


def read_hospital_data(
    data: object,
    *,
    dataset: str = DEFAULT_DATASET,
    label: str | int | None = None,
    require_both_classes: bool = True,
) -> tuple[HospitalData | None, list[DataError]]:
    """Read one hospital's CSV as :func:`load_hospital_data` does, collecting every problem.

    A file that cannot be parsed (no such object, not UTF-8, no header, ragged rows), whose
    label column is not found or that has no feature column has that one problem. Otherwise
    every check of its columns runs (numeric features, missing values, magnitudes, the
    label's coding and classes), and each failing one is a problem: the data owner sees them
    all at once, instead of one per approval round.

    Parameters
    ----------
    data, dataset, label, require_both_classes
        As for :func:`load_hospital_data`.

    Returns
    -------
    hospital : HospitalData or None
        The data, or ``None`` when there are problems.
    problems : list of DataError
        Every problem found, in the order of the checks (empty when the data can be used).

    Raises
    ------
    ConfigError
        When ``dataset`` or ``label`` has an invalid type.
    """
    if not isinstance(dataset, str):
        raise ConfigError(f"'dataset' must be a str. Got {dataset!r} instead.")
    if label is not None and (isinstance(label, bool) or not isinstance(label, (str, int))):
        raise ConfigError(f"'label' must be a str, an int or None. Got {label!r} instead.")

    try:
        with _PARSING:
            hospital, problems = _load(
                find_object(data, dataset), dataset, label, require_both_classes
            )
            _release_freed_memory()  # the parsed frame's, now that only the matrix is left
    except DataError as err:  # the file cannot be read as a table: that one problem
        return None, [err.with_traceback(None)]
    return (None if problems else hospital), problems


_PARSING = threading.Lock()
"""Held while a file is parsed and converted: one frame at a time in a process.

A FLAME node runs one hospital per process, so it never waits. Where several hospitals run as
threads of one process (``pancreas-fl simulate``, a local tester), each would
otherwise hold its parsed frame beside the others' at the same time; in turn, the process
holds one frame beside the matrices kept.
"""


def _all_problems(problems: list[DataError]) -> DataError:
    """Several problems of one file as one error, worded as the aggregator reports them."""
    return as_error(None, [as_problem(problem) for problem in problems])


def _load(
    raw, dataset: str, label, require_both_classes: bool
) -> tuple[HospitalData | None, list[DataError]]:
    """Parse, check and convert: the frame lives only inside this call.

    Raises :class:`DataError` for a file that is not a table with a label and features;
    returns the problems of its columns, every one.
    """
    header, df = _read_table(
        raw,
        dataset,
        no_rows_hint="Export the patients' rows too, or leave this hospital out",
        check_width=lambda header, max_rows: _check_shareable_width(header, max_rows, dataset),
    )
    names = [str(c) for c in df.columns]
    position = _label_position(label, names, dataset)
    if len(names) < 2:
        raise DataError(
            f"has no feature column (only the label column {names[position]!r})",
            file=dataset,
            hint="Export the measurements next to the label column",
        )
    if position == len(names) - 1:
        # exactly the tutorial's slicing: no copy, no conversion
        features, labels = df.iloc[:, :-1], df.iloc[:, -1]
    else:
        features = df.iloc[:, [i for i in range(len(names)) if i != position]]
        labels = df.iloc[:, position]

    numeric = _numeric_columns(features)
    checks = (
        lambda: _check_features(features, dataset),
        lambda: _check_missing(df, raw, len(header), dataset),
        lambda: _check_magnitudes(features if all(numeric) else features.loc[:, numeric], dataset),
        lambda: _check_labels(labels, dataset, require_both_classes),
    )
    problems = []
    for check in checks:
        try:
            check()
        except DataError as err:
            # without its traceback: that would keep this call's frame, and the data, alive
            problems.append(err.with_traceback(None))
    if problems:
        return None, problems
    # the frame is dropped on return: only the converted matrix is kept
    hospital = HospitalData(
        X=_design(features),
        y=labels.to_numpy().astype(np.int64),
        feature_names=tuple(str(c) for c in features.columns),
        label_name=str(labels.name),
    )
    return hospital, []


def _design(features: pd.DataFrame) -> np.ndarray:
    """Convert the features as ``LogisticRegression.fit`` does, once, column by column.

    The tutorial fits on the frame itself, and scikit-learn's ``validate_data`` turns it into
    an array in every fit: ``check_array(X, accept_sparse="csr", dtype=..., order="C")``,
    with ``dtype`` ``float64`` (scikit-learn 1.7-1.8) or ``[float64, float32]`` (1.9, which
    keeps a frame of float32 columns as float32: ``read_csv`` never makes one). That array
    holds each column's values cast to float64 (exactly rounded: int64, uint64 and bool
    columns included), in C order. It is built here column by column, with no other
    intermediate than the frame's own columns (pandas' interleaved copy, which
    ``check_array`` then copies again into C order, would double the peak). A fit on it
    converts nothing (a C-ordered float64 array passes ``check_array`` as it is) and gives
    the tutorial's bits.
    """
    X = np.empty(features.shape, dtype=np.float64)  # C order
    for j in range(features.shape[1]):
        X[:, j] = features.iloc[:, j].to_numpy()
    return X


def _find_malloc_trim():
    """Return glibc's ``malloc_trim``, or ``None`` where the C library has none.

    macOS, musl and Windows have none.
    """
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_MALLOC_TRIM = _find_malloc_trim()


def _release_freed_memory() -> None:
    """Give the pages the C allocator holds free back to the system (glibc only).

    A parsed frame is about as large as the matrix kept from it. Freed, its memory stays with
    glibc's allocator (in the arena of the thread that parsed it), so a hospital's resident
    memory would stay at matrix + frame for the whole analysis, and every hospital that
    parses in a thread of one process (the engine's thread isolation) adds its own. Measured
    at 4 hospitals x 20,000 patients x 300 features: 150 MiB less at the peak.
    ``malloc_trim(0)`` returns those pages; it takes a few milliseconds, once per file.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def load_feature_table(
    raw: bytes,
    *,
    dataset: str,
    n_features: int,
    feature_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read and validate a CSV of patients to predict for.

    Parameters
    ----------
    raw : bytes
        The CSV file's content.
    dataset : str
        The file's name, for messages.
    n_features : int
        The model's number of features.
    feature_names : sequence of str, optional
        The model's feature names; the columns are then taken by name (other columns, such as
        the label, are ignored). Without names the file holds the features in training order,
        optionally followed by the label column (as the training files do).

    Returns
    -------
    pandas.DataFrame
        The feature columns, numeric and complete.

    Raises
    ------
    DataError
        When the file cannot be read or lacks the model's features.
    """

    def check_width(header: list[str], max_rows: int) -> None:
        if feature_names is not None:
            present = set(header)
            missing = [name for name in feature_names if name not in present]
            if missing:
                raise DataError(
                    f"lacks the model's feature column(s) {listed(missing)}",
                    file=dataset,
                    hint="Give the columns the model was trained on, with the same names",
                )
        elif len(header) not in (n_features, n_features + 1):
            raise DataError(
                f"has {len(header)} columns but the model has {n_features} features",
                file=dataset,
                hint="Give the features in training order, optionally followed by the label",
            )

    header, df = _read_table(
        raw, dataset, no_rows_hint="Give at least one patient's row", check_width=check_width
    )
    # by name, or the first columns in training order (a model without names)
    features = df.iloc[:, :n_features] if feature_names is None else df[list(feature_names)]
    _check_features(features, dataset)
    _check_missing(features, raw, len(header), dataset)
    _check_magnitudes(features, dataset)
    return features


# --------------------------------------------------------------------------------------------
# checks


def _read_table(raw, dataset: str, *, no_rows_hint: str, check_width):
    """Check the text and the header, parse: ``(header, DataFrame)`` with at least one row.

    ``check_width(header, max_rows)`` runs before pandas parses anything; ``max_rows`` is an
    upper bound on the number of data rows (the file's lines after the header).

    The file stays bytes: where characters matter (the UTF-8 check, the header, blank lines,
    short rows) its text is decoded piece by piece, never held as one string beside the
    bytes and the parsed frame.
    """
    raw = bytes(raw)  # FLAME's bytes themselves (a copy only of a bytearray or memoryview)
    n_chars = _check_text(raw, dataset)
    header = _read_header(raw, dataset)
    # counted on the bytes: in UTF-8 a newline byte is always a newline character
    max_rows = raw.count(b"\n") + (not raw.endswith(b"\n")) - 1
    if not _has_line_after_header(raw):
        raise DataError(
            f"has a header ({len(header)} columns) but no data rows",
            file=dataset,
            hint=no_rows_hint,
        )
    check_width(header, max_rows)
    if len(header) * max_rows > n_chars:
        # Complete rows need at least one character per field: some rows are short. pandas
        # would pad every one of them to the header's width (a wide header over many short
        # lines can take all memory), so they are refused before parsing.
        short, first = _short_rows(raw, len(header), dataset)
        if short:
            raise DataError(
                f"{short} row(s) have fewer fields than the header ({len(header)}), the first "
                f"on line {first}",
                file=dataset,
                hint="Every row must have as many comma-separated fields as the header; "
                "impute or drop incomplete rows before export",
            )
    df = _parse(raw, len(header), dataset)
    if len(df) == 0:
        raise DataError(
            f"has a header ({len(header)} columns) but no data rows",
            file=dataset,
            hint=no_rows_hint,
        )
    return header, df


def _has_line_after_header(raw: bytes) -> bool:
    """Whether a non-blank line follows the first non-blank one (linear, piece by piece)."""
    state = "before"  # blank text before the header, the header's line, blank text after it
    for piece in _text_pieces(raw):
        pos = 0
        while pos < len(piece):
            if state == "header":
                newline = piece.find("\n", pos)
                if newline < 0:
                    break
                state, pos = "after", newline + 1
            else:
                pos = _BLANK.match(piece, pos).end()
                if pos < len(piece):
                    if state == "after":
                        return True
                    state = "header"
    return False


def _check_shareable_width(header: list[str], max_rows: int, dataset: str) -> None:
    """Refuse a header wider than the privacy guard could ever accept, before parsing.

    A hospital never shares a model with more parameters than patients (``max_param_ratio``
    is at most 1), and a file cannot hold more patients than lines.
    """
    n_features = len(header) - 1
    if n_features > max(max_rows, 0):
        raise DataError(
            f"has {len(header):,} columns but at most {max(max_rows, 0):,} data rows: a model "
            "with more features than patients can never be shared (the privacy guard allows "
            "at most one parameter per patient)",
            file=dataset,
            hint="Export only the columns the analysis needs, or check that the file is the "
            "intended one",
        )


def _check_text(raw: bytes, dataset: str) -> int:
    """Refuse what is not UTF-8 text; return the number of characters (a BOM not counted)."""
    hint = 'Re-save the file as "CSV UTF-8 (comma delimited)"'
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError(
            "is UTF-16 text (byte-order mark at byte 0), not UTF-8", file=dataset, hint=hint
        )
    nul = raw.find(b"\x00")
    if nul >= 0:  # no CSV text holds a NUL; UTF-16 text without a byte-order mark is full of them
        utf16 = _utf16_without_bom(raw)
        if utf16:
            raise DataError(
                f"is {utf16} text without a byte-order mark, not UTF-8 (NUL bytes between "
                "the characters)",
                file=dataset,
                hint=hint,
            )
        line = raw.count(b"\n", 0, nul) + 1
        raise DataError(
            f"contains NUL bytes (the first at offset {nul}, line {line}): not a text file",
            file=dataset,
            hint=f"Export the data as CSV text; {hint[0].lower()}{hint[1:]}",
        )
    if raw.isascii():  # the usual export: one character per byte, nothing to decode
        return len(raw)
    # decoded piece by piece, only to check and count (a file offset names an invalid byte)
    pos = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    n_chars, view = 0, memoryview(raw)
    size = max(_CHUNK, 4)  # a piece holds at least one character (UTF-8: at most 4 bytes)
    while pos < len(raw):
        end = pos + size
        try:
            # a character cut by the piece's end is decoded with the next piece
            text, used = codecs.utf_8_decode(view[pos:end], "strict", end >= len(raw))
        except UnicodeDecodeError as exc:
            offset = pos + exc.start
            line = raw.count(b"\n", 0, offset) + 1
            raise DataError(
                f"is not UTF-8 text (invalid byte at offset {offset}, line {line})",
                file=dataset,
                hint=hint,
            ) from None
        n_chars += len(text)
        pos += used
    return n_chars


def _text_pieces(raw: bytes):
    """Yield the text of ``raw`` (UTF-8, checked) without a BOM, ``_CHUNK`` bytes at a time."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    view = memoryview(raw)
    for pos in range(0, len(raw), _CHUNK):
        yield decoder.decode(view[pos : pos + _CHUNK], final=pos + _CHUNK >= len(raw))


def _utf16_without_bom(raw: bytes) -> str | None:
    """``'UTF-16-LE'`` or ``'UTF-16-BE'`` when the start of ``raw`` looks like such text."""
    head = raw[:4096]
    even, odd = head[0::2], head[1::2]
    if len(odd) < 2:
        return None
    # Mostly-ASCII UTF-16: the high byte of nearly every character is 0.
    if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.1 * len(even):
        return "UTF-16-LE"
    if even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.1 * len(odd):
        return "UTF-16-BE"
    return None


def _rows(raw: bytes, dataset: str):
    """``(line number, row)`` for the non-empty rows of the CSV file (UTF-8, checked).

    A field longer than the :mod:`csv` module's limit (131,072 characters: no CSV value is that
    long; it is nearly always a double quote that is never closed) is a :class:`DataError`.
    """
    # decoded as the rows are read: stopping early (the header) decodes little
    reader = csv.reader(io.TextIOWrapper(BytesIO(raw), encoding="utf-8-sig", newline=""))
    try:
        for row in reader:
            if row:
                yield reader.line_num, row
    except csv.Error as exc:
        line = reader.line_num
        if "field larger than field limit" in str(exc):
            where = "line 1 (the header)" if line <= 1 else f"line {line}"
            raise DataError(
                f"{where} has a field longer than {csv.field_size_limit():,} characters",
                file=dataset,
                hint="Check for a double quote that is never closed; no value or column name "
                "may be that long",
            ) from None
        raise DataError(
            f"could not be read as CSV at line {line}",
            file=dataset,
            hint="Check that it is a comma-separated text file with a header row",
        ) from None


def _is_value(name: str) -> bool:
    """Whether a header field reads as a value (a number, a missing-value or boolean spelling)."""
    name = name.strip()
    if name in _NA_SPELLINGS:
        return True
    try:
        float(name)
    except ValueError:
        return False
    return True


def _is_decimal(name: str) -> bool:
    """Whether a header field reads as a number that is not a whole number's digits.

    For example ``'9.266'``, ``'1e5'``, ``'nan'``. Whole numbers stay valid names (Entrez gene
    ids).
    """
    name = name.strip()
    try:
        float(name)
    except ValueError:
        return False
    return re.fullmatch(r"[+-]?\d+", name) is None


def _read_header(raw: bytes, dataset: str) -> list[str]:
    rows = _rows(raw, dataset)
    first = next(rows, None)
    if first is None:  # only blank lines; kept for safety, the emptiness check catches it
        raise DataError("the file has no header row", file=dataset, hint="Export it again")
    header = first[1]
    if len(header) == 1:
        for delimiter, name in _OTHER_DELIMITERS.items():
            if delimiter in header[0]:
                raise DataError(
                    f"is not comma-separated: the header is one column containing "
                    f"{header[0].count(delimiter)} {name} ({delimiter!r}) delimiter(s)",
                    file=dataset,
                    hint="Export as comma-separated CSV (German spreadsheet exports use ';' "
                    "and decimal commas)",
                )
    if all(_is_value(name) for name in header) and any(name.strip() for name in header):
        # a header-less export: pandas would take the first patient's values as column names
        # (shown in messages, sent to the aggregator) and drop that patient; never shown here
        raise DataError(
            f"the first row has no column names: all {len(header)} fields are numbers or "
            "missing-value spellings (is the header row missing?)",
            file=dataset,
            hint="Export the file with its header row of column names; the first row's "
            "values are not shown here",
        )
    decimal = [i + 1 for i, name in enumerate(header) if _is_decimal(name)]
    if decimal:
        # a header-less export whose first row also holds text (e.g. a label 'PDAC'): column
        # names are not decimal numbers, patients' measurements are
        raise DataError(
            f"the first row holds {len(decimal)} field(s) that read as decimal numbers where "
            f"column names belong (position(s) {', '.join(map(str, decimal[:_MAX_LISTED]))}; "
            "is the header row missing?)",
            file=dataset,
            hint="Export the file with its header row of column names, none of them a "
            "number with a fraction or an exponent; the first row's values are not shown here",
        )
    long = [i + 1 for i, name in enumerate(header) if len(name) > MAX_NAME_LENGTH]
    if long:
        raise DataError(
            f"header has {len(long)} column name(s) longer than {MAX_NAME_LENGTH} characters "
            f"(position(s) {', '.join(map(str, long[:_MAX_LISTED]))})",
            file=dataset,
            hint="Shorten the column names (they are sent to the aggregator and shown in results)",
        )
    empty = [i + 1 for i, name in enumerate(header) if name.strip() == ""]
    if empty:
        raise DataError(
            f"header has {len(empty)} column(s) without a name (position(s) "
            f"{', '.join(map(str, empty[:_MAX_LISTED]))})",
            file=dataset,
            hint="Name every column; a leading unnamed column is usually a row index "
            "written by DataFrame.to_csv() without index=False",
        )
    duplicated = sorted(name for name, n in Counter(header).items() if n > 1)
    if duplicated:
        raise DataError(
            f"header has duplicate column name(s) {listed(duplicated)}",
            file=dataset,
            hint="Give every column a unique name",
        )
    second = next(rows, None)
    if second is not None and len(second[1]) > len(header):
        # pandas would silently take the extra leading field(s) as the row index
        raise _ragged_error(raw, len(header), dataset, "")
    return header


def _parse(raw: bytes, n_header: int, dataset: str):
    try:
        with ignoring(pd.errors.ParserWarning, pd.errors.DtypeWarning):
            df = pd.read_csv(BytesIO(raw))
    except pd.errors.ParserError as exc:
        raise _ragged_error(raw, n_header, dataset, str(exc)) from None
    except (pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(
            f"could not be parsed as CSV ({type(exc).__name__})",
            file=dataset,
            hint="Check that it is a comma-separated text file with a header row",
        ) from None
    return df


def _ragged_error(raw: bytes, n_header: int, dataset: str, pandas_message: str) -> DataError:
    hint = "Every row must have as many comma-separated fields as the header"
    unclosed = "EOF inside string" in pandas_message
    bad = []
    try:
        rows = _rows(raw, dataset)
        next(rows, None)  # the header
        bad = [(line, len(row)) for line, row in rows if len(row) > n_header]
    except DataError as err:  # a field over the csv module's limit
        if not unclosed:
            return err
    if bad:
        line, n = bad[0]
        more = f" ({len(bad)} such rows in all)" if len(bad) > 1 else ""
        return DataError(
            f"line {line} has {n} fields, header has {n_header}{more}",
            file=dataset,
            hint=f"{hint}; quote values that contain commas",
        )
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", pandas_message)
    if match:
        expected, line, saw = match.groups()
        return DataError(
            f"line {line} has {saw} fields, header has {expected}", file=dataset, hint=hint
        )
    if unclosed:
        return DataError(
            f"a quoted field starting on line {_unclosed_quote_line(raw)} is never closed",
            file=dataset,
            hint="Close every opening double quote",
        )
    return DataError("could not be parsed as comma-separated CSV", file=dataset, hint=hint)


def _unclosed_quote_line(raw: bytes) -> int:
    """Find the line on which the double quote that is never closed opens (1-based).

    Counted on the bytes: in UTF-8, quote and newline bytes are always those characters.
    """
    inside, opened = False, 0
    for match in re.finditer(b'"', raw):
        inside = not inside
        if inside:
            opened = match.start()
    return raw.count(b"\n", 0, opened) + 1


def _label_position(label: str | int | None, names: list[str], dataset: str) -> int:
    n = len(names)
    if label is None:
        return n - 1
    if isinstance(label, str):
        if label not in names:
            raise DataError(
                f"label column {label!r} not found; columns are {listed(names)}",
                file=dataset,
                hint="Pass label=<column name> or a column position; the default is the "
                "last column",
            )
        return names.index(label)
    if not -n <= label < n:
        raise DataError(
            f"label position {label} is out of range for {n} columns",
            file=dataset,
            hint=f"Pass a position in [{-n}, {n - 1}] or a column name",
        )
    return label % n


def _numeric_columns(features: pd.DataFrame) -> list[bool]:
    """Whether each column is numeric for the model (real numbers or booleans)."""
    return [
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)
        for dtype in features.dtypes
    ]


def _check_features(features: pd.DataFrame, dataset: str) -> None:
    bad = [
        str(name)
        for name, numeric in zip(features.columns, _numeric_columns(features), strict=True)
        if not numeric
    ]
    if bad:
        raise DataError(
            f"{len(bad)} feature column(s) {listed(bad)} are not numeric",
            file=dataset,
            hint="Export numbers only ('.' as decimal separator), encode categories as 0/1 "
            "columns, or drop those columns",
        )


def _check_missing(df: pd.DataFrame, raw: bytes, n_header: int, dataset: str) -> None:
    counts = df.isna().sum()
    counts = counts[counts > 0]
    if counts.empty:
        return
    short, _ = _short_rows(raw, n_header, dataset)
    detail = ", ".join(f"{str(name)!r} ({int(n)})" for name, n in counts.iloc[:_MAX_LISTED].items())
    if len(counts) > _MAX_LISTED:
        detail += f" and {len(counts) - _MAX_LISTED} more column(s)"
    extra = f"; {short} row(s) have fewer fields than the header" if short else ""
    raise DataError(
        f"has {int(counts.sum())} missing value(s) in column(s) {detail}{extra}",
        file=dataset,
        hint="Say what a blank means where it means a value (fill={column: value}, "
        "--fill NAME=VALUE), drop incomplete rows (missing='complete-case', --missing "
        "complete-case), or impute before export; logistic regression cannot use missing values",
    )


def _short_rows(raw: bytes, n_header: int, dataset: str) -> tuple[int, int]:
    """How many rows have fewer fields than the header, and the first one's line."""
    rows = _rows(raw, dataset)
    next(rows, None)
    count, first = 0, 0
    for line, row in rows:
        if len(row) < n_header:
            count += 1
            first = first or line
    return count, first


def _check_magnitudes(features: pd.DataFrame, dataset: str) -> None:
    """Refuse infinite values and magnitudes beyond :data:`MAX_ABS_VALUE`, naming columns.

    Column-wise maxima and minima only (no copy of the data); counting happens only for the
    columns that fail. Missing values are skipped (they are a problem of their own).
    """
    if features.shape[1] == 0:
        return
    high = features.max().astype(np.float64)
    low = features.min().astype(np.float64)
    infinite = [name for name in features.columns if np.isinf(high[name]) or np.isinf(low[name])]
    if infinite:
        counts = {name: int(np.isinf(features[name].to_numpy()).sum()) for name in infinite}
        raise DataError(
            f"has {sum(counts.values())} infinite value(s) in column(s) {listed_counts(counts)}",
            file=dataset,
            hint="Replace 'inf' values (often a division by zero or a log of 0 upstream) "
            "before export",
        )
    huge = [
        name for name in features.columns if max(abs(high[name]), abs(low[name])) > MAX_ABS_VALUE
    ]
    if huge:
        counts = {
            name: int((np.abs(features[name].to_numpy()) > MAX_ABS_VALUE).sum()) for name in huge
        }
        raise DataError(
            f"has {sum(counts.values())} value(s) beyond ±{_MAX_ABS_TEXT} in column(s) "
            f"{listed_counts(counts)}: their squares, summed over patients, overflow "
            "floating point",
            file=dataset,
            hint="Rescale those columns (other units, or a log scale) before export",
        )


def _check_labels(labels: pd.Series, dataset: str, require_both_classes: bool) -> None:
    """Check the label's coding (0/1) and classes, on the patients whose label is not missing.

    Missing labels are a problem of their own (:func:`_check_missing`).
    """
    if labels.hasnans:
        labels = labels.dropna()
        if labels.empty:
            return
    name = str(labels.name)
    dtype = labels.dtype
    values = pd.unique(labels.to_numpy())
    if pd.api.types.is_bool_dtype(dtype):
        ok = True
    elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        ok = all(v in (0, 1) for v in values)
    else:
        ok = False
    if not ok:
        raise DataError(
            f"label column {name!r} must be 0/1, found {_describe_label_values(labels)}",
            file=dataset,
            hint="Encode the diagnosis as 1 (disease) and 0 (control); if the label is "
            "another column, pass label=<column name>",
        )
    if require_both_classes and len(values) < 2:
        present = int(bool(values[0]))
        raise DataError(
            f"all {len(labels)} patients have {name} = {present}; class {1 - present} is absent",
            file=dataset,
            hint="FedAvg needs both classes at every hospital: use strategy='exact' or add "
            "patients of the other class",
        )


# --------------------------------------------------------------------------------------------
# formatting helpers (names and counts only)


def _sort_key(value: object) -> tuple[int, float, str]:
    if isinstance(value, (bool, np.bool_)):
        return (0, float(value), "")
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        return (0, v if not math.isnan(v) else math.inf, "")
    return (1, 0.0, str(value))


def _is_code(value: object) -> bool:
    """Whether a label value is clearly a category code, not a measurement or identifier.

    Codes are booleans, small whole numbers (-9 to 9, also when written as text, e.g. ``'2'``
    in a column that also holds words) and short words of letters (``'PDAC'``, ``'control'``,
    ``'unknown'``). Fractional or large numbers (``'37.2'``), dates, identifiers and long
    text are not.
    """
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return (
                0 < len(text) <= _MAX_CODE_LENGTH
                and text[0].isalpha()
                and all(c.isalpha() or c in " _-" for c in text)
            )
        return math.isfinite(number) and number.is_integer() and abs(number) <= 9
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return math.isfinite(number) and number.is_integer() and abs(number) <= 9
    return False


def _describe_label_values(labels: pd.Series) -> str:
    """Describe the label values found, listing only those that are clearly category codes.

    A value is listed when it is a code (see :func:`_is_code`) held by at least
    ``DEFAULT_MIN_CLASS_SIZE`` patients (DataSHIELD's ``nfilter.subset``), and only when
    there are at most ``_MAX_LABEL_VALUES`` distinct values. Anything else (fractional or
    large numbers, values of one or two patients) may be a measurement or an identifier, for
    example when the label column is not last: it is only counted, since listing it would put
    patient values into a message.
    """
    counts = labels.value_counts(dropna=False, sort=False)
    plain = {(v.item() if isinstance(v, np.generic) else v): int(n) for v, n in counts.items()}
    listed = []
    if len(plain) <= _MAX_LABEL_VALUES:
        listed = [v for v, n in plain.items() if n >= DEFAULT_MIN_CLASS_SIZE and _is_code(v)]
    hidden = len(plain) - len(listed)
    if not listed:
        return (
            f"{hidden} distinct values that may be measurements or identifiers (not listed: "
            "they could be patient values)"
        )
    shown = "value(s) " + ", ".join(_label_repr(v) for v in sorted(listed, key=_sort_key))
    if hidden:
        shown += (
            f" and {hidden} other value(s), not listed: only category codes held by at least "
            f"{DEFAULT_MIN_CLASS_SIZE} patients are, the others could be patient values"
        )
    return shown


def _label_repr(value: object) -> str:
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        value = value.item()
    return repr(value)
