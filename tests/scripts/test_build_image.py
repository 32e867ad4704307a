"""scripts/build_image.py: the checks' one-line failures, the base and the build's arguments."""

from __future__ import annotations

import subprocess
from pathlib import Path

import build_image
import flame_sdk
import pytest


def answer(returncode=0, stderr=""):
    def run(argv, **kwargs):
        run.calls.append(argv)
        return subprocess.CompletedProcess(argv, returncode, "", stderr)

    run.calls = []
    return run


@pytest.mark.parametrize("euid", [1, 1000])
def test_not_root_is_one_line(euid):
    with pytest.raises(build_image.BuildError, match=r"^needs root .*: run 'sudo make image'$"):
        build_image.check_root(euid)


def test_root_passes():
    build_image.check_root(0)


def test_no_user_namespaces_is_one_line():
    run = answer(1, "unshare: unshare failed: Operation not permitted\n")
    with pytest.raises(
        build_image.BuildError,
        match=r"allows no user namespaces, which buildah needs "
        r"\('unshare --user': unshare: unshare "
        r"failed: Operation not permitted\); enable them",
    ):
        build_image.check_user_namespaces(run)
    assert run.calls[0][:2] == ["unshare", "--user"]


def test_user_namespaces_pass():
    build_image.check_user_namespaces(answer(0))


@pytest.mark.parametrize(
    ("returncode", "stderr"),
    [
        (100, "E: Unable to locate package buildah\n"),
        (0, "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease\n"),
    ],
)
def test_no_debian_packages_is_one_line(monkeypatch, returncode, stderr):
    monkeypatch.setattr(build_image.shutil, "which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(
        build_image.BuildError,
        match=r"cannot install buildah, mmdebstrap: Debian's packages are not reachable \(.+\)",
    ) as info:
        build_image.install_tools(["buildah", "mmdebstrap"], answer(returncode, stderr))
    assert "\n" not in str(info.value)


def test_no_apt_get(monkeypatch):
    monkeypatch.setattr(build_image.shutil, "which", lambda name: None)
    with pytest.raises(build_image.BuildError, match="needs buildah, and there is no apt-get"):
        build_image.install_tools(["buildah"], pytest.fail)


def test_missing_tools_are_named_by_package():
    present = {"podman"}
    assert build_image.missing_tools(lambda t: t if t in present else None) == [
        "buildah",
        "mmdebstrap",
    ]


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        (
            "Error: initializing source docker://python:3.10: pinging container registry "
            'registry-1.docker.io: Get "https://registry-1.docker.io/v2/": dial tcp: lookup '
            "registry-1.docker.io on 10.255.255.53:53: no such host\n",
            "registry-1.docker.io is not reachable",
        ),
        ("Error: something else\n", "Error: something else"),
    ],
)
def test_a_failed_pull_says_why_in_a_few_words(stderr, reason):
    assert build_image.pull_failure(stderr) == reason


def test_the_sdk_source_is_a_build_argument(tmp_path):
    wheels = flame_sdk.choose(str(tmp_path), "0.6.0")
    assert build_image.build_args("localhost/python-standin:3.10", wheels) == [
        "--build-arg=BASE_IMAGE=localhost/python-standin:3.10",
        "--build-arg=FLAME_SDK_SOURCE=wheels",
        "--build-arg=FLAMESDK=0.6.0",
    ]
    # the git route: flame with the core it pins, as FLAME's images install it
    assert build_image.build_args("python:3.10", flame_sdk.choose("", "0.5.0")) == [
        "--build-arg=BASE_IMAGE=python:3.10",
        "--build-arg=FLAME_SDK_SOURCE=git",
    ]
    assert build_image.build_args("python:3.10", flame_sdk.choose("", "0.6.0"))[-1] == (
        "--build-arg=FLAMESDK=0.6.0"
    )


def test_the_context_holds_the_upload_and_only_the_chosen_wheels(tmp_path):
    upload = tmp_path / "hub" / "src"
    (upload / "pkg" / "__pycache__").mkdir(parents=True)
    (upload / "entry.py").write_text("print()\n")
    (upload / "pkg" / "__pycache__" / "x.pyc").write_bytes(b"")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name in ("flame-0.6.4", "flamesdk-0.5.0", "flamesdk-0.6.0"):
        (wheels / f"{name}-py3-none-any.whl").write_bytes(b"PK")
    context = tmp_path / "context"
    build_image.stage_context(upload, flame_sdk.choose(str(wheels), "0.6.0"), context)
    assert sorted(p.name for p in (context / "sdk-wheels").iterdir()) == [
        "flame-0.6.4-py3-none-any.whl",
        "flamesdk-0.6.0-py3-none-any.whl",
    ]
    assert (context / "src" / "entry.py").is_file()
    assert not (context / "src" / "pkg" / "__pycache__").exists()
    build_image.stage_context(upload, flame_sdk.choose("", "0.5.0"), context)
    assert list((context / "sdk-wheels").iterdir()) == []


def test_no_upload_says_make_hub(tmp_path):
    with pytest.raises(build_image.BuildError, match=r"no Hub upload in .*: run 'make hub' first"):
        build_image.stage_context(tmp_path / "none", flame_sdk.choose("", "0.5.0"), tmp_path / "c")


def test_the_copied_python_is_pointed_at_usr_local(tmp_path):
    old = Path("/root/.pyenv/versions/3.10.13")
    local = tmp_path / "usr" / "local"
    (local / "bin").mkdir(parents=True)
    (local / "lib" / "python3.10").mkdir(parents=True)
    (local / "bin" / "pip3").write_text(f"#!{old}/bin/python3.10\nimport pip\n")
    (local / "bin" / "python3.10").write_bytes(b"\x7fELF\0\0" + str(old).encode())
    (local / "bin" / "python3").symlink_to("python3.10")
    sysconfig = local / "lib" / "python3.10" / "_sysconfigdata__linux_x86_64-linux-gnu.py"
    sysconfig.write_text(f"build_time_vars = {{'prefix': '{old}'}}\n")
    assert build_image.fix_prefix(tmp_path, old) == 2
    assert (local / "bin" / "pip3").read_text() == "#!/usr/local/bin/python3.10\nimport pip\n"
    assert sysconfig.read_text() == "build_time_vars = {'prefix': '/usr/local'}\n"
    assert str(old).encode() in (local / "bin" / "python3.10").read_bytes()  # binaries untouched


def test_the_host_ca_reaches_the_build_only(tmp_path):
    cert = tmp_path / "ca.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\n")
    volumes = build_image.host_pip_volumes(tmp_path, {"PIP_CERT": str(cert)})
    assert volumes == [
        f"--volume={cert}:/run/host-ca.crt:ro",
        f"--volume={tmp_path / 'pip.conf'}:/etc/pip.conf:ro",
    ]
    assert "cert = /run/host-ca.crt" in (tmp_path / "pip.conf").read_text()


def test_the_closing_line_names_size_and_versions():
    found = {"python": "3.10.13", "numpy": "2.2.6", "pandas": "2.3.3", "scikit-learn": "1.7.2",
             "flame": "0.6.4", "flamesdk": "0.5.0"}  # fmt: skip
    assert build_image.describe("img", 51.2, "1.1 GB", found) == (
        "make image: img built in 51 s, 1.1 GB: Python 3.10.13, numpy 2.2.6, pandas 2.3.3, "
        "scikit-learn 1.7.2, flame 0.6.4, flamesdk 0.5.0"
    )


def test_no_python_for_the_standin_is_one_line():
    with pytest.raises(build_image.BuildError, match=r"no CPython 3\.10 here .*set OLDEST_PYTHON$"):
        build_image.standin_prefix("")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ('[[3, 11], "/usr"]', r"--standin-python .*: Python 3\.11, not 3\.10$"),
        (
            '[[3, 10], "/nowhere"]',
            r"--standin-python .*: /nowhere is not a whole CPython installation$",
        ),
    ],
)
def test_the_standin_python_must_be_a_whole_cpython_3_10(tmp_path, answer, message):
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\necho '{answer}'\n")
    python.chmod(0o755)
    with pytest.raises(build_image.BuildError, match=message):
        build_image.standin_prefix(str(python))
