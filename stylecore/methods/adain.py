"""Adaptive instance normalisation (Huang & Belongie, ICCV 2017).

``AdaIN(x, y) = σ(y) (x − μ(x)) / σ(x) + μ(y)`` per channel, at one level
(relu4_1 in the paper) or coarse to fine over several, with strength ``alpha``
and interpolation between several styles (a convex combination of their AdaIN
outputs, as in the paper's Fig. 8).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .._checks import check_image, check_range
from ..models.autoencoder import load_encoder
from ._common import (
    PaperLevels,
    check_style_batch,
    departure_for,
    family_params,
    grid_run,
    level_alphas,
    notes_for,
    pad_for,
    parse_floats,
    parse_levels,
    preserve_color,
    run_levels,
    unpad,
    weights_for,
)
from ._registry import MethodSpec, Param, register_method

__all__ = ["AdaIN", "adain", "adain_features", "channel_stats"]

PAPER_LEVELS = PaperLevels((4,), "Huang & Belongie 2017")


def channel_stats(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation ``sqrt(var + eps)`` of ``(B, C, H, W)`` features.

    Returns:
        Two ``(B, C, 1, 1)`` tensors.

    Example:
        >>> m, s = channel_stats(torch.ones(1, 2, 3, 3))
        >>> m.flatten().tolist(), [round(v, 4) for v in s.flatten().tolist()]
        ([1.0, 1.0], [0.0032, 0.0032])
    """
    if features.dim() != 4:
        raise ValueError(f"features must have shape (B, C, H, W), got {tuple(features.shape)}")
    var = features.var(dim=(2, 3), keepdim=True, unbiased=False)
    return features.mean(dim=(2, 3), keepdim=True), (var + eps).sqrt()


def adain_features(
    content: torch.Tensor,
    style: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
    *,
    alpha: float = 1.0,
    eps: float = 1e-5,
) -> torch.Tensor:
    """AdaIN of ``(B, C, H, W)`` content features with ``(1 or B, C, h, w)`` style features.

    ``style`` may also be its precomputed ``(mean, std)`` from :func:`channel_stats`.

    Example:
        >>> fc, fs = torch.randn(2, 4, 8, 8), torch.randn(1, 4, 5, 5) * 3 + 2
        >>> out = adain_features(fc, fs, eps=0.0)
        >>> bool(torch.allclose(out.mean((2, 3)), fs.mean((2, 3)).expand(2, 4), atol=1e-5))
        True
    """
    check_range(alpha, "alpha", 0.0, 1.0)
    mc, sc = channel_stats(content, eps)
    ms, ss = style if isinstance(style, tuple) else channel_stats(style, eps)
    out = (content - mc) / sc * ss + ms
    return out if alpha == 1.0 else alpha * out + (1 - alpha) * content


def adain(
    content: torch.Tensor,
    style: torch.Tensor | Sequence[torch.Tensor],
    *,
    alpha: float = 1.0,
    levels: str | Sequence[int] | None = None,
    level_alphas_: Sequence[float] | None = None,
    style_weights: Sequence[float] | None = None,
    family: str = "vgg19-cd16x",
    preserve_colors: bool = False,
) -> torch.Tensor:
    """AdaIN style transfer.

    Args:
        content: ``(B, 3, H, W)`` in [0, 1].
        style: ``(1 or B, 3, Hs, Ws)`` in [0, 1], or a list of K styles to interpolate.
        alpha: strength (0 = content, 1 = full transfer).
        levels: levels coarse to fine; default relu4_1 if present, else the deepest.
        level_alphas_: per-level strengths (overrides ``alpha``).
        style_weights: K non-negative weights for a list of styles (normalised to sum 1;
            default equal).
        family: encoder/decoder family.
        preserve_colors: luminance-only transfer.

    Returns:
        ``(B, 3, H, W)`` in [0, 1].

    Raises:
        ValueError: bad images or parameters.
        MissingWeightsError: the family's files are absent.
    """
    check_image(content, "content")
    check_range(alpha, "alpha", 0.0, 1.0)
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    for k, s in enumerate(styles):
        check_image(s, "style" if len(styles) == 1 else f"style[{k}]")
        check_style_batch(content, s)
    w = _normalised_weights(style_weights, len(styles))
    if isinstance(levels, (list, tuple)):
        lv = parse_levels(",".join(map(str, levels)), family)
    else:
        lv = parse_levels(levels, family, default=PAPER_LEVELS.on(family))
    alphas = list(level_alphas_) if level_alphas_ is not None else [alpha] * len(lv)
    stats = {
        level: [channel_stats(load_encoder(family, level, content.device)(s)) for s in styles] for level in lv
    }

    def transform(step: int, level: int, fc: torch.Tensor) -> torch.Tensor:
        return sum(wk * adain_features(fc, st) for wk, st in zip(w, stats[level]))  # type: ignore[return-value]

    x, size = pad_for(lv, content)
    out = unpad(run_levels(x, family, lv, alphas, transform), size)
    return preserve_color(out, content) if preserve_colors else out


def _normalised_weights(weights: Sequence[float] | None, k: int) -> list[float]:
    if weights is None:
        return [1.0 / k] * k
    if len(weights) != k:
        raise ValueError(f"style_weights needs {k} values (one per style), got {len(weights)}")
    if any(v < 0 for v in weights) or sum(weights) <= 0:
        raise ValueError(f"style_weights must be non-negative with a positive sum, got {list(weights)}")
    total = float(sum(weights))
    return [float(v) / total for v in weights]


class AdaIN(nn.Module):
    """Module form of :func:`adain`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.kwargs = kwargs

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return adain(content, style, **self.kwargs)


def _levels_of(family: str, p: dict[str, Any]) -> list[int]:
    return parse_levels(p["levels"], family, default=PAPER_LEVELS.on(family))


def _run(content: torch.Tensor, style: Any, *, family: str, seed: int, **p: Any) -> torch.Tensor:
    lv = _levels_of(family, p)
    k = len(style) if isinstance(style, (list, tuple)) else 1
    weights = parse_floats(p["style_weights"], "style_weights", k, low=0.0, high=float("inf"))
    return adain(
        content, style, alpha=p["alpha"], levels=lv, level_alphas_=level_alphas(p["alpha"], p["level_alphas"], lv),
        style_weights=weights, family=family, preserve_colors=p["preserve_color"],
    )  # fmt: skip


def _run_grid(contents: list[torch.Tensor], styles: list[torch.Tensor], *, family: str, seed: int, **p: Any):
    lv = _levels_of(family, p)

    def transform(step: int, level: int, fc: torch.Tensor, preps: list[Any]) -> torch.Tensor:
        ms = torch.cat([m for m, _ in preps])
        ss = torch.cat([s for _, s in preps])
        return adain_features(fc, (ms, ss))

    return grid_run(
        contents, styles, family, lv, level_alphas(p["alpha"], p["level_alphas"], lv),
        lambda level, fs: channel_stats(fs), transform, preserve=p["preserve_color"],
    )  # fmt: skip


SPEC = register_method(
    MethodSpec(
        name="adain",
        description="Adaptive instance normalisation (Huang & Belongie 2017), single or multi-level",
        run=_run,
        run_grid=_run_grid,
        params={
            **family_params(levels_help="levels coarse to fine (default: relu4_1 as in Huang & Belongie 2017)"),
            "style_weights": Param("str", "", help="weights for interpolating several styles, e.g. '0.7,0.3'"),
        },
        # The distilled family is the default: it is the one with relu4_1 offline (the paper's level).
        families=("vgg19-cd16x", "vgg19-wct", "vgg19-adain"),
        needs_style=True,
        weights=weights_for(_levels_of),
        levels=_levels_of,
        departure=departure_for(PAPER_LEVELS),
        notes=notes_for,
    )
)
