"""Upload validation: corrupt, truncated, oversized, wrong-format and EXIF-rotated files."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from studies.actions import do_import_images
from studies.imaging import RejectedImage, check_uploaded_image
from studies.models import ContentImage, StyleImage

from .conftest import png_bytes


def _exif_rotated_jpeg() -> bytes:
    """A 60×20 landscape JPEG whose EXIF says "rotate 90° CW" (orientation 6); red on the left."""
    img = Image.new("RGB", (60, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif, quality=95)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width × height`` pixels (a decompression-bomb shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


class TestCheckUploadedImage:
    def test_exif_orientation_applied(self):
        """An EXIF "rotate 90° CW" JPEG is stored upright: portrait, red strip at the top."""
        checked = check_uploaded_image(_exif_rotated_jpeg(), "rotated.jpg")
        assert (checked.width, checked.height) == (20, 60)
        stored = np.asarray(Image.open(io.BytesIO(checked.png)))
        assert stored.shape == (60, 20, 3)
        top, bottom = stored[:20].reshape(-1, 3).mean(0), stored[-20:].reshape(-1, 3).mean(0)
        assert top[0] > 200 and top[2] < 60, top
        assert bottom[2] > 200 and bottom[0] < 60, bottom

    def test_corrupt_file_rejected(self):
        with pytest.raises(RejectedImage, match="not an image"):
            check_uploaded_image(b"this is not an image at all" * 10, "notes.jpg")

    @pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
    def test_truncated_file_rejected(self, fmt):
        rng = np.random.default_rng(0)
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format=fmt)
        data = buf.getvalue()
        with pytest.raises(RejectedImage, match="corrupt or truncated"):
            check_uploaded_image(data[: len(data) // 2], f"half.{fmt.lower()}")

    def test_oversized_rejected_before_decoding(self):
        """A header claiming 100 000 × 100 000 pixels is refused by its pixel count."""
        with pytest.raises(RejectedImage, match="pixels") as info:
            check_uploaded_image(_png_header_only(100_000, 100_000), "bomb.png")
        assert "bomb.png" in str(info.value)

    def test_pixel_limit_is_configurable(self):
        with pytest.raises(RejectedImage, match="exceeds the limit of 1,000"):
            check_uploaded_image(png_bytes(size=(40, 30)), "small.png", limit=1000)

    @pytest.mark.parametrize("fmt", ["GIF", "BMP"])
    def test_wrong_format_rejected(self, fmt):
        with pytest.raises(RejectedImage, match=f"format {fmt} is not accepted"):
            check_uploaded_image(png_bytes(fmt=fmt), f"x.{fmt.lower()}")

    def test_empty_file_rejected(self):
        with pytest.raises(RejectedImage, match="empty"):
            check_uploaded_image(b"", "empty.png")

    @pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
    def test_accepted_formats(self, fmt):
        checked = check_uploaded_image(png_bytes(fmt=fmt, size=(33, 17)), f"x.{fmt.lower()}")
        assert (checked.width, checked.height) == (33, 17)
        assert checked.source_format == fmt
        assert Image.open(io.BytesIO(checked.png)).mode == "RGB"
        thumb = Image.open(io.BytesIO(checked.thumbnail))
        assert thumb.format == "JPEG" and max(thumb.size) <= 256

    def test_sixteen_bit_grey_is_rescaled_not_clipped(self):
        """A 16-bit PNG at half range becomes 8-bit ~128, not 255."""
        buf = io.BytesIO()
        Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(buf, format="PNG")
        checked = check_uploaded_image(buf.getvalue(), "deep.png")
        pixels = np.asarray(Image.open(io.BytesIO(checked.png)))
        assert pixels.shape == (8, 8, 3)
        assert abs(int(pixels[0, 0, 0]) - 128) <= 1

    def test_cmyk_jpeg_becomes_rgb(self):
        buf = io.BytesIO()
        Image.new("CMYK", (10, 10), (0, 255, 255, 0)).save(buf, format="JPEG")
        pixels = np.asarray(Image.open(io.BytesIO(check_uploaded_image(buf.getvalue(), "cmyk.jpg").png)))
        assert pixels[..., 0].mean() > 200 and pixels[..., 1].mean() < 60

    def test_hash_is_of_pixels_not_file(self):
        """The same picture as PNG and TIFF has one hash (lossless formats)."""
        a = check_uploaded_image(png_bytes(fmt="PNG"), "a.png")
        b = check_uploaded_image(png_bytes(fmt="TIFF"), "a.tif")
        c = check_uploaded_image(png_bytes((1, 2, 3)), "c.png")
        assert a.sha256 == b.sha256 != c.sha256


@pytest.mark.django_db
class TestImport:
    def test_bad_files_rejected_rest_imported(self, researcher, culture):
        from studies.actions import do_create_study

        study = do_create_study(title="T", slug="t", owner=researcher)
        good = [("a.png", png_bytes((10, 20, 30))), ("b.jpg", png_bytes((90, 20, 30), fmt="JPEG"))]
        bad = [("c.gif", png_bytes(fmt="GIF")), ("d.png", png_bytes()[:50]), ("e.jpg", b"garbage")]
        dup = [("a-again.tif", png_bytes((10, 20, 30), fmt="TIFF"))]
        report = do_import_images(study, good + bad + dup, kind="content")
        assert [r.original_filename for r in report.created] == ["a.png", "b.jpg"]
        assert sorted(n for n, _ in report.rejected) == ["c.gif", "d.png", "e.jpg"]
        assert report.duplicates == ["a-again.tif"]
        assert ContentImage.objects.filter(study=study).count() == 2
        row = ContentImage.objects.get(original_filename="a.png")
        assert row.image.name.endswith(f"{row.sha256}.png") and row.thumbnail.name.endswith(".jpg")
        assert Image.open(row.image.path).size == (40, 30)
        assert "3 rejected" in report.summary() and "GIF" in report.summary()

    def test_zip_archive_members_imported(self, researcher, culture):
        from studies.actions import do_create_study

        study = do_create_study(title="Z", slug="z", owner=researcher)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("art/one.png", png_bytes((1, 1, 1)))
            zf.writestr("art/two.webp", png_bytes((2, 200, 2), fmt="WEBP", lossless=True))
            zf.writestr("art/readme.txt", b"hello")
            zf.writestr("__MACOSX/art/._one.png", b"junk")
        report = do_import_images(study, [("batch.zip", buf.getvalue())], kind="style", culture=culture,
                                  fields={"artist": "Anon"})
        assert len(report.created) == 2
        assert [n for n, _ in report.rejected] == ["batch.zip/art/readme.txt"]
        assert set(StyleImage.objects.filter(study=study).values_list("artist", "culture__slug")) == {
            ("Anon", "chinese-ink")}

    def test_style_needs_culture(self, researcher):
        from studies.actions import do_create_study

        study = do_create_study(title="Z", slug="z", owner=researcher)
        with pytest.raises(ValueError, match="culture"):
            do_import_images(study, [("a.png", png_bytes())], kind="style")
