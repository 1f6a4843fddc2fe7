"""Peak signal-to-noise ratio over all RGB pixels."""

from __future__ import annotations

import torch
from torch import nn

from ._common import check_pair
from ._registry import MetricSpec, register_metric

__all__ = ["PSNR", "psnr"]


def psnr(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """PSNR in dB, ``10 log10(1 / MSE)`` with data range 1, per image.

    The MSE is over all ``3 * H * W`` values, as
    ``skimage.metrics.peak_signal_noise_ratio(data_range=1)``; identical images
    give ``inf``.

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1].
        reference: same shape and range.

    Returns:
        ``(B,)`` PSNR in dB (``inf`` where the images are equal).

    Raises:
        TypeError, ShapeError, ValueError: bad input (shapes differ, NaN, …).

    Example:
        >>> x = torch.zeros(1, 3, 4, 4)
        >>> psnr(x, x + 0.1).round(decimals=3)
        tensor([20.])
    """
    check_pair(image, reference)
    diff = image.to(torch.float64) - reference.to(torch.float64)
    mse = diff.pow(2).mean(dim=(1, 2, 3))
    return (10 * torch.log10(1.0 / mse)).to(image.dtype)


class PSNR(nn.Module):
    """Module form of :func:`psnr`."""

    def forward(self, image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return psnr(image, reference)


register_metric(
    MetricSpec(
        name="psnr",
        base_version="1.0",
        needs=("content",),
        higher_is_better=True,
        description="PSNR in dB between image and content over RGB, data range 1 (inf when equal).",
        fn=lambda x, c, s: psnr(x, c),
    )
)
