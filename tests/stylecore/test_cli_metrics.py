"""``python -m stylecore metrics`` through main([...])."""

from __future__ import annotations

import json

import pytest
import torch

from stylecore.cli import main
from stylecore.io import save_image
from stylecore.metrics.psnr import psnr
from stylecore.metrics.ssim import ssim


@pytest.fixture()
def files(tmp_path):
    g = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, 48, 64, generator=g)
    image = (0.8 * content + 0.2 * torch.rand(1, 3, 48, 64, generator=g)).clamp(0, 1)
    style = torch.rand(1, 3, 40, 40, generator=g)
    paths = {}
    for name, x in (("image", image), ("content", content), ("style", style)):
        paths[name] = str(save_image(x, tmp_path / f"{name}.png"))
    return paths


def _run(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class TestCLIMetrics:
    def test_json_values_match_library(self, files, capsys):
        """--json prints one object whose values equal the library's on the saved PNGs."""
        from stylecore.io import load_image

        code, out, _ = _run(capsys, ["metrics", "--image", files["image"], "--content", files["content"],
                                     "--metrics", "ssim", "psnr", "colorfulness", "--json"])
        assert code == 0
        data = json.loads(out)
        rows = {r["name"]: r for r in data["metrics"]}
        assert set(rows) == {"ssim", "psnr", "colorfulness"}
        x, c = load_image(files["image"]), load_image(files["content"])
        assert rows["ssim"]["value"] == pytest.approx(float(ssim(x, c)), abs=1e-6)
        assert rows["psnr"]["value"] == pytest.approx(float(psnr(x, c)), abs=1e-5)
        assert all(r["version"] and r["unavailable"] == "" for r in rows.values())

    def test_default_metrics_without_style(self, files, capsys, tmp_path, monkeypatch):
        """Without --style, style metrics are skipped and the rest run (or say why not)."""
        monkeypatch.setenv("STYLECORE_WEIGHTS_DIR", str(tmp_path))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        code, out, _ = _run(capsys, ["metrics", "--image", files["image"], "--content", files["content"], "--json"])
        assert code == 0
        rows = {r["name"]: r for r in json.loads(out)["metrics"]}
        assert "gram-style" not in rows and "color-hist" not in rows
        assert rows["ssim"]["value"] is not None
        assert rows["st-lpips"]["value"] is None and rows["st-lpips"]["unavailable"].startswith(
            "unavailable: stlpips_alex_shift_tolerant.pth (fetch with: python -m stylecore weights fetch stlpips-alex)"
        )
        assert rows["ms-ssim"]["unavailable"].startswith("not applicable:")

    def test_identical_images_give_inf_as_string(self, files, capsys):
        """PSNR of identical images is "inf" in valid JSON."""
        code, out, _ = _run(capsys, ["metrics", "--image", files["content"], "--content", files["content"],
                                     "--metrics", "psnr", "--json"])
        assert code == 0 and json.loads(out)["metrics"][0]["value"] == "inf"

    @pytest.mark.parametrize(
        "extra, message",
        [
            (["--metrics", "gram-style"], "needs --style"),
            (["--metrics", "ssmi"], "Did you mean 'ssim'"),
            (["--metrics", "fid"], "set metric"),
        ],
    )
    def test_errors_exit_1(self, files, capsys, extra, message):
        """Missing references, unknown names and set metrics exit 1 with a message."""
        code, _, err = _run(capsys, ["metrics", "--image", files["image"], "--content", files["content"], *extra])
        assert code == 1 and message in err

    def test_list(self, capsys):
        """--list names every metric."""
        code, out, _ = _run(capsys, ["metrics", "--list"])
        assert code == 0 and "st-lpips" in out and "fid" in out
