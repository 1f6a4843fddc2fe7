"""Train a claimed GAN run.

The run's images are copied from storage into a local working folder, then
:func:`stylecore.gan.train_gan` trains with progress written to the row, a
throttled cancel check, and every checkpoint copied back to storage, each
write only while the run's claim holds. A run whose worker died resumes from
that checkpoint on whichever worker gets the redelivered task, with the same
losses as an uninterrupted run.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from django.conf import settings

from stylecore.gan import TrainConfig, TrainProgress, train_gan

from ..lifecycle import jobs
from ..lifecycle import training as lifecycle
from ..models import GanTrainingRun, JobStatus
from .runtime import worker_device

# How often the cancel flag (and the claim) is read: a database query per
# training iteration would cost more than a small GAN iteration on a GPU.
CANCEL_POLL_SECONDS = 5.0
# Loss curves keep between this many and twice as many points (every other point is dropped when full).
LOSS_HISTORY_POINTS = 250


def _work_dir(run: GanTrainingRun) -> Path:
    """A fresh local folder per claim: local state always comes from storage, never from an
    earlier attempt or from another database's run with the same id."""
    return Path(settings.DATA_DIR) / "training" / str(run.pk) / run.claim


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


def _store(run: GanTrainingRun, field: str, path: Path, name: str) -> bool:
    return lifecycle.store_file(run, field, path, name)


def run_training(run_id: int, *, host: str | None = None, device: str | None = None) -> str:
    """Train (or resume) run ``run_id``; returns its final status."""
    host = host or socket.gethostname()
    run = lifecycle.claim_run(run_id, jobs.new_token(), host)
    if run is None:
        return GanTrainingRun.objects.values_list("status", flat=True).get(pk=run_id)
    if run.cancel_requested:
        return lifecycle.finish_run(run, JobStatus.CANCELLED)
    work = _work_dir(run)
    try:
        return _train(run, work, device)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _train(run: GanTrainingRun, work: Path, device: str | None) -> str:
    out = work / "out"
    try:
        config = TrainConfig(**run.config, model=run.model, device=device or worker_device(), progress_bar=False)
        files = _materialise(run, work)
        if run.checkpoint:  # resume where the last claim stored its checkpoint
            out.mkdir(parents=True, exist_ok=True)
            with run.checkpoint.open("rb") as src, open(out / "latest.pt", "wb") as dst:
                shutil.copyfileobj(src, dst)
    except (ValueError, TypeError, OSError) as exc:
        return lifecycle.finish_run(run, JobStatus.FAILED, f"{type(exc).__name__}: {exc}")

    poll = jobs.Throttle(CANCEL_POLL_SECONDS)
    # A resumed run repeats the iterations after its checkpoint; those points are already here.
    history = list(run.loss_history)

    def should_stop() -> bool:
        return poll() and lifecycle.should_stop(run)

    def progress(p: TrainProgress) -> None:
        if p.losses and (not history or p.iteration > history[-1]["iteration"]):
            history.append({"iteration": p.iteration, **p.losses})
            if len(history) > 2 * LOSS_HISTORY_POINTS:
                history[:] = history[::2]
        lifecycle.report_progress(run, iteration=p.iteration, total_iterations=p.total, losses=p.losses,
                                  seconds_per_iteration=p.seconds_per_iter, eta_seconds=p.eta_seconds,
                                  loss_history=history)
        if p.checkpoint:
            _store(run, "checkpoint", Path(p.checkpoint), "latest.pt")
        if p.sample_grid:
            _store(run, "sample_grid", Path(p.sample_grid), "samples.png")

    conditional = run.model == GanTrainingRun.Model.CONDITIONAL
    sources = files if conditional else [work / "data" / "photo", work / "data" / run.cultures[0]]
    try:
        with jobs.Heartbeat.of(GanTrainingRun, run.pk, run.claim):
            jobs.fault_delay()
            result = train_gan(config, sources, out, progress=progress, should_stop=should_stop)
    except (ValueError, FileNotFoundError, FloatingPointError) as exc:
        return lifecycle.finish_run(run, JobStatus.FAILED, f"{type(exc).__name__}: {exc}")
    if not _store(run, "checkpoint", Path(result.checkpoint), "latest.pt"):
        return lifecycle.finish_run(run, JobStatus.FAILED)  # claim lost: changes nothing, reports the winner's status
    if result.stopped:
        return lifecycle.finish_run(run, JobStatus.CANCELLED)
    generator = Path(result.generators.get("conditional") or result.generators.get("A2B"))
    _store(run, "generator", generator, generator.name)
    return lifecycle.finish_run(run, JobStatus.DONE)
