"""Wire one emulated FLAME analysis together, run it, and write what it produced."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from flame_offline.emulator import netns
from flame_offline.emulator.broker import Fault, MessageBroker
from flame_offline.emulator.gateway import Gateway
from flame_offline.emulator.image import ImageRoot
from flame_offline.emulator.logs import LogStream
from flame_offline.emulator.orchestrator import Orchestrator, Pod
from flame_offline.emulator.report import summarize
from flame_offline.emulator.s3 import DataStores
from flame_offline.emulator.spec import AnalysisSpec
from flame_offline.emulator.storage import ResultStorage
from flame_offline.emulator.timeline import Timeline

__all__ = ["RunConfig", "RunResult", "UsageError", "run", "stage_upload"]

# The final result, byte for byte as the aggregator's SDK uploaded it; more than one (with
# ``multiple_results``) are numbered from the second on.
FINAL_RESULT = "final_result"
SUMMARY = "summary.json"
LOGS = "logs"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")

_PROBE = """\
import importlib.metadata as m, json, platform, importlib.util as u
def v(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return None
print(json.dumps({"python": platform.python_version(),
                  "sdk": {"flame": v("flame"), "flamesdk": v("flamesdk")},
                  "libraries": {n: v(n) for n in ("numpy", "pandas", "scikit-learn")},
                  "has_pancreas_fl": u.find_spec("pancreas_fl") is not None}))
"""


class UsageError(ValueError):
    """The run cannot start as asked (one line for the user)."""


@dataclass
class RunConfig:
    """What to run.

    Parameters
    ----------
    hospitals : dict
        Hospital name -> folder (each file is an s3 object of its bucket).
    upload : list of Path
        Files and folders that make up the upload; each lands at ``/opt/code/src/<name>``.
    entrypoint : str
        The uploaded file FLAME runs.
    python : str
        The image's interpreter for the nodes.
    out_dir : Path
    timeout : float
        Longest run, in seconds; then every node is stopped.
    status_interval : float
        Seconds between the orchestrator's status checks.
    faults : list of Fault
    image : ImageRoot, optional
        Run every pod in this image's root filesystem (its python, its ``/opt/code``, its
        entrypoint) instead of ``python`` on the ``upload``.
    """

    hospitals: dict[str, Path]
    upload: list[Path]
    entrypoint: str
    python: str
    out_dir: Path
    timeout: float = 600.0
    status_interval: float = 1.0
    startup_timeout: float = 120.0
    faults: list[Fault] = field(default_factory=list)
    image: ImageRoot | None = None


@dataclass
class RunResult:
    """How a run ended (``outcome``) and its JSON summary (see the README for the fields)."""

    outcome: str
    summary: dict


def probe_python(python: str, image: ImageRoot | None = None) -> dict:
    """Versions in the node interpreter's environment (``UsageError`` when it does not run)."""
    argv, path = [python, "-I", "-c", _PROBE], "/usr/bin:/bin"
    if image is not None:  # the image's python, in the image's root
        argv, path = [shutil.which("chroot") or "chroot", str(image.root), *argv], image.path
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            timeout=60,
            check=False,
            cwd="/",
            env={"PATH": path},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"--python {python}: cannot run it ({exc})") from None
    if done.returncode != 0:
        raise UsageError(f"--python {python}: does not run Python ({done.stderr.decode()[-200:]})")
    info = json.loads(done.stdout)
    if not info["sdk"]["flame"] or not info["sdk"]["flamesdk"]:
        where = f"--image {image.name}" if image is not None else f"--python {python}"
        raise UsageError(
            f"{where}: the FLAME SDK (flame, flamesdk) is not installed there; "
            "build the image venv with 'make flame-image' (or the image with 'make image')"
        )
    return info


def stage_upload(paths: list[Path], entrypoint: str, target: Path) -> None:
    """Copy the upload into ``target`` (what ``/opt/code/src`` will hold), caches left out."""
    target.mkdir(parents=True)
    for path in paths:
        if path.is_dir():
            shutil.copytree(path, target / path.name, ignore=_IGNORED)
        elif path.is_file():
            shutil.copy2(path, target / path.name)
        else:
            raise UsageError(f"--upload {path}: no such file or folder")
    if not (target / entrypoint).is_file():
        names = ", ".join(sorted(p.name for p in target.iterdir())) or "nothing"
        raise UsageError(f"--entrypoint {entrypoint}: not among the uploaded files ({names})")


def _prepare_out_dir(out_dir: Path) -> None:
    """Remove what an earlier run left, so no stale result can be mistaken for this one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in [out_dir / SUMMARY, out_dir / LOGS, *out_dir.glob(f"{FINAL_RESULT}*")]:
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    (out_dir / LOGS).mkdir()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def run(config: RunConfig) -> RunResult:
    """Run the analysis; always stops every pod and removes the run's scratch folder.

    Raises
    ------
    NamespaceUnavailable
        Node pods cannot be isolated here.
    UsageError
        The configuration cannot run (before anything starts).
    """
    netns.check_available()
    if config.image is not None:
        config.image.check(config.entrypoint)
    info = probe_python(config.python, config.image)
    started = time.monotonic()
    run_dir = Path(tempfile.mkdtemp(prefix="flame-node-"))
    os.chmod(run_dir, 0o700)
    orchestrator = broker = logs = None
    gateways: list[Gateway] = []
    pods: list[Pod] = []
    try:
        if config.image is None:
            stage_upload(config.upload, config.entrypoint, run_dir / "upload")
        _prepare_out_dir(config.out_dir)
        spec = AnalysisSpec.create(config.hospitals)
        timeline = Timeline()
        services = SimpleNamespace()
        by_name = {}

        def deliver(node, url, payload):
            status, _ = by_name[node.name].to_analysis("POST", url, payload, timeout=60.0)
            return status

        services.broker = broker = MessageBroker(spec, timeline, deliver, config.faults)
        services.storage = storage = ResultStorage(spec, timeline)
        services.datastores = DataStores(spec)
        services.logs = logs = LogStream(spec, timeline, config.out_dir / LOGS)
        for node in spec.nodes:
            gateway = Gateway(
                spec,
                node,
                services,
                str(run_dir / f"{node.name}.nginx.sock"),
                str(run_dir / f"{node.name}.analysis.sock"),
                timeline,
            )
            gateway.start()
            gateways.append(gateway)
            by_name[node.name] = gateway
            pods.append(
                Pod(
                    spec,
                    node,
                    gateway,
                    run_dir=run_dir,
                    log_dir=config.out_dir / LOGS,
                    upload=run_dir / "upload",
                    entrypoint=config.entrypoint,
                    python=config.python,
                    image=config.image,
                )
            )
        orchestrator = Orchestrator(
            pods, timeline, interval=config.status_interval, startup_timeout=config.startup_timeout
        )
        outcome = orchestrator.run(deadline=started + config.timeout)
        if outcome == "executed" and not storage.final_results:
            outcome = "failed"  # every node finished, but nothing was submitted
        summary = _report(config, info, run_dir, timeline, spec, pods, storage, outcome, started)
        return RunResult(outcome, summary)
    finally:
        if orchestrator is not None:
            orchestrator.stop_all("stopped: the emulator is ending")
        for pod in pods:
            pod.stop()
            _keep_sandbox_log(pod, config.out_dir / LOGS)
        if broker is not None:
            broker.close()
        for gateway in gateways:
            gateway.close()
        if logs is not None:
            logs.close()
        shutil.rmtree(run_dir, ignore_errors=True)


def _report(config, info, run_dir, timeline, spec, pods, storage, outcome, started) -> dict:
    """Write the final result(s) and the run's summary into the output folder; return it."""
    for index, result in enumerate(storage.final_results, start=1):
        name = FINAL_RESULT if index == 1 else f"{FINAL_RESULT}_{index}"
        _write_atomic(config.out_dir / name, result.content)
    extra = {
        "python": info["python"],
        "sdk": info["sdk"],
        "libraries": info["libraries"],
        "entrypoint": f"/opt/code/src/{config.entrypoint}",
        "uploaded": sorted(p.name for p in (run_dir / "upload").iterdir())
        if config.image is None
        else config.image.uploaded(),
        "hospitals": {name: str(path) for name, path in config.hospitals.items()},
        "status_interval": config.status_interval,
    }
    summary = summarize(
        timeline,
        spec,
        pods,
        storage,
        outcome=outcome,
        wall_seconds=time.monotonic() - started,
        extra=extra,
    )
    if config.image is not None:
        summary["image"] = config.image.name
        summary["command"] = config.image.command(config.entrypoint)
    if info["has_pancreas_fl"]:
        summary["warning"] = (
            "pancreas_fl is installed in the node interpreter's environment; FLAME's image "
            "has only what is uploaded"
        )
    _write_atomic(config.out_dir / SUMMARY, json.dumps(summary, indent=2).encode() + b"\n")
    return summary


def _keep_sandbox_log(pod: Pod, log_dir: Path) -> None:
    """Keep a pod's own output (normally empty) only when it says something."""
    try:
        text = pod.paths.sandbox_log.read_bytes()
    except OSError:
        return
    if text.strip() and log_dir.is_dir():
        (log_dir / f"{pod.node.name}.pod.log").write_bytes(text)
