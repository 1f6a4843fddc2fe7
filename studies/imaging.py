"""Validation and normalisation of uploaded images (content photos, style artworks).

Every upload goes through :func:`check_uploaded_image`: Pillow must decode the
whole file, the pixel count is bounded before decoding (decompression bombs),
only JPEG, PNG, WebP and TIFF are accepted, EXIF orientation is applied, any
embedded colour profile is converted to sRGB and the pixels become 8-bit RGB.
The stored file is a lossless PNG of those pixels; the SHA-256 of the pixels
(not of the file) de-duplicates the same picture sent in two formats.
"""

from __future__ import annotations

import hashlib
import io
import random
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.conf import settings
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from stylecore.io import open_image

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF")
# 40 Mpx: a large museum scan; a 100 000 × 100 000 "image" of a few KB is refused
# before any pixel is decoded.
DEFAULT_MAX_PIXELS = 40_000_000
THUMBNAIL_SIDE = 256
# A zip of uploads is opened only if its members are plausible images in size.
MAX_ZIP_MEMBERS = 2000
MAX_MEMBER_BYTES = 100 * 1024 * 1024
MAX_ZIP_TOTAL_BYTES = 2 * 1024 * 1024 * 1024


class RejectedImage(ValueError):
    """An uploaded file that is not accepted; ``reason`` says why, for people."""

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason


@dataclass(frozen=True)
class CheckedImage:
    """A validated upload, ready to store.

    Attributes:
        filename: the original name (for people only; never used as a path).
        png: the normalised pixels as PNG bytes (8-bit sRGB RGB, upright).
        thumbnail: JPEG bytes, longer side at most ``THUMBNAIL_SIDE``.
        sha256: hex SHA-256 of the pixels and size (de-duplication key).
        width, height: size after orientation.
        source_format: the uploaded format, e.g. ``"JPEG"``.
    """

    filename: str
    png: bytes
    thumbnail: bytes
    sha256: str
    width: int
    height: int
    source_format: str


def max_pixels() -> int:
    return int(getattr(settings, "STYLESTUDY_MAX_UPLOAD_PIXELS", DEFAULT_MAX_PIXELS))


def _to_srgb(img: Image.Image) -> Image.Image:
    """Convert an image with an embedded ICC profile to sRGB (others are taken as sRGB)."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return img
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        dst = ImageCms.createProfile("sRGB")
        out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(img, src, dst, outputMode=out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        # A broken profile is ignored rather than rejecting an otherwise good image.
        return img
    return converted if converted is not None else img


def check_uploaded_image(data: bytes, filename: str, *, limit: int | None = None) -> CheckedImage:
    """Validate and normalise one uploaded file.

    Args:
        data: the file's bytes.
        filename: its name, used in messages only.
        limit: maximum pixel count (default: ``STYLESTUDY_MAX_UPLOAD_PIXELS``).

    Returns:
        A :class:`CheckedImage`.

    Raises:
        RejectedImage: empty, not an image, a format other than JPEG/PNG/WebP/
            TIFF, too many pixels, truncated or corrupt data.
    """
    limit = limit or max_pixels()
    if not data:
        raise RejectedImage(filename, "the file is empty")
    with warnings.catch_warnings():
        # Pillow only warns between its limit and twice it; treat that as an error too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format or "unknown"
                if fmt not in ALLOWED_FORMATS:
                    raise RejectedImage(
                        filename, f"format {fmt} is not accepted (use JPEG, PNG, WebP or TIFF)"
                    )
                width, height = probe.size
                if width * height > limit:
                    raise RejectedImage(
                        filename,
                        f"{width}×{height} = {width * height:,} pixels exceeds the limit of {limit:,}",
                    )
                probe.verify()
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                upright = ImageOps.exif_transpose(img)
                rgb = open_image(_to_srgb(upright))
        except RejectedImage:
            raise
        except UnidentifiedImageError:
            raise RejectedImage(filename, "not an image file Pillow can read") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise RejectedImage(filename, f"too many pixels (decompression bomb?): {exc}") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise RejectedImage(filename, f"corrupt or truncated image: {exc}") from None
    pixels = rgb.tobytes()
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:".encode() + pixels).hexdigest()
    png = io.BytesIO()
    rgb.save(png, format="PNG")
    thumb = rgb.copy()
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    jpeg = io.BytesIO()
    thumb.save(jpeg, format="JPEG", quality=85)
    return CheckedImage(
        filename=filename, png=png.getvalue(), thumbnail=jpeg.getvalue(), sha256=digest,
        width=rgb.width, height=rgb.height, source_format=fmt,
    )


def _is_hidden(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def expand_uploads(files: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, bytes | RejectedImage]]:
    """Yield ``(name, bytes)`` for each file, opening zip archives into their members.

    A bad archive, or a member that is too large, is yielded as a
    :class:`RejectedImage` so the rest of the batch still goes through.
    """
    for name, data in files:
        if not (name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04"):
            yield name, data
            continue
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as exc:
            yield name, RejectedImage(name, f"not a readable zip archive: {exc}")
            continue
        with archive:
            members = [m for m in archive.infolist() if not m.is_dir() and not _is_hidden(m.filename)]
            if len(members) > MAX_ZIP_MEMBERS:
                yield name, RejectedImage(name, f"{len(members)} files in the archive; at most {MAX_ZIP_MEMBERS}")
                continue
            total = sum(m.file_size for m in members)
            if total > MAX_ZIP_TOTAL_BYTES:
                yield name, RejectedImage(name, f"archive expands to {total:,} bytes; at most {MAX_ZIP_TOTAL_BYTES:,}")
                continue
            for member in members:
                label = f"{name}/{member.filename}"
                if member.file_size > MAX_MEMBER_BYTES:
                    yield label, RejectedImage(label, f"{member.file_size:,} bytes; at most {MAX_MEMBER_BYTES:,}")
                    continue
                try:
                    yield label, archive.read(member)
                except (zipfile.BadZipFile, OSError, NotImplementedError) as exc:
                    yield label, RejectedImage(label, f"cannot extract from the archive: {exc}")


def attention_foil_png(source, *, size: int, seed: int, scrambled: bool, grid: int = 4) -> bytes:
    """An attention-check image of a content photo, at most ``size`` pixels on its longer side.

    ``scrambled``: cut into ``grid``×``grid`` tiles and shuffled (never the
    intact arrangement). The intact one is made the same way, unshuffled, so
    the two look alike in size and sharpness, and like the study's candidates.
    """
    with source.open("rb") as fh, Image.open(fh) as img:
        img = img.convert("RGB")
        img.thumbnail((size, size))  # never enlarged, like the trials' candidates
        w, h = (img.width // grid) * grid, (img.height // grid) * grid
        img = out = img.crop((0, 0, w, h))
        if scrambled:
            tw, th = w // grid, h // grid
            tiles = [img.crop((x * tw, y * th, (x + 1) * tw, (y + 1) * th)) for y in range(grid) for x in range(grid)]
            order = list(range(len(tiles)))
            rng = random.Random(seed)
            while order == sorted(order):
                rng.shuffle(order)
            out = Image.new("RGB", (w, h))
            for i, src in enumerate(order):
                out.paste(tiles[src], ((i % grid) * tw, (i // grid) * th))
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        return buf.getvalue()
