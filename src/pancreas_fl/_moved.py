"""The modules of pancreas-fl 0.1 that moved: their old import paths still work, with a warning.

``import pancreas_fl.data`` (and every other path in :data:`MOVED`) gives a module that holds
the names of the modules it moved to, and raises a :class:`DeprecationWarning` naming them.
The paths will be removed in a later release. Nothing here imports a module before its old
path is imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings

__all__ = ["MOVED", "install"]

#: Old module -> the modules that now hold its names (the first holding a name wins).
MOVED: dict[str, tuple[str, ...]] = {
    "pancreas_fl.data": (
        "pancreas_fl.reader",
        "pancreas_fl.csvfile",
        "pancreas_fl.columns",
        "pancreas_fl.handshake",
        "pancreas_fl.params",
        "pancreas_fl_tools.patients",
    ),
    "pancreas_fl.table": ("pancreas_fl.column_options", "pancreas_fl.s3"),
    "pancreas_fl.problems": ("pancreas_fl.errors",),
    "pancreas_fl.strategies": ("pancreas_fl.fedavg", "pancreas_fl.exact.strategy"),
    "pancreas_fl.strategies.fedavg": ("pancreas_fl.fedavg",),
    "pancreas_fl.strategies.exact": ("pancreas_fl.exact.strategy",),
    "pancreas_fl.strategies.common": ("pancreas_fl.handshake", "pancreas_fl.rounds"),
    "pancreas_fl.stats": ("pancreas_fl.exact", "pancreas_fl_tools.metrics"),
    "pancreas_fl.stats.aliasing": ("pancreas_fl.exact.aliasing",),
    "pancreas_fl.stats.glm": ("pancreas_fl.exact.glm",),
    "pancreas_fl.stats.lbfgs": ("pancreas_fl.exact.solver",),
    "pancreas_fl.stats.line_search": ("pancreas_fl.exact.solver",),
    "pancreas_fl.stats.logistic": ("pancreas_fl.exact.sums", "pancreas_fl.logistic"),
    "pancreas_fl.stats.metrics": ("pancreas_fl_tools.metrics",),
    "pancreas_fl.stats.newton": ("pancreas_fl.exact.solver",),
    "pancreas_fl.stats.separation": ("pancreas_fl.exact.separation",),
    "pancreas_fl.stats.solver": ("pancreas_fl.exact.solver",),
    "pancreas_fl.stats.standardize": ("pancreas_fl.exact.standardize",),
    "pancreas_fl.cli": ("pancreas_fl_tools.cli",),
    "pancreas_fl.report": ("pancreas_fl_tools.report",),
    "pancreas_fl.sample": ("pancreas_fl_tools.sample",),
    "pancreas_fl.simulation": ("pancreas_fl_tools.simulation",),
}

_PACKAGES = {"pancreas_fl.stats", "pancreas_fl.strategies"}

#: Names that changed with their module: old module -> {old name: new name}.
_RENAMED = {"pancreas_fl.strategies.common": {"Cohort": "Agreement"}}


class _MovedModule(importlib.abc.Loader, importlib.abc.MetaPathFinder):
    """Finds an old path and fills a module with the names of the modules it moved to."""

    def find_spec(self, fullname, path=None, target=None):
        """Return a spec for an old path (``None`` for every other module)."""
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=fullname in _PACKAGES)

    def create_module(self, spec) -> None:
        """Use the default module creation (a plain module)."""

    def exec_module(self, module) -> None:
        """Warn, then copy the public names of the new modules into the old one."""
        targets = MOVED[module.__name__]
        warnings.warn(
            f"{module.__name__} is deprecated: import from {' or '.join(targets)} instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        names = {}
        for target in reversed(targets):
            try:
                new = importlib.import_module(target)
            except ModuleNotFoundError:  # the local tools, where only the upload is (a node)
                if target.startswith("pancreas_fl_tools"):
                    continue
                raise
            names.update(
                (name, value) for name, value in vars(new).items() if not name.startswith("__")
            )
        vars(module).update(names)
        for old, new in _RENAMED.get(module.__name__, {}).items():
            if new in names:
                vars(module)[old] = names[new]
        if module.__name__ in _PACKAGES:
            module.__path__ = []


def install() -> None:
    """Make the old paths importable (once per process)."""
    if not any(isinstance(finder, _MovedModule) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModule())
