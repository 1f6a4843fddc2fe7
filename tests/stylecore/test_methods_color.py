"""Colour transfer against the maths and scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import color as skcolor
from skimage.exposure import match_histograms

from stylecore.methods.color import (
    color_transfer,
    histogram_match,
    lab_to_rgb,
    reinhard_transfer,
    rgb_to_lab,
)


def _smooth(seed: int, lo: float, hi: float, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, size // 4, size // 4, generator=g)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return lo + (hi - lo) * x


class TestLab:
    def test_matches_skimage(self):
        x = torch.rand(2, 3, 9, 7, dtype=torch.float64)
        ours = rgb_to_lab(x).permute(0, 2, 3, 1).numpy()
        ref = np.stack([skcolor.rgb2lab(im) for im in x.permute(0, 2, 3, 1).numpy()])
        np.testing.assert_allclose(ours, ref, atol=1e-3)

    def test_round_trip(self):
        x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
        assert torch.allclose(lab_to_rgb(rgb_to_lab(x)), x, atol=1e-6)


class TestReinhard:
    def test_output_lab_statistics_equal_the_style(self):
        # Mid-range images keep the result in gamut, so clamping does not move the statistics.
        content, style = _smooth(0, 0.3, 0.6).double(), _smooth(1, 0.35, 0.65).double()
        out = reinhard_transfer(content, style)
        lo, ls = rgb_to_lab(out), rgb_to_lab(style)
        assert torch.allclose(lo.mean((2, 3)), ls.mean((2, 3)), atol=0.05)
        assert torch.allclose(lo.std((2, 3), unbiased=False), ls.std((2, 3), unbiased=False), rtol=0.02)

    def test_strength_zero_is_identity(self):
        content = torch.rand(1, 3, 8, 8, dtype=torch.float64)
        out = reinhard_transfer(content, torch.rand(1, 3, 8, 8, dtype=torch.float64), strength=0.0)
        assert torch.allclose(out, content, atol=1e-6)

    def test_batch_matches_single(self):
        c, s = torch.rand(3, 3, 8, 8), torch.rand(1, 3, 6, 6)
        batch = reinhard_transfer(c, s)
        assert torch.allclose(batch[1:2], reinhard_transfer(c[1:2], s), atol=1e-6)

    def test_bad_inputs(self):
        with pytest.raises(ValueError, match="strength"):
            reinhard_transfer(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), strength=2)
        with pytest.raises(ValueError, match="style batch"):
            reinhard_transfer(torch.rand(2, 3, 4, 4), torch.rand(3, 3, 4, 4))
        with pytest.raises(ValueError, match="mode"):
            color_transfer(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), mode="lab")


class TestHistogram:
    def test_matches_skimage(self):
        g = torch.Generator().manual_seed(0)
        content = (torch.rand(1, 3, 20, 17, generator=g) * 255).round() / 255  # ties, as in 8-bit images
        style = torch.rand(1, 3, 13, 11, generator=g) ** 2
        ours = histogram_match(content.double(), style.double())[0].permute(1, 2, 0).numpy()
        ref = match_histograms(
            content[0].permute(1, 2, 0).double().numpy(), style[0].permute(1, 2, 0).double().numpy(), channel_axis=-1
        )
        np.testing.assert_allclose(ours, ref, atol=1e-9)

    def test_output_values_follow_the_style_distribution(self):
        content = torch.rand(1, 3, 32, 32, dtype=torch.float64)
        style = torch.rand(1, 3, 32, 32, dtype=torch.float64) ** 3
        out = histogram_match(content, style)
        q = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
        for ch in range(3):
            assert torch.allclose(out[0, ch].flatten().quantile(q), style[0, ch].flatten().quantile(q), atol=0.02)
        # Ranks are preserved: a monotone map per channel.
        order = content[0, 0].flatten().argsort()
        assert bool((out[0, 0].flatten()[order].diff() >= 0).all())
