"""A node's pod: the first process inside its namespaces, which starts the analysis container.

Run by the emulator as ``unshare ... -- python -m flame_offline.emulator.sandbox POD.json``
(see :mod:`flame_offline.emulator.netns`). It

1. brings up the loopback interface of the new network namespace;
2. mounts, privately: an empty tmpfs at ``/opt``, the upload read-only at ``/opt/code/src``,
   and the pod's own ``/etc/hosts`` (``nginx-$DEPLOYMENT_NAME`` -> 127.0.0.1);
3. starts the relays (127.0.0.1:80 -> the node's nginx; the analysis socket -> 127.0.0.1:8000);
4. starts the analysis as FLAME does: ``python -u /opt/code/src/<entrypoint>``, working
   directory ``/``, only the container's environment, stdout and stderr to files;
   with an image (``root`` in the pod's file), instead of 2., it gives the pod a private,
   writable copy of the image's root filesystem (an overlay on it, the changes in a tmpfs),
   with ``/proc``, ``/dev``, ``/sys`` and ``/tmp`` as a container has them and the pod's
   ``/etc/hosts``, and runs the image's entrypoint chrooted there (see
   :func:`flame_offline.emulator.rootfs.enter`);
5. waits until the analysis exits, or until the emulator closes this process's stdin (or
   sends SIGTERM): then it stops the analysis (SIGTERM, then SIGKILL after a grace period)
   and exits, and with it the whole pod.

Its exit status is the analysis's (``128 + signal`` when a signal ended it), or 125 when the
pod could not be set up (the reason is on stderr, one line).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

from flame_offline.emulator import netns, rootfs
from flame_offline.emulator.relay import Relay

SETUP_FAILED = 125
GRACE_SECONDS = 3.0
CODE_DIR = "/opt/code/src"


def main(argv: list[str]) -> int:
    """Set up the pod described by the file ``argv[1]``, run the analysis; return its status."""
    with open(argv[1], encoding="utf-8") as handle:
        pod = json.load(handle)
    try:
        netns.loopback_up()
        if pod.get("root"):
            root = rootfs.prepare(pod["root"], pod["hosts"], os.path.dirname(argv[1]), pod["name"])
            command = rootfs.enter(root, pod["command"])
        else:
            netns.mount_tmpfs("/opt")
            os.makedirs(CODE_DIR)
            netns.bind_mount(pod["upload"], CODE_DIR, readonly=True)
            netns.bind_mount(pod["hosts"], "/etc/hosts", readonly=True)
            command = [pod["python"], "-u", f"{CODE_DIR}/{pod['entrypoint']}"]
        relays = [
            Relay(("127.0.0.1", 80), pod["nginx_socket"]).start(),
            Relay(pod["analysis_socket"], ("127.0.0.1", 8000)).start(),
        ]
    except OSError as exc:
        print(
            f"pod {pod['name']}: cannot set up its namespaces: {exc}", file=sys.stderr, flush=True
        )
        return SETUP_FAILED

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    threading.Thread(target=_watch_stdin, args=(stop,), daemon=True).start()

    with open(pod["stdout"], "ab") as out, open(pod["stderr"], "ab") as err:
        analysis = subprocess.Popen(
            command,
            cwd="/",
            env=pod["env"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    threading.Thread(target=lambda: (analysis.wait(), stop.set()), daemon=True).start()
    stop.wait()
    if analysis.poll() is None:
        analysis.terminate()
        try:
            analysis.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            analysis.kill()
            analysis.wait()
    for relay in relays:
        relay.close()
    code = analysis.returncode
    return 128 - code if code < 0 else code


def _watch_stdin(stop: threading.Event) -> None:
    """Set ``stop`` at EOF: the emulator holds our stdin open while the pod should live."""
    try:
        while sys.stdin.buffer.read(1):
            pass
    except OSError:
        pass
    stop.set()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
