"""The core object a node sees as ``self.flame`` (the engine's ``FlameCoreSDK``).

:class:`FlameCore` is built from ``test_kwargs`` like the SDK's ``MockFlameCoreSDK``, but
behaves like production's ``FlameCoreSDK`` (flamesdk 0.5/0.6) wherever the two differ, so
that a local run fails where a FLAME node would. Every public method has production's
signature (flamesdk 0.5 positional order). In particular:

* **Data.** ``get_s3_data(None)`` returns ``None`` (so ``StarModel`` without a ``query``
  hands the analyzer ``data=None``); ``get_s3_data([])`` (the default) returns every object
  of each data source; a list of keys returns only those keys. A key missing at a data
  source is simply absent from that source's dict, as in production (its data client lists
  the bucket and fetches the listed objects whose key was asked for): no error, no log.
  ``get_fhir_data`` answers ``None`` for ``None`` and ``[]``, as production does; a query
  with no bundle in the test data is skipped with a ``'warn'`` log (production logs one
  when a query fails). The aggregator has no data: its data methods log a ``'warn'`` and
  return ``None``.
* **Logs.** ``flame_log(msg, sep='', end='', log_type='info', append=False,
  halt_submission=False)`` accepts exactly production's log types; any other raises
  ``ValueError`` naming the production spelling. ``halt_submission=True`` holds the text
  back (nothing is submitted); the next call with ``append=True`` prepends it. An
  ``'error'`` log marks the node failed: :class:`~flame_offline.StarModel` then raises
  :class:`~flame_offline.errors.LoggedError` when the node returns (production marks the
  node failed and blocks it for a while; the engine does not wait).
* **Participants.** ``get_participants()`` returns production's ``{'nodeId', 'nodeType'}``
  dicts of the *other* participants; so, as in production, ``get_aggregator_id()`` is
  ``None`` on the aggregator itself.
* **Control messages** (``send_message``) must be ``dict`` bodies that survive JSON, as
  production posts them to its message broker; production's ``'meta'`` field is added to
  the sent dict in place. ``await_messages`` answers, per sender, the list of unread
  :class:`~flame_offline.messages.Message` objects (marked read) or ``None``;
  ``get_messages``, ``delete_messages``, ``clear_messages`` and
  ``send_message_and_wait_for_responses`` work on the node's own message lists.
* **Intermediate data** is pickled into a storage (``save_intermediate_data``): ``'global'``
  data goes to the receivers' storage and ``send_intermediate_data`` sends its storage id in
  a message, as production does; ``'local'`` data (optionally tagged) stays in the node.
  A payload that cannot be pickled fails in the sending node with an error naming it; one
  that cannot be unpickled fails in the receiving node naming both nodes.
* **Waits** block without polling; with a tester ``timeout`` a wait that lasts longer raises
  :class:`~flame_offline.errors.NodeTimeoutError`. A per-call ``timeout`` shorter than the
  tester's behaves like production: senders not heard from map to ``None``. After the end
  announcement, a wait answers ``None`` for every sender (production blocks until the
  platform stops the node).
* **Final results** are rendered inside the node as production's storage client does
  (``'str'``: ``str(result)``; ``'bytes'``: ``bytes(result)``, falling back to pickle with
  ``'warn'`` logs; ``'pickle'``). Local DP needs a finite int/float result (production fails
  the node otherwise) and always writes ``'str'``.
* ``get_data_sources``, ``get_data_client`` and ``fhir_to_csv`` need production's data
  services and raise ``NotImplementedError`` on an analyzer; ``declare_log_types`` exists
  only in the SDK's mock and raises ``NotImplementedError``.

Stricter than production, on purpose: receivers and senders must be participant ids
(``ValueError``), ``output_type`` must be valid (production pickles anything else), and a
list of output types must match the list of results (production pickles every result).
"""

from __future__ import annotations

import math
import numbers
import pickle
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

from flame_offline.errors import NodeTimeoutError, role_label
from flame_offline.ids import UniqueIds
from flame_offline.logs import LogRecord, check_log_type, render_log_message
from flame_offline.messages import Message, created_at, encode_message, outgoing_meta
from flame_offline.transport.mailbox import WaitExpired
from flame_offline.transport.protocol import (
    FINISHED_CATEGORY,
    Delivery,
    Endpoint,
    FinalSubmission,
    Payload,
)
from flame_offline.transport.threads import ThreadEndpoint, default_bus

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
#: Tags production's storage client accepts when saving local data.
_SAVE_TAG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
#: Tags production's storage client accepts when reading local data (its own, looser check).
_GET_TAG = re.compile(r"^[a-z0-9]{1,2}|[a-z0-9][a-z0-9-]{,30}[a-z0-9]+$")
_NO_DATA_SERVICES = (
    "the offline engine has no data services: a node's data is its test data, read with "
    "get_s3_data / get_fhir_data"
)


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
        The node's test data.
    progress : int
        The progress set with :meth:`set_progress`.
    final_results_storage : object
        The submitted final result (aggregator only).
    logged_error : str or None
        The first message logged with ``log_type='error'``: the node is failed.
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
        self.logged_error: str | None = None
        endpoint: Endpoint | None = test_kwargs.get(ENDPOINT_KEY)
        self._endpoint: Endpoint = endpoint or ThreadEndpoint(default_bus(), self.config.node_id)
        self._dp_seed = test_kwargs.get(DP_SEED_KEY)
        self._held_log = ""
        self._outgoing: list[Message] = []
        self._message_number = 0
        self._new_id = UniqueIds()
        self._local_data: dict[str, bytes] = {}
        self._tags: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ general
    def get_aggregator_id(self) -> str | None:
        """Return the aggregator's id among the other participants (``None`` on the aggregator)."""
        for participant in self.get_participants():
            if participant["nodeType"] == "aggregator":
                return participant["nodeId"]
        return None

    def get_participants(self) -> list[dict[str, str]]:
        """Return the other participants as production does: ``{'nodeId', 'nodeType'}`` dicts."""
        return [{"nodeId": p["id"], "nodeType": p["role"]} for p in self.config.participants]

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
        return self._node_finished()

    def ready_check(
        self,
        nodes: list[str] | str = "all",
        attempt_interval: int = 30,
        timeout: int | None = None,
    ) -> dict[str, bool]:
        """Return, per node id, whether it is a reachable participant (``'all'``: every one).

        The nodes of one local run are always reachable; any other id answers ``False``
        (production would keep asking until ``timeout``).
        """
        if nodes == "all":
            nodes = self.get_participant_ids()
        ids = set(self.get_participant_ids())
        return {node: node in ids for node in nodes}

    def flame_log(
        self,
        msg: str | bytes | Iterable[str],
        sep: str = "",
        end: str = "",
        log_type: str = "info",
        append: bool = False,
        halt_submission: bool = False,
    ) -> None:
        """Log a message with one of production's log types.

        Parameters
        ----------
        msg : str, bytes or iterable of str
            The message; bytes are decoded (printable characters only), an iterable is
            joined with ``sep``.
        sep, end : str
            Separator of an iterable ``msg``; text appended to the message.
        log_type : str
            One of :data:`~flame_offline.LOG_TYPES`. ``'error'`` marks the node failed
            (``msg`` is logged as is: production ignores ``sep``, ``end``, ``append`` and
            ``halt_submission`` for it).
        append : bool
            Prepend the text held back by the last ``halt_submission=True`` call.
        halt_submission : bool
            Hold the text back instead of logging it (it replaces any held text).

        Raises
        ------
        ValueError
            For a log type production does not know (the message names its spelling).
        TypeError
            If ``msg`` is not a ``str``, ``bytes`` or an iterable of ``str``.
        """
        check_log_type(log_type)
        if log_type == "error":
            text = render_log_message(msg, "", "")
            if self.logged_error is None:
                self.logged_error = text
            self._log(text, log_type)
            return
        text = render_log_message(msg, sep, end)
        if halt_submission:
            self._held_log = text
            return
        if append:
            text, self._held_log = self._held_log + text, ""
        self._log(text, log_type)

    def declare_log_types(self, new_log_types: dict[str, str]) -> None:
        """Not in production: raises ``NotImplementedError``.

        Only the SDK's local mock has ``declare_log_types`` (as a no-op); production's
        ``FlameCoreSDK`` (flamesdk 0.5/0.6) has no such method, so calling it fails a
        production node.
        """
        raise NotImplementedError(
            "declare_log_types exists only in the FLAME SDK's local mock; production's "
            "FlameCoreSDK (flamesdk 0.5/0.6) has no such method and the call fails the node. "
            "Log with the production log types: debug, info, notice, warn, alert, emerg, "
            "error, crit."
        )

    def get_progress(self) -> int:
        """Return the progress (0..100)."""
        return self.progress

    def set_progress(self, progress: float) -> None:
        """Set the progress; a float is truncated, out-of-range or decreasing values log a warning.

        Raises
        ------
        TypeError
            If ``progress`` is not a real number (production fails comparing it).
        """
        if isinstance(progress, float):
            progress = int(progress)
        if not isinstance(progress, numbers.Real):
            raise TypeError(
                f"set_progress needs an int or float between 0 and 100. Got {progress!r} "
                "instead (production fails comparing it)."
            )
        if not 0 <= progress <= 100:
            self.flame_log(
                f"Invalid progress: {progress} (should be a numeric value between 0 and 100).",
                log_type="warn",
            )
        elif self.progress > progress:
            self.flame_log(
                "Progress value needs to be higher to current progress (i.e. only register "
                "progress, if actual progress has been made).",
                log_type="warn",
            )
        else:
            self.progress = progress

    def fhir_to_csv(
        self,
        fhir_data: dict[str, Any],
        col_key_seq: str,
        value_key_seq: str,
        input_resource: str,
        row_key_seq: str | None = None,
        row_id_filters: list[str] | None = None,
        col_id_filters: list[str] | None = None,
        row_col_name: str = "",
        separator: str = ",",
        output_type: str = "file",
    ) -> None:
        """Not available offline on an analyzer: raises ``NotImplementedError``.

        Production converts the bundle with flamesdk's ``fhir_to_csv``, which pages through
        further bundles with the node's FHIR data client. On the aggregator (no data
        services in production either) it logs a warning and returns ``None``.
        """
        if self._no_data_api("cannot convert FHIR to CSV"):
            return
        raise NotImplementedError(
            "fhir_to_csv needs production's FHIR data client (flamesdk pages through further "
            f"bundles with it); {_NO_DATA_SERVICES}. Convert the bundles in the analysis."
        )

    # ------------------------------------------------------------------ messages
    def send_message(
        self,
        receivers: list[str],
        message_category: str,
        message: dict,
        max_attempts: int = 1,
        timeout: int | None = None,
        attempt_timeout: int = 10,
    ) -> tuple[list[str], list[str]]:
        """Send a control message (a JSON ``dict``); return ``(acknowledged, not acknowledged)``.

        As in production, the message's ``'meta'`` field is added to ``message`` itself.

        Raises
        ------
        TypeError
            If ``message`` is not a ``dict`` or does not survive JSON.
        ValueError
            If ``message`` already has a ``'meta'`` field, or a receiver is not a participant.
        """
        self._check_ids(receivers, "Receiver")
        receivers = list(dict.fromkeys(receivers))
        self._endpoint.post(receivers, [self._message(receivers, message_category, message)])
        return receivers, []

    def await_messages(
        self,
        senders: list[str],
        message_category: str,
        message_id: str | None = None,
        timeout: int | None = None,
    ) -> dict[str, list[Message] | None]:
        """Wait for messages of ``message_category`` from each sender.

        Returns
        -------
        dict
            Sender to the list of its unread messages of the category (now marked read),
            or ``None`` when none arrived within ``timeout`` (or after the end announcement).
        """
        return self._await(senders, message_category, timeout, message_id)

    def get_messages(self, status: str = "unread") -> list[Message]:
        """Return the received messages with ``status`` (``'unread'`` or ``'read'``)."""
        return self._endpoint.mailbox.messages(status)

    def delete_messages(self, message_ids: list[str]) -> int:
        """Delete received and sent messages by id; return how many were deleted."""
        ids = set(message_ids)
        known = {m.meta["id"] for m in self._endpoint.mailbox.messages()}
        known.update(m.meta["id"] for m in self._outgoing)
        for message_id in dict.fromkeys(message_ids):
            if message_id not in known:
                self.flame_log(
                    f"Could not find message with id={message_id} in incoming or outgoing "
                    "messages.",
                    log_type="warn",
                )
        deleted = self._endpoint.mailbox.delete(ids)
        kept = [m for m in self._outgoing if m.meta["id"] not in ids]
        deleted += len(self._outgoing) - len(kept)
        self._outgoing = kept
        return deleted

    def clear_messages(self, status: str = "read", min_age: int | None = None) -> int:
        """Delete the received and sent messages with ``status`` (``'all'``: any status).

        Only messages older than ``min_age`` seconds, if given. Sent messages stay
        ``'unread'``, as in production. (flamesdk 0.5/0.6 removes from the list it iterates,
        so it skips some messages, and matches nothing for ``'all'``; the engine deletes what
        the documentation says.)
        """
        deleted = self._endpoint.mailbox.clear(status, min_age)
        now = time.time()

        def doomed(message: Message) -> bool:
            if status != "all" and message.meta["status"] != status:
                return False
            return min_age is None or now - created_at(message) > min_age

        kept = [m for m in self._outgoing if not doomed(m)]
        deleted += len(self._outgoing) - len(kept)
        self._outgoing = kept
        return deleted

    def send_message_and_wait_for_responses(
        self,
        receivers: list[str],
        message_category: str,
        message: dict,
        max_attempts: int = 1,
        timeout: int | None = None,
        attempt_timeout: int = 10,
    ) -> dict[str, list[Message] | None]:
        """Send a message, then wait up to ``timeout`` s for answers of the same category.

        Raises
        ------
        TypeError
            If ``timeout`` is ``None``: production subtracts the time spent sending from it
            and fails.
        """
        if timeout is None:
            raise TypeError(
                "send_message_and_wait_for_responses needs a timeout in seconds: production "
                "(flamesdk 0.5/0.6) subtracts the time spent sending from it and fails with "
                "a TypeError on None."
            )
        start = time.monotonic()
        self.send_message(
            receivers, message_category, message, max_attempts, timeout, attempt_timeout
        )
        remaining = timeout - int(time.monotonic() - start)
        return self.await_messages(receivers, message_category, timeout=max(remaining, 1))

    # ------------------------------------------------------------------ storage
    def submit_final_result(
        self,
        result: Any,
        output_type: str | list[str] = "str",
        multiple_results: bool = False,
        local_dp: dict[str, float] | None = None,
    ) -> dict[str, str] | list[dict[str, str]]:
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
            ``sensitivity / epsilon`` to each (finite int/float) result; written as ``'str'``.

        Returns
        -------
        dict or list of dict
            ``{'status': 'success'}``, one per result with ``multiple_results``.

        Raises
        ------
        RuntimeError
            If this node is not the aggregator.
        ValueError
            For an invalid ``output_type``, a list of output types that does not match the
            results, or local DP on a result that is not a finite int/float.
        pickle.PicklingError
            If the result cannot be pickled.
        """
        if self.get_role() != "aggregator":
            raise RuntimeError(
                f"Final results may only be submitted by the aggregator "
                f"{self.config.aggregator_id} (given node with id={self.get_id()})."
            )
        check_output_type(output_type)
        multiple = multiple_results and isinstance(result, (list, tuple))
        items = list(result) if multiple else [result]
        if isinstance(output_type, list):
            if not multiple:
                raise ValueError(
                    f"a list of output types ({output_type!r}) needs multiple_results=True "
                    "and a list or tuple result (production would pickle the result)."
                )
            if len(output_type) != len(items):
                raise ValueError(
                    f"{len(output_type)} output types given for {len(items)} results; give "
                    "one per result (production would pickle every result)."
                )
            types = list(output_type)
        else:
            types = [output_type] * len(items)
        if local_dp is not None:
            items, types = self._apply_local_dp(items, types, local_dp)
            result = type(result)(items) if multiple else items[0]
        payload = self._dumps(result, "a final result")
        bodies = [(t, self._body(item, t)) for item, t in zip(items, types, strict=True)]
        self.final_results_storage = result
        self._endpoint.submit(FinalSubmission(payload, bodies, multiple))
        if multiple:
            return [{"status": "success"} for _ in items]
        return {"status": "success"}

    def save_intermediate_data(
        self,
        data: Any,
        location: str,
        remote_node_ids: list[str] | None = None,
        tag: str | None = None,
    ) -> dict[str, dict[str, str]] | dict[str, str]:
        """Save (pickled) intermediate data for other nodes or for this one.

        Parameters
        ----------
        data : object
            What to save (must survive pickle).
        location : {'global', 'local'}
            ``'global'``: stored for each of ``remote_node_ids``, who can read it with
            ``get_intermediate_data('global', id, sender_node_id=<this node>)``;
            ``'local'``: stored in this node, optionally under ``tag``.
        remote_node_ids : list of str, optional
            The receivers (required for ``'global'``).
        tag : str, optional
            Tag of local data (lowercase letters, digits and inner hyphens).

        Returns
        -------
        dict
            ``{'status': 'success', 'url': ..., 'id': ...}``, or one such dict per remote
            node id when ``remote_node_ids`` are given.
        """
        if location not in ("global", "local"):
            raise ValueError(f"location must be 'global' or 'local'. Got {location!r} instead.")
        if location == "global" and not remote_node_ids:
            raise ValueError(
                "remote_node_ids must be provided when saving global intermediate data"
            )
        if remote_node_ids:
            self._check_ids(remote_node_ids, "Receiver")
            receivers = list(dict.fromkeys(remote_node_ids))
            if location == "local":  # production stores one untagged copy per remote node id
                payload = self._dumps(data, "intermediate data")
                return {r: self._store_local(payload, None) for r in receivers}
            storage_id, delivery = self._global_data(data)
            self._endpoint.post(receivers, [delivery])
            saved = {"status": "success", "url": f"/intermediate/{storage_id}", "id": storage_id}
            return {r: dict(saved) for r in receivers}
        payload = self._dumps(data, "intermediate data")
        if tag is not None and not (isinstance(tag, str) and _SAVE_TAG.match(tag)):
            raise ValueError(
                f"Invalid tag format: {tag}. Tag must consist only of lowercase letters, "
                "numbers, and hyphens"
            )
        return self._store_local(payload, tag)

    def get_intermediate_data(
        self,
        location: str,
        id: str | None = None,
        tag: str | None = None,
        tag_option: str = "all",
        sender_node_id: str | None = None,
    ) -> Any:
        """Read (unpickled) intermediate data.

        Parameters
        ----------
        location : {'global', 'local'}
            ``'global'``: data another node saved for this one; ``'local'``: this node's.
        id : str, optional
            The storage id.
        tag : str, optional
            Read the local data saved under ``tag`` instead (a list; production reads tags
            from local storage also when ``location='global'``, with a warning).
        tag_option : {'all', 'last', 'first'}
            Which of the tagged data to return.
        sender_node_id : str, optional
            The node that saved global data (required for ``'global'``).
        """
        if location not in ("global", "local"):
            raise ValueError(f"location must be 'global' or 'local'. Got {location!r} instead.")
        if location == "global" and tag is not None:
            self.flame_log(
                "Tag can only be used with local type (will be ignored)", log_type="warn"
            )
        if location == "global" and id is None:
            raise ValueError("Global intermediate data retrieval requires storage id specification")
        if location == "global" and sender_node_id is None:
            raise ValueError(
                "Global intermediate data retrieval requires sender_node_id specification"
            )
        if location == "local" and id is None and tag is None:
            raise ValueError("For local data a tag or storage id has to be specified")
        if tag is not None:
            if location == "local" and not (isinstance(tag, str) and _GET_TAG.match(tag)):
                raise ValueError("Tag must consist only of lowercase letters, numbers, and hyphens")
            ids = self._tags.get(tag, [])
            if tag_option == "last":
                ids = ids[-1:]
            elif tag_option == "first":
                ids = ids[:1]
            return [self._loads(self._local_data[i], self.get_id(), "local data") for i in ids]
        if location == "local":
            payload = self._local_data.get(id)
            if payload is None:
                raise ValueError(
                    f"{self._describe()} has no local intermediate data with id {id!r}."
                )
            return self._loads(payload, self.get_id(), "local data")
        payload = self._endpoint.mailbox.data(id)
        if payload is None:
            raise ValueError(
                f"{self._describe()} has received no intermediate data with id {id!r} from node "
                f"{sender_node_id!r} (production's storage answers 'not found' and the node fails)."
            )
        return self._loads(payload, sender_node_id, "intermediate data")

    def send_intermediate_data(
        self,
        receivers: list[str],
        data: Any,
        message_category: str = "intermediate_data",
        max_attempts: int = 1,
        timeout: int | None = None,
        attempt_timeout: int = 10,
    ) -> tuple[list[str], list[str]]:
        """Save ``data`` for the receivers and send them its storage id, as production does.

        Returns
        -------
        tuple of (list of str, list of str)
            The receivers that acknowledged the message, and those that did not.
        """
        self._check_ids(receivers, "Receiver")
        receivers = list(dict.fromkeys(receivers))
        storage_id, stored = self._global_data(data)
        message = {"result_id": dict.fromkeys(receivers, storage_id)}
        # one post: the data is stored before the message naming it arrives
        self._endpoint.post(
            receivers, [stored, self._message(receivers, message_category, message)]
        )
        return receivers, []

    def await_intermediate_data(
        self,
        senders: list[str],
        message_category: str = "intermediate_data",
        timeout: int | None = None,
    ) -> dict[str, Any]:
        """Wait for intermediate data from each sender; sender → data, in ``senders`` order.

        Each sender's newest unread message of the category names the data (as in
        production); a sender not heard from within ``timeout`` maps to ``None``.
        """
        messages = self._await(senders, message_category, timeout)
        received: dict[str, Any] = {}
        for sender, listed in messages.items():
            received[sender] = None if not listed else self._fetch(listed[-1], sender)
        return received

    def get_local_tags(self, filter: str | None = None) -> list[str]:
        """Return the tags of this node's local data (those containing ``filter``, if given)."""
        return [tag for tag in self._tags if filter is None or filter in tag]

    # ------------------------------------------------------------------ data
    def get_data_sources(self) -> list[dict[str, Any]] | None:
        """Not available offline on an analyzer: raises ``NotImplementedError``.

        Production asks its hub adapter for the project's data stores. On the aggregator
        it logs a warning and returns ``None``, as production does.
        """
        if self._no_data_api("cannot retrieve data sources"):
            return None
        raise NotImplementedError(
            "get_data_sources asks production's hub adapter for the project's data stores; "
            f"{_NO_DATA_SERVICES}."
        )

    def get_data_client(self, data_id: str) -> Any:
        """Not available offline on an analyzer: raises ``NotImplementedError``.

        Production returns an ``httpx.AsyncClient`` for the data store's route. On the
        aggregator it logs a warning and returns ``None``, as production does.
        """
        if self._no_data_api("cannot retrieve data client"):
            return None
        raise NotImplementedError(
            "get_data_client returns an httpx client for a production data store; "
            f"{_NO_DATA_SERVICES}."
        )

    def get_fhir_data(self, fhir_queries: Sequence[str] | None = ()) -> list[dict] | None:
        """Return the node's FHIR bundles: one dict per data source, query → bundle.

        ``None`` or no queries answer ``None``, as production does. A query without a bundle
        in a data source is skipped with a ``'warn'`` log.
        """
        if self._no_data_api("cannot retrieve FHIR data"):
            return None
        if "fhir_data" not in self._test_kwargs:
            raise ValueError("No FHIR data provided in test_kwargs.")
        if fhir_queries is None or len(fhir_queries) == 0:
            return None
        queries = _names(fhir_queries, "fhir_queries")
        data = self._test_kwargs["fhir_data"]
        if not _is_sources(data):
            return data
        selected = []
        for index, source in enumerate(data, start=1):
            bundles = {}
            for query in queries:
                if query in source:
                    bundles[query] = source[query]
                else:
                    self.flame_log(
                        f"Failed to retrieve fhir data for query {query} from data source "
                        f"{index}: the node's test data holds no bundle for it.",
                        log_type="warn",
                    )
            selected.append(bundles)
        return selected

    def get_s3_data(self, s3_keys: Sequence[str] | None = ()) -> list[dict[str, bytes]] | None:
        """Return the node's s3 objects: one dict per data source, key → ``bytes``.

        ``None`` answers ``None``; no keys (the default, production's ``[]``) answer every
        object; a list of keys answers those objects, in each source's own order. A key a
        source lacks is absent from its dict.
        """
        if self._no_data_api("cannot retrieve S3 data"):
            return None
        if "s3_data" not in self._test_kwargs:
            raise ValueError("No S3 data provided in test_kwargs.")
        if s3_keys is None:
            return None
        keys = set(_names(s3_keys, "s3_keys"))
        data = self._test_kwargs["s3_data"]
        if not _is_sources(data):
            return data
        return [{k: v for k, v in source.items() if not keys or k in keys} for source in data]

    # ------------------------------------------------------------------ internals
    def _describe(self) -> str:
        return f"node {self.config.node_id!r} ({role_label(self.config.node_role)})"

    def _log(self, text: str, log_type: str) -> None:
        record = LogRecord(self.config.node_id, self.config.node_role, log_type, text, time.time())
        self._endpoint.log(record)

    def _node_finished(self) -> bool:
        self.progress = 100
        self.config.finished = True
        return True

    def _no_data_api(self, what: str) -> bool:
        """Production's aggregator has no data services: log as it does and answer True."""
        if self.get_role() != "aggregator":
            return False
        self.flame_log(f"Data API is not available, {what}", log_type="warn")
        return True

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

    def _dumps(self, obj: Any, what: str, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
        try:
            return pickle.dumps(obj, protocol=protocol)
        except Exception as exc:
            raise pickle.PicklingError(
                f"{self._describe()} sent {what} that cannot be pickled: "
                f"{type(exc).__name__}: {exc}. Everything a node sends must survive pickle, "
                "as in production."
            ) from exc

    def _loads(self, payload: bytes, sender: str | None, what: str) -> Any:
        try:
            return pickle.loads(payload)
        except Exception as exc:
            raise pickle.UnpicklingError(
                f"{self._describe()} could not unpickle {what} from node {sender!r}: "
                f"{type(exc).__name__}: {exc}. Classes in messages must be importable on "
                "the receiving node."
            ) from exc

    def _message(self, receivers: list[str], category: str, message: Any) -> Delivery:
        """Build the delivery of a control message (JSON, with production's ``'meta'`` added)."""
        if not isinstance(message, dict):
            raise TypeError(
                f"{self._describe()} sent a message of category {category!r} that is "
                f"a {type(message).__name__}, not a dict: production's message broker takes "
                "JSON objects. Send other objects with send_intermediate_data."
            )
        if "meta" in message:
            raise ValueError(
                "Cannot use field 'meta' in message body. This field is reserved for meta "
                "data used by the message broker (production adds it to the sent dict: send "
                "a fresh dict each time)."
            )
        message["meta"] = outgoing_meta(
            self.config.node_id, category, self._message_number, self._new_id()
        )
        self._message_number += 1
        try:
            payload = encode_message(message)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{self._describe()} sent a message of category {category!r} that is "
                f"not JSON ({type(exc).__name__}: {exc}): production posts control messages "
                "to its message broker as JSON. Send other objects with send_intermediate_data."
            ) from exc
        self._outgoing.append(Message(message, receivers))
        return Delivery(Payload.MESSAGE, self.get_id(), category, payload)

    def _global_data(self, data: Any) -> tuple[str, Delivery]:
        """Return a new storage id and the delivery of ``data`` (pickled) to store under it."""
        payload = self._dumps(data, "intermediate data")
        storage_id = self._new_id()
        return storage_id, Delivery(Payload.DATA, self.get_id(), storage_id, payload)

    def _store_local(self, payload: bytes, tag: str | None) -> dict[str, str]:
        storage_id = self._new_id()
        self._local_data[storage_id] = payload
        if tag is not None:
            self._tags.setdefault(tag, []).append(storage_id)
        return {"status": "success", "url": f"/local/{storage_id}", "id": storage_id}

    def _fetch(self, message: Message, sender: str) -> Any:
        result_id = message.body.get("result_id")
        if isinstance(result_id, dict):
            result_id = result_id.get(self.get_id())
        if not isinstance(result_id, str):
            raise ValueError(
                f"{self._describe()} got a {message.meta['category']!r} message from node "
                f"{sender!r} that names no intermediate data for it (no 'result_id'): send "
                "intermediate data with send_intermediate_data."
            )
        return self.get_intermediate_data("global", result_id, sender_node_id=sender)

    def _await(
        self,
        senders: list[str],
        category: str,
        timeout: float | None,
        message_id: str | None = None,
    ) -> dict[str, list[Message] | None]:
        self._check_ids(senders, "Sender")
        engine_timeout = self._endpoint.timeout
        if engine_timeout is not None and list(senders) == [self.config.aggregator_id]:
            # The aggregator knows which hospital is missing; waiting on it, an analyzer allows
            # it AGGREGATOR_GRACE more, so a stuck hospital is named by the aggregator's
            # timeout rather than by another hospital's wait for the aggregator.
            engine_timeout *= AGGREGATOR_GRACE
        limits = [t for t in (timeout, engine_timeout) if t is not None]
        try:
            received = self._endpoint.mailbox.take(
                senders, category, min(limits) if limits else None, message_id
            )
        except WaitExpired as expired:
            if engine_timeout is not None and (timeout is None or engine_timeout <= timeout):
                raise NodeTimeoutError(
                    self.config.node_id,
                    self.config.node_role,
                    category,
                    expired.missing,
                    engine_timeout,
                ) from None
            return {s: expired.received.get(s) for s in dict.fromkeys(senders)}
        if received is None:
            self._node_finished()
            return dict.fromkeys(senders)
        return dict(received)

    def _apply_local_dp(
        self, items: list[Any], types: list[str], local_dp: dict[str, float]
    ) -> tuple[list[Any], list[str]]:
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise ValueError(
                    "Local differential privacy can only be applied on numeric values: the "
                    f"final result is a {type(item).__name__}, and production's storage "
                    "client marks the node failed. Submit a single int or float, or run "
                    "without epsilon and sensitivity."
                )
            if not math.isfinite(item):
                raise ValueError(
                    f"Local differential privacy needs a finite result. Got {item!r} instead "
                    "(production marks the node failed)."
                )
        for output_type in dict.fromkeys(types):
            if output_type != "str":
                self.flame_log(
                    "Result submission with local differential privacy requested but output "
                    f"type is set to `{output_type}`.`str` is enforced but this may change in "
                    "a future version.",
                    log_type="warn",
                )
        import numpy as np  # only needed for local DP

        rng = np.random.default_rng(self._dp_seed)
        scale = local_dp["sensitivity"] / local_dp["epsilon"]
        noisy = [float(item) + float(rng.laplace(0.0, scale)) for item in items]
        return noisy, ["str"] * len(items)

    def _body(self, item: Any, output_type: str) -> bytes:
        """Render the result file's content as production's storage client does."""
        # production pickles result files with pickle's default protocol
        if output_type == "pickle":
            return self._dumps(item, "a final result", pickle.DEFAULT_PROTOCOL)
        try:
            if output_type == "str":
                return str(item).encode("utf-8")
            return bytes(item)
        except (TypeError, ValueError, UnicodeEncodeError) as exc:
            self.flame_log(
                f"Failed to translate result data to type={output_type}: {exc!r}", log_type="warn"
            )
            self.flame_log("Attempting 'pickle' instead...", log_type="warn")
            return self._dumps(item, "a final result", pickle.DEFAULT_PROTOCOL)


def _is_sources(data: Any) -> bool:
    return isinstance(data, list) and all(isinstance(d, dict) for d in data)


def _names(names: Any, argument: str) -> list[str]:
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise TypeError(
            f"{argument} must be a list of names. Got {names!r} instead (StarModel wraps a "
            "str query in a list; production treats a bare str as a substring filter)."
        )
    return list(names)
