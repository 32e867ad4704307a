"""The exact strategy on wide gene panels: rounds, bytes, seconds and memory as p grows.

For each p (default 100, 300, 1,100, 2,500 and 5,000), 3 hospitals of 2 x p patients from the
project's generator (``pancreas_fl_tools.sample.make_cohort``), ``strategy="exact"``,
``solver="auto"``, C = 1, with and without an intercept. The two sides of the strategy
(``ExactHospital``, ``ExactAggregator``) run round by round in this process, and every
message crosses as a pickle (as on FLAME), so that each node is timed and its memory traced on
its own:

* rounds: the analysis's rounds (a statistics round included);
* method: what ``solver="auto"`` chose and the curvature's encoding (``exact.curvature``);
* largest message: the largest pickled hospital update, in bytes;
* sent per hospital: the bytes of all its pickled updates, the largest over hospitals;
* Hessian rounds: the rounds whose updates carried a Hessian (the matrix or a packed triangle,
  a float32 residual included); with ``reuse_curvature`` (``exact/reuse.py``) the others
  carried the gradient alone;
* hospital s / round, aggregator s / round: means over the rounds (a hospital's: the mean
  over hospitals);
* hospital / aggregator peak: the largest memory a node holds, in MB: a hospital's matrix plus
  the peak of what its round allocates (``tracemalloc``, which numpy reports to); the
  aggregator's state plus the round's messages and what its round allocates; the aggregator's
  also in float64 ``p x p`` matrices (8 p^2 bytes). With ``--checks`` the aggregator's round
  begins with the message checks of the node class
  (``pancreas_fl.wire.AggregatorInbox.check_updates``), so its peak is the node's; LAPACK's
  work arrays, which numpy allocates outside ``tracemalloc``'s view, are not counted;
* rel. distance: ||theta - theta_pooled|| / ||theta_pooled|| to scikit-learn's pooled
  ``LogisticRegression(solver="newton-cholesky")``;
* production estimate: rounds x 1.1 s (a FLAME round's polling) + the compute (per round, the
  slowest hospital and the aggregator).

The disclosure guard ``max_param_ratio`` (DataSHIELD's 0.33) would refuse 2 x p patients per
hospital; the benchmark relaxes it explicitly to 0.6, as ``benchmarks/quality.py`` does, and
checks it as a hospital does. p = 2,500 and 5,000 take minutes (the pooled reference fit
costs as much as the federated one).

Run: ``python benchmarks/wide.py [--sizes 100 300 1100 2500 5000] [--intercept both|yes|no]
[--max-message-mb MB] [--solver auto|newton|lbfgs] [--reuse auto|on|off] [--checks]
[--per-round]`` (a smaller budget forces the float32 triangle, or L-BFGS with Böhning's bound
shared once; ``--solver lbfgs``: L-BFGS with the per-round centred diagonal, whatever the
budgets; ``--reuse`` sets ``reuse_curvature``; ``--checks``: see the aggregator's peak above;
``--per-round`` prints each round's seconds below its row: ``H`` or ``g`` (a Hessian, or the
gradient alone), the slowest hospital / the aggregator).
"""

from __future__ import annotations

import argparse
import gc
import pickle
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression

from pancreas_fl.exact.curvature import ROUND_SECONDS
from pancreas_fl.exact.strategy import ExactAggregator, ExactHospital
from pancreas_fl.handshake import Agreement
from pancreas_fl.params import resolve_params
from pancreas_fl.privacy import check_disclosure
from pancreas_fl.reader import HospitalData
from pancreas_fl.wire import AggregatorInbox
from pancreas_fl_tools.sample import make_cohort

SIZES = (100, 300, 1100, 2500, 5000)
HOSPITALS = 3
MAX_PARAM_RATIO = 0.6
_MB = 1e6


def cohort(p: int, seed: int = 17) -> list[HospitalData]:
    """Return 3 hospitals of 2 x p patients each, from the project's generator."""
    frames = make_cohort(n_nodes=HOSPITALS, rows=[2 * p] * HOSPITALS, n_features=p, seed=seed)
    data = []
    for frame in frames:
        names = tuple(frame.columns[:-1])
        X = frame.iloc[:, :-1].to_numpy(dtype=np.float64)
        y = frame.iloc[:, -1].to_numpy()
        data.append(HospitalData(X, y, names, frame.columns[-1]))
    return data


def traced(call):
    """Run ``call()``; return its result, its seconds and the peak bytes it allocated on top."""
    start, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    began = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    return result, seconds, peak - start


def federated(
    hospitals: list[HospitalData], fit_intercept: bool, *, checks: bool = False, **budgets
) -> dict:
    """Run the exact strategy round by round; return the model and the measurements.

    ``checks``: the aggregator checks every update first, as its node class does.
    """
    params = resolve_params(
        strategy="exact",
        fit_intercept=fit_intercept,
        max_param_ratio=MAX_PARAM_RATIO,
        **budgets,
    )
    p = hospitals[0].X.shape[1] + fit_intercept
    for data in hospitals:  # the guard a hospital applies, relaxed as documented
        check_disclosure(
            data.X.shape[0],
            p,
            n_positive=int(data.y.sum()),
            max_param_ratio=params.max_param_ratio,
        )
    names = hospitals[0].feature_names
    counts = {f"node{k}": int(d.X.shape[0]) for k, d in enumerate(hospitals, 1)}
    agreement = Agreement(
        list(names), hospitals[0].label_name, counts, int(sum(d.y.sum() for d in hospitals))
    )
    sides = {f"node{k}": ExactHospital(d, params) for k, d in enumerate(hospitals, 1)}
    resident = {node: d.X.nbytes + d.y.nbytes for node, d in zip(sides, hospitals, strict=True)}
    tracemalloc.start()
    aggregator = ExactAggregator(params, agreement, lambda *a, **k: None, max_iter_given=False)
    inbox = AggregatorInbox()
    inbox.counts = {
        node: (int(d.X.shape[0]), int(d.y.sum())) for node, d in zip(sides, hospitals, strict=True)
    }
    hospital_seconds, aggregator_seconds, compute, per_round = [], [], 0.0, []
    hospital_peak = aggregator_peak = largest = hessian_rounds = 0
    sent = dict.fromkeys(sides, 0)
    broadcast, round_index = None, 0
    while True:
        wire, slowest, hessian = {}, 0.0, False
        for node, side in sides.items():
            update, seconds, peak = traced(lambda side=side, b=broadcast: side.update(b))
            wire[node] = pickle.dumps(update, pickle.HIGHEST_PROTOCOL)
            hess = None if update["terms"] is None else update["terms"]["hess"]
            hessian |= isinstance(hess, np.ndarray) or (isinstance(hess, dict) and "upper" in hess)
            del update, hess
            hospital_seconds.append(seconds)
            slowest = max(slowest, seconds)
            hospital_peak = max(hospital_peak, resident[node] + peak)
            largest = max(largest, len(wire[node]))
            sent[node] += len(wire[node])
        hessian_rounds += hessian
        held, _ = tracemalloc.get_traced_memory()  # the aggregator's state and the messages

        def aggregate(wire=wire, round_index=round_index):
            updates = {node: pickle.loads(payload) for node, payload in wire.items()}
            if checks:
                messages = [{"node": node, "update": u} for node, u in updates.items()]
                inbox.check_updates(messages, round_index, aggregator.update_spec())
                del messages
            return aggregator.aggregate(updates, round_index)

        result, seconds, peak = traced(aggregate)
        del wire, aggregate  # the closure holds the round's messages (its default argument)
        aggregator_seconds.append(seconds)
        aggregator_peak = max(aggregator_peak, held + peak)
        compute += slowest + seconds
        per_round.append(f"{'H' if hessian else 'g'} {slowest:.2f}/{seconds:.2f}")
        if aggregator.stop_reason_ is not None:
            break
        broadcast, round_index = pickle.loads(pickle.dumps(result)), round_index + 1
    tracemalloc.stop()
    rounds = len(aggregator.rounds.history)
    return {
        "model": result,
        "rounds": rounds,
        "method": f"{aggregator.plan.method} ({aggregator.plan.encoding}"
        + (", reuse)" if aggregator.solver.reuse is not None else ")"),
        "largest": largest,
        "sent": max(sent.values()),
        "hessian_rounds": hessian_rounds,
        "per_round": " ".join(per_round),
        "hospital_s": float(np.mean(hospital_seconds)),
        "aggregator_s": float(np.mean(aggregator_seconds)),
        "hospital_mb": hospital_peak / _MB,
        "aggregator_mb": aggregator_peak / _MB,
        "aggregator_squares": aggregator_peak / (8 * p * p),
        "production_s": rounds * ROUND_SECONDS + compute,
    }


def pooled_distance(hospitals: list[HospitalData], model: dict, fit_intercept: bool) -> float:
    """Return the relative distance of the model to the pooled scikit-learn fit."""
    X = np.concatenate([d.X for d in hospitals])
    y = np.concatenate([d.y for d in hospitals])
    reference = LogisticRegression(
        C=1.0, fit_intercept=fit_intercept, solver="newton-cholesky", tol=1e-12, max_iter=100
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference.fit(X, y)
    theirs = reference.coef_.ravel()
    ours = np.asarray(model["coef"]).ravel()
    if fit_intercept:
        theirs = np.append(theirs, reference.intercept_)
        ours = np.append(ours, model["intercept"])
    return float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))


def main(argv: list[str] | None = None) -> None:
    """Print the Markdown table (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--intercept", choices=("both", "yes", "no"), default="both")
    parser.add_argument(
        "--max-message-mb",
        type=float,
        help="the curvature budget per hospital and round (default: the parameter's, 64)",
    )
    parser.add_argument("--solver", choices=("auto", "newton", "lbfgs"), default="auto")
    parser.add_argument(
        "--checks",
        action="store_true",
        help="run the aggregator node's message checks in its rounds (its real peak)",
    )
    parser.add_argument(
        "--per-round",
        action="store_true",
        help="after each row, each round's slowest hospital / aggregator seconds (H: a Hessian)",
    )
    parser.add_argument(
        "--reuse",
        choices=("auto", "on", "off"),
        help="reuse_curvature: keep the Hessian across rounds (default: the parameter's)",
    )
    args = parser.parse_args(argv)
    budgets = {} if args.max_message_mb is None else {"max_message_mb": args.max_message_mb}
    budgets["solver"] = args.solver
    if args.reuse is not None:
        budgets["reuse_curvature"] = args.reuse
    intercepts = {"both": (False, True), "yes": (True,), "no": (False,)}[args.intercept]
    print(
        "| p | intercept | method | rounds | largest message | hospital s / round | "
        "aggregator s / round | hospital peak | aggregator peak | in p x p | rel. distance | "
        "production estimate | sent per hospital | Hessian rounds |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    federated(cohort(20), True)  # warm up: the first fit's imports are not a round's cost
    for p in args.sizes:
        hospitals = cohort(p)
        for fit_intercept in intercepts:
            row = federated(hospitals, fit_intercept, checks=args.checks, **budgets)
            distance = pooled_distance(hospitals, row["model"], fit_intercept)
            print(
                f"| {p:,} | {'yes' if fit_intercept else 'no'} | {row['method']} | "
                f"{row['rounds']} | {row['largest']:,} B | {row['hospital_s']:.3f} | "
                f"{row['aggregator_s']:.3f} | {row['hospital_mb']:,.1f} MB | "
                f"{row['aggregator_mb']:,.1f} MB | {row['aggregator_squares']:.1f} | "
                f"{distance:.1e} | {row['production_s']:.1f} s | {row['sent']:,} B | "
                f"{row['hessian_rounds']} |",
                flush=True,
            )
            if args.per_round:
                print(f"  per round: {row['per_round']}", flush=True)
            gc.collect()
        del hospitals
        gc.collect()


if __name__ == "__main__":
    main()
