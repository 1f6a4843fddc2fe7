"""Study set-up and the candidate pipeline: create, import, generate, score, go live.

The functions here run in the web process (admin actions, the demo command);
they change rows atomically and queue Celery tasks only after commit. The
worker-side code is in :mod:`studies.pipeline`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from ..imaging import RejectedImage, check_uploaded_image, expand_uploads
from ..local_storage import describe_storage_error
from ..models import (
    Candidate,
    ContentImage,
    CultureTag,
    MetricValue,
    Study,
    StudyReport,
    StyleImage,
)
from ..models.study import StudyFrozenError

# Content × style pairs of one method configuration per generation task: one
# batched model call per task. 8 pairs at 512 px fit a 16 GB GPU for the
# feed-forward methods; a task that runs out of memory halves it by itself.
GENERATION_BATCH_PAIRS = 8
# Candidates per scoring task; metrics run over them as one batch.
SCORING_BATCH = 16

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


def _check_editable(study: Study, what: str = "its stimuli and methods") -> None:
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
    _check_editable(study)
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


def _enqueue_generation(ids_by_group: dict[tuple[int, int], list[int]], score: Sequence[str] | bool) -> int:
    from ..tasks import generate_candidates_task

    batches = 0
    for ids in ids_by_group.values():
        for start in range(0, len(ids), GENERATION_BATCH_PAIRS):
            chunk = ids[start : start + GENERATION_BATCH_PAIRS]
            transaction.on_commit(
                lambda chunk=chunk: generate_candidates_task.delay(chunk, score=score)
            )
            batches += 1
    return batches


def enqueue_candidates(candidate_ids: Iterable[int], *, score: Sequence[str] | bool = False) -> int:
    """Queue generation tasks for queued candidates, batched per method config and seed.

    Candidates are ordered style-major so one batch shares as few styles as
    possible (style-side work is done once per style in a batch).
    """
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    rows = (
        Candidate.objects.filter(pk__in=list(candidate_ids), status=Candidate.Status.QUEUED)
        .order_by("method_config_id", "seed", "style_id", "content_id")
        .values_list("pk", "method_config_id", "seed")
    )
    for pk, mc, seed in rows:
        groups[(mc, seed)].append(pk)
    return _enqueue_generation(groups, score)


def do_queue_generation(study: Study, *, score: Sequence[str] | bool = True) -> dict[str, int]:
    """Create every missing candidate of ``study`` and queue generation.

    Candidates are content × style × method configuration × seed; existing
    ones (any status) are left alone, so pressing the button twice queues
    nothing new. Queued candidates whose tasks were lost are queued again.

    Args:
        score: after generation, compute these metrics (``True``: the default
            set, ``False``: none).

    Returns:
        ``{"created": n, "queued": n, "tasks": n}``.

    Raises:
        StudyFrozenError: the study is live or closed.
        ValidationError: no content images, style images or method configurations.
    """
    _check_editable(study)
    contents = list(study.content_images.values_list("pk", flat=True))
    styles = list(study.style_images.values_list("pk", flat=True))
    configs = list(study.method_configs.values_list("pk", flat=True))
    missing = [label for label, rows in (("content images", contents), ("style images", styles),
                                          ("method configurations", configs)) if not rows]
    if missing:
        raise ValidationError(f"Cannot generate: the study has no {', '.join(missing)}.", code="incomplete")
    now = timezone.now()
    with transaction.atomic():
        existing = set(
            Candidate.objects.filter(study=study).values_list("content_id", "style_id", "method_config_id", "seed")
        )
        new = [
            Candidate(study=study, content_id=c, style_id=s, method_config_id=m, seed=seed, queued_at=now)
            for m in configs for s in styles for c in contents for seed in range(study.seeds)
            if (c, s, m, seed) not in existing
        ]
        Candidate.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
        queued = list(
            Candidate.objects.filter(study=study, status=Candidate.Status.QUEUED).values_list("pk", flat=True)
        )
        Candidate.objects.filter(pk__in=queued).update(queued_at=now)
        if queued and study.status in (Study.Status.DRAFT, Study.Status.READY):
            Study.objects.filter(pk=study.pk).update(status=Study.Status.GENERATING)
            study.status = Study.Status.GENERATING
        tasks = enqueue_candidates(queued, score=score)
    return {"created": len(new), "queued": len(queued), "tasks": tasks}


def do_queue_scoring(study: Study, metrics: Sequence[str] | None = None) -> dict[str, int]:
    """Queue metric computation for every generated candidate of ``study``.

    Already stored values are kept (a task skips a metric whose value exists
    at the same version), so this is safe to press repeatedly.
    """
    from ..tasks import score_candidates_task

    ids = list(
        Candidate.objects.filter(study=study, status=Candidate.Status.DONE).order_by("pk").values_list("pk", flat=True)
    )
    chunks = [ids[i : i + SCORING_BATCH] for i in range(0, len(ids), SCORING_BATCH)]
    names = list(metrics) if metrics else None
    for chunk in chunks:
        transaction.on_commit(lambda chunk=chunk: score_candidates_task.delay(chunk, metrics=names))
    return {"candidates": len(ids), "tasks": len(chunks)}


def do_retry_failed(study: Study, *, score: Sequence[str] | bool = True) -> dict[str, int]:
    """Queue the failed (and cancelled) candidates of ``study`` again."""
    return do_requeue_candidates(study.candidates.all(), score=score)


def do_requeue_candidates(candidates, *, score: Sequence[str] | bool = True) -> dict[str, int]:
    """Queue failed or cancelled candidates (a queryset) again, skipping frozen studies.

    Raises:
        StudyFrozenError: every selected candidate belongs to a live or closed study.
    """
    with transaction.atomic():
        rows = candidates.filter(status__in=[Candidate.Status.FAILED, Candidate.Status.CANCELLED])
        frozen = Study.objects.filter(pk__in=rows.values("study_id"), status__in=[Study.Status.LIVE,
                                                                                  Study.Status.CLOSED])
        if frozen.exists() and not rows.exclude(study__in=frozen).exists():
            raise StudyFrozenError(frozen.first())
        ids = list(rows.exclude(study__in=frozen).values_list("pk", flat=True))
        Candidate.objects.filter(pk__in=ids).update(
            status=Candidate.Status.QUEUED, error="", claim="", attempts=0, queued_at=timezone.now()
        )
        Study.objects.filter(
            pk__in=Candidate.objects.filter(pk__in=ids).values("study_id"),
            status__in=[Study.Status.DRAFT, Study.Status.READY],
        ).update(status=Study.Status.GENERATING)
        tasks = enqueue_candidates(ids, score=score)
    return {"queued": len(ids), "tasks": tasks}


def do_cancel(study: Study) -> dict[str, int]:
    """Cancel queued and running candidates of ``study``.

    A running candidate's result is discarded when its worker finishes (its
    claim no longer matches); queued tasks find nothing to do.
    """
    _check_editable(study)
    return do_cancel_candidates(study.candidates.all())


def do_cancel_candidates(candidates) -> dict[str, int]:
    """Cancel the queued and running candidates of a queryset (frozen studies are skipped)."""
    with transaction.atomic():
        rows = candidates.filter(status__in=[Candidate.Status.QUEUED, Candidate.Status.RUNNING]).exclude(
            study__status__in=[Study.Status.LIVE, Study.Status.CLOSED]
        )
        ids = list(rows.values_list("pk", flat=True))
        studies = set(Candidate.objects.filter(pk__in=ids).values_list("study_id", flat=True))
        n = Candidate.objects.filter(pk__in=ids).update(
            status=Candidate.Status.CANCELLED, claim="", error="cancelled by a researcher"
        )
        for study_id in studies:
            do_update_study_status(study_id)
    return {"cancelled": n}


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


def compute_config_hash(study: Study) -> str:
    """SHA-256 of everything that defines the stimuli: images, methods, seeds, size, candidates.

    Two studies with the same pictures (by pixel hash), cultures, method
    configurations and generated candidates have the same hash.
    """
    payload = {
        "image_size": study.image_size,
        "seeds": study.seeds,
        "contents": sorted(study.content_images.values_list("sha256", flat=True)),
        "styles": sorted(
            [sha, culture] for sha, culture in study.style_images.values_list("sha256", "culture__slug")
        ),
        "methods": sorted(
            [label, method, json.dumps(params, sort_keys=True), family]
            for label, method, params, family in study.method_configs.values_list("label", "method", "params", "family")
        ),
        "candidates": sorted(
            [content, style, label, seed, image]
            for content, style, label, seed, image in study.candidates.filter(status=Candidate.Status.DONE).values_list(
                "content__sha256", "style__sha256", "method_config__label", "seed", "image"
            )
        ),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def check_can_go_live(study: Study) -> list[str]:
    """Reasons ``study`` cannot go live now (empty when it can)."""
    problems = []
    if study.status not in (Study.Status.READY, Study.Status.DRAFT, Study.Status.GENERATING):
        problems.append(f"the study is {study.get_status_display().lower()}")
    counts = dict(study.candidates.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    if not counts.get(Candidate.Status.DONE):
        problems.append("no candidates have been generated")
    pending = counts.get(Candidate.Status.QUEUED, 0) + counts.get(Candidate.Status.RUNNING, 0)
    if pending:
        problems.append(f"{pending} candidate(s) are still queued or running")
    if not study.questions.exists():
        problems.append("the study has no questions")
    return problems


def do_go_live(study: Study) -> Study:
    """Open ``study`` to participants and freeze its stimuli (stores the config hash).

    Raises:
        ValidationError: see :func:`check_can_go_live`.
    """
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        problems = check_can_go_live(study)
        if problems:
            raise ValidationError(f"“{study.title}” cannot go live: {'; '.join(problems)}.", code="not_ready")
        study.config_hash = compute_config_hash(study)
        study.status = Study.Status.LIVE
        study.live_at = timezone.now()
        study.save(update_fields=["config_hash", "status", "live_at"])
    return study


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


def study_progress(study: Study, *, window: timedelta = timedelta(minutes=10)) -> dict:
    """Generation progress of ``study``: counts, per-method counts, rate, ETA, failures."""
    statuses = [s for s, _ in Candidate.Status.choices]
    totals = dict.fromkeys(statuses, 0)
    per_method: dict[str, dict[str, int]] = {}
    rows = study.candidates.values("method_config__label", "status").annotate(n=Count("pk"))
    for row in rows:
        totals[row["status"]] += row["n"]
        per_method.setdefault(row["method_config__label"], dict.fromkeys(statuses, 0))[row["status"]] = row["n"]
    now = timezone.now()
    recent = study.candidates.filter(status=Candidate.Status.DONE, finished_at__gte=now - window)
    first = recent.order_by("finished_at").values_list("finished_at", flat=True).first()
    n_recent = recent.count()
    rate = None
    if n_recent >= 2 and first is not None:
        elapsed = max((now - first).total_seconds(), 1.0)
        rate = n_recent / elapsed * 60
    pending = totals["queued"] + totals["running"]
    eta = timedelta(seconds=round(pending / rate * 60)) if rate and pending else None
    failures = list(
        study.candidates.filter(status=Candidate.Status.FAILED)
        .select_related("content", "style", "method_config")
        .order_by("-finished_at")[:50]
    )
    metrics = (
        MetricValue.objects.filter(candidate__study=study)
        .values("name").annotate(n=Count("pk"), available=Count("pk", filter=Q(value__isnull=False)))
        .order_by("name")
    )
    return {
        "total": sum(totals.values()),
        "by_status": totals,
        "by_method": per_method,
        "rate_per_minute": rate,
        "eta": eta,
        "failures": failures,
        "metrics": list(metrics),
    }


def do_request_report(study: Study, *, requested_by: str = "") -> StudyReport:
    """Create a report job for ``study`` and queue it on the cpu queue after commit."""
    from ..tasks import build_study_report_task

    with transaction.atomic():
        report = StudyReport.objects.create(study=study, requested_by=requested_by)
        transaction.on_commit(lambda: build_study_report_task.delay(report.pk))
    return report
