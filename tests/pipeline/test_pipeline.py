"""Worker-side generation and scoring, run in-process against the contract's stand-ins."""

from __future__ import annotations

import sys
from datetime import timedelta

import pytest
import torch
from django.db import OperationalError
from django.utils import timezone
from PIL import Image

from studies.actions import do_queue_generation
from studies.lifecycle.candidates import (
    candidate_heartbeat,
    claim_candidates,
    sweep_stale_candidates,
)
from studies.models import Candidate, MetricValue, Study
from studies.workers.generate import _Generation, run_generation
from studies.workers.score import run_scoring

from .fakes import make_methods_module

pytestmark = pytest.mark.django_db


def _queue(study, django_capture_on_commit_callbacks, score=False):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = do_queue_generation(study, score=score)
    return result, callbacks


def test_queue_creates_every_cell_once(study, django_capture_on_commit_callbacks):
    """2 contents × 2 styles × 1 method × 1 seed = 4 candidates; a second press adds none."""
    result, callbacks = _queue(study, django_capture_on_commit_callbacks)
    assert result == {"created": 4, "queued": 4, "tasks": 1}
    assert len(callbacks) == 1, "one batched task, queued on commit"
    study.refresh_from_db()
    assert study.status == Study.Status.GENERATING
    again, _ = _queue(study, django_capture_on_commit_callbacks)
    assert again["created"] == 0 and Candidate.objects.filter(study=study).count() == 4


def test_generation_stores_images_and_provenance(study, fake_methods, django_capture_on_commit_callbacks):
    _queue(study, django_capture_on_commit_callbacks)
    ids = list(Candidate.objects.values_list("pk", flat=True))
    outcome = run_generation(ids, host="test-host", device="cpu")
    assert sorted(outcome["done"]) == sorted(ids) and outcome["failed"] == []
    assert fake_methods.grid_calls == [("tint", 2, 2)], "one model call for the 2×2 block"
    for cand in Candidate.objects.select_related("content", "style"):
        assert cand.status == "done" and cand.attempts == 1 and cand.worker == "test-host"
        img = Image.open(cand.image.path)
        assert img.mode == "RGB" and max(img.size) == 32
        prov = cand.provenance
        for key in ("method", "params", "family", "weights", "seed", "code_version", "device", "worker", "seconds"):
            assert key in prov, key
        assert prov["versions"]["torch"] == torch.__version__
        assert prov["params"] == {"strength": 0.25}
        assert prov["content_sha256"] == cand.content.sha256 and prov["batch_size"] == 4
        assert prov["code_version"].startswith(("0", "1")) or "+g" in prov["code_version"]
    study.refresh_from_db()
    assert study.status == Study.Status.READY


def test_output_pixels_come_from_the_method(study, fake_methods, django_capture_on_commit_callbacks):
    """The stored image is the method's output for that (content, style) pair."""
    _queue(study, django_capture_on_commit_callbacks)
    run_generation(list(Candidate.objects.values_list("pk", flat=True)), device="cpu")
    cand = Candidate.objects.select_related("content", "style").first()
    c = torch.tensor(Image.open(cand.content.image.path).getpixel((0, 0)), dtype=torch.float) / 255
    s = torch.tensor(Image.open(cand.style.image.path).getpixel((0, 0)), dtype=torch.float) / 255
    expected = (c * 0.75 + s * 0.25) * 255
    got = torch.tensor(Image.open(cand.image.path).getpixel((5, 5)), dtype=torch.float)
    assert torch.allclose(got, expected, atol=2), (got, expected)


def test_done_candidates_are_not_generated_again(study, fake_methods, django_capture_on_commit_callbacks):
    _queue(study, django_capture_on_commit_callbacks)
    ids = list(Candidate.objects.values_list("pk", flat=True))
    run_generation(ids, device="cpu")
    images = dict(Candidate.objects.values_list("pk", "image"))
    second = run_generation(ids, device="cpu")
    assert second == {"claimed": [], "done": [], "failed": []}
    assert len(fake_methods.grid_calls) == 1
    assert dict(Candidate.objects.values_list("pk", "image")) == images


def test_only_one_claim_wins(study, django_capture_on_commit_callbacks):
    _queue(study, django_capture_on_commit_callbacks)
    ids = list(Candidate.objects.values_list("pk", flat=True))
    assert claim_candidates(ids, "a" * 32, "host-a") == ids
    assert claim_candidates(ids, "b" * 32, "host-b") == []
    assert set(Candidate.objects.values_list("claim", flat=True)) == {"a" * 32}


def test_late_result_of_a_replaced_worker_is_discarded(study, fake_methods, django_capture_on_commit_callbacks,
                                                       media_root):
    """A worker presumed dead (swept) that finishes later does not overwrite the new result."""
    _queue(study, django_capture_on_commit_callbacks)
    cand = Candidate.objects.select_related("study", "content", "style", "method_config").first()
    claim_candidates([cand.pk], "old" + "0" * 29, "slow-host")
    Candidate.objects.filter(pk=cand.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=False):
        swept = sweep_stale_candidates(stale_after=60)
    assert swept["requeued"] == [cand.pk]
    run_generation([cand.pk], host="new-host", device="cpu")
    cand.refresh_from_db()
    assert cand.status == "done" and cand.worker == "new-host" and cand.attempts == 2
    late = _Generation("old" + "0" * 29, "slow-host", "cpu")
    late._store(cand, torch.zeros(1, 3, 8, 8), {}, 0.1, 1, cand.study)
    cand.refresh_from_db()
    assert cand.worker == "new-host" and late.done == []
    files = list((media_root / f"studies/{study.pk}/candidates").iterdir())
    assert [f.name for f in files] == [cand.image.name.rsplit("/", 1)[-1]], "the late file is deleted"


def test_out_of_memory_retries_at_smaller_batch(study, monkeypatch, django_capture_on_commit_callbacks):
    """OOM at 4 pairs: halves to 2 + 2 (each 1 content × 2 styles), which fit."""
    mod = make_methods_module(oom_above=2)
    monkeypatch.setitem(sys.modules, "stylecore.methods", mod)
    _queue(study, django_capture_on_commit_callbacks)
    outcome = run_generation(list(Candidate.objects.values_list("pk", flat=True)), device="cpu")
    assert len(outcome["done"]) == 4
    assert [n for _, c, s in mod.grid_calls for n in [c * s]] == [4, 2, 2]
    assert set(Candidate.objects.values_list("provenance__batch_size", flat=True)) == {2}


def test_out_of_memory_at_batch_one_fails_with_clear_message(study, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setitem(sys.modules, "stylecore.methods", make_methods_module(oom_above=0))
    _queue(study, django_capture_on_commit_callbacks)
    outcome = run_generation(list(Candidate.objects.values_list("pk", flat=True)), device="cpu")
    assert len(outcome["failed"]) == 4
    for error in Candidate.objects.values_list("error", flat=True):
        assert "out of memory on cpu even for a single candidate at 32 px" in error
        assert "lower the study's image size" in error
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT, "nothing generated: back to draft"


def test_method_error_fails_candidates_with_the_message(study, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setitem(sys.modules, "stylecore.methods",
                        make_methods_module(fail_with=FileNotFoundError("weights wct_decoder.pth not found")))
    _queue(study, django_capture_on_commit_callbacks)
    run_generation(list(Candidate.objects.values_list("pk", flat=True)), device="cpu")
    assert set(Candidate.objects.values_list("status", flat=True)) == {"failed"}
    assert "wct_decoder.pth not found" in Candidate.objects.first().error


def test_transient_error_releases_claims_for_retry(study, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setitem(sys.modules, "stylecore.methods",
                        make_methods_module(fail_with=OperationalError("server closed the connection")))
    _queue(study, django_capture_on_commit_callbacks)
    with pytest.raises(OperationalError):
        run_generation(list(Candidate.objects.values_list("pk", flat=True)), device="cpu")
    assert set(Candidate.objects.values_list("status", "claim")) == {("queued", "")}


def test_sweep_fails_a_candidate_that_keeps_killing_workers(study, django_capture_on_commit_callbacks):
    _queue(study, django_capture_on_commit_callbacks)
    cand = Candidate.objects.first()
    claim_candidates([cand.pk], "x" * 32, "doomed")
    Candidate.objects.filter(pk=cand.pk).update(attempts=3, heartbeat_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        swept = sweep_stale_candidates(stale_after=60)
    assert swept["failed"] == [cand.pk] and swept["requeued"] == []
    cand.refresh_from_db()
    assert cand.status == "failed" and "died 3 times" in cand.error
    assert callbacks == []


def test_sweep_leaves_live_heartbeats_alone(study, django_capture_on_commit_callbacks):
    _queue(study, django_capture_on_commit_callbacks)
    ids = list(Candidate.objects.values_list("pk", flat=True))
    claim_candidates(ids, "y" * 32, "alive")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert sweep_stale_candidates(stale_after=60) == {"requeued": [], "resent": [], "failed": []}
    assert callbacks == []


def test_sweep_resends_long_queued_candidates(study, django_capture_on_commit_callbacks):
    """A queued candidate whose message was lost is sent again (harmless if it was not)."""
    _queue(study, django_capture_on_commit_callbacks)
    Candidate.objects.update(queued_at=timezone.now() - timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        swept = sweep_stale_candidates(stale_after=60, requeue_queued_after=3600)
    assert len(swept["resent"]) == 4 and len(callbacks) == 1


def test_heartbeat_thread_refreshes_claims(study, settings, django_capture_on_commit_callbacks, transactional_db):
    settings.STYLESTUDY_HEARTBEAT_SECONDS = 0.05
    _queue(study, django_capture_on_commit_callbacks)
    ids = list(Candidate.objects.values_list("pk", flat=True))
    claim_candidates(ids, "h" * 32, "beating")
    old = timezone.now() - timedelta(hours=1)
    Candidate.objects.update(heartbeat_at=old)
    import time

    with candidate_heartbeat(ids, "h" * 32):
        time.sleep(0.5)
    assert all(t > old + timedelta(minutes=59) for t in Candidate.objects.values_list("heartbeat_at", flat=True))


def test_scoring_stores_values_once(study, fake_methods, fake_metrics, django_capture_on_commit_callbacks):
    _queue(study, django_capture_on_commit_callbacks)
    ids = list(Candidate.objects.values_list("pk", flat=True))
    run_generation(ids, device="cpu")
    first = run_scoring(ids, ["mean_abs_diff", "never"], device="cpu")
    assert first == {"candidates": 4, "stored": 8}
    values = MetricValue.objects.filter(name="mean_abs_diff")
    # strength 0.25 towards a flat colour: output differs from content, by less than the style does.
    assert all(0.0 < v < 0.5 for v in values.values_list("value", flat=True))
    never = MetricValue.objects.filter(name="never").first()
    assert never.value is None and "not installed" in never.unavailable_reason
    assert run_scoring(ids, ["mean_abs_diff", "never"], device="cpu") == {"candidates": 4, "stored": 0}
    assert len(fake_metrics.calls) == 1, "one batched call for both metrics, none the second time"


@pytest.mark.weights
def test_models_are_loaded_once_per_process(researcher, culture, weights_dir, monkeypatch,
                                            django_capture_on_commit_callbacks):
    """A second batch in the same process reads no weight file again (real AdaIN)."""
    import stylecore.weights

    from .conftest import build_study

    study = build_study(researcher, culture, slug="cache", contents=1, styles=1, methods=())
    from studies.models import MethodConfig

    MethodConfig.objects.create(study=study, label="AdaIN", method="adain", params={"alpha": 1.0})
    _queue(study, django_capture_on_commit_callbacks)
    import stylecore.models.autoencoder as autoencoder

    monkeypatch.setattr(autoencoder, "_CACHE", {})  # start cold, so the first batch must load
    loads = []
    real = stylecore.weights.load_state_dict
    monkeypatch.setattr(stylecore.weights, "load_state_dict", lambda *a, **k: loads.append(a) or real(*a, **k))
    first = run_generation(list(Candidate.objects.values_list("pk", flat=True)), device="cpu")
    assert first["failed"] == [], Candidate.objects.values_list("error", flat=True)
    assert loads, "the first batch reads the encoder and decoder files"
    loads.clear()
    Candidate.objects.update(status="queued", claim="")
    second = run_generation(list(Candidate.objects.values_list("pk", flat=True)), device="cpu")
    assert len(second["done"]) == 1 and loads == []
    assert Candidate.objects.get().provenance["weights"], "the weights' sha256 are recorded"


def test_cancel_then_retry(study, fake_methods, django_capture_on_commit_callbacks):
    """Cancelling discards a running worker's late result; retry queues the cancelled cells again."""
    from studies.actions import do_cancel, do_retry_failed

    _queue(study, django_capture_on_commit_callbacks)
    ids = list(Candidate.objects.values_list("pk", flat=True))
    claim_candidates(ids[:1], "r" * 32, "busy")
    with django_capture_on_commit_callbacks(execute=False):
        assert do_cancel(study) == {"cancelled": 4}
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT
    assert run_generation(ids, device="cpu")["claimed"] == [], "cancelled cells are not generated"
    late = _Generation("r" * 32, "busy", "cpu")
    cand = Candidate.objects.select_related("study", "content", "style", "method_config").get(pk=ids[0])
    late._store(cand, torch.zeros(1, 3, 8, 8), {}, 0.1, 1, cand.study)
    cand.refresh_from_db()
    assert cand.status == "cancelled" and not cand.image
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert do_retry_failed(study)["queued"] == 4
    assert len(callbacks) == 1
    study.refresh_from_db()
    assert study.status == Study.Status.GENERATING
    assert len(run_generation(ids, device="cpu")["done"]) == 4
