"""Every name in every ``__all__`` of ``ml`` exists (a stale ``__all__`` breaks ``import *`` and the docs)."""

from __future__ import annotations

import importlib
import pkgutil

import ml

MODULES = sorted(info.name for info in pkgutil.walk_packages(ml.__path__, "ml."))


def test_the_walk_finds_the_subpackages():
    assert {"ml.cohort", "ml.window", "ml.dosing", "ml.pk", "ml.poppk", "ml.models", "ml.tracking"} <= set(MODULES)


def test_every_name_in_every_all_exists():
    problems, checked = [], 0
    for name in MODULES:
        module = importlib.import_module(name)
        names = getattr(module, "__all__", None)
        if names is None:
            continue
        checked += 1
        if len(names) != len(set(names)):
            problems.append(f"{name}.__all__ lists a name twice")
        missing = [n for n in names if not hasattr(module, n)]
        if missing:
            problems.append(f"{name}.__all__ names what {name} does not define: {missing}")
    assert checked >= 11  # at least every subpackage
    assert not problems, "\n".join(problems)
