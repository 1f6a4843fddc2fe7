"""GAN training runs as jobs: start, cancel, claim, progress, checkpoint, finish, sweep.

A run's worker (:mod:`studies.workers.train`) writes progress, its latest
checkpoint, sample grid and generator only while its claim holds; a worker
that lost its claim (the run was swept after a missed heartbeat and claimed
elsewhere) writes nothing and stops at its next cancel check. A killed
worker's run is re-queued by the sweep and resumes from the stored checkpoint.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from stylecore.methods import get_method

from ..models import GanTrainingRun, JobStatus, MethodConfig
from . import jobs

TRAIN_TASK = "studies.tasks.train_gan_task"


def do_start_training_run(run: GanTrainingRun) -> GanTrainingRun:
    """Queue a saved run for training on the gpu queue (after commit).

    Raises:
        ValidationError: The run's training settings cannot run
            (:meth:`GanTrainingRun.validate_settings`); nothing is queued.
    """
    run.validate_settings()
    with transaction.atomic():
        GanTrainingRun.objects.filter(pk=run.pk, status=JobStatus.QUEUED).update(queued_at=timezone.now())
        jobs.enqueue(TRAIN_TASK, run.pk)
    return run


def do_request_cancel(runs: QuerySet) -> int:
    """Ask the workers of queued and running runs to stop; returns how many were asked."""
    return runs.filter(status__in=jobs.PENDING).update(cancel_requested=True)


def method_checkpoint_name(run: GanTrainingRun, sha256: str) -> str:
    """Storage name of the copy of ``run``'s generator that method configurations read."""
    return f"studies/{run.study_id}/methods/gan-run{run.pk}-{sha256[:16]}.pt"


def do_use_as_method(run: GanTrainingRun, *, label: str = "") -> list[MethodConfig]:
    """Make ``run``'s trained generator method configurations of its study.

    A finished run offers its exported generator, a stopped (cancelled) one its
    latest training checkpoint. The file is copied in storage to a name of its
    own (a later run can't change it) and every configuration records the copy's
    SHA-256, which the worker and stylecore check before generating. A CycleGAN
    run gives one ``cyclegan`` configuration (photos → its culture); a
    conditional run gives one per target culture.

    Raises:
        ValidationError: the run has no usable checkpoint, the study is frozen,
            or a label is taken (nothing is stored then).
    """
    run = GanTrainingRun.objects.select_related("study").get(pk=run.pk)
    if run.status not in (JobStatus.DONE, JobStatus.CANCELLED):
        raise ValidationError(f"training run “{run.label}” is {run.get_status_display().lower()}: only a "
                              "finished or stopped run can be used as a method", code="not_finished")
    source = run.generator if run.generator else run.checkpoint
    if not source:
        raise ValidationError(f"training run “{run.label}” has no stored checkpoint", code="no_checkpoint")
    try:
        with source.open("rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ValidationError(f"the checkpoint {source.name} of training run “{run.label}” is missing from "
                              "storage", code="no_checkpoint") from None
    sha256 = hashlib.sha256(data).hexdigest()
    conditional = run.model == GanTrainingRun.Model.CONDITIONAL
    # A CycleGAN training checkpoint holds both directions: its target culture picks photo → culture.
    targets = list(run.cultures) if conditional or not run.generator else [None]
    base = label or run.label
    with transaction.atomic():
        stored = default_storage.save(method_checkpoint_name(run, sha256), ContentFile(data))
        configs = []
        try:
            for target in targets:
                params = get_method("cyclegan").validate(
                    {"checkpoint": stored, "checkpoint_sha256": sha256, "target_culture": target})
                mc = MethodConfig(study=run.study, training_run=run, method="cyclegan", params=params,
                                  label=f"{base} → {target}" if conditional else base)
                mc.full_clean()
                mc.save()
                configs.append(mc)
        except (ValidationError, ValueError) as exc:
            default_storage.delete(stored)
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError(str(exc), code="invalid") from None
    return configs


def method_provenance(mc: MethodConfig) -> dict:
    """What every candidate of a trained-GAN configuration records about where its generator came from."""
    run = mc.training_run
    return {
        "id": run.pk,
        "label": run.label,
        "model": run.model,
        "cultures": list(run.cultures),
        "config": dict(run.config),
        "iteration": run.iteration,
        "total_iterations": run.total_iterations,
        "status": run.status,
        "checkpoint": mc.params.get("checkpoint"),
        "checkpoint_sha256": mc.params.get("checkpoint_sha256"),
    }


# Worker side ---------------------------------------------------------------


def claim_run(run_id: int, token: str, host: str) -> GanTrainingRun | None:
    """Run ``run_id`` claimed under ``token`` (``run.claim == token``); ``None`` if finished or alive elsewhere."""
    if not jobs.claim(GanTrainingRun, [run_id], token, host, take_over_stale=True):
        return None
    return GanTrainingRun.objects.select_related("study").get(pk=run_id)


def should_stop(run: GanTrainingRun) -> bool:
    """Whether the run was cancelled or its claim lost (then nothing more may be written)."""
    return not jobs.held(GanTrainingRun, run.pk, run.claim).filter(cancel_requested=False).exists()


def report_progress(run: GanTrainingRun, **fields) -> bool:
    """Iteration, losses, timing of a held run; ``False`` if the claim was lost."""
    return jobs.update_held(GanTrainingRun, run.pk, run.claim, **fields)


def store_file(run: GanTrainingRun, field: str, path: Path, name: str) -> bool:
    """Put ``path`` in storage as the run's ``field`` if the claim still holds.

    The file is saved first and the row points to it only under the claim; a
    worker that lost its claim leaves no file behind and changes nothing.
    """
    old = getattr(run, field).name
    with open(path, "rb") as f:
        stored = default_storage.save(getattr(run, field).field.generate_filename(run, name), File(f))
    if not jobs.update_held(GanTrainingRun, run.pk, run.claim, **{field: stored}):
        default_storage.delete(stored)
        return False
    setattr(run, field, stored)
    if old and old != stored:
        default_storage.delete(old)
    return True


def finish_run(run: GanTrainingRun, status: str, error: str = "") -> str:
    """End a held run; returns the run's status as stored (another worker's if the claim was lost)."""
    jobs.finish(GanTrainingRun, run.pk, run.claim, status, error)
    return GanTrainingRun.objects.values_list("status", flat=True).get(pk=run.pk)


def sweep_stale_training_runs(*, stale_after: float | None = None) -> list[int]:
    """Re-queue runs whose worker stopped beating (and re-send lost ones); returns the re-queued ids."""
    swept = jobs.sweep(GanTrainingRun, stale_after=stale_after, what="training this run")
    for run_id in swept["requeued"] + swept["resent"]:
        jobs.enqueue(TRAIN_TASK, run_id)
    return swept["requeued"]
