"""A study's own life: create, import stimuli, generating → ready, go live, close.

Each ``do_*`` function changes rows atomically; candidates, training runs and
reports have their own modules beside this one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..imaging import RejectedImage, check_uploaded_image, expand_uploads
from ..local_storage import describe_storage_error
from ..models import (
    Candidate,
    ContentImage,
    CultureTag,
    Study,
    StyleImage,
)
from ..models.study import StudyFrozenError

logger = logging.getLogger(__name__)


@dataclass
class ImportReport:
    """What a bulk upload did: rows created, duplicates skipped, files rejected."""

    created: list[ContentImage | StyleImage] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.created)} imported"]
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} duplicate(s) skipped")
        if self.rejected:
            parts.append(f"{len(self.rejected)} rejected: " + "; ".join(f"{n}: {r}" for n, r in self.rejected))
        return ", ".join(parts)


def _delete_files(row) -> None:
    """Remove the files already stored for a row that will not be saved."""
    for field_file in (row.image, row.thumbnail):
        if field_file.name:
            try:
                field_file.storage.delete(field_file.name)
            except OSError:
                logger.warning("could not remove %s after a failed upload", field_file.name)


def check_editable(study: Study, what: str | None = None) -> None:
    """Raise :class:`StudyFrozenError` if ``study`` is live or closed (read from the database)."""
    study.refresh_from_db(fields=["status", "config_hash"])
    if study.is_frozen:
        raise StudyFrozenError(study, what)


def do_create_study(*, title: str, slug: str, owner, **fields) -> Study:
    """Create a draft study owned by ``owner``."""
    fields.setdefault("languages", [fields.get("default_language", "en")])
    with transaction.atomic():
        study = Study(title=title, slug=slug, **fields)
        study.full_clean()
        study.save()
        study.owners.add(owner)
    return study


def do_import_images(
    study: Study,
    files: Iterable[tuple[str, bytes]],
    *,
    kind: str,
    culture: CultureTag | None = None,
    fields: dict | None = None,
) -> ImportReport:
    """Validate and store uploaded images (zip archives are opened).

    Each file is checked on its own: a bad one is reported with its reason and
    the rest are still imported; an image already in the study (same pixels)
    is skipped.

    Args:
        study: a study that is not frozen.
        files: ``(filename, bytes)`` pairs.
        kind: ``"content"`` or ``"style"``.
        culture: required for style images.
        fields: extra model fields for every row (e.g. ``{"artist": …}``).

    Raises:
        StudyFrozenError: the study is live or closed.
        ValueError: bad ``kind`` or a style import without a culture.
    """
    if kind not in ("content", "style"):
        raise ValueError(f"kind must be 'content' or 'style', got {kind!r}")
    if kind == "style" and culture is None:
        raise ValueError("style images need a culture tag")
    check_editable(study)
    model = ContentImage if kind == "content" else StyleImage
    extra = dict(fields or {})
    if kind == "style":
        extra["culture"] = culture
    report = ImportReport()
    for name, data in expand_uploads(files):
        if isinstance(data, RejectedImage):
            report.rejected.append((data.filename, data.reason))
            continue
        try:
            checked = check_uploaded_image(data, name)
        except RejectedImage as exc:
            report.rejected.append((exc.filename, exc.reason))
            continue
        if model.objects.filter(study=study, sha256=checked.sha256).exists():
            report.duplicates.append(name)
            continue
        stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        row_fields = {k: v for k, v in extra.items() if k != "title"}
        row = model(
            study=study, sha256=checked.sha256, width=checked.width, height=checked.height,
            original_filename=name[-255:], title=extra.get("title") or stem[:200], **row_fields,
        )
        try:
            with transaction.atomic():
                row.image.save(f"{checked.sha256}.png", ContentFile(checked.png), save=False)
                row.thumbnail.save(f"{checked.sha256}.jpg", ContentFile(checked.thumbnail), save=False)
                row.width, row.height = checked.width, checked.height
                row.save()
        except IntegrityError:
            # The same picture arrived twice in one batch (or concurrently).
            _delete_files(row)
            report.duplicates.append(name)
            continue
        except OSError as exc:
            # A full or read-only media store: this file is reported, the files stored so far stay.
            _delete_files(row)
            report.rejected.append((name, describe_storage_error(exc)))
            continue
        report.created.append(row)
    return report


def do_update_study_status(study: Study | int) -> Study:
    """Move a generating study to ready (or back to draft) when no work is left."""
    pk = study.pk if isinstance(study, Study) else study
    with transaction.atomic():
        row = Study.objects.select_for_update().get(pk=pk)
        if row.status == Study.Status.GENERATING:
            pending = row.candidates.filter(status__in=[Candidate.Status.QUEUED, Candidate.Status.RUNNING]).exists()
            if not pending:
                done = row.candidates.filter(status=Candidate.Status.DONE).exists()
                row.status = Study.Status.READY if done else Study.Status.DRAFT
                row.save(update_fields=["status"])
    if isinstance(study, Study):
        study.status = row.status
    return row


def do_close(study: Study) -> Study:
    """Close a live study to new participants; its stimuli stay frozen."""
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        if study.status != Study.Status.LIVE:
            raise ValidationError(f"“{study.title}” is not live.", code="not_live")
        study.status = Study.Status.CLOSED
        study.closed_at = timezone.now()
        study.save(update_fields=["status", "closed_at"])
    return study
