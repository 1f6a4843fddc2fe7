"""Worker scoring with the real ``stylecore.metrics``: one preparation, set metrics per set, skips with reasons."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from studies.actions import do_create_study, do_import_images, do_queue_generation
from studies.models import (
    Candidate,
    CultureTag,
    MethodConfig,
    MetricValue,
    SetMetricValue,
)
from studies.workers.generate import run_generation
from studies.workers.score import run_scoring, run_set_scoring
from stylecore.io import load_image
from stylecore.metrics import compute, compute_set
from stylecore.metrics import distribution as stylecore_distribution

pytestmark = pytest.mark.django_db

PER_IMAGE = ["psnr", "ssim", "ssim-rgb", "color-hist", "edge-preservation"]


def _noise_png(seed: int, size: tuple[int, int]) -> bytes:
    """Textured pixels, so that the resize rule (bicubic vs bilinear) changes the scores."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def textured_study(researcher, fake_methods, django_capture_on_commit_callbacks):
    """2 contents (60 × 45, stored larger than the 32 px outputs) × 2 ink + 2 oil styles × 2 methods, generated."""
    study = do_create_study(title="Scoring", slug="scoring", owner=researcher, image_size=32, languages=["en"])
    do_import_images(study, [(f"c{i}.png", _noise_png(i, (60, 45))) for i in range(2)], kind="content")
    for k, slug in enumerate(["chinese-ink", "western-oil"]):
        culture, _ = CultureTag.objects.get_or_create(slug=slug, defaults={"name": slug})
        do_import_images(study, [(f"{slug}{i}.png", _noise_png(10 + 2 * k + i, (40, 40))) for i in range(2)],
                         kind="style", culture=culture)
    for k in range(2):
        MethodConfig.objects.create(study=study, label=f"tint-{k}", method="tint", params={"strength": 0.2 + 0.5 * k})
    with django_capture_on_commit_callbacks(execute=False):
        do_queue_generation(study, score=False)
    for mc in study.method_configs.all():
        done = run_generation(list(study.candidates.filter(method_config=mc).values_list("pk", flat=True)),
                              device="cpu")
        assert len(done["done"]) == 8, done
    return study


def test_stored_values_equal_stylecore_compute_on_the_same_files(textured_study):
    """Every stored value is what ``stylecore.metrics.compute`` gives on the stored files, to 1e-6."""
    ids = list(textured_study.candidates.values_list("pk", flat=True))
    assert run_scoring(ids, PER_IMAGE, device="cpu") == {"candidates": 16, "stored": 16 * len(PER_IMAGE)}
    stored = {(v.candidate_id, v.name): v for v in MetricValue.objects.all()}
    for cand in Candidate.objects.select_related("content", "style", "study"):
        image = load_image(cand.image.path)
        assert image.shape[-2:] == (24, 32) and cand.content.height == 45, "the content is aligned by compute"
        rows = compute(PER_IMAGE, image, load_image(cand.content.image.path),
                       load_image(cand.style.image.path, max_side=cand.study.image_size))
        for row in rows:
            value = stored[(cand.pk, row["name"])]
            assert value.unavailable_reason == "" and value.version == row["version"]
            assert value.value == pytest.approx(row["value"], abs=1e-6, rel=0), (row["name"], cand.pk)


def test_a_metric_that_does_not_apply_at_the_size_is_skipped_with_a_reason(textured_study):
    """MS-SSIM needs a short side of 176 px: at 24 × 32 it is skipped, not stored as an error; the rest is scored."""
    ids = list(textured_study.candidates.values_list("pk", flat=True))
    run_scoring(ids, ["ms-ssim", "psnr"], device="cpu")
    skipped = MetricValue.objects.filter(name="ms-ssim")
    assert skipped.count() == 16 and set(skipped.values_list("value", flat=True)) == {None}
    reasons = set(skipped.values_list("unavailable_reason", flat=True))
    assert reasons == {"not applicable: ms-ssim needs a short side of at least 176 px, got 24x32"}
    assert not MetricValue.objects.filter(unavailable_reason__startswith="error").exists()
    assert MetricValue.objects.filter(name="psnr", value__isnull=False).count() == 16


def _mean_colour_features(x: torch.Tensor) -> torch.Tensor:
    """A stand-in for the FID Inception (its weights are not bundled): per-channel means and spreads."""
    return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


def test_set_metrics_are_computed_once_per_method_and_culture(textured_study, monkeypatch, settings):
    """FID and KID: one value per method config × style culture, over that set's candidates against that
    culture's style images; none per image."""
    monkeypatch.setattr(stylecore_distribution, "_inception_unavailable", lambda: "")
    monkeypatch.setattr(stylecore_distribution, "_inception", lambda device: _mean_colour_features)
    settings.STYLESTUDY_METRICS = ["psnr", "fid", "kid"]
    ids = list(textured_study.candidates.values_list("pk", flat=True))
    run_scoring(ids, device="cpu")
    assert set(MetricValue.objects.values_list("name", flat=True)) == {"psnr"}, "set metrics are not per image"
    assert run_set_scoring(ids, device="cpu") == {"sets": 4, "stored": 8}
    assert SetMetricValue.objects.count() == 8
    for value in SetMetricValue.objects.select_related("method_config", "culture"):
        members = list(textured_study.candidates.filter(method_config=value.method_config,
                                                        style__culture=value.culture).order_by("pk"))
        styles = textured_study.style_images.filter(culture=value.culture).order_by("pk")
        expected = compute_set(
            [value.name], [load_image(c.image.path) for c in members],
            [load_image(s.image.path, max_side=32) for s in styles], device="cpu",
        )[0]
        assert value.n_images == len(members) == 4 and value.unavailable_reason == ""
        assert value.value == pytest.approx(expected["value"], abs=1e-9), value
    assert run_set_scoring(ids, device="cpu") == {"sets": 4, "stored": 0}, "complete sets are not computed again"


def test_set_metrics_wait_for_the_whole_set(textured_study, settings):
    """A set with a candidate still queued is not scored yet; without Inception weights the reason is stored."""
    settings.STYLESTUDY_METRICS = ["fid"]
    first = textured_study.candidates.order_by("pk").first()
    Candidate.objects.filter(pk=first.pk).update(status="queued")
    ids = list(textured_study.candidates.values_list("pk", flat=True))
    run_set_scoring(ids, device="cpu")
    pending = {(v.method_config_id, v.culture_id) for v in SetMetricValue.objects.all()}
    assert (first.method_config_id, first.style.culture_id) not in pending and len(pending) == 3


@pytest.mark.weights
def test_a_worker_loads_each_network_once(textured_study, weights_dir, monkeypatch):
    """Two scoring batches in one process: the VGG19 of the style metrics is read from disk for the first only."""
    import stylecore.weights
    from stylecore.metrics import _vgg

    _vgg._cached.cache_clear()  # start cold, so the first batch must load
    loads = []
    real = stylecore.weights.load_state_dict
    monkeypatch.setattr(stylecore.weights, "load_state_dict", lambda *a, **k: loads.append(a) or real(*a, **k))
    ids = list(textured_study.candidates.order_by("pk").values_list("pk", flat=True))
    first = run_scoring(ids[:8], ["gram-style", "content"], device="cpu")
    assert first["stored"] == 16 and not MetricValue.objects.exclude(unavailable_reason="").exists()
    assert loads, "the first batch reads the VGG19 file"
    loads.clear()
    assert run_scoring(ids[8:], ["gram-style", "content"], device="cpu")["stored"] == 16
    assert loads == []
