"""Patch feature matching ("style swap", Chen & Schmidt, 2016).

Every ``k × k`` patch of the content features is replaced by the style patch
with the highest normalised cross-correlation, ``⟨c, s⟩ / (|c| |s|)`` (the
content norm does not change the argmax, so only style patches are
normalised); overlapping patches are averaged, then the result is decoded.
Both the matching (a convolution with the normalised style patches) and the
reconstruction are chunked, so memory stays bounded on large images.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

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
    parse_levels,
    preserve_color,
    run_levels,
    unpad,
    weights_for,
)
from ._registry import MethodSpec, Param, register_method

__all__ = ["StyleSwap", "feature_match", "style_patches", "style_swap"]

PAPER_LEVELS = PaperLevels((3,), "Chen & Schmidt 2016")

# Largest intermediate (elements) of one chunk: 2**25 float32 values = 128 MB.
_MAX_ELEMENTS = 1 << 25


def style_patches(style: torch.Tensor, patch_size: int = 3, stride: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Patches of ``(1, C, h, w)`` style features and their unit-norm versions.

    Returns:
        ``(N, C, k, k)`` patches and ``(N, C, k, k)`` normalised patches.

    Example:
        >>> p, q = style_patches(torch.rand(1, 2, 4, 4))
        >>> tuple(p.shape), bool(torch.allclose(q.flatten(1).norm(dim=1), torch.ones(4)))
        ((4, 2, 3, 3), True)
    """
    if style.dim() != 4 or style.shape[0] != 1:
        raise ValueError(f"style features must have shape (1, C, h, w), got {tuple(style.shape)}")
    c = style.shape[1]
    if min(style.shape[-2:]) < patch_size:
        raise ValueError(f"style features {tuple(style.shape[-2:])} are smaller than patch_size {patch_size}")
    cols = F.unfold(style, patch_size, stride=stride)[0].transpose(0, 1)  # (N, C*k*k)
    patches = cols.reshape(-1, c, patch_size, patch_size)
    norms = cols.norm(dim=1).clamp_min(1e-8).view(-1, 1, 1, 1)
    return patches, patches / norms


def _swap_one(
    fc: torch.Tensor, patches: torch.Tensor, normed: torch.Tensor, stride: int, max_elements: int
) -> torch.Tensor:
    k = patches.shape[-1]
    h, w = fc.shape[-2:]
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    best = torch.full((oh * ow,), float("-inf"), dtype=fc.dtype, device=fc.device)
    best_idx = torch.zeros(oh * ow, dtype=torch.long, device=fc.device)
    chunk = max(1, max_elements // (oh * ow))
    for start in range(0, normed.shape[0], chunk):
        scores = F.conv2d(fc, normed[start : start + chunk], stride=stride)[0].flatten(1)
        value, idx = scores.max(dim=0)
        better = value > best  # strict: ties keep the earliest patch, as a global argmax would
        best = torch.where(better, value, best)
        best_idx = torch.where(better, idx + start, best_idx)
    c = fc.shape[1]
    out = torch.zeros_like(fc)
    ones = torch.ones(1, k * k, oh * ow, dtype=fc.dtype, device=fc.device)
    counts = F.fold(ones, (h, w), k, stride=stride)
    cc = max(1, max_elements // (oh * ow * k * k))
    for c0 in range(0, c, cc):
        sel = patches[best_idx, c0 : c0 + cc].flatten(1).transpose(0, 1).unsqueeze(0)
        out[:, c0 : c0 + cc] = F.fold(sel, (h, w), k, stride=stride)
    # Edge pixels a strided grid never covers keep their content features.
    covered = counts > 0
    return torch.where(covered, out / counts.clamp_min(1), fc)


def style_swap(
    content: torch.Tensor,
    style: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
    *,
    patch_size: int = 3,
    stride: int = 1,
    max_elements: int = _MAX_ELEMENTS,
) -> torch.Tensor:
    """Replace each content feature patch by its best-matching style patch.

    Args:
        content: ``(B, C, H, W)`` features.
        style: ``(1 or B, C, h, w)`` features, or ``(patches, normalised)`` from
            :func:`style_patches` (shared by the whole batch).
        patch_size: k; stride: step between patches.
        max_elements: bound on each chunk's intermediate size.

    Returns:
        ``(B, C, H, W)`` features.

    Example:
        >>> f = torch.rand(1, 4, 6, 6)
        >>> bool(torch.allclose(style_swap(f, f), f, atol=1e-6))
        True
    """
    if content.dim() != 4:
        raise ValueError(f"content features must have shape (B, C, H, W), got {tuple(content.shape)}")
    if min(content.shape[-2:]) < patch_size:
        raise ValueError(f"content features {tuple(content.shape[-2:])} are smaller than patch_size {patch_size}")
    outs = []
    for b in range(content.shape[0]):
        if isinstance(style, tuple):
            patches, normed = style
        else:
            patches, normed = style_patches(style[min(b, style.shape[0] - 1)].unsqueeze(0), patch_size, stride)
        outs.append(_swap_one(content[b : b + 1], patches, normed, stride, max_elements))
    return torch.cat(outs)


def feature_match(
    content: torch.Tensor,
    style: torch.Tensor,
    *,
    alpha: float = 1.0,
    levels: str | list[int] | None = None,
    patch_size: int = 3,
    stride: int = 1,
    family: str = "vgg19-wct",
    preserve_colors: bool = False,
) -> torch.Tensor:
    """Style swap at relu3_1 (default, as in the paper) or other levels, then decode.

    Args:
        content: ``(B, 3, H, W)`` in [0, 1].
        style: ``(1 or B, 3, Hs, Ws)`` in [0, 1].
        alpha: blend of swapped and content features.
        levels: level(s), coarse to fine (default relu3_1 if present).
        patch_size, stride: patch geometry in feature pixels.
        family: encoder/decoder family.
        preserve_colors: luminance-only transfer.

    Returns:
        ``(B, 3, H, W)`` in [0, 1].
    """
    check_image(content, "content")
    check_image(style, "style")
    check_style_batch(content, style)
    check_range(alpha, "alpha", 0.0, 1.0)
    lv = parse_levels(",".join(map(str, levels)) if isinstance(levels, list) else levels, family) if levels \
        else PAPER_LEVELS.on(family)  # fmt: skip
    feats = {level: load_encoder(family, level, content.device)(style) for level in lv}

    def transform(step: int, level: int, fc: torch.Tensor) -> torch.Tensor:
        return style_swap(fc, feats[level], patch_size=patch_size, stride=stride)

    x, size = pad_for(lv, content)
    out = unpad(run_levels(x, family, lv, [alpha] * len(lv), transform), size)
    return preserve_color(out, content) if preserve_colors else out


class StyleSwap(nn.Module):
    """Module form of :func:`feature_match`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.kwargs = kwargs

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return feature_match(content, style, **self.kwargs)


def _levels_of(family: str, p: dict[str, Any]) -> list[int]:
    return parse_levels(p["levels"], family, default=PAPER_LEVELS.on(family))


def _run(content: torch.Tensor, style: torch.Tensor, *, family: str, seed: int, **p: Any) -> torch.Tensor:
    lv = _levels_of(family, p)
    alphas = level_alphas(p["alpha"], p["level_alphas"], lv)
    x, size = pad_for(lv, content)
    feats = {level: load_encoder(family, level, content.device)(style) for level in lv}

    def transform(step: int, level: int, fc: torch.Tensor) -> torch.Tensor:
        return style_swap(fc, feats[level], patch_size=p["patch_size"], stride=p["stride"])

    out = unpad(run_levels(x, family, lv, alphas, transform), size)
    return preserve_color(out, content) if p["preserve_color"] else out


def _run_grid(contents: list[torch.Tensor], styles: list[torch.Tensor], *, family: str, seed: int, **p: Any):
    lv = _levels_of(family, p)
    k, stride = p["patch_size"], p["stride"]

    def transform(step: int, level: int, fc: torch.Tensor, preps: list[Any]) -> torch.Tensor:
        return torch.cat([style_swap(fc[n : n + 1], prep, patch_size=k, stride=stride)
                          for n, prep in enumerate(preps)])  # fmt: skip

    return grid_run(
        contents, styles, family, lv, level_alphas(p["alpha"], p["level_alphas"], lv),
        lambda level, fs: style_patches(fs, k, stride), transform, preserve=p["preserve_color"],
    )  # fmt: skip


SPEC = register_method(
    MethodSpec(
        name="feature-match",
        description="Patch feature matching / style swap (Chen & Schmidt 2016): nearest style patch by "
        "normalised cross-correlation",
        run=_run,
        run_grid=_run_grid,
        params={
            **family_params(levels_help="level(s) (default: relu3_1 as in Chen & Schmidt 2016)"),
            "patch_size": Param("int", 3, minimum=1, maximum=7, help="patch side in feature pixels"),
            "stride": Param("int", 1, minimum=1, maximum=4, help="step between style/content patches"),
        },
        families=FEATURE_FAMILIES,
        needs_style=True,
        weights=weights_for(_levels_of),
        levels=_levels_of,
        departure=departure_for(PAPER_LEVELS),
        notes=notes_for,
    )
)
