"""The cost of checking every message where it is received (pancreas_fl.wire), per round.

Runs the analysis round by round in this process (the star pattern by hand, every message
pickled across as in production) and times, separately, everything the checks add: the
aggregator's envelope, update and final-result checks and its broadcast digest, each
hospital's broadcast check and digest, FedAvg's one-off sum of |x| and the exact fit's
certificate. (Read as the tutorial reads, FedAvg's sums of |x| are those the reader's
magnitudes' check computed, with no pass of their own; with column options they take one.)
Prints, per configuration, the median over repeats (and the fastest run, the least disturbed
on a shared machine) of the checks' milliseconds per round, as a share of
the round's compute (the hospitals' updates, one after the other, plus the aggregation,
without any messaging: an upper bound of the share) and as a share of a round on the
offline engine (thread isolation: the aggregator's history times each round,
messages both ways included). On a FLAME node a round also waits for the SDK's 1 s polls.
Apart, the checks of a later round (the median over rounds 2 on): without the one-off work of
the first rounds (the introductions, FedAvg's sum of |x|, the exact bounds' first curvature);
and the same checks with the caches warm (replayed in a row: the checks' own work, their
floor under any cache state).

Budgets (issue 16): < 2 % of a round on data/sample, < 1 % on 4 x 100,000 x 30.

Run: ``python benchmarks/wire_checks.py [--repeats 5] [--rows 100000] [--big-repeats 3]``.
"""

from __future__ import annotations

import argparse
import copy
import gc
import math
import pickle
import statistics
import sys
import time
import timeit
from pathlib import Path

from pancreas_fl import fedavg, wire
from pancreas_fl.analysis import FederatedLogisticRegression, PancreasAnalyzer
from pancreas_fl.exact import strategy as exact
from pancreas_fl_tools.sample import make_cohort

REPO = Path(__file__).resolve().parents[1]
DATASET = "pancreasData.csv"

CONFIGS = {
    "fedavg (tutorial)": {},
    "fedavg + intercept": {"fit_intercept": True, "output": "model"},
    "exact + intercept": {"strategy": "exact", "fit_intercept": True},
    "exact, lbfgs": {"strategy": "exact", "solver": "lbfgs", "fit_intercept": True},
}


class _Core:
    def __init__(self, node_id: str, role: str) -> None:
        self.node_id, self.role = node_id, role

    def get_id(self):
        return self.node_id

    def get_role(self):
        return self.role

    def get_participant_ids(self):
        return []

    def flame_log(self, *args, **kwargs):
        pass


class _Clock:
    """Seconds spent in the wrapped functions (the checks)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.patched: list[tuple] = []

    def wrap(self, owner, name: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            return self.call(original, args, kwargs)

        self.patched.append((owner, name, original))
        setattr(owner, name, wrapper)

    def call(self, original, args, kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start

    def restore(self) -> None:
        for owner, name, original in reversed(self.patched):
            setattr(owner, name, original)


class _Recorder(_Clock):
    """A clock that keeps a copy of every check's arguments instead, by round (warm_round)."""

    def __init__(self) -> None:
        super().__init__()
        self.rounds: list[list[tuple]] = [[]]

    def call(self, original, args, kwargs):
        self.rounds[-1].append((original, copy.deepcopy((args, kwargs))))
        return original(*args, **kwargs)


def _checks(clock: _Clock) -> None:
    for name in ("open", "check_updates", "sent"):
        clock.wrap(wire.AggregatorInbox, name)
    clock.wrap(wire.HospitalInbox, "receive")
    clock.wrap(fedavg, "_sum_abs")
    # names bound in other modules at import: wrap them where they are looked up
    import pancreas_fl.analysis as analysis

    clock.wrap(analysis, "check_final_result")
    clock.wrap(exact, "certify")


def _rounds(splits, params, clock: _Clock) -> tuple[float, int, list[float]]:
    """Run one analysis with ``clock`` around the checks; return its compute, rounds and checks.

    The rounds' compute (seconds), their number, and the checks' seconds of every round.
    """
    hospitals = [
        PancreasAnalyzer(_Core(f"node-{i + 1}", "default"), **params) for i in range(len(splits))
    ]
    aggregator = FederatedLogisticRegression(_Core("aggregator", "aggregator"), **params)
    busy, per_round = 0.0, []
    for rounds in range(1, 10_000):
        before = clock.seconds
        start = time.perf_counter()
        sent = [h.analyze(data) for h, data in zip(hospitals, splits, strict=True)]
        busy += time.perf_counter() - start
        messages = [pickle.loads(pickle.dumps(m)) for m in sent]
        start = time.perf_counter()
        result, converged = aggregator.aggregate(messages, simple_analysis=False)
        busy += time.perf_counter() - start
        per_round.append(clock.seconds - before)
        if converged:
            return busy, rounds, per_round
        received = pickle.loads(pickle.dumps(result))
        for hospital in hospitals:
            hospital.latest_result = received
        if isinstance(clock, _Recorder):
            clock.rounds.append([])
    raise RuntimeError("no convergence")


def one_run(splits, params) -> tuple[float, float, int, float]:
    """Return the seconds of the checks, of the rounds, the rounds, and a later round's checks.

    A later round's: the median over rounds 2 on (no one-off work).

    The garbage collector is off while it runs, as in ``timeit``: a collection of the
    cohort's large heap would land in whichever call allocates next, a check or not.
    """
    clock = _Clock()
    _checks(clock)
    gc.collect()
    gc.disable()
    try:
        busy, rounds, per_round = _rounds(splits, params, clock)
    finally:
        gc.enable()
        clock.restore()
    later = statistics.median(per_round[2:]) if rounds > 2 else math.nan
    return clock.seconds, busy, rounds, later


def warm_round(splits, params, number: int = 2000) -> float:
    """Return the seconds of a later round's checks with the caches warm: their floor.

    Runs the analysis once, keeping a copy of every check's arguments, then times each check
    of the round before the last replayed ``number`` times in a row (the best of 3) and sums
    them: what the checks' code costs when nothing else ran since. An analysis never sees
    that (each hospital fits in between, and the caches are cold after it), but it is the
    floor under any cache state: the part of the cost that is the checks' own work.
    """
    recorder = _Recorder()
    _checks(recorder)
    try:
        _, rounds, _ = _rounds(splits, params, recorder)
    finally:
        recorder.restore()
    if rounds < 3:
        return math.nan
    total = 0.0
    for original, (args, kwargs) in recorder.rounds[-2]:
        best = min(
            timeit.repeat(lambda: original(*args, **kwargs), number=number, repeat=3)  # noqa: B023
        )
        total += best / number
    return total


def engine_round(splits, params) -> float:
    """Return the median seconds of a round on the offline engine (thread isolation).

    The aggregator's history times each round from one aggregation to the next: the
    hospitals' updates, the messages both ways and the aggregation.
    """
    from pancreas_fl_tools.simulation import simulate

    params = {**params, "output": "model"}
    gc.collect()
    gc.disable()
    try:
        tester = simulate(splits, isolation="thread", stream_log_level=100, **params)
    finally:
        gc.enable()
    return statistics.median(entry["seconds"] for entry in tester.result["history"][1:])


def _splits_of_frames(frames):
    return [[{DATASET: frame.to_csv(index=False).encode()}] for frame in frames]


def main(argv=None) -> int:
    """Print the checks' share of a round, per cohort and configuration."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=100_000, help="patients per hospital")
    parser.add_argument("--big-repeats", type=int, default=3, help="runs on the large cohort")
    args = parser.parse_args(argv)
    sample = [
        [{DATASET: (REPO / "data" / "sample" / node / DATASET).read_bytes()}]
        for node in ("node1", "node2")
    ]
    big = _splits_of_frames(make_cohort(4, args.rows, 30, seed=0))
    cohorts = {
        "data/sample": (sample, 2.0, args.repeats),
        f"4 x {args.rows:,} x 30": (big, 1.0, args.big_repeats),
    }
    print(f"{args.repeats} runs each: the median, and the fastest (the least disturbed)")
    for cohort, (splits, budget, repeats) in cohorts.items():
        for name, params in CONFIGS.items():
            checks_ms, compute_ms, engine_ms, later_ms = [], [], [], []
            for _ in range(repeats):
                checks, busy, rounds, later = one_run(splits, params)
                checks_ms.append(checks / rounds * 1000)
                compute_ms.append(busy / rounds * 1000)
                later_ms.append(later * 1000)
                engine_ms.append(engine_round(splits, params) * 1000)
            warm = warm_round(splits, params) * 1000
            for label, pick in (("median", statistics.median), ("fastest", min)):
                c, b, e, lt = pick(checks_ms), pick(compute_ms), pick(engine_ms), pick(later_ms)
                mark = "ok" if c / e * 100 < budget else "OVER BUDGET"
                print(
                    f"{cohort:>18}  {name:<19} {label:>7}: checks {c:6.3f} ms/round = "
                    f"{c / b * 100:5.2f} % of the compute ({b:8.2f} ms), {c / e * 100:5.2f} % "
                    f"of the engine's round ({e:8.2f} ms; budget {budget:g} %: {mark}); "
                    f"a later round's {lt:6.3f} ms = {lt / e * 100:5.2f} %, warm "
                    f"{warm:6.3f} ms = {warm / e * 100:5.2f} %"
                )
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
