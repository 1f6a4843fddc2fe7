"""Input checks shared by every public function (shape, type, range, finiteness)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class ShapeError(ValueError):
    """A tensor does not have the shape a function needs."""


def check_tensor(x: object, name: str = "input") -> torch.Tensor:
    """Raise ``TypeError`` unless ``x`` is a floating-point tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def check_shape(x: torch.Tensor, dims: Sequence[str], name: str = "input") -> None:
    """Check ``x`` against named dimensions such as ``["B", "3", "H", "W"]``.

    A digit names a fixed size; any other name matches any size. The error
    states both the expected and the actual shape.
    """
    if x.dim() != len(dims):
        raise ShapeError(
            f"{name} must have shape ({', '.join(dims)}), got {tuple(x.shape)}"
        )
    for size, dim in zip(x.shape, dims):
        if dim.isdigit() and size != int(dim):
            raise ShapeError(
                f"{name} must have shape ({', '.join(dims)}), got {tuple(x.shape)}"
            )
    if x.numel() == 0:
        raise ShapeError(f"{name} is empty: shape {tuple(x.shape)}")


def check_image(x: object, name: str = "image", *, channels: int = 3) -> torch.Tensor:
    """Check a ``(B, C, H, W)`` float image batch in [0, 1] with no NaN or inf.

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ShapeError: wrong number of dimensions or channels, or empty.
        ValueError: non-finite values, or values outside [0, 1].

    Example:
        >>> check_image(torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 3, 8, 8])
    """
    t = check_tensor(x, name)
    check_shape(t, ["B", str(channels), "H", "W"], name)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    lo, hi = float(t.min()), float(t.max())
    # A small tolerance lets round-off from upstream ops through.
    if lo < -1e-4 or hi > 1 + 1e-4:
        raise ValueError(f"{name} must be in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
    return t


def check_same_shape(a: torch.Tensor, b: torch.Tensor, names: tuple[str, str]) -> None:
    """Raise ``ShapeError`` unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise ShapeError(
            f"{names[0]} and {names[1]} must have the same shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_range(value: float, name: str, low: float, high: float) -> float:
    """Raise ``ValueError`` unless ``low <= value <= high``."""
    if not (low <= float(value) <= high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return float(value)
