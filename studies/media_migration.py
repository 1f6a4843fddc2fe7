"""Moving a study's stored files between local disk and object storage, verified by hash.

Names stay exactly as they are (``studies/<id>/…``), so the database needs no
change: after the copy, pointing every host at the new storage is the move.
Nothing is deleted from the source and nothing already at the destination is
overwritten.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.apps import apps
from django.core.files import File
from django.core.files.storage import Storage
from django.db import models

# Read and hash in pieces: checkpoints and report archives can be large.
_CHUNK = 4 * 1024 * 1024


@dataclass
class MigrationResult:
    """What a copy did, by stored name."""

    copied: list[str] = field(default_factory=list)
    already_there: list[str] = field(default_factory=list)
    # name -> why it could not be copied (missing at the source, different content at the destination…)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def referenced_names(study_id: int) -> list[str]:
    """Every stored name a row of the study points to (images, thumbnails, candidates, checkpoints, reports)."""
    names: list[str] = []
    for model in apps.get_app_config("studies").get_models():
        file_fields = [f.name for f in model._meta.get_fields() if isinstance(f, models.FileField)]
        if not file_fields or not any(f.name == "study" for f in model._meta.get_fields()):
            continue
        for row in model.objects.filter(study_id=study_id).values_list(*file_fields):
            names += [name for name in row if name]
    return sorted(set(names))


def _walk(storage: Storage, folder: str) -> Iterator[str]:
    try:
        dirs, files = storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in files:
        if not name.startswith(".partial-"):  # an interrupted local write, never a stored file
            yield f"{folder}/{name}"
    for sub in dirs:
        yield from _walk(storage, f"{folder}/{sub}")


def study_names(study_id: int, source: Storage) -> list[str]:
    """The study's referenced names and every other file in its folder at ``source``."""
    return sorted(set(referenced_names(study_id)) | set(_walk(source, f"studies/{study_id}")))


def _sha256(storage: Storage, name: str) -> str:
    digest = hashlib.sha256()
    with storage.open(name, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_verified(names: Iterable[str], source: Storage, destination: Storage, *,
                  dry_run: bool = False) -> MigrationResult:
    """Copy ``names`` from ``source`` to ``destination`` under the same names, checking each by SHA-256.

    A name already at the destination with the same content counts as done; with
    different content it is an error and is left alone. A copy whose read-back
    hash differs from the source is removed and reported.
    """
    result = MigrationResult()
    for name in names:
        if not source.exists(name):
            result.errors[name] = "missing at the source"
            continue
        expected = _sha256(source, name)
        if destination.exists(name):
            if _sha256(destination, name) == expected:
                result.already_there.append(name)
            else:
                result.errors[name] = "already at the destination with different content (left unchanged)"
            continue
        if dry_run:
            result.copied.append(name)
            continue
        with source.open(name, "rb") as fh:
            stored = destination.save(name, File(fh, name=name))
        if stored != name:
            destination.delete(stored)
            result.errors[name] = f"the destination stored it as {stored!r}; removed"
            continue
        if _sha256(destination, name) != expected:
            destination.delete(name)
            result.errors[name] = "read back with a different SHA-256; removed"
            continue
        result.copied.append(name)
    return result
