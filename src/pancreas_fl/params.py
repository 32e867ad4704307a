"""The analysis parameters: one declarative table, validated once at the boundary.

Analysts pass parameters to FLAME as ``analyzer_kwargs`` and ``aggregator_kwargs``; both node
classes accept the same set (so one dict can be given to both), and each role uses the ones it
needs. :data:`PARAMETERS` is the one home of every parameter: its default, its constraint, who
uses it, the strategy it applies to and its help text. Everything else derives from it:

* :func:`resolve_params` validates a node's keyword arguments against it (one wording per
  check, from :mod:`pancreas_fl.constraints`) and fills in the defaults;
* ``pancreas-fl simulate`` builds its options from it (names, choices, defaults, help);
* the README's parameter table is :func:`markdown_table`, checked by a test.

Adding a parameter means adding one :class:`Parameter` row here and one field to
:class:`Params` (a test checks that the two agree), then using it where it acts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pancreas_fl.constraints import (
    Boolean,
    ColumnNames,
    ColumnRef,
    FillValues,
    Interval,
    NonEmptyStr,
    Options,
)
from pancreas_fl.dialect import DECIMALS, ENCODINGS, SEPARATORS
from pancreas_fl.errors import ConfigError

__all__ = [
    "DEFAULT_DATASET",
    "LBFGS_MAX_ITER",
    "MISSING",
    "PARAMETERS",
    "SHARED_PARAMS",
    "STRATEGIES",
    "Parameter",
    "Params",
    "check_parameter",
    "default",
    "markdown_table",
    "resolve_params",
]

DEFAULT_DATASET = "pancreasData.csv"
"""The object key of the tutorial's data file."""

STRATEGIES = ("fedavg", "exact")

#: The exact strategy's penalties: scikit-learn's L2 (with ``C``) or Firth's (Jeffreys prior).
PENALTIES = ("l2", "firth")

#: What a hospital does with a missing value in a column the analysis uses.
MISSING = ("error", "complete-case")

#: The exact strategy's default ``max_iter`` when it uses the gradient-only solver (many
#: features, or ``solver='lbfgs'``): every line-search step costs one round.
LBFGS_MAX_ITER = 500


@dataclass(frozen=True)
class Parameter:
    """One analysis parameter.

    Attributes
    ----------
    name : str
        The keyword, e.g. ``"max_iter"`` (CLI: ``--max-iter``).
    constraint : Interval, Options, Boolean, NonEmptyStr or ColumnRef
        What a valid value is; it also words the error message.
    default : object
        The value when not given (or given as ``None``); a ``dict`` maps each strategy to
        its default.
    used_by : {'both', 'hospitals', 'aggregator'}
        The role(s) that act on it.
    help : str
        One line for the README (Markdown) and, without the backticks, the CLI.
    strategy : {'fedavg', 'exact'} or None
        The only strategy it applies to; setting it away from its default under the other
        strategy is refused.
    shared : bool
        Both roles must agree on it (the aggregator checks in the first round).
    default_doc : str or None
        How the default reads in the docs, when it is not a plain value.
    """

    name: str
    constraint: Any
    default: Any
    used_by: str
    help: str
    strategy: str | None = None
    shared: bool = False
    default_doc: str | None = None

    def default_for(self, strategy: str) -> Any:
        """Return the default under ``strategy``."""
        return self.default[strategy] if isinstance(self.default, dict) else self.default

    def describe_default(self) -> str:
        """Return the default as the README and the CLI's help show it."""
        if self.default_doc is not None:
            return self.default_doc
        if isinstance(self.default, str):
            return f'"{self.default}"'
        return repr(self.default) if isinstance(self.default, float) else str(self.default)


PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "strategy",
        Options(STRATEGIES),
        "fedavg",
        "both",
        '`"fedavg"` (the tutorial) or `"exact"`',
        shared=True,
    ),
    Parameter(
        "dataset",
        NonEmptyStr("the s3 object key"),
        DEFAULT_DATASET,
        "hospitals",
        "the s3 object key of the CSV, or a glob pattern (`*`, `?`, `[...]`) matching exactly "
        "one key at each hospital",
    ),
    Parameter(
        "label",
        ColumnRef(),
        None,
        "hospitals",
        "label column by name or position (0/1 values)",
        default_doc="last column",
    ),
    Parameter(
        "features",
        ColumnNames(),
        None,
        "hospitals",
        "the feature columns by name, in model order; other columns are never parsed into "
        "the model nor checked",
        shared=True,
        default_doc="every column but the label",
    ),
    Parameter(
        "categorical",
        ColumnNames(),
        None,
        "both",
        "feature columns one-hot encoded with levels agreed across hospitals (reference: "
        "the first level in sorted order); adds one setup round",
        shared=True,
        default_doc="none",
    ),
    Parameter(
        "missing",
        Options(MISSING),
        "error",
        "hospitals",
        '`"error"`, or `"complete-case"`: drop rows with a missing value in a used column '
        "(R's `na.omit`)",
        shared=True,
    ),
    Parameter(
        "fill",
        FillValues(),
        None,
        "hospitals",
        "`{column: value}`: what a blank means in that column (e.g. 0 for a flag coded 1/blank)",
        shared=True,
        default_doc="none",
    ),
    Parameter(
        "sep",
        Options((*SEPARATORS, None)),
        None,
        "hospitals",
        'the CSV\'s field separator: `","`, `";"`, tab or pipe (a spreadsheet export\'s own '
        "format is read as it is)",
        default_doc='detected: `","` or `";"`',
    ),
    Parameter(
        "decimal",
        Options((*DECIMALS, None)),
        None,
        "hospitals",
        'the decimal mark: `"."` or `","`',
        default_doc="detected",
    ),
    Parameter(
        "encoding",
        Options((*ENCODINGS, None)),
        None,
        "hospitals",
        'the CSV\'s text encoding: `"utf-8"`, `"cp1252"` or `"latin-1"`',
        default_doc="detected: UTF-8 or cp1252",
    ),
    Parameter(
        "max_iter",
        Interval(int, 1, closed="left"),
        {"fedavg": 10, "exact": 50},
        "aggregator",
        "stop after `max_iter + 1` rounds",
        default_doc=f"10 (fedavg), 50 (exact), {LBFGS_MAX_ITER} (exact with L-BFGS)",
    ),
    Parameter(
        "tol",
        Interval(float, 0.0),
        {"fedavg": 1e-8, "exact": 1e-8},
        "aggregator",
        "fedavg: stop when the L2 change of the coefficients is <= `tol`; exact: relative step",
        default_doc="1e-8",
    ),
    Parameter(
        "C",
        Interval(float, 0.0, closed="right"),
        1.0,
        "both",
        "inverse L2 strength as in scikit-learn; `inf` = no penalty",
        shared=True,
        default_doc='1.0 (`inf` with `penalty="firth"`)',
    ),
    Parameter(
        "fit_intercept",
        Boolean(),
        False,
        "both",
        "fit an unpenalized intercept",
        shared=True,
    ),
    Parameter(
        "weighted",
        Boolean(),
        False,
        "aggregator",
        "fedavg: average by hospital sample counts",
        strategy="fedavg",
    ),
    Parameter(
        "local_steps",
        Interval(int, 1, closed="left"),
        1,
        "hospitals",
        "fedavg: lbfgs iterations per round",
        strategy="fedavg",
        shared=True,
    ),
    Parameter(
        "standardize",
        Boolean(),
        False,
        "both",
        "exact: federated pooled standardization (as `StandardScaler` on the pooled data)",
        strategy="exact",
        shared=True,
    ),
    Parameter(
        "solver",
        Options(("auto", "newton", "lbfgs")),
        "auto",
        "both",
        'exact: `"newton"`, `"lbfgs"` (the gradient and O(p) moments a round, nothing p x p), or '
        '`"auto"`: Newton while its curvature fits the two budgets below, else L-BFGS with '
        "Böhning's bound X'X/4 shared once while p x p fits a node, else `\"lbfgs\"` (see "
        "*Wide gene panels*)",
        strategy="exact",
        shared=True,
    ),
    Parameter(
        "max_message_mb",
        Interval(float, 0.0),
        64.0,
        "both",
        "exact: most megabytes of curvature one hospital sends per round (at 64, Newton "
        "packs it in float32 above 3,999 parameters, and `auto` uses L-BFGS above 5,656, "
        "with Böhning's bound up to 11,313)",
        strategy="exact",
        shared=True,
    ),
    Parameter(
        "max_memory_mb",
        Interval(float, 0.0),
        4096.0,
        "both",
        "exact: most megabytes of curvature a node holds (at its peak the aggregator holds "
        "about 7.5 p x p float64 matrices, estimated as 9: 1.8 GB at p = 5,000; with Böhning's "
        "bound 4)",
        strategy="exact",
        shared=True,
    ),
    Parameter(
        "reuse_curvature",
        Options(("auto", "on", "off")),
        "auto",
        "both",
        "exact: keep Newton's packed Hessian while its steps converge fast and ask the rounds "
        'between for the gradient alone (the chord method); `"auto"`: from 2,000 parameters, '
        "where it pays (see *Wide gene panels*)",
        strategy="exact",
        shared=True,
    ),
    Parameter(
        "penalty",
        Options(PENALTIES),
        "l2",
        "both",
        'exact: `"l2"` (with `C`), or `"firth"`: Firth\'s bias-reduced fit (R\'s `logistf`, '
        "`brglm2`), finite under separation; `C` becomes `inf`; Newton solver only",
        strategy="exact",
        shared=True,
    ),
    Parameter(
        "min_patients",
        Interval(int, 1, closed="left"),
        10,
        "hospitals",
        "privacy guard: fewest patients a hospital shares an update from",
    ),
    Parameter(
        "max_param_ratio",
        Interval(float, 0.0, 1.0, closed="right"),
        0.33,
        "hospitals",
        "privacy guard: most parameters per patient (DataSHIELD's `nfilter.glm`)",
    ),
    Parameter(
        "min_cell",
        Interval(int, 1, closed="left"),
        3,
        "hospitals",
        "privacy guard: fewest patients a categorical level must have to be shared "
        "(DataSHIELD's `nfilter.tab`)",
    ),
    Parameter(
        "output",
        Options(("coef", "model")),
        {"fedavg": "coef", "exact": "model"},
        "aggregator",
        "the final result: bare array or model dict",
        default_doc='`"coef"` (fedavg without intercept), else `"model"`',
    ),
)

_BY_NAME = {parameter.name: parameter for parameter in PARAMETERS}

#: Parameters both roles must agree on; the aggregator checks them in the first round.
SHARED_PARAMS = tuple(parameter.name for parameter in PARAMETERS if parameter.shared)


def check_parameter(name: str, value: Any) -> Any:
    """Validate one parameter's value with the table's constraint (and its wording)."""
    return _BY_NAME[name].constraint.check(name, value)


def default(name: str, strategy: str = "fedavg") -> Any:
    """Return the default of parameter ``name`` under ``strategy`` (e.g. ``default("dataset")``)."""
    return _BY_NAME[name].default_for(strategy)


@dataclass(frozen=True)
class Params:
    """The validated parameters of one node; build it with :func:`resolve_params`.

    One field per row of :data:`PARAMETERS` (see there, or the README's table, for what each
    means and its default), every one resolved: ``max_iter``, ``tol`` and ``output`` hold the
    chosen strategy's values.
    """

    strategy: str
    dataset: str
    label: str | int | None
    features: tuple[str, ...] | None
    categorical: tuple[str, ...] | None
    missing: str
    fill: dict[str, float | int | str] | None
    sep: str | None
    decimal: str | None
    encoding: str | None
    max_iter: int
    tol: float
    C: float
    fit_intercept: bool
    weighted: bool
    local_steps: int
    standardize: bool
    solver: str
    max_message_mb: float
    max_memory_mb: float
    reuse_curvature: str
    penalty: str
    min_patients: int
    max_param_ratio: float
    min_cell: int
    output: str

    def shared(self) -> dict:
        """Return the parameters both roles must agree on as a plain dict (for the aggregator)."""
        values = asdict(self)
        return {name: values[name] for name in SHARED_PARAMS}

    @property
    def uses_column_options(self) -> bool:
        """Whether a hospital prepares its table with the column options.

        It does with any of ``features``, ``categorical``, ``fill`` or
        ``missing="complete-case"``; otherwise it reads the file as the tutorial does.
        """
        return (
            self.features is not None
            or bool(self.categorical)
            or bool(self.fill)
            or self.missing != "error"
        )


def resolve_params(**kwargs) -> Params:
    """Validate the keyword arguments of a node and fill in the strategy's defaults.

    Parameters
    ----------
    **kwargs
        Any of the parameters in :data:`PARAMETERS`. ``None`` stands for the default of the
        parameters whose default is ``None`` or depends on the strategy.

    Returns
    -------
    Params
        Every parameter validated, with the defaults of the chosen strategy.

    Raises
    ------
    ConfigError
        For an unknown parameter, a value of the wrong type or range, or a parameter that does
        not apply to the chosen strategy.
    """
    unknown = sorted(set(kwargs) - set(_BY_NAME))
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {', '.join(repr(u) for u in unknown)}; "
            f"valid parameters are {', '.join(_BY_NAME)}."
        )
    strategy = _BY_NAME["strategy"].constraint.check("strategy", kwargs.get("strategy", "fedavg"))
    values = {}
    for parameter in PARAMETERS:
        name, value = parameter.name, kwargs.get(parameter.name)
        derived = parameter.default is None or isinstance(parameter.default, dict)
        if name not in kwargs or (derived and value is None):
            values[name] = parameter.default_for(strategy)
            continue
        values[name] = parameter.constraint.check(name, value)
    # The bare (1, n_features) array cannot carry an intercept (a standardized fit has one in
    # raw space), so the output defaults to what can carry the model.
    has_intercept = values["fit_intercept"] or values["standardize"]
    if has_intercept and kwargs.get("output") is None:
        values["output"] = "model"
    elif has_intercept and values["output"] == "coef":
        raise ConfigError(
            "output='coef' (the bare coefficient array) cannot carry an intercept; "
            "use output='model' with fit_intercept=True or standardize=True."
        )
    _check_columns(values)
    for parameter in PARAMETERS:
        name = parameter.name
        if parameter.strategy not in (None, strategy) and values[name] != parameter.default:
            raise ConfigError(
                f"{name!r} applies to strategy={parameter.strategy!r} only; "
                f"got {name}={values[name]!r} with strategy={strategy!r}."
            )
    _check_firth(values, kwargs.get("C"))
    return Params(**values)


def _check_firth(values: dict, given_C: Any) -> None:
    """Firth's penalty is the whole penalty: ``C`` becomes ``inf``, a finite one is refused.

    Jeffreys' prior and an L2 penalty could be added, but the sum is neither Firth's estimate
    (bias-reduced, as R's ``logistf``/``brglm2``) nor scikit-learn's, and its Wald table would
    be that of no established method. The penalty needs the information matrix: the Newton
    solver.
    """
    if values["penalty"] != "firth":
        return
    if given_C is not None and values["C"] != float("inf"):
        raise ConfigError(
            f"penalty='firth' is the whole penalty and cannot be combined with "
            f"C={values['C']!r}; leave C out (it becomes inf) or use penalty='l2' for the L2 fit."
        )
    if values["solver"] == "lbfgs":
        raise ConfigError(
            "penalty='firth' needs the information matrix, which solver='lbfgs' does not "
            "share; use solver='newton' or 'auto'."
        )
    values["C"] = float("inf")


def _check_columns(values: dict) -> None:
    """Check that the column parameters fit together.

    The label is no feature; every categorical column and every column to fill is one the
    analysis uses.
    """
    features, label = values["features"], values["label"]
    categorical, fill = values["categorical"] or (), values["fill"] or {}
    named_label = label if isinstance(label, str) else None
    if features is not None and named_label in features:
        raise ConfigError(
            f"'features' includes the label column {named_label!r}; leave it out (the label "
            "is never a feature)."
        )
    if named_label in categorical:
        raise ConfigError(
            f"'categorical' includes the label column {named_label!r}; the label must be coded 0/1."
        )
    if features is not None:
        outside = [c for c in categorical if c not in features]
        if outside:
            raise ConfigError(
                f"'categorical' names column(s) {', '.join(map(repr, outside))} that are not "
                "in 'features'; add them to 'features' or leave them out."
            )
        # with the label given by position (or the default, the last column) its name is
        # known only at the hospital, which checks there
        outside = [c for c in fill if c not in (*features, named_label)]
        if outside and named_label is not None:
            raise ConfigError(
                f"'fill' names column(s) {', '.join(map(repr, outside))} that are not in "
                "'features' (nor the label); fill only columns the analysis uses."
            )


def markdown_table() -> str:
    """Build the README's parameter table (a test checks that the README holds exactly this)."""
    rows = ["| parameter | default | used by | meaning |", "|---|---|---|---|"]
    for parameter in PARAMETERS:
        shown = parameter.describe_default()
        if isinstance(parameter.default, (bool, str)) and parameter.default_doc is None:
            shown = f"`{shown}`"
        rows.append(f"| `{parameter.name}` | {shown} | {parameter.used_by} | {parameter.help} |")
    return "\n".join(rows) + "\n"
