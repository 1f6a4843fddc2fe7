"""A study's report from the database: its tidy frame, set metrics, frozen configuration and thumbnails.

Everything else is :func:`studies.reports.build.build_report`, which needs no
Django and runs on any tidy frame (tests, benchmarks, ``study_report --tidy``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from studies.analysis import tidy
from studies.export import study_configuration, study_frame, study_set_metrics
from studies.models import Candidate, Study

from .build import Progress, ReportOptions, ReportResult, _noop, build_report


def build_study_report(
    study_id: int, out_dir: str | Path, progress: Progress | None = None,
    *, options: ReportOptions | None = None,
) -> ReportResult:
    """Load a study from the database and write its report into ``out_dir``.

    The admin action's Celery task and ``manage.py study_report`` both call this.

    Args:
        study_id: Primary key of the study.
        out_dir: Output folder.
        progress: ``progress(fraction, message)`` callback.
        options: Analysis settings; ``rules.max_attention_failures`` defaults to
            the study's own setting.

    Raises:
        studies.models.Study.DoesNotExist: No such study.
    """
    progress = progress or _noop
    study = Study.objects.get(pk=study_id)
    if options is None:
        options = ReportOptions(rules=tidy.ExclusionRules(
            max_attention_failures=study.max_attention_failures))
    progress(0.0, "loading responses")
    frame = study_frame(study_id)
    config = study_configuration(study_id)
    return build_report(frame, out_dir, config=config, set_metrics=study_set_metrics(study_id),
                        options=options, progress=progress,
                        title=f"{study.title}: study report", thumbnails=_storage_thumbnails)


#: Longer side of the candidate thumbnails embedded in the report (pixels).
THUMBNAIL_SIZE = 240


def _storage_thumbnails(candidate_ids: Sequence[Any]) -> dict[Any, bytes]:
    """JPEG thumbnails of candidates' images, read through the storage API.

    A file missing from storage or not decodable is left out (the grid says
    so); the report never fails for a thumbnail.
    """
    out: dict[Any, bytes] = {}
    names = Candidate.objects.filter(pk__in=list(candidate_ids)).exclude(image="") \
        .values_list("pk", "image")
    for pk, name in names:
        try:
            with Candidate.image.field.storage.open(name, "rb") as f, Image.open(f) as img:
                img = img.convert("RGB")
                img.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
                buffer = io.BytesIO()
                img.save(buffer, format="JPEG", quality=85)
        except (OSError, UnidentifiedImageError, ValueError):
            continue
        out[pk] = buffer.getvalue()
    return out
