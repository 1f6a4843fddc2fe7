"""Candidates as jobs: queue, claim, store, fail, cancel, re-queue, sweep.

The web side (:func:`do_queue_generation` and friends) creates and queues
candidates; the worker side (:mod:`studies.workers.generate`) computes on
candidates it claimed here and stores results through :func:`store_result`,
which refuses a result whose claim was lost (cancelled, or swept and claimed
by another worker). Whether a candidate is scored after generation is kept on
the row (``Candidate.score``), so it survives re-queues and sweeps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..models import Candidate, JobStatus, Study
from ..models.study import StudyFrozenError
from . import jobs
from .study import check_editable, do_update_study_status

# Content × style pairs of one method configuration per generation task: one
# batched model call per task. 8 pairs at 512 px fit a 16 GB GPU for the
# feed-forward methods; a task that runs out of memory halves it by itself.
GENERATION_BATCH_PAIRS = 8
# Candidates per scoring task; metrics run over them as one batch.
SCORING_BATCH = 16
GENERATE_TASK = "studies.tasks.generate_candidates_task"
SCORE_TASK = "studies.tasks.score_candidates_task"
FROZEN = [Study.Status.LIVE, Study.Status.CLOSED]


def enqueue_candidates(candidate_ids: Iterable[int]) -> int:
    """Queue generation tasks for queued candidates: one task per method config, seed and batch.

    Candidates are ordered style-major so one batch shares as few styles as
    possible (style-side work is done once per style in a batch). A task's
    candidates always share method configuration and seed, so the worker runs
    them as one grid.
    """
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    rows = (
        Candidate.objects.filter(pk__in=list(candidate_ids), status=JobStatus.QUEUED)
        .order_by("method_config_id", "seed", "style_id", "content_id")
        .values_list("pk", "method_config_id", "seed")
    )
    for pk, mc, seed in rows:
        groups[(mc, seed)].append(pk)
    batches = 0
    for ids in groups.values():
        for start in range(0, len(ids), GENERATION_BATCH_PAIRS):
            jobs.enqueue(GENERATE_TASK, ids[start : start + GENERATION_BATCH_PAIRS])
            batches += 1
    return batches


def do_queue_generation(study: Study, *, score: Sequence[str] | bool = True) -> dict[str, int]:
    """Create every missing candidate of ``study`` and queue generation.

    Candidates are content × style × method configuration × seed (a trained
    generator's only with the style images of the culture it maps to); existing
    ones (any status) are left alone, so pressing the button twice queues
    nothing new. Queued candidates whose tasks were lost are queued again.

    Args:
        score: after generation, compute these metrics (``True``: the default
            set, ``False``: none); kept on each queued candidate.

    Returns:
        ``{"created": n, "queued": n, "tasks": n}``.

    Raises:
        StudyFrozenError: the study is live or closed.
        ValidationError: no content images, style images or method configurations.
    """
    check_editable(study)
    contents = list(study.content_images.values_list("pk", flat=True))
    styles = list(study.style_images.values_list("pk", "culture__slug"))
    configs = list(study.method_configs.select_related("training_run"))
    missing = [label for label, rows in (("content images", contents), ("style images", styles),
                                          ("method configurations", configs)) if not rows]
    if missing:
        raise ValidationError(f"Cannot generate: the study has no {', '.join(missing)}.", code="incomplete")
    score = list(score) if not isinstance(score, bool) else score
    now = timezone.now()
    with transaction.atomic():
        existing = set(
            Candidate.objects.filter(study=study).values_list("content_id", "style_id", "method_config_id", "seed")
        )
        new = [
            Candidate(study=study, content_id=c, style_id=s, method_config_id=m, seed=seed, queued_at=now,
                      score=score)
            for m, culture in ((mc.pk, mc.trained_culture) for mc in configs)
            for s, style_culture in styles if culture is None or culture == style_culture
            for c in contents for seed in range(study.seeds)
            if (c, s, m, seed) not in existing
        ]
        Candidate.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
        queued = list(Candidate.objects.filter(study=study, status=JobStatus.QUEUED).values_list("pk", flat=True))
        Candidate.objects.filter(pk__in=queued).update(queued_at=now, score=score)
        if queued and study.status in (Study.Status.DRAFT, Study.Status.READY):
            Study.objects.filter(pk=study.pk).update(status=Study.Status.GENERATING)
            study.status = Study.Status.GENERATING
        tasks = enqueue_candidates(queued)
    return {"created": len(new), "queued": len(queued), "tasks": tasks}


def queue_scoring(candidate_ids: Sequence[int], metrics: Sequence[str] | None = None) -> int:
    """Queue scoring tasks of ``SCORING_BATCH`` candidates each; returns the number of tasks."""
    ids = list(candidate_ids)
    names = list(metrics) if metrics else None
    for start in range(0, len(ids), SCORING_BATCH):
        jobs.enqueue(SCORE_TASK, ids[start : start + SCORING_BATCH], metrics=names)
    return -(-len(ids) // SCORING_BATCH)


def queue_scoring_after_generation(candidate_ids: Sequence[int]) -> int:
    """Queue scoring of newly generated candidates as each one's ``score`` choice says."""
    by_choice: dict[str, tuple[Any, list[int]]] = {}
    for pk, score in Candidate.objects.filter(pk__in=list(candidate_ids), status=JobStatus.DONE).values_list(
        "pk", "score"
    ):
        if score:
            by_choice.setdefault(repr(score), (score, []))[1].append(pk)
    return sum(queue_scoring(ids, score if isinstance(score, list) else None) for score, ids in by_choice.values())


def do_queue_scoring(study: Study, metrics: Sequence[str] | None = None) -> dict[str, int]:
    """Queue metric computation for every generated candidate of ``study``.

    Already stored values are kept (a task skips a metric whose value exists
    at the same version), so this is safe to press repeatedly.
    """
    ids = list(study.candidates.filter(status=JobStatus.DONE).order_by("pk").values_list("pk", flat=True))
    return {"candidates": len(ids), "tasks": queue_scoring(ids, metrics)}


def do_retry_failed(study: Study, *, score: Sequence[str] | bool = True) -> dict[str, int]:
    """Queue the failed (and cancelled) candidates of ``study`` again."""
    return do_requeue_candidates(study.candidates.all(), score=score)


def do_requeue_candidates(candidates, *, score: Sequence[str] | bool = True) -> dict[str, int]:
    """Queue failed or cancelled candidates (a queryset) again, skipping frozen studies.

    Raises:
        StudyFrozenError: every selected candidate belongs to a live or closed study.
    """
    score = list(score) if not isinstance(score, bool) else score
    with transaction.atomic():
        rows = candidates.filter(status__in=[JobStatus.FAILED, JobStatus.CANCELLED])
        frozen = Study.objects.filter(pk__in=rows.values("study_id"), status__in=FROZEN)
        if frozen.exists() and not rows.exclude(study__in=frozen).exists():
            raise StudyFrozenError(frozen.first())
        ids = jobs.requeue(rows.exclude(study__in=frozen), score=score)
        Study.objects.filter(
            pk__in=Candidate.objects.filter(pk__in=ids).values("study_id"),
            status__in=[Study.Status.DRAFT, Study.Status.READY],
        ).update(status=Study.Status.GENERATING)
        tasks = enqueue_candidates(ids)
    return {"queued": len(ids), "tasks": tasks}


def do_cancel(study: Study) -> dict[str, int]:
    """Cancel queued and running candidates of ``study``.

    A running candidate's result is discarded when its worker finishes (its
    claim no longer matches); queued tasks find nothing to do.
    """
    check_editable(study)
    return do_cancel_candidates(study.candidates.all())


def do_cancel_candidates(candidates) -> dict[str, int]:
    """Cancel the queued and running candidates of a queryset (frozen studies are skipped)."""
    with transaction.atomic():
        ids = jobs.cancel(candidates.exclude(study__status__in=FROZEN), "cancelled by a researcher")
        for study_id in set(Candidate.objects.filter(pk__in=ids).values_list("study_id", flat=True)):
            do_update_study_status(study_id)
    return {"cancelled": len(ids)}


# Worker side ---------------------------------------------------------------


def claim_candidates(candidate_ids: Iterable[int], token: str, host: str) -> list[int]:
    """Mark queued candidates as running under ``token``; returns the ids this call got."""
    return jobs.claim(Candidate, candidate_ids, token, host)


def candidate_heartbeat(ids: Sequence[int], token: str) -> jobs.Heartbeat:
    """Keeps the claimed candidates ``ids`` fresh for the stale sweep."""
    return jobs.Heartbeat.of(Candidate, ids, token)


def store_result(row: Candidate, token: str, *, image: str, provenance: dict, seconds: float, host: str) -> bool:
    """Mark ``row`` done with its stored ``image``; ``False`` (store nothing) if the claim was lost."""
    return jobs.finish(Candidate, row.pk, token, JobStatus.DONE, image=image, provenance=provenance,
                       seconds=seconds, worker=host[:200])


def fail_candidates(ids: Iterable[int], token: str, message: str) -> list[int]:
    """Fail the candidates still held by ``token``; returns the ids failed."""
    ids = list(ids)
    return [pk for pk in ids if jobs.finish(Candidate, pk, token, JobStatus.FAILED, message)]


def release_candidates(candidate_ids: Iterable[int], token: str, reason: str) -> int:
    """Put still-running candidates of this claim back in the queue (the task will be retried)."""
    return jobs.release(Candidate, candidate_ids, token, reason)


def update_studies_of(candidate_ids: Iterable[int]) -> None:
    """Move the studies of these candidates on (generating → ready) when no work is left."""
    for study_id in set(Candidate.objects.filter(pk__in=list(candidate_ids)).values_list("study_id", flat=True)):
        try:
            do_update_study_status(study_id)
        except jobs.TRANSIENT_ERRORS:
            jobs.logger.exception("could not update study %s status", study_id)


def sweep_stale_candidates(
    *, stale_after: float | None = None, requeue_queued_after: float | None = None,
    max_attempts: int = jobs.MAX_ATTEMPTS,
) -> dict[str, list[int]]:
    """Re-queue candidates whose worker died, re-send long-queued ones (see :func:`jobs.sweep`)."""
    swept = jobs.sweep(Candidate, stale_after=stale_after, requeue_queued_after=requeue_queued_after,
                       max_attempts=max_attempts, what="generating this candidate")
    ids = swept["requeued"] + swept["resent"]
    if ids:
        with transaction.atomic():
            enqueue_candidates(ids)
    update_studies_of(swept["failed"])
    return swept
