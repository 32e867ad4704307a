"""The pod orchestration: start each node's pod, watch its status, end the analysis.

As PrivateAIM/node-pod-orchestration does on every node, the status loop asks each analysis
for its status through its nginx (``GET /analysis/healthz`` -> ``{"status",
"token_remaining_time"}``), tells it its partners' statuses (``POST /analysis/partner_status``
``{"partner_status": {node id: status}}``), and deletes a pod once it reports ``executed``
or stops it once it reports ``failed`` (or ``stuck``). Unlike a single production node, the
emulator sees all nodes: when one fails, it stops every other node at once (``stopped``), as
the Hub ends an analysis that failed somewhere. A pod whose process exits by itself has
failed (in production its container would be restarted).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from flame_offline.emulator import netns
from flame_offline.emulator.gateway import Gateway
from flame_offline.emulator.image import ImageRoot
from flame_offline.emulator.spec import AnalysisSpec, NodeSpec
from flame_offline.emulator.timeline import Timeline

__all__ = ["Orchestrator", "Pod"]

TERMINAL = ("executed", "failed", "stopped")
STOP_TIMEOUT = 10.0


@dataclass
class _Paths:
    config: Path
    hosts: Path
    stdout: Path
    stderr: Path
    sandbox_log: Path


class Pod:
    """A node's pod: its namespaces' first process (the sandbox) and the analysis in it."""

    def __init__(
        self,
        spec: AnalysisSpec,
        node: NodeSpec,
        gateway: Gateway,
        *,
        run_dir: Path,
        log_dir: Path,
        upload: Path,
        entrypoint: str,
        python: str,
        image: ImageRoot | None = None,
    ) -> None:
        self.spec = spec
        self.node = node
        self.gateway = gateway
        self.status = "starting"
        self.exit_code: int | None = None
        self.ended_by: str | None = None
        self.first_contact: float | None = None
        self._process: subprocess.Popen | None = None
        self.paths = _Paths(
            config=run_dir / f"{node.name}.pod.json",
            hosts=run_dir / f"{node.name}.hosts",
            stdout=log_dir / f"{node.name}.stdout.log",
            stderr=log_dir / f"{node.name}.stderr.log",
            sandbox_log=run_dir / f"{node.name}.sandbox.log",
        )
        self.paths.hosts.write_text(
            "127.0.0.1\tlocalhost\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"127.0.0.1\t{spec.nginx_host}\n",
            encoding="utf-8",
        )
        pod = {
            "name": node.name,
            "upload": str(upload),
            "hosts": str(self.paths.hosts),
            "nginx_socket": gateway.socket_path,
            "analysis_socket": gateway.analysis_socket,
            "python": python,
            "entrypoint": entrypoint,
            "env": spec.container_env(node, python_bin=str(Path(python).parent)),
        }
        if image is not None:  # the container: the image's root, environment and entrypoint
            env = {**image.env, **spec.container_env(node, python_bin="/usr/local/bin")}
            env["PATH"] = image.path
            pod |= {"root": str(image.root), "env": env, "command": image.command(entrypoint)}
        pod |= {
            "stdout": str(self.paths.stdout),
            "stderr": str(self.paths.stderr),
        }
        self.paths.config.write_text(json.dumps(pod, indent=2), encoding="utf-8")

    def start(self) -> None:
        """Start the pod: the sandbox process in new namespaces, its output to the sandbox log."""
        package_root = str(Path(__file__).resolve().parents[2])  # holds flame_offline/
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": package_root}
        with self.paths.sandbox_log.open("wb") as log:
            self._process = subprocess.Popen(
                netns.unshare_command(
                    sys.executable, "-m", "flame_offline.emulator.sandbox", str(self.paths.config)
                ),
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd="/",
            )

    def poll(self) -> int | None:
        """Return the pod's exit status once it has ended by itself, else ``None``."""
        if self._process is None:
            return None
        return self._process.poll()

    def stop(self) -> None:
        """End the pod: close its control pipe (the sandbox stops the analysis), then kill."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()  # unshare --kill-child takes the pod's init, and the kernel the rest
            process.wait()

    def last_stderr_line(self) -> str:
        """Return the analysis's last line on stderr (e.g. the exception that ended it)."""
        try:
            lines = self.paths.stderr.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return next((line.strip() for line in reversed(lines) if line.strip()), "")

    def sandbox_error(self) -> str:
        """Return the sandbox log's last line (why the pod could not be set up), or ``""``."""
        try:
            lines = self.paths.sandbox_log.read_text(
                encoding="utf-8", errors="replace"
            ).splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""


class Orchestrator:
    """Starts the pods, runs the status loop until every pod has ended, and stops them.

    Parameters
    ----------
    pods : list of Pod
    timeline : Timeline
    interval : float
        Seconds between status checks (production: ``STATUS_LOOP_INTERVAL``, 10 s).
    startup_timeout : float
        How long a pod may take to answer its first status check.
    """

    def __init__(
        self, pods, timeline: Timeline, *, interval: float, startup_timeout: float
    ) -> None:
        self.pods: list[Pod] = pods
        self.timeline = timeline
        self.interval = interval
        self.startup_timeout = startup_timeout
        self.outcome: str | None = None
        self._wake = threading.Event()

    def run(self, deadline: float) -> str:
        """Start every pod and loop until all have ended or ``deadline`` (monotonic) passes.

        Returns
        -------
        str
            ``'executed'`` (every node executed), ``'failed'`` or ``'timeout'``.
        """
        started = time.monotonic()
        for pod in self.pods:
            pod.start()
            self._set(pod, "started")
        while True:
            for pod in self._running():
                self._check(pod, started)
            if any(pod.status in ("failed", "stuck") for pod in self.pods):
                for pod in self._running():
                    self._end(pod, "stopped", "stopped because another node failed")
            running = self._running()
            if not running:
                break
            if time.monotonic() >= deadline:
                for pod in running:
                    self._end(pod, "stopped", "stopped at the time limit")
                self.outcome = "timeout"
                return self.outcome
            self._inform_partners(running)
            self._wake.wait(self.interval)
        failed = any(pod.status != "executed" for pod in self.pods)
        self.outcome = "failed" if failed else "executed"
        return self.outcome

    def stop_all(self, reason: str) -> None:
        """Stop every pod still running (on interruption or error)."""
        for pod in self._running():
            self._end(pod, "stopped", reason)
        self._wake.set()

    def _running(self) -> list[Pod]:
        return [pod for pod in self.pods if pod.status not in TERMINAL and pod.status != "stuck"]

    def _check(self, pod: Pod, started: float) -> None:
        code = pod.poll()
        if code is not None:
            pod.exit_code = code
            if code == 125:
                why = pod.sandbox_error()
            else:
                why = f"its process exited with status {code}"
                last = pod.last_stderr_line()
                if last:
                    why += f": {last}"
            self._end(pod, "failed", why)
            return
        try:
            status, body = pod.gateway.to_analysis(
                "GET", f"http://{pod.spec.nginx_host}/analysis/healthz", timeout=10.0
            )
            health = json.loads(body) if status == 200 else {}
        except (OSError, ValueError):
            health = {}
        state = health.get("status")
        if state is None:
            if pod.first_contact is None and time.monotonic() - started > self.startup_timeout:
                self._end(
                    pod, "failed", f"its API did not answer within {self.startup_timeout:g} s"
                )
            return
        if pod.first_contact is None:
            pod.first_contact = self.timeline.now()
        if state == "executed":
            self._end(pod, "executed", "deleted after it reported 'executed'")
        elif state in ("failed", "stuck"):
            self._end(pod, "failed" if state == "failed" else "stuck", f"it reported '{state}'")
        elif state != pod.status:
            self._set(pod, state)

    def _inform_partners(self, running: list[Pod]) -> None:
        for pod in running:
            if pod.first_contact is None:
                continue
            partners = {p.node.node_id: p.status for p in self.pods if p is not pod}
            body = json.dumps({"partner_status": partners}).encode()
            with contextlib.suppress(OSError):  # as in production: the next iteration retries
                pod.gateway.to_analysis(
                    "POST",
                    f"http://{pod.spec.nginx_host}/analysis/partner_status",
                    body,
                    timeout=10.0,
                )

    def _set(self, pod: Pod, status: str, note: str | None = None) -> None:
        pod.status = status
        self.timeline.record("status", pod.node.name, status=status, note=note)

    def _end(self, pod: Pod, status: str, note: str) -> None:
        self._set(pod, status, note)
        pod.ended_by = note
        pod.stop()
        if pod.exit_code is None:
            pod.exit_code = pod.poll()
