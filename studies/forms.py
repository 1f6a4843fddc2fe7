"""Participant forms: background questionnaire and trial answers."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .actions.participants import Answer
from .models import BackgroundQuestion, Question, Trial

#: Longest response time accepted from the client (2 hours); longer values are dropped.
MAX_CLIENT_RT_MS = 2 * 3600 * 1000


class BackgroundForm(forms.Form):
    """The study's background questionnaire, in the participant's language."""

    def __init__(self, *args, questions: list[BackgroundQuestion], language: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.questions = questions
        for q in questions:
            label = q.text(language)
            if q.kind == BackgroundQuestion.Kind.CHOICE:
                field = forms.ChoiceField(label=label, choices=q.choice_labels(language), widget=forms.RadioSelect)
            elif q.kind == BackgroundQuestion.Kind.MULTI:
                field = forms.MultipleChoiceField(
                    label=label, choices=q.choice_labels(language), widget=forms.CheckboxSelectMultiple
                )
            elif q.kind == BackgroundQuestion.Kind.NUMBER:
                field = forms.IntegerField(label=label, min_value=0, max_value=150)
            else:
                field = forms.CharField(label=label, max_length=200)
            field.required = q.required
            self.fields[q.key] = field

    def answers(self) -> dict:
        """Cleaned answers keyed by question key (JSON-serialisable)."""
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}


class AnswerForm(forms.Form):
    """An answer to one trial; the fields used depend on the trial kind."""

    error_messages = {
        "missing": _("Please answer before continuing."),
        "bad_ranking": _("Please put every image in an order."),
    }

    value = forms.IntegerField(required=False, min_value=1)
    choice = forms.IntegerField(required=False, min_value=0)
    ranking = forms.CharField(required=False, max_length=200)
    client_rt_ms = forms.IntegerField(required=False, min_value=0)

    def __init__(self, *args, trial: Trial, kind: str, points: int, n_items: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.trial, self.kind, self.points, self.n_items = trial, kind, points, n_items

    def clean_client_rt_ms(self) -> int | None:
        value = self.cleaned_data.get("client_rt_ms")
        # Implausible client clocks are dropped rather than rejected: the server time remains.
        return value if value is not None and value <= MAX_CLIENT_RT_MS else None

    def clean(self):
        data = super().clean()
        if self.kind == Question.Kind.LIKERT:
            value = data.get("value")
            if value is None or not 1 <= value <= self.points:
                raise ValidationError(self.error_messages["missing"], code="missing")
        elif self.kind == Question.Kind.TWO_AFC:
            choice = data.get("choice")
            if choice is None or not 0 <= choice < self.n_items:
                raise ValidationError(self.error_messages["missing"], code="missing")
        else:
            try:
                order = [int(x) for x in (data.get("ranking") or "").split(",") if x.strip()]
            except ValueError:
                order = []
            if sorted(order) != list(range(self.n_items)):
                raise ValidationError(self.error_messages["bad_ranking"], code="bad_ranking")
            data["ranking_list"] = order
        return data

    def answer(self) -> Answer:
        """The validated answer, for :func:`~studies.actions.participants.do_record_response`."""
        data = self.cleaned_data
        rt = data.get("client_rt_ms")
        if self.kind == Question.Kind.LIKERT:
            return Answer(value=data["value"], client_rt_ms=rt)
        if self.kind == Question.Kind.TWO_AFC:
            return Answer(choice=data["choice"], client_rt_ms=rt)
        return Answer(ranking=data["ranking_list"], client_rt_ms=rt)
