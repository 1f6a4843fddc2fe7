"""Image-quality, perceptual, style and distribution metrics.

Every metric has a stable lowercase name, a version string stored with each
value, and a check against an outside reference in the test suite.

Example:
    >>> from stylecore.metrics import compute, get_metric
    >>> get_metric("ssim").needs
    ('content',)
    >>> x = torch.rand(1, 3, 32, 32)
    >>> compute("psnr", x, contents=x)[0]["value"]
    inf
"""

import torch  # noqa: F401  (used by the module doctest)

from ._compute import ASPECT_TOLERANCE, compute
from ._registry import (
    MetricSpec,
    MetricUnavailable,
    available_metrics,
    get_metric,
    register_metric,
)
from .distribution import KIDResult, compute_set

__all__ = [
    "ASPECT_TOLERANCE",
    "KIDResult",
    "MetricSpec",
    "MetricUnavailable",
    "available_metrics",
    "compute",
    "compute_set",
    "get_metric",
    "register_metric",
]
