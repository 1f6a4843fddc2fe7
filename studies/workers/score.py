"""Score generated candidates: per-image metrics in one batched call, set metrics once per set.

The preparation is stylecore's own, as in ``python -m stylecore metrics``:
the output and its content photo are read at stored size and
:func:`stylecore.metrics.compute` aligns the content (antialiased bicubic,
refusing a different aspect ratio); the style is read at the study's image
size, as the method saw it. Networks are cached by stylecore per process, so
a worker loads each metric's network once.

Set metrics (FID, KID, ArtFID) are computed over every done candidate of one
method configuration whose style has one culture, against that culture's
style images, once no candidate of the set is still queued or running.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ..lifecycle import jobs
from ..lifecycle.jobs import PENDING
from ..models import Candidate, JobStatus, MetricValue, SetMetricValue, StyleImage
from ..storage import read_stimulus
from .runtime import is_out_of_memory, read_file, worker_device


def _kind(name: str) -> str:
    from stylecore.metrics import get_metric

    return getattr(get_metric(name), "kind", "image")


def default_metrics() -> list[str]:
    """``STYLESTUDY_METRICS`` if set, else every metric stylecore offers (per-image and set)."""
    configured = getattr(settings, "STYLESTUDY_METRICS", None)
    if configured:
        return list(configured)
    from stylecore.metrics import available_metrics

    return list(available_metrics())


def _versions(names: Sequence[str]) -> dict[str, str | None]:
    from stylecore.metrics import get_metric

    out = {}
    for name in names:
        version = getattr(get_metric(name), "version", None)
        out[name] = str(version) if version is not None else None
    return out


class _Images:
    """Tensors of one scoring call, each file read once."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int, int | None], Any] = {}

    def get(self, kind: str, row, max_side: int | None = None):
        from stylecore.io import load_image

        key = (kind, row.pk, max_side)
        if key not in self._cache:
            # Stimuli (content, style) go through the per-process cache; candidates are read once.
            data = read_file(row.image) if kind == "candidate" else read_stimulus(row)
            self._cache[key] = load_image(data, max_side=max_side)
        return self._cache[key]


def _error(exc: BaseException) -> str:
    return f"error: {type(exc).__name__}: {exc}"


def _compute(names: list[str], idx: list[int], images, contents, styles, device: str) -> dict[tuple[int, str], tuple]:
    """``(index, name) -> (value, version, reason)``, one batched call; split only to isolate a failure."""
    from stylecore.metrics import compute

    try:
        rows = compute(names, [images[i] for i in idx], [contents[i] for i in idx], [styles[i] for i in idx],
                       device=device)
    except jobs.TRANSIENT_ERRORS:
        raise
    except (ValueError, RuntimeError) as exc:
        if is_out_of_memory(exc):
            raise
        if len(idx) > 1:  # find the candidate that fails, score the rest
            return {k: v for i in idx for k, v in _compute(names, [i], images, contents, styles, device).items()}
        if len(names) > 1:
            return {k: v for n in names for k, v in _compute([n], idx, images, contents, styles, device).items()}
        return {(idx[0], names[0]): (None, None, _error(exc))}
    return {(idx[r["index"]], r["name"]): (r.get("value"), r.get("version"), r.get("unavailable") or "")
            for r in rows}


def run_scoring(candidate_ids: Sequence[int], metrics: Sequence[str] | None = None, *,
                device: str | None = None) -> dict[str, int]:
    """Compute per-image metrics of generated candidates and store them (idempotent).

    A value already stored for the same metric and version is not computed
    again. A metric that cannot run (missing weights) is stored with a null
    value and the reason; one that is not defined at the image's size (e.g.
    MS-SSIM below 176 px) with ``not applicable: …``; set metrics are left to
    :func:`run_set_scoring`.
    """
    from stylecore.metrics import get_metric

    names = [n for n in (list(metrics) if metrics else default_metrics()) if _kind(n) == "image"]
    rows = list(
        Candidate.objects.filter(pk__in=list(candidate_ids), status=JobStatus.DONE)
        .select_related("study", "content", "style")
        .order_by("pk")
    )
    if not rows or not names:
        return {"candidates": 0, "stored": 0}
    versions = _versions(names)
    have = set(
        MetricValue.objects.filter(candidate__in=rows, name__in=names).values_list("candidate_id", "name", "version")
    )
    todo = [n for n in names if versions[n] is None or any((r.pk, n, versions[n]) not in have for r in rows)]
    if not todo:
        return {"candidates": len(rows), "stored": 0}
    files = _Images()
    images = [files.get("candidate", r) for r in rows]
    contents = [files.get("content", r.content) for r in rows]
    styles = [files.get("style", r.style, r.study.image_size) for r in rows]
    results: dict[tuple[int, str], tuple] = {}
    # Metrics applicable to the same candidates run in one call.
    by_subset: dict[tuple[int, ...], list[str]] = {}
    for name in todo:
        spec = get_metric(name)
        applies = []
        for i, image in enumerate(images):
            skip = spec.not_applicable(*image.shape[-2:]) if hasattr(spec, "not_applicable") else ""
            if skip:
                results[(i, name)] = (None, versions[name], skip)
            else:
                applies.append(i)
        if applies:
            by_subset.setdefault(tuple(applies), []).append(name)
    dev = device or worker_device()
    for idx, group in by_subset.items():
        results.update(_compute(group, list(idx), images, contents, styles, dev))
    now = timezone.now()
    values = [
        MetricValue(candidate=rows[i], name=name, version=str(version or versions[name] or ""),
                    value=None if value is None else float(value), unavailable_reason=reason[:4000], computed_at=now)
        for (i, name), (value, version, reason) in results.items()
    ]
    MetricValue.objects.bulk_create(values, update_conflicts=True, unique_fields=["candidate", "name", "version"],
                                    update_fields=["value", "unavailable_reason", "computed_at"])
    return {"candidates": len(rows), "stored": len(values)}


def run_set_scoring(candidate_ids: Sequence[int], metrics: Sequence[str] | None = None, *,
                    device: str | None = None) -> dict[str, int]:
    """Compute the set metrics of every complete set the candidates belong to (idempotent).

    A set is one method configuration × one style culture of a study; it is
    complete when none of its candidates is queued or running. A set whose
    values are stored at the same version for the same number of candidates
    is not computed again.

    Returns:
        ``{"sets": n, "stored": n}``.
    """
    names = [n for n in (list(metrics) if metrics else default_metrics()) if _kind(n) == "set"]
    if not names:
        return {"sets": 0, "stored": 0}
    from stylecore.metrics import compute_set

    versions = _versions(names)
    keys = set(
        Candidate.objects.filter(pk__in=list(candidate_ids), status=JobStatus.DONE)
        .values_list("study_id", "method_config_id", "style__culture_id")
    )
    stored = 0
    files = _Images()
    for study_id, mc_id, culture_id in sorted(keys):
        members = Candidate.objects.filter(method_config_id=mc_id, style__culture_id=culture_id)
        if members.filter(status__in=PENDING).exists():
            continue  # a later scoring task sees the complete set
        done = list(members.filter(status=JobStatus.DONE).select_related("study", "content").order_by("pk"))
        have = SetMetricValue.objects.filter(method_config_id=mc_id, culture_id=culture_id, n_images=len(done))
        if all(have.filter(name=n, version=versions[n]).exists() for n in names):
            continue
        image_size = done[0].study.image_size
        references = list(StyleImage.objects.filter(study_id=study_id, culture_id=culture_id).order_by("pk"))
        if len(done) < 2 or len(references) < 2:
            reason = (f"not applicable: set metrics need at least 2 candidates and 2 style images, "
                      f"got {len(done)} and {len(references)}")
            results = [{"name": n, "version": versions[n], "value": None, "unavailable": reason} for n in names]
        else:
            try:
                results = compute_set(
                    names, [files.get("candidate", r) for r in done],
                    [files.get("style", s, image_size) for s in references],
                    contents=[files.get("content", r.content) for r in done], device=device or worker_device(),
                )
            except jobs.TRANSIENT_ERRORS:
                raise
            except (ValueError, RuntimeError) as exc:
                if is_out_of_memory(exc):
                    raise
                results = [{"name": n, "version": versions[n], "value": None, "unavailable": _error(exc)}
                           for n in names]
        for r in results:
            SetMetricValue.objects.update_or_create(
                method_config_id=mc_id, culture_id=culture_id, name=r["name"], version=str(r["version"] or ""),
                defaults={"study_id": study_id, "value": r["value"], "n_images": len(done),
                          "unavailable_reason": (r.get("unavailable") or "")[:4000], "computed_at": timezone.now()},
            )
            stored += 1
        # Values of an older, smaller set of this method and culture are superseded.
        SetMetricValue.objects.filter(method_config_id=mc_id, culture_id=culture_id).filter(
            ~Q(n_images=len(done))
        ).delete()
    return {"sets": len(keys), "stored": stored}
