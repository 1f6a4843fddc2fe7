"""VGG19 with the original Caffe ImageNet weights, as a multi-layer feature extractor.

Used by Gatys-style losses and by the Gram/content metrics. The offline file
holds ``conv1_1 … conv3_4`` (torchvision's ``features[:18]`` layout); the full
torchvision VGG19 (``vgg19-torchvision``) extends it to ``relu5_4`` when present.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._checks import check_image

# Layer names in torchvision's vgg19().features order ("M" = max-pool).
_VGG19_LAYOUT: tuple[str, ...] = (
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
    "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4",
    "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "conv5_4", "relu5_4",
)  # fmt: skip
_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}

# Caffe VGG was trained on BGR 0-255 images minus this per-channel mean.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
# torchvision VGG was trained on RGB [0, 1] normalised by these.
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


def _build_features(last: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for name in _VGG19_LAYOUT[: _VGG19_LAYOUT.index(last) + 1]:
        if name.startswith("conv"):
            out_ch = _CHANNELS[int(name[4])]
            layers.append(nn.Conv2d(in_ch, out_ch, 3, padding=1))
            in_ch = out_ch
        elif name.startswith("relu"):
            layers.append(nn.ReLU(inplace=False))
        else:
            layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


class VGG19Features(nn.Module):
    """VGG19 feature extractor returning named activations.

    Args:
        last_layer: deepest layer built (``relu3_4`` for the offline Caffe file).
        convention: ``"caffe"`` (BGR 0–255 minus mean) or ``"torchvision"``
            (RGB normalised by ImageNet mean/std): how [0, 1] RGB input is
            converted before the first convolution.

    Example:
        >>> net = VGG19Features(last_layer="relu2_1")
        >>> feats = net(torch.rand(1, 3, 32, 32), ["relu1_1", "relu2_1"])
        >>> tuple(feats["relu2_1"].shape)
        (1, 128, 16, 16)
    """

    def __init__(self, last_layer: str = "relu3_4", convention: str = "caffe") -> None:
        super().__init__()
        if last_layer not in _VGG19_LAYOUT:
            raise ValueError(f"unknown VGG19 layer {last_layer!r}; known: {', '.join(_VGG19_LAYOUT)}")
        if convention not in ("caffe", "torchvision"):
            raise ValueError(f"convention must be 'caffe' or 'torchvision', got {convention!r}")
        self.convention = convention
        self.last_layer = last_layer
        self.features = _build_features(last_layer)
        for p in self.parameters():
            p.requires_grad_(False)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return _VGG19_LAYOUT[: _VGG19_LAYOUT.index(self.last_layer) + 1]

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] → the network's input convention."""
        if self.convention == "caffe":
            mean = torch.tensor(CAFFE_BGR_MEAN, device=image.device, dtype=image.dtype)
            return image.flip(1) * 255.0 - mean.view(1, 3, 1, 1)
        mean = torch.tensor(TORCHVISION_MEAN, device=image.device, dtype=image.dtype)
        std = torch.tensor(TORCHVISION_STD, device=image.device, dtype=image.dtype)
        return (image - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)

    def forward(
        self, image: torch.Tensor, layers: Sequence[str], *, check: bool = True
    ) -> dict[str, torch.Tensor]:
        """Activations at ``layers`` for ``(B, 3, H, W)`` RGB input in [0, 1].

        ``check=False`` skips the input range check, for optimisers whose
        iterate leaves [0, 1] between projections.

        Raises:
            ValueError: a requested layer is deeper than the network was built.
        """
        if check:
            check_image(image)
        wanted = set(layers)
        unknown = wanted - set(self.layer_names)
        if unknown:
            raise ValueError(
                f"layers {sorted(unknown)} are not available; this VGG19 ends at "
                f"{self.last_layer} (deeper layers need the full torchvision VGG19)"
            )
        out: dict[str, torch.Tensor] = {}
        x = self.preprocess(image)
        for name, module in zip(self.layer_names, self.features):
            x = module(x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out


def caffe_vgg19(device: str | torch.device = "cpu") -> VGG19Features:
    """The offline Caffe VGG19 (to ``relu3_4``), loaded strictly and verified."""
    from ..weights import load_state_dict

    net = VGG19Features(last_layer="relu3_4", convention="caffe")
    net.load_state_dict(load_state_dict("vgg19-caffe-relu3_4"), strict=True)
    return net.eval().to(device)


def torchvision_vgg19(device: str | torch.device = "cpu") -> VGG19Features:
    """Full torchvision VGG19 (to ``relu5_4``), when ``vgg19-dcbb9e9d.pth`` is present."""
    from ..weights import load_state_dict

    state = {k: v for k, v in load_state_dict("vgg19-torchvision").items() if k.startswith("features.")}
    net = VGG19Features(last_layer="relu5_4", convention="torchvision")
    net.load_state_dict(state, strict=True)
    return net.eval().to(device)


def best_vgg19(device: str | torch.device = "cpu") -> VGG19Features:
    """The full torchvision VGG19 if its file is present, else the offline Caffe one."""
    from ..weights import MissingWeightsError

    try:
        return torchvision_vgg19(device)
    except MissingWeightsError:
        return caffe_vgg19(device)
