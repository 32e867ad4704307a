"""scripts/flame_sdk.py: where the FLAME SDK comes from, and the one line when it cannot."""

from __future__ import annotations

import subprocess
from pathlib import Path

import flame_sdk
import pytest


def make_wheels(folder: Path, names=("flame-0.6.4", "flamesdk-0.5.0", "flamesdk-0.6.0")) -> Path:
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / f"{name}-py3-none-any.whl").write_bytes(b"PK")
    return folder


def answer(returncode=0, stderr=""):
    # a stand-in for subprocess.run: records the commands, answers as git would
    calls = []

    def run(argv, **kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, returncode, "", stderr)

    run.calls = calls
    return run


@pytest.mark.parametrize("wheels", [None, ""])
def test_the_git_tags_are_the_default(wheels):
    source = flame_sdk.choose(wheels, "0.5.0")
    assert source.route == "git"
    with_deps, without = source.requirements()
    assert with_deps == [
        "flamesdk @ git+https://github.com/PrivateAIM/python-sdk.git@0.5.0",
        "opendp>=0.12.1,<0.13",
    ]
    assert without == ["flame @ git+https://github.com/PrivateAIM/python-sdk-patterns.git@0.6.4"]


@pytest.mark.parametrize("flamesdk", ["0.5.0", "0.6.0"])
def test_a_wheels_folder_chooses_its_wheels(tmp_path, flamesdk):
    source = flame_sdk.choose(str(make_wheels(tmp_path / "w")), flamesdk)
    assert source.route == "wheels"
    flame_sdk.check(source, runner=pytest.fail)  # no git is asked
    with_deps, without = source.requirements()
    assert with_deps == [
        str(tmp_path / "w" / f"flamesdk-{flamesdk}-py3-none-any.whl"),
        flame_sdk.OPENDP,
    ]
    assert without == [str(tmp_path / "w" / "flame-0.6.4-py3-none-any.whl")]


def test_pip_installs_flame_without_its_git_pin(tmp_path):
    source = flame_sdk.choose(str(make_wheels(tmp_path / "w")), "0.6.0")
    first, second = flame_sdk.pip_commands("py", source, ["-e", ".[test]"])
    assert first[:4] == ["py", "-m", "pip", "install"]
    assert first[-4:] == ["-e", ".[test]", str(source.flamesdk_wheel), flame_sdk.OPENDP]
    assert "--no-deps" in second
    assert second[-1] == str(source.flame_wheel)


@pytest.mark.parametrize("flamesdk", ["0.4.0", "1.0.0", ""])
def test_an_unknown_core_release_is_refused(flamesdk):
    with pytest.raises(
        ValueError, match=r"FLAMESDK=.*: flame 0\.6\.4 runs on flamesdk 0\.5\.0 or 0\.6\.0"
    ):
        flame_sdk.choose(None, flamesdk)


@pytest.mark.parametrize(
    ("names", "missing"),
    [
        (("flame-0.6.4",), "flamesdk-0.5.0-py3-none-any.whl"),
        (("flamesdk-0.5.0",), "flame-0.6.4-py3-none-any.whl"),
        ((), "flame-0.6.4-py3-none-any.whl and no flamesdk-0.5.0-py3-none-any.whl"),
    ],
)
def test_missing_wheels_name_both_ways(tmp_path, names, missing):
    source = flame_sdk.choose(str(make_wheels(tmp_path / "w", names)), "0.5.0")
    with pytest.raises(flame_sdk.SdkUnavailable, match=f"no {missing} in WHEELS=") as info:
        flame_sdk.check(source)
    assert "\n" not in str(info.value)
    assert "either let it come from GitHub" in str(info.value)
    assert "set WHEELS=DIR" in str(info.value)


def test_a_wheels_path_that_is_no_folder(tmp_path):
    source = flame_sdk.choose(str(tmp_path / "nowhere"), "0.5.0")
    with pytest.raises(
        flame_sdk.SdkUnavailable, match=r"nowhere is not a folder; either .* or set WHEELS=DIR"
    ):
        flame_sdk.check(source)


def test_the_git_route_asks_github_for_both_tags():
    run = answer()
    flame_sdk.check(flame_sdk.choose(None, "0.6.0"), runner=run)
    assert [argv[-2:] for argv in run.calls] == [
        [flame_sdk.PATTERNS_REPO, "refs/tags/0.6.4"],
        [flame_sdk.CORE_REPO, "refs/tags/0.6.0"],
    ]


@pytest.mark.parametrize(
    ("returncode", "stderr", "reason"),
    [
        (
            128,
            "fatal: unable to access 'https://github.com/x.git/': "
            "Could not resolve host: github.com\n",
            r"cannot reach GitHub for the SDK \(Could not resolve host: github\.com\)",
        ),
        (128, "", r"cannot reach GitHub for the SDK \(no answer\)"),
        (2, "", r"python-sdk-patterns\.git has no tag 0\.6\.4"),
    ],
)
def test_an_unreachable_github_says_both_ways(returncode, stderr, reason):
    with pytest.raises(flame_sdk.SdkUnavailable, match=reason) as info:
        flame_sdk.check(flame_sdk.choose(None, "0.5.0"), runner=answer(returncode, stderr))
    message = str(info.value)
    assert "\n" not in message
    assert "either let it come from GitHub" in message
    assert "set WHEELS=DIR to a folder holding flame-0.6.4-py3-none-any.whl" in message


def test_a_silent_github_times_out_in_one_line():
    def run(argv, **kwargs):
        raise subprocess.TimeoutExpired(argv, kwargs["timeout"])

    with pytest.raises(
        flame_sdk.SdkUnavailable, match=r"GitHub did not answer within 3 s .*WHEELS=DIR"
    ):
        flame_sdk.check(flame_sdk.choose(None, "0.5.0"), runner=run, timeout=3)


def test_no_git_says_both_ways(monkeypatch):
    monkeypatch.setattr(flame_sdk.shutil, "which", lambda name: None)
    with pytest.raises(
        flame_sdk.SdkUnavailable, match=r"needs git, which is not installed; either"
    ):
        flame_sdk.check(flame_sdk.choose(None, "0.5.0"), runner=pytest.fail)


def test_the_command_line_fails_in_one_line_and_installs_nothing(tmp_path, capsys):
    venv = tmp_path / "venv"
    status = flame_sdk.main(
        ["install", "--for", "make flame-venv", "--venv", str(venv), "--base-python", "python3",
         "--wheels", str(tmp_path)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1
    assert err.startswith("make flame-venv: no flame-0.6.4-py3-none-any.whl")
    assert not venv.exists()


def test_the_check_command_names_the_route(tmp_path, capsys):
    assert (
        flame_sdk.main(
            ["check", "--wheels", str(make_wheels(tmp_path / "w")), "--flamesdk", "0.6.0"]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith(
        "wheels flame 0.6.4 on flamesdk 0.6.0, from wheels in"
    )
