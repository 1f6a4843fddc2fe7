"""MobileNetV2 ImageNet classifier (ONNX, run with onnxruntime, imported lazily)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_image

__all__ = ["INPUT_SIZE", "MobileNetV2Classifier", "mobilenetv2_classifier", "preprocess"]

INPUT_SIZE = 224


def preprocess(image: torch.Tensor) -> torch.Tensor:
    """Resize the short side to 224 (antialiased bilinear), centre-crop 224x224, map to [-1, 1].

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1].

    Returns:
        ``(B, 3, 224, 224)`` float32 in [-1, 1].

    Example:
        >>> preprocess(torch.rand(1, 3, 100, 150)).shape
        torch.Size([1, 3, 224, 224])
    """
    check_image(image, "image")
    h, w = image.shape[-2:]
    scale = INPUT_SIZE / min(h, w)
    size = (max(INPUT_SIZE, round(h * scale)), max(INPUT_SIZE, round(w * scale)))
    x = F.interpolate(image.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    top, left = (size[0] - INPUT_SIZE) // 2, (size[1] - INPUT_SIZE) // 2
    x = x[..., top : top + INPUT_SIZE, left : left + INPUT_SIZE].clamp(0, 1)
    return x * 2 - 1


class MobileNetV2Classifier:
    """ImageNet (1001 classes, 0 = background) MobileNetV2 from an ONNX file.

    Args:
        model_path: the ONNX file (input NCHW RGB [-1, 1], 224x224, batch 1).
        labels_path: text file with one class name per line.
        device: ``"cuda"`` uses onnxruntime's CUDA provider when it has one.
    """

    def __init__(self, model_path: str, labels_path: str, device: str = "cpu") -> None:
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(model_path), options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        with open(labels_path, encoding="utf-8") as f:
            self.labels = [line.strip() for line in f if line.strip()]
        if len(self.labels) != 1001:
            raise ValueError(f"{labels_path} has {len(self.labels)} labels, expected 1001")

    def probabilities(self, image: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(B, 1001)`` for ``(B, 3, H, W)`` RGB in [0, 1]."""
        x = preprocess(image).cpu().numpy().astype(np.float32)
        # The exported graph has a fixed batch of 1.
        out = [self.session.run(None, {self.input_name: x[i : i + 1]})[0] for i in range(x.shape[0])]
        return torch.from_numpy(np.concatenate(out, axis=0)).to(image.device)

    def top_k(self, image: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
        """The ``k`` most probable ``(label, probability)`` pairs per image."""
        p, idx = self.probabilities(image).topk(k, dim=1)
        return [
            [(self.labels[int(j)], float(q)) for q, j in zip(prow, irow)] for prow, irow in zip(p, idx)
        ]


def mobilenetv2_classifier(device: str = "cpu") -> MobileNetV2Classifier:
    """The verified offline MobileNetV2 (``mobilenetv2-imagenet`` + labels).

    Raises:
        MissingWeightsError: the ONNX or labels file is absent.
    """
    from ..weights import resolve

    return MobileNetV2Classifier(
        str(resolve("mobilenetv2-imagenet")), str(resolve("mobilenetv2-imagenet-labels")), device
    )
