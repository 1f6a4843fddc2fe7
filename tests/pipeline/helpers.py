"""Helpers shared by the pipeline integration tests (real samples, polling)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from django.contrib.auth import get_user_model

from studies.actions import do_create_study, do_import_images
from studies.models import Candidate, CultureTag, MethodConfig, Study
from studies.permissions import make_researcher

# The grid of the issue: 2 contents × 2 styles × 2 methods at 64 px, real weights.
GRID_METHODS = [("WCT", "wct", {"alpha": 0.8}), ("AdaIN", "adain", {"alpha": 1.0})]


def wait_for(predicate: Callable[[], bool], timeout: float, *, what: str, log: Path | None = None,
             poll: float = 0.5) -> None:
    """Poll ``predicate`` until true; on timeout fail with the worker log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n--- worker log ---\n{tail}")


def sample_grid_study(samples_dir: Path, *, slug: str = "grid", contents: int = 2, styles: int = 2,
                      methods=GRID_METHODS, image_size: int = 64) -> Study:
    """A study of real sample photos and paintings, built with the ``do_*`` actions."""
    owner = make_researcher(get_user_model().objects.create_user(f"owner-{slug}", password="x"))
    study = do_create_study(title=f"Grid {slug}", slug=slug, owner=owner, image_size=image_size)
    photos = sorted((samples_dir / "content").glob("*.jpg"))[:contents]
    report = do_import_images(study, [(p.name, p.read_bytes()) for p in photos], kind="content")
    assert len(report.created) == contents, report.summary()
    culture, _ = CultureTag.objects.get_or_create(slug="japanese-ukiyoe", defaults={"name": "Japanese ukiyo-e"})
    paintings = sorted((samples_dir / "style" / "japanese").glob("*.jpg"))[:styles]
    report = do_import_images(study, [(p.name, p.read_bytes()) for p in paintings], kind="style", culture=culture)
    assert len(report.created) == styles, report.summary()
    for label, method, params in methods:
        MethodConfig.objects.create(study=study, label=label, method=method, params=params)
    return study


def counts(study: Study) -> dict[str, int]:
    out = {s: 0 for s, _ in Candidate.Status.choices}
    for status in study.candidates.values_list("status", flat=True):
        out[status] += 1
    return out
