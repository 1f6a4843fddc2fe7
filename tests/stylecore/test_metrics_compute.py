"""The metric registry and the compute() table contract."""

from __future__ import annotations

import pytest
import torch

from stylecore._checks import ShapeError
from stylecore.metrics import available_metrics, compute, get_metric
from stylecore.metrics.psnr import psnr
from stylecore.metrics.ssim import ssim


class TestRegistry:
    def test_names_and_specs(self):
        """Names are lowercase-with-hyphens and every spec is complete."""
        names = available_metrics()
        assert {"ssim", "ms-ssim", "psnr"} <= set(names)
        for name in names:
            spec = get_metric(name)
            assert spec.name == name and name == name.lower() and "_" not in name
            assert isinstance(spec.version, str) and spec.version
            assert set(spec.needs) <= {"content", "style"}
            assert spec.description

    def test_unknown_name_suggests(self):
        """A misspelt name raises ValueError with 'Did you mean'."""
        with pytest.raises(ValueError, match="Did you mean 'ssim'"):
            get_metric("ssmi")


class TestCompute:
    def test_rows_match_functions(self):
        """One row per (index, metric) with the function's value."""
        g = torch.Generator().manual_seed(1)
        x, c = torch.rand(3, 3, 32, 32, generator=g), torch.rand(3, 3, 32, 32, generator=g)
        rows = compute(["ssim", "psnr"], x, contents=c, batch_size=2)
        assert [(r["index"], r["name"]) for r in rows] == [
            (0, "ssim"), (0, "psnr"), (1, "ssim"), (1, "psnr"), (2, "ssim"), (2, "psnr"),
        ]
        want_ssim, want_psnr = ssim(x, c), psnr(x, c)
        for r in rows:
            want = (want_ssim if r["name"] == "ssim" else want_psnr)[r["index"]]
            assert r["value"] == pytest.approx(float(want), abs=1e-6)
            assert r["unavailable"] == "" and r["version"] == get_metric(r["name"]).version

    def test_lists_of_varying_sizes(self):
        """A list of (1, 3, H, W) images of different sizes is scored per image."""
        a, b = torch.rand(1, 3, 32, 40), torch.rand(1, 3, 36, 36)
        rows = compute("psnr", [a, b], contents=[a * 0.5, b * 0.5])
        assert rows[0]["value"] == pytest.approx(float(psnr(a, a * 0.5)), abs=1e-5)
        assert rows[1]["value"] == pytest.approx(float(psnr(b, b * 0.5)), abs=1e-5)

    def test_content_with_same_aspect_is_resized(self):
        """A content image twice the size (same aspect) is resized to the image."""
        c = torch.rand(1, 3, 64, 96)
        x = torch.nn.functional.interpolate(c, size=(32, 48), mode="bicubic", antialias=True).clamp(0, 1)
        assert compute("psnr", x, contents=c)[0]["value"] > 60

    def test_content_with_other_aspect_raises(self):
        """A content image of another aspect ratio is refused, not silently warped."""
        with pytest.raises(ShapeError, match="aspect"):
            compute("ssim", torch.rand(1, 3, 32, 32), contents=torch.rand(1, 3, 32, 64))

    @pytest.mark.parametrize(
        "images, contents, error, match",
        [
            (torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32), ShapeError, "images"),
            (torch.full((1, 3, 32, 32), float("nan")), torch.rand(1, 3, 32, 32), ValueError, "NaN"),
            ([], None, ShapeError, "empty"),
            (torch.rand(2, 3, 32, 32), torch.rand(3, 3, 32, 32), ShapeError, "contents has 3"),
            (torch.rand(1, 3, 32, 32), None, ValueError, "needs content"),
        ],
    )
    def test_bad_input_raises(self, images, contents, error, match):
        """Grayscale, NaN, empty, count mismatch and missing references raise."""
        with pytest.raises(error, match=match):
            compute(["ssim"], images, contents=contents)
