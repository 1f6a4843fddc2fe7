"""Studies and their stimuli: images, methods, candidates, metric values, questions."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


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
    """An edit that would change the stimuli or methods of a live or closed study."""

    def __init__(self, study: Study, what: str = "its stimuli and methods") -> None:
        super().__init__(
            _("Study “%(study)s” is %(status)s: %(what)s are frozen (configuration hash %(hash)s).")
            % {"study": study.title, "status": study.get_status_display().lower(), "what": what,
               "hash": (study.config_hash or "")[:12]},
            code="frozen",
        )
        self.study = study


class _FrozenWithStudy(models.Model):
    """Validation refuses changes to a row whose study is live or closed.

    Checked in ``clean()`` (admin forms, ``do_*`` actions) rather than in
    ``save()``, so fixtures and data migrations can still build live studies.
    """

    frozen_what = "its stimuli and methods"

    class Meta:
        abstract = True

    def _check_not_frozen(self) -> None:
        study = Study.objects.filter(pk=self.study_id).only("status", "title", "config_hash").first()
        if study is not None and study.is_frozen:
            raise StudyFrozenError(study, self.frozen_what)

    def clean(self) -> None:
        super().clean()
        if self.study_id:
            self._check_not_frozen()



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

    def name_in(self, language: str) -> str:
        return self.names.get(language) or self.name


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

    # Fields that change what participants see; fixed once the study is live.
    FROZEN_FIELDS = ("image_size", "seeds")

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

    def text(self, key: str, language: str) -> str:
        """A participant-facing text in ``language``, falling back to the default language."""
        for lang in (language, self.default_language, "en"):
            value = self.texts.get(lang, {}).get(key)
            if value:
                return value
        return ""


class _StudyImage(_FrozenWithStudy):
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

    class Meta:
        verbose_name = _("method configuration")
        verbose_name_plural = _("method configurations")
        ordering = ["study", "id"]
        constraints = [models.UniqueConstraint(fields=["study", "label"], name="unique_method_label_per_study")]

    def __str__(self) -> str:
        return self.label


class Candidate(models.Model):
    """One generated image: content × style × method configuration × seed."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="candidates", verbose_name=_("study"))
    content = models.ForeignKey(ContentImage, on_delete=models.RESTRICT, related_name="candidates", verbose_name=_("content image"))
    style = models.ForeignKey(StyleImage, on_delete=models.RESTRICT, related_name="candidates", verbose_name=_("style image"))
    method_config = models.ForeignKey(MethodConfig, on_delete=models.RESTRICT, related_name="candidates", verbose_name=_("method"))
    seed = models.PositiveIntegerField(_("seed"), default=0)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    image = models.ImageField(_("image"), upload_to=candidate_upload_to, blank=True)
    error = models.TextField(_("error"), blank=True)
    provenance = models.JSONField(_("provenance"), default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    claim = models.CharField(
        _("claim token"), max_length=32, blank=True, editable=False,
        help_text=_("Set by the worker that is generating this candidate; results from any other claim are discarded."),
    )
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True, editable=False)
    queued_at = models.DateTimeField(_("queued"), null=True, blank=True, editable=False)
    worker = models.CharField(_("worker host"), max_length=200, blank=True)
    seconds = models.FloatField(_("seconds"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

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

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED, self.Status.CANCELLED)


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


class Question(models.Model):
    """What participants are asked about candidates."""

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
    scale_points = models.PositiveSmallIntegerField(_("scale points"), default=7, help_text=_("Likert only."))
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
        return f"{self.get_kind_display()}: {self.get_dimension_display()}"

    def text(self, language: str) -> str:
        return self.texts.get(language) or self.texts.get(self.study.default_language) or self.texts.get("en", "")

    @property
    def is_adaptive(self) -> bool:
        """Whether pairs are chosen adaptively, one trial at a time (2AFC only)."""
        return self.kind == self.Kind.TWO_AFC and self.pair_design == self.PairDesign.ADAPTIVE

    def clean(self) -> None:
        super().clean()
        if self.pair_design == self.PairDesign.ADAPTIVE and self.kind != self.Kind.TWO_AFC:
            raise ValidationError(
                {"pair_design": _("Only two-alternative (2AFC) questions can choose pairs adaptively.")},
                code="adaptive_not_2afc",
            )
