"""Image I/O: orientation, modes, bit depth, resizing, padding."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from stylecore.io import (
    crop_to,
    load_image,
    pad_to_multiple,
    resize_max_side,
    save_image,
    tensor_to_pil,
)


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=kw.pop("format", "PNG"), **kw)
    return buf.getvalue()


class TestLoad:
    def test_exif_orientation_is_applied(self):
        img = Image.new("RGB", (40, 20), "red")
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees clockwise on display
        x = load_image(_png(img, format="JPEG", exif=exif.tobytes()))
        assert tuple(x.shape) == (1, 3, 40, 20)

    def test_grayscale_rgba_cmyk(self):
        assert load_image(_png(Image.new("L", (8, 6), 128))).shape == (1, 3, 6, 8)
        rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
        assert torch.allclose(load_image(_png(rgba)), torch.ones(1, 3, 4, 4))  # transparent -> white
        cmyk = Image.new("CMYK", (4, 4), (0, 0, 0, 0))
        assert torch.allclose(load_image(_png(cmyk, format="JPEG")), torch.ones(1, 3, 4, 4), atol=0.02)

    def test_16_bit_is_rescaled_not_clipped(self):
        arr = np.full((4, 4), 32768, dtype=np.uint16)
        x = load_image(_png(Image.fromarray(arr)))
        assert abs(float(x.mean()) - 0.5) < 0.01

    def test_max_side_keeps_aspect(self):
        x = load_image(_png(Image.new("RGB", (100, 50))), max_side=40)
        assert tuple(x.shape) == (1, 3, 20, 40)

    def test_unreadable(self, tmp_path):
        p = tmp_path / "x.jpg"
        p.write_bytes(b"nope")
        with pytest.raises(ValueError, match="x.jpg"):
            load_image(p)


class TestRoundTrip:
    def test_save_load_is_lossless_at_8_bit(self, tmp_path):
        x = torch.randint(0, 256, (1, 3, 7, 9)).float() / 255
        path = save_image(x, tmp_path / "a" / "b.png")
        assert torch.equal(load_image(path), x)
        assert not list(path.parent.glob(".*part"))

    def test_pad_crop(self):
        x = torch.rand(1, 3, 13, 10)
        y, size = pad_to_multiple(x, 4)
        assert tuple(y.shape[-2:]) == (16, 12)
        assert torch.equal(crop_to(y, size), x)

    def test_resize_and_pil(self):
        assert resize_max_side(torch.rand(1, 3, 10, 30), 15).shape[-2:] == (5, 15)
        with pytest.raises(ValueError, match="single image"):
            tensor_to_pil(torch.rand(2, 3, 4, 4))
