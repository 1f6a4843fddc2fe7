"""A trained GAN as a study method: use a finished run, generate from storage, refuse a changed checkpoint."""

from __future__ import annotations

import hashlib

import pytest
import torch
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import RestrictedError
from django.urls import reverse

from studies.actions import compute_config_hash, do_queue_generation
from studies.actions.erasure import do_delete_study
from studies.lifecycle import jobs
from studies.lifecycle.training import do_use_as_method
from studies.models import Candidate, GanTrainingRun, MethodConfig
from studies.workers.generate import run_generation
from studies.workers.train import run_training

from .conftest import build_study
from .test_training import TINY


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    return settings.DATA_DIR


def _trained(study, model="cyclegan", **config) -> GanTrainingRun:
    run = GanTrainingRun.objects.create(study=study, label=f"{model}-run", model=model, cultures=["chinese-ink"],
                                        config={**TINY, **config})
    assert run_training(run.pk, device="cpu") == GanTrainingRun.Status.DONE
    run.refresh_from_db()
    return run


def _generate(study, django_capture_on_commit_callbacks) -> dict:
    with django_capture_on_commit_callbacks(execute=False):
        do_queue_generation(study)
    ids = list(Candidate.objects.filter(study=study).values_list("pk", flat=True))
    return run_generation(ids, host="gpu-1", device="cpu")


@pytest.mark.django_db(transaction=True)
def test_finished_run_becomes_a_method_whose_candidates_record_run_and_sha(
        researcher, culture, django_capture_on_commit_callbacks):
    study = build_study(researcher, culture, methods=())
    run = _trained(study)

    (mc,) = do_use_as_method(run)

    with run.generator.open("rb") as fh:
        sha = hashlib.sha256(fh.read()).hexdigest()
    assert (mc.method, mc.training_run_id, mc.study_id) == ("cyclegan", run.pk, study.pk)
    assert mc.params["checkpoint_sha256"] == sha and mc.params["target_culture"] is None
    assert mc.params["checkpoint"] != run.generator.name, "a copy of its own, which later training can't change"
    assert default_storage.exists(mc.params["checkpoint"])
    outcome = _generate(study, django_capture_on_commit_callbacks)
    assert outcome["failed"] == [] and len(outcome["done"]) == 4, outcome
    for cand in Candidate.objects.filter(study=study):
        prov = cand.provenance
        assert prov["training_run"]["id"] == run.pk
        assert prov["training_run"]["checkpoint_sha256"] == sha
        assert prov["training_run"]["config"] == run.config and prov["training_run"]["model"] == "cyclegan"
        assert prov["params"]["checkpoint"] == mc.params["checkpoint"], "the storage name, not a worker's path"
        assert prov["params"]["checkpoint_sha256"] == sha


@pytest.mark.django_db(transaction=True)
def test_a_stored_checkpoint_with_one_flipped_byte_fails_its_candidates(
        researcher, culture, django_capture_on_commit_callbacks):
    study = build_study(researcher, culture, methods=())
    (mc,) = do_use_as_method(_trained(study))
    name = mc.params["checkpoint"]
    with default_storage.open(name, "rb") as fh:
        data = bytearray(fh.read())
    data[len(data) // 2] ^= 0x01
    default_storage.delete(name)
    assert default_storage.save(name, ContentFile(bytes(data))) == name

    outcome = _generate(study, django_capture_on_commit_callbacks)

    assert outcome["done"] == [] and len(outcome["failed"]) == 4
    for cand in Candidate.objects.filter(study=study):
        assert cand.status == Candidate.Status.FAILED and not cand.image
        assert "SHA-256" in cand.error and mc.params["checkpoint_sha256"] in cand.error, cand.error
        assert "changed" in cand.error


@pytest.mark.django_db(transaction=True)
def test_a_checkpoint_missing_from_storage_fails_its_candidates(
        researcher, culture, django_capture_on_commit_callbacks):
    study = build_study(researcher, culture, methods=())
    (mc,) = do_use_as_method(_trained(study))
    default_storage.delete(mc.params["checkpoint"])

    outcome = _generate(study, django_capture_on_commit_callbacks)

    assert outcome["done"] == [] and len(outcome["failed"]) == 4
    error = Candidate.objects.filter(study=study).first().error
    assert "missing from storage" in error and mc.params["checkpoint"] in error, error


@pytest.mark.django_db(transaction=True)
def test_stylecore_refuses_a_local_file_that_differs_from_the_configured_sha(tmp_path):
    from stylecore.gan import ResnetGenerator
    from stylecore.methods import stylize

    torch.save(ResnetGenerator(ngf=4, n_blocks=1).state_dict(), tmp_path / "G.pth")
    good = hashlib.sha256((tmp_path / "G.pth").read_bytes()).hexdigest()
    x = torch.rand(1, 3, 16, 16)
    assert stylize("cyclegan", x, None, params={"checkpoint": str(tmp_path / "G.pth"),
                                                "checkpoint_sha256": good}).shape == x.shape
    with pytest.raises(ValueError, match="changed"):
        stylize("cyclegan", x, None, params={"checkpoint": str(tmp_path / "G.pth"), "checkpoint_sha256": "0" * 64})


@pytest.mark.django_db(transaction=True)
def test_conditional_run_gives_one_method_per_target_culture_and_stopped_runs_count(researcher, culture):
    study = build_study(researcher, culture, methods=())
    run = _trained(study, model="conditional")
    (mc,) = do_use_as_method(run)
    assert mc.params["target_culture"] == "chinese-ink" and mc.label == "conditional-run → chinese-ink"
    with pytest.raises(ValidationError, match="unique|already exists"):
        do_use_as_method(run)
    assert MethodConfig.objects.filter(training_run=run).count() == 1
    GanTrainingRun.objects.filter(pk=run.pk).update(status=GanTrainingRun.Status.CANCELLED, generator="")
    (from_checkpoint,) = do_use_as_method(run, label="stopped")
    with run.checkpoint.open("rb") as fh:
        assert from_checkpoint.params["checkpoint_sha256"] == hashlib.sha256(fh.read()).hexdigest()
    GanTrainingRun.objects.filter(pk=run.pk).update(status=GanTrainingRun.Status.RUNNING)
    with pytest.raises(ValidationError, match="only a finished or stopped run"):
        do_use_as_method(run, label="too early")


@pytest.mark.django_db(transaction=True)
def test_frozen_configuration_hash_depends_on_the_checkpoint_sha(researcher, culture):
    study = build_study(researcher, culture, methods=())
    (mc,) = do_use_as_method(_trained(study))
    before = compute_config_hash(study)
    MethodConfig.objects.filter(pk=mc.pk).update(params={**mc.params, "checkpoint_sha256": "f" * 64})
    assert compute_config_hash(study) != before

    with pytest.raises(RestrictedError):
        mc.training_run.delete()  # a run its study's methods use stays
    generator = mc.training_run.generator.name
    do_delete_study(study, by=researcher)  # ... until the whole study goes, with the stored copy
    assert not MethodConfig.objects.filter(pk=mc.pk).exists() and not GanTrainingRun.objects.exists()
    assert not default_storage.exists(mc.params["checkpoint"]) and not default_storage.exists(generator)


@pytest.mark.django_db(transaction=True)
def test_admin_starts_a_run_with_the_data_size_warning_and_shows_samples_curves_and_use_as_method(
        client, researcher, culture, monkeypatch):
    queued = []
    monkeypatch.setattr(jobs, "enqueue", lambda name, *args: queued.append((name, *args)))
    study = build_study(researcher, culture, methods=())
    assert client.login(username="alice", password="pw-alice")
    response = client.post(reverse("admin:studies_gantrainingrun_add"), {
        "study": study.pk, "label": "ink", "model": "cyclegan", "cultures": '["chinese-ink"]',
        "config": '{"size": 32, "iters": 4, "ngf": 4, "ndf": 4, "n_blocks": 1, "checkpoint_every": 2, '
                  '"sample_every": 2, "log_every": 1, "deterministic": true}',
    }, follow=True)
    assert response.status_code == 200
    run = GanTrainingRun.objects.get(study=study, label="ink")
    assert queued == [("studies.tasks.train_gan_task", run.pk)], "the run is queued for a GPU worker"
    page = response.content.decode()
    assert ('<li class="warning">Image collection &#x27;photo&#x27; has only 2 images; a GAN needs at least 20'
            in page)
    assert '<li class="warning">Image collection &#x27;chinese-ink&#x27; has only 2 images' in page

    assert run_training(run.pk, device="cpu") == GanTrainingRun.Status.DONE
    page = client.get(reverse("admin:studies_gantrainingrun_change", args=[run.pk])).content.decode()
    run.refresh_from_db()
    assert run.sample_grid.url in page, "the latest sample grid is shown"
    assert [row["iteration"] for row in run.loss_history] == [1, 2, 3, 4]
    assert page.count("<polyline") == len(run.losses) >= 4, "one curve per loss"

    response = client.post(reverse("admin:studies_gantrainingrun_changelist"),
                           {"action": "use_as_method", "_selected_action": [run.pk]}, follow=True)
    (mc,) = MethodConfig.objects.filter(training_run=run)
    assert "is now the method(s) “ink”" in response.content.decode()
    assert mc.params["checkpoint_sha256"][:16] in response.content.decode()
