"""Content distance: VGG19 feature distance between an output and its content image."""

from __future__ import annotations

import torch

from ..models.vgg_caffe import VGG19Features
from ._common import check_pair
from ._registry import MetricSpec, register_metric
from ._vgg import backbone_name, shared_vgg19, vgg_availability

__all__ = ["CONTENT_LAYER", "ContentDistance", "content_distance"]

# Gatys et al. use conv4_2; the offline Caffe VGG19 ends at relu3_4, so relu3_2
# (the deepest content-style layer it has) is used with either backbone.
CONTENT_LAYER = "relu3_2"


def content_distance(
    image: torch.Tensor,
    content: torch.Tensor,
    *,
    vgg: VGG19Features | None = None,
    layer: str = CONTENT_LAYER,
) -> torch.Tensor:
    """Mean squared difference of VGG19 activations at ``layer``.

    ``mean_{c,h,w} (F - P)^2``, i.e. Gatys et al.'s content loss
    ``1/2 sum (F - P)^2`` divided by ``C H W / 2`` so that it does not grow with
    the image size. Features are in the VGG19's own input convention.

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1].
        content: same shape and range.
        vgg: feature extractor (default: the shared best VGG19).
        layer: VGG19 layer name.

    Returns:
        ``(B,)`` distances >= 0.

    Raises:
        ShapeError, ValueError: bad or mismatched input.
    """
    check_pair(image, content)
    vgg = vgg if vgg is not None else shared_vgg19(image.device)
    both = vgg(torch.cat([image, content]).float(), [layer])[layer]
    n = image.shape[0]
    return (both[:n] - both[n:]).pow(2).mean(dim=(1, 2, 3)).to(image.dtype)



class ContentDistance(torch.nn.Module):
    """Module form of :func:`content_distance`; ``forward(image, content) -> (B,)``."""

    def __init__(self, layer: str = CONTENT_LAYER) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, image: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        return content_distance(image, content, layer=self.layer)


register_metric(
    MetricSpec(
        name="content",
        base_version="1.0",
        needs=("content",),
        higher_is_better=False,
        description=(
            "Content distance: mean squared difference of VGG19 relu3_2 activations "
            "between image and content (Gatys et al. content loss per element)."
        ),
        fn=lambda x, c, s: content_distance(x, c),
        availability=vgg_availability,
        variant=backbone_name,
    )
)
