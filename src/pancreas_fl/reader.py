"""One hospital's data: FLAME's s3 bytes in; a validated matrix and every problem out.

:func:`read_hospital` is the one reader, in two configurations:

* **the tutorial's** (no column option): the file is parsed with the tutorial's own
  ``pd.read_csv(BytesIO(raw))`` and split with its ``iloc`` slicing (label last), and the
  features are converted once exactly as scikit-learn's ``LogisticRegression.fit`` converts
  that frame in each of the tutorial's fits, so that a model fitted on
  :attr:`HospitalData.X` is bit-identical to the tutorial's (:func:`read_hospital_data`);
* **with column options** (``features``, ``categorical``, ``fill``,
  ``missing="complete-case"``): the chosen columns are taken by name, blanks filled,
  incomplete rows dropped and categorical levels collected
  (:mod:`pancreas_fl.column_options`, imported only then).

Both run the same steps: find the object (:mod:`pancreas_fl.s3`), rewrite a spreadsheet
export in the tutorial's format (:mod:`pancreas_fl.dialect`: ``;``, decimal commas, cp1252,
when unambiguous), check and parse the text (:mod:`pancreas_fl.csvfile`), check the columns
(:mod:`pancreas_fl.columns`), then the disclosure guards on the rows and parameters used
(:mod:`pancreas_fl.privacy`, from :meth:`Reading.guard` only). A file that cannot be read
as a table has that one problem; otherwise every check of its columns runs and each failing
one is a problem, so that a data owner fixes a file once, not once per run. With categorical
columns the model's columns are known only once the hospitals agree the levels
(:meth:`Reading.encode`, after the setup round).

Only the float64 matrix and the 0/1 labels are kept: the parsed frame is dropped, and the
file's text is never held as one string (a hospital holds its CSV bytes and one matrix).
Every message holds counts, line numbers and column names, never a patient value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pancreas_fl._memory import one_file_at_a_time
from pancreas_fl.columns import (
    check_features,
    check_labels,
    check_magnitudes,
    check_missing,
    column_abs_sums,
    label_position,
    numeric_columns,
)
from pancreas_fl.csvfile import read_table
from pancreas_fl.dialect import Dialect, detect, to_standard
from pancreas_fl.errors import ConfigError, DataError, PrivacyError, as_error, as_problem
from pancreas_fl.params import DEFAULT_DATASET, Params
from pancreas_fl.privacy import check_disclosure
from pancreas_fl.s3 import find_object, resolve_key

if TYPE_CHECKING:
    from pancreas_fl.column_options import PreparedTable
    from pancreas_fl.encoding import Encoding

__all__ = [
    "HospitalData",
    "Reading",
    "in_tutorial_format",
    "load_hospital_data",
    "read_hospital",
    "read_hospital_data",
]


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
    abs_sums : array_like of shape (n_features,), optional
        The sum of ``|x|`` per column, when the reader computed it for its magnitudes'
        check (:func:`~pancreas_fl.columns.column_abs_sums`): FedAvg's first update sends it
        for the message checks without another pass over ``X``. ``None``: not computed.

    Attributes
    ----------
    X : numpy.ndarray of shape (n_samples, n_features)
        float64, C-contiguous, read-only (a view; copied only if the given array was not
        float64 and C-contiguous).
    y : numpy.ndarray of shape (n_samples,)
        int64, read-only.
    abs_sums : numpy.ndarray of shape (n_features,) or None
        float64, read-only; ``None`` unless given (the tutorial's reader gives it).

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
    abs_sums: np.ndarray | None = field(default=None, repr=False)

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
        if self.abs_sums is not None:
            abs_sums = np.array(self.abs_sums, dtype=np.float64)
            if abs_sums.shape != (X.shape[1],):
                raise ValueError("abs_sums must hold one sum per column of X")
            abs_sums.setflags(write=False)
            object.__setattr__(self, "abs_sums", abs_sums)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "feature_names", names)
        object.__setattr__(self, "label_name", str(self.label_name))

    def __reduce__(self):
        """Pickle through the constructor, so that an unpickled copy is read-only too."""
        return (type(self), (self.X, self.y, self.feature_names, self.label_name, self.abs_sums))

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

    @classmethod
    def from_table(cls, table: PreparedTable, encoding: Encoding) -> HospitalData:
        """Encode a table prepared with the column options (:mod:`pancreas_fl.column_options`).

        With the agreed levels: all-zero columns for levels this hospital lacks.
        """
        return cls(
            X=encoding.encode(table.frame),
            y=table.labels.to_numpy(),
            feature_names=tuple(encoding.feature_names),
            label_name=table.label,
        )

    def to_numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(X, y)``: the arrays themselves (float64 C-contiguous and int64, read-only)."""
        return self.X, self.y


@dataclass(eq=False)
class Reading:
    """What a hospital read in the first round: its data, or its problems, and counts.

    Attributes
    ----------
    file : str
        The object key read (or the ``dataset`` pattern when no key matched).
    params : Params
        The parameters it was read with.
    problems : list of DataError
        Every problem found (counts and column names only); empty when the data can be used.
    data : HospitalData or None
        The validated matrix and labels; ``None`` with problems, and with categorical columns
        until :meth:`encode` (the levels are agreed first).
    n, n_pos, n_dropped : int
        Patients used, of them with label 1, and incomplete rows dropped
        (``missing="complete-case"``).
    columns : list of str
        The feature columns (before categorical encoding), then the label.
    levels : dict of str to list of str or None
        With categorical columns: the levels held here by at least ``min_cell`` patients
        (what the introduction sends); ``None`` otherwise.
    table : PreparedTable or None
        With column options: the rows used, until they are encoded.
    dialect : Dialect or None
        How the file is written (separator, decimal mark, encoding; :mod:`pancreas_fl.dialect`),
        once it is found.
    """

    file: str
    params: Params
    problems: list[DataError] = field(default_factory=list)
    data: HospitalData | None = None
    n: int = 0
    n_pos: int = 0
    n_dropped: int = 0
    columns: list[str] = field(default_factory=list)
    levels: dict[str, list[str]] | None = None
    table: PreparedTable | None = None
    dialect: Dialect | None = None

    def guard(self, n_params: int) -> None:
        """Record a breach of the disclosure guards by the rows and parameters used.

        The one place a hospital checks them (:func:`pancreas_fl.privacy.check_disclosure`):
        in the first round, and again once categorical levels are agreed.
        """
        p = self.params
        try:
            check_disclosure(
                self.n,
                n_params,
                n_positive=self.n_pos,
                min_patients=p.min_patients,
                max_param_ratio=p.max_param_ratio,
                file=self.file,
            )
        except PrivacyError as err:
            self.problems.append(err)

    def encode(self, levels: dict[str, list[str]]) -> HospitalData:
        """Encode the rows with the agreed categorical levels and check the guards again.

        Parameters
        ----------
        levels : dict of str to list of str
            The aggregator's :class:`~pancreas_fl.messages.SetupBroadcast` levels.

        Returns
        -------
        HospitalData

        Raises
        ------
        PrivacyError
            The model's parameters, now known, breach a disclosure guard.
        """
        from pancreas_fl.encoding import Encoding

        p = self.params
        agreed = {column: tuple(names) for column, names in levels.items()}
        encoding = Encoding(
            self.table.features, levels=agreed, fill=p.fill or {}, missing=p.missing
        )
        self.data = HospitalData.from_table(self.table, encoding)
        self.guard(self.data.n_features + p.fit_intercept)
        if self.problems:
            raise self.problems[0]
        return self.data


def read_hospital(data: object, params: Params, *, require_both_classes: bool) -> Reading:
    """Read a hospital's s3 data as ``params`` say, collecting every problem.

    Parameters
    ----------
    data : list of dict
        What FLAME hands to ``analysis_method`` for ``data_type='s3'``.
    params : Params
        ``dataset``, ``label``, the column options, ``min_cell``, ``min_patients``,
        ``max_param_ratio`` and ``fit_intercept`` are used.
    require_both_classes : bool
        Whether a hospital whose patients all have one label is a problem (FedAvg).

    Returns
    -------
    Reading
        With ``problems`` empty when the data can be used.
    """
    reading = Reading(file=params.dataset, params=params)
    try:
        reading.file = resolve_key(data, params.dataset)
        data, reading.dialect = in_tutorial_format(
            data, reading.file, sep=params.sep, decimal=params.decimal, encoding=params.encoding
        )
    except DataError as err:
        reading.problems.append(err)
        return reading
    read = _read_with_column_options if params.uses_column_options else _read_as_the_tutorial
    n_params = read(reading, data, require_both_classes)
    if n_params is not None and not reading.problems:
        reading.guard(n_params)
    if reading.problems:
        reading.data = None
    return reading


def _read_as_the_tutorial(reading: Reading, data: object, require_both_classes: bool):
    """Fill ``reading`` as the tutorial reads the file (:func:`read_hospital_data`).

    Returns
    -------
    int or None
        The number of the model's parameters; ``None`` when the file has problems.
    """
    d, reading.problems = read_hospital_data(
        data,
        dataset=reading.file,
        label=reading.params.label,
        require_both_classes=require_both_classes,
    )
    if d is None:
        return None
    reading.data, reading.columns = d, list(d.columns)
    reading.n, reading.n_pos = d.n_samples, d.n_positive
    return d.n_features + reading.params.fit_intercept


def _read_with_column_options(reading: Reading, data: object, require_both_classes: bool):
    """Fill ``reading`` from the table prepared with the column options.

    Returns
    -------
    int or None
        The number of the model's parameters the rows must support (with categorical
        columns, counted with the levels held here until they are agreed); ``None`` when
        the table has problems.
    """
    # only with column options: the tutorial's run never loads them
    from pancreas_fl.column_options import prepare_table
    from pancreas_fl.encoding import Encoding

    p = reading.params
    table = prepare_table(data, p, require_both_classes=require_both_classes)
    reading.file, reading.problems, reading.table = table.file, table.problems, table
    reading.n, reading.n_pos, reading.n_dropped = table.n_used, table.n_positive, table.n_dropped
    reading.columns = [*table.features, table.label]
    if table.problems:
        return None
    categorical = p.categorical or ()
    if categorical:
        reading.levels = table.levels
    else:
        reading.data = HospitalData.from_table(table, Encoding(table.features, fill=p.fill or {}))
    n_levels = sum(len(names) - 1 for names in table.levels.values())
    return len(table.features) - len(categorical) + n_levels + p.fit_intercept


def in_tutorial_format(
    data: list, key: str, *, sep=None, decimal=None, encoding=None
) -> tuple[list, Dialect]:
    """Return ``data`` with the object ``key`` in the tutorial's CSV format, and its dialect.

    A file written otherwise (a spreadsheet export: ``;``, decimal commas, cp1252; or as
    ``sep``, ``decimal`` and ``encoding`` say, ``None`` to detect) is rewritten
    (:func:`pancreas_fl.dialect.to_standard`) into a list holding only that object; a file in
    the tutorial's format leaves ``data`` as it is, the very same bytes.

    Raises
    ------
    DataError
        The object is missing, empty or not bytes, or cannot be read in its dialect.
    """
    raw = find_object(data, key)
    text = raw if isinstance(raw, bytes) else bytes(raw)
    dialect = detect(text, sep=sep, decimal=decimal, encoding=encoding)
    standard = to_standard(text, dialect, key)
    if standard is text:
        return data, dialect
    return [{key: standard}], dialect


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
        with one_file_at_a_time():
            hospital, problems = _load(
                find_object(data, dataset), dataset, label, require_both_classes
            )
    except DataError as err:  # the file cannot be read as a table: that one problem
        return None, [err.with_traceback(None)]
    return (None if problems else hospital), problems


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
    header, df = read_table(
        raw,
        dataset,
        no_rows_hint="Export the patients' rows too, or leave this hospital out",
        check_width=lambda header, max_rows: _check_shareable_width(header, max_rows, dataset),
    )
    names = [str(c) for c in df.columns]
    position = label_position(label, names, dataset)
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

    numeric = numeric_columns(features)
    measured = features if all(numeric) else features.loc[:, numeric]
    abs_sums = column_abs_sums(measured)  # one pass: the magnitudes' check, FedAvg's bounds
    checks = (
        lambda: check_features(features, dataset),
        lambda: check_missing(df, raw, len(header), dataset),
        lambda: check_magnitudes(measured, dataset, abs_sums),
        lambda: check_labels(labels, dataset, require_both_classes),
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
        abs_sums=abs_sums,
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
