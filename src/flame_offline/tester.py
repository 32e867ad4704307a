"""``StarModelTester``: run a whole star-pattern analysis locally, one node per data split.

Compared with the SDK's harness (release 0.6.4's positional arguments, plus keyword-only
options of newer releases and of the engine):

* Nodes run as threads (``isolation='thread'``) or as separate OS processes
  (``isolation='process'``, see :mod:`flame_offline.runner`); in both modes everything
  travels between nodes as bytes (pickled data, JSON control messages), and waits block
  without polling (no 10 ms floor per round).
* The nodes' core object behaves like production's (see :mod:`flame_offline.core`), not
  like the SDK's local mock: ``query=None`` gives the analyzers ``data=None``, only
  production's log types are accepted, an ``'error'`` log fails the node.
* Node ids are deterministic: ``'node-1'`` … ``'node-N'`` (or ``node_ids``) and
  ``'aggregator'`` (always the last participant).
* A failing node **raises** :class:`~flame_offline.NodeFailedError` (or
  :class:`~flame_offline.NodeTimeoutError` when the first failure is a wait that timed
  out) after stopping every other node within 2 s; the SDK's harness prints and returns.
* Logs are :class:`~flame_offline.LogRecord` objects, delivered live to ``log_handler``
  or printed to stderr as ``[node_id] message`` from ``stream_log_level`` (default: info)
  up, and kept in :attr:`StarModelTester.logs`.
* Result files are written all or nothing; ``filename`` (newer releases' name) is an alias
  of ``result_filepath``; every data split is checked (the SDK checks only the first), must
  survive pickle, and ``node_roles`` must have one role per data split (the SDK's length
  check never fires).
* ``load_checkpoint`` and ``local_storage_dir`` are accepted for signature compatibility
  only: the engine keeps no checkpoints.
"""

from __future__ import annotations

import copy
import os
import pickle
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from flame_offline._io import write_files
from flame_offline.core import DP_SEED_KEY, check_output_type
from flame_offline.errors import NodeFailedError, NodeTimeoutError, ScriptGuardError, role_label
from flame_offline.logs import LogRecord
from flame_offline.model import StarLocalDPModel, StarModel
from flame_offline.runner import (
    NodeSpec,
    leave_reimported_main,
    node_thread_cpu,
    reimported_main,
    run_node_thread,
    run_processes,
)
from flame_offline.transport import FinalSubmission, RunState, ThreadBus, ThreadEndpoint

__all__ = ["AGGREGATOR_ID", "StarModelTester"]

#: Node id of the aggregator in every local run.
AGGREGATOR_ID = "aggregator"
#: Seconds the tester gives the other nodes to stop after the first failure.
_STOP_GRACE = 1.5


def _split_problems(split: Any) -> list[str]:
    if not isinstance(split, list):
        return ["format your split as a list"]
    if not split:
        return ["fill the list with data sources"]
    if not all(isinstance(source, dict) for source in split):
        return ["make every data source a dict (dataset name -> content)"]
    return []


def _all_bytes(split: Any) -> bool:
    """Whether ``split`` is s3 data whose every object is immutable ``bytes``."""
    return isinstance(split, list) and all(
        isinstance(source, dict) and all(type(value) is bytes for value in source.values())
        for source in split
    )


class _Discard:
    """A file that forgets what is written to it: a pickle streamed here is only checked."""

    def write(self, data: Any) -> int:
        return len(data)


def _pickle_split(split: Any, index: int, node_id: str, *, keep: bool = True) -> bytes | None:
    """Pickle a data split; a ``TypeError`` names the split (and key) that cannot travel.

    With ``keep=False`` the pickle is only checked, streamed to nowhere (a large ``bytes``
    object goes to the sink as it is, uncopied), and ``None`` is returned.
    """
    try:
        if not keep:
            pickle.Pickler(_Discard(), protocol=pickle.HIGHEST_PROTOCOL).dump(split)
            return None
        return pickle.dumps(split, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        where = f"data split {index} (node {node_id!r})"
        problem = exc
        sources = split if isinstance(split, list) else [split]
        for number, source in enumerate(sources):
            if not isinstance(source, dict):
                continue
            for key, value in source.items():
                try:
                    pickle.dumps(value)
                except Exception as value_exc:
                    source_part = f", data source {number}" if isinstance(split, list) else ""
                    where += f"{source_part}, key {key!r}"
                    problem = value_exc
                    break
            else:
                continue
            break
        raise TypeError(
            f"{where} cannot be pickled ({type(problem).__name__}: {problem}). A FLAME node "
            "receives its data as bytes (s3 objects) or JSON (FHIR bundles); give the tester "
            "data that survives pickle, e.g. the files' bytes."
        ) from exc


def _silent(*args: Any) -> None:
    """Stands in for ``print`` when the tester is asked not to print the result."""


#: Added to a failure of an s3 run that passed no ``query``: every analyzer got ``data=None``.
_NO_QUERY = (
    "Note: this run passed no query, so every analyzer got data=None, as on a production "
    "node (get_s3_data(None) returns None; the SDK's local mock hands over the data anyway). "
    "Pass the object keys to fetch, e.g. query=['pancreasData.csv'], or query=[] for every "
    "object of each hospital's bucket."
)


def _check_options(
    *, load_checkpoint, local_storage_dir, isolation, timeout, data_type, epsilon, sensitivity
) -> None:
    """Refuse options the engine does not take, or values no run can have."""
    for name, value in (
        ("load_checkpoint", load_checkpoint),
        ("local_storage_dir", local_storage_dir),
    ):
        if value is not None:
            raise NotImplementedError(
                f"{name} is accepted for signature compatibility only: the offline "
                "engine keeps no checkpoints. Leave it None."
            )
    if isolation not in ("thread", "process"):
        raise ValueError(f"isolation must be 'thread' or 'process'. Got {isolation!r}.")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds or None. Got {timeout!r}.")
    if data_type not in ("s3", "fhir"):
        raise ValueError(f"data_type must be 's3' or 'fhir'. Got {data_type!r} instead.")
    if (epsilon is None) != (sensitivity is None):
        raise ValueError(
            "local DP needs both epsilon and sensitivity (or neither); the SDK's tester "
            "silently runs without local DP when one is missing."
        )
    if epsilon is not None and not (epsilon > 0 and sensitivity > 0):
        raise ValueError(
            f"epsilon and sensitivity must be positive. Got epsilon={epsilon!r} and "
            f"sensitivity={sensitivity!r} instead."
        )


def _split_payloads(data_splits, analyzer_ids, isolation: str) -> list:
    """Pickle every split (each must be able to travel); warn of splits FLAME never gives.

    Under threads, s3 bytes are shared (immutable) rather than copied per node: their pickle
    is only checked, never held (``None`` in the list).
    """
    payloads = [
        _pickle_split(
            split,
            index,
            analyzer_ids[index],
            keep=not (isolation == "thread" and _all_bytes(split)),
        )
        for index, split in enumerate(data_splits)
    ]
    for index, split in enumerate(data_splits):
        problems = _split_problems(split)
        if problems:
            print(
                f"Warning! Data split {index} (node {analyzer_ids[index]!r}) is not a list "
                "of dicts: in FLAME every node gets a list with one dict per data source "
                "(s3: dataset name -> bytes; fhir: query -> bundle), so the analysis may "
                f"work here but not in FLAME. To fix: {'; '.join(problems)}.",
                file=sys.stderr,
            )
    return payloads


class StarModelTester:
    """Run a star-pattern analysis locally: one analyzer per data split plus one aggregator.

    Parameters
    ----------
    data_splits : sequence
        One entry per analyzer node, each a list of dicts (one dict per data source; s3:
        object key → ``bytes``, FHIR: query → bundle). Other shapes print a warning; every
        split must survive pickle (``TypeError`` naming the split and key otherwise).
    analyzer, aggregator : type
        The node classes (subclasses of :class:`~flame_offline.StarAnalyzer` /
        :class:`~flame_offline.StarAggregator`, or of the SDK's).
    data_type : {'s3', 'fhir'}
        Which data the analyzers read.
    node_roles : list of str, optional
        The role of each analyzer node (one per data split; default ``'default'``).
    query : str or list of str, optional
        s3 object keys / FHIR queries to fetch. ``None`` fetches nothing (the analyzers get
        ``data=None``, as in production); ``[]`` fetches every s3 object.
    simple_analysis : bool
        Single round, or iterate until the aggregator's ``has_converged``.
    output_type : {'str', 'bytes', 'pickle'} or list of them
        How the final result is written.
    multiple_results : bool
        Split a list/tuple result into one result (file) per element.
    analyzer_kwargs, aggregator_kwargs : dict, optional
        Extra keyword arguments of the node classes (copied into every node).
    epsilon, sensitivity : float, optional
        Give both (positive) to run the nodes as :class:`~flame_offline.StarLocalDPModel`.
    result_filepath : str or list of str, optional
        Where to write the result; ``None`` prints ``Final result: ...`` instead.
    filename : str or list of str, optional
        Alias of ``result_filepath`` (the name in newer SDK releases).
    stream_log_level : int
        Lowest :mod:`logging` level printed to stderr (without ``log_handler``); the
        default, 20, hides ``'debug'`` logs.
    load_checkpoint, local_storage_dir : None
        Accepted for signature compatibility; anything else raises ``NotImplementedError``.
    isolation : {'thread', 'process'}
        Run each node as a thread, or as its own OS process (nothing shared, so
        module-global state cannot leak between nodes, as in production).
    timeout : float or None
        Longest time a node may wait for messages before :class:`NodeTimeoutError`.
    node_ids : list of str, optional
        Ids of the analyzer nodes (default ``'node-1'`` … ``'node-N'``).
    log_handler : callable, optional
        Called live with every :class:`~flame_offline.LogRecord` (then nothing is
        printed).
    print_failures : bool
        Print the failing node and its traceback to stderr before raising.
    print_result : bool
        Print ``Final result: ...`` (no file name) or ``Final result written to ...``, as
        the SDK's harness does; ``False`` keeps the tester silent (``tester.result`` holds
        the result either way).
    dp_seed : int, optional
        Seed of the local-DP Laplace noise (``None``: fresh entropy).

    Attributes
    ----------
    node_ids : list of str
        Every participant's id, the aggregator last.
    participants : list of dict
        ``{'id': ..., 'role': ...}`` per participant.
    logs : list of LogRecord
        Every log record of the run.
    result : object
        The final result.
    results : list
        The final results (one per element with ``multiple_results``, else ``[result]``).
    result_files : list of str
        The files written.

    Raises
    ------
    NodeFailedError
        If a node raised (or its process died); names the first failing node.
    NodeTimeoutError
        If the first failure is a node that waited longer than ``timeout``.
    ScriptGuardError
        If node processes had to be spawned and the main script starts the tester at import.
    """

    def __init__(
        self,
        data_splits: Sequence[Any],
        analyzer: type,
        aggregator: type,
        data_type: str,
        node_roles: list[str] | None = None,
        query: str | list[str] | None = None,
        simple_analysis: bool = True,
        output_type: str | list[str] = "str",
        multiple_results: bool = False,
        analyzer_kwargs: dict | None = None,
        aggregator_kwargs: dict | None = None,
        epsilon: float | None = None,
        sensitivity: float | None = None,
        result_filepath: str | list[str] | None = None,
        *,
        filename: str | list[str] | None = None,
        stream_log_level: int = 20,
        load_checkpoint: Any = None,
        local_storage_dir: Any = None,
        isolation: str = "thread",
        timeout: float | None = 300.0,
        node_ids: list[str] | None = None,
        log_handler: Callable[[LogRecord], None] | None = None,
        print_failures: bool = True,
        print_result: bool = True,
        dp_seed: int | None = None,
    ) -> None:
        if reimported_main():
            # A spawned node process is importing the main script, and the script starts a
            # tester at import (no __main__ guard): end that process, the tester that spawned
            # it raises one ScriptGuardError.
            leave_reimported_main()
        if filename is not None and result_filepath is not None:
            raise TypeError("give either result_filepath or filename (its alias), not both")
        _check_options(
            load_checkpoint=load_checkpoint,
            local_storage_dir=local_storage_dir,
            isolation=isolation,
            timeout=timeout,
            data_type=data_type,
            epsilon=epsilon,
            sensitivity=sensitivity,
        )
        check_output_type(output_type)
        self._filename = self._check_filename(
            filename if result_filepath is None else result_filepath, multiple_results
        )
        num_splits = len(data_splits)
        if num_splits == 0:
            raise ValueError("data_splits must hold at least one data split (one per analyzer).")
        analyzer_ids = self._check_node_ids(node_ids, num_splits)
        roles = self._check_node_roles(node_roles, num_splits)
        self.participants = [{"id": i, "role": r} for i, r in zip(analyzer_ids, roles, strict=True)]
        self.participants.append({"id": AGGREGATOR_ID, "role": "aggregator"})
        self.node_ids = [p["id"] for p in self.participants]
        payloads = _split_payloads(data_splits, analyzer_ids, isolation)

        self.isolation = isolation
        self.timeout = timeout
        self._data_type, self._query = data_type, query
        self.logs: list[LogRecord] = []
        self.result: Any = None
        self.results: list[Any] = []
        self.result_files: list[str] = []
        self._log_handler = log_handler
        self._stream_log_level = stream_log_level

        model_cls, model_kwargs = (
            StarModel,
            {
                "analyzer": analyzer,
                "aggregator": aggregator,
                "data_type": data_type,
                "query": query,
                "simple_analysis": simple_analysis,
                "output_type": output_type,
                "multiple_results": multiple_results,
                "analyzer_kwargs": analyzer_kwargs,
                "aggregator_kwargs": aggregator_kwargs,
            },
        )
        if epsilon is not None:
            model_cls = StarLocalDPModel
            model_kwargs.update(epsilon=epsilon, sensitivity=sensitivity)
        specs = self._node_specs(
            model_cls, model_kwargs, f"{data_type}_data", data_splits, payloads, timeout, dp_seed
        )
        run = RunState({p["id"]: p["role"] for p in self.participants}, self._on_log)
        if isolation == "thread":
            self._run_threads(specs, run)
        else:
            run_processes(specs, run, (analyzer, aggregator), _STOP_GRACE)
        if run.first_failure is not None:
            self._raise_failure(run, print_failures)
        if run.submission is None:
            raise RuntimeError(
                "every node finished but no final result was submitted "
                "(is the aggregator the last participant with role 'aggregator'?)"
            )
        self._take_result(run.submission)
        self._output(run.submission, print_result)

    def _node_specs(
        self, model_cls, model_kwargs, data_key, data_splits, payloads, timeout, dp_seed
    ) -> list[NodeSpec]:
        """One spec per participant: its model, its test arguments and its data."""
        num_splits, no_data = len(data_splits), pickle.dumps(None)
        specs = []
        for index, participant in enumerate(self.participants):
            test_kwargs = {
                "node_id": participant["id"],
                "aggregator_id": AGGREGATOR_ID,
                "participants": [p for p in self.participants if p is not participant],
                "role": participant["role"],
                "analysis_id": "analysis_id",
                "project_id": "project_id",
                DP_SEED_KEY: dp_seed,
            }
            specs.append(
                NodeSpec(
                    participant["id"],
                    participant["role"],
                    model_cls,
                    model_kwargs,
                    test_kwargs,
                    data_key,
                    payloads[index] if index < num_splits else no_data,
                    timeout,
                    data_splits[index] if index < num_splits and payloads[index] is None else None,
                )
            )
        return specs

    # ------------------------------------------------------------------ checks
    @staticmethod
    def _check_filename(filename: Any, multiple_results: bool) -> str | list[str] | None:
        if filename is None:
            return None
        if isinstance(filename, list):
            if not filename:
                raise ValueError("result_filepath must not be an empty list.")
            if not multiple_results:
                raise ValueError("a list of file names needs multiple_results=True.")
            return [os.fspath(f) for f in filename]
        return os.fspath(filename)

    @staticmethod
    def _check_node_ids(node_ids: list[str] | None, num_splits: int) -> list[str]:
        if node_ids is None:
            return [f"node-{i}" for i in range(1, num_splits + 1)]
        node_ids = list(node_ids)
        if len(node_ids) != num_splits:
            raise ValueError(
                f"node_ids must give one id per data split ({num_splits}). "
                f"Got {len(node_ids)} ids instead."
            )
        if not all(isinstance(i, str) and i for i in node_ids):
            raise ValueError("node_ids must be non-empty strings.")
        if len(set(node_ids)) != num_splits or AGGREGATOR_ID in node_ids:
            raise ValueError(
                f"node_ids must be unique and must not be {AGGREGATOR_ID!r} "
                f"(the aggregator's id). Got {node_ids!r}."
            )
        return node_ids

    @staticmethod
    def _check_node_roles(node_roles: list[str] | None, num_splits: int) -> list[str]:
        if node_roles is None:
            return ["default"] * num_splits
        if len(node_roles) != num_splits:
            raise ValueError(
                f"Length of node_roles ({len(node_roles)}) must be equal to length of "
                f"data_splits ({num_splits}), if node_roles is provided."
            )
        if not all(isinstance(r, str) for r in node_roles):
            raise ValueError("node_roles must be strings.")
        return list(node_roles)

    # ------------------------------------------------------------------ running
    def _on_log(self, record: LogRecord) -> None:
        self.logs.append(record)
        if self._log_handler is not None:
            self._log_handler(record)
        elif record.level >= self._stream_log_level:
            print(f"[{record.node_id}] {record.message.rstrip(chr(10))}", file=sys.stderr)

    @staticmethod
    def _run_threads(specs: list[NodeSpec], run: RunState) -> None:
        bus = ThreadBus(run)
        threads = []
        cpu = node_thread_cpu()  # one CPU for every node: a hand-over is a context switch
        for spec in specs:
            endpoint = ThreadEndpoint(bus, spec.node_id, spec.timeout)
            # A deep copy gives each node its own kwargs (classes are kept); each node
            # unpickles its own copy of its data.
            threads.append(
                threading.Thread(
                    target=run_node_thread,
                    args=(copy.deepcopy(spec), endpoint, cpu),
                    name=f"flame-node-{spec.node_id}",
                    daemon=True,
                )
            )
        for thread in threads:
            thread.start()
        run.wait(_STOP_GRACE)
        # reported nodes are returning; after a failure, nodes stuck in their own code are
        # left behind (daemon threads) once the grace is over
        deadline = time.monotonic() + _STOP_GRACE
        for thread in threads:
            if run.first_failure is None:
                thread.join()
            else:
                thread.join(max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ outcome
    def _raise_failure(self, run: RunState, print_failures: bool) -> None:
        failed = run.first_failure
        assert failed is not None
        error = None
        if failed.error_payload is not None:
            try:
                error = pickle.loads(failed.error_payload)
            except Exception:
                error = None
        if isinstance(error, ScriptGuardError):
            raise error from None
        if print_failures:
            label = role_label(failed.role)
            details = failed.traceback or f"{failed.error_type}: {failed.message}\n"
            print(f"Node {failed.node_id!r} ({label}) failed:\n{details}", file=sys.stderr, end="")
            stopped = [i for i in self.node_ids if i != failed.node_id]
            if stopped:
                print(
                    f"Stopped because node {failed.node_id!r} failed: {', '.join(stopped)}",
                    file=sys.stderr,
                )
        if isinstance(error, NodeTimeoutError):
            raise error from None
        note = ""
        if self._data_type == "s3" and self._query is None:
            note = _NO_QUERY
            if print_failures:
                print(note, file=sys.stderr)
        raise NodeFailedError(
            failed.node_id,
            failed.role,
            failed.error_type,
            failed.message,
            failed.traceback,
            error,
            note,
        ) from error

    def _take_result(self, submission: FinalSubmission) -> None:
        try:
            self.result = pickle.loads(submission.payload)
        except Exception as exc:
            raise NodeFailedError(
                AGGREGATOR_ID,
                "aggregator",
                type(exc).__name__,
                f"the tester could not unpickle the final result: {exc}",
            ) from exc
        self.results = list(self.result) if submission.multiple else [self.result]

    def _output(self, submission: FinalSubmission, print_result: bool) -> None:
        multiple = submission.multiple
        filename = self._filename
        say = print if print_result else _silent
        if filename is None:
            if multiple:
                for index, result in enumerate(self.results, start=1):
                    say(f"Final result_{index}: {result}")
            else:
                say(f"Final result: {self.result}")
            return
        count = len(submission.bodies)
        if isinstance(filename, list):
            if len(filename) != count:
                raise ValueError(
                    f"{len(filename)} file names given for {count} results; give one per "
                    "result (tester.result holds the result)."
                )
            paths = filename
        elif multiple:
            root, ext = os.path.splitext(filename)
            paths = [f"{root}_{index}{ext}" for index in range(1, count + 1)]
        else:
            paths = [filename]
        write_files({path: body for path, (_, body) in zip(paths, submission.bodies, strict=True)})
        for index, path in enumerate(paths, start=1):
            say(f"Final result{f'_{index}' if multiple else ''} written to {path}")
        self.result_files = list(paths)
