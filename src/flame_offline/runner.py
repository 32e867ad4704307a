"""Running one node for the tester, in a thread or in a spawned child process.

Process isolation and importing the node classes in the child: the node's spec (classes,
keyword arguments, data) is pickled in the tester, and classes pickle *by reference*
(module name + qualified name). Before unpickling, the child imports every module that
defines the analyzer/aggregator classes (and their bases): by name first (a spawned child
gets the tester's ``sys.path``, so anything importable in the tester is importable there),
and, when that fails, from the module's file (recorded by the tester). This covers modules
the tester loaded by path, e.g. pytest test helpers under ``--import-mode=importlib``.
Classes defined inside functions (or interactively in a notebook) cannot be imported by a
child: use ``isolation='thread'`` for those.
"""

from __future__ import annotations

import importlib
import importlib.util
import pickle
import sys
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from flame_offline.core import ENDPOINT_KEY
from flame_offline.errors import NodeStopped
from flame_offline.transport import ChildEndpoint, NodeReport

__all__ = ["NodeSpec", "child_main", "class_modules", "run_node"]


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
        The node's ``test_kwargs`` without the endpoint.
    timeout : float or None
        Longest wait for messages.
    """

    node_id: str
    role: str
    model_cls: type
    model_kwargs: dict[str, Any]
    test_kwargs: dict[str, Any] = field(repr=False)
    timeout: float | None


def _error_payload(exc: BaseException) -> bytes | None:
    try:
        return pickle.dumps(exc)
    except Exception:
        return None


def run_node(spec: NodeSpec, endpoint: Any) -> None:
    """Run the node's model with ``endpoint`` as transport, then report how it ended.

    Never raises: a failure is reported (with its traceback) to the tester, a stop caused by
    another node's failure is reported as ``'stopped'``.
    """
    test_kwargs = {**spec.test_kwargs, ENDPOINT_KEY: endpoint}
    try:
        spec.model_cls(**spec.model_kwargs, test_mode=True, test_kwargs=test_kwargs)
    except NodeStopped as exc:
        report = NodeReport(spec.node_id, spec.role, "stopped", message=str(exc))
    except BaseException as exc:  # a node ends by reporting, whatever it raised
        report = NodeReport(
            spec.node_id,
            spec.role,
            "failed",
            type(exc).__name__,
            str(exc),
            traceback.format_exc(),
            _error_payload(exc),
        )
    else:
        report = NodeReport(spec.node_id, spec.role, "done")
    endpoint.report(report)


def class_modules(*classes: type) -> list[tuple[str, str | None]]:
    """``(module name, module file)`` of each class and of its bases, for :func:`child_main`."""
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


def child_main(
    conn: Connection,
    node_id: str,
    role: str,
    timeout: float | None,
    modules: list[tuple[str, str | None]],
    spec_bytes: bytes,
) -> None:
    """Entry point of a node's child process (``multiprocessing`` spawn context)."""
    endpoint = ChildEndpoint(conn, node_id, timeout)
    try:
        _import_modules(modules)
        spec = pickle.loads(spec_bytes)
    except BaseException as exc:  # report instead of dying silently
        endpoint.report(
            NodeReport(
                node_id,
                role,
                "failed",
                type(exc).__name__,
                f"the node's process could not load the analysis classes: {exc}",
                traceback.format_exc(),
                _error_payload(exc),
            )
        )
    else:
        run_node(spec, endpoint)
