"""ST-LPIPS: shift-tolerant learned perceptual distance (Ghildyal & Liu 2022)."""

from __future__ import annotations

import functools

import torch

from ..models.stlpips_alex import STLPIPSAlex, stlpips_alex
from ._registry import MetricSpec, register_metric, weights_availability

__all__ = ["st_lpips"]


@functools.lru_cache(maxsize=4)
def _model(device: str) -> STLPIPSAlex:
    return stlpips_alex(device)


def st_lpips(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """ST-LPIPS (AlexNet, shift-tolerant, weights ``stlpips-alex``) per image.

    The network is loaded once per process and device.

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1], H and W at least 32.
        reference: same shape and range.

    Returns:
        ``(B,)`` distances >= 0 (0 for identical images; about 0.7 for
        unrelated photos).

    Raises:
        MissingWeightsError: ``stlpips_alex_shift_tolerant.pth`` is absent.
        ShapeError, ValueError: bad or mismatched input.
    """
    net = _model(str(image.device))
    with torch.inference_mode():
        return net(image.float(), reference.float()).to(image.dtype)


register_metric(
    MetricSpec(
        name="st-lpips",
        base_version="1.0",
        needs=("content",),
        higher_is_better=False,
        description=(
            "Shift-tolerant LPIPS (Ghildyal & Liu, ECCV 2022): anti-aliased AlexNet "
            "with BAPPS-trained linear heads (stlpips-pytorch 0.0.2 weights), "
            "between image and content."
        ),
        fn=lambda x, c, s: st_lpips(x, c),
        availability=weights_availability("stlpips-alex"),
    )
)
