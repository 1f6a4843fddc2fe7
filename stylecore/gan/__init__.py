"""GANs for cross-cultural style: CycleGAN and a culture-conditioned generator.

- :mod:`.networks`: official-layout ResNet generator, PatchGAN discriminator
  (optional spectral norm, optional domain-classification head), conditional
  generator.
- :mod:`.losses`: least-squares, hinge and non-saturating adversarial losses.
- :mod:`.pool`: the history pool of generated images.
- :mod:`.data`: image collections from folders or file lists, random crops.
- :mod:`.train`: :func:`train_gan` with exact resume.
- :mod:`.inference`: :func:`cyclegan_transfer` for trained or published generators.
"""

from .data import DomainSampler, ImageCollection, SmallCollectionWarning
from .losses import GANLoss, discriminator_loss, generator_loss
from .networks import (
    ConditionalResnetGenerator,
    PatchDiscriminator,
    ResnetGenerator,
    generator_from_state_dict,
)
from .pool import ImagePool
from .train import TrainConfig, TrainProgress, TrainResult, latest_checkpoint, train_gan

__all__ = [
    "ConditionalResnetGenerator",
    "DomainSampler",
    "GANLoss",
    "ImageCollection",
    "ImagePool",
    "PatchDiscriminator",
    "ResnetGenerator",
    "SmallCollectionWarning",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "discriminator_loss",
    "generator_from_state_dict",
    "generator_loss",
    "latest_checkpoint",
    "train_gan",
]
