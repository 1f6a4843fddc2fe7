"""Helpers shared by metric modules: luma, Gaussian windows, input checks."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import check_image, check_same_shape

# ITU-R BT.601 luma weights with the digits MATLAB's rgb2gray uses (the
# inverse of its YIQ matrix), which Wang et al.'s ssim.m inputs go through.
BT601 = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def rgb_to_luma(image: torch.Tensor, *, quantize: bool = False) -> torch.Tensor:
    """BT.601 luma ``Y = 0.2989 R + 0.5870 G + 0.1140 B`` (MATLAB ``rgb2gray``).

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1].
        quantize: round Y to the nearest of 256 levels, as ``rgb2gray`` does
            on 8-bit images.

    Returns:
        ``(B, 1, H, W)`` luma in [0, 1].

    Example:
        >>> rgb_to_luma(torch.ones(1, 3, 2, 2)).shape
        torch.Size([1, 1, 2, 2])
    """
    w = torch.tensor(BT601, device=image.device, dtype=image.dtype).view(1, 3, 1, 1)
    y = (image * w).sum(1, keepdim=True)
    return torch.round(y * 255) / 255 if quantize else y


def gaussian_kernel1d(
    size: int, sigma: float, *, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Normalised sampled Gaussian of ``size`` taps (odd) and std ``sigma``."""
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def filter_valid(x: torch.Tensor, kernel1d: torch.Tensor) -> torch.Tensor:
    """Separable depthwise filtering keeping only the 'valid' region (no padding)."""
    c = x.shape[1]
    k = kernel1d.numel()
    x = F.conv2d(x, kernel1d.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, kernel1d.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def check_pair(image: torch.Tensor, reference: torch.Tensor) -> None:
    """Both are ``(B, 3, H, W)`` in [0, 1] with equal shapes, else raise."""
    check_image(image, "image")
    check_image(reference, "reference")
    check_same_shape(image, reference, ("image", "reference"))
