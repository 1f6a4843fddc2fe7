"""``python -m stylecore transfer`` and ``sheet`` through ``main([...])``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from stylecore.cli import main


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    content = tmp_path / "content.png"
    style = tmp_path / "style.jpg"
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(content)
    Image.fromarray((rng.random((30, 30, 3)) * 80 + 150).astype(np.uint8)).save(style)
    return content, style


class TestTransfer:
    def test_color_writes_png_and_provenance(self, files, tmp_path, capsys):
        content, style = files
        out = tmp_path / "out" / "o.png"
        code = main(["transfer", "--method", "color", "--content", str(content), "--style", str(style),
                     "--out", str(out), "--size", "32", "--mode", "histogram", "--param", "strength=0.5"])  # fmt: skip
        assert code == 0
        record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert record["method"] == "color"
        assert record["params"] == {"mode": "histogram", "strength": 0.5}
        assert record["weights"] == {} and record["seed"] == 0 and record["device"] == "cpu"
        assert {"torch", "stylecore"} <= set(record["versions"]) and record["seconds"] >= 0
        with Image.open(out) as img:
            assert img.size == (32, 21) and img.mode == "RGB"

    def test_out_of_range_parameter_is_one_clear_line(self, files, tmp_path, capsys):
        content, style = files
        code = main(["transfer", "--method", "color", "--content", str(content), "--style", str(style),
                     "--out", str(tmp_path / "o.png"), "--strength", "3"])  # fmt: skip
        assert code == 1
        assert "parameter 'strength' must be <= 1.0" in capsys.readouterr().err
        assert not (tmp_path / "o.png").exists()

    def test_parameter_of_another_method_is_rejected(self, files, tmp_path, capsys):
        content, style = files
        code = main(["transfer", "--method", "color", "--content", str(content), "--style", str(style),
                     "--out", str(tmp_path / "o.png"), "--levels", "3"])  # fmt: skip
        assert code == 1
        assert "method 'color' has no parameter(s) levels" in capsys.readouterr().err

    def test_missing_style_and_bad_device(self, files, tmp_path, capsys):
        content, style = files
        assert main(["transfer", "--method", "color", "--content", str(content), "--out", str(tmp_path / "o.png")]) == 1
        assert "needs --style" in capsys.readouterr().err
        import torch

        if not torch.cuda.is_available():
            code = main(["transfer", "--method", "color", "--content", str(content), "--style", str(style),
                         "--out", str(tmp_path / "o.png"), "--device", "cuda"])  # fmt: skip
            assert code == 1 and "no CUDA device" in capsys.readouterr().err

    def test_unreadable_image_names_the_file(self, tmp_path, capsys):
        bad = tmp_path / "bad.png"
        bad.write_bytes(b"not an image")
        code = main(["transfer", "--method", "color", "--content", str(bad), "--style", str(bad),
                     "--out", str(tmp_path / "o.png")])  # fmt: skip
        assert code == 1 and "bad.png" in capsys.readouterr().err

    def test_unknown_method_is_a_usage_error(self, files, tmp_path):
        content, style = files
        with pytest.raises(SystemExit) as exc:
            main(["transfer", "--method", "wtc", "--content", str(content), "--out", str(tmp_path / "o.png")])
        assert exc.value.code == 2

    def test_wct_records_weights(self, files, tmp_path, capsys, weights_dir):
        content, style = files
        code = main(["transfer", "--method", "wct", "--content", str(content), "--style", str(style),
                     "--out", str(tmp_path / "o.png"), "--size", "32", "--levels", "2,1", "--alpha", "0.7"])  # fmt: skip
        assert code == 0
        record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert record["family"] == "vgg19-wct" and record["params"]["alpha"] == 0.7
        assert set(record["weights"]) == {"wct-encoder-relu2_1", "wct-decoder-relu2_1",
                                          "wct-encoder-relu1_1", "wct-decoder-relu1_1"}  # fmt: skip


class TestSheet:
    def test_draws_contents_by_styles_by_methods(self, files, tmp_path, capsys):
        content, style = files
        cdir, sdir = tmp_path / "c", tmp_path / "s"
        cdir.mkdir()
        sdir.mkdir()
        for k in range(2):
            (cdir / f"{k}.png").write_bytes(content.read_bytes())
        (sdir / "a.jpg").write_bytes(style.read_bytes())
        out = tmp_path / "sheet.png"
        code = main(["sheet", "--contents", str(cdir), "--styles", str(sdir), "--methods", "color",
                     "--out", str(out), "--size", "32", "--tile", "40", "--mode", "histogram"])  # fmt: skip
        assert code == 0
        with Image.open(out) as img:
            # 1 method block: label band + style row + 2 content rows; 1 + 1 columns.
            assert img.size == (2 * 40, 18 + 3 * 40)
        record = json.loads(capsys.readouterr().out)
        assert record["runs"][0]["method"] == "color" and len(record["contents"]) == 2

    def test_empty_folder(self, tmp_path, capsys):
        (tmp_path / "empty").mkdir()
        code = main(["sheet", "--contents", str(tmp_path / "empty"), "--styles", str(tmp_path / "empty"),
                     "--methods", "color", "--out", str(tmp_path / "s.png")])  # fmt: skip
        assert code == 1 and "no images" in capsys.readouterr().err
