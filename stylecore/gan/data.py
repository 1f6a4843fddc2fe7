"""Unpaired image collections for GAN training: folders or file lists, random crop/flip.

A :class:`ImageCollection` decodes every image once, checks it, and keeps it
in memory as 8-bit RGB resized so its shorter side is ``load_size``
(CycleGAN resizes to 286 and crops 256). A :class:`DomainSampler` draws
batches of random square crops, optionally flipped, from one collection; its
whole state (its generator, the current epoch order and position) is in
:meth:`DomainSampler.state_dict`, so a resumed training run sees the same
batches as an uninterrupted one.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..io import open_image, pil_to_tensor

__all__ = [
    "IMAGE_EXTENSIONS",
    "MIN_IMAGES",
    "DomainSampler",
    "ImageCollection",
    "SmallCollectionWarning",
    "list_images",
    "small_collection_message",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# Below this many images a GAN mostly memorises its collection; CycleGAN's
# smallest published collections hold a few hundred images.
MIN_IMAGES = 20


class SmallCollectionWarning(UserWarning):
    """A training collection holds too few images to learn a style from."""


def small_collection_message(name: str, count: int, min_images: int = MIN_IMAGES) -> str | None:
    """The :class:`SmallCollectionWarning` text for a collection of ``count`` images, or ``None``.

    Example:
        >>> small_collection_message("ink", 3, 20)[:38]
        "image collection 'ink' has only 3 imag"
        >>> small_collection_message("ink", 20, 20) is None
        True
    """
    if count >= min_images:
        return None
    return (f"image collection {name!r} has only {count} images; a GAN needs at least {min_images} "
            "(better hundreds) to learn a style rather than memorise these images")


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursively, sorted, hidden files skipped).

    Raises:
        FileNotFoundError: ``folder`` does not exist or is not a folder.
        ValueError: it holds no image file (the message names it).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"image collection folder {root} does not exist or is not a folder")
    files = sorted(p for p in root.rglob("*")
                   if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise ValueError(
            f"image collection {root} is empty: no {'/'.join(IMAGE_EXTENSIONS)} files in it"
        )
    return files


class ImageCollection:
    """One domain's images, decoded and resized once, kept as ``uint8`` ``(3, h, w)`` tensors.

    Args:
        source: a folder, or a sequence of image files (e.g. a study's style
            images of one culture).
        load_size: the shorter side after resizing (aspect ratio kept);
            must be at least the crop size used when sampling.
        name: label used in messages (defaults to the folder name).
        min_images: warn with :class:`SmallCollectionWarning` below this count.

    Raises:
        FileNotFoundError: the folder or a listed file does not exist.
        ValueError: the collection is empty, or a file is not a readable image
            (the message names the file).
    """

    def __init__(self, source: str | os.PathLike | Sequence[str | os.PathLike], load_size: int, *,
                 name: str | None = None, min_images: int = MIN_IMAGES) -> None:
        if load_size < 4:
            raise ValueError(f"load_size must be >= 4, got {load_size}")
        if isinstance(source, (str, os.PathLike)):
            files = list_images(source)
            name = name or Path(source).name
        else:
            files = [Path(p) for p in source]
            if not files:
                raise ValueError(f"image collection {name or '<list>'} is empty: no files given")
            for f in files:
                if not f.is_file():
                    raise FileNotFoundError(f"image file {f} of collection {name} does not exist")
        self.name = name or "collection"
        self.files = files
        self.load_size = load_size
        self.images = [self._load(f) for f in files]
        message = small_collection_message(self.name, len(files), min_images)
        if message:
            warnings.warn(message, SmallCollectionWarning, stacklevel=2)

    def _load(self, path: Path) -> torch.Tensor:
        x = pil_to_tensor(open_image(path))  # ValueError names the file
        h, w = x.shape[-2:]
        scale = self.load_size / min(h, w)
        size = (max(self.load_size, round(h * scale)), max(self.load_size, round(w * scale)))
        x = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)
        return (x[0].clamp(0, 1) * 255).round().to(torch.uint8)

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return f"ImageCollection({self.name!r}, {len(self)} images, load_size={self.load_size})"

    def center_crops(self, size: int, n: int | None = None) -> torch.Tensor:
        """Centre crops of the first ``n`` images: ``(n, 3, size, size)`` in [0, 1]."""
        out = []
        for img in self.images[: n or len(self.images)]:
            h, w = img.shape[-2:]
            top, left = (h - size) // 2, (w - size) // 2
            out.append(img[:, top:top + size, left:left + size])
        return torch.stack(out).float() / 255.0


class DomainSampler:
    """Endless batches of random crops from one collection, with resumable state.

    Images are visited in a fresh random order each epoch; each draw takes a
    random ``size``×``size`` crop and, with ``flip``, mirrors it with
    probability 1/2.

    Args:
        collection: the images.
        size: crop side in pixels (must not exceed ``collection.load_size``).
        batch_size: images per batch.
        seed: seed of the sampler's own generator.
        flip: random horizontal flips.

    Example:
        >>> import tempfile, PIL.Image
        >>> d = tempfile.mkdtemp()
        >>> for i in range(2):
        ...     PIL.Image.new("RGB", (40, 30), (i * 90, 0, 0)).save(f"{d}/{i}.png")
        >>> coll = ImageCollection(d, load_size=24, min_images=1)
        >>> DomainSampler(coll, size=16, batch_size=3).next().shape
        torch.Size([3, 3, 16, 16])
    """

    def __init__(self, collection: ImageCollection, size: int, batch_size: int = 1, *,
                 seed: int = 0, flip: bool = True) -> None:
        if size > collection.load_size:
            raise ValueError(f"crop size {size} exceeds load_size {collection.load_size}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.collection, self.size, self.batch_size, self.flip = collection, size, batch_size, flip
        self.generator = torch.Generator().manual_seed(seed)
        self.order: list[int] = []
        self.position = 0
        self.epoch = 0

    def _next_index(self) -> int:
        if self.position >= len(self.order):
            self.order = torch.randperm(len(self.collection), generator=self.generator).tolist()
            self.position = 0
            self.epoch += 1
        idx = self.order[self.position]
        self.position += 1
        return idx

    def draw(self) -> torch.Tensor:
        """One random crop ``(3, size, size)`` in [0, 1]."""
        img = self.collection.images[self._next_index()]
        h, w = img.shape[-2:]
        top = int(torch.randint(h - self.size + 1, (), generator=self.generator))
        left = int(torch.randint(w - self.size + 1, (), generator=self.generator))
        crop = img[:, top:top + self.size, left:left + self.size]
        if self.flip and float(torch.rand((), generator=self.generator)) < 0.5:
            crop = crop.flip(-1)
        return crop.float() / 255.0

    def next(self, n: int | None = None) -> torch.Tensor:
        """A batch ``(n or batch_size, 3, size, size)`` in [0, 1] on the CPU."""
        return torch.stack([self.draw() for _ in range(n or self.batch_size)])

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order": list(self.order),
                "position": self.position, "epoch": self.epoch, "n_images": len(self.collection)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["n_images"] != len(self.collection):
            raise ValueError(
                f"collection {self.collection.name!r} now has {len(self.collection)} images but "
                f"the checkpoint was trained on {state['n_images']}: cannot resume exactly"
            )
        self.generator.set_state(state["generator"])
        self.order, self.position, self.epoch = list(state["order"]), state["position"], state["epoch"]


def collections_from(sources: Iterable[tuple[str, Any]], load_size: int,
                     min_images: int = MIN_IMAGES) -> list[ImageCollection]:
    """``[(name, folder or file list), …]`` → collections, in order."""
    return [ImageCollection(src, load_size, name=name, min_images=min_images)
            for name, src in sources]
