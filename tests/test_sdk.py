"""pancreas_fl.sdk: which star-pattern implementation is used, selected by PANCREAS_FL_SDK."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    from pancreas_fl import sdk, PancreasAnalyzer
    print(sdk.BACKEND)
    print(sdk.describe())
    print(sdk.StarAnalyzer.__module__, sdk.StarModelTester.__module__)
    print(issubclass(PancreasAnalyzer, sdk.StarAnalyzer))
    """
)

FAKE_SDK = {
    "flame/__init__.py": "",
    "flame/star/__init__.py": textwrap.dedent(
        """
        class StarModel: ...
        class StarAnalyzer:
            def __init__(self, flame): self.flame = flame
        class StarAggregator:
            def __init__(self, flame): self.flame = flame
        class StarModelTester: ...
        """
    ),
}


def probe(tmp_path, value=None, extra_path=None):
    env = {k: v for k, v in os.environ.items() if k not in ("PANCREAS_FL_SDK", "PYTHONPATH")}
    if value is not None:
        env["PANCREAS_FL_SDK"] = value
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path)
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def fake_sdk(tmp_path):
    """A stand-in ``flame.star`` package, as FLAME's images have the real one."""
    root = tmp_path / "fake-sdk"
    for name, text in FAKE_SDK.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize("value", [None, "auto", "local", " LOCAL "])
def test_without_the_sdk_the_offline_engine_is_used(tmp_path, value):
    proc = probe(tmp_path, value)
    assert proc.returncode == 0, proc.stderr
    backend, description, modules, subclass = proc.stdout.splitlines()
    assert backend == "local"
    assert description.startswith("offline engine (flame_offline)")
    assert modules.startswith("flame_offline")
    assert subclass == "True"


def test_auto_explains_why_the_sdk_was_not_used(tmp_path):
    description = probe(tmp_path, "auto").stdout.splitlines()[1]
    assert "flame.star is not importable (ModuleNotFoundError" in description


def test_auto_picks_the_flame_sdk_when_it_imports(tmp_path, fake_sdk):
    proc = probe(tmp_path, "auto", extra_path=fake_sdk)
    assert proc.returncode == 0, proc.stderr
    backend, description, modules, subclass = proc.stdout.splitlines()
    assert backend == "flame"
    assert description == "FLAME SDK (flame.star): PANCREAS_FL_SDK=auto"
    assert modules == "flame.star flame.star"
    assert subclass == "True"


def test_local_ignores_an_installed_sdk(tmp_path, fake_sdk):
    assert probe(tmp_path, "local", extra_path=fake_sdk).stdout.splitlines()[0] == "local"


def test_flame_without_the_sdk_says_how_to_get_it(tmp_path):
    proc = probe(tmp_path, "flame")
    assert proc.returncode != 0
    assert "ImportError: PANCREAS_FL_SDK=flame, but the FLAME SDK (flame.star) cannot be" in (
        proc.stderr
    )
    assert "PANCREAS_FL_SDK=local" in proc.stderr


def test_an_invalid_choice_is_refused(tmp_path):
    proc = probe(tmp_path, "cloud")
    assert proc.returncode != 0
    assert (
        "PANCREAS_FL_SDK must be one of 'auto', 'flame', 'local'. Got 'cloud' instead."
        in proc.stderr
    )


def test_local_import_works_as_documented(tmp_path):
    env = {**os.environ, "PANCREAS_FL_SDK": "local"}
    proc = subprocess.run(
        [sys.executable, "-c", "from pancreas_fl.sdk import StarModelTester"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
