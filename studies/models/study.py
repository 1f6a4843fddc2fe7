"""Studies and their stimuli: images, methods, candidates, metric values, questions."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .jobs import Job


def content_upload_to(instance: ContentImage, filename: str) -> str:
    return f"studies/{instance.study_id}/content/{instance.sha256}.png"


def style_upload_to(instance: StyleImage, filename: str) -> str:
    return f"studies/{instance.study_id}/style/{instance.sha256}.png"


def thumbnail_upload_to(instance: models.Model, filename: str) -> str:
    kind = "content" if isinstance(instance, ContentImage) else "style"
    return f"studies/{instance.study_id}/{kind}/thumbs/{instance.sha256}.jpg"


def candidate_upload_to(instance: Candidate, filename: str) -> str:
    return f"studies/{instance.study_id}/candidates/{filename}"


class StudyFrozenError(ValidationError):
    """An edit that would change the stimuli or methods of a live or closed study.

    ``detail`` says, where known, what the edit changed that cannot change and
    what may still change (:meth:`_FrozenWithStudy.frozen_detail`).
    """

    def __init__(self, study: Study, what: str | None = None, detail: str = "") -> None:
        what = what or _("its stimuli and methods")
        message = (_("Study “%(study)s” is %(status)s: %(what)s are frozen (configuration hash %(hash)s).")
                   % {"study": study.title, "status": study.get_status_display().lower(), "what": what,
                      "hash": (study.config_hash or "")[:12]})
        super().__init__(f"{message} {detail}" if detail else message, code="frozen")
        self.study = study


class _FrozenWithStudy(models.Model):
    """A row of a study's design: refused for change while the study is live or closed.

    ``frozen_fields`` lists what defines the design (``None``: every field);
    the other fields (wording, quotas) may change while live, and the admin
    records each such change (:mod:`studies.actions.live_edits`). The check
    runs in ``clean()`` (forms, with a field-level message) and again in
    ``save()`` and ``delete()`` as the last line of defence.
    """

    frozen_fields: tuple[str, ...] | None = None
    frozen_what = _("its stimuli and methods")
    #: What of such a row may still change while live (None: nothing).
    editable_what = None
    #: How a frozen field is named in messages where its verbose name would mislead.
    frozen_labels: dict = {}

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        self._check_not_frozen()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        study = self._frozen_study()
        if study is not None:
            raise StudyFrozenError(study, self.frozen_what)
        return super().delete(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        self._check_not_frozen()

    def _frozen_study(self) -> Study | None:
        if not self.study_id:
            return None
        study = Study.objects.filter(pk=self.study_id).only("status", "title", "config_hash").first()
        return study if study is not None and study.is_frozen else None

    def design_value(self, field: str):
        """The value of ``field`` as far as the frozen design is concerned."""
        return getattr(self, field)

    def frozen_changes(self) -> list[str]:
        """Design fields that differ from the stored row of a frozen study (``["new row"]`` if unsaved)."""
        if self._frozen_study() is None:
            return []
        stored = type(self).objects.filter(pk=self.pk).first() if self.pk else None
        if stored is None:
            return ["new row"]
        if stored.study_id != self.study_id:
            return ["study"]
        fields = self.frozen_fields or tuple(
            f.attname for f in self._meta.concrete_fields if not f.primary_key
        )
        return [f for f in fields if stored.design_value(f) != self.design_value(f)]

    def frozen_label(self, field: str) -> str:
        if field in self.frozen_labels:
            return str(self.frozen_labels[field])
        return str(self._meta.get_field(field.removesuffix("_id")).verbose_name)

    def frozen_detail(self, changed: list[str] | None = None) -> str:
        """``Cannot change: … Still editable: …`` for a row of a live study (``changed``: the fields an edit changed)."""
        fields = changed if changed is not None else [
            f for f in self.frozen_fields or () if f.removesuffix("_id") in {x.name for x in self._meta.fields}]
        parts = []
        if fields:
            parts.append(_("Cannot change: %(fields)s.") % {"fields": ", ".join(self.frozen_label(f) for f in fields)})
        if self.editable_what:
            parts.append(_("Still editable: %(editable)s (each change is recorded).")
                         % {"editable": self.editable_what})
        return " ".join(parts)

    def _check_not_frozen(self) -> None:
        changed = self.frozen_changes()
        if changed:
            # A new row has nothing of its own to name.
            detail = "" if changed == ["new row"] else self.frozen_detail(changed)
            raise StudyFrozenError(self._frozen_study(), self.frozen_what, detail)


def frozen_studies_using_culture(tag_id: int):
    """Live or closed studies whose styles or groups use culture tag ``tag_id``."""
    return Study.objects.filter(
        models.Q(style_images__culture_id=tag_id) | models.Q(participant_groups__culture_id=tag_id),
        status__in=(Study.Status.LIVE, Study.Status.CLOSED),
    ).distinct()


class CultureTag(models.Model):
    """A visual culture of style images, e.g. ``chinese-ink`` or ``japanese-ukiyoe``."""

    slug = models.SlugField(_("slug"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=100)
    names = models.JSONField(
        _("names per language"),
        default=dict,
        blank=True,
        help_text=_('Translations of the name, e.g. {"zh-hans": "中国水墨", "ja": "水墨画"}.'),
    )

    class Meta:
        verbose_name = _("culture tag")
        verbose_name_plural = _("culture tags")
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self._check_not_frozen()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._check_not_frozen(deleting=True)
        return super().delete(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        self._check_not_frozen()

    #: Part of every configuration hash that uses the tag.
    DESIGN_FIELDS = ("slug", "name")

    def _check_not_frozen(self, *, deleting: bool = False) -> None:
        if not self.pk:
            return
        stored = CultureTag.objects.filter(pk=self.pk).first()
        if stored is None:
            return
        changed = deleting or any(getattr(stored, f) != getattr(self, f) for f in self.DESIGN_FIELDS)
        study = frozen_studies_using_culture(self.pk).first() if changed else None
        if study is not None:
            raise StudyFrozenError(study, _("the culture tags it uses"))



class Study(models.Model):
    """A cross-cultural style-transfer study, from configuration to export."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        GENERATING = "generating", _("Generating")
        READY = "ready", _("Ready")
        LIVE = "live", _("Live")
        CLOSED = "closed", _("Closed")

    title = models.CharField(_("title"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    description = models.TextField(_("description"), blank=True)
    owners = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="owned_studies", verbose_name=_("owners")
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)
    languages = models.JSONField(
        _("languages"), default=list, help_text=_('Language codes offered to participants, e.g. ["en", "zh-hans", "ja"].')
    )
    default_language = models.CharField(_("default language"), max_length=10, default="en")
    texts = models.JSONField(
        _("texts per language"),
        default=dict,
        blank=True,
        help_text=_('Participant-facing texts by language: {"en": {"consent": …, "instructions": …, "thanks": …, '
                    '"withdrawal": …}}; "withdrawal" (shown before a participant withdraws) says what happens '
                    'to their data, as the consent text does.'),
    )
    image_size = models.PositiveIntegerField(
        _("image size"), default=512, help_text=_("Longer side of generated images, in pixels.")
    )
    seeds = models.PositiveSmallIntegerField(_("seeds per cell"), default=1)
    trials_per_participant = models.PositiveIntegerField(_("trials per participant"), default=20)
    session_timeout_minutes = models.PositiveIntegerField(
        _("session timeout (minutes)"), default=60, help_text=_("An unfinished session older than this frees its slot.")
    )
    max_attention_failures = models.PositiveSmallIntegerField(
        _("attention failures allowed"), default=0, help_text=_("Participants failing more checks than this are excluded.")
    )
    completion_url = models.URLField(_("completion redirect URL"), blank=True)
    screenout_url = models.URLField(_("screen-out redirect URL"), blank=True)
    completion_code = models.CharField(_("completion code"), max_length=64, blank=True)
    closes_at = models.DateTimeField(
        _("closing date"), null=True, blank=True,
        help_text=_("New participants are turned away from this moment (sessions already started may finish)."),
    )
    config_hash = models.CharField(_("frozen configuration hash"), max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    live_at = models.DateTimeField(_("went live"), null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("study")
        verbose_name_plural = _("studies")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        # The last line of defence under the forms and actions: a live
        # study's design never changes through a plain save().
        update_fields = kwargs.get("update_fields")
        if self.pk and (update_fields is None or set(update_fields) & set(self.FROZEN_FIELDS)):
            self.clean()
        super().save(*args, **kwargs)

    # Fields that define the design; fixed once the study is live. Texts,
    # redirect URLs, the completion code, quotas and the closing date may
    # change while live (each change is recorded).
    FROZEN_FIELDS = (
        "slug", "image_size", "seeds", "languages", "default_language", "trials_per_participant",
        "max_attention_failures",
    )

    @property
    def is_frozen(self) -> bool:
        """Stimuli and methods cannot change once a study is live or closed."""
        return self.status in (self.Status.LIVE, self.Status.CLOSED)

    def clean(self) -> None:
        super().clean()
        if not self.pk:
            return
        stored = Study.objects.filter(pk=self.pk).first()
        if stored is None or not stored.is_frozen:
            return
        changed = [f for f in self.FROZEN_FIELDS if getattr(stored, f) != getattr(self, f)]
        if changed:
            raise StudyFrozenError(stored, ", ".join(changed))

    @property
    def accepts_participants(self) -> bool:
        """Live and not past its closing date."""
        return self.status == self.Status.LIVE and (self.closes_at is None or timezone.now() < self.closes_at)

    def text(self, key: str, language: str) -> str:
        """A participant-facing text in ``language``, falling back to the default language."""
        for lang in (language, self.default_language, "en"):
            value = self.texts.get(lang, {}).get(key)
            if value:
                return value
        return ""


class _StudyImage(_FrozenWithStudy):
    frozen_fields = ("image", "sha256", "width", "height")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="+", verbose_name=_("study"))
    sha256 = models.CharField(_("SHA-256 of pixels"), max_length=64, editable=False)
    width = models.PositiveIntegerField(_("width"), editable=False, default=0)
    height = models.PositiveIntegerField(_("height"), editable=False, default=0)
    title = models.CharField(_("title"), max_length=200, blank=True)
    source = models.CharField(_("source"), max_length=500, blank=True)
    license = models.CharField(_("licence"), max_length=200, blank=True)
    original_filename = models.CharField(_("original file name"), max_length=255, blank=True, editable=False)
    uploaded_at = models.DateTimeField(_("uploaded"), default=timezone.now, editable=False)

    class Meta:
        abstract = True


class ContentImage(_StudyImage):
    """A photograph to be stylised."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="content_images", verbose_name=_("study"))
    image = models.ImageField(_("image"), upload_to=content_upload_to, width_field="width", height_field="height")
    thumbnail = models.ImageField(_("thumbnail"), upload_to=thumbnail_upload_to, blank=True)
    category = models.CharField(_("category"), max_length=100, blank=True, help_text=_("e.g. landscape, portrait, architecture"))

    class Meta:
        verbose_name = _("content image")
        verbose_name_plural = _("content images")
        ordering = ["study", "id"]
        constraints = [models.UniqueConstraint(fields=["study", "sha256"], name="unique_content_image_per_study")]

    def __str__(self) -> str:
        return self.title or self.original_filename or f"content {self.pk}"


class StyleImage(_StudyImage):
    """An artwork whose style is transferred, tagged with its culture."""

    frozen_fields = (*_StudyImage.frozen_fields, "culture_id")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="style_images", verbose_name=_("study"))
    image = models.ImageField(_("image"), upload_to=style_upload_to, width_field="width", height_field="height")
    thumbnail = models.ImageField(_("thumbnail"), upload_to=thumbnail_upload_to, blank=True)
    culture = models.ForeignKey(CultureTag, on_delete=models.PROTECT, related_name="style_images", verbose_name=_("culture"))
    artist = models.CharField(_("artist"), max_length=200, blank=True)
    year = models.CharField(_("year"), max_length=32, blank=True)

    class Meta:
        verbose_name = _("style image")
        verbose_name_plural = _("style images")
        ordering = ["study", "culture", "id"]
        constraints = [models.UniqueConstraint(fields=["study", "sha256"], name="unique_style_image_per_study")]

    def __str__(self) -> str:
        return self.title or self.original_filename or f"style {self.pk}"


class MethodConfig(_FrozenWithStudy):
    """A style-transfer method with validated parameters, as used in one study."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="method_configs", verbose_name=_("study"))
    label = models.CharField(_("label"), max_length=100, help_text=_("Short name shown in reports, e.g. 'WCT α=0.6'."))
    method = models.CharField(_("method"), max_length=32, help_text=_("stylecore method name, e.g. wct, adain, gatys."))
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    family = models.CharField(_("weights family"), max_length=32, blank=True, help_text=_("e.g. vgg19-wct, vgg19-cd16x"))
    # Set by "use as method": the generator's checkpoint is a stored copy of this run's, named in ``params``.
    training_run = models.ForeignKey(
        "studies.GanTrainingRun", on_delete=models.RESTRICT, null=True, blank=True, editable=False,
        related_name="method_configs", verbose_name=_("GAN training run"),
    )

    class Meta:
        verbose_name = _("method configuration")
        verbose_name_plural = _("method configurations")
        ordering = ["study", "id"]
        constraints = [models.UniqueConstraint(fields=["study", "label"], name="unique_method_label_per_study")]

    def __str__(self) -> str:
        return self.label

    @property
    def trained_culture(self) -> str | None:
        """The culture slug a trained generator maps photos to (``None`` for other methods)."""
        if self.training_run_id is None:
            return None
        return self.params.get("target_culture") or self.training_run.cultures[0]


class Candidate(Job):
    """One generated image: content × style × method configuration × seed."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="candidates", verbose_name=_("study"))
    content = models.ForeignKey(ContentImage, on_delete=models.RESTRICT, related_name="candidates", verbose_name=_("content image"))
    style = models.ForeignKey(StyleImage, on_delete=models.RESTRICT, related_name="candidates", verbose_name=_("style image"))
    method_config = models.ForeignKey(MethodConfig, on_delete=models.RESTRICT, related_name="candidates", verbose_name=_("method"))
    seed = models.PositiveIntegerField(_("seed"), default=0)
    score = models.JSONField(
        _("score after generation"), default=bool, blank=True,
        help_text=_("false, true (the default metrics) or a list of metric names; kept across re-queues."),
    )
    image = models.ImageField(_("image"), upload_to=candidate_upload_to, blank=True)
    provenance = models.JSONField(_("provenance"), default=dict, blank=True)
    seconds = models.FloatField(_("seconds"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("candidate")
        verbose_name_plural = _("candidates")
        ordering = ["study", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["content", "style", "method_config", "seed"], name="unique_candidate_inputs"
            )
        ]
        indexes = [models.Index(fields=["study", "status"])]

    def __str__(self) -> str:
        return f"{self.method_config} · {self.content} · {self.style} · seed {self.seed}"


class MetricValue(models.Model):
    """An automatic score of one candidate; ``value`` is null when unavailable."""

    candidate = models.ForeignKey(Candidate, on_delete=models.CASCADE, related_name="metric_values", verbose_name=_("candidate"))
    name = models.CharField(_("metric"), max_length=64)
    version = models.CharField(_("version"), max_length=64)
    value = models.FloatField(_("value"), null=True, blank=True)
    unavailable_reason = models.TextField(_("why unavailable"), blank=True)
    computed_at = models.DateTimeField(_("computed"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("metric value")
        verbose_name_plural = _("metric values")
        constraints = [
            models.UniqueConstraint(fields=["candidate", "name", "version"], name="unique_metric_value")
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class SetMetricValue(models.Model):
    """A distribution metric (FID, KID, ArtFID) of a set of candidates.

    Computed once over every done candidate of one method configuration whose
    style has one culture, against that culture's style images (and the
    study's content photos); ``value`` is null when unavailable.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="set_metric_values", verbose_name=_("study"))
    method_config = models.ForeignKey(MethodConfig, on_delete=models.CASCADE, related_name="set_metric_values",
                                      verbose_name=_("method"))
    culture = models.ForeignKey(CultureTag, on_delete=models.PROTECT, related_name="+", verbose_name=_("culture"))
    name = models.CharField(_("metric"), max_length=64)
    version = models.CharField(_("version"), max_length=64)
    value = models.FloatField(_("value"), null=True, blank=True)
    unavailable_reason = models.TextField(_("why unavailable"), blank=True)
    n_images = models.PositiveIntegerField(_("candidates in the set"), default=0)
    computed_at = models.DateTimeField(_("computed"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("set metric value")
        verbose_name_plural = _("set metric values")
        constraints = [
            models.UniqueConstraint(fields=["method_config", "culture", "name", "version"], name="unique_set_metric_value")
        ]

    def __str__(self) -> str:
        return f"{self.name}[{self.method_config} × {self.culture}]={self.value}"


class Question(_FrozenWithStudy):
    """What participants are asked about candidates.

    Its response format is part of the frozen design; its wording (texts,
    end labels) may be corrected while the study is live.
    """

    frozen_fields = ("kind", "dimension", "scale_points", "n_candidates", "pair_design", "min_exposure",
                     "show_style", "show_content", "order")
    frozen_what = _("its questions")
    editable_what = _("the question's text and end labels")
    frozen_labels = {"kind": _("response format")}
    #: The fields only some response formats use, by name or name prefix (the end labels' ``low__``/``high__``
    #: per language); the question form shows each only for its formats.
    kind_fields = {"scale_points": ("likert",), "low__": ("likert",), "high__": ("likert",),
                   "n_candidates": ("ranking",), "pair_design": ("2afc",), "min_exposure": ("2afc",)}

    class Kind(models.TextChoices):
        LIKERT = "likert", _("Likert rating")
        TWO_AFC = "2afc", _("Two-alternative forced choice")
        RANKING = "ranking", _("Ranking")

    class Dimension(models.TextChoices):
        STYLE_FIDELITY = "style_fidelity", _("Style fidelity")
        CONTENT_PRESERVATION = "content_preservation", _("Content preservation")
        AESTHETIC_APPEAL = "aesthetic_appeal", _("Aesthetic appeal")
        CULTURAL_AUTHENTICITY = "cultural_authenticity", _("Cultural authenticity")
        OVERALL = "overall", _("Overall quality")

    class PairDesign(models.TextChoices):
        BALANCED = "balanced", _("Balanced (every pair equally often)")
        ADAPTIVE = "adaptive", _("Adaptive (most informative pair next)")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="questions", verbose_name=_("study"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    dimension = models.CharField(_("dimension"), max_length=32, choices=Dimension.choices)
    texts = models.JSONField(_("text per language"), default=dict, help_text=_('{"en": "How well does …", "zh-hans": …, "ja": …}'))
    scale_points = models.PositiveSmallIntegerField(_("scale points"), null=True, blank=True, default=7,
                                                    help_text=_("Likert only."))
    scale_labels = models.JSONField(
        _("end labels per language"), default=dict, blank=True, help_text=_('{"en": ["Not at all", "Completely"]}')
    )
    n_candidates = models.PositiveSmallIntegerField(_("candidates per ranking trial"), default=4, help_text=_("Ranking only."))
    pair_design = models.CharField(
        _("pair design"), max_length=16, choices=PairDesign.choices, default=PairDesign.BALANCED,
        help_text=_("2AFC only. Adaptive chooses each participant's next pair from the answers of their group so far."),
    )
    min_exposure = models.PositiveSmallIntegerField(
        _("minimum showings per candidate"), default=2,
        help_text=_("Adaptive 2AFC only: every candidate is shown this often in each group before pairs are chosen by information."),
    )
    show_style = models.BooleanField(_("show style image"), default=True)
    show_content = models.BooleanField(_("show content image"), default=False)
    order = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["study", "order", "id"]

    def __str__(self) -> str:
        text = self.texts.get("en") or next(iter(self.texts.values()), "") if isinstance(self.texts, dict) else ""
        short = text if len(text) <= 60 else text[:59] + "…"
        return f"Q{self.position} · {self.get_kind_display()}: {short or self.get_dimension_display()}"

    @property
    def position(self) -> int:
        """1-based position among the study's questions (as participants meet them)."""
        if not self.study_id or not self.pk:
            return self.order or 0
        earlier = Question.objects.filter(study_id=self.study_id).filter(
            models.Q(order__lt=self.order) | models.Q(order=self.order, pk__lt=self.pk)
        )
        return earlier.count() + 1

    def text(self, language: str) -> str:
        return self.texts.get(language) or self.texts.get(self.study.default_language) or self.texts.get("en", "")

    @property
    def is_adaptive(self) -> bool:
        """Whether pairs are chosen adaptively, one trial at a time (2AFC only)."""
        return self.kind == self.Kind.TWO_AFC and self.pair_design == self.PairDesign.ADAPTIVE

    def clean(self) -> None:
        if self.kind != self.Kind.LIKERT and self._frozen_study() is None:
            # A Likert scale's size and end labels mean nothing for other formats: none is stored.
            self.scale_points, self.scale_labels = None, {}
        super().clean()
        if self.kind == self.Kind.LIKERT and self.scale_points is None:
            raise ValidationError({"scale_points": _("A Likert question needs its number of scale points.")},
                                  code="required")
        if self.pair_design == self.PairDesign.ADAPTIVE and self.kind != self.Kind.TWO_AFC:
            raise ValidationError(
                {"pair_design": _("Only two-alternative (2AFC) questions can choose pairs adaptively.")},
                code="adaptive_not_2afc",
            )
