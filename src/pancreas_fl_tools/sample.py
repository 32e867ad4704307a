"""Seeded synthetic pancreatic-cancer cohorts, one CSV per hospital.

Nothing here comes from a real patient. The generator draws, per hospital,

1. gene expression on a log2 scale (about 2 to 14, the range of normalised microarray or
   log2(TPM + 1) RNA-seq values) for genes of :data:`GENE_PANEL`, each with its own mean and
   standard deviation, correlated through two latent factors (think "epithelial" and
   "stromal" programmes);
2. the diagnosis from a *true logistic model* on a few informative genes (mesothelin MSLN,
   S100P, MUC1 up in pancreatic ductal adenocarcinoma (PDAC); SMAD4 and CDKN2A, tumour
   suppressors lost in PDAC, down), with a hospital-specific intercept that sets the
   hospital's prevalence (case mix differs between, say, a referral centre and a general
   hospital);
3. a measurement (batch) shift: the hospital's platform adds a global and a gene-specific
   offset and rescales the spread around each gene's mean, after the diagnosis is drawn, as
   a different lab or array batch would.

Values are clipped to [0, 16] and rounded to 3 decimals, so a written file parses back to the
same numbers. Hospitals also differ in size. The label column ``diagnosis`` is last (1 =
PDAC, 0 = control or benign pancreatic disease), as the FLAME tutorial expects.

The same arguments give the same frames and byte-identical files on every platform.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pancreas_fl.constraints import check_int, check_real
from pancreas_fl.errors import ConfigError
from pancreas_fl.params import DEFAULT_DATASET

__all__ = [
    "GENE_PANEL",
    "LABEL_COLUMN",
    "gene_names",
    "make_cohort",
    "true_coefficients",
    "write_cohort",
]

LABEL_COLUMN = "diagnosis"
"""Name of the label column (1 = PDAC, 0 = control/benign)."""

# symbol: (mean log2 expression, sd, true log-odds per sd of expression). Roles in PDAC:
_PANEL: dict[str, tuple[float, float, float]] = {
    "KRAS": (9.0, 0.7, 0.0),  # oncogene mutated in ~90% of PDAC (mutation, not expression)
    "TP53": (8.5, 0.8, 0.0),  # tumour suppressor mutated in ~70%
    "CDKN2A": (5.5, 1.2, -0.3),  # p16INK4a, lost in most PDAC
    "SMAD4": (8.0, 0.9, -0.6),  # DPC4, deleted in ~55%
    "MUC1": (10.0, 1.3, 0.7),  # mucin, overexpressed
    "MSLN": (7.0, 1.8, 1.0),  # mesothelin, tumour marker
    "S100P": (6.5, 2.0, 0.9),  # early PDAC marker
    "KRT19": (11.5, 1.1, 0.0),  # ductal keratin (normal ducts too)
    "SPP1": (9.5, 1.6, 0.3),  # osteopontin
    "TFF1": (7.5, 2.0, 0.2),  # trefoil factor, PanIN/PDAC
    "CEACAM5": (6.0, 1.9, 0.4),  # CEA
    "LAMC2": (8.0, 1.2, 0.3),  # laminin gamma-2, invasion
    "CTHRC1": (6.5, 1.4, 0.2),  # stromal, invasion
    "POSTN": (9.0, 1.6, 0.2),  # periostin, desmoplastic stroma
    "COL11A1": (5.0, 1.7, 0.3),  # cancer-associated fibroblasts
    "MUC4": (5.5, 1.8, 0.2),  # mucin, absent in normal pancreas
    "AGR2": (9.0, 1.5, 0.0),  # anterior gradient 2, PanIN
    "CLDN18": (5.0, 2.0, 0.0),  # claudin 18.2, therapy target
    "TSPAN8": (7.5, 1.5, 0.0),
    "MMP7": (6.0, 1.7, 0.0),  # matrilysin
    "KRT17": (7.0, 1.6, 0.0),  # basal-like subtype
    "GPRC5A": (8.5, 1.2, 0.0),
    "FN1": (12.0, 1.0, 0.0),  # fibronectin, stroma
    "THBS2": (7.0, 1.3, 0.0),  # thrombospondin-2, serum marker candidate
    "FAP": (6.0, 1.3, 0.0),  # fibroblast activation protein
    "SULF1": (7.0, 1.2, 0.0),
    "TMPRSS4": (6.5, 1.4, 0.0),
    "PNLIP": (13.0, 1.5, -0.2),  # pancreatic lipase, acinar (lost in tumour tissue)
    "CPA1": (12.5, 1.6, 0.0),  # carboxypeptidase A1, acinar
    "PRSS1": (13.5, 1.2, 0.0),  # trypsin-1, acinar
}

GENE_PANEL: tuple[str, ...] = tuple(_PANEL)
"""Gene symbols with roles in PDAC, in the order features are taken."""

_N_FACTORS = 2
_SIZE_SPREAD = 0.25  # hospital sizes range from 1.25x to 0.75x the average
_PREVALENCE_RANGE = (0.25, 0.6)
_CLIP = (0.0, 16.0)
_DECIMALS = 3


def gene_names(n_features: int) -> tuple[str, ...]:
    """Feature names: :data:`GENE_PANEL`, then ``GENE_0001``, ``GENE_0002``, ...

    Parameters
    ----------
    n_features : int
        How many names.

    Returns
    -------
    tuple of str
    """
    check_int("n_features", n_features, 1)
    extra = n_features - len(GENE_PANEL)
    return GENE_PANEL[:n_features] + tuple(f"GENE_{i:04d}" for i in range(1, extra + 1))


def true_coefficients(n_features: int = 8, *, signal: float = 1.0) -> pd.Series:
    """Return the true model's log-odds per standard deviation of each gene's expression.

    Parameters
    ----------
    n_features : int, default 8
    signal : float, default 1.0
        Multiplier of all effects (as in :func:`make_cohort`).

    Returns
    -------
    pandas.Series
        Indexed by gene name; genes beyond the panel have no effect.
    """
    names = gene_names(n_features)
    beta = [signal * _PANEL[g][2] if g in _PANEL else 0.0 for g in names]
    return pd.Series(beta, index=list(names), dtype=np.float64, name="log_odds_per_sd")


def make_cohort(
    n_nodes: int = 2,
    rows: int | Sequence[int] = 180,
    n_features: int = 8,
    *,
    seed: int = 0,
    shift: float = 1.0,
    prevalence: float | Sequence[float] | None = None,
    signal: float = 1.0,
) -> list[pd.DataFrame]:
    """Generate one synthetic data frame per hospital.

    Parameters
    ----------
    n_nodes : int, default 2
        Number of hospitals.
    rows : int or sequence of int, default 180
        An int is the *average* number of patients per hospital: sizes fall linearly from
        1.25x to 0.75x of it (hospital 1 is the largest; they sum to ``n_nodes * rows``, give
        or take rounding). A sequence gives each hospital's exact size.
    n_features : int, default 8
        Number of genes: the first ones of :data:`GENE_PANEL`, then ``GENE_0001``, ...
    seed : int, default 0
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same cohort.
    shift : float, default 1.0
        Size of the between-hospital measurement shift (0 = none; 1 = batch offsets of about
        0.4 log2 units per hospital plus 0.2 per gene, and about 8% spread scaling).
    prevalence : float, sequence of float or None, default None
        Target share of PDAC patients per hospital, in (0, 1). ``None`` draws one per
        hospital uniformly from [0.25, 0.6]. The realised share varies around the target,
        because each diagnosis is drawn from the logistic model.
    signal : float, default 1.0
        Multiplier of the true effects (0 = labels independent of the genes).

    Returns
    -------
    list of pandas.DataFrame
        One per hospital: float64 gene columns, then the int64 ``diagnosis`` column, with a
        default RangeIndex.
    """
    check_int("n_nodes", n_nodes, 1)
    check_int("n_features", n_features, 1)
    check_int("seed", seed, 0)
    check_real("shift", shift, low=0.0, closed="left")
    check_real("signal", signal, low=0.0, closed="left")
    sizes = _sizes(n_nodes, rows)

    seq = np.random.SeedSequence(seed)
    gene_seq, design_seq, *node_seqs = seq.spawn(2 + n_nodes)
    names = gene_names(n_features)

    # gene parameters (the first genes' parameters do not depend on n_features)
    gene_rng = np.random.default_rng(gene_seq)
    loadings = gene_rng.normal(0.0, 0.35, size=(n_features, _N_FACTORS))
    extra = n_features - len(GENE_PANEL)
    extra_mean = gene_rng.uniform(3.0, 12.0, size=max(extra, 0))
    extra_sd = gene_rng.uniform(0.5, 1.5, size=max(extra, 0))
    mean = np.array([_PANEL[g][0] for g in names[: len(GENE_PANEL)]] + list(extra_mean))
    sd = np.array([_PANEL[g][1] for g in names[: len(GENE_PANEL)]] + list(extra_sd))
    beta = true_coefficients(n_features, signal=signal).to_numpy()
    communality = (loadings**2).sum(axis=1)
    loadings *= np.sqrt(np.minimum(communality, 0.9) / communality)[:, None]
    noise = np.sqrt(1.0 - (loadings**2).sum(axis=1))  # every gene has unit latent variance

    design_rng = np.random.default_rng(design_seq)
    targets = _prevalences(n_nodes, prevalence, design_rng)

    frames = []
    for size, target, node_seq in zip(sizes, targets, node_seqs, strict=True):
        rng = np.random.default_rng(node_seq)
        factors = rng.standard_normal((size, _N_FACTORS))
        z = factors @ loadings.T + rng.standard_normal((size, n_features)) * noise
        eta = z @ beta
        intercept = _intercept_for(eta, target)
        y = (rng.random(size) < _sigmoid(intercept + eta)).astype(np.int64)

        offset = shift * (rng.normal(0.0, 0.4) + rng.normal(0.0, 0.2, size=n_features))
        scale = np.exp(shift * rng.normal(0.0, 0.08))
        x = mean + scale * sd * z + offset
        x = np.round(np.clip(x, *_CLIP), _DECIMALS)

        frame = pd.DataFrame(x, columns=list(names))
        frame[LABEL_COLUMN] = y
        frames.append(frame)
    return frames


def write_cohort(
    out_dir: str | os.PathLike[str],
    frames: Sequence[pd.DataFrame],
    dataset: str = DEFAULT_DATASET,
    *,
    float_format: str = "%.3f",
) -> list[Path]:
    r"""Write one CSV per hospital: ``out_dir/node1/<dataset>``, ``out_dir/node2/...``.

    Parameters
    ----------
    out_dir : path-like
        Created if needed; existing files of the same name are overwritten.
    frames : sequence of pandas.DataFrame
        As returned by :func:`make_cohort`.
    dataset : str, default "pancreasData.csv"
        File name inside each node folder.
    float_format : str, default "%.3f"
        Format of float cells (compact, and exact for :func:`make_cohort`'s rounded values).

    Returns
    -------
    list of pathlib.Path
        The files written, in hospital order.

    Notes
    -----
    Files are UTF-8, comma-separated, with ``\n`` line ends and no index column, written as
    bytes so that they are identical on every platform.
    """
    out = Path(out_dir)
    paths = []
    for i, frame in enumerate(frames, start=1):
        path = out / f"node{i}" / dataset
        path.parent.mkdir(parents=True, exist_ok=True)
        text = frame.to_csv(index=False, float_format=float_format, lineterminator="\n")
        path.write_bytes(text.encode("utf-8"))
        paths.append(path)
    return paths


# --------------------------------------------------------------------------------------------


def _sigmoid(t: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * t))


def _intercept_for(eta: np.ndarray, target: float) -> float:
    """Intercept b with mean(sigmoid(b + eta)) == target (bisection; the map is monotone)."""
    lo, hi = -30.0 - float(np.max(eta, initial=0.0)), 30.0 - float(np.min(eta, initial=0.0))
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if np.mean(_sigmoid(mid + eta)) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _sizes(n_nodes: int, rows: int | Sequence[int]) -> list[int]:
    if isinstance(rows, numbers.Integral) and not isinstance(rows, bool):
        check_int("rows", rows, 1)
        if n_nodes == 1:
            return [int(rows)]
        weights = np.linspace(1 + _SIZE_SPREAD, 1 - _SIZE_SPREAD, n_nodes)
        return [max(1, round(int(rows) * w)) for w in weights]
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        raise ConfigError(
            f"'rows' must be an int in [1, inf) or a sequence of such ints. Got {rows!r} instead."
        )
    if len(rows) != n_nodes:
        raise ConfigError(
            f"'rows' must give one size per hospital ({n_nodes}). Got {len(rows)} sizes instead."
        )
    for r in rows:
        check_int("rows", r, 1)
    return [int(r) for r in rows]


def _prevalences(
    n_nodes: int, prevalence: float | Sequence[float] | None, rng: np.random.Generator
) -> list[float]:
    if prevalence is None:
        return [float(p) for p in rng.uniform(*_PREVALENCE_RANGE, size=n_nodes)]
    values = [prevalence] * n_nodes if isinstance(prevalence, numbers.Real) else prevalence
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ConfigError(
            "'prevalence' must be a float in (0, 1), a sequence of such floats or None. "
            f"Got {prevalence!r} instead."
        )
    if len(values) != n_nodes:
        raise ConfigError(
            f"'prevalence' must give one value per hospital ({n_nodes}). "
            f"Got {len(values)} values instead."
        )
    return [check_real("prevalence", p, high=1.0) for p in values]
