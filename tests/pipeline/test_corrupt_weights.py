"""A corrupt weight file fails the study's candidates with its name; nothing is marked done."""

from __future__ import annotations

import shutil

import pytest

import stylecore.models.autoencoder as autoencoder
import stylecore.weights.registry as registry
from studies import pipeline
from studies.actions import do_queue_generation
from studies.models import Candidate, MethodConfig

from .conftest import build_study

pytestmark = pytest.mark.django_db

CORRUPT = "wct_vgg_normalised_conv1_1.pth"


@pytest.mark.weights
def test_corrupt_weight_file_fails_the_candidates_by_name(researcher, culture, weights_dir, tmp_path, monkeypatch,
                                                          django_capture_on_commit_callbacks):
    folder = tmp_path / "weights"
    folder.mkdir()
    for path in weights_dir.glob("wct_*.pth"):
        shutil.copyfile(path, folder / path.name)
    data = bytearray((folder / CORRUPT).read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    (folder / CORRUPT).write_bytes(bytes(data))
    monkeypatch.setenv("STYLECORE_WEIGHTS_DIR", str(folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "_VERIFIED", {})
    monkeypatch.setattr(autoencoder, "_CACHE", {})

    study = build_study(researcher, culture, slug="corrupt", contents=1, styles=1, methods=())
    MethodConfig.objects.create(study=study, label="WCT", method="wct", params={})
    with django_capture_on_commit_callbacks(execute=False):
        do_queue_generation(study)
    outcome = pipeline.run_generation(list(Candidate.objects.values_list("pk", flat=True)), device="cpu")
    assert outcome["done"] == [] and len(outcome["failed"]) == 1
    candidate = Candidate.objects.get()
    assert candidate.status == Candidate.Status.FAILED and not candidate.image
    assert "ChecksumMismatchError" in candidate.error and CORRUPT in candidate.error
