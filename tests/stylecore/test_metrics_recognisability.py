"""Recognisability with the offline MobileNetV2."""

from __future__ import annotations

import pytest
import torch

from stylecore.io import load_image
from stylecore.metrics import compute
from stylecore.metrics.recognisability import classify, recognisability


@pytest.fixture(scope="module")
def photos(weights_dir, samples_dir):
    pytest.importorskip("onnxruntime")
    names = ("skimage_chelsea.png", "skimage_coffee.png")
    return [load_image(samples_dir / "content" / n, max_side=224) for n in names]


class TestRecognisability:
    def test_classifier_labels(self, photos):
        """The cat and the coffee photos get the classes in the weights MANIFEST."""
        cat, coffee = photos
        assert classify(cat, 1)[0][0][0] == "Egyptian cat"
        assert classify(coffee, 1)[0][0][0] == "espresso"
        probs = [p for _, p in classify(cat, 5)[0]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001

    def test_same_and_different_content(self, photos):
        """Same image: 1 for top-1 and top-5; a different object: 0."""
        cat, coffee = photos
        coffee = torch.nn.functional.interpolate(coffee, size=cat.shape[-2:], mode="bilinear").clamp(0, 1)
        x = torch.cat([cat, coffee])
        c = torch.cat([cat, cat])
        assert recognisability(x, c, k=1).tolist() == [1.0, 0.0]
        rows = compute(["recognisability-top1", "recognisability-top5"], x, contents=c)
        assert [r["value"] for r in rows] == [1.0, 1.0, 0.0, 0.0]

    def test_top5_is_looser_than_top1(self, photos):
        """A mildly degraded cat may lose top-1 but its class stays in the top 5."""
        cat, _ = photos
        g = torch.Generator().manual_seed(0)
        noisy = (cat + 0.05 * torch.randn(cat.shape, generator=g)).clamp(0, 1)
        top1, top5 = float(recognisability(noisy, cat, k=1)), float(recognisability(noisy, cat, k=5))
        assert top5 >= top1
        assert top5 == 1.0
