"""The FID Inception-v3 (TensorFlow 2015-12-05 graph) as a 2048-d feature extractor.

The architecture is torchvision's Inception-v3 with the blocks that differ in
the TensorFlow graph replaced by ``pytorch-fid``'s ``FIDInception*`` classes
(imported lazily); the weights ``pt_inception-2015-12-05-6726825d.pth`` are
loaded strictly from a local, verified file, never downloaded.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_image

__all__ = ["FIDInception", "build_fid_inception", "fid_inception"]


class FIDInception(nn.Module):
    """Pool-3 features (2048-d) of the FID Inception for RGB input in [0, 1].

    Input is resized to 299x299 (bilinear) and mapped to [-1, 1], as in the
    reference FID code.
    """

    def __init__(self, inception: nn.Module) -> None:
        super().__init__()
        i = inception
        self.layers = nn.Sequential(
            i.Conv2d_1a_3x3, i.Conv2d_2a_3x3, i.Conv2d_2b_3x3, nn.MaxPool2d(3, stride=2),
            i.Conv2d_3b_1x1, i.Conv2d_4a_3x3, nn.MaxPool2d(3, stride=2),
            i.Mixed_5b, i.Mixed_5c, i.Mixed_5d, i.Mixed_6a, i.Mixed_6b, i.Mixed_6c, i.Mixed_6d, i.Mixed_6e,
            i.Mixed_7a, i.Mixed_7b, i.Mixed_7c, nn.AdaptiveAvgPool2d(1),
        )  # fmt: skip
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in [0, 1] → ``(B, 2048)`` features."""
        check_image(image, "image")
        x = F.interpolate(image.float(), size=(299, 299), mode="bilinear", align_corners=False)
        return self.layers(2 * x - 1).flatten(1)


def build_fid_inception() -> nn.Module:
    """The untrained FID Inception-v3 graph (1008 classes, no aux head).

    Raises:
        ImportError: ``pytorch-fid`` is not installed.
    """
    import torchvision
    from pytorch_fid import inception as pfi

    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pfi.FIDInceptionE_1(1280)
    net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    return net


def fid_inception(device: str | torch.device = "cpu", path: str | os.PathLike | None = None) -> FIDInception:
    """The FID feature extractor with its weights loaded strictly.

    Args:
        device: where the model goes.
        path: weights file; by default the verified registered ``inception-fid``.

    Raises:
        MissingWeightsError: the weights file is absent.
        ImportError: ``pytorch-fid`` is not installed.
    """
    from ..weights import resolve

    path = path if path is not None else resolve("inception-fid")
    net = build_fid_inception()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return FIDInception(net).eval().to(device)
