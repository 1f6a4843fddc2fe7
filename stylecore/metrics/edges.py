"""Edge-structure preservation between a stylised image and its content image."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import check_pair, rgb_to_luma
from ._registry import MetricSpec, register_metric

__all__ = ["EdgePreservation", "edge_preservation", "sobel_magnitude"]


def sobel_magnitude(image: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of the BT.601 luma, 'valid' region (no padding).

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1], H and W at least 3.

    Returns:
        ``(B, 1, H - 2, W - 2)`` magnitudes ``sqrt(gx^2 + gy^2)``.

    Example:
        >>> sobel_magnitude(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 1, 6, 6])
    """
    y = rgb_to_luma(image)
    k = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]], device=y.device, dtype=y.dtype)
    gx = F.conv2d(y, k.view(1, 1, 3, 3))
    gy = F.conv2d(y, k.t().reshape(1, 1, 3, 3))
    return (gx.pow(2) + gy.pow(2)).sqrt()


def edge_preservation(image: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of the Sobel gradient magnitudes of image and content.

    1 when the edge maps are proportional, about 0 when unrelated; 0 when
    either image has no edges at all (a constant gradient map).

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1].
        content: same shape and range.

    Returns:
        ``(B,)`` correlations in [-1, 1].

    Raises:
        ShapeError, ValueError: bad or mismatched input.

    Example:
        >>> x = torch.rand(1, 3, 16, 16)
        >>> edge_preservation(x, x).round(decimals=4)
        tensor([1.])
    """
    check_pair(image, content)
    a = sobel_magnitude(image.to(torch.float64)).flatten(1)
    b = sobel_magnitude(content.to(torch.float64)).flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    denom = (a.pow(2).sum(1) * b.pow(2).sum(1)).sqrt()
    r = torch.where(denom > 1e-12, (a * b).sum(1) / denom.clamp_min(1e-12), torch.zeros_like(denom))
    return r.to(image.dtype)



class EdgePreservation(torch.nn.Module):
    """Module form of :func:`edge_preservation`; ``forward(image, content) -> (B,)``."""

    def forward(self, image: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        return edge_preservation(image, content)


register_metric(
    MetricSpec(
        name="edge-preservation",
        base_version="1.0",
        needs=("content",),
        higher_is_better=True,
        description=(
            "Pearson correlation between Sobel gradient magnitudes of the BT.601 luma "
            "of image and content (valid region); 0 when either has no edges."
        ),
        fn=lambda x, c, s: edge_preservation(x, c),
    )
)
