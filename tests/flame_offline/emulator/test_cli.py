"""The command line: usage errors, exit statuses, and the pods' isolation check."""

from __future__ import annotations

import re

import pytest

from flame_offline.emulator import cli, netns, runner
from flame_offline.emulator.netns import NamespaceUnavailable


@pytest.fixture
def hospitals(tmp_path):
    for name in ("node1", "node2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.csv").write_bytes(b"a\n1\n")
    return [str(tmp_path / "node1"), str(tmp_path / "node2")]


def args(hospitals, *extra):
    return [
        *hospitals,
        "--python",
        "/nonexistent/python",
        "--upload",
        __file__,
        "--entrypoint",
        "test_cli.py",
        *extra,
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--timeout", "0"], r"--timeout must be in \(0, 86400\] seconds. Got 0 instead."),
        (
            ["--status-interval", "100"],
            r"--status-interval must be in \[0.05, 60\] seconds. Got 100 instead.",
        ),
        (["--duplicate", "nth=2"], "'category' is required"),
        (["--delay", "category=x,to=node9,seconds=1"], "no node named 'node9'"),
    ],
)
def test_usage_errors(hospitals, capsys, extra, message):
    assert cli.main(args(hospitals, *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("flame-node: ")
    assert len(err.strip().splitlines()) == 1
    assert re.search(message, err), err


def test_hospital_names_must_differ(tmp_path, hospitals, capsys):
    other = tmp_path / "elsewhere" / "node1"
    other.mkdir(parents=True)
    assert cli.main(args([*hospitals, str(other)])) == 2
    assert "its name 'node1' is taken" in capsys.readouterr().err


def test_missing_hospital_folder(tmp_path, capsys):
    assert cli.main(args([str(tmp_path / "none")])) == 2
    assert "hospital folder" in capsys.readouterr().err


def test_no_namespaces_exit_3(hospitals, capsys, monkeypatch):
    def unavailable(config):
        raise NamespaceUnavailable("needs root to create network and mount namespaces")

    monkeypatch.setattr(cli, "run", unavailable)
    assert cli.main(args(hospitals)) == 3
    assert capsys.readouterr().err == (
        "flame-node: cannot isolate the nodes here: "
        "needs root to create network and mount namespaces.\n"
    )


def test_interrupted_exit_130(hospitals, capsys, monkeypatch):
    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run", interrupted)
    assert cli.main(args(hospitals)) == 130
    assert "interrupted; every node was stopped" in capsys.readouterr().err


def test_check_available_needs_root(monkeypatch):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    with pytest.raises(NamespaceUnavailable, match="needs root"):
        netns.check_available()


def test_check_available_needs_unshare(monkeypatch):
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    monkeypatch.setattr(netns.shutil, "which", lambda name: None)
    with pytest.raises(NamespaceUnavailable, match="needs util-linux 'unshare'"):
        netns.check_available()


def test_stage_upload_leaves_caches_out(tmp_path):
    package = tmp_path / "src" / "pkg"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__pycache__" / "x.pyc").write_bytes(b"")
    (package / "mod.pyc").write_bytes(b"")
    entry = tmp_path / "src" / "main.py"
    entry.write_text("")
    runner.stage_upload([entry, package], "main.py", tmp_path / "upload")
    staged = sorted(
        str(p.relative_to(tmp_path / "upload")) for p in (tmp_path / "upload").rglob("*")
    )
    assert staged == ["main.py", "pkg", "pkg/__init__.py"]


def test_stage_upload_needs_the_entrypoint(tmp_path):
    (tmp_path / "a.py").write_text("")
    with pytest.raises(
        runner.UsageError, match=r"--entrypoint main.py: not among the uploaded files \(a.py\)"
    ):
        runner.stage_upload([tmp_path / "a.py"], "main.py", tmp_path / "upload")


def test_python_without_sdk_is_refused(tmp_path):
    fake = tmp_path / "python"
    fake.write_text(
        "#!/bin/sh\n"
        'echo \'{"python": "3.10.0", "sdk": {"flame": null, "flamesdk": null}, '
        '"libraries": {}, "has_pancreas_fl": false}\'\n'
    )
    fake.chmod(0o755)
    with pytest.raises(
        runner.UsageError, match=r"the FLAME SDK \(flame, flamesdk\) is not installed"
    ):
        runner.probe_python(str(fake))


def test_python_that_does_not_run(tmp_path):
    with pytest.raises(runner.UsageError, match="cannot run it"):
        runner.probe_python(str(tmp_path / "missing-python"))
