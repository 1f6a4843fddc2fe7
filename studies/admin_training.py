"""The researcher's view of GAN training runs: data-size warnings, loss curves, "use as method".

Kept apart from :mod:`studies.admin` so the training-run page can grow
without touching the study pages; :class:`studies.admin.GanTrainingRunAdmin`
uses these.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from stylecore.gan import TrainConfig
from stylecore.gan.data import small_collection_message

from .lifecycle.training import do_use_as_method
from .models import GanTrainingRun, Study

CURVE_WIDTH, CURVE_HEIGHT = 640, 220
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def data_size_warnings(study: Study, cultures: list[str], config: dict) -> list[str]:
    """The trainer's small-collection warnings for ``study``'s images, before training starts."""
    min_images = TrainConfig.from_dict(config).min_images if config else TrainConfig().min_images
    counts = {"photo": study.content_images.count()}
    for slug in cultures:
        counts[slug] = study.style_images.filter(culture__slug=slug).count()
    return [m for name, n in counts.items() if (m := small_collection_message(name, n, min_images))]


def loss_curves_svg(history: list[dict]) -> SafeString:
    """Every loss of ``history`` against iteration as an inline SVG line chart (one scale per loss).

    Each curve is scaled to its own range (the losses differ by orders of
    magnitude); the legend gives each loss's first and last value.
    """
    if len(history) < 2:
        return mark_safe("")
    names = [k for k in history[-1] if k != "iteration"]
    first, last = history[0]["iteration"], history[-1]["iteration"]
    pad, legend = 8, 16 * len(names)
    width, height = CURVE_WIDTH, CURVE_HEIGHT
    lines, items = [], []
    for i, name in enumerate(names):
        points = [(row["iteration"], row[name]) for row in history if isinstance(row.get(name), int | float)]
        if len(points) < 2:
            continue
        low, high = min(v for _, v in points), max(v for _, v in points)
        span = (high - low) or 1.0
        xy = " ".join(
            f"{pad + (it - first) / max(last - first, 1) * (width - 2 * pad):.1f},"
            f"{height - pad - (v - low) / span * (height - 2 * pad):.1f}"
            for it, v in points
        )
        colour = _COLOURS[i % len(_COLOURS)]
        lines.append((xy, colour))
        items.append((colour, height + 14 + 16 * len(items), name, f"{points[0][1]:.3f}", f"{points[-1][1]:.3f}"))
    polylines = format_html_join("", '<polyline points="{}" fill="none" stroke="{}" stroke-width="1.2"/>', lines)
    labels = format_html_join(
        "", '<text x="8" y="{1}" fill="{0}" font-size="12">{2}: {3} → {4}</text>', items,
    )
    return format_html(
        '<svg class="loss-curves" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="{title}"><rect x="0" y="0" width="{w}" height="{ch}" fill="none" stroke="#ccc"/>'
        '{lines}{labels}<text x="{w2}" y="{h2}" font-size="11" text-anchor="end">{axis}</text></svg>',
        w=width, h=height + legend + 8, ch=height, title=_("Training losses"), lines=polylines,
        labels=labels, w2=width - pad, h2=height - pad - 2,
        axis=_("iteration %(first)d–%(last)d, each loss scaled to its range") % {"first": first, "last": last},
    )


def use_as_method(modeladmin, request, queryset) -> None:
    """Admin action: each selected finished or stopped run becomes method configuration(s) of its study."""
    for run in queryset:
        try:
            configs = do_use_as_method(run)
        except ValidationError as exc:
            modeladmin.message_user(request, "; ".join(exc.messages), messages.ERROR)
            continue
        modeladmin.message_user(
            request,
            _("“%(run)s” is now the method(s) %(labels)s of “%(study)s” (checkpoint SHA-256 %(sha)s…).") % {
                "run": run.label, "labels": ", ".join(f"“{mc.label}”" for mc in configs),
                "study": run.study.title, "sha": configs[0].params["checkpoint_sha256"][:16],
            },
            messages.SUCCESS,
        )


use_as_method.short_description = gettext_lazy("Use as method in its study")
use_as_method.allowed_permissions = ("change",)


def warn_about_data_size(modeladmin, request, run: GanTrainingRun) -> None:
    for message in data_size_warnings(run.study, run.cultures, run.config):
        modeladmin.message_user(request, message, messages.WARNING)
