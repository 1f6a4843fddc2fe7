"""``compute``: score images with several metrics, batched, one row per value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .._checks import ShapeError, check_image
from ._registry import MetricSpec, MetricUnavailable, get_metric

ImageBatch = torch.Tensor | Sequence[torch.Tensor]

# A content reference whose aspect ratio is this close to the image's is
# resized to the image (outputs are often written at a smaller max side).
ASPECT_TOLERANCE = 0.01


def as_image_list(x: ImageBatch, name: str) -> list[torch.Tensor]:
    """A ``(B, 3, H, W)`` tensor or a list of ``(1, 3, H, W)`` tensors → list.

    Raises:
        TypeError, ShapeError, ValueError: not RGB float images in [0, 1], NaN,
            or an empty batch/list.
    """
    if isinstance(x, torch.Tensor):
        check_image(x, name)
        return list(x.split(1))
    if not isinstance(x, Sequence) or isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be a tensor or a list of tensors, got {type(x).__name__}")
    if len(x) == 0:
        raise ShapeError(f"{name} is empty")
    out = []
    for i, item in enumerate(x):
        check_image(item, f"{name}[{i}]")
        if item.shape[0] != 1:
            raise ShapeError(f"{name}[{i}] must have shape (1, 3, H, W), got {tuple(item.shape)}")
        out.append(item)
    return out


def match_reference(ref: torch.Tensor, image: torch.Tensor, name: str) -> torch.Tensor:
    """Resize a pixel-aligned reference to the image's size, or raise.

    A reference of the same size is returned unchanged. One whose aspect ratio
    agrees within 1 % is resized with antialiased bicubic interpolation (clamped
    to [0, 1]); any other size raises ``ShapeError`` rather than comparing
    misaligned pixels.
    """
    (h, w), (rh, rw) = image.shape[-2:], ref.shape[-2:]
    if (h, w) == (rh, rw):
        return ref
    if abs((w / h) / (rw / rh) - 1) > ASPECT_TOLERANCE:
        raise ShapeError(
            f"{name} has size {rh}x{rw} but the image is {h}x{w}: the aspect ratios "
            "differ, so pixels cannot be aligned (crop or resize it first)"
        )
    return F.interpolate(ref, size=(h, w), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def _refs(refs: ImageBatch | None, n: int, name: str) -> list[torch.Tensor] | None:
    if refs is None:
        return None
    items = as_image_list(refs, name)
    if len(items) == 1 and n > 1:
        items = items * n  # one reference for every image
    if len(items) != n:
        raise ShapeError(f"{name} has {len(items)} images but images has {n} (give 1 or {n})")
    return items


def compute(
    names: str | Sequence[str],
    images: ImageBatch,
    contents: ImageBatch | None = None,
    styles: ImageBatch | None = None,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
) -> list[dict[str, Any]]:
    """Score every image with every named metric.

    Images of equal size are batched together. A content reference must match
    its image's size; one of another size with the same aspect ratio (within
    1 %) is resized to the image (antialiased bicubic), otherwise the call
    raises. Style references may have any size (style metrics compare
    size-independent statistics). A single content or style image is used for
    every image. References that no requested metric needs are ignored.

    Args:
        names: metric names (see :func:`available_metrics`), or one name.
        images: ``(B, 3, H, W)`` in [0, 1], or a list of ``(1, 3, H, W)``.
        contents: content references, as ``images`` (needed by metrics whose
            ``needs`` has ``"content"``).
        styles: style references, likewise.
        device: where the networks and tensors run.
        batch_size: images per forward pass.

    Returns:
        One dict per (image index, metric), ordered by index then by ``names``:
        ``{"index", "name", "version", "value", "unavailable"}``; ``value`` is
        ``None`` and ``unavailable`` gives the reason (``"unavailable: <file>
        (fetch with: …)"``) when weights or packages are missing, else
        ``unavailable`` is ``""``.

    Raises:
        ValueError: unknown metric, a set metric, a missing reference, NaN or
            values outside [0, 1].
        ShapeError: grayscale or empty input, mismatched sizes or counts.

    Example:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> rows = compute(["psnr", "ssim"], x, contents=x)
        >>> [(r["index"], r["name"], r["value"]) for r in rows]
        [(0, 'psnr', inf), (0, 'ssim', 1.0), (1, 'psnr', inf), (1, 'ssim', 1.0)]
    """
    if isinstance(names, str):
        names = [names]
    if not names:
        raise ValueError("names is empty: give at least one metric name")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    specs = [get_metric(n) for n in names]
    for spec in specs:
        if spec.kind != "image":
            raise ValueError(f"{spec.name!r} is a set metric: use compute_set()")
    imgs = as_image_list(images, "images")
    n = len(imgs)
    for spec in specs:
        for need, given in (("content", contents), ("style", styles)):
            if need in spec.needs and given is None:
                raise ValueError(f"metric {spec.name!r} needs {need} images (pass {need}s=...)")
    # References no requested metric uses are neither checked nor converted.
    cons = _refs(contents, n, "contents") if any("content" in s.needs for s in specs) else None
    stys = _refs(styles, n, "styles") if any("style" in s.needs for s in specs) else None
    if cons is not None:
        cons = [match_reference(c, x, f"contents[{i}]") for i, (c, x) in enumerate(zip(cons, imgs))]

    table: dict[str, list[tuple[float | None, str]]] = {}
    for spec in specs:
        table[spec.name] = _run_metric(spec, imgs, cons, stys, torch.device(device), batch_size)
    rows = []
    for i in range(n):
        for spec in specs:
            value, reason = table[spec.name][i]
            rows.append(
                {"index": i, "name": spec.name, "version": spec.version, "value": value, "unavailable": reason}
            )
    return rows


def _run_metric(
    spec: MetricSpec,
    imgs: list[torch.Tensor],
    cons: list[torch.Tensor] | None,
    stys: list[torch.Tensor] | None,
    device: torch.device,
    batch_size: int,
) -> list[tuple[float | None, str]]:
    n = len(imgs)
    reason = spec.unavailable()
    if reason:
        return [(None, reason)] * n
    use_c = "content" in spec.needs
    use_s = "style" in spec.needs
    groups: dict[tuple, list[int]] = {}
    for i in range(n):
        key = (tuple(imgs[i].shape), tuple(stys[i].shape) if use_s and stys else None)
        groups.setdefault(key, []).append(i)
    out: list[tuple[float | None, str]] = [(None, "")] * n
    assert spec.fn is not None
    for idx in groups.values():
        for start in range(0, len(idx), batch_size):
            chunk = idx[start : start + batch_size]
            x = torch.cat([imgs[i] for i in chunk]).to(device)
            c = torch.cat([cons[i] for i in chunk]).to(device) if use_c and cons else None
            s = torch.cat([stys[i] for i in chunk]).to(device) if use_s and stys else None
            try:
                with torch.inference_mode():
                    values = spec.fn(x, c, s)
            except MetricUnavailable as exc:
                return [(None, str(exc))] * n
            for i, v in zip(chunk, values.detach().double().cpu().tolist()):
                out[i] = (float(v), "")
    return out
