"""What stylecore offers this process: methods with their parameter schemas, weight files present.

Read lazily (stylecore's method modules load torch models on demand), and
through ``sys.modules`` at call time so test stand-ins can replace them.
"""

from __future__ import annotations

from typing import Any


def method_specs() -> dict[str, Any]:
    """``name -> MethodSpec`` of every registered method (empty if ``stylecore.methods`` is absent)."""
    try:
        from stylecore.methods import available_methods, get_method
    except ImportError:
        return {}
    return {name: get_method(name) for name in available_methods()}


def family_weights(family: str) -> tuple[list[str], list[str]]:
    """``(present, missing)`` weight names of ``family`` (files looked up by name, not hashed here)."""
    if not family:
        return [], []
    try:
        from stylecore.weights.registry import list_specs, weights_dirs
    except ImportError:
        return [], []
    present, missing = [], []
    dirs = weights_dirs()
    for spec in list_specs(family):
        (present if any((d / spec.filename).is_file() for d in dirs) else missing).append(spec.name)
    return present, missing
