"""Errors raised by the offline star-pattern engine.

The public errors survive a pickle round trip (they are rebuilt from their constructor
arguments), because they are raised inside a node that may run in a child process and are
handed back to the tester through a pipe.
"""

from __future__ import annotations

__all__ = [
    "LoggedError",
    "NodeFailedError",
    "NodeStopped",
    "NodeTimeoutError",
    "ScriptGuardError",
    "role_label",
]


def role_label(role: str) -> str:
    """Return the human name of a FLAME role: ``'default'`` is an analyzer."""
    return "analyzer" if role == "default" else role


class NodeFailedError(RuntimeError):
    """A node of a local run raised an exception (or its process died).

    Only the first failing node is reported; the other nodes were stopped because of it.

    Parameters
    ----------
    node_id : str
        Id of the node that failed.
    role : str
        Its FLAME role (``'default'`` for an analyzer, ``'aggregator'``).
    error_type : str
        Class name of the original exception.
    error_message : str
        ``str()`` of the original exception.
    traceback : str, optional
        The formatted traceback, as printed in the node.
    error : BaseException or None, optional
        The original exception object when it could be pickled back to the tester,
        else ``None``.
    note : str, optional
        What the run itself did that may explain the failure (appended to the message).

    Attributes
    ----------
    node_id, role, error_type, error_message, traceback, error, note
        As given.
    """

    def __init__(
        self,
        node_id: str,
        role: str,
        error_type: str,
        error_message: str,
        traceback: str = "",
        error: BaseException | None = None,
        note: str = "",
    ) -> None:
        self.node_id = node_id
        self.role = role
        self.error_type = error_type
        self.error_message = error_message
        self.traceback = traceback
        self.error = error
        self.note = note
        message = f"node {node_id!r} ({role_label(role)}) failed: {error_type}: {error_message}"
        super().__init__(f"{message}\n{note}" if note else message)

    def __reduce__(self):
        """Pickle as the constructor's arguments, so the error crosses processes intact."""
        return (
            type(self),
            (
                self.node_id,
                self.role,
                self.error_type,
                self.error_message,
                self.traceback,
                self.error,
                self.note,
            ),
        )


class NodeTimeoutError(TimeoutError):
    """A node waited longer than the tester's ``timeout`` for messages.

    Parameters
    ----------
    node_id : str
        Id of the waiting node.
    role : str
        Its FLAME role.
    waited_for : str
        What it waited for (a message category such as ``'intermediate_data'``).
    missing : list of str
        The senders it had not heard from when the time ran out.
    timeout : float
        The timeout in seconds.

    Attributes
    ----------
    node_id, role, waited_for, missing, timeout
        As given.
    """

    def __init__(
        self, node_id: str, role: str, waited_for: str, missing: list[str], timeout: float
    ) -> None:
        self.node_id = node_id
        self.role = role
        self.waited_for = waited_for
        self.missing = list(missing)
        self.timeout = timeout
        senders = ", ".join(repr(m) for m in self.missing)
        super().__init__(
            f"node {node_id!r} ({role_label(role)}) waited {timeout:g} s for {waited_for!r} "
            f"from {senders} and received nothing. A node is stuck or finished without sending; "
            f"if rounds legitimately take longer, raise StarModelTester(timeout=...)."
        )

    def __reduce__(self):
        """Pickle as the constructor's arguments, so the error crosses processes intact."""
        return (
            type(self),
            (self.node_id, self.role, self.waited_for, self.missing, self.timeout),
        )


class NodeStopped(Exception):
    """Raised inside a node's engine call when the run was stopped because another node failed.

    Internal: the engine catches it and reports the node as stopped, not failed.
    """


class LoggedError(RuntimeError):
    """A node logged with ``flame_log(..., log_type='error')``.

    In production (flamesdk 0.5/0.6) an ``'error'`` log marks the node *failed* (and blocks
    it for a while). The engine lets the node run on without the pause, and ends its run as
    failed with this error when the node then returns normally.

    Parameters
    ----------
    logged : str
        The logged message.

    Attributes
    ----------
    logged : str
        As given.
    """

    def __init__(self, logged: str) -> None:
        self.logged = logged
        super().__init__(
            "the node logged an error (flame_log with log_type='error'), which marks a "
            f"production node failed: {logged}"
        )

    def __reduce__(self):
        """Pickle as the constructor's arguments, so the error crosses processes intact."""
        return (type(self), (self.logged,))


class ScriptGuardError(RuntimeError):
    """A node process imported the main script, and the script started a tester again.

    Raised by the tester (once, not per node) when node processes are started fresh
    (``spawn``) and the script runs ``StarModelTester(..., isolation='process')`` at import,
    without an ``if __name__ == "__main__":`` guard.

    Parameters
    ----------
    main_path : str or None
        The script.
    """

    def __init__(self, main_path: str | None = None) -> None:
        self.main_path = main_path
        script = f"your script {main_path}" if main_path else "your main script"
        super().__init__(
            "isolation='process' started every node in a fresh Python process, which imports "
            f"{script} again to find the node classes, and the script started a "
            "StarModelTester while being imported. Put the code that runs the tester under "
            "`if __name__ == \"__main__\":`, or use isolation='thread'."
        )

    def __reduce__(self):
        """Pickle as the constructor's arguments, so the error crosses processes intact."""
        return (type(self), (self.main_path,))
