"""Running the nodes of a local run: one node in a thread, or every node in its own process.

How node processes start (``isolation='process'``):

* **fork** from the tester's process when that is safe: on Linux and other POSIX systems
  except macOS, while the tester's process runs a single Python thread (a plain script, the
  command-line tool, a test). Nothing is imported again and nothing is pickled to
  start a node: each node process begins as a copy of the tester's process (its data split
  still travels as a pickle, as production's data arrives as bytes), so node classes may be
  defined anywhere (a function, a script without a ``__main__`` guard). Nothing is shared
  afterwards: each node has its own memory, and nodes talk only through pipes.
* **spawn** otherwise (other Python threads running, e.g. in Jupyter; macOS; Windows): a
  fresh interpreter per node, which imports the node classes' modules and unpickles the
  node's spec. Node classes must then be importable by module name or from their file (a
  module the tester loaded by path, e.g. a pytest helper under ``--import-mode=importlib``,
  is loaded from its file); a script that starts the tester without an
  ``if __name__ == "__main__":`` guard gets one :class:`~flame_offline.errors.ScriptGuardError`.

Node threads (``isolation='thread'``) all run on one CPU of those the process may use, where
the platform lets a thread choose (Linux). The interpreter's lock lets one of them run Python
at a time anyway, and a round is a chain of hand-overs: the aggregator's broadcast wakes each
hospital, the last hospital's update wakes the aggregator. On one CPU a hand-over is a context
switch; across CPUs it is a wake-up of a sleeping CPU, which on an idle machine takes longer
than the round's Python (``benchmarks/engine_overhead.py``: about half the engine's time per
round). Native code that releases the lock (BLAS, pandas' parser) keeps its own threads, which
stay on every CPU; an analysis whose nodes should compute in parallel runs with
``isolation='process'``.

A node process ignores Ctrl-C (the tester stops the nodes) and ends quietly when its tester
goes away. Its native thread pools (BLAS, OpenMP; through ``threadpoolctl``, which comes with
scikit-learn, when installed) are limited to its share of the machine's cores, as separate
FLAME nodes each have CPUs of their own: N node processes each running all cores' worth of
BLAS threads would slow each other down. (For large inputs, where BLAS splits sums across
threads, results may then differ from thread isolation in the last bits.)
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import traceback
import warnings
from dataclasses import dataclass, field
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from typing import Any

from flame_offline.core import ENDPOINT_KEY
from flame_offline.errors import NodeStopped
from flame_offline.transport.processes import REIMPORTED_MAIN_EXIT, ChildEndpoint, ProcessRouter
from flame_offline.transport.protocol import Endpoint, NodeReport
from flame_offline.transport.run import RunState

__all__ = [
    "NodeSpec",
    "class_modules",
    "cpu_share",
    "fork_child_main",
    "leave_reimported_main",
    "node_thread_cpu",
    "reimported_main",
    "run_node",
    "run_node_thread",
    "run_processes",
    "spawn_child_main",
    "start_method",
]


@dataclass
class NodeSpec:
    """Everything one node needs to run ``StarModel(test_mode=True)``.

    Attributes
    ----------
    node_id, role : str
        The node.
    model_cls : type
        ``StarModel`` or ``StarLocalDPModel``.
    model_kwargs : dict
        Keyword arguments of the model except ``test_mode`` and ``test_kwargs``.
    test_kwargs : dict
        The node's ``test_kwargs`` without its data and the endpoint.
    data_key : {'s3_data', 'fhir_data'}
        Where the data goes in ``test_kwargs``.
    data_payload : bytes or None
        The node's data split, pickled: each node unpickles its own copy.
    timeout : float or None
        Longest wait for messages.
    shared_s3 : list of dict or None
        Instead of ``data_payload``, under thread isolation: s3 data whose every object is
        ``bytes``. The node gets new containers around the same immutable bytes, so a
        hospital's files are held once, as on a FLAME node, not once more per copy.
    """

    node_id: str
    role: str
    model_cls: type
    model_kwargs: dict[str, Any]
    test_kwargs: dict[str, Any] = field(repr=False)
    data_key: str
    data_payload: bytes | None = field(repr=False)
    timeout: float | None
    shared_s3: list[dict[str, bytes]] | None = field(default=None, repr=False)


def _error_payload(exc: BaseException) -> bytes | None:
    try:
        return pickle.dumps(exc)
    except Exception:
        return None


def _failed(node_id: str, role: str, exc: BaseException, message: str | None = None) -> NodeReport:
    return NodeReport(
        node_id,
        role,
        "failed",
        type(exc).__name__,
        str(exc) if message is None else message,
        traceback.format_exc(),
        _error_payload(exc),
    )


def run_node(spec: NodeSpec, endpoint: Endpoint) -> None:
    """Run the node's model with ``endpoint`` as transport, then report how it ended.

    Never raises: a failure is reported (with its traceback) to the tester, a stop caused by
    another node's failure is reported as ``'stopped'``.
    """
    try:
        if spec.shared_s3 is not None:
            data = [dict(source) for source in spec.shared_s3]
        else:
            data = pickle.loads(spec.data_payload)
        test_kwargs = {**spec.test_kwargs, spec.data_key: data, ENDPOINT_KEY: endpoint}
        spec.model_cls(**spec.model_kwargs, test_mode=True, test_kwargs=test_kwargs)
    except NodeStopped as exc:
        report = NodeReport(spec.node_id, spec.role, "stopped", message=str(exc))
    except BaseException as exc:  # a node ends by reporting, whatever it raised
        report = _failed(spec.node_id, spec.role, exc)
    else:
        report = NodeReport(spec.node_id, spec.role, "done")
    endpoint.report(report)


def class_modules(*classes: type) -> list[tuple[str, str | None]]:
    """List ``(module name, module file)`` of each class and of its bases, for a spawned node.

    ``__main__`` is left out: a spawned process imports the main script itself.
    """
    modules: dict[str, str | None] = {}
    for cls in classes:
        for klass in getattr(cls, "__mro__", ()):
            module = sys.modules.get(klass.__module__)
            if module is not None and klass.__module__ not in ("builtins", "__main__"):
                modules.setdefault(klass.__module__, getattr(module, "__file__", None))
    return list(modules.items())


def _import_modules(modules: list[tuple[str, str | None]]) -> None:
    for name, path in modules:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except ImportError:
            if path is None:
                raise
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)


def node_thread_cpu() -> int | None:
    """Return the CPU for a run's node threads, or ``None`` to leave them where they are.

    ``None`` where a thread cannot choose its CPUs (not Linux) or the process may use one CPU
    only. Otherwise one of the process's CPUs, picked by process id, so that runs in parallel
    processes (a test suite's workers) spread over the machine.
    """
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every platform
        return None
    if len(cpus) < 2:
        return None
    return cpus[os.getpid() % len(cpus)]


def run_node_thread(spec: NodeSpec, endpoint: Endpoint, cpu: int | None) -> None:
    """Run a node in the calling thread (see :func:`run_node`), first moved to ``cpu``."""
    if cpu is not None:
        # on Linux, pid 0 is the calling thread (the other threads keep their CPUs); a CPU
        # taken away meanwhile leaves the node where it is
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})
    run_node(spec, endpoint)


def _node_process_setup() -> None:
    # Ctrl-C reaches every process of the terminal's process group: the tester handles it
    # (and stops the nodes); a node printing a KeyboardInterrupt traceback helps nobody.
    # The node started with SIGINT blocked (_sigint_blocked): ignored first, then unblocked,
    # a Ctrl-C that came meanwhile is dropped.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextlib.contextmanager
def _sigint_blocked(method: str):
    """Block SIGINT in this thread while a node process starts (``method``: fork or spawn).

    The node inherits the block (through fork, and exec for a spawned interpreter) and lifts
    it once it ignores SIGINT (:func:`_node_process_setup`), so a Ctrl-C while it imports
    cannot print its traceback. The tester gets a Ctrl-C of that moment when the block ends.
    """
    if not hasattr(signal, "pthread_sigmask"):  # not on every platform
        yield
        return
    if method == "spawn":
        # The first spawned process launches multiprocessing's resource tracker, which
        # unblocks SIGINT in this thread on its way out: launched first, it leaves the block
        # alone.
        resource_tracker.ensure_running()
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def cpu_share(nodes: int) -> int:
    """Return the cores one of ``nodes`` node processes may use (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every platform
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, nodes))


def _limit_native_threads(share: int) -> None:
    """Limit the native thread pools already loaded (BLAS, OpenMP) to ``share`` threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # no threadpoolctl, no limit
        return
    threadpool_limits(limits=share)


def fork_child_main(
    conn: Connection, spec: NodeSpec, inherited: list[Connection], share: int
) -> None:
    """Entry point of a node process forked from the tester.

    ``inherited`` are the tester's pipe ends this process got with the fork (its own pipe's
    included); they are closed first, so that the node sees its pipe close when the tester
    goes away.
    """
    for other in inherited:
        other.close()
    _node_process_setup()
    _limit_native_threads(share)
    run_node(spec, ChildEndpoint(conn, spec.node_id, spec.timeout))


def spawn_child_main(
    conn: Connection,
    node_id: str,
    role: str,
    timeout: float | None,
    modules: list[tuple[str, str | None]],
    spec_bytes: bytes,
    share: int,
) -> None:
    """Entry point of a spawned node process: import the class modules, unpickle, run."""
    _node_process_setup()
    endpoint = ChildEndpoint(conn, node_id, timeout)
    try:
        _import_modules(modules)
        spec = pickle.loads(spec_bytes)
        _limit_native_threads(share)
    except BaseException as exc:  # report instead of dying silently
        message = f"the node's process could not load the analysis classes: {exc}"
        endpoint.report(_failed(node_id, role, exc, message))
    else:
        run_node(spec, endpoint)


def start_method() -> str:
    """How node processes start: ``'fork'`` where safe (see the module notes), else ``'spawn'``."""
    if (
        "fork" in multiprocessing.get_all_start_methods()
        and sys.platform != "darwin"
        and threading.active_count() == 1
    ):
        return "fork"
    return "spawn"


def _main_path() -> str | None:
    return getattr(sys.modules.get("__main__"), "__file__", None)


def run_processes(
    specs: list[NodeSpec], run: RunState, classes: tuple[type, ...], grace: float
) -> None:
    """Run every node in its own process and route their frames until the run ends.

    Raises
    ------
    TypeError
        If node processes are spawned and a spec cannot be pickled.
    """
    method = start_method()
    payloads: list[bytes] = []
    if method == "spawn":
        try:
            payloads = [pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL) for s in specs]
        except Exception as exc:
            raise TypeError(
                "isolation='process' starts fresh Python processes here (this process runs "
                "other threads, or fork is unsafe on this platform), so the node classes and "
                f"their kwargs must be picklable ({type(exc).__name__}: {exc}). Define the "
                "node classes at module level, or use isolation='thread'."
            ) from exc
    modules = class_modules(*classes)
    share = cpu_share(len(specs))
    context = multiprocessing.get_context(method)
    conns: dict[str, Connection] = {}
    processes: dict[str, Any] = {}
    router = ProcessRouter(conns, processes, run, patience=grace, main_path=_main_path())
    try:
        for index, spec in enumerate(specs):
            parent_end, child_end = context.Pipe(duplex=True)
            if method == "fork":
                target: Any = fork_child_main
                args: tuple = (child_end, spec, [*conns.values(), parent_end], share)
            else:
                target = spawn_child_main
                args = (child_end, spec.node_id, spec.role, spec.timeout, modules)
                args += (payloads[index], share)
            # Not daemonic: a node may start processes of its own, as in production.
            process = context.Process(target=target, args=args, name=f"flame-node-{spec.node_id}")
            with warnings.catch_warnings(), _sigint_blocked(method):
                # Python 3.12+ warns about fork() when native libraries run threads (e.g.
                # OpenBLAS); there is a single Python thread, and those libraries are
                # fork-aware.
                warnings.filterwarnings("ignore", r".*fork\(\)", DeprecationWarning)
                process.start()
            child_end.close()
            conns[spec.node_id] = parent_end
            processes[spec.node_id] = process
        router.route(grace)
    except BaseException:
        router.close(patience=0.0)
        raise
    router.close()


def reimported_main() -> bool:
    """Whether this process is a spawned node importing the tester's main script again."""
    # multiprocessing sets this flag while a new process imports the parent's main module;
    # it is what multiprocessing's own "bootstrapping phase" check reads.
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def leave_reimported_main() -> None:
    """End this node process at once: the main script started a tester while imported.

    The tester sees the exit code and raises one :class:`ScriptGuardError`.
    """
    os._exit(REIMPORTED_MAIN_EXIT)
