"""Read-only views of a study's jobs for the researcher's pages: progress and the preview grid."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Max, Q
from django.utils import timezone

from .models import Candidate, MetricValue, SetMetricValue, Study

# Preview grid rows (content × style pairs) per page: each row has one image per method.
PREVIEW_PAIRS = 40


def study_progress(study: Study, *, window: timedelta = timedelta(minutes=10)) -> dict:
    """Generation progress of ``study``: counts, per-method counts, rate, ETA, failures, metric values.

    Each metric's row carries a stored reason why values are missing (one of
    them when candidates differ), e.g. the weights file to fetch.
    """
    statuses = [s for s, _ in Candidate.Status.choices]
    totals = dict.fromkeys(statuses, 0)
    per_method: dict[str, dict[str, int]] = {}
    rows = study.candidates.values("method_config__label", "status").annotate(n=Count("pk"))
    for row in rows:
        totals[row["status"]] += row["n"]
        per_method.setdefault(row["method_config__label"], dict.fromkeys(statuses, 0))[row["status"]] = row["n"]
    now = timezone.now()
    recent = study.candidates.filter(status=Candidate.Status.DONE, finished_at__gte=now - window)
    first = recent.order_by("finished_at").values_list("finished_at", flat=True).first()
    n_recent = recent.count()
    rate = None
    if n_recent >= 2 and first is not None:
        elapsed = max((now - first).total_seconds(), 1.0)
        rate = n_recent / elapsed * 60
    pending = totals["queued"] + totals["running"]
    eta = timedelta(seconds=round(pending / rate * 60)) if rate and pending else None
    failures = list(
        study.candidates.filter(status=Candidate.Status.FAILED)
        .select_related("content", "style", "method_config")
        .order_by("-finished_at")[:50]
    )
    metrics = (
        MetricValue.objects.filter(candidate__study=study)
        .values("name").annotate(n=Count("pk"), available=Count("pk", filter=Q(value__isnull=False)),
                                 reason=Max("unavailable_reason", filter=Q(value__isnull=True)))
        .order_by("name")
    )
    return {
        "total": sum(totals.values()),
        "by_status": totals,
        "by_method": per_method,
        "rate_per_minute": rate,
        "eta": eta,
        "failures": failures,
        "metrics": list(metrics),
        "set_metrics": list(
            SetMetricValue.objects.filter(study=study)
            .select_related("method_config", "culture")
            .order_by("name", "method_config__label", "culture__slug")
        ),
    }


def preview_page(study: Study, page: int) -> dict:
    """One page of the preview grid: content × style rows, one seed-0 candidate per method."""
    configs = list(study.method_configs.all())
    pairs = [(c, s) for s in study.style_images.select_related("culture") for c in study.content_images.all()]
    shown = pairs[(page - 1) * PREVIEW_PAIRS : page * PREVIEW_PAIRS]
    cands = {
        (x.content_id, x.style_id, x.method_config_id): x
        for x in study.candidates.filter(
            seed=0, content_id__in={c.pk for c, _ in shown}, style_id__in={s.pk for _, s in shown}
        )
    }
    rows = [{"content": c, "style": s, "outputs": [cands.get((c.pk, s.pk, m.pk)) for m in configs]} for c, s in shown]
    return {"configs": configs, "rows": rows, "page": page, "has_next": page * PREVIEW_PAIRS < len(pairs)}
