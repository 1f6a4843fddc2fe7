"""Crash safety: ``kill -9`` a worker in the middle of a generation run, start another.

Every candidate must end done exactly once: none lost (the stale sweep
re-queues the one the dead worker held; the queue still holds the rest), none
duplicated (one row per cell, one stored image each, no second result
accepted for a cell).
"""

from __future__ import annotations

import signal
from datetime import timedelta

import pytest
from django.utils import timezone

from studies.actions import do_queue_generation
from studies.lifecycle import candidates as generation
from studies.models import Candidate
from tests.conftest import require
from tests.pipeline.helpers import counts, sample_grid_study, wait_for
from tests.workers import celery_worker, kill_worker, purge_queues

# Colour transfer needs no weights, so the run's length is set by the
# fault-injection delay alone: long enough to kill the worker mid-task.
FAULT_METHODS = [("Reinhard", "color", {"mode": "reinhard"}), ("Histogram", "color", {"mode": "histogram"})]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_kill_9_mid_run_loses_and_duplicates_nothing(transactional_db, media, tmp_path, samples_dir, monkeypatch,
                                                      expect_services):
    try:
        from stylecore.methods import available_methods
    except ImportError as exc:  # pragma: no cover
        require(False, f"stylecore methods not installed: {exc}")
    require("color" in available_methods(), "stylecore has no colour transfer")
    study = sample_grid_study(samples_dir, slug="faults", contents=2, styles=2, methods=FAULT_METHODS)
    # One candidate per task: eight tasks, so the kill lands with work both
    # done, running and still queued.
    monkeypatch.setattr(generation, "GENERATION_BATCH_PAIRS", 1)
    purge_queues()
    first_log, second_log = tmp_path / "worker-1.log", tmp_path / "worker-2.log"
    with celery_worker(log_path=first_log, STYLESTUDY_DEVICE="cpu", STYLESTUDY_FAULT_DELAY_SECONDS="2",
                       STYLESTUDY_HEARTBEAT_SECONDS="1") as first:
        assert do_queue_generation(study, score=False)["tasks"] == 8

        def mid_run() -> bool:
            # Kill inside the 2 s window after a claim, never between a stored
            # result and the next claim (then nothing would be running).
            settled = timezone.now() - timedelta(seconds=0.3)
            running = study.candidates.filter(status=Candidate.Status.RUNNING, started_at__lte=settled)
            return study.candidates.filter(status=Candidate.Status.DONE).exists() and running.exists()
        wait_for(mid_run, 240, what="one candidate done and one running", log=first_log, poll=0.1)
        kill_worker(first, signal.SIGKILL)
        assert first.poll() is not None, "the first worker is dead"
    at_kill = counts(study)
    victim = Candidate.objects.get(study=study, status=Candidate.Status.RUNNING)
    assert at_kill["done"] < 8 and at_kill["queued"] >= 1, at_kill

    # A fresh worker with the periodic sweep: the stuck candidate must be re-queued.
    with celery_worker(log_path=second_log, beat=True, STYLESTUDY_DEVICE="cpu", STYLESTUDY_HEARTBEAT_SECONDS="1",
                       STYLESTUDY_STALE_AFTER_SECONDS="4", STYLESTUDY_SWEEP_SECONDS="2") as second:
        wait_for(lambda: counts(study)["done"] == 8, 240, what="all 8 candidates done", log=second_log)
        assert second.poll() is None

    rows = list(Candidate.objects.filter(study=study))
    assert len(rows) == 8 and {r.status for r in rows} == {"done"}
    assert len({(r.content_id, r.style_id, r.method_config_id, r.seed) for r in rows}) == 8
    images = [r.image.name for r in rows]
    assert len(set(images)) == 8 and all(r.image.storage.exists(n) for r, n in zip(rows, images))
    victim.refresh_from_db()
    assert victim.attempts == 2, "claimed by the dead worker, then once more"
    assert "stopped sending heartbeats" not in victim.error and victim.error == ""
    assert all(r.attempts == 1 for r in rows if r.pk != victim.pk), "no other candidate was generated twice"
    # The dead worker may have written at most the one file it was storing
    # when killed; every other file on disk is a stored result.
    folder = media / f"studies/{study.pk}/candidates"
    on_disk = {f"studies/{study.pk}/candidates/{p.name}" for p in folder.iterdir()}
    assert set(images) <= on_disk and len(on_disk - set(images)) <= 1
    study.refresh_from_db()
    assert study.status == "ready"
