"""What stylecore offers this process: methods with their parameter schemas.

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
