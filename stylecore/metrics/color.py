"""Colour metrics: colourfulness (Hasler & Suesstrunk 2003) and Lab histogram distance."""

from __future__ import annotations

import torch

from .._checks import ShapeError, check_image
from ._registry import MetricSpec, register_metric

__all__ = [
    "HIST_BINS",
    "ColorHistDistance",
    "Colorfulness",
    "color_hist_distance",
    "colorfulness",
    "lab_histogram",
    "rgb_to_lab",
]

# Bins of the joint Lab histogram: L over [0, 100], a and b over [-128, 128].
HIST_BINS = (8, 16, 16)
_LAB_RANGES = ((0.0, 100.0), (-128.0, 128.0), (-128.0, 128.0))

# sRGB (D65) -> XYZ and the D65 reference white, as in IEC 61966-2-1.
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_D65 = (0.95047, 1.0, 1.08883)


def colorfulness(image: torch.Tensor) -> torch.Tensor:
    """Colourfulness metric M^(3) of Hasler & Suesstrunk (2003).

    On sRGB values scaled to 0-255 (no linearisation), with opponent channels
    ``rg = R - G`` and ``yb = (R + G) / 2 - B``:
    ``M = sqrt(sigma_rg^2 + sigma_yb^2) + 0.3 sqrt(mu_rg^2 + mu_yb^2)``,
    means and population standard deviations over all pixels.

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1].

    Returns:
        ``(B,)`` colourfulness >= 0 (0 for gray images; the paper's scale runs
        from 0 "not colourful" to about 109 "extremely colourful").

    Raises:
        TypeError, ShapeError, ValueError: bad input.

    Example:
        >>> red = torch.zeros(1, 3, 4, 4); red[:, 0] = 1
        >>> round(float(colorfulness(red)), 2)
        85.53
    """
    check_image(image, "image")
    x = image.to(torch.float64) * 255.0
    rg = (x[:, 0] - x[:, 1]).flatten(1)
    yb = (0.5 * (x[:, 0] + x[:, 1]) - x[:, 2]).flatten(1)
    sigma = (rg.var(1, unbiased=False) + yb.var(1, unbiased=False)).sqrt()
    mu = (rg.mean(1) ** 2 + yb.mean(1) ** 2).sqrt()
    return (sigma + 0.3 * mu).to(image.dtype)


def rgb_to_lab(image: torch.Tensor) -> torch.Tensor:
    """sRGB (D65) to CIE L*a*b*.

    Args:
        image: ``(B, 3, H, W)`` sRGB in [0, 1].

    Returns:
        ``(B, 3, H, W)``: L in [0, 100], a and b roughly in [-128, 127].

    Example:
        >>> rgb_to_lab(torch.ones(1, 3, 1, 1)).flatten().round(decimals=2).abs()
        tensor([100.,   0.,   0.])
    """
    check_image(image, "image")
    x = image.to(torch.float64)
    lin = torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
    m = torch.tensor(_RGB_TO_XYZ, dtype=torch.float64, device=x.device)
    xyz = torch.einsum("ij,bjhw->bihw", m, lin)
    xyz = xyz / torch.tensor(_D65, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    eps = (6 / 29) ** 3
    f = torch.where(xyz > eps, xyz.clamp_min(eps) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lab = torch.stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], dim=1
    )
    return lab.to(image.dtype)


def lab_histogram(image: torch.Tensor, bins: tuple[int, int, int] = HIST_BINS) -> torch.Tensor:
    """Normalised joint Lab histogram per image.

    Bins split L over [0, 100] and a, b over [-128, 128] evenly; values on or
    beyond an outer edge go to the outermost bin.

    Args:
        image: ``(B, 3, H, W)`` sRGB in [0, 1].
        bins: bins for L, a and b.

    Returns:
        ``(B, bins[0] * bins[1] * bins[2])`` float64 histograms summing to 1.

    Example:
        >>> lab_histogram(torch.rand(2, 3, 8, 8)).sum(1)
        tensor([1., 1.], dtype=torch.float64)
    """
    lab = rgb_to_lab(image).to(torch.float64)
    index = torch.zeros(lab.shape[0], lab.shape[2] * lab.shape[3], dtype=torch.long, device=lab.device)
    for ch, (n, (lo, hi)) in enumerate(zip(bins, _LAB_RANGES)):
        idx = ((lab[:, ch].flatten(1) - lo) / (hi - lo) * n).floor().long().clamp(0, n - 1)
        index = index * n + idx
    total = bins[0] * bins[1] * bins[2]
    # One bincount over all images at once, offset per image (works on any device).
    offset = torch.arange(lab.shape[0], device=lab.device).unsqueeze(1) * total
    counts = torch.bincount((index + offset).flatten(), minlength=lab.shape[0] * total)
    hist = counts.view(lab.shape[0], total).to(torch.float64)
    return hist / hist.sum(1, keepdim=True)


def color_hist_distance(image: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Hellinger distance between joint Lab histograms of image and style.

    ``sqrt(1 - sum_k sqrt(p_k q_k))`` over the :data:`HIST_BINS` histogram.

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1].
        style: ``(B, 3, H', W')`` RGB in [0, 1], any size.

    Returns:
        ``(B,)`` distances in [0, 1] (0 for identical colour distributions).

    Raises:
        ShapeError, ValueError: bad input or differing batch sizes.

    Example:
        >>> x = torch.rand(1, 3, 8, 8)
        >>> float(color_hist_distance(x, x.flip(-1)))
        0.0
    """
    check_image(image, "image")
    check_image(style, "style")
    if image.shape[0] != style.shape[0]:
        raise ShapeError(f"style has {style.shape[0]} images but image has {image.shape[0]}")
    bc = (lab_histogram(image) * lab_histogram(style)).sqrt().sum(1)
    return (1 - bc).clamp_min(0).sqrt().to(image.dtype)



class Colorfulness(torch.nn.Module):
    """Module form of :func:`colorfulness`; ``forward(image) -> (B,)``.

    Example:
        >>> float(Colorfulness()(torch.full((1, 3, 4, 4), 0.5)))
        0.0
    """

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return colorfulness(image)


class ColorHistDistance(torch.nn.Module):
    """Module form of :func:`color_hist_distance`; ``forward(image, style) -> (B,)``."""

    def forward(self, image: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return color_hist_distance(image, style)


register_metric(
    MetricSpec(
        name="colorfulness",
        base_version="1.0",
        needs=(),
        higher_is_better=True,
        description=(
            "Hasler & Suesstrunk 2003 colourfulness M(3) of the image: "
            "sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2), rg = R - G, "
            "yb = (R + G)/2 - B on 0-255 sRGB, population SD."
        ),
        fn=lambda x, c, s: colorfulness(x),
    )
)
register_metric(
    MetricSpec(
        name="color-hist",
        base_version="1.0",
        needs=("style",),
        higher_is_better=False,
        description=(
            "Hellinger distance between joint CIE Lab histograms (D65; L 8 bins over "
            "[0, 100], a and b 16 bins over [-128, 128]) of image and style."
        ),
        fn=lambda x, c, s: color_hist_distance(x, s),
    )
)
