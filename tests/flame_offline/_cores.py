"""Helpers building engine cores wired to a private in-memory bus (no tester)."""

from __future__ import annotations

from flame_offline.core import ENDPOINT_KEY, FlameCore
from flame_offline.logs import LogRecord
from flame_offline.transport import RunState, ThreadBus, ThreadEndpoint

IDS = ("node-1", "node-2", "aggregator")


def role_of(node_id: str) -> str:
    """FLAME role of a test node id."""
    return "aggregator" if node_id == "aggregator" else "default"


def node_kwargs(node_id: str, ids=IDS, **extra) -> dict:
    """``test_kwargs`` of ``node_id`` among ``ids`` (s3 data ``None`` unless FHIR data given)."""
    kwargs = {
        "node_id": node_id,
        "aggregator_id": "aggregator",
        "role": role_of(node_id),
        "participants": [{"id": i, "role": role_of(i)} for i in ids if i != node_id],
    }
    if "fhir_data" not in extra:
        kwargs["s3_data"] = None
    kwargs.update(extra)
    return kwargs


def make_cores(
    ids=IDS, timeout: float | None = 5.0, **extra
) -> tuple[dict[str, FlameCore], list[LogRecord]]:
    """One core per id on a fresh bus; returns the cores and the list their logs go to."""
    records: list[LogRecord] = []
    bus = ThreadBus(RunState({i: role_of(i) for i in ids}, records.append))
    cores = {
        i: FlameCore(
            node_kwargs(i, ids, **{ENDPOINT_KEY: ThreadEndpoint(bus, i, timeout)}, **extra)
        )
        for i in ids
    }
    return cores, records
