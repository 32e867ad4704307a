"""Disclosure guards applied at each hospital before a model update leaves it.

What leaves a hospital
----------------------
In the FLAME star pattern each hospital (analyzer node) sends the aggregator, once per round,
only a model update: the logistic-regression coefficient vector fitted or refined on its own
patients (``n_params`` numbers), plus, depending on the strategy, the number of patients the
update was computed from and the column *names* of its file (see
:func:`pancreas_fl.handshake.check_same_columns`). No row, no cell value and no per-patient quantity
ever leaves it. The names are what the hospital chose to export, and all of them cross; a
first row that is not a header (values, or a decimal number, where names belong: a file
exported without its header) is refused by :mod:`pancreas_fl.reader` before anything is sent.
The aggregator's result (averaged coefficients) is broadcast back and, at the end, returned to
the analyst.

Why that can still disclose
---------------------------
Coefficients are an aggregate, but a small or over-parameterised aggregate can be inverted:

* fitted on very few patients, an update is close to a function of individual records (with
  one patient, a gradient step points straight at that patient's measurements);
* with nearly as many parameters as patients, the fit can interpolate the data, and the
  coefficients plus the model's equations can reveal the records themselves.

The guards follow DataSHIELD's disclosure filters, the established practice for federated
analysis of clinical data:

* ``nfilter.glm = 0.33``: DataSHIELD refuses a GLM when *parameters / observations* exceeds
  0.33; here :data:`DEFAULT_MAX_PARAM_RATIO`;
* ``nfilter.subset = 3``: no subset with fewer than 3 records may be formed; here
  :data:`DEFAULT_MIN_CLASS_SIZE`, applied to each outcome class (a class with 1 or 2 patients
  is a tiny subset whose members influence the update strongly). A class with 0 patients is
  not a subset and is not refused here (FedAvg's own check deals with it);
* a minimum number of patients per hospital, :data:`DEFAULT_MIN_PATIENTS` = 10: an update
  from fewer patients is close to revealing individuals, and 10 is the smallest hospital for
  which the 0.33 ratio still admits a model with 3 parameters (the 8-gene tutorial model
  needs at least 25 patients under that ratio anyway).

The thresholds belong to the data owner: an analyst may relax them only with the data owner's
agreement, through the documented keyword arguments ``min_patients``, ``max_param_ratio`` and
``min_class_size``. These guards limit obvious disclosure; they are not differential privacy.
"""

from __future__ import annotations

import math

from pancreas_fl.constraints import check_int
from pancreas_fl.errors import ConfigError, PrivacyError
from pancreas_fl.params import check_parameter, default

__all__ = [
    "DEFAULT_MAX_PARAM_RATIO",
    "DEFAULT_MIN_CLASS_SIZE",
    "DEFAULT_MIN_PATIENTS",
    "check_disclosure",
    "validate_privacy_params",
]

DEFAULT_MIN_PATIENTS = default("min_patients")
"""Fewest patients a hospital may fit a model update on (the parameter table's default)."""

DEFAULT_MAX_PARAM_RATIO = default("max_param_ratio")
"""Largest allowed parameters / patients ratio (DataSHIELD's ``nfilter.glm``; the table's)."""

DEFAULT_MIN_CLASS_SIZE = 3
"""Fewest patients a non-empty outcome class may have (DataSHIELD's ``nfilter.subset``)."""

_AGREE = "with the data owner's agreement"


def validate_privacy_params(
    min_patients: int,
    max_param_ratio: float,
    min_class_size: int = DEFAULT_MIN_CLASS_SIZE,
) -> None:
    """Check the disclosure thresholds.

    Parameters
    ----------
    min_patients : int
        In ``[1, inf)``.
    max_param_ratio : float
        In ``(0, 1]``.
    min_class_size : int, default 3
        In ``[1, inf)``.

    Raises
    ------
    ConfigError
        With scikit-learn's message style, e.g.
        ``"'min_patients' must be an int in [1, inf). Got 0 instead."``.
    """
    check_parameter("min_patients", min_patients)
    check_int("min_class_size", min_class_size, 1)
    check_parameter("max_param_ratio", max_param_ratio)


def check_disclosure(
    n_samples: int,
    n_params: int,
    *,
    min_patients: int = DEFAULT_MIN_PATIENTS,
    max_param_ratio: float = DEFAULT_MAX_PARAM_RATIO,
    n_positive: int | None = None,
    min_class_size: int = DEFAULT_MIN_CLASS_SIZE,
    file: str | None = None,
) -> None:
    """Refuse to share a model update that could expose individual patients.

    Parameters
    ----------
    n_samples : int
        Patients the update is computed from.
    n_params : int
        Parameters of the model (coefficients, plus 1 with an intercept).
    min_patients : int, default 10
        Refuse when ``n_samples < min_patients``.
    max_param_ratio : float, default 0.33
        Refuse when ``n_params / n_samples > max_param_ratio``.
    n_positive : int, optional
        Patients with label 1. When given, refuse when a class has between 1 and
        ``min_class_size - 1`` patients.
    min_class_size : int, default 3
        Smallest allowed non-empty class.
    file : str, optional
        The dataset key, for the message (the caller adds the hospital).

    Raises
    ------
    PrivacyError
        With counts only and a hint on what can be changed.
    ConfigError
        When a threshold is invalid.
    """
    validate_privacy_params(min_patients, max_param_ratio, min_class_size)
    check_int("n_samples", n_samples, 0)
    check_int("n_params", n_params, 0)

    if n_samples < min_patients:
        raise PrivacyError(
            f"refusing to share a model update computed from {n_samples} patient(s): "
            f"at least {min_patients} are required",
            file=file,
            hint=f"Add patients or leave this hospital out; min_patients={min_patients} can "
            f"be lowered only {_AGREE}",
        )
    ratio = n_params / n_samples
    if ratio > max_param_ratio:
        needed = math.ceil(n_params / max_param_ratio)
        affordable = math.floor(max_param_ratio * n_samples)
        raise PrivacyError(
            f"refusing to share a model with {n_params} parameters fitted on {n_samples} "
            f"patients: parameters/patients = {ratio:.2f} exceeds {max_param_ratio:g} "
            f"(at least {needed} patients, or at most {affordable} parameters)",
            file=file,
            hint=f"Use fewer features or add patients; max_param_ratio={max_param_ratio:g} "
            f"can be raised only {_AGREE}",
        )
    if n_positive is not None:
        if check_int("n_positive", n_positive, 0) > n_samples:
            raise ConfigError(
                f"'n_positive' must be an int in [0, n_samples={n_samples}]. "
                f"Got {n_positive!r} instead."
            )
        for label, count in ((1, n_positive), (0, n_samples - n_positive)):
            if 0 < count < min_class_size:
                raise PrivacyError(
                    f"refusing to share a model update: only {count} patient(s) have label "
                    f"{label} (at least {min_class_size} per class are required)",
                    file=file,
                    hint=f"Add patients of that class or leave this hospital out; "
                    f"min_class_size={min_class_size} can be lowered only {_AGREE}",
                )
