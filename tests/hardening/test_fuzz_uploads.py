"""Fuzzed image uploads: any bytes end as a clear rejection or a clean re-encoded PNG, never a crash."""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from studies.actions import do_create_study, do_import_images
from studies.imaging import RejectedImage, check_uploaded_image, expand_uploads
from studies.models import ContentImage

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMIT = 4096 * 4096


def _encoded(fmt: str, size=(24, 16), mode="RGB") -> bytes:
    buf = io.BytesIO()
    img = Image.new(mode, size, 128)
    img.putpixel((1, 1), (255, 0, 0) if mode == "RGB" else 255)
    img.save(buf, format=fmt)
    return buf.getvalue()


SEEDS = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "WEBP", "TIFF", "GIF", "BMP")}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")


def _assert_clean(result) -> None:
    """An accepted upload is stored as a freshly encoded PNG within the pixel limit."""
    assert result.width * result.height <= LIMIT
    with Image.open(io.BytesIO(result.png)) as img:
        assert img.format == "PNG" and img.mode == "RGB" and img.size == (result.width, result.height)
    assert len(result.sha256) == 64


def _check(data: bytes, name: str = "upload.png"):
    try:
        result = check_uploaded_image(data, name, limit=LIMIT)
    except RejectedImage as exc:
        assert name in str(exc) and exc.reason
        return None
    _assert_clean(result)
    return result


@FUZZ
@given(st.binary(max_size=4096))
@example(b"")
@example(b"\x89PNG\r\n\x1a\n")
@example(b"\xff\xd8\xff")
@example(b"GIF89a")
def test_arbitrary_bytes(data):
    _check(data)


@FUZZ
@given(fmt=st.sampled_from(sorted(SEEDS)), cut=st.floats(0, 1), flips=st.lists(
    st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8))
def test_truncated_and_corrupted_images(fmt, cut, flips):
    data = bytearray(SEEDS[fmt][: max(1, int(len(SEEDS[fmt]) * cut))])
    for where, value in flips:
        data[int(where * len(data))] = value
    result = _check(bytes(data), f"mutated.{fmt.lower()}")
    if result is not None:
        assert fmt in ("PNG", "JPEG", "WEBP", "TIFF"), f"{fmt} must be refused"


@FUZZ
@given(width=st.integers(1, 2**31 - 1), height=st.integers(1, 2**31 - 1))
def test_huge_dimensions_are_refused_before_decoding(width, height):
    started = time.perf_counter()
    result = _check(_png_claiming(width, height), "bomb.png")
    if width * height > LIMIT:
        assert result is None
    # A refusal reads the header only: no time to decode gigapixels.
    assert time.perf_counter() - started < 5


def test_real_decompression_bomb_is_refused():
    """A small file that expands to 100 MP (a valid zlib stream of zeros)."""
    width = height = 10_000
    raw = zlib.compress(b"".join(b"\0" + b"\0" * (3 * width) for _ in range(height)), 9)
    data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", raw) + _chunk(b"IEND", b""))
    assert len(data) < 1_000_000
    with pytest.raises(RejectedImage, match="pixels"):
        check_uploaded_image(data, "bomb.png", limit=LIMIT)


SCRIPT = b"<script>alert(document.cookie)</script>"
HOSTILE = {
    "svg.png": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>',
    "page.jpg": b"<!DOCTYPE html><html><body>" + SCRIPT + b"</body></html>",
    "image.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "gif.png": SEEDS["GIF"],
    "bmp.jpg": SEEDS["BMP"],
    "pdf.png": b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
    "zip.png": b"PK\x03\x04" + b"\0" * 40,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_svg_html_and_other_formats_are_refused(name):
    with pytest.raises(RejectedImage):
        check_uploaded_image(HOSTILE[name], name, limit=LIMIT)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_polyglot_payload_does_not_survive(fmt):
    """An image with HTML appended (or in a text chunk) is stored re-encoded: the payload is gone."""
    data = SEEDS[fmt] + SCRIPT
    if fmt == "PNG":
        body = SEEDS["PNG"]
        data = body[:33] + _chunk(b"tEXt", b"Comment\0" + SCRIPT) + body[33:] + SCRIPT
    try:
        result = check_uploaded_image(data, f"polyglot.{fmt.lower()}", limit=LIMIT)
    except RejectedImage:
        return
    _assert_clean(result)
    assert b"script" not in result.png and b"script" not in result.thumbnail


def test_wrong_extension_is_judged_by_content():
    png_named_jpg = check_uploaded_image(SEEDS["PNG"], "photo.jpg", limit=LIMIT)
    assert png_named_jpg.source_format == "PNG"
    with pytest.raises(RejectedImage):
        check_uploaded_image(b"not an image", "photo.png", limit=LIMIT)


@FUZZ
@given(st.lists(st.tuples(st.text(min_size=1, max_size=30), st.binary(max_size=300)), max_size=5))
def test_zip_archives_of_anything(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in dict(members).items():
            try:
                archive.writestr(name, data)
            except (ValueError, UnicodeEncodeError, IndexError):  # names zipfile itself cannot write
                continue
    for label, item in expand_uploads([("batch.zip", buf.getvalue())]):
        assert isinstance(label, str)
        assert isinstance(item, (bytes, RejectedImage))


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(files=st.lists(st.one_of(
    st.binary(max_size=600),
    st.sampled_from(sorted(SEEDS.values())),
    st.sampled_from(sorted(HOSTILE.values())),
), min_size=1, max_size=4))
def test_import_action_stores_only_clean_images(files, django_user_model):
    """Through the import action: rejections are reported per file, nothing wrong is stored."""
    owner = django_user_model.objects.get_or_create(username="fuzz-owner")[0]
    study = do_create_study(title="Fuzz", slug=f"fuzz-{time.monotonic_ns()}", owner=owner, languages=["en"])
    report = do_import_images(study, [(f"f{i}.png", data) for i, data in enumerate(files)], kind="content")
    stored = ContentImage.objects.filter(study=study)
    assert len(report.created) == stored.count() <= len(files)
    assert len(report.created) + len(report.rejected) + len(report.duplicates) == len(files)
    for image in stored:
        with image.image.open("rb") as fh, Image.open(fh) as img:
            assert img.format == "PNG" and img.size == (image.width, image.height)
