"""The core object a node sees as ``self.flame`` (the engine's ``FlameCoreSDK``).

:class:`FlameCore` is built from ``test_kwargs`` like the SDK's ``MockFlameCoreSDK`` and
offers the part of the ``FlameCoreSDK`` API that star-pattern analyses call. Differences
from the SDK's mock, all on purpose:

* Every message and the final result is **pickled on send and unpickled on receive**. A
  payload that cannot be pickled fails in the sending node with an error naming the node;
  one that cannot be unpickled fails in the receiving node naming both nodes.
* Waits block without polling; with a tester ``timeout`` a wait that lasts longer raises
  :class:`~flame_offline.errors.NodeTimeoutError`. A per-call ``timeout`` shorter than
  the tester's behaves like production: senders not heard from map to ``None``.
* ``await_messages`` / ``await_intermediate_data`` return one message per sender (the oldest
  queued one), keyed in the order of ``senders``; after the end announcement every awaited
  sender maps to ``None`` (the mock answers ``{aggregator_id: None}``).
* Receivers and senders must be participant ids (``ValueError`` otherwise, as the mock does
  for senders). ``ready_check`` answers ``True`` for participants and ``False`` for any other
  id (nodes of one local run are always reachable).
* ``flame_log`` refuses unknown log types with ``ValueError`` and messages that are neither
  ``str``, ``bytes`` nor an iterable of ``str`` with ``TypeError`` (production refuses both
  too; the mock accepts anything). ``file`` and ``suppress_head`` are accepted and ignored;
  ``halt_submission=True`` holds the text back and prefixes it to the next log.
* ``get_s3_data(keys)`` / ``get_fhir_data(queries)`` return only the named objects of each
  data source (the mock ignores the argument); a name missing in a source is skipped with
  a warning log naming it.
* ``submit_final_result`` renders the result files inside the node, as production's storage
  client does (``'str'`` → UTF-8 text of ``str(result)``, ``'pickle'`` → pickle bytes,
  ``'bytes'`` → the bytes of a bytes-like result; any other result falls back to pickle with
  a warning log, where production would call ``bytes(result)``).
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterable
from typing import Any

from flame_offline.errors import NodeTimeoutError, role_label
from flame_offline.logs import LOG_TYPES, LogRecord, render_log_message
from flame_offline.transport import (
    FINISHED_CATEGORY,
    FinalSubmission,
    ThreadEndpoint,
    WaitExpired,
    default_bus,
)

__all__ = ["DP_SEED_KEY", "ENDPOINT_KEY", "OUTPUT_TYPES", "EngineConfig", "FlameCore"]

#: Factor on the tester's ``timeout`` for an analyzer's wait on the aggregator (see ``_await``).
AGGREGATOR_GRACE = 1.5

#: Private ``test_kwargs`` key: the node's transport endpoint (set by the tester).
ENDPOINT_KEY = "_engine_endpoint"
#: Private ``test_kwargs`` key: seed of the Laplace noise of local DP (``None``: fresh entropy).
DP_SEED_KEY = "_engine_dp_seed"
#: Valid ``output_type`` values of ``submit_final_result``.
OUTPUT_TYPES = ("str", "bytes", "pickle")

_REQUIRED_KWARGS = ("node_id", "aggregator_id", "role", "participants")


class EngineConfig:
    """Node configuration, as the SDK's ``flame.config`` (with a ``finished`` flag).

    Parameters
    ----------
    test_kwargs : dict
        The node's ``test_kwargs``.
    """

    def __init__(self, test_kwargs: dict[str, Any]) -> None:
        self.node_id: str = test_kwargs["node_id"]
        self.aggregator_id: str = test_kwargs["aggregator_id"]
        self.participants: list[dict[str, str]] = list(test_kwargs["participants"])
        self.node_role: str = test_kwargs["role"]
        self.finished: bool = False


def check_output_type(output_type: Any) -> None:
    """Raise ``ValueError`` unless ``output_type`` is a valid output type or a list of them."""
    types = output_type if isinstance(output_type, list) else [output_type]
    if not types or any(t not in OUTPUT_TYPES for t in types):
        raise ValueError(
            f"output_type must be one of {', '.join(map(repr, OUTPUT_TYPES))} or a non-empty "
            f"list of them. Got {output_type!r} instead."
        )


class FlameCore:
    """The engine's ``self.flame`` of one node.

    Parameters
    ----------
    test_kwargs : dict
        ``node_id``, ``aggregator_id``, ``role``, ``participants`` (the *other* participants
        as ``{'id': ..., 'role': ...}``) and ``s3_data`` or ``fhir_data`` are required;
        ``analysis_id`` and ``project_id`` are optional. Private engine keys:
        ``'_engine_endpoint'`` (the transport endpoint; default: a module-level in-memory bus,
        so nodes started from the user's own threads can talk) and ``'_engine_dp_seed'``.

    Attributes
    ----------
    config : EngineConfig
        Ids, role, participants and the ``finished`` flag.
    data : list of dict or None
        The node's data.
    progress : int
        The progress set with :meth:`set_progress`.
    final_results_storage : object
        The submitted final result (aggregator only).
    """

    def __init__(self, test_kwargs: dict[str, Any]) -> None:
        missing = [k for k in _REQUIRED_KWARGS if k not in test_kwargs]
        if missing:
            raise ValueError(
                "test_kwargs must include 'node_id', 'aggregator_id', 'role', and "
                f"'participants' keys (missing: {', '.join(missing)})."
            )
        if "s3_data" not in test_kwargs and "fhir_data" not in test_kwargs:
            raise ValueError(
                "test_kwargs must include either 's3_data' or 'fhir_data' key with "
                "corresponding data."
            )
        self._test_kwargs = dict(test_kwargs)
        self.config = EngineConfig(test_kwargs)
        self.data = test_kwargs.get("s3_data", test_kwargs.get("fhir_data"))
        self.progress = 0
        self.final_results_storage: Any = None
        endpoint = test_kwargs.get(ENDPOINT_KEY)
        self._endpoint = endpoint or ThreadEndpoint(default_bus(), self.config.node_id)
        self._dp_seed = test_kwargs.get(DP_SEED_KEY)
        self._held_log = ""

    # ------------------------------------------------------------------ general
    def get_aggregator_id(self) -> str:
        """Return the aggregator's node id."""
        return self.config.aggregator_id

    def get_participants(self) -> list[dict[str, str]]:
        """Return the other participants as ``{'id': ..., 'role': ...}`` dicts."""
        return self.config.participants

    def get_participant_ids(self) -> list[str]:
        """Return the ids of every other participant, in participant order."""
        return [p["id"] for p in self.config.participants]

    def get_analysis_id(self) -> str:
        """Return the analysis id."""
        return self._test_kwargs.get("analysis_id", "analysis_id")

    def get_project_id(self) -> str:
        """Return the project id."""
        return self._test_kwargs.get("project_id", "project_id")

    def get_id(self) -> str:
        """Return this node's id."""
        return self.config.node_id

    def get_role(self) -> str:
        """Return this node's role: ``'default'`` (analyzer) or ``'aggregator'``."""
        return self.config.node_role

    def analysis_finished(self) -> bool:
        """Announce the end of the analysis to every participant and mark this node finished."""
        ids = self.get_participant_ids()
        if ids:
            self.send_message(ids, FINISHED_CATEGORY, {}, max_attempts=5, attempt_timeout=30)
        self.config.finished = True
        return True

    def ready_check(
        self,
        nodes: list[str] | str = "all",
        attempt_interval: int = 30,
        timeout: int | None = None,
    ) -> dict[str, bool]:
        """Return, per node id, whether it is a reachable participant (``'all'``: every one)."""
        if nodes == "all":
            nodes = self.get_participant_ids()
        ids = set(self.get_participant_ids())
        return {node: node in ids for node in nodes}

    def flame_log(
        self,
        msg: str | bytes | Iterable[str],
        sep: str = " ",
        end: str = "\n",
        file: object = None,
        log_type: str = "normal",
        suppress_head: bool = False,
        halt_submission: bool = False,
    ) -> None:
        """Log a message of one of the :data:`~flame_offline.LOG_TYPES`.

        Raises
        ------
        ValueError
            For an unknown ``log_type``.
        TypeError
            If ``msg`` is not a ``str``, ``bytes`` or an iterable of ``str``.
        """
        if log_type not in LOG_TYPES:
            raise ValueError(
                f"Invalid log type {log_type!r} given to flame_log "
                f"(known log types: {', '.join(LOG_TYPES)})."
            )
        text = self._held_log + render_log_message(msg, sep, end)
        if halt_submission:
            self._held_log = text
            return
        self._held_log = ""
        record = LogRecord(
            self.config.node_id, self.config.node_role, log_type, text.rstrip("\n"), time.time()
        )
        self._endpoint.log(record)

    def get_progress(self) -> int:
        """Return the progress (0..100)."""
        return self.progress

    def set_progress(self, progress: float) -> None:
        """Set the progress; a float is truncated, invalid or decreasing values log a warning."""
        if isinstance(progress, float):
            progress = int(progress)
        if not isinstance(progress, int) or not 0 <= progress <= 100:
            self.flame_log(
                f"Invalid progress: {progress!r} (should be a numeric value between 0 and 100).",
                log_type="warning",
            )
        elif progress < self.progress:
            self.flame_log(
                "Progress value needs to be higher to current progress (i.e. only register "
                "progress, if actual progress has been made).",
                log_type="warning",
            )
        else:
            self.progress = progress

    # ------------------------------------------------------------------ messages
    def send_message(
        self,
        receivers: list[str],
        message_category: str,
        message: Any,
        max_attempts: int = 1,
        timeout: int | None = None,
        attempt_timeout: int = 10,
    ) -> tuple[list[str], list[str]]:
        """Send a (pickled) message to participants; return ``(acknowledged, not acknowledged)``."""
        self._check_ids(receivers, "Receiver")
        payload = self._dumps(message, f"a message of category {message_category!r}")
        self._endpoint.post(receivers, message_category, payload)
        return list(receivers), []

    def await_messages(
        self,
        senders: list[str],
        message_category: str,
        message_id: str | None = None,
        timeout: int | None = None,
    ) -> dict[str, Any]:
        """Wait for one message of ``message_category`` from each sender; sender → message."""
        return self._await(senders, message_category, timeout, f"a {message_category!r} message")

    def send_intermediate_data(
        self,
        receivers: list[str],
        data: Any,
        message_category: str = "intermediate_data",
        max_attempts: int = 1,
        timeout: int | None = None,
        attempt_timeout: int = 10,
        encrypted: bool = False,
    ) -> tuple[list[str], list[str]]:
        """Send (pickled) intermediate data; return ``(acknowledged, not acknowledged)``."""
        self._check_ids(receivers, "Receiver")
        payload = self._dumps(data, "intermediate data")
        self._endpoint.post(receivers, message_category, payload)
        return list(receivers), []

    def await_intermediate_data(
        self,
        senders: list[str],
        message_category: str = "intermediate_data",
        timeout: int | None = None,
    ) -> dict[str, Any]:
        """Wait for intermediate data from each sender; sender → data, in ``senders`` order."""
        return self._await(senders, message_category, timeout, "intermediate data")

    # ------------------------------------------------------------------ results
    def submit_final_result(
        self,
        result: Any,
        output_type: str | list[str] = "str",
        multiple_results: bool = False,
        local_dp: dict[str, float] | None = None,
    ) -> dict[str, str]:
        """Submit the final result (aggregator only).

        Parameters
        ----------
        result : object
            The result; with ``multiple_results=True`` a list/tuple is split into one result
            per element.
        output_type : {'str', 'bytes', 'pickle'} or list of them
            How each result file is written; a list gives one type per element.
        multiple_results : bool
            Split a list/tuple result into several results.
        local_dp : dict, optional
            ``{'epsilon': ..., 'sensitivity': ...}``: add Laplace noise of scale
            ``sensitivity / epsilon`` to a single int/float result (other types: warning log,
            no noise).

        Raises
        ------
        RuntimeError
            If this node is not the aggregator.
        ValueError
            For an invalid ``output_type``, or a list of output types shorter than the
            list of results.
        pickle.PicklingError
            If the result cannot be pickled.
        """
        if self.get_id() != self.get_aggregator_id():
            raise RuntimeError(
                f"Final results may only be submitted by the aggregator "
                f"{self.get_aggregator_id()} (given node with id={self.get_id()})."
            )
        check_output_type(output_type)
        if local_dp is not None:
            result = self._apply_local_dp(result, local_dp)
        payload = self._dumps(result, "a final result")
        bodies, multiple = self._result_bodies(result, output_type, multiple_results)
        self.final_results_storage = result
        self._endpoint.submit(FinalSubmission(payload, bodies, multiple))
        return {"result": "submitted"}

    # ------------------------------------------------------------------ data
    def get_s3_data(self, s3_keys: list[str] | None = None) -> list[dict[str, bytes]] | None:
        """Return the node's s3 data: one dict per source; with keys, only those objects."""
        if "s3_data" not in self._test_kwargs:
            raise ValueError("No S3 data provided in test_kwargs.")
        return self._select(self._test_kwargs["s3_data"], s3_keys, "s3 key")

    def get_fhir_data(self, fhir_queries: list[str] | None = None) -> list[dict] | None:
        """Return the node's FHIR data: one dict per source; with queries, only those bundles."""
        if "fhir_data" not in self._test_kwargs:
            raise ValueError("No FHIR data provided in test_kwargs.")
        return self._select(self._test_kwargs["fhir_data"], fhir_queries, "FHIR query")

    # ------------------------------------------------------------------ internals
    def _describe(self) -> str:
        return f"node {self.config.node_id!r} ({role_label(self.config.node_role)})"

    def _check_ids(self, ids: Any, kind: str) -> None:
        if not isinstance(ids, list):
            raise ValueError(
                f"{kind}s should be provided as a list of participant ids. "
                f"Not {ids!r} of type {type(ids)}."
            )
        known = set(self.get_participant_ids())
        for node_id in ids:
            if node_id not in known:
                raise ValueError(
                    f"{kind} {node_id} is not a valid participant id for this analysis."
                )

    def _dumps(self, obj: Any, what: str) -> bytes:
        try:
            return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise pickle.PicklingError(
                f"{self._describe()} sent {what} that cannot be pickled: "
                f"{type(exc).__name__}: {exc}. Everything a node sends must survive pickle, "
                "as in production."
            ) from exc

    def _loads(self, payload: bytes, sender: str, what: str) -> Any:
        try:
            return pickle.loads(payload)
        except Exception as exc:
            raise pickle.UnpicklingError(
                f"{self._describe()} could not unpickle {what} from node {sender!r}: "
                f"{type(exc).__name__}: {exc}. Classes in messages must be importable on "
                "the receiving node."
            ) from exc

    def _await(
        self, senders: list[str], category: str, timeout: float | None, what: str
    ) -> dict[str, Any]:
        self._check_ids(senders, "Sender")
        engine_timeout = self._endpoint.timeout
        if engine_timeout is not None and list(senders) == [self.config.aggregator_id]:
            # The aggregator knows which hospital is missing; waiting on it, an analyzer allows
            # it AGGREGATOR_GRACE more, so a stuck hospital is named by the aggregator's
            # timeout rather than by another hospital's wait for the aggregator.
            engine_timeout *= AGGREGATOR_GRACE
        limits = [t for t in (timeout, engine_timeout) if t is not None]
        try:
            received = self._endpoint.take(senders, category, min(limits) if limits else None)
        except WaitExpired as expired:
            if engine_timeout is not None and (timeout is None or engine_timeout <= timeout):
                raise NodeTimeoutError(
                    self.config.node_id,
                    self.config.node_role,
                    category,
                    expired.missing,
                    engine_timeout,
                ) from None
            values = {s: self._loads(p, s, what) for s, p in expired.received.items()}
            return {s: values.get(s) for s in dict.fromkeys(senders)}
        if received is None:
            self.config.finished = True
            return dict.fromkeys(senders)
        return {s: self._loads(p, s, what) for s, p in received.items()}

    def _select(self, data: Any, names: list[str] | None, kind: str) -> Any:
        is_sources = isinstance(data, list) and all(isinstance(d, dict) for d in data)
        if names is None or not is_sources:
            return data
        selected = []
        for index, source in enumerate(data, start=1):
            for name in names:
                if name not in source:
                    self.flame_log(
                        f"{kind} {name!r} not found in data source {index}: skipped.",
                        log_type="warning",
                    )
            selected.append({name: source[name] for name in names if name in source})
        return selected

    def _apply_local_dp(self, result: Any, local_dp: dict[str, float]) -> Any:
        if isinstance(result, (int, float)) and not isinstance(result, bool):
            import numpy as np  # only needed for local DP

            scale = local_dp["sensitivity"] / local_dp["epsilon"]
            noise = np.random.default_rng(self._dp_seed).laplace(0.0, scale)
            return float(result) + float(noise)
        self.flame_log(
            "Given result type is not supported for local DP -> DP step will be skipped.",
            log_type="warning",
        )
        return result

    def _result_bodies(
        self, result: Any, output_type: str | list[str], multiple_results: bool
    ) -> tuple[list[tuple[str, bytes]], bool]:
        multiple = multiple_results and isinstance(result, (list, tuple))
        if multiple_results and not multiple:
            self.flame_log(
                f"Given multiple_results=True, but result is neither of type 'list' nor "
                f"'tuple' (found {type(result).__name__} instead) -> multiple_results will be "
                "ignored.",
                log_type="warning",
            )
        items = list(result) if multiple else [result]
        if not isinstance(output_type, list):
            types = [output_type] * len(items)
        elif not multiple:
            self.flame_log(
                "Output_type list provided for a single result submission - using first "
                "element of list as output_type instead.",
                log_type="warning",
            )
            types = output_type[:1]
        elif len(output_type) < len(items):
            raise ValueError(
                f"Output_type list length={len(output_type)} has to be at least as large as "
                f"result list length={len(items)}."
            )
        else:
            if len(output_type) > len(items):
                self.flame_log(
                    f"Output_type list length={len(output_type)} is larger than result list "
                    f"length={len(items)} - using the first {len(items)} output types.",
                    log_type="warning",
                )
            types = output_type[: len(items)]
        return [(t, self._body(item, t)) for item, t in zip(items, types, strict=True)], multiple

    def _body(self, item: Any, output_type: str) -> bytes:
        if output_type == "str":
            return str(item).encode("utf-8")
        if output_type == "bytes":
            if isinstance(item, (bytes, bytearray, memoryview)):
                return bytes(item)
            self.flame_log(
                f"Failed to translate result data of type {type(item).__name__} to "
                "type=bytes: written as pickle instead.",
                log_type="warning",
            )
        return pickle.dumps(item)
