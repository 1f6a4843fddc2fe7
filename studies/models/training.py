"""GAN training runs: a generator learned from a study's images, grouped by culture."""

from __future__ import annotations

import dataclasses

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from stylecore.gan.train import TrainConfig

from .jobs import Job
from .study import CultureTag, Study

#: Settings the run row and the worker decide; a run's config may not set them.
RESERVED_SETTINGS = frozenset({"model", "device", "progress_bar"})
#: Setting -> its annotation in stylecore's TrainConfig, e.g. "int | None".
_SETTING_TYPES = {f.name: f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
                  for f in dataclasses.fields(TrainConfig)}
#: JSON values each annotation accepts (bool is not a number here).
_JSON_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def training_config_errors(config: object, model: str) -> list[str]:
    """Why ``config`` cannot train a ``model`` run; empty when it can.

    Checks the keys (known to the trainer, not reserved), each value's JSON
    type against the trainer's annotation, then the trainer's own limits
    (e.g. ``size`` a multiple of 4), so a bad run is refused when it is
    saved, not when a GPU worker picks it up.
    """
    if not isinstance(config, dict):
        return [str(_("The config must be a JSON object."))]
    unknown = sorted(set(config) - set(_SETTING_TYPES))
    if unknown:
        return [str(_("Unknown training settings: %(names)s. Known: %(known)s.") % {
            "names": ", ".join(unknown), "known": ", ".join(sorted(set(_SETTING_TYPES) - RESERVED_SETTINGS))})]
    reserved = sorted(set(config) & RESERVED_SETTINGS)
    if reserved:
        return [str(_("The settings %(names)s are chosen by the run and the worker, not the config.")
                    % {"names": ", ".join(reserved)})]
    errors = []
    for name, value in config.items():
        kinds = [k.strip() for k in _SETTING_TYPES[name].split("|")]
        if any(k not in _JSON_TYPES and k != "None" for k in kinds):
            continue  # an annotation JSON cannot express: the trainer checks it
        if value is None:
            fits = "None" in kinds
        elif isinstance(value, bool):
            fits = "bool" in kinds
        else:
            fits = any(isinstance(value, _JSON_TYPES.get(k, ())) for k in kinds if k != "bool")
        if not fits:
            errors.append(str(_("The setting %(name)s must be %(type)s, not %(value)r.") % {
                "name": name, "type": _SETTING_TYPES[name].replace("None", "null"), "value": value}))
    if errors:
        return errors
    try:
        TrainConfig(**config, model=model)
    except ValueError as exc:
        return [str(_("The trainer refuses these settings: %(reason)s.") % {"reason": exc})]
    return []


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

    #: Fields whose values decide what is trained.
    SETTINGS_FIELDS = ("model", "cultures", "config")

    def clean(self) -> None:
        """Check the training settings of a new run, or of a stored run whose settings changed.

        A stored run whose settings no longer pass (e.g. a later trainer
        renamed a setting) keeps them and stays editable: its history is
        not rewritten.
        """
        super().clean()
        stored = (GanTrainingRun.objects.filter(pk=self.pk).values(*self.SETTINGS_FIELDS).first()
                  if self.pk else None)
        if stored is None or any(stored[f] != getattr(self, f) for f in self.SETTINGS_FIELDS):
            self.validate_settings()

    def validate_settings(self) -> None:
        """Raise a ValidationError naming each field whose training settings cannot run.

        Raises:
            ValidationError: ``cultures`` is not a non-empty list of existing culture
                tag slugs (exactly one for CycleGAN), or ``config`` fails
                :func:`training_config_errors`.
        """
        errors: dict[str, list[str]] = {}
        cultures = self.cultures
        if not isinstance(cultures, list) or not cultures or not all(isinstance(c, str) for c in cultures):
            errors["cultures"] = [_("List at least one culture tag slug.")]
        else:
            known = set(CultureTag.objects.filter(slug__in=cultures).values_list("slug", flat=True))
            unknown = sorted(set(cultures) - known)
            if unknown:
                errors["cultures"] = [_("Unknown culture tags: %(tags)s.") % {"tags": ", ".join(unknown)}]
            elif self.model == self.Model.CYCLEGAN and len(cultures) != 1:
                errors["cultures"] = [_("CycleGAN learns one target culture: list exactly one, or choose "
                                        "the culture-conditioned generator.")]
        if self.model in self.Model.values:
            config_errors = training_config_errors(self.config, self.model)
            if config_errors:
                errors["config"] = config_errors
        if errors:
            raise ValidationError(errors)
