"""The one place that decides which star-pattern implementation pancreas-fl uses.

FLAME's Python images ship the FLAME SDK (``flame.star``, built on ``flamesdk``), installed
from its git repository; it is not on the package registries, so developers' machines and CI
usually do not have it. pancreas-fl therefore carries an offline engine
(:mod:`flame_offline`) that implements the same star-pattern contract, and the analysis
classes subclass whatever this module exports.

The environment variable ``PANCREAS_FL_SDK`` selects the implementation, read once when this
module is first imported:

``auto`` (default)
    the real ``flame.star`` when it imports, else the offline engine;
``flame``
    the real SDK, or an :class:`ImportError` that says how to get it;
``local``
    always the offline engine.

Examples
--------
>>> from pancreas_fl import sdk
>>> sdk.BACKEND in ("flame", "local")
True
"""

from __future__ import annotations

import importlib
import os

from pancreas_fl.errors import ConfigError

__all__ = [
    "BACKEND",
    "ENV_VAR",
    "StarAggregator",
    "StarAnalyzer",
    "StarModel",
    "StarModelTester",
    "describe",
]

ENV_VAR = "PANCREAS_FL_SDK"
_CHOICES = ("auto", "flame", "local")
_SDK_HINT = (
    "The FLAME SDK is preinstalled in FLAME's Python master images. To install it locally, "
    "pip install the 'flame' package from its git repository "
    "(https://github.com/PrivateAIM/python-sdk-patterns), or set "
    f"{ENV_VAR}=local to use pancreas-fl's offline engine."
)


def _requested() -> str:
    value = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if value not in _CHOICES:
        raise ConfigError(
            f"{ENV_VAR} must be one of {', '.join(repr(c) for c in _CHOICES)}. "
            f"Got {os.environ.get(ENV_VAR)!r} instead."
        )
    return value


def _import_flame():
    """Return the real ``flame.star`` module, or the exception that prevented its import."""
    try:
        return importlib.import_module("flame.star"), None
    except Exception as exc:  # a broken SDK install must not break `auto`
        return None, exc


def _select():
    requested = _requested()
    if requested != "local":
        module, error = _import_flame()
        if module is not None:
            return requested, "flame", module, None
        if requested == "flame":
            raise ImportError(
                f"{ENV_VAR}=flame, but the FLAME SDK (flame.star) cannot be imported "
                f"({type(error).__name__}: {error}). {_SDK_HINT}"
            ) from error
        return requested, "local", _import_engine(error), error
    return requested, "local", _import_engine(None), None


def _import_engine(flame_error):
    """Return the offline engine, or say in one line that neither implementation is there.

    The engine (``flame_offline``) is installed with pancreas-fl but is not part of what is
    uploaded to the FLAME Hub, where the real SDK is always present.
    """
    try:
        return importlib.import_module("flame_offline")
    except ImportError as exc:
        why = "" if flame_error is None else f" ({type(flame_error).__name__}: {flame_error})"
        raise ImportError(
            f"Neither the FLAME SDK (flame.star){why} nor pancreas-fl's offline engine "
            f"(flame_offline: {exc}) can be imported. Inside FLAME the SDK is preinstalled; "
            "elsewhere install pancreas-fl (pip install -e .), which brings the engine."
        ) from exc


_REQUESTED, BACKEND, _module, _flame_import_error = _select()

StarModel = _module.StarModel
StarAnalyzer = _module.StarAnalyzer
StarAggregator = _module.StarAggregator
StarModelTester = _module.StarModelTester


def describe() -> str:
    """Say which implementation is active and why, in one line.

    Returns
    -------
    str
        For example ``"offline engine (flame_offline): PANCREAS_FL_SDK=auto and
        flame.star is not importable (ModuleNotFoundError: No module named 'flame')"``.
    """
    if BACKEND == "flame":
        return f"FLAME SDK ({_module.__name__}): {ENV_VAR}={_REQUESTED}"
    reason = f"{ENV_VAR}={_REQUESTED}"
    if _flame_import_error is not None:
        error = _flame_import_error
        reason += f" and flame.star is not importable ({type(error).__name__}: {error})"
    return f"offline engine (flame_offline): {reason}"
