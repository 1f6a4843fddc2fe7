"""Universal style transfer by whitening and colouring transforms (Li et al., NeurIPS 2017).

At each level ``reluK_1`` (coarse to fine), the content features are whitened
(zero mean, identity covariance) and coloured with the style's covariance and
mean, blended with the content features by ``alpha`` and decoded; the next,
finer level starts from that image. Covariance eigendecompositions run in
float64 with a small ridge (``eps`` times the mean eigenvalue), so rank-deficient
ReLU features stay invertible without truncation.

In a grid, each style's eigendecompositions (every level) and each content's
first-level features and eigendecomposition are computed once, and the pairs of
one content are decoded as a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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

__all__ = [
    "WCT",
    "FeatureStats",
    "colour",
    "feature_stats",
    "transform_matrix",
    "wct",
    "wct_features",
    "whiten",
]

# Images per decoder batch in a grid, at 512x512: bounds peak memory (a relu1_1
# activation of one 512-px image is 64 MB in float32) while keeping GEMMs large.
_GRID_BATCH_PIXELS = 4 * 512 * 512

# Li et al. (2017) stylise coarse to fine over relu5_1 … relu1_1.
PAPER_LEVELS = PaperLevels((5, 4, 3, 2, 1), "Li et al. 2017")


@dataclass
class FeatureStats:
    """Mean and regularised covariance eigendecomposition of ``(B, C, N)`` features (float64).

    Attributes:
        mean: ``(B, C, 1)``.
        evals: ``(B, C)`` eigenvalues of the regularised covariance (> 0).
        evecs: ``(B, C, C)`` eigenvectors (columns).
    """

    mean: torch.Tensor
    evals: torch.Tensor
    evecs: torch.Tensor

    def whitening(self) -> torch.Tensor:
        """``(B, C, C)`` matrix ``E Λ^(-1/2) Eᵀ``."""
        return (self.evecs * self.evals.rsqrt().unsqueeze(-2)) @ self.evecs.transpose(-1, -2)

    def colouring(self) -> torch.Tensor:
        """``(B, C, C)`` matrix ``E Λ^(1/2) Eᵀ``."""
        return (self.evecs * self.evals.sqrt().unsqueeze(-2)) @ self.evecs.transpose(-1, -2)

    def select(self, index: torch.Tensor | Sequence[int]) -> FeatureStats:
        """Stats of the batch items ``index``."""
        index = torch.as_tensor(index, device=self.mean.device)
        return FeatureStats(self.mean[index], self.evals[index], self.evecs[index])


def _flat(features: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(features, torch.Tensor) or not features.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor")
    if features.dim() == 4:
        return features.flatten(2)
    if features.dim() == 3:
        return features
    raise ValueError(f"{name} must have shape (B, C, H, W) or (B, C, N), got {tuple(features.shape)}")


def feature_stats(features: torch.Tensor, *, eps: float = 1e-5) -> FeatureStats:
    """Mean and eigendecomposition of the covariance of ``(B, C, H, W)`` or ``(B, C, N)`` features.

    The covariance ``FFᵀ/(N-1)`` of the centred features (computed in their
    dtype) gets ``eps · trace/C`` added to its diagonal (a ridge relative to the
    feature scale), and is decomposed in float64.

    Raises:
        ValueError: bad shape or ``eps`` not in (0, 1].

    Example:
        >>> s = feature_stats(torch.randn(2, 4, 100))
        >>> tuple(s.mean.shape), tuple(s.evals.shape), tuple(s.evecs.shape)
        ((2, 4, 1), (2, 4), (2, 4, 4))
    """
    f = _flat(features, "features")
    if not 0 < eps <= 1:
        raise ValueError(f"eps must be in (0, 1], got {eps}")
    n = f.shape[-1]
    mean = f.mean(-1, keepdim=True)
    fc = f - mean
    # The (C x N)(N x C) product runs in the features' dtype: after centring its
    # round-off is far below the ridge, and a float64 GEMM over N = H*W would cost
    # as much as a convolution layer. The decomposition itself runs in float64.
    cov = (fc @ fc.transpose(-1, -2) / max(n - 1, 1)).double()
    mean = mean.double()
    c = cov.shape[-1]
    ridge = eps * (cov.diagonal(dim1=-2, dim2=-1).sum(-1) / c).clamp_min(1e-12)
    cov = cov + ridge.view(-1, 1, 1) * torch.eye(c, dtype=cov.dtype, device=cov.device)
    evals, evecs = torch.linalg.eigh(cov)
    return FeatureStats(mean, evals.clamp_min(1e-12 * float(ridge.min())), evecs)


def whiten(features: torch.Tensor, stats: FeatureStats | None = None, *, eps: float = 1e-5) -> torch.Tensor:
    """Whiten features: zero mean, identity covariance (up to the ridge).

    Args:
        features: ``(B, C, H, W)`` or ``(B, C, N)``.
        stats: the features' own stats (computed if ``None``).

    Returns:
        The same shape and dtype.

    Example:
        >>> scale = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64).view(1, 3, 1)
        >>> w = whiten(torch.randn(1, 3, 4000, dtype=torch.float64) * scale)
        >>> cov = w[0] @ w[0].T / 3999
        >>> bool(torch.allclose(cov, torch.eye(3, dtype=torch.float64), atol=1e-3))
        True
    """
    f = _flat(features, "features")
    stats = stats or feature_stats(f, eps=eps)
    out = stats.whitening() @ (f.double() - stats.mean)
    return out.to(features.dtype).view_as(features)


def colour(whitened: torch.Tensor, style: FeatureStats) -> torch.Tensor:
    """Give whitened features the style's covariance and mean.

    Args:
        whitened: ``(B, C, H, W)`` or ``(B, C, N)``, identity covariance.
        style: stats of the style features (batch 1 or B).

    Example:
        >>> s = feature_stats(torch.randn(1, 3, 500) * 3 + 1)
        >>> out = colour(torch.zeros(1, 3, 10), s)  # zero whitened features -> the style mean
        >>> bool(torch.allclose(out, s.mean.float().expand(1, 3, 10)))
        True
    """
    f = _flat(whitened, "whitened")
    out = style.colouring() @ f.double() + style.mean
    return out.to(whitened.dtype).view_as(whitened)


def transform_matrix(content: FeatureStats, style: FeatureStats) -> tuple[torch.Tensor, torch.Tensor]:
    """Affine map ``f ↦ T f + b`` equal to whitening with ``content`` then colouring with ``style``.

    Returns:
        ``T`` of shape ``(B, C, C)`` and ``b`` of shape ``(B, C, 1)``, float64.
    """
    t = style.colouring() @ content.whitening()
    return t, style.mean - t @ content.mean


def _apply(t: torch.Tensor, b: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
    flat = fc.flatten(2)
    out = torch.baddbmm(b.to(fc.dtype).expand(-1, -1, flat.shape[-1]), t.to(fc.dtype), flat)
    return out.view_as(fc)


def wct_features(
    content: torch.Tensor, style: torch.Tensor | FeatureStats, *, alpha: float = 1.0, eps: float = 1e-5
) -> torch.Tensor:
    """Whitening-colouring transform of content features towards style features.

    Args:
        content: ``(B, C, H, W)`` content features.
        style: ``(1 or B, C, Hs, Ws)`` style features, or their stats.
        alpha: blend with the content features (1 = full transfer).

    Returns:
        ``(B, C, H, W)``, same dtype as ``content``.

    Example:
        >>> fc, fs = torch.randn(1, 8, 20, 20), torch.randn(1, 8, 16, 16) * 2 + 3
        >>> out = wct_features(fc, fs)
        >>> round(float(out.mean()), 1) == round(float(fs.mean()), 1)
        True
    """
    check_range(alpha, "alpha", 0.0, 1.0)
    s = style if isinstance(style, FeatureStats) else feature_stats(style, eps=eps)
    t, b = transform_matrix(feature_stats(content, eps=eps), s)
    if t.shape[0] != content.shape[0]:
        t, b = t.expand(content.shape[0], -1, -1), b.expand(content.shape[0], -1, -1)
    out = _apply(t, b, content)
    return out if alpha == 1.0 else alpha * out + (1 - alpha) * content


def _masked_wct(
    fc: torch.Tensor, styles: list[FeatureStats], masks: torch.Tensor, eps: float
) -> torch.Tensor:
    """WCT per region: content pixels labelled k are whitened by their own stats, coloured by style k."""
    labels = F.interpolate(masks, size=fc.shape[-2:], mode="bilinear", align_corners=False).argmax(1)
    out = fc.clone()
    for b in range(fc.shape[0]):
        flat = fc[b].flatten(1)
        target = out[b].view(fc.shape[1], -1)
        for k, s in enumerate(styles):
            idx = (labels[b].flatten() == k).nonzero().squeeze(1)
            if idx.numel() < 2:
                continue
            sub = flat[:, idx].unsqueeze(0)
            t, bias = transform_matrix(feature_stats(sub, eps=eps), s.select([min(b, s.mean.shape[0] - 1)]))
            target[:, idx] = _apply(t, bias, sub.unsqueeze(-1)).squeeze(0).squeeze(-1)
    return out


def wct(
    content: torch.Tensor,
    style: torch.Tensor | Sequence[torch.Tensor],
    *,
    alpha: float = 1.0,
    levels: str | Sequence[int] | None = None,
    level_alphas_: Sequence[float] | None = None,
    family: str = "vgg19-wct",
    preserve_colors: bool = False,
    masks: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Multi-level WCT style transfer.

    Args:
        content: ``(B, 3, H, W)`` in [0, 1].
        style: ``(1 or B, 3, Hs, Ws)`` in [0, 1]; with ``masks``, a list of K
            such styles.
        alpha: strength at every level (0 = content, 1 = full transfer).
        levels: levels to run (e.g. ``[3, 2, 1]`` or ``"relu3_1,relu1_1"``);
            default the paper's relu5_1 … relu1_1 as far as ``family`` has them
            offline (:data:`PAPER_LEVELS`). Run coarse to fine; a level whose
            files are absent or corrupt raises, it is never skipped.
        level_alphas_: per-level strengths, coarse to fine (overrides ``alpha``).
        family: encoder/decoder family.
        preserve_colors: luminance-only transfer (keep the content colours).
        masks: ``(B, K, H, W)`` soft region weights; each content pixel takes
            the style whose mask is largest there (spatial control).
        eps: covariance ridge, relative to the mean eigenvalue.

    Returns:
        ``(B, 3, H, W)`` in [0, 1].

    Raises:
        ValueError: bad images, parameters, levels or masks.
        MissingWeightsError: a level's files are absent.
        ChecksumMismatchError: a level's file is corrupt.
    """
    check_image(content, "content")
    check_range(alpha, "alpha", 0.0, 1.0)
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    for k, s in enumerate(styles):
        check_image(s, "style" if len(styles) == 1 else f"style[{k}]")
        check_style_batch(content, s)
    if masks is not None:
        if masks.dim() != 4 or masks.shape[0] not in (1, content.shape[0]) or masks.shape[1] != len(styles):
            raise ValueError(
                f"masks must have shape (B, K={len(styles)}, H, W) with B 1 or {content.shape[0]}, "
                f"got {tuple(masks.shape)}"
            )
        if masks.shape[-2:] != content.shape[-2:]:
            raise ValueError(f"masks must match the content size {tuple(content.shape[-2:])}")
        masks = masks.to(content).expand(content.shape[0], -1, -1, -1)
    elif len(styles) != 1:
        raise ValueError("several styles need masks saying where each applies")
    lv = parse_levels(
        ",".join(map(str, levels)) if isinstance(levels, (list, tuple)) else levels, family,
        default=PAPER_LEVELS.on(family),
    )  # fmt: skip
    alphas = list(level_alphas_) if level_alphas_ is not None else [alpha] * len(lv)
    if len(alphas) != len(lv):
        raise ValueError(f"level_alphas needs {len(lv)} values, got {len(alphas)}")
    style_stats = {
        level: [feature_stats(load_encoder(family, level, content.device)(s), eps=eps) for s in styles]
        for level in lv
    }
    x, size = pad_for(lv, content)
    if masks is not None:
        masks, _ = pad_for(lv, masks)

    def transform(step: int, level: int, fc: torch.Tensor) -> torch.Tensor:
        if masks is not None:
            return _masked_wct(fc, style_stats[level], masks, eps)
        return wct_features(fc, style_stats[level][0], eps=eps)

    out = unpad(run_levels(x, family, lv, alphas, transform), size)
    return preserve_color(out, content) if preserve_colors else out


class WCT(nn.Module):
    """Module form of :func:`wct` (stores the configuration)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.kwargs = kwargs

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return wct(content, style, **self.kwargs)


def _levels_of(family: str, params: dict[str, Any]) -> list[int]:
    return parse_levels(params["levels"], family, default=PAPER_LEVELS.on(family))


def _run(content: torch.Tensor, style: Any, *, family: str, seed: int, **p: Any) -> torch.Tensor:
    lv = _levels_of(family, p)
    return wct(
        content, style, alpha=p["alpha"], levels=lv, level_alphas_=level_alphas(p["alpha"], p["level_alphas"], lv),
        family=family, preserve_colors=p["preserve_color"], eps=p["eps"],
    )  # fmt: skip


def _chunks(n: int, size: int) -> list[range]:
    return [range(i, min(n, i + size)) for i in range(0, n, size)]


def _run_grid(
    contents: list[torch.Tensor], styles: list[torch.Tensor], *, family: str, seed: int, **p: Any
) -> dict[tuple[int, int], torch.Tensor]:
    lv = _levels_of(family, p)
    alphas = level_alphas(p["alpha"], p["level_alphas"], lv)
    eps = p["eps"]
    dev = contents[0].device
    # Style side, once per style and level: mean and colouring matrix.
    style_stats: dict[int, FeatureStats] = {}
    for level in lv:
        enc = load_encoder(family, level, dev)
        per = [feature_stats(enc(s), eps=eps) for s in styles]
        style_stats[level] = FeatureStats(
            torch.cat([s.mean for s in per]), torch.cat([s.evals for s in per]), torch.cat([s.evecs for s in per])
        )
    colourings = {level: st.colouring() for level, st in style_stats.items()}
    out: dict[tuple[int, int], torch.Tensor] = {}
    for i, c in enumerate(contents):
        x, size = pad_for(lv, c)
        # Content side, once per content: first-level features and their whitening.
        fc0 = load_encoder(family, lv[0], dev)(x)
        c_stats = feature_stats(fc0, eps=eps)
        w0, m0 = c_stats.whitening(), c_stats.mean
        per_batch = max(1, _GRID_BATCH_PIXELS // (x.shape[-1] * x.shape[-2]))
        for js in _chunks(len(styles), per_batch):
            idx = torch.tensor(list(js), device=dev)

            def transform(
                step: int, level: int, fc: torch.Tensor,
                idx: torch.Tensor = idx, w0: torch.Tensor = w0, m0: torch.Tensor = m0,
            ) -> torch.Tensor:
                col, ms = colourings[level][idx], style_stats[level].mean[idx]
                if step == 0:
                    t = col @ w0
                    b = ms - t @ m0
                else:
                    t, b = transform_matrix(feature_stats(fc, eps=eps), style_stats[level].select(idx))
                return _apply(t, b, fc)

            batch = x.expand(len(js), -1, -1, -1)
            res = unpad(run_levels(batch, family, lv, alphas, transform, first_features=fc0), size)
            if p["preserve_color"]:
                res = preserve_color(res, c)
            for k, j in enumerate(js):
                out[(i, j)] = res[k : k + 1]
    return out


SPEC = register_method(
    MethodSpec(
        name="wct",
        description="Universal style transfer, multi-level whitening and colouring transforms (Li et al. 2017)",
        run=_run,
        run_grid=_run_grid,
        params={
            **family_params(levels_help="levels coarse to fine, e.g. '3,2,1' (default: relu5_1 … relu1_1 as in "
                            "Li et al. 2017, as far as the family has them offline)"),
            "eps": Param("float", 1e-5, minimum=1e-8, maximum=1.0,
                         help="covariance ridge relative to the mean eigenvalue"),
        },
        families=FEATURE_FAMILIES,
        needs_style=True,
        weights=weights_for(_levels_of),
        levels=_levels_of,
        departure=departure_for(PAPER_LEVELS),
        notes=notes_for,
        check=lambda p: level_alphas(p["alpha"], p["level_alphas"], [0] * len(p["level_alphas"].split(",")))
        if p["level_alphas"] else None,
    )
)
