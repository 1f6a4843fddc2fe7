"""GAN training runs: a generator learned from a study's images, grouped by culture."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .study import Study


def training_upload_to(instance: GanTrainingRun, filename: str) -> str:
    return f"studies/{instance.study_id}/training/{instance.pk}/{filename}"


class GanTrainingRun(models.Model):
    """One CycleGAN or culture-conditioned GAN training run on the ``gpu`` queue.

    Domain A is the study's content photographs; the target domains are its
    style images of the chosen cultures (one for CycleGAN, one or more for the
    conditional generator). Progress is written as training goes; the latest
    checkpoint is kept in storage so a run resumes on any worker after a crash.
    """

    class Model(models.TextChoices):
        CYCLEGAN = "cyclegan", _("CycleGAN (photos → one culture)")
        CONDITIONAL = "conditional", _("Culture-conditioned generator (photos → any culture)")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="training_runs", verbose_name=_("study"))
    label = models.CharField(_("label"), max_length=100)
    model = models.CharField(_("model"), max_length=16, choices=Model.choices, default=Model.CYCLEGAN)
    cultures = models.JSONField(_("target cultures"), default=list, help_text=_('Culture tag slugs, e.g. ["chinese-ink"].'))
    config = models.JSONField(
        _("training settings"), default=dict, blank=True,
        help_text=_('stylecore TrainConfig fields, e.g. {"size": 256, "iters": 20000, "amp": true}.'),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(_("cancel requested"), default=False)
    iteration = models.PositiveIntegerField(_("iteration"), default=0)
    total_iterations = models.PositiveIntegerField(_("total iterations"), default=0)
    losses = models.JSONField(_("latest losses"), default=dict, blank=True)
    seconds_per_iteration = models.FloatField(_("seconds per iteration"), null=True, blank=True)
    eta_seconds = models.FloatField(_("ETA (s)"), null=True, blank=True)
    checkpoint = models.FileField(_("latest checkpoint"), upload_to=training_upload_to, blank=True)
    generator = models.FileField(_("trained generator"), upload_to=training_upload_to, blank=True)
    sample_grid = models.ImageField(_("latest sample grid"), upload_to=training_upload_to, blank=True)
    error = models.TextField(_("error"), blank=True)
    worker = models.CharField(_("worker host"), max_length=200, blank=True)
    claim = models.CharField(_("claim token"), max_length=32, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("last progress"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("GAN training run")
        verbose_name_plural = _("GAN training runs")
        ordering = ["study", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["study", "label"], name="unique_training_label_per_study")]

    def __str__(self) -> str:
        return self.label
