"""SSIM (Wang et al. 2004) and MS-SSIM (Wang, Simoncelli & Bovik 2003).

``ssim`` follows the reference ``ssim.m``: luminance from BT.601 ``rgb2gray``
(rounded to 8-bit levels as MATLAB does for 8-bit images), an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255 (here the
equivalent L = 1 on [0, 1] data), statistics over the 'valid' region only and no
automatic downsampling. It equals ``skimage.metrics.structural_similarity`` with
``gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=255`` on the same luma. ``ssim-rgb`` is the per-channel RGB mean.
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import check_pair, filter_valid, gaussian_kernel1d, rgb_to_luma
from ._registry import MetricSpec, register_metric

__all__ = ["MSSSIM", "SSIM", "MS_SSIM_WEIGHTS", "ms_ssim", "ssim", "ssim_rgb"]

# Wang et al. 2003, Table/Sec. 3: exponents of the five scales.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _ssim_parts(
    x: torch.Tensor,
    y: torch.Tensor,
    window_size: int,
    sigma: float,
    k1: float,
    k2: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel luminance and contrast-structure maps, 'valid' region only."""
    if min(x.shape[-2:]) < window_size:
        raise ValueError(
            f"SSIM needs images of at least {window_size}x{window_size} pixels, "
            f"got {tuple(x.shape[-2:])}"
        )
    # float64 keeps E[x^2] - E[x]^2 accurate; SSIM is cheap next to any network.
    work = torch.float64 if x.device.type != "mps" else torch.float32
    x, y = x.to(work), y.to(work)
    g = gaussian_kernel1d(window_size, sigma, device=x.device, dtype=work)
    # One depthwise pass over all five moment maps instead of five passes.
    mu_x, mu_y, exx, eyy, exy = filter_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1), g).chunk(5, dim=1)
    sxx = exx - mu_x**2
    syy = eyy - mu_y**2
    sxy = exy - mu_x * mu_y
    c1, c2 = k1**2, k2**2  # data range 1
    lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    return lum, cs


def ssim(
    image: torch.Tensor,
    reference: torch.Tensor,
    *,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    quantize: bool = True,
) -> torch.Tensor:
    """Mean SSIM on BT.601 luma, as in Wang et al.'s ``ssim.m`` (no downsampling).

    With the defaults it reproduces the published ``ssim.m`` values of the
    TID2013 calibration images to four decimals.

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1].
        reference: same shape and range.
        window_size: Gaussian window side (odd).
        sigma: Gaussian standard deviation.
        k1: luminance stabiliser, ``C1 = (k1 L)^2``.
        k2: contrast stabiliser, ``C2 = (k2 L)^2``.
        quantize: round the luma to 256 levels like MATLAB's ``rgb2gray``.

    Returns:
        ``(B,)`` SSIM in [-1, 1] (1 for identical images), in ``image.dtype``.

    Raises:
        TypeError, ShapeError, ValueError: bad input (not float, not RGB,
            shapes differ, NaN, outside [0, 1], smaller than the window).

    Example:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> ssim(x, x)
        tensor([1., 1.])
    """
    check_pair(image, reference)
    x = rgb_to_luma(image, quantize=quantize)
    y = rgb_to_luma(reference, quantize=quantize)
    lum, cs = _ssim_parts(x, y, window_size, sigma, k1, k2)
    return (lum * cs).mean(dim=(1, 2, 3)).to(image.dtype)


def ssim_rgb(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean of per-channel SSIM over R, G and B (same window and constants).

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1].
        reference: same shape and range.

    Returns:
        ``(B,)`` SSIM averaged over the three channels.

    Raises:
        ShapeError, ValueError: as :func:`ssim`.

    Example:
        >>> x = torch.rand(1, 3, 16, 16)
        >>> float(ssim_rgb(x, x))
        1.0
    """
    check_pair(image, reference)
    lum, cs = _ssim_parts(image, reference, 11, 1.5, 0.01, 0.03)
    return (lum * cs).mean(dim=(1, 2, 3)).to(image.dtype)


def ms_ssim(
    image: torch.Tensor,
    reference: torch.Tensor,
    *,
    weights: tuple[float, ...] = MS_SSIM_WEIGHTS,
) -> torch.Tensor:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003) on BT.601 luma.

    The luma is the 8-bit-rounded ``rgb2gray`` of :func:`ssim`.
    At scales 1..M-1 the mean contrast-structure term ``cs`` is taken, at
    scale M the mean full SSIM ``l * cs``; between scales the image is
    low-passed with a 2x2 box and subsampled by 2 (as ``msssim.m``). Each term
    is clamped at 0 before the fractional power so that it stays real.

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1]; the short side must be at
            least ``11 * 2 ** (M - 1)`` (176 px for the standard five scales).
        reference: same shape and range.
        weights: exponents per scale (the paper's five by default).

    Returns:
        ``(B,)`` MS-SSIM in [0, 1].

    Raises:
        ValueError: the image is too small for the number of scales.

    Example:
        >>> x = torch.rand(1, 3, 176, 176)
        >>> float(ms_ssim(x, x))
        1.0
    """
    check_pair(image, reference)
    levels = len(weights)
    need = 11 * 2 ** (levels - 1)
    if min(image.shape[-2:]) < need:
        raise ValueError(
            f"MS-SSIM with {levels} scales needs images of at least {need}x{need} "
            f"pixels, got {tuple(image.shape[-2:])}"
        )
    x, y = rgb_to_luma(image, quantize=True), rgb_to_luma(reference, quantize=True)
    out = torch.ones(image.shape[0], dtype=torch.float64, device=image.device)
    for level, w in enumerate(weights):
        lum, cs = _ssim_parts(x, y, 11, 1.5, 0.01, 0.03)
        term = (lum * cs if level == levels - 1 else cs).mean(dim=(1, 2, 3))
        out = out * term.clamp_min(0).pow(w)
        if level < levels - 1:
            x = nn.functional.avg_pool2d(x, 2, ceil_mode=False)
            y = nn.functional.avg_pool2d(y, 2, ceil_mode=False)
    return out.to(image.dtype)


class SSIM(nn.Module):
    """Module form of :func:`ssim`; ``forward(image, reference) -> (B,)``.

    Example:
        >>> x = torch.rand(1, 3, 16, 16)
        >>> float(SSIM()(x, x))
        1.0
    """

    def __init__(self, window_size: int = 11, sigma: float = 1.5) -> None:
        super().__init__()
        self.window_size, self.sigma = window_size, sigma

    def forward(self, image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return ssim(image, reference, window_size=self.window_size, sigma=self.sigma)


class MSSSIM(nn.Module):
    """Module form of :func:`ms_ssim`; ``forward(image, reference) -> (B,)``."""

    def __init__(self, weights: tuple[float, ...] = MS_SSIM_WEIGHTS) -> None:
        super().__init__()
        self.weights = tuple(weights)

    def forward(self, image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return ms_ssim(image, reference, weights=self.weights)


register_metric(
    MetricSpec(
        name="ssim",
        base_version="1.0",
        needs=("content",),
        higher_is_better=True,
        description=(
            "SSIM (Wang et al. 2004, ssim.m) between image and content on BT.601 "
            "luma rounded to 8 bits (MATLAB rgb2gray): Gaussian 11x11 sigma 1.5, K1 0.01, K2 0.03, L 255, valid "
            "region, no downsampling."
        ),
        fn=lambda x, c, s: ssim(x, c),
    )
)
register_metric(
    MetricSpec(
        name="ssim-rgb",
        base_version="1.0",
        needs=("content",),
        higher_is_better=True,
        description="Per-channel RGB SSIM (settings of 'ssim'), averaged over channels.",
        fn=lambda x, c, s: ssim_rgb(x, c),
    )
)
register_metric(
    MetricSpec(
        name="ms-ssim",
        base_version="1.0",
        needs=("content",),
        higher_is_better=True,
        description=(
            "MS-SSIM (Wang, Simoncelli & Bovik 2003) on BT.601 luma, five scales, "
            "weights 0.0448/0.2856/0.3001/0.2363/0.1333, 2x2 box downsampling; "
            "needs a short side of at least 176 px."
        ),
        fn=lambda x, c, s: ms_ssim(x, c),
        min_side=11 * 2 ** (len(MS_SSIM_WEIGHTS) - 1),
    )
)
