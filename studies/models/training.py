"""GAN training runs: a generator learned from a study's images, grouped by culture."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .jobs import Job
from .study import Study


def training_upload_to(instance: GanTrainingRun, filename: str) -> str:
    return f"studies/{instance.study_id}/training/{instance.pk}/{filename}"


class GanTrainingRun(Job):
    """One CycleGAN or culture-conditioned GAN training run on the ``gpu`` queue.

    Domain A is the study's content photographs; the target domains are its
    style images of the chosen cultures (one for CycleGAN, one or more for the
    conditional generator). Progress is written as training goes; the latest
    checkpoint is kept in storage so a run resumes on any worker after a crash.
    """

    class Model(models.TextChoices):
        CYCLEGAN = "cyclegan", _("CycleGAN (photos → one culture)")
        CONDITIONAL = "conditional", _("Culture-conditioned generator (photos → any culture)")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="training_runs", verbose_name=_("study"))
    label = models.CharField(_("label"), max_length=100)
    model = models.CharField(_("model"), max_length=16, choices=Model.choices, default=Model.CYCLEGAN)
    cultures = models.JSONField(_("target cultures"), default=list, help_text=_('Culture tag slugs, e.g. ["chinese-ink"].'))
    config = models.JSONField(
        _("training settings"), default=dict, blank=True,
        help_text=_('stylecore TrainConfig fields, e.g. {"size": 256, "iters": 20000, "amp": true}.'),
    )
    cancel_requested = models.BooleanField(_("cancel requested"), default=False)
    iteration = models.PositiveIntegerField(_("iteration"), default=0)
    total_iterations = models.PositiveIntegerField(_("total iterations"), default=0)
    losses = models.JSONField(_("latest losses"), default=dict, blank=True)
    loss_history = models.JSONField(
        _("loss history"), default=list, blank=True,
        help_text=_("[{iteration, loss…}, …], thinned to at most a few hundred points."),
    )
    seconds_per_iteration = models.FloatField(_("seconds per iteration"), null=True, blank=True)
    eta_seconds = models.FloatField(_("ETA (s)"), null=True, blank=True)
    checkpoint = models.FileField(_("latest checkpoint"), upload_to=training_upload_to, blank=True)
    generator = models.FileField(_("trained generator"), upload_to=training_upload_to, blank=True)
    sample_grid = models.ImageField(_("latest sample grid"), upload_to=training_upload_to, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("GAN training run")
        verbose_name_plural = _("GAN training runs")
        ordering = ["study", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["study", "label"], name="unique_training_label_per_study")]

    def __str__(self) -> str:
        return self.label
