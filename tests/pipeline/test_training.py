"""GAN training runs on the gpu queue: progress in the database, cancel, crash resume."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
import torch
from django.core.exceptions import ValidationError
from django.utils import timezone

from studies.lifecycle import jobs
from studies.lifecycle.training import do_start_training_run, sweep_stale_training_runs
from studies.models import CultureTag, GanTrainingRun
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


@pytest.mark.django_db
def test_the_model_refuses_bad_settings_naming_the_field(researcher, culture):
    """Rules live in the model: code, the admin form and the API get the same ValidationError."""
    study = build_study(researcher, culture, methods=())
    CultureTag.objects.create(slug="western-oil", name="Western oil")

    def errors(**fields) -> dict[str, list[str]]:
        run = GanTrainingRun(study=study, label="x", **{"cultures": ["chinese-ink"], "config": dict(TINY), **fields})
        with pytest.raises(ValidationError) as info:
            run.full_clean()
        return info.value.message_dict

    assert errors(config={"itres": 10})["config"][0].startswith("Unknown training settings: itres. Known: ")
    assert errors(config={"device": "cuda"})["config"] == [
        "The settings device are chosen by the run and the worker, not the config."]
    assert errors(config={"size": "256", "amp": 1, "load_size": None})["config"] == [
        "The setting size must be int, not '256'.", "The setting amp must be bool, not 1."]
    assert errors(config={"size": 30})["config"] == [
        "The trainer refuses these settings: size must be a multiple of 4 and >= 16, got 30."]
    assert errors(config=[1])["config"] == ["The config must be a JSON object."]
    assert errors(cultures=["nope", "chinese-ink"])["cultures"] == ["Unknown culture tags: nope."]
    assert errors(cultures=[])["cultures"][-1] == "List at least one culture tag slug."
    assert errors(cultures="chinese-ink")["cultures"] == ["List at least one culture tag slug."]
    assert errors(cultures=["chinese-ink", "western-oil"])["cultures"][0].startswith(
        "CycleGAN learns one target culture")
    assert set(errors(cultures=[], config={"itres": 1})) == {"cultures", "config"}, "every bad field named"
    # Good settings pass; the conditional generator takes several cultures.
    GanTrainingRun(study=study, label="ok", cultures=["chinese-ink"], config={**TINY, "load_size": None}).full_clean()
    GanTrainingRun(study=study, label="both", model=GanTrainingRun.Model.CONDITIONAL,
                   cultures=["chinese-ink", "western-oil"], config={"lr": 1, "size": 64}).full_clean()


@pytest.mark.django_db
def test_starting_a_run_created_in_code_with_bad_settings_queues_nothing(researcher, culture, monkeypatch):
    queued = []
    monkeypatch.setattr(jobs, "enqueue", lambda name, *args: queued.append((name, *args)))
    run = _run(build_study(researcher, culture, methods=()), size=30)
    with pytest.raises(ValidationError, match="multiple of 4"):
        do_start_training_run(run)
    assert queued == []
    run.config = dict(TINY)
    run.save()
    do_start_training_run(run)
    assert queued == [("studies.tasks.train_gan_task", run.pk)]


@pytest.mark.django_db
def test_a_stored_run_keeps_settings_a_later_trainer_no_longer_knows(researcher, culture):
    """Stored settings are never rewritten; only a change to them is checked."""
    run = _run(build_study(researcher, culture, methods=()), retired_setting=3)
    run.label = "renamed"
    run.full_clean()
    run.save()
    run.refresh_from_db()
    assert run.config == {**TINY, "retired_setting": 3} and run.label == "renamed"
    run.config = {**TINY, "retired_setting": 4}
    with pytest.raises(ValidationError, match="Unknown training settings: retired_setting"):
        run.full_clean()
