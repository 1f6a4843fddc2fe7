"""Image input/output: any common file in, ``(1, 3, H, W)`` float in [0, 1] out.

Every method and metric reads images through here, so EXIF orientation, mode
conversion and resizing follow one rule everywhere.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from ._checks import check_image

ImageSource = Union[str, os.PathLike, bytes, Image.Image]  # noqa: UP007 (a runtime alias)

__all__ = [
    "ImageSource",
    "crop_to",
    "load_image",
    "open_image",
    "pad_to_multiple",
    "pil_to_tensor",
    "resize_max_side",
    "save_image",
    "tensor_to_pil",
]


def open_image(source: ImageSource) -> Image.Image:
    """Open ``source`` as an upright 8-bit RGB PIL image.

    EXIF orientation is applied; grayscale, palette, RGBA (composited on white),
    CMYK and 16-bit images become 8-bit RGB with values rescaled, not clipped.

    Raises:
        ValueError: the data is not a readable image (the message names the file).
    """
    label = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        if isinstance(source, Image.Image):
            return _to_rgb8(ImageOps.exif_transpose(source))
        opened = source if not isinstance(source, bytes) else io.BytesIO(source)
        with Image.open(opened) as img:
            img.load()
            return _to_rgb8(ImageOps.exif_transpose(img))
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot read image {label}: {exc}") from exc


def _to_rgb8(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit integer grayscale: rescale by the type's range, not by clipping.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, mode="L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        top = 1.0 if arr.max() <= 1.0 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255 + 0.5, 0, 255).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """8-bit RGB PIL image → ``(1, 3, H, W)`` float32 in [0, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0)


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """``(1, 3, H, W)`` or ``(3, H, W)`` float in [0, 1] → 8-bit RGB PIL image.

    Values are rounded to the nearest 8-bit level, not truncated.
    """
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"expected a single image, got a batch of {x.shape[0]}")
        x = x[0]
    check_image(x.unsqueeze(0), "image")
    arr = (x.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0).round()
    return Image.fromarray(arr.astype(np.uint8), mode="RGB")


def resize_max_side(x: torch.Tensor, max_side: int | None) -> torch.Tensor:
    """Resize so the longer side is ``max_side``, keeping the aspect ratio.

    Uses antialiased bicubic interpolation and clamps to [0, 1]. ``None`` or a
    larger ``max_side`` than the image leaves it unchanged when shrinking only
    is wanted; images are scaled up as well as down to reach ``max_side``.

    Example:
        >>> resize_max_side(torch.rand(1, 3, 40, 80), 20).shape
        torch.Size([1, 3, 10, 20])
    """
    if max_side is None:
        return x
    if max_side < 8:
        raise ValueError(f"max_side must be at least 8, got {max_side}")
    h, w = x.shape[-2:]
    scale = max_side / max(h, w)
    if scale == 1:
        return x
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def load_image(
    source: ImageSource, *, max_side: int | None = None, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Read an image file, bytes or PIL image as ``(1, 3, H, W)`` float in [0, 1].

    Args:
        source: path, raw bytes or a PIL image.
        max_side: if given, resize so the longer side equals it.
        device: where the tensor goes.

    Raises:
        ValueError: unreadable data; the message names the file.
    """
    return resize_max_side(pil_to_tensor(open_image(source)), max_side).to(device)


def save_image(x: torch.Tensor, path: str | os.PathLike) -> Path:
    """Write a ``(1, 3, H, W)`` image in [0, 1] as PNG (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tensor_to_pil(x).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad H and W up to a multiple of ``multiple``; returns the original size.

    Example:
        >>> y, size = pad_to_multiple(torch.rand(1, 3, 30, 17), 8)
        >>> tuple(y.shape), size
        ((1, 3, 32, 24), (30, 17))
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    # Reflection needs pad < size; fall back to replicate for tiny images.
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop the bottom/right padding added by :func:`pad_to_multiple`."""
    return x[..., : size[0], : size[1]]
