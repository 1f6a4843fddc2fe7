"""Adversarial losses: least squares, hinge and non-saturating.

Each loss has a discriminator side (real and fake logits) and a generator side
(fake logits), as functions plus the :class:`GANLoss` module that stores the
mode. Logits are any shape (PatchGAN maps ``(B, 1, H', W')``); losses are
means over all elements.

- ``"lsgan"`` (Mao et al., ICCV 2017; CycleGAN's choice):
  D: ``mean((D(x)-1)^2) + mean(D(G(z))^2)``; G: ``mean((D(G(z))-1)^2)``.
- ``"hinge"`` (Lim & Ye 2017; Miyato et al. 2018):
  D: ``mean(relu(1-D(x))) + mean(relu(1+D(G(z))))``; G: ``-mean(D(G(z)))``.
- ``"nonsaturating"`` (Goodfellow et al. 2014, the -log D trick):
  D: ``mean(softplus(-D(x))) + mean(softplus(D(G(z))))``;
  G: ``mean(softplus(-D(G(z))))``.

CycleGAN halves the discriminator loss when training; that factor belongs to
the training loop, not to these functions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_tensor

__all__ = ["GAN_LOSSES", "GANLoss", "discriminator_loss", "generator_loss"]

GAN_LOSSES = ("lsgan", "hinge", "nonsaturating")


def _check_mode(mode: str) -> None:
    if mode not in GAN_LOSSES:
        raise ValueError(f"GAN loss must be one of {GAN_LOSSES}, got {mode!r}")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       mode: str = "lsgan") -> torch.Tensor:
    """Discriminator loss for logits on real and generated images.

    Args:
        real_logits: discriminator output on real images, any shape.
        fake_logits: output on generated images, any shape.
        mode: ``"lsgan"``, ``"hinge"`` or ``"nonsaturating"``.

    Returns:
        Scalar loss, computed in float32 (stable under mixed precision).

    Raises:
        ValueError: unknown ``mode``.
        TypeError: logits are not floating-point tensors.

    Example:
        >>> discriminator_loss(torch.ones(2, 1, 3, 3), torch.zeros(2, 1, 3, 3))
        tensor(0.)
        >>> discriminator_loss(torch.tensor([2.0]), torch.tensor([-0.5]), "hinge")
        tensor(0.5000)
    """
    _check_mode(mode)
    real = check_tensor(real_logits, "real_logits").float()
    fake = check_tensor(fake_logits, "fake_logits").float()
    if mode == "lsgan":
        return (real - 1).pow(2).mean() + fake.pow(2).mean()
    if mode == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(fake_logits: torch.Tensor, mode: str = "lsgan") -> torch.Tensor:
    """Generator (adversarial) loss for discriminator logits on generated images.

    Args:
        fake_logits: discriminator output on generated images, any shape.
        mode: ``"lsgan"``, ``"hinge"`` or ``"nonsaturating"``.

    Returns:
        Scalar loss in float32.

    Raises:
        ValueError: unknown ``mode``.

    Example:
        >>> generator_loss(torch.zeros(1, 1, 2, 2))
        tensor(1.)
        >>> generator_loss(torch.zeros(4), "nonsaturating")  # log 2
        tensor(0.6931)
    """
    _check_mode(mode)
    fake = check_tensor(fake_logits, "fake_logits").float()
    if mode == "lsgan":
        return (fake - 1).pow(2).mean()
    if mode == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()


class GANLoss(nn.Module):
    """Module form: ``loss(fake)`` for the generator, ``loss(fake, real)`` for the discriminator.

    Args:
        mode: ``"lsgan"``, ``"hinge"`` or ``"nonsaturating"``.

    Example:
        >>> loss = GANLoss("hinge")
        >>> loss(torch.tensor([0.5])), loss(torch.tensor([0.5]), torch.tensor([0.5]))
        (tensor(-0.5000), tensor(2.))
    """

    def __init__(self, mode: str = "lsgan") -> None:
        super().__init__()
        _check_mode(mode)
        self.mode = mode

    def forward(self, fake_logits: torch.Tensor,
                real_logits: torch.Tensor | None = None) -> torch.Tensor:
        if real_logits is None:
            return generator_loss(fake_logits, self.mode)
        return discriminator_loss(real_logits, fake_logits, self.mode)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"
