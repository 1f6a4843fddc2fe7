"""A full or read-only media store during an upload: clear per-file errors, the rest kept, no partial file."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import resource
import signal
from pathlib import Path

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

import studies.local_storage
from studies.actions import do_import_images
from studies.local_storage import AtomicFileSystemStorage
from studies.models import ContentImage

from .conftest import png_bytes

pytestmark = pytest.mark.django_db

#: Largest file the "disk" takes in the partial-write test: small PNGs fit, a noisy one does not.
FILE_SIZE_LIMIT = 32 * 1024


def _noise_png(side: int = 256) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(buf, format="PNG")
    assert len(buf.getvalue()) > 4 * FILE_SIZE_LIMIT
    return buf.getvalue()


@contextlib.contextmanager
def file_size_limit(limit: int):
    """The kernel refuses to grow any file past ``limit`` bytes (EFBIG), as a filling disk would mid-write."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def _stored_files(root) -> set[str]:
    return {str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file()}


def _referenced(study) -> set[str]:
    return {name for row in ContentImage.objects.filter(study=study) for name in (row.image.name, row.thumbnail.name)}


def test_default_storage_writes_all_or_nothing():
    assert isinstance(default_storage, AtomicFileSystemStorage)


def test_a_file_failing_mid_write_is_reported_and_the_rest_kept(client, researcher, study, media_root):
    """A real partial write (the kernel stops the file at 32 KiB): the admin reports that file; no 500."""
    client.force_login(researcher)
    files = [SimpleUploadedFile("small-1.png", png_bytes((10, 20, 30))),
             SimpleUploadedFile("large.png", _noise_png()),
             SimpleUploadedFile("small-2.png", png_bytes((200, 100, 50)))]
    before = ContentImage.objects.filter(study=study).count()
    with file_size_limit(FILE_SIZE_LIMIT):
        response = client.post(reverse("admin:studies_study_upload", args=[study.pk]),
                               {"kind": "content", "files": files})
    assert response.status_code == 302
    text = " ".join(str(m) for m in client.get(response["Location"]).context["messages"])
    assert "2 imported" in text and "large.png: not stored" in text, text
    names = set(ContentImage.objects.filter(study=study).values_list("original_filename", flat=True))
    assert {"small-1.png", "small-2.png"} <= names and "large.png" not in names
    assert ContentImage.objects.filter(study=study).count() == before + 2
    # Every file on disk belongs to a row: no truncated orphan, no hidden temporary file.
    on_disk = {n for n in _stored_files(media_root) if f"studies/{study.pk}/content/" in n}
    assert on_disk == _referenced(study), on_disk ^ _referenced(study)


@pytest.mark.parametrize(("code", "reason"), [(errno.ENOSPC, "the media store is full"),
                                              (errno.EROFS, "the media store is read-only")])
def test_full_or_read_only_store(study, media_root, monkeypatch, code, reason):
    """The store refuses new files after the first one: that one is kept, the others reported one by one."""
    real_open = os.open
    opened = []

    def refusing_open(path, flags, *args):
        if os.path.basename(path).startswith(".partial-"):
            opened.append(path)
            if len(opened) > 2:  # the first file's image and thumbnail go through
                raise OSError(code, os.strerror(code), path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(studies.local_storage.os, "open", refusing_open)
    batch = [(f"c{i}.png", png_bytes((40 * i, 10, 10))) for i in range(1, 4)]
    report = do_import_images(study, batch, kind="content")
    assert [row.original_filename for row in report.created] == ["c1.png"]
    assert [name for name, _ in report.rejected] == ["c2.png", "c3.png"]
    assert all(reason in why and "nothing of this file was kept" in why for _, why in report.rejected)
    on_disk = {n for n in _stored_files(media_root) if f"studies/{study.pk}/content/" in n}
    assert on_disk == _referenced(study)


def test_thumbnail_failure_removes_the_image_already_written(study, media_root, monkeypatch):
    real_save = AtomicFileSystemStorage._save

    def fail_thumbnails(self, name, content):
        if name.endswith(".jpg"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), name)
        return real_save(self, name, content)

    monkeypatch.setattr(AtomicFileSystemStorage, "_save", fail_thumbnails)
    report = do_import_images(study, [("only.png", png_bytes((1, 2, 3)))], kind="content")
    assert not report.created and report.rejected[0][0] == "only.png"
    assert {n for n in _stored_files(media_root) if f"studies/{study.pk}/content/" in n} == _referenced(study)
