"""Shift-tolerant LPIPS with an anti-aliased AlexNet (Ghildyal & Liu, ECCV 2022).

The network is AlexNet's five convolutions made tolerant to small shifts as the
paper describes: the first convolution runs at stride 1 and every
downsampling is a 3x3 binomial blur-pool (reflection padding of 2, stride 2),
with max-pools at stride 1 before it (Zhang 2019, "Making convolutional
networks shift-invariant again"). Unit-normalised activations after each of the
five ReLUs are compared, weighted per channel by the learned linear heads and
averaged over space, as in LPIPS v0.1 (Zhang et al. 2018). The parameter and
buffer names follow ``stlpips_alex_shift_tolerant.pth`` so that it loads
strictly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_image, check_same_shape

__all__ = ["BlurPool2d", "STLPIPSAlex", "stlpips_alex"]

# LPIPS v0.1 input scaling: [-1, 1] RGB minus these, divided by those (the
# ImageNet mean/std expressed in [-1, 1] units).
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class BlurPool2d(nn.Module):
    """Depthwise 3x3 binomial blur then stride-2 subsampling, reflection-padded by 2.

    Args:
        channels: number of input channels.

    Example:
        >>> BlurPool2d(4)(torch.rand(1, 4, 16, 16)).shape
        torch.Size([1, 4, 9, 9])
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        a = torch.tensor([1.0, 2.0, 1.0])
        k = torch.outer(a, a)
        self.register_buffer("filt", (k / k.sum()).expand(channels, 1, 3, 3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (2, 2, 2, 2), mode="reflect")
        return F.conv2d(x, self.filt.to(x.dtype), stride=2, groups=x.shape[1])


class _ScalingLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class _Linear(nn.Module):
    """A 1x1 convolution to one channel (index 0 is the training-time dropout)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _seq(start: int, *modules: nn.Module) -> nn.Sequential:
    # Numbered children keep the index of each layer in the whole network.
    seq = nn.Sequential()
    for i, m in enumerate(modules):
        seq.add_module(str(start + i), m)
    return seq


class _AntiAliasedAlexNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.slice1 = _seq(0, nn.Conv2d(3, 64, 11, stride=1, padding=2), BlurPool2d(64), nn.ReLU())
        self.slice2 = _seq(
            3, nn.MaxPool2d(3, stride=1), BlurPool2d(64), nn.Conv2d(64, 192, 5, padding=2), nn.ReLU()
        )
        self.slice3 = _seq(
            7, nn.MaxPool2d(3, stride=1), BlurPool2d(192), nn.Conv2d(192, 384, 3, padding=1), nn.ReLU()
        )
        self.slice4 = _seq(11, nn.Conv2d(384, 256, 3, padding=1), nn.ReLU())
        self.slice5 = _seq(13, nn.Conv2d(256, 256, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for s in (self.slice1, self.slice2, self.slice3, self.slice4, self.slice5):
            x = s(x)
            feats.append(x)
        return feats


class STLPIPSAlex(nn.Module):
    """ST-LPIPS distance with the shift-tolerant AlexNet; ``forward(a, b) -> (B,)``.

    Untrained until weights are loaded (see :func:`stlpips_alex`).

    Example:
        >>> net = STLPIPSAlex().eval()
        >>> x = torch.rand(1, 3, 64, 64)
        >>> float(net(x, x))
        0.0
    """

    channels = (64, 192, 384, 256, 256)

    def __init__(self) -> None:
        super().__init__()
        self.scaling_layer = _ScalingLayer()
        self.net = _AntiAliasedAlexNet()
        for i, c in enumerate(self.channels):
            self.add_module(f"lin{i}", _Linear(c))
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Distance between two ``(B, 3, H, W)`` RGB batches in [0, 1] (H, W >= 32).

        Returns:
            ``(B,)`` distances, 0 for identical images.

        Raises:
            ShapeError, ValueError: bad or mismatched input, or smaller than 32 px.
        """
        check_image(image, "image")
        check_image(reference, "reference")
        check_same_shape(image, reference, ("image", "reference"))
        if min(image.shape[-2:]) < 32:
            raise ValueError(f"ST-LPIPS needs images of at least 32x32 pixels, got {tuple(image.shape[-2:])}")
        n = image.shape[0]
        both = self.scaling_layer(torch.cat([image, reference]) * 2 - 1)
        total = torch.zeros(n, device=image.device, dtype=image.dtype)
        for i, f in enumerate(self.net(both)):
            f = f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            diff = (f[:n] - f[n:]).pow(2)
            total = total + getattr(self, f"lin{i}")(diff).mean(dim=(1, 2, 3))
        return total


def stlpips_alex(device: str | torch.device = "cpu") -> STLPIPSAlex:
    """ST-LPIPS (AlexNet, shift-tolerant) with its verified weights, loaded strictly.

    Raises:
        MissingWeightsError: ``stlpips_alex_shift_tolerant.pth`` is not present.
    """
    from ..weights import load_state_dict

    net = STLPIPSAlex()
    net.load_state_dict(load_state_dict("stlpips-alex"), strict=True)
    return net.eval().to(device)
