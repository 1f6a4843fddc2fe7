"""Recognisability: does an ImageNet classifier still see the content's class?"""

from __future__ import annotations

import functools

import torch

from ..models.mobilenet import MobileNetV2Classifier, mobilenetv2_classifier
from ._common import check_pair
from ._registry import (
    MetricSpec,
    MetricUnavailable,
    register_metric,
    weights_availability,
)

__all__ = ["classify", "recognisability"]


@functools.lru_cache(maxsize=2)
def _classifier(device_type: str) -> MobileNetV2Classifier:
    try:
        return mobilenetv2_classifier(device_type)
    except ImportError as exc:
        raise MetricUnavailable("unavailable: the 'onnxruntime' package is not installed") from exc


def classify(image: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
    """Top-``k`` ImageNet labels and probabilities of the offline MobileNetV2.

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1] (resized and centre-cropped to 224).
        k: number of classes per image.

    Returns:
        Per image, ``k`` ``(label, probability)`` pairs, most probable first.

    Raises:
        MissingWeightsError: the ONNX model or its labels are absent.
    """
    return _classifier(image.device.type).top_k(image, k)


def recognisability(image: torch.Tensor, content: torch.Tensor, *, k: int = 1) -> torch.Tensor:
    """1 where the content image's top-1 class is among the image's top-``k`` classes.

    The classifier is the offline MobileNetV2 (ImageNet, 1001 classes including
    background), inputs resized so the short side is 224 and centre-cropped.

    Args:
        image: ``(B, 3, H, W)`` stylised RGB in [0, 1].
        content: ``(B, 3, H, W)`` content RGB in [0, 1].
        k: 1 (same top-1 class) or 5 (content's class in the image's top 5).

    Returns:
        ``(B,)`` values in {0, 1}.

    Raises:
        MissingWeightsError: the model files are absent.
        ShapeError, ValueError: bad or mismatched input.
    """
    check_pair(image, content)
    clf = _classifier(image.device.type)
    target = clf.probabilities(content).argmax(1, keepdim=True)
    top = clf.probabilities(image).topk(k, dim=1).indices
    return (top == target).any(1).to(image.dtype)


_RULE = {1: "is the image's top-1 class", 5: "is among the image's top 5"}

for _k in (1, 5):
    register_metric(
        MetricSpec(
            name=f"recognisability-top{_k}",
            base_version="1.0",
            needs=("content",),
            higher_is_better=True,
            description=(
                f"1 if the content's MobileNetV2 (ImageNet) top-1 class {_RULE[_k]}, "
                "else 0 (short side resized to 224, centre crop)."
            ),
            fn=functools.partial(lambda x, c, s, k: recognisability(x, c, k=k), k=_k),
            availability=weights_availability("mobilenetv2-imagenet", "mobilenetv2-imagenet-labels"),
        )
    )
