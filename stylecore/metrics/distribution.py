"""Set metrics: FID, KID and ArtFID over groups of images.

FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) compare Inception
pool-3 features of the candidate set with those of a reference set; ArtFID
(Wright & Ommer 2022) is ``(1 + mean LPIPS(output, content)) * (1 + FID(outputs,
styles))``. The features come from the standard FID Inception
(``pt_inception-2015-12-05-6726825d.pth``); ArtFID here uses that network too,
not the art-trained Inception of the ArtFID paper, and LPIPS-AlexNet.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..weights import MissingWeightsError, get_spec, resolve
from ._compute import ImageBatch, as_image_list, match_reference
from ._registry import (
    MetricSpec,
    MetricUnavailable,
    get_metric,
    missing_weights_reason,
    register_metric,
)

__all__ = [
    "KIDResult",
    "compute_set",
    "fid_from_features",
    "frechet_distance",
    "inception_features",
    "kid_from_features",
]

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


def frechet_distance(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` between two Gaussians.

    The trace of the matrix square root is computed as the sum of square roots
    of the eigenvalues of ``S1^(1/2) S2 S1^(1/2)`` (symmetric, so stable even
    when the covariances are singular), in float64.

    Args:
        mu1, mu2: ``(D,)`` means.
        sigma1, sigma2: ``(D, D)`` covariances (symmetric positive semi-definite).

    Returns:
        The Fréchet distance (>= 0 up to round-off).

    Example:
        >>> eye = torch.eye(2)
        >>> frechet_distance(torch.zeros(2), eye, torch.ones(2), eye)
        2.0
    """
    mu1, mu2, s1, s2 = (t.to(torch.float64) for t in (mu1, mu2, sigma1, sigma2))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.numel(), mu1.numel()):
        raise ValueError(f"shape mismatch: mu {tuple(mu1.shape)}/{tuple(mu2.shape)}, sigma {tuple(s1.shape)}/{tuple(s2.shape)}")
    w, v = torch.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v * w.clamp_min(0).sqrt()) @ v.T
    inner = root1 @ s2 @ root1
    tr_sqrt = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).pow(2).sum() + s1.trace() + s2.trace() - 2 * tr_sqrt)


def _check_features(f: torch.Tensor, name: str, minimum: int = 2) -> torch.Tensor:
    if f.dim() != 2 or f.shape[0] < minimum:
        raise ValueError(f"{name} must be (N, D) features with N >= {minimum}, got {tuple(f.shape)}")
    if not torch.isfinite(f).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return f.to(torch.float64)


def fid_from_features(features1: torch.Tensor, features2: torch.Tensor) -> float:
    """FID between two feature sets (means and unbiased covariances, as pytorch-fid).

    Args:
        features1: ``(N1, D)`` features, ``N1 >= 2``.
        features2: ``(N2, D)`` features, ``N2 >= 2``.

    Returns:
        The Fréchet distance of the fitted Gaussians.

    Raises:
        ValueError: fewer than two rows, differing D, or non-finite values.

    Example:
        >>> f = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
        >>> abs(fid_from_features(f, f)) < 1e-9
        True
    """
    a, b = _check_features(features1, "features1"), _check_features(features2, "features2")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} and {b.shape[1]}")
    return frechet_distance(a.mean(0), torch.cov(a.T), b.mean(0), torch.cov(b.T))


@dataclass(frozen=True)
class KIDResult:
    """Kernel Inception Distance over random subsets.

    Attributes:
        mean: mean unbiased MMD^2 over the subsets (the KID).
        std: standard deviation over the subsets.
        n_subsets: number of subsets drawn.
        subset_size: rows per subset from each set.
    """

    mean: float
    std: float
    n_subsets: int
    subset_size: int


def _mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m = x.shape[0]
    return (
        (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
        + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        - 2 * kxy.mean()
    )


def kid_from_features(
    features1: torch.Tensor,
    features2: torch.Tensor,
    *,
    subset_size: int = 1000,
    n_subsets: int = 100,
    rng: np.random.Generator | int | None = None,
) -> KIDResult:
    """KID: unbiased MMD^2 with the kernel ``k(x, y) = (x.y / D + 1)^3``.

    Each subset draws ``min(subset_size, N1, N2)`` rows without replacement
    from each set; when that is all rows of both sets, one subset suffices.

    Args:
        features1: ``(N1, D)``, ``N1 >= 2``.
        features2: ``(N2, D)``, ``N2 >= 2``.
        subset_size: rows per subset (1000 as in Binkowski et al.).
        n_subsets: subsets averaged.
        rng: generator or seed for the subsets.

    Returns:
        :class:`KIDResult`.

    Raises:
        ValueError: fewer than two rows, differing D, or non-finite values.

    Example:
        >>> f = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
        >>> kid_from_features(f, f + 1).mean > abs(kid_from_features(f, f).mean)
        True
    """
    a, b = _check_features(features1, "features1"), _check_features(features2, "features2")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} and {b.shape[1]}")
    m = min(subset_size, a.shape[0], b.shape[0])
    if m == a.shape[0] == b.shape[0]:
        n_subsets = 1
    gen = np.random.default_rng(rng)
    values = []
    for _ in range(n_subsets):
        ia = torch.from_numpy(gen.choice(a.shape[0], m, replace=False)).to(a.device)
        ib = torch.from_numpy(gen.choice(b.shape[0], m, replace=False)).to(b.device)
        values.append(float(_mmd2_unbiased(a[ia], b[ib])))
    arr = np.asarray(values)
    return KIDResult(float(arr.mean()), float(arr.std()), n_subsets, m)


@functools.lru_cache(maxsize=2)
def _inception(device: str) -> torch.nn.Module:
    from ..models.inception import fid_inception

    return fid_inception(device)


def _inception_unavailable() -> str:
    try:
        import pytorch_fid  # noqa: F401
    except ImportError:
        return "unavailable: the 'pytorch-fid' package is not installed (pip install pytorch-fid)"
    try:
        resolve("inception-fid")
    except MissingWeightsError:
        return missing_weights_reason(get_spec("inception-fid"))
    return ""


def inception_features(
    images: ImageBatch, *, device: str | torch.device = "cpu", batch_size: int = 16
) -> torch.Tensor:
    """FID Inception pool-3 features ``(N, 2048)`` of images in [0, 1].

    Raises:
        MetricUnavailable: the Inception weights or ``pytorch-fid`` are absent.
    """
    reason = _inception_unavailable()
    if reason:
        raise MetricUnavailable(reason)
    net = _inception(str(torch.device(device)))
    return _features(as_image_list(images, "images"), net, torch.device(device), batch_size)


def _features(items: list[torch.Tensor], fn: FeatureFn, device: torch.device, batch_size: int) -> torch.Tensor:
    out = []
    groups: dict[tuple, list[int]] = {}
    for i, x in enumerate(items):
        groups.setdefault(tuple(x.shape), []).append(i)
    order = []
    with torch.inference_mode():
        for idx in groups.values():
            for start in range(0, len(idx), batch_size):
                chunk = idx[start : start + batch_size]
                out.append(fn(torch.cat([items[i] for i in chunk]).to(device)).double().cpu())
                order.extend(chunk)
    feats = torch.cat(out)
    return feats[torch.tensor(np.argsort(order))]


def compute_set(
    names: str | Sequence[str],
    images: ImageBatch,
    references: ImageBatch,
    *,
    contents: ImageBatch | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    feature_extractor: FeatureFn | None = None,
    kid_subset_size: int = 1000,
    kid_subsets: int = 100,
    rng: np.random.Generator | int | None = 0,
) -> list[dict[str, Any]]:
    """Score a set of images against a reference set (FID, KID, ArtFID).

    Args:
        names: ``"fid"``, ``"kid"``, ``"artfid"`` (or one of them).
        images: candidate set: ``(N, 3, H, W)`` in [0, 1] or a list of
            ``(1, 3, H, W)``; at least 2.
        references: reference set (for ArtFID: the style images), at least 2.
        contents: for ArtFID, one content image per candidate (same size or
            same aspect ratio, see :func:`stylecore.metrics.compute`).
        device: where the networks run.
        batch_size: images per forward pass.
        feature_extractor: replaces the FID Inception (``(B, 3, H, W) ->
            (B, D)``); the version then ends in ``+custom-features``.
        kid_subset_size: KID subset size.
        kid_subsets: KID subsets.
        rng: seed or generator for the KID subsets.

    Returns:
        One dict per metric: ``{"name", "version", "value", "unavailable",
        "n_images", "n_references"}``; ``value`` is ``None`` with the reason in
        ``unavailable`` when weights or packages are missing.

    Raises:
        ValueError: unknown or per-image metric names, fewer than 2 images,
            ArtFID without contents, bad images.
    """
    if isinstance(names, str):
        names = [names]
    specs = [get_metric(n) for n in names]
    for spec in specs:
        if spec.kind != "set":
            raise ValueError(f"{spec.name!r} is a per-image metric: use compute()")
    imgs = as_image_list(images, "images")
    refs = as_image_list(references, "references")
    if len(imgs) < 2 or len(refs) < 2:
        raise ValueError(f"set metrics need at least 2 images per set, got {len(imgs)} and {len(refs)}")
    if any(s.name == "artfid" for s in specs) and contents is None:
        raise ValueError("metric 'artfid' needs contents (one content image per candidate)")
    dev = torch.device(device)

    reason = "" if feature_extractor is not None else _inception_unavailable()
    feats: tuple[torch.Tensor, torch.Tensor] | None = None

    def features() -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal feats
        if feats is None:
            fn = feature_extractor if feature_extractor is not None else _inception(str(dev))
            feats = (_features(imgs, fn, dev, batch_size), _features(refs, fn, dev, batch_size))
        return feats

    rows = []
    for spec in specs:
        version = spec.version + ("+custom-features" if feature_extractor is not None else "")
        value: float | None = None
        why = reason
        if not why and spec.name == "fid":
            value = fid_from_features(*features())
        elif not why and spec.name == "kid":
            value = kid_from_features(*features(), subset_size=kid_subset_size, n_subsets=kid_subsets, rng=rng).mean
        elif spec.name == "artfid":
            from .lpips import lpips_distance

            why = "; ".join(r for r in (reason, get_metric("lpips-alex").unavailable()) if r)
            if not why:
                cons = as_image_list(contents, "contents")  # type: ignore[arg-type]
                if len(cons) != len(imgs):
                    raise ValueError(f"contents has {len(cons)} images but images has {len(imgs)}")
                dists = [
                    float(lpips_distance(x.to(dev), match_reference(c, x, f"contents[{i}]").to(dev)))
                    for i, (x, c) in enumerate(zip(imgs, cons))
                ]
                value = (1 + float(np.mean(dists))) * (1 + fid_from_features(*features()))
        rows.append(
            {"name": spec.name, "version": version, "value": value, "unavailable": why,
             "n_images": len(imgs), "n_references": len(refs)}
        )
    return rows


def _artfid_unavailable() -> str:
    reasons = (_inception_unavailable(), get_metric("lpips-alex").unavailable())
    return "; ".join(r for r in reasons if r)


register_metric(
    MetricSpec(
        name="fid",
        base_version="1.0+pt_inception-2015-12-05",
        kind="set",
        higher_is_better=False,
        description="FID (Heusel et al. 2017) on FID-Inception pool-3 features, unbiased covariances.",
        availability=_inception_unavailable,
    )
)
register_metric(
    MetricSpec(
        name="kid",
        base_version="1.0+pt_inception-2015-12-05",
        kind="set",
        higher_is_better=False,
        description=(
            "KID (Binkowski et al. 2018): mean unbiased MMD^2, kernel (x.y/d + 1)^3, "
            "over random subsets of up to 1000, on FID-Inception features."
        ),
        availability=_inception_unavailable,
    )
)
register_metric(
    MetricSpec(
        name="artfid",
        base_version="1.0+pt_inception-2015-12-05+lpips-alex",
        kind="set",
        needs=("content", "style"),
        higher_is_better=False,
        description=(
            "ArtFID (Wright & Ommer 2022) = (1 + mean LPIPS-AlexNet(output, content)) * "
            "(1 + FID(outputs, styles)), with the standard FID Inception."
        ),
        availability=_artfid_unavailable,
    )
)
