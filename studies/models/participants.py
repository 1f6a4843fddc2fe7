"""Participants, their groups and background answers, trials and responses."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..privacy import new_participant_token
from .study import Candidate, CultureTag, Question, Study, _FrozenWithStudy


class ParticipantGroup(_FrozenWithStudy):
    """A participants' cultural group with its eligibility rule and quota.

    Its eligibility and culture are part of the frozen design; its name and
    quota may change while the study is live.
    """

    frozen_fields = ("slug", "culture_id", "eligibility")
    frozen_what = _("its groups' eligibility and cultures")
    editable_what = _("the group's name and quota")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="participant_groups", verbose_name=_("study"))
    slug = models.SlugField(_("slug"), max_length=64)
    name = models.CharField(_("name"), max_length=100)
    culture = models.ForeignKey(
        CultureTag,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="participant_groups",
        verbose_name=_("own culture"),
        help_text=_("The style culture that counts as this group's own (for in-group contrasts)."),
    )
    eligibility = models.JSONField(
        _("eligibility"),
        default=dict,
        blank=True,
        help_text=_('Background answers that place a participant here, e.g. {"cultural_background": ["chinese"]}.'),
    )
    quota = models.PositiveIntegerField(_("quota"), default=30)

    class Meta:
        verbose_name = _("participant group")
        verbose_name_plural = _("participant groups")
        ordering = ["study", "slug"]
        constraints = [models.UniqueConstraint(fields=["study", "slug"], name="unique_group_slug_per_study")]

    def __str__(self) -> str:
        return self.name

    def accepts(self, answers: dict) -> bool:
        """Whether background ``answers`` satisfy this group's eligibility rule.

        Each key of ``eligibility`` must be answered: a list of allowed values
        (a multiple-choice answer needs one of them), or ``{"min": …, "max": …}``
        for a number. An empty rule accepts everyone.
        """
        for key, rule in (self.eligibility or {}).items():
            answer = answers.get(key)
            if answer in (None, "", []):
                return False
            if isinstance(rule, dict):
                try:
                    number = float(answer)
                except (TypeError, ValueError):
                    return False
                if "min" in rule and number < float(rule["min"]):
                    return False
                if "max" in rule and number > float(rule["max"]):
                    return False
                continue
            allowed = {str(v) for v in (rule if isinstance(rule, list) else [rule])}
            given = {str(v) for v in (answer if isinstance(answer, list) else [answer])}
            if not allowed & given:
                return False
        return True


class BackgroundQuestion(_FrozenWithStudy):
    """A researcher-configurable item of the background questionnaire.

    Its key, kind, answer values and whether it is required are part of the
    frozen design; its wording and choice labels may be corrected while live.
    """

    frozen_fields = ("key", "kind", "choices", "required", "order")
    frozen_what = _("its background questions")
    editable_what = _("the question's wording and the answers' labels")
    frozen_labels = {"choices": _("answer values")}

    class Kind(models.TextChoices):
        CHOICE = "choice", _("Single choice")
        MULTI = "multi", _("Multiple choice")
        TEXT = "text", _("Free text")
        NUMBER = "number", _("Number")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="background_questions", verbose_name=_("study"))
    key = models.SlugField(_("key"), max_length=64, help_text=_("Column name in exports, e.g. cultural_background."))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.CHOICE)
    texts = models.JSONField(_("text per language"), default=dict)
    choices = models.JSONField(
        _("choices"), default=list, blank=True, help_text=_('[{"value": "chinese", "labels": {"en": "Chinese", "ja": "中国"}}]')
    )
    required = models.BooleanField(_("required"), default=True)
    order = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("background question")
        verbose_name_plural = _("background questions")
        ordering = ["study", "order", "id"]
        constraints = [models.UniqueConstraint(fields=["study", "key"], name="unique_background_key_per_study")]

    def __str__(self) -> str:
        return self.key

    def design_value(self, field: str):
        if field == "choices":  # answer values only: labels are wording
            return [str(c.get("value")) for c in self.choices or [] if isinstance(c, dict)]
        return super().design_value(field)

    def values(self) -> list[str]:
        """The answer values a participant can give (choice questions)."""
        return [str(c["value"]) for c in self.choices or [] if isinstance(c, dict) and "value" in c]

    def text(self, language: str) -> str:
        """The question in ``language``, falling back to English or the key."""
        return self.texts.get(language) or self.texts.get("en") or self.key

    def choice_labels(self, language: str) -> list[tuple[str, str]]:
        """``(value, label)`` pairs in ``language``."""
        return [
            (str(c["value"]), c.get("labels", {}).get(language) or c.get("labels", {}).get("en") or str(c["value"]))
            for c in self.choices
        ]


class ParticipantQuerySet(models.QuerySet):
    def counted(self) -> ParticipantQuerySet:
        """Sessions that count as study data: not researchers' previews."""
        return self.filter(is_preview=False)


class Participant(models.Model):
    """One participant's session in one study (pseudonymous)."""

    class Status(models.TextChoices):
        CONSENTED = "consented", _("Consented")
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETED = "completed", _("Completed")
        SCREENED_OUT = "screened_out", _("Screened out")
        EXPIRED = "expired", _("Expired")
        EXCLUDED = "excluded", _("Excluded")

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="participants", verbose_name=_("study"))
    # RESTRICT, not PROTECT: a group with participants cannot be deleted alone, but deleting
    # the study (which removes both) works.
    group = models.ForeignKey(
        ParticipantGroup, on_delete=models.RESTRICT, null=True, blank=True, related_name="participants", verbose_name=_("group")
    )
    token = models.CharField(_("token"), max_length=64, unique=True, default=new_participant_token, editable=False)
    external_id_hash = models.CharField(
        _("recruiter id (keyed hash)"), max_length=64, blank=True, db_index=True, editable=False
    )
    recruiter = models.CharField(_("recruiter"), max_length=32, blank=True)
    recruiter_study_id = models.CharField(_("recruiter study id"), max_length=100, blank=True)
    recruiter_session_id = models.CharField(_("recruiter session id"), max_length=100, blank=True)
    language = models.CharField(_("language"), max_length=10, default="en")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.CONSENTED, db_index=True)
    background = models.JSONField(_("background answers"), default=dict, blank=True)
    attention_failures = models.PositiveSmallIntegerField(_("attention failures"), default=0)
    completion_code = models.CharField(_("completion code"), max_length=64, blank=True)
    slot = models.PositiveIntegerField(
        _("design slot"),
        null=True,
        blank=True,
        help_text=_("Position in the group's balanced design; freed when the session expires or is excluded."),
    )
    screenout_reason = models.CharField(_("screen-out reason"), max_length=16, blank=True)
    is_preview = models.BooleanField(
        _("preview"), default=False, editable=False,
        help_text=_("Started by one of the study's researchers to try it out: in no export, analysis or quota."),
    )
    instructions_read_at = models.DateTimeField(_("instructions read"), null=True, blank=True)
    consented_at = models.DateTimeField(_("consented"), null=True, blank=True)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen"), default=timezone.now)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)

    objects = ParticipantQuerySet.as_manager()

    class Meta:
        verbose_name = _("participant")
        verbose_name_plural = _("participants")
        ordering = ["study", "started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "external_id_hash"],
                condition=~models.Q(external_id_hash=""),
                name="unique_recruiter_id_per_study",
            ),
            # At most one session holds a design slot, so two concurrent
            # arrivals can never be given the same trial list.
            models.UniqueConstraint(
                fields=["group", "slot"],
                condition=models.Q(status__in=["consented", "in_progress", "completed"]),
                name="unique_held_slot_per_group",
            ),
        ]

    def __str__(self) -> str:
        return f"participant {self.pk}"

    #: Statuses whose session occupies a place in its group (quota and design slot).
    HOLDING = ("consented", "in_progress", "completed")

    @property
    def is_finished(self) -> bool:
        """True once every trial is answered (completed, or excluded but done)."""
        return self.completed_at is not None

    @property
    def is_active(self) -> bool:
        """True while the participant may still answer trials."""
        return self.completed_at is None and self.status in (
            self.Status.CONSENTED,
            self.Status.IN_PROGRESS,
            self.Status.EXCLUDED,
        )


class Trial(models.Model):
    """One screen shown to a participant: a question about one or more candidates."""

    class AttentionKind(models.TextChoices):
        NONE = "", _("Not an attention check")
        SCRAMBLED = "scrambled", _("Intact vs scrambled image")
        INSTRUCTED = "instructed", _("Instructed response")

    class PairSelection(models.TextChoices):
        NONE = "", _("Not chosen adaptively")
        EXPOSURE = "exposure", _("To reach the minimum showings")
        INFORMATION = "information", _("As the most informative pair")

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="trials", verbose_name=_("participant"))
    question = models.ForeignKey(Question, on_delete=models.RESTRICT, related_name="trials", verbose_name=_("question"))
    position = models.PositiveIntegerField(_("position"))
    is_practice = models.BooleanField(_("practice"), default=False)
    attention_kind = models.CharField(_("attention check"), max_length=16, choices=AttentionKind.choices, blank=True, default="")
    expected = models.JSONField(_("expected answer"), null=True, blank=True, help_text=_("Attention checks only."))
    shown_at = models.DateTimeField(_("first shown"), null=True, blank=True)
    pair_selection = models.CharField(
        _("pair chosen"), max_length=16, choices=PairSelection.choices, blank=True, default="",
        help_text=_("Adaptive 2AFC: why this pair was chosen when the participant reached the trial."),
    )

    class Meta:
        verbose_name = _("trial")
        verbose_name_plural = _("trials")
        ordering = ["participant", "position"]
        constraints = [models.UniqueConstraint(fields=["participant", "position"], name="unique_trial_position")]

    def __str__(self) -> str:
        return f"trial {self.position} of {self.participant_id}"


class TrialItem(models.Model):
    """A stimulus in a trial, in display order (candidate, or an attention-check image)."""

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="items", verbose_name=_("trial"))
    slot = models.PositiveSmallIntegerField(_("slot"))
    candidate = models.ForeignKey(
        Candidate, on_delete=models.RESTRICT, null=True, blank=True, related_name="trial_items", verbose_name=_("candidate")
    )
    attention_image = models.CharField(_("attention-check image"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("trial item")
        verbose_name_plural = _("trial items")
        ordering = ["trial", "slot"]
        constraints = [models.UniqueConstraint(fields=["trial", "slot"], name="unique_trial_slot")]

    def __str__(self) -> str:
        return f"slot {self.slot} of trial {self.trial_id}"


class Response(models.Model):
    """A participant's answer to one trial (at most one per trial)."""

    trial = models.OneToOneField(Trial, on_delete=models.CASCADE, related_name="response", verbose_name=_("trial"))
    value = models.SmallIntegerField(_("rating"), null=True, blank=True, help_text=_("Likert only."))
    choice = models.ForeignKey(
        TrialItem, on_delete=models.RESTRICT, null=True, blank=True, related_name="+", verbose_name=_("chosen item"),
        help_text=_("2AFC only."),
    )
    ranking = models.JSONField(_("ranking"), null=True, blank=True, help_text=_("Ranking only: slots from best to worst."))
    client_rt_ms = models.PositiveIntegerField(_("response time, client (ms)"), null=True, blank=True)
    server_rt_ms = models.PositiveIntegerField(_("response time, server (ms)"), null=True, blank=True)
    passed_attention = models.BooleanField(_("passed attention check"), null=True, blank=True)
    submitted_at = models.DateTimeField(_("submitted"), default=timezone.now)

    class Meta:
        verbose_name = _("response")
        verbose_name_plural = _("responses")
        ordering = ["submitted_at"]

    def __str__(self) -> str:
        return f"response to {self.trial}"
