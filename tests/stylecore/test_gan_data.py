"""Training collections: folders, file lists, errors, crops and resumable sampling."""

from __future__ import annotations

import warnings

import pytest
import torch
from PIL import Image

from stylecore.gan import DomainSampler, ImageCollection, SmallCollectionWarning


def _folder(tmp_path, n, size=(48, 40), name="dom"):
    d = tmp_path / name
    d.mkdir()
    for i in range(n):
        Image.new("RGB", size, (i * 20 % 256, 100, 200 - i)).save(d / f"{i:02d}.png")
    return d


class TestImageCollection:
    def test_folder(self, tmp_path):
        d = _folder(tmp_path, 3)
        (d / "notes.txt").write_text("not an image")
        (d / ".hidden.png").write_bytes(b"junk")
        with pytest.warns(SmallCollectionWarning, match="only 3 images"):
            coll = ImageCollection(d, load_size=20)
        assert len(coll) == 3 and coll.name == "dom"
        # shorter side 40 → 20, aspect kept: 48 → 24
        assert coll.images[0].shape == (3, 20, 24) and coll.images[0].dtype == torch.uint8

    def test_file_list(self, tmp_path):
        d = _folder(tmp_path, 2)
        coll = ImageCollection([d / "00.png", d / "01.png"], 16, name="japanese", min_images=1)
        assert coll.name == "japanese" and len(coll) == 2

    def test_no_warning_when_large_enough(self, tmp_path):
        d = _folder(tmp_path, 4)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ImageCollection(d, 16, min_images=4)

    def test_empty_folder_error_names_folder(self, tmp_path):
        (tmp_path / "empty").mkdir()
        with pytest.raises(ValueError, match="empty.*is empty"):
            ImageCollection(tmp_path / "empty", 16)

    def test_missing_folder(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nowhere"):
            ImageCollection(tmp_path / "nowhere", 16)

    def test_unreadable_file_error_names_file(self, tmp_path):
        d = _folder(tmp_path, 2)
        (d / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
        with pytest.raises(ValueError, match="broken.jpg"):
            ImageCollection(d, 16, min_images=1)

    def test_missing_listed_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="gone.png"):
            ImageCollection([tmp_path / "gone.png"], 16, name="x")


class TestDomainSampler:
    def test_crops_in_range_and_every_image_each_epoch(self, tmp_path):
        d = _folder(tmp_path, 5)
        coll = ImageCollection(d, 24, min_images=1)
        s = DomainSampler(coll, size=16, batch_size=5, seed=3)
        batch = s.next()
        assert batch.shape == (5, 3, 16, 16) and 0 <= batch.min() and batch.max() <= 1
        assert sorted(s.order) == list(range(5)) and s.epoch == 1
        # each image has a distinct red level, so one epoch shows each once
        reds = sorted(round(float(b[0].mean()) * 255) for b in batch)
        assert reds == [0, 20, 40, 60, 80]

    def test_flip(self, tmp_path):
        d = tmp_path / "grad"
        d.mkdir()
        ramp = torch.linspace(0, 255, 16).round().to(torch.uint8).expand(16, 16)
        Image.fromarray(torch.stack([ramp] * 3, -1).numpy()).save(d / "ramp.png")
        coll = ImageCollection(d, 16, min_images=1)
        s = DomainSampler(coll, 16, batch_size=40, seed=0)
        first_col = s.next()[:, 0, :, 0].mean(1)
        flipped = int((first_col > 0.5).sum())
        assert 8 < flipped < 32

    def test_state_resumes_same_batches(self, tmp_path):
        coll = ImageCollection(_folder(tmp_path, 4), 24, min_images=1)
        a = DomainSampler(coll, 16, 3, seed=1)
        a.next(), a.next()
        b = DomainSampler(coll, 16, 3, seed=7)
        b.load_state_dict(a.state_dict())
        for _ in range(3):
            assert torch.equal(a.next(), b.next())

    def test_state_from_other_collection_rejected(self, tmp_path):
        a = DomainSampler(ImageCollection(_folder(tmp_path, 4), 24, min_images=1), 16)
        b = DomainSampler(ImageCollection(_folder(tmp_path, 3, name="o"), 24, min_images=1), 16)
        with pytest.raises(ValueError, match="cannot resume"):
            b.load_state_dict(a.state_dict())

    def test_crop_larger_than_load_size(self, tmp_path):
        coll = ImageCollection(_folder(tmp_path, 1), 16, min_images=1)
        with pytest.raises(ValueError, match="exceeds load_size"):
            DomainSampler(coll, 20)
