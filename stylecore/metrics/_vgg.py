"""The VGG19 shared by the style and content metrics, loaded once per device."""

from __future__ import annotations

import functools

import torch

from ..models.vgg_caffe import VGG19Features, best_vgg19
from ..weights import MissingWeightsError, resolve


def full_vgg19_present() -> bool:
    """Whether the torchvision VGG19 (to relu5_4) is present, else the Caffe one is used."""
    try:
        resolve("vgg19-torchvision")
    except MissingWeightsError:
        return False
    return True


def backbone_name() -> str:
    """``"torchvision"`` (full VGG19) or ``"caffe"`` (offline, to relu3_4)."""
    return "torchvision" if full_vgg19_present() else "caffe"


@functools.lru_cache(maxsize=4)
def _cached(device: str) -> VGG19Features:
    return best_vgg19(device)


def shared_vgg19(device: str | torch.device) -> VGG19Features:
    """:func:`best_vgg19` on ``device``, built once per process."""
    return _cached(str(device))


def vgg_availability() -> str:
    """``""`` when at least the Caffe VGG19 is present, else the reason."""
    from ._registry import weights_availability

    return "" if full_vgg19_present() else weights_availability("vgg19-caffe-relu3_4")()
