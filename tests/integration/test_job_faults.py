"""Crash safety of GAN training runs and study reports: ``kill -9`` the worker mid-job, start another.

As for candidates (``test_faults.py``): the job must finish exactly once on the
second worker (the periodic sweep re-queues it after the dead worker's
heartbeat stops), and a late write under the dead worker's claim is refused.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage

from studies.lifecycle import reports as report_lifecycle
from studies.lifecycle import training as training_lifecycle
from studies.models import GanTrainingRun, JobStatus, StudyReport
from tests.analysis.test_report_db import _make_study
from tests.pipeline.helpers import sample_grid_study, wait_for
from tests.workers import celery_worker, kill_worker, purge_queues

# Settings of the second worker: beats every second, a run silent for 4 s is stale, swept every 2 s.
SWEEPING = dict(STYLESTUDY_DEVICE="cpu", STYLESTUDY_HEARTBEAT_SECONDS="1", STYLESTUDY_STALE_AFTER_SECONDS="4",
                STYLESTUDY_SWEEP_SECONDS="2")
# Tiny, yet several seconds per iteration on a busy 2-core machine: the kill lands between checkpoints.
TRAIN = {"size": 32, "iters": 8, "ngf": 4, "ndf": 4, "n_blocks": 1, "checkpoint_every": 2, "sample_every": 4,
         "log_every": 1, "min_images": 1, "deterministic": True}


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_kill_9_mid_training_resumes_once_and_refuses_the_late_write(transactional_db, media, tmp_path,
                                                                     samples_dir, expect_services):
    study = sample_grid_study(samples_dir, slug="train-faults", contents=2, styles=2, methods=())
    run = GanTrainingRun.objects.create(study=study, label="ink", cultures=["japanese-ukiyoe"], config=TRAIN)
    purge_queues()
    first_log, second_log = tmp_path / "worker-1.log", tmp_path / "worker-2.log"
    with celery_worker(log_path=first_log, STYLESTUDY_DEVICE="cpu", STYLESTUDY_HEARTBEAT_SECONDS="1") as first:
        training_lifecycle.do_start_training_run(run)

        def checkpointed() -> bool:
            row = GanTrainingRun.objects.get(pk=run.pk)
            return row.status == JobStatus.RUNNING and bool(row.checkpoint) and row.iteration <= TRAIN["iters"] - 3
        wait_for(checkpointed, 240, what="a stored checkpoint mid-run", log=first_log, poll=0.1)
        kill_worker(first, signal.SIGKILL)
        assert first.poll() is not None, "the first worker is dead"
    dead = GanTrainingRun.objects.get(pk=run.pk)
    assert dead.status == JobStatus.RUNNING and dead.attempts == 1 and dead.iteration < TRAIN["iters"]
    # The next worker has none of the dead one's local files: it resumes from storage.
    shutil.rmtree(Path(settings.DATA_DIR) / "training" / str(run.pk), ignore_errors=True)

    with celery_worker(log_path=second_log, beat=True, **SWEEPING) as second:
        wait_for(lambda: GanTrainingRun.objects.get(pk=run.pk).is_finished, 600,
                 what="the training run to finish", log=second_log)
        assert second.poll() is None

    run.refresh_from_db()
    assert run.status == JobStatus.DONE, run.error
    assert run.attempts == 2, "claimed by the dead worker, then once more"
    assert run.iteration == run.total_iterations == TRAIN["iters"]
    assert run.claim != dead.claim and run.error == ""
    folder = media / f"studies/{study.pk}/training/{run.pk}"
    stored = _files(folder)
    assert {Path(run.checkpoint.name).name, Path(run.generator.name).name} <= set(stored)
    assert sum(name.startswith("latest") for name in stored) == 1, stored

    # The dead worker's claim writes nothing any more: no progress, no file, no status.
    late = GanTrainingRun.objects.get(pk=run.pk)
    late.claim = dead.claim
    assert training_lifecycle.report_progress(late, iteration=1) is False
    scratch = tmp_path / "late.pt"
    scratch.write_bytes(b"late checkpoint")
    assert training_lifecycle.store_file(late, "checkpoint", scratch, "latest.pt") is False
    assert training_lifecycle.finish_run(late, JobStatus.FAILED, "late") == JobStatus.DONE
    run.refresh_from_db()
    assert (run.iteration, run.status, run.error) == (TRAIN["iters"], JobStatus.DONE, "")
    assert _files(folder) == stored, "the refused file was deleted"


def test_kill_9_mid_report_rebuilds_once_and_refuses_the_late_write(transactional_db, media, tmp_path,
                                                                   expect_services):
    study = _make_study()
    purge_queues()
    first_log, second_log = tmp_path / "worker-1.log", tmp_path / "worker-2.log"
    # The fault delay holds the first worker inside its claim long enough to kill it there.
    with celery_worker(log_path=first_log, STYLESTUDY_FAULT_DELAY_SECONDS="30",
                       STYLESTUDY_HEARTBEAT_SECONDS="1") as first:
        report = report_lifecycle.do_request_report(study, requested_by="alice")
        wait_for(lambda: StudyReport.objects.get(pk=report.pk).status == JobStatus.RUNNING, 120,
                 what="the report claimed", log=first_log, poll=0.1)
        kill_worker(first, signal.SIGKILL)
        assert first.poll() is not None, "the first worker is dead"
    dead = StudyReport.objects.get(pk=report.pk)
    assert dead.status == JobStatus.RUNNING and dead.attempts == 1 and not dead.archive

    with celery_worker(log_path=second_log, beat=True, **SWEEPING) as second:
        wait_for(lambda: StudyReport.objects.get(pk=report.pk).is_finished, 600,
                 what="the report to finish", log=second_log)
        assert second.poll() is None

    report.refresh_from_db()
    assert report.status == JobStatus.DONE, report.error
    assert report.attempts == 2 and report.claim != dead.claim and report.progress == 1.0
    assert report.summary["participants"] == 6
    folder = media / f"studies/{study.pk}/reports/{report.pk}"
    stored = _files(folder)
    assert stored == sorted([Path(report.archive.name).name, Path(report.html.name).name]), "one archive, one page"

    late = StudyReport.objects.get(pk=report.pk)
    late.claim = dead.claim
    assert report_lifecycle.report_progress(late, 0.5, "late") is False
    archive = tmp_path / "late.zip"
    archive.write_bytes(b"late archive")
    assert report_lifecycle.store_report(late, archive=archive, html=None, summary={"late": True}) is False
    report.refresh_from_db()
    assert report.summary["participants"] == 6 and report.message == "done"
    assert _files(folder) == stored, "the refused archive was deleted"
    assert all(default_storage.exists(f"studies/{study.pk}/reports/{report.pk}/{n}") for n in stored)
