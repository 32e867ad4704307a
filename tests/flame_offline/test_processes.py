"""Process isolation: how node processes start, what they share, how they end."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import _nodes
import pytest

from flame_offline import NodeFailedError, ScriptGuardError, StarModelTester, runner

HERE = Path(__file__).resolve().parent
SPLITS = [[{"v.csv": b"1,2,3"}], [{"v.csv": b"4,5"}]]
FORK = pytest.mark.skipif(
    "fork" not in __import__("multiprocessing").get_all_start_methods() or sys.platform == "darwin",
    reason="node processes are forked only where fork is safe",
)


def run(splits=SPLITS, analyzer=_nodes.SumAnalyzer, aggregator=_nodes.MeanAggregator, **kw):
    """Run a tester quietly with process isolation, fetching every object."""
    kw.setdefault("log_handler", lambda record: None)
    return StarModelTester(splits, analyzer, aggregator, "s3", query=[], isolation="process", **kw)


@pytest.fixture(params=["fork", pytest.param("spawn", marks=pytest.mark.slow)])
def start_method(request, monkeypatch) -> str:
    """Each way of starting node processes (forced)."""
    if request.param == "fork" and (
        "fork" not in __import__("multiprocessing").get_all_start_methods()
        or sys.platform == "darwin"
    ):
        pytest.skip("fork is not used on this platform")
    monkeypatch.setattr(runner, "start_method", lambda: request.param)
    return request.param


@pytest.fixture
def other_thread():
    """Run a second Python thread for the duration of the test."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    yield thread
    stop.set()
    thread.join()


@FORK
def test_a_single_threaded_tester_forks_its_nodes(monkeypatch):
    # (other tests of the suite may leave daemon threads behind)
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    assert runner.start_method() == "fork"


def test_a_tester_running_other_threads_spawns_its_nodes(other_thread):
    assert runner.start_method() == "spawn"


def test_each_node_process_has_its_own_module_state(start_method):
    kwargs = {"analyzer": _nodes.GlobalCounterAnalyzer, "aggregator": _nodes.ListAggregator}
    before = _nodes.COUNTER
    processes = run(**kwargs)
    # every node counts on its own copy: a fork starts from the tester's state, a spawned
    # process from a fresh import
    start = before if start_method == "fork" else 0
    assert processes.result == [start + 1, start + 1]
    assert before == _nodes.COUNTER  # the tester's own state is untouched


def test_thread_nodes_share_module_state():
    before = _nodes.COUNTER
    tester = StarModelTester(
        SPLITS,
        _nodes.GlobalCounterAnalyzer,
        _nodes.ListAggregator,
        "s3",
        query=[],
        log_handler=lambda record: None,
    )
    assert sorted(tester.result) == [before + 1, before + 2]


@FORK
def test_forked_nodes_may_be_defined_anywhere(monkeypatch):
    monkeypatch.setattr(runner, "start_method", lambda: "fork")

    class LocalAnalyzer(_nodes.SumAnalyzer):
        pass

    assert run(analyzer=LocalAnalyzer).result == 3.0


def test_spawned_nodes_need_importable_classes(monkeypatch):
    monkeypatch.setattr(runner, "start_method", lambda: "spawn")

    class LocalAnalyzer(_nodes.SumAnalyzer):
        pass

    with pytest.raises(
        TypeError,
        match=r"isolation='process' starts fresh Python processes here .* must be picklable",
    ):
        run(analyzer=LocalAnalyzer)


@pytest.mark.slow
def test_spawned_nodes_import_classes_from_modules_loaded_by_path(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "start_method", lambda: "spawn")
    path = tmp_path / "path_only_nodes.py"
    path.write_text(
        textwrap.dedent(
            """
            from flame_offline import StarAnalyzer

            class PathAnalyzer(StarAnalyzer):
                def analysis_method(self, data, aggregator_results):
                    return "loaded by path"
            """
        )
    )
    spec = importlib.util.spec_from_file_location("engine_test_path_only_nodes", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    tester = run(splits=SPLITS[:1], analyzer=module.PathAnalyzer, aggregator=_nodes.ListAggregator)
    assert tester.result == ["loaded by path"]


def test_a_node_process_dying_hard_is_a_failure(start_method):
    with pytest.raises(
        NodeFailedError,
        match=r"node 'node-1' \(analyzer\) failed: ChildProcessError: .*exit code 3",
    ) as info:
        run(splits=SPLITS[:1], analyzer=_nodes.HardExitAnalyzer, print_failures=False)
    assert isinstance(info.value.error, ChildProcessError)


def test_node_processes_do_not_outlive_the_run(start_method, tmp_path):
    tester = run(
        analyzer=_nodes.PidAnalyzer,
        aggregator=_nodes.ListAggregator,
        analyzer_kwargs={"folder": str(tmp_path)},
    )
    assert len(set(tester.result)) == 2
    assert os.getpid() not in tester.result
    assert _still_running(tester.result) == []


# ---------------------------------------------------------------------------- whole scripts
def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _still_running(pids: list[int], patience: float = 30.0) -> list[int]:
    """Return the processes of ``pids`` still running after up to ``patience`` s of waiting.

    A process that closed its files (its pipes report the end) may still be on its way out.
    """
    deadline = time.monotonic() + patience
    while [pid for pid in pids if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


def _script(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    return script


def _start(script: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


SLOW_RUN = """
    import sys
    import threading

    import _nodes
    from flame_offline import StarModelTester

    if __name__ == "__main__":
        if sys.argv[2] == "spawn":  # another thread running: node processes are spawned
            threading.Thread(target=threading.Event().wait, daemon=True).start()
        StarModelTester(
            [[{"v.csv": b"1"}]] * 3,
            _nodes.PidAnalyzer,
            _nodes.ListAggregator,
            "s3",
            query=[],
            analyzer_kwargs={"folder": sys.argv[1], "seconds": 120.0},
            isolation="process",
            timeout=600.0,
        )
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["fork", "spawn"])
@pytest.mark.parametrize(
    ("sig", "group", "tracebacks"),
    [
        (signal.SIGTERM, False, 0),  # `kill <tester>`: the nodes notice and leave quietly
        (signal.SIGTERM, True, 0),  # `kill -- -<group>`
        (signal.SIGINT, True, 1),  # Ctrl-C: only the tester's KeyboardInterrupt
    ],
)
def test_nodes_end_quietly_when_the_tester_is_stopped(tmp_path, how, sig, group, tracebacks):
    folder = tmp_path / "pids"
    folder.mkdir()
    process = _start(_script(tmp_path, SLOW_RUN), str(folder), how)
    deadline = time.monotonic() + 120
    while len(list(folder.glob("*.pid"))) < 3:  # every node is inside analysis_method
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the nodes did not start"
        time.sleep(0.05)
    pids = [int(path.read_text()) for path in folder.glob("*.pid")]
    if group:
        os.killpg(process.pid, sig)
    else:
        process.send_signal(sig)
    # stderr reaches its end once every process holding it (tester and nodes) has exited
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0
    assert err.count("Traceback") == tracebacks, err
    assert "BrokenPipeError" not in err
    assert _still_running(pids) == []


SLOW_START = """
    import os
    import sys
    import threading
    import time

    import _nodes
    from flame_offline import StarModelTester

    if __name__ == "__mp_main__":  # a spawned node imports this script first: slowly
        with open(os.path.join(sys.argv[1], f"{os.getpid()}.importing"), "w"):
            pass
        time.sleep(3.0)
    if __name__ == "__main__":
        threading.Thread(target=threading.Event().wait, daemon=True).start()  # spawn
        StarModelTester(
            [[{"v.csv": b"1"}]] * 2,
            _nodes.SumAnalyzer,
            _nodes.ListAggregator,
            "s3",
            query=[],
            isolation="process",
            timeout=600.0,
        )
"""


@pytest.mark.slow
def test_a_ctrl_c_while_nodes_start_shows_only_the_testers_traceback(tmp_path):
    folder = tmp_path / "starting"
    folder.mkdir()
    process = _start(_script(tmp_path, SLOW_START), str(folder))
    deadline = time.monotonic() + 120
    while not list(folder.glob("*.importing")):  # a node process is importing the script
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no node started"
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole process group
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0
    assert err.count("Traceback") == 1, err  # the tester's KeyboardInterrupt, no node's
    assert "KeyboardInterrupt" in err
    pids = [int(path.name.split(".")[0]) for path in folder.glob("*.importing")]
    assert _still_running(pids) == []


UNGUARDED = """
    import sys
    import threading

    from flame_offline import StarAggregator, StarAnalyzer, StarModelTester

    class Analyzer(StarAnalyzer):
        def analysis_method(self, data, aggregator_results):
            return len(data[0])

    class Aggregator(StarAggregator):
        def aggregation_method(self, analysis_results):
            return sum(analysis_results)

        def has_converged(self, result, last_result):
            return True

    if sys.argv[1] == "spawn":
        threading.Thread(target=threading.Event().wait, daemon=True).start()
    StarModelTester(
        [[{"a": b"1", "b": b"2"}], [{"a": b"3"}]],
        Analyzer,
        Aggregator,
        "s3",
        query=[],
        isolation="process",
        stream_log_level=100,
    )
"""


@FORK
def test_a_script_without_a_main_guard_just_works_with_forked_nodes(tmp_path):
    process = _start(_script(tmp_path, UNGUARDED), "fork")
    out, err = process.communicate(timeout=120)
    assert (process.returncode, out, err) == (0, "Final result: 3\n", "")


@pytest.mark.slow
def test_a_script_without_a_main_guard_gets_one_clear_error_with_spawned_nodes(tmp_path):
    script = _script(tmp_path, UNGUARDED)
    process = _start(script, "spawn")
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1
    assert out == ""
    assert err.count("Traceback") == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("flame_offline.errors.ScriptGuardError: isolation='process' ")
    assert f"imports your script {script} again" in last
    assert "under `if __name__ == \"__main__\":`, or use isolation='thread'" in last


def test_the_guard_error_names_the_script():
    assert "your script /x/run.py again" in str(ScriptGuardError("/x/run.py"))
    assert "your main script again" in str(ScriptGuardError())
