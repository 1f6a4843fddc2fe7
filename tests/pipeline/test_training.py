"""GAN training runs on the gpu queue: progress in the database, cancel, crash resume."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
import torch
from django.utils import timezone

from studies.lifecycle.training import (
    sweep_stale_training_runs,
    validate_training_config,
)
from studies.models import GanTrainingRun
from studies.workers.train import run_training

from .conftest import build_study

TINY = {"size": 32, "iters": 4, "ngf": 4, "ndf": 4, "n_blocks": 1, "checkpoint_every": 2, "sample_every": 2,
        "log_every": 1, "min_images": 1, "deterministic": True}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    return settings.DATA_DIR


def _run(study, label="ink", **config) -> GanTrainingRun:
    return GanTrainingRun.objects.create(study=study, label=label, cultures=["chinese-ink"], config={**TINY, **config})


@pytest.mark.django_db(transaction=True)
def test_training_stores_progress_checkpoint_and_generator(researcher, culture, data_dir):
    """A run trains to the end, writing progress, a checkpoint and a loadable generator to storage."""
    run = _run(build_study(researcher, culture))

    assert run_training(run.pk, device="cpu") == GanTrainingRun.Status.DONE

    run.refresh_from_db()
    assert (run.iteration, run.total_iterations) == (4, 4)
    assert run.losses and all(isinstance(v, float) for v in run.losses.values()), run.losses
    assert run.checkpoint.name and run.generator.name and run.sample_grid.name
    from stylecore.gan.inference import (
        cyclegan_transfer,  # the stored generator is usable
    )

    with run.generator.open("rb") as src, open(data_dir / "g.pth", "wb") as dst:
        shutil.copyfileobj(src, dst)
    out = cyclegan_transfer(torch.rand(1, 3, 32, 32), data_dir / "g.pth")
    assert out.shape == (1, 3, 32, 32) and 0 <= float(out.min()) <= float(out.max()) <= 1


@pytest.mark.django_db(transaction=True)
def test_cancel_requested_before_start(researcher, culture, data_dir):
    run = _run(build_study(researcher, culture))
    GanTrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)

    assert run_training(run.pk, device="cpu") == GanTrainingRun.Status.CANCELLED
    assert GanTrainingRun.objects.get(pk=run.pk).iteration == 0


@pytest.mark.django_db(transaction=True)
def test_crashed_run_resumes_from_stored_checkpoint_with_identical_losses(researcher, culture, data_dir, monkeypatch):
    """A worker dies after the iteration-2 checkpoint; another worker with an empty
    disk resumes from storage and ends with the losses of an uninterrupted run."""
    study = build_study(researcher, culture)
    reference = _run(study, label="reference")
    assert run_training(reference.pk, device="cpu") == GanTrainingRun.Status.DONE

    crashed = _run(study, label="crashed")
    import studies.workers.train as training

    real_store = training._store

    def store_then_die(run, field, path, name):
        real_store(run, field, path, name)
        if field == "checkpoint":
            raise SystemExit("worker killed")  # nothing after this runs, as with kill -9

    monkeypatch.setattr(training, "_store", store_then_die)
    with pytest.raises(SystemExit):
        run_training(crashed.pk, device="cpu")
    monkeypatch.setattr(training, "_store", real_store)
    assert GanTrainingRun.objects.get(pk=crashed.pk).status == GanTrainingRun.Status.RUNNING

    # The new worker has none of the old one's files; the sweep sees a dead heartbeat.
    shutil.rmtree(data_dir / "training" / str(crashed.pk))
    GanTrainingRun.objects.filter(pk=crashed.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    monkeypatch.setattr("studies.tasks.train_gan_task.delay", lambda run_id: None)
    assert sweep_stale_training_runs() == [crashed.pk]
    results = []

    def recording_train_gan(*args, **kwargs):
        results.append(real_train_gan(*args, **kwargs))
        return results[-1]

    real_train_gan = training.train_gan
    monkeypatch.setattr(training, "train_gan", recording_train_gan)
    assert run_training(crashed.pk, device="cpu") == GanTrainingRun.Status.DONE
    assert results[0].resumed_from == 2, "resumed from the stored checkpoint, not from scratch"

    crashed.refresh_from_db()
    reference.refresh_from_db()
    assert crashed.iteration == 4
    assert crashed.losses == pytest.approx(reference.losses, rel=0, abs=0)


def test_unknown_or_reserved_settings_are_refused():
    with pytest.raises(ValueError, match="unknown training settings"):
        validate_training_config({"itres": 10})
    with pytest.raises(ValueError, match="chosen by the run"):
        validate_training_config({"device": "cuda"})
