"""Generation and scoring by a real Celery worker process (embedded default, then PostgreSQL + Redis).

``make test`` runs this module twice: on SQLite + the file-system broker and
with ``DATABASE_URL``/``CELERY_BROKER_URL`` pointing at PostgreSQL and Redis.
"""

from __future__ import annotations

import hashlib

import pytest
from django.conf import settings
from PIL import Image

from studies.actions import do_queue_generation
from studies.demo import create_demo_study, ensure_demo_admin, run_demo_pipeline
from studies.models import Candidate, MetricValue, Study
from tests.conftest import require
from tests.pipeline.helpers import counts, sample_grid_study, wait_for
from tests.workers import celery_worker, purge_queues

# Cheap metrics, one of each kind (pixel, structure, VGG style, colour); the
# default set would also run every other metric at 64 px.
GRID_METRICS = ["psnr", "ssim", "gram-style", "color-hist"]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _require_stylecore(names=("wct", "adain")) -> None:
    try:
        from stylecore.methods import available_methods
        from stylecore.metrics import available_metrics
    except ImportError as exc:  # pragma: no cover - before stylecore's methods exist
        require(False, f"stylecore methods/metrics not installed: {exc}")
        return
    missing = [n for n in names if n not in available_methods()]
    missing += [n for n in GRID_METRICS if n not in available_metrics()]
    require(not missing, f"stylecore lacks {missing}")


def _sha256sums(weights_dir) -> dict[str, str]:
    out = {}
    for line in (weights_dir / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            out[name.strip().lstrip("*")] = digest
    return out


def test_worker_generates_and_scores_a_grid(transactional_db, media, tmp_path, samples_dir, weights_dir,
                                           expect_services):
    """2 contents × 2 styles × 2 methods (WCT, AdaIN; real weights) at 64 px: 8 candidates
    generated in batches by a worker process, each with provenance and metric values."""
    _require_stylecore()
    study = sample_grid_study(samples_dir)
    purge_queues()
    log = tmp_path / "worker.log"
    with celery_worker(log_path=log, STYLESTUDY_DEVICE="cpu") as proc:
        queued = do_queue_generation(study, score=GRID_METRICS)
        assert queued == {"created": 8, "queued": 8, "tasks": 2}, "one batched task per method config"
        wait_for(lambda: counts(study)["done"] + counts(study)["failed"] == 8, 300, what="8 candidates", log=log)
        assert counts(study)["done"] == 8, list(study.candidates.values_list("error", flat=True))
        wait_for(lambda: MetricValue.objects.filter(candidate__study=study).count() == 8 * len(GRID_METRICS), 300,
                 what="metric values", log=log)
        assert proc.poll() is None

    sums = _sha256sums(weights_dir)
    outputs = set()
    for cand in study.candidates.select_related("method_config", "content", "style"):
        with cand.image.open("rb") as fh:
            data = fh.read()
        img = Image.open(cand.image.path)
        assert img.mode == "RGB" and max(img.size) == 64, img.size
        outputs.add(hashlib.sha256(data).hexdigest())
        prov = cand.provenance
        assert prov["method"] == cand.method_config.method
        assert prov["params"]["alpha"] == cand.method_config.params["alpha"]
        assert prov["family"] and prov["seed"] == 0 and prov["device"] == "cpu"
        assert prov["weights"], "real weights were used"
        for name, digest in prov["weights"].items():
            files = [f for f in sums if f.startswith(name) or name in f]
            assert digest in {sums[f] for f in files} or digest in sums.values(), (name, digest)
        assert prov["versions"]["torch"] and prov["code_version"] and prov["worker"] and prov["seconds"] > 0
        assert prov["batch_size"] == 4 and cand.attempts == 1
    assert len(outputs) == 8, "every cell is a different image"
    values = {(v.candidate_id, v.name): v for v in MetricValue.objects.filter(candidate__study=study)}
    for cand in study.candidates.all():
        psnr = values[(cand.pk, "psnr")]
        assert psnr.value is not None and 5 < psnr.value < 40, psnr.value
        assert 0 <= values[(cand.pk, "ssim")].value <= 1
    study.refresh_from_db()
    assert study.status == Study.Status.READY


def test_demo_setup_generates_and_goes_live(transactional_db, media, tmp_path, samples_dir, weights_dir,
                                            expect_services):
    """``manage.py demo``'s set-up, small: sample study, methods, generation, scoring, live.

    The demo runs on the embedded default only, so the services pass skips it.
    """
    if expect_services:
        pytest.skip("the demo runs on the embedded default (SQLite + file-system broker)")
    _require_stylecore(("color", "wct", "adain"))
    admin_login = ensure_demo_admin()
    from django.contrib.auth import get_user_model

    owner = get_user_model().objects.get(username=admin_login.username)
    study = create_demo_study(samples_dir, owner, contents=1, styles_per_culture=1, image_size=64)
    assert study.content_images.count() == 1 and study.style_images.count() == 3
    assert all(s.thumbnail for s in study.style_images.all())
    purge_queues()
    log = tmp_path / "worker.log"
    with celery_worker(log_path=log, STYLESTUDY_DEVICE="cpu", STYLESTUDY_METRICS="psnr,ssim"):
        messages = []
        study = run_demo_pipeline(study, timeout=300, poll=0.5, report=messages.append)
        assert study.status == Study.Status.LIVE, (messages, log.read_text()[-3000:])
        assert study.config_hash
        assert counts(study)["done"] == 9, "1 content × 3 styles × (colour, WCT, AdaIN)"
        wait_for(lambda: MetricValue.objects.filter(candidate__study=study).count() == 18, 300,
                 what="demo metric values", log=log)
    assert set(study.method_configs.values_list("method", flat=True)) == {"color", "wct", "adain"}
    assert not Candidate.objects.filter(study=study).exclude(status="done").exists()
    assert settings.CELERY_TASK_ACKS_LATE
