"""Feature fusion: a weighted blend of content and style features at one level, decoded.

``f = (1 − α) f_c + α Σ_k w_k resize(f_s,k)``, where each style's feature map is
resized (bilinear) to the content's. The simplest feature-space combination; it
keeps the content layout and mixes in the style's local texture and colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .._checks import check_image, check_range
from ..models.autoencoder import load_encoder
from ._common import (
    FEATURE_FAMILIES,
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

__all__ = ["fuse_features", "fusion"]

PAPER_LEVELS = PaperLevels((4,), "Huang & Belongie 2017 (AdaIN, whose level fusion follows)")


def fuse_features(
    content: torch.Tensor, styles: Sequence[torch.Tensor], *, weights: Sequence[float] | None = None
) -> torch.Tensor:
    """Weighted mean of ``(1 or B, C, h, w)`` style features resized to the ``(B, C, H, W)`` content's.

    The content features are not part of the mean; blend with ``alpha`` after.

    Example:
        >>> fuse_features(torch.rand(2, 4, 8, 8), [torch.ones(1, 4, 3, 3)]).shape
        torch.Size([2, 4, 8, 8])
    """
    if not styles:
        raise ValueError("fuse_features needs at least one style feature map")
    w = [1.0 / len(styles)] * len(styles) if weights is None else [float(v) for v in weights]
    if len(w) != len(styles):
        raise ValueError(f"weights needs {len(styles)} values, got {len(w)}")
    total = sum(w)
    if total <= 0 or min(w) < 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {w}")
    out = torch.zeros_like(content)
    for wk, fs in zip(w, styles):
        resized = F.interpolate(fs, size=content.shape[-2:], mode="bilinear", align_corners=False)
        out = out + (wk / total) * resized
    return out


def fusion(
    content: torch.Tensor,
    style: torch.Tensor | Sequence[torch.Tensor],
    *,
    alpha: float = 0.5,
    levels: str | Sequence[int] | None = None,
    style_weights: Sequence[float] | None = None,
    family: str = "vgg19-wct",
    preserve_colors: bool = False,
) -> torch.Tensor:
    """Feature fusion of content and one or several styles.

    Args:
        content: ``(B, 3, H, W)`` in [0, 1].
        style: ``(1 or B, 3, Hs, Ws)`` in [0, 1], or a list of styles to fuse.
        alpha: weight of the style features (0 = content only).
        levels: the level(s), coarse to fine (default relu4_1 or the deepest present).
        style_weights: weights of several styles (default equal).
        family: encoder/decoder family.
        preserve_colors: luminance-only transfer.

    Returns:
        ``(B, 3, H, W)`` in [0, 1].
    """
    check_image(content, "content")
    check_range(alpha, "alpha", 0.0, 1.0)
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    for k, s in enumerate(styles):
        check_image(s, "style" if len(styles) == 1 else f"style[{k}]")
        check_style_batch(content, s)
    if isinstance(levels, (list, tuple)):
        lv = parse_levels(",".join(map(str, levels)), family)
    else:
        lv = parse_levels(levels, family, default=PAPER_LEVELS.on(family))
    feats = {level: [load_encoder(family, level, content.device)(s) for s in styles] for level in lv}

    def transform(step: int, level: int, fc: torch.Tensor) -> torch.Tensor:
        return fuse_features(fc, feats[level], weights=style_weights)

    x, size = pad_for(lv, content)
    out = unpad(run_levels(x, family, lv, [alpha] * len(lv), transform), size)
    return preserve_color(out, content) if preserve_colors else out


def _levels_of(family: str, p: dict[str, Any]) -> list[int]:
    return parse_levels(p["levels"], family, default=PAPER_LEVELS.on(family))


def _run(content: torch.Tensor, style: Any, *, family: str, seed: int, **p: Any) -> torch.Tensor:
    k = len(style) if isinstance(style, (list, tuple)) else 1
    weights = parse_floats(p["style_weights"], "style_weights", k, low=0.0, high=float("inf"))
    lv = _levels_of(family, p)
    alphas = level_alphas(p["alpha"], p["level_alphas"], lv)
    if len(set(alphas)) > 1:
        raise ValueError("fusion takes one alpha for all levels; leave 'level_alphas' empty")
    return fusion(content, style, alpha=alphas[0], levels=lv, style_weights=weights, family=family,
                  preserve_colors=p["preserve_color"])  # fmt: skip


def _run_grid(contents: list[torch.Tensor], styles: list[torch.Tensor], *, family: str, seed: int, **p: Any):
    lv = _levels_of(family, p)

    def transform(step: int, level: int, fc: torch.Tensor, preps: list[Any]) -> torch.Tensor:
        return torch.cat(
            [fuse_features(fc[k : k + 1], [fs]) for k, fs in enumerate(preps)]
        )

    return grid_run(
        contents, styles, family, lv, level_alphas(p["alpha"], p["level_alphas"], lv),
        lambda level, fs: fs, transform, preserve=p["preserve_color"],
    )  # fmt: skip


SPEC = register_method(
    MethodSpec(
        name="fusion",
        description="Feature fusion: blend content and style features at a level and decode",
        run=_run,
        run_grid=_run_grid,
        params={
            **family_params(levels_help="level(s) (default: relu4_1, the level of AdaIN)", alpha_default=0.5),
            "style_weights": Param("str", "", help="weights for fusing several styles, e.g. '0.5,0.5'"),
        },
        families=FEATURE_FAMILIES,
        needs_style=True,
        weights=weights_for(_levels_of),
        levels=_levels_of,
        departure=departure_for(PAPER_LEVELS),
        notes=notes_for,
    )
)
