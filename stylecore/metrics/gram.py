"""Style distances on VGG19 features: Gram matrices (Gatys et al.) and mean/std (AdaIN).

Layers: relu1_1, relu2_1, relu3_1 with the offline Caffe VGG19, plus relu4_1
and relu5_1 when the full torchvision VGG19 is present (the version string says
which: ``1.0+caffe`` or ``1.0+torchvision``). Style references may have any
size: both distances compare size-independent statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._checks import ShapeError, check_image
from ..models.vgg_caffe import VGG19Features
from ._registry import MetricSpec, register_metric
from ._vgg import backbone_name, shared_vgg19, vgg_availability

__all__ = [
    "AdaINStyleDistance",
    "GramStyleDistance",
    "adain_style_distance",
    "gram_matrix",
    "gram_style_distance",
    "style_layers",
]


def style_layers(vgg: VGG19Features) -> list[str]:
    """relu1_1..relu3_1, extended to relu5_1 when ``vgg`` reaches that deep."""
    wanted = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    return [layer for layer in wanted if layer in vgg.layer_names]


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix normalised by the number of positions, ``F F^T / (H W)``.

    Args:
        features: ``(B, C, H, W)`` activations.

    Returns:
        ``(B, C, C)``.

    Example:
        >>> gram_matrix(torch.ones(1, 2, 3, 3))
        tensor([[[1., 1.],
                 [1., 1.]]])
    """
    b, c, h, w = features.shape
    f = features.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (h * w)


def _check_pair_any_size(image: torch.Tensor, style: torch.Tensor) -> None:
    check_image(image, "image")
    check_image(style, "style")
    if style.shape[0] != image.shape[0]:
        raise ShapeError(f"style has {style.shape[0]} images but image has {image.shape[0]}")


def gram_style_distance(
    image: torch.Tensor,
    style: torch.Tensor,
    *,
    vgg: VGG19Features | None = None,
    layers: Sequence[str] | None = None,
) -> torch.Tensor:
    """Gatys et al. (2016) style distance, averaged over layers.

    ``E_l = 1 / (4 N_l^2 M_l^2) * sum_ij (G_l - A_l)_ij^2`` with unnormalised
    Gram matrices is Eq. 4 of the paper; dividing each Gram matrix by its
    ``M_l = H_l W_l`` first gives ``E_l = sum (G'_l - A'_l)^2 / (4 N_l^2)``,
    identical when the images have the same size and defined when they do
    not. The result is ``sum_l w_l E_l`` with ``w_l = 1 / L`` (Eq. 5).
    Features are those of the VGG19 in its own input convention (Caffe:
    BGR 0-255 minus the mean).

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1].
        style: ``(B, 3, H', W')`` RGB in [0, 1], any size.
        vgg: feature extractor (default: the shared best VGG19).
        layers: layers to compare (default :func:`style_layers`).

    Returns:
        ``(B,)`` distances >= 0 (0 when the Gram matrices agree).

    Raises:
        ShapeError, ValueError: bad input or differing batch sizes.
    """
    _check_pair_any_size(image, style)
    vgg = vgg if vgg is not None else shared_vgg19(image.device)
    layers = list(layers) if layers is not None else style_layers(vgg)
    fx, fs = vgg(image.float(), layers), vgg(style.float(), layers)
    total = torch.zeros(image.shape[0], device=image.device, dtype=torch.float32)
    for layer in layers:
        n = fx[layer].shape[1]
        diff = gram_matrix(fx[layer]) - gram_matrix(fs[layer])
        total = total + diff.pow(2).sum(dim=(1, 2)) / (4 * n**2)
    return (total / len(layers)).to(image.dtype)


def adain_style_distance(
    image: torch.Tensor,
    style: torch.Tensor,
    *,
    vgg: VGG19Features | None = None,
    layers: Sequence[str] | None = None,
) -> torch.Tensor:
    """Mean/std style distance of Huang & Belongie (2017, Eq. 10).

    ``sum_l ||mu(phi_l(x)) - mu(phi_l(s))||_2 + ||sigma(phi_l(x)) - sigma(phi_l(s))||_2``
    with per-channel spatial mean and population standard deviation, summed over
    the style layers (relu1_1..relu4_1 in the paper; relu1_1..relu3_1 offline).

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1].
        style: ``(B, 3, H', W')`` RGB in [0, 1], any size.
        vgg: feature extractor (default: the shared best VGG19).
        layers: layers to compare (default: :func:`style_layers` without relu5_1).

    Returns:
        ``(B,)`` distances >= 0.

    Raises:
        ShapeError, ValueError: bad input or differing batch sizes.
    """
    _check_pair_any_size(image, style)
    vgg = vgg if vgg is not None else shared_vgg19(image.device)
    if layers is None:
        layers = [layer for layer in style_layers(vgg) if layer != "relu5_1"]
    fx, fs = vgg(image.float(), layers), vgg(style.float(), layers)
    total = torch.zeros(image.shape[0], device=image.device, dtype=torch.float32)
    for layer in layers:
        a, b = fx[layer].flatten(2), fs[layer].flatten(2)
        total = total + (a.mean(2) - b.mean(2)).norm(dim=1)
        total = total + (a.std(2, unbiased=False) - b.std(2, unbiased=False)).norm(dim=1)
    return total.to(image.dtype)



class GramStyleDistance(torch.nn.Module):
    """Module form of :func:`gram_style_distance`; ``forward(image, style) -> (B,)``."""

    def __init__(self, layers: Sequence[str] | None = None) -> None:
        super().__init__()
        self.layers = list(layers) if layers is not None else None

    def forward(self, image: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return gram_style_distance(image, style, layers=self.layers)


class AdaINStyleDistance(torch.nn.Module):
    """Module form of :func:`adain_style_distance`; ``forward(image, style) -> (B,)``."""

    def __init__(self, layers: Sequence[str] | None = None) -> None:
        super().__init__()
        self.layers = list(layers) if layers is not None else None

    def forward(self, image: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return adain_style_distance(image, style, layers=self.layers)


register_metric(
    MetricSpec(
        name="gram-style",
        base_version="1.0",
        needs=("style",),
        higher_is_better=False,
        description=(
            "Gatys et al. 2016 Gram style distance between image and style: mean over "
            "VGG19 relu1_1, relu2_1, relu3_1 (+relu4_1, relu5_1 with the full VGG19) of "
            "sum((G - A)^2) / (4 N^2), Gram matrices divided by H*W."
        ),
        fn=lambda x, c, s: gram_style_distance(x, s),
        availability=vgg_availability,
        variant=backbone_name,
    )
)
register_metric(
    MetricSpec(
        name="adain-style",
        base_version="1.0",
        needs=("style",),
        higher_is_better=False,
        description=(
            "Huang & Belongie 2017 style distance: sum over VGG19 relu1_1..relu3_1 "
            "(+relu4_1 with the full VGG19) of the L2 distances of channel means and "
            "population standard deviations."
        ),
        fn=lambda x, c, s: adain_style_distance(x, s),
        availability=vgg_availability,
        variant=backbone_name,
    )
)
