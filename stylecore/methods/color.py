"""Colour transfer baselines without weights: Reinhard et al. (2001) and histogram matching.

Reinhard, Ashikhmin, Gooch & Shirley, "Color Transfer between Images" (IEEE CG&A
2001) match per-channel mean and standard deviation in a decorrelated
opponent space; CIELAB (D65) is used here, as most later re-implementations do.
Histogram matching maps each RGB channel's empirical CDF onto the style's (the
rule of ``skimage.exposure.match_histograms``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._checks import check_image, check_range
from ._registry import MethodSpec, Param, register_method

__all__ = [
    "ColorTransfer",
    "color_transfer",
    "histogram_match",
    "lab_to_rgb",
    "reinhard_transfer",
    "rgb_to_lab",
]

# sRGB (D65) -> XYZ, IEC 61966-2-1 (the matrix scikit-image uses).
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_WHITE_D65 = (0.95047, 1.0, 1.08883)
_EPS_LAB = 0.008856  # (6/29)^3: the CIE switch from the cube root to the linear segment
_KAPPA = 7.787


def _srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0) + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


def rgb_to_lab(image: torch.Tensor) -> torch.Tensor:
    """sRGB ``(B, 3, H, W)`` in [0, 1] → CIELAB (D65): L in [0, 100], a/b about [-128, 127].

    Raises:
        ShapeError: not ``(B, 3, H, W)``.

    Example:
        >>> lab = rgb_to_lab(torch.ones(1, 3, 2, 2))
        >>> [round(float(v), 1) + 0.0 for v in lab[0, :, 0, 0]]
        [100.0, 0.0, 0.0]
    """
    check_image(image)
    m = torch.tensor(_RGB_TO_XYZ, dtype=image.dtype, device=image.device)
    white = torch.tensor(_WHITE_D65, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    xyz = torch.einsum("ij,bjhw->bihw", m, _srgb_to_linear(image)) / white
    f = torch.where(xyz > _EPS_LAB, xyz.clamp(min=_EPS_LAB) ** (1 / 3), _KAPPA * xyz + 16 / 116)
    fx, fy, fz = f.unbind(1)
    return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=1)


def lab_to_rgb(lab: torch.Tensor, *, clamp: bool = True) -> torch.Tensor:
    """CIELAB (D65) ``(B, 3, H, W)`` → sRGB, clamped to [0, 1] unless ``clamp=False``.

    Example:
        >>> x = torch.rand(1, 3, 4, 4)
        >>> bool(torch.allclose(lab_to_rgb(rgb_to_lab(x)), x, atol=1e-4))
        True
    """
    l_, a, b = lab.unbind(1)
    fy = (l_ + 16) / 116
    f = torch.stack((fy + a / 500, fy, fy - b / 200), dim=1)
    t = torch.where(f > 6 / 29, f**3, (f - 16 / 116) / _KAPPA)
    white = torch.tensor(_WHITE_D65, dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    m_inv = torch.linalg.inv(torch.tensor(_RGB_TO_XYZ, dtype=torch.float64)).to(lab)
    rgb = _linear_to_srgb(torch.einsum("ij,bjhw->bihw", m_inv, t * white))
    return rgb.clamp(0, 1) if clamp else rgb


def _broadcast_style(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    if style.shape[0] not in (1, content.shape[0]):
        raise ValueError(
            f"style batch must be 1 or match the content batch {content.shape[0]}, got {style.shape[0]}"
        )
    return style


def reinhard_transfer(
    content: torch.Tensor, style: torch.Tensor, *, strength: float = 1.0, eps: float = 1e-6
) -> torch.Tensor:
    """Match the per-channel Lab mean and standard deviation of ``content`` to ``style``.

    Args:
        content: ``(B, 3, H, W)`` in [0, 1].
        style: ``(1 or B, 3, Hs, Ws)`` in [0, 1].
        strength: 0 returns the content, 1 the full transfer (blended in Lab).
        eps: guards against a flat content channel.

    Returns:
        ``(B, 3, H, W)`` in [0, 1] (out-of-gamut colours are clamped).

    Raises:
        ValueError: ``strength`` outside [0, 1], or bad images.

    Example:
        >>> out = reinhard_transfer(torch.rand(2, 3, 8, 8), torch.rand(1, 3, 4, 4))
        >>> tuple(out.shape)
        (2, 3, 8, 8)
    """
    check_image(content, "content")
    check_image(style, "style")
    check_range(strength, "strength", 0.0, 1.0)
    _broadcast_style(content, style)
    c = rgb_to_lab(content)
    s = rgb_to_lab(style)
    mc, sc = c.mean(dim=(2, 3), keepdim=True), c.std(dim=(2, 3), keepdim=True, unbiased=False)
    ms, ss = s.mean(dim=(2, 3), keepdim=True), s.std(dim=(2, 3), keepdim=True, unbiased=False)
    matched = (c - mc) / (sc + eps) * ss + ms
    return lab_to_rgb(c + strength * (matched - c))


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """``numpy.interp`` for 1-D increasing ``xp``."""
    if xp.numel() == 1:
        return fp.expand_as(x).clone()
    idx = torch.searchsorted(xp, x).clamp(1, xp.numel() - 1)
    x0, x1 = xp[idx - 1], xp[idx]
    y0, y1 = fp[idx - 1], fp[idx]
    w = ((x - x0) / (x1 - x0)).clamp(0, 1)
    return y0 + w * (y1 - y0)


def histogram_match(content: torch.Tensor, style: torch.Tensor, *, strength: float = 1.0) -> torch.Tensor:
    """Map each RGB channel's histogram of ``content`` onto ``style``'s.

    Equal content values map to equal outputs: each distinct value goes to the
    style quantile at its cumulative frequency (linear interpolation between
    the style's distinct values), as ``skimage.exposure.match_histograms``.

    Args:
        content: ``(B, 3, H, W)`` in [0, 1].
        style: ``(1 or B, 3, Hs, Ws)`` in [0, 1].
        strength: blend between the content (0) and the matched image (1).

    Returns:
        ``(B, 3, H, W)`` in [0, 1].

    Example:
        >>> c = torch.linspace(0, 1, 16).view(1, 1, 4, 4).expand(1, 3, 4, 4)
        >>> out = histogram_match(c, torch.full((1, 3, 2, 2), 0.25))
        >>> float(out.min()), float(out.max())
        (0.25, 0.25)
    """
    check_image(content, "content")
    check_image(style, "style")
    check_range(strength, "strength", 0.0, 1.0)
    _broadcast_style(content, style)
    out = torch.empty_like(content)
    for b in range(content.shape[0]):
        sb = style[b if style.shape[0] > 1 else 0]
        for ch in range(3):
            src = content[b, ch].reshape(-1)
            values, inverse, counts = torch.unique(src, return_inverse=True, return_counts=True)
            src_q = torch.cumsum(counts, 0).to(content.dtype) / src.numel()
            t_values, t_counts = torch.unique(sb[ch].reshape(-1), return_counts=True)
            t_q = torch.cumsum(t_counts, 0).to(content.dtype) / sb[ch].numel()
            out[b, ch] = _interp(src_q, t_q, t_values)[inverse].view_as(content[b, ch])
    return (content + strength * (out - content)).clamp(0, 1)


def color_transfer(
    content: torch.Tensor, style: torch.Tensor, *, mode: str = "reinhard", strength: float = 1.0
) -> torch.Tensor:
    """Colour transfer by ``mode`` ``"reinhard"`` (Lab statistics) or ``"histogram"``.

    Raises:
        ValueError: unknown ``mode``.

    Example:
        >>> color_transfer(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), mode="histogram").shape
        torch.Size([1, 3, 8, 8])
    """
    if mode == "reinhard":
        return reinhard_transfer(content, style, strength=strength)
    if mode == "histogram":
        return histogram_match(content, style, strength=strength)
    raise ValueError(f"mode must be 'reinhard' or 'histogram', got {mode!r}")


class ColorTransfer(nn.Module):
    """Module form of :func:`color_transfer`.

    Example:
        >>> ColorTransfer("histogram")(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 3, 8, 8])
    """

    def __init__(self, mode: str = "reinhard", strength: float = 1.0) -> None:
        super().__init__()
        self.mode, self.strength = mode, strength

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return color_transfer(content, style, mode=self.mode, strength=self.strength)


def _run(content: torch.Tensor, style: torch.Tensor, *, family: str, seed: int, **params: Any) -> torch.Tensor:
    return color_transfer(content, style, mode=params["mode"], strength=params["strength"])


SPEC = register_method(
    MethodSpec(
        name="color",
        description="Colour transfer baseline: Reinhard et al. 2001 (Lab statistics) or histogram matching",
        run=_run,
        params={
            "mode": Param("choice", "reinhard", choices=("reinhard", "histogram"),
                          help="reinhard: match Lab mean/std; histogram: match each RGB channel's CDF"),
            "strength": Param("float", 1.0, minimum=0.0, maximum=1.0,
                              help="0 keeps the content colours, 1 is the full transfer"),
        },
        families=("",),
        needs_style=True,
    )
)
