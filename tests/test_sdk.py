"""pancreas_fl.sdk: which star-pattern implementation is used, selected by PANCREAS_FL_SDK.

The selection happens once, at import, so each case runs in a fresh interpreter. The probes
import only ``pancreas_fl.sdk`` (no pandas, no scikit-learn): a fraction of a second each.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    from pancreas_fl import sdk
    print(sdk.BACKEND)
    print(sdk.describe())
    print(sdk.StarAnalyzer.__module__, sdk.StarModelTester.__module__)
    """
)
#: The analysis classes subclass whichever bases were selected (imports scikit-learn).
SUBCLASS_PROBE = PROBE + textwrap.dedent(
    """
    from pancreas_fl import FederatedLogisticRegression, PancreasAnalyzer
    print(issubclass(PancreasAnalyzer, sdk.StarAnalyzer),
          issubclass(FederatedLogisticRegression, sdk.StarAggregator))
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


def probe(tmp_path, value=None, extra_path=None, code=PROBE):
    env = {k: v for k, v in os.environ.items() if k not in ("PANCREAS_FL_SDK", "PYTHONPATH")}
    if value is not None:
        env["PANCREAS_FL_SDK"] = value
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def fake_sdk(tmp_path):
    """Write a stand-in ``flame.star`` package, as FLAME's images have the real one."""
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
    backend, description, modules = proc.stdout.splitlines()
    assert backend == "local"
    assert description.startswith("offline engine (flame_offline)")
    assert all(module.startswith("flame_offline.") for module in modules.split())


def test_auto_explains_why_the_sdk_was_not_used(tmp_path):
    description = probe(tmp_path, "auto").stdout.splitlines()[1]
    assert "flame.star is not importable (ModuleNotFoundError" in description


def test_auto_picks_the_flame_sdk_when_it_imports(tmp_path, fake_sdk):
    proc = probe(tmp_path, "auto", extra_path=fake_sdk, code=SUBCLASS_PROBE)
    assert proc.returncode == 0, proc.stderr
    backend, description, modules, subclasses = proc.stdout.splitlines()
    assert backend == "flame"
    assert description == "FLAME SDK (flame.star): PANCREAS_FL_SDK=auto"
    assert modules == "flame.star flame.star"
    assert subclasses == "True True"


def test_the_analysis_subclasses_the_engine_without_the_sdk(tmp_path):
    proc = probe(tmp_path, "local", code=SUBCLASS_PROBE)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "True True"


def test_without_the_sdk_or_the_engine_one_line_says_what_to_install(tmp_path):
    broken = tmp_path / "no-engine" / "flame_offline"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('not installed')\n")
    proc = probe(tmp_path, "auto", extra_path=broken.parent)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert re.match(
        r"ImportError: Neither the FLAME SDK \(flame.star\) \(ModuleNotFoundError: .*\) nor "
        r"pancreas-fl's offline engine \(flame_offline: not installed\) can be imported\. "
        r"Inside FLAME the SDK is preinstalled",
        last,
    ), last


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
