"""Worker-side GAN training (called by ``train_gan_task``).

The run's images are copied from storage into a local working folder, then
:func:`stylecore.gan.train_gan` trains with progress written to the row,
a throttled cancel check, and every checkpoint copied back to storage. A run
whose worker died resumes from that checkpoint on whichever worker gets the
redelivered task, with the same losses as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import socket
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from stylecore.gan import TrainConfig, TrainProgress, train_gan

from .models import GanTrainingRun
from .pipeline import Heartbeat, stale_after_seconds, worker_device

logger = logging.getLogger(__name__)

# How often the cancel flag is read: a database query per training iteration
# would cost more than a small GAN iteration on a GPU.
CANCEL_POLL_SECONDS = 5.0
_CONFIG_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
# Fields the study row decides; a researcher's config may not override them.
_RESERVED = {"model", "device", "progress_bar"}


def validate_training_config(config: dict) -> dict:
    """Reject unknown or reserved keys of a run's ``config`` with a clear message."""
    unknown = sorted(set(config) - _CONFIG_FIELDS)
    if unknown:
        raise ValueError(f"unknown training settings {unknown}; known: {sorted(_CONFIG_FIELDS - _RESERVED)}")
    reserved = sorted(set(config) & _RESERVED)
    if reserved:
        raise ValueError(f"settings {reserved} are chosen by the run and the worker, not the config")
    return config


def _work_dir(run: GanTrainingRun) -> Path:
    return Path(settings.DATA_DIR) / "training" / str(run.pk)


def _materialise(run: GanTrainingRun, work: Path) -> dict[str, list[Path]]:
    """Copy the run's images from storage into ``work/data/<domain>/``."""
    study = run.study
    domains: dict[str, list] = {"photo": list(study.content_images.all())}
    for slug in run.cultures:
        domains[slug] = list(study.style_images.filter(culture__slug=slug))
    files: dict[str, list[Path]] = {}
    for name, rows in domains.items():
        if not rows:
            raise ValueError(f"the study has no {'content photos' if name == 'photo' else name + ' style images'} to train on")
        folder = work / "data" / name
        folder.mkdir(parents=True, exist_ok=True)
        files[name] = []
        for row in rows:
            target = folder / Path(row.image.name).name
            if not target.exists():
                with row.image.open("rb") as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            files[name].append(target)
    return files


def _claim(run_id: int, token: str, host: str) -> GanTrainingRun | None:
    """Mark the run running under ``token``; ``None`` if finished or alive elsewhere.

    A running run whose heartbeat is fresh belongs to a live worker; one whose
    worker died is put back to queued by :func:`sweep_stale_training_runs`.
    """
    fresh = timezone.now() - timedelta(seconds=stale_after_seconds())
    claimed = (
        GanTrainingRun.objects.filter(pk=run_id, status=GanTrainingRun.Status.QUEUED)
        .update(status=GanTrainingRun.Status.RUNNING, claim=token, worker=host, heartbeat_at=timezone.now(), error="")
    )
    if not claimed:
        claimed = GanTrainingRun.objects.filter(
            pk=run_id, status=GanTrainingRun.Status.RUNNING, heartbeat_at__lt=fresh
        ).update(claim=token, worker=host, heartbeat_at=timezone.now())
    if not claimed:
        return None
    run = GanTrainingRun.objects.select_related("study").get(pk=run_id)
    if run.started_at is None:
        GanTrainingRun.objects.filter(pk=run_id).update(started_at=timezone.now())
    return run


def sweep_stale_training_runs() -> list[int]:
    """Re-queue running runs whose worker stopped beating; returns their ids."""
    from .tasks import train_gan_task

    stale = timezone.now() - timedelta(seconds=stale_after_seconds())
    ids = list(
        GanTrainingRun.objects.filter(status=GanTrainingRun.Status.RUNNING, heartbeat_at__lt=stale).values_list("pk", flat=True)
    )
    for run_id in ids:
        if GanTrainingRun.objects.filter(pk=run_id, status=GanTrainingRun.Status.RUNNING, heartbeat_at__lt=stale).update(
            status=GanTrainingRun.Status.QUEUED
        ):
            transaction.on_commit(lambda run_id=run_id: train_gan_task.delay(run_id))
    return ids


def _store(run: GanTrainingRun, field: str, path: Path, name: str) -> None:
    old = getattr(run, field).name
    with open(path, "rb") as f:
        getattr(run, field).save(name, File(f), save=False)
    GanTrainingRun.objects.filter(pk=run.pk).update(**{field: getattr(run, field).name})
    if old and old != getattr(run, field).name:
        default_storage.delete(old)


def run_training(run_id: int, *, host: str | None = None, device: str | None = None) -> str:
    """Train (or resume) run ``run_id``; returns its final status."""
    host = host or socket.gethostname()
    token = uuid.uuid4().hex
    run = _claim(run_id, token, host)
    if run is None:
        return GanTrainingRun.objects.get(pk=run_id).status
    if run.cancel_requested:
        GanTrainingRun.objects.filter(pk=run.pk).update(status=GanTrainingRun.Status.CANCELLED, finished_at=timezone.now())
        return GanTrainingRun.Status.CANCELLED
    work = _work_dir(run)
    out = work / "out"
    try:
        config = TrainConfig(
            **validate_training_config(dict(run.config)), model=run.model,
            device=device or worker_device(), progress_bar=False,
        )
        files = _materialise(run, work)
        if not (out / "latest.pt").exists() and run.checkpoint:
            out.mkdir(parents=True, exist_ok=True)
            with run.checkpoint.open("rb") as src, open(out / "latest.pt", "wb") as dst:
                shutil.copyfileobj(src, dst)
    except (ValueError, TypeError, OSError) as exc:
        return _finish(run, GanTrainingRun.Status.FAILED, f"{type(exc).__name__}: {exc}")

    last_poll = [0.0]

    def should_stop() -> bool:
        if time.monotonic() - last_poll[0] < CANCEL_POLL_SECONDS:
            return False
        last_poll[0] = time.monotonic()
        return GanTrainingRun.objects.filter(pk=run.pk, cancel_requested=True).exists()

    def progress(p: TrainProgress) -> None:
        GanTrainingRun.objects.filter(pk=run.pk).update(
            iteration=p.iteration, total_iterations=p.total, losses=p.losses,
            seconds_per_iteration=p.seconds_per_iter, eta_seconds=p.eta_seconds, heartbeat_at=timezone.now(),
        )
        if p.checkpoint:
            _store(run, "checkpoint", Path(p.checkpoint), "latest.pt")
        if p.sample_grid:
            _store(run, "sample_grid", Path(p.sample_grid), "samples.png")

    sources = files if run.model == GanTrainingRun.Model.CONDITIONAL else [work / "data" / "photo", work / "data" / run.cultures[0]]
    beating = GanTrainingRun.objects.filter(pk=run.pk, claim=token)
    try:
        with Heartbeat(lambda: beating.update(heartbeat_at=timezone.now()), "training-heartbeat"):
            result = train_gan(config, sources, out, progress=progress, should_stop=should_stop)
    except (ValueError, FileNotFoundError, FloatingPointError) as exc:
        return _finish(run, GanTrainingRun.Status.FAILED, f"{type(exc).__name__}: {exc}")
    _store(run, "checkpoint", Path(result.checkpoint), "latest.pt")
    if result.stopped:
        return _finish(run, GanTrainingRun.Status.CANCELLED, "")
    generator = result.generators.get("conditional") or result.generators.get("A2B")
    _store(run, "generator", Path(generator), Path(generator).name)
    return _finish(run, GanTrainingRun.Status.DONE, "")


def _finish(run: GanTrainingRun, status: str, error: str) -> str:
    GanTrainingRun.objects.filter(pk=run.pk).update(status=status, error=error, finished_at=timezone.now())
    if error:
        logger.warning("training run %s failed: %s", run.pk, error)
    return status
