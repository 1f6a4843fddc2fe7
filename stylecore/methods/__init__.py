"""Style-transfer methods behind one registry.

Every method is a plain function over ``(B, 3, H, W)`` tensors in [0, 1] in its
own module here (``wct``, ``adain``, ``fusion``, ``feature_match``, ``gatys``,
``color``, ``arbitrary``…), registered with a :class:`MethodSpec` that states its
parameters, the weight families it runs on and how to record provenance.

Example:
    >>> from stylecore.methods import available_methods, stylize
    >>> "color" in available_methods()
    True
    >>> stylize("color", torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)).shape
    torch.Size([1, 3, 8, 8])
"""

import torch  # noqa: F401  (doctests above use it)

from ._registry import (
    GridResult,
    MethodSpec,
    Param,
    available_methods,
    get_method,
    provenance_for,
    register_method,
    stylize,
    stylize_grid,
)

__all__ = [
    "GridResult",
    "MethodSpec",
    "Param",
    "available_methods",
    "get_method",
    "provenance_for",
    "register_method",
    "stylize",
    "stylize_grid",
]
