"""An image as the nodes' root: its configuration, its python, its entrypoint, and the CLI."""

from __future__ import annotations

import pytest

from flame_offline.emulator import cli, image
from flame_offline.emulator.image import ImageRoot, ImageUnavailable


@pytest.fixture
def root(tmp_path):
    # a root filesystem shaped like python:3.10, the Hub upload under /opt/code/src
    (tmp_path / "usr" / "local" / "bin").mkdir(parents=True)
    (tmp_path / "usr" / "local" / "bin" / "python3.10").write_bytes(b"\x7fELF")
    (tmp_path / "usr" / "local" / "bin" / "python").symlink_to("python3.10")
    # an absolute link points into the image, not at the host: lexists, not exists
    (tmp_path / "usr" / "local" / "bin" / "python3").symlink_to("/usr/local/bin/python3.10")
    (tmp_path / "opt" / "code" / "src" / "pancreas_fl").mkdir(parents=True)
    (tmp_path / "opt" / "code" / "src" / "pancreas_analysis.py").write_text("print()\n")
    return tmp_path


def an_image(root, **kwargs):
    kwargs.setdefault("env", {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"})
    return ImageRoot(name="localhost/pancreas-fl:latest", root=root, **kwargs)


@pytest.mark.parametrize(
    ("entries", "env"),
    [
        (None, {}),
        (
            ["PATH=/usr/local/bin:/bin", "LANG=C.UTF-8"],
            {"PATH": "/usr/local/bin:/bin", "LANG": "C.UTF-8"},
        ),
        (["A=x=y", "EMPTY=", "NOEQUALS", "=v"], {"A": "x=y", "EMPTY": ""}),
    ],
)
def test_the_image_environment_is_parsed(entries, env):
    assert image.parse_env(entries) == env


def test_python_is_found_on_the_image_path_inside_the_image(root):
    assert an_image(root).which("python") == "/usr/local/bin/python"
    assert an_image(root).which("python3") == "/usr/local/bin/python3"
    assert an_image(root).which("pip") is None
    assert an_image(root, env={}).path.startswith("/usr/local/sbin:/usr/local/bin:")


def test_the_command_is_the_image_entrypoint(root):
    entry = ["python", "-u", "/opt/code/src/pancreas_analysis.py"]
    assert an_image(root, entrypoint=entry).command("other.py") == entry
    assert an_image(root).command("pancreas_analysis.py") == entry


def test_the_upload_is_what_the_image_holds(root):
    assert an_image(root).uploaded() == ["pancreas_analysis.py", "pancreas_fl"]
    an_image(root).check("pancreas_analysis.py")


def test_an_image_without_python_is_refused(root):
    with pytest.raises(ImageUnavailable, match=r"no 'python' on its PATH \(/opt/bin\)"):
        an_image(root, env={"PATH": "/opt/bin"}).check("pancreas_analysis.py")


def test_an_entrypoint_missing_from_the_image_is_refused(root):
    with pytest.raises(
        ImageUnavailable,
        match=r"its entrypoint 'python -u /opt/code/src/gone.py' names no file in the image "
        r"\(/opt/code/src holds pancreas_analysis.py, pancreas_fl\)",
    ):
        an_image(root).check("gone.py")


def test_the_cli_takes_python_or_image_not_both(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--python", "/usr/bin/python3", "--image", "x"])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_cli_refuses_upload_with_image(capsys):
    assert cli.main(["--image", "x", "--upload", __file__]) == 2
    err = capsys.readouterr().err
    assert (
        err == "flame-node: --upload does not apply with --image: the image holds its /opt/code\n"
    )


def test_an_image_needs_buildah(monkeypatch):
    monkeypatch.setattr(image.shutil, "which", lambda name: None)
    with pytest.raises(ImageUnavailable, match=r"--image x: needs buildah"), image.mounted("x"):
        pass
