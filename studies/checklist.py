"""The go-live checklist: what blocks a study from going live, what needs a confirmation, and the design summary.

Every rule is one small function over the study that yields findings; an
error blocks :func:`studies.actions.golive.do_go_live`, a warning needs the
researcher's confirmation. The admin's checklist page shows the same list.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .analysis.minimums import DesignMinimums
from .assignment import _attention_count, plan_questions, question_units
from .models import (
    BackgroundQuestion,
    Candidate,
    MetricValue,
    ParticipantGroup,
    Question,
    Study,
)

#: Participant-facing texts every offered language needs.
REQUIRED_TEXTS = ("consent", "instructions", "thanks")
#: Groups with fewer places than this get a warning (intervals would be very wide).
SMALL_QUOTA = 10
#: Assumed seconds per screen for the session-length estimate (pilot figures).
SECONDS_PER_SCREEN = {"likert": 8, "2afc": 6, "ranking": 20, "attention": 6}
#: Consent, background questionnaire, instructions and the end page together.
SECONDS_AROUND_TRIALS = 120

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Finding:
    """One checklist line: ``level`` is ``"error"`` (blocks) or ``"warning"`` (needs a confirmation)."""

    level: str
    code: str
    message: str


@dataclass
class QuestionSummary:
    """How one question is spread over participants and candidates."""

    label: str
    kind: str
    trials: int
    units: int
    candidates: int
    ratings_per_candidate: dict[str, float]
    min_exposure: int = 0  # adaptive 2AFC: showings per candidate and group before pairs follow information
    note: str = ""
    per_trial: int = 1  # candidates one trial shows (and rates): 1 Likert, 2 a pair, n a ranking
    #: The question's screens per participant are limited by its contents (a participant rates each content
    #: photo at most once per question), not by trials per participant: more trials would not add any.
    at_most: bool = False

    def quota_for(self, ratings_per_candidate: float) -> int:
        """The least quota at which each candidate gets this many ratings (balanced plan)."""
        per_participant = self.trials * self.per_trial
        if not per_participant:
            return 0
        return math.ceil(ratings_per_candidate * self.candidates / per_participant - 1e-9)


@dataclass
class DesignSummary:
    """Screens per participant and what each is, ratings per candidate, session length."""

    practice: int = 0
    rated: int = 0
    attention: int = 0
    questions: list[QuestionSummary] = field(default_factory=list)
    seconds: int = 0

    @property
    def screens(self) -> int:
        return self.practice + self.rated + self.attention


@dataclass
class Checklist:
    """The findings and design summary of one study."""

    study: Study
    findings: list[Finding]
    summary: DesignSummary

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == WARNING]

    @property
    def can_go_live(self) -> bool:
        """Nothing blocks, and the study has not gone live already (then the findings are for information)."""
        return not self.errors and not self.study.is_frozen


def language_name(code: str) -> str:
    return str(dict(settings.LANGUAGES).get(code, code))


def missing_text_messages() -> dict[str, str]:
    """The finding for each required text, whole, so each language can word it its own way."""
    return {
        "consent": _("the consent text is missing in %(language)s"),
        "instructions": _("the instructions text is missing in %(language)s"),
        "thanks": _("the thanks text is missing in %(language)s"),
    }


def _languages(study: Study) -> list[str]:
    return list(study.languages or [study.default_language or "en"])


def already_open(study: Study) -> str:
    """Why a live or closed study cannot go live (again); empty for a study that can.

    Not a checklist finding: the checklist of a live study describes the study
    as it runs, and its being live blocks nothing.
    """
    if study.is_frozen:
        return _("the study is %(status)s") % {"status": study.get_status_display().lower()}
    return ""


def _status(study: Study, counts: dict[str, int]) -> Iterator[Finding]:
    if not counts.get(Candidate.Status.DONE):
        yield Finding(ERROR, "no_candidates", _("no candidates have been generated"))
    pending = counts.get(Candidate.Status.QUEUED, 0) + counts.get(Candidate.Status.RUNNING, 0)
    if pending:
        yield Finding(ERROR, "generation_pending", _("%(n)s candidate(s) are still queued or running")
                          % {"n": f"{pending:,}"})


def _questions_exist(study: Study, questions: list[Question]) -> Iterator[Finding]:
    if not questions:
        yield Finding(ERROR, "no_questions", _("the study has no questions"))


def _texts(study: Study, questions: list[Question], background: list[BackgroundQuestion]) -> Iterator[Finding]:
    for lang in _languages(study):
        name = language_name(lang)
        texts = (study.texts or {}).get(lang) or {}
        for key in REQUIRED_TEXTS:
            if not str(texts.get(key) or "").strip():
                yield Finding(ERROR, "missing_text", missing_text_messages()[key] % {"language": name})
        for q in questions:
            if not str((q.texts or {}).get(lang) or "").strip():
                yield Finding(ERROR, "missing_text", _("question %(position)s has no text in %(language)s")
                              % {"position": q.position, "language": name})
            labels = q.scale_labels or {}
            if q.kind == Question.Kind.LIKERT and labels and len(labels.get(lang) or []) != 2:
                yield Finding(ERROR, "missing_text", _("question %(position)s has no end labels in %(language)s")
                              % {"position": q.position, "language": name})
        for bq in background:
            if not str((bq.texts or {}).get(lang) or "").strip():
                yield Finding(ERROR, "missing_text", _("background question “%(key)s” has no text in %(language)s")
                              % {"key": bq.key, "language": name})
            missing = [str(c.get("value")) for c in bq.choices or []
                       if not str((c.get("labels") or {}).get(lang) or "").strip()]
            if missing:
                yield Finding(ERROR, "missing_text", _("background question “%(key)s” has no %(language)s label for %(values)s")
                              % {"key": bq.key, "language": name, "values": ", ".join(missing)})


def _eligibility(study: Study, groups: list[ParticipantGroup],
                 background: list[BackgroundQuestion]) -> Iterator[Finding]:
    if not groups:
        yield Finding(ERROR, "no_groups", _("the study has no participant groups (every participant would be "
                                            "screened out)"))
    by_key = {bq.key: bq for bq in background}
    for group in groups:
        rules = group.eligibility or {}
        if not isinstance(rules, dict):
            yield Finding(ERROR, "group_unreachable", _("group “%(group)s” has an eligibility rule that is not a set of answers")
                          % {"group": group.name})
            continue
        for key, rule in rules.items():
            bq = by_key.get(key)
            if bq is None:
                yield Finding(ERROR, "eligibility_missing_question",
                              _("group “%(group)s” requires an answer to “%(key)s”, but the study has no such "
                                "background question") % {"group": group.name, "key": key})
                continue
            if isinstance(rule, dict):
                if bq.kind != BackgroundQuestion.Kind.NUMBER:
                    yield Finding(ERROR, "group_unreachable", _("group “%(group)s” needs a number range for “%(key)s”, which is not a number question")
                                  % {"group": group.name, "key": key})
                elif "min" in rule and "max" in rule and float(rule["min"]) > float(rule["max"]):
                    yield Finding(ERROR, "group_unreachable", _("group “%(group)s” needs “%(key)s” between %(min)s and %(max)s: no answer can be")
                                  % {"group": group.name, "key": key, "min": rule["min"], "max": rule["max"]})
                continue
            allowed = [str(v) for v in (rule if isinstance(rule, list) else [rule])]
            if not allowed:
                yield Finding(ERROR, "group_unreachable", _("group “%(group)s” accepts no answer to “%(key)s”")
                              % {"group": group.name, "key": key})
                continue
            if bq.kind in (BackgroundQuestion.Kind.CHOICE, BackgroundQuestion.Kind.MULTI):
                unknown = [v for v in allowed if v not in bq.values()]
                if unknown:
                    yield Finding(ERROR, "eligibility_missing_value",
                                  _("group “%(group)s” accepts “%(key)s” = %(unknown)s, which is not an answer of that "
                                    "question (%(answers)s)")
                                  % {"group": group.name, "key": key, "unknown": ", ".join(unknown),
                                     "answers": ", ".join(bq.values()) or _("none")})
                    if len(unknown) == len(allowed):
                        yield Finding(ERROR, "group_unreachable",
                                      _("no answer can reach group “%(group)s”") % {"group": group.name})
            elif bq.kind == BackgroundQuestion.Kind.TEXT:
                yield Finding(WARNING, "eligibility_free_text",
                              _("group “%(group)s” needs an exact free-text answer to “%(key)s”")
                              % {"group": group.name, "key": key})


def _candidates(study: Study, questions: list[Question], candidates: list[Candidate]) -> Iterator[Finding]:
    done_by_method = dict(
        study.candidates.filter(status=Candidate.Status.DONE).exclude(image="")
        .values_list("method_config_id").annotate(n=Count("pk"))
    )
    for config in study.method_configs.all():
        if not done_by_method.get(config.pk):
            yield Finding(ERROR, "method_no_candidates", _("method “%(method)s” has no finished candidates")
                          % {"method": config.label})
    for q in questions:
        if candidates and not question_units(q, candidates):
            need = _("a finished candidate") if q.kind == Question.Kind.LIKERT else (
                _("candidates of at least two methods for one content × style"))
            yield Finding(ERROR, "question_no_candidates",
                          _("question %(position)s (%(kind)s) needs %(need)s; none are available")
                          % {"position": q.position, "kind": q.get_kind_display(), "need": need})


def _warnings(study: Study, counts: dict[str, int], groups: list[ParticipantGroup],
              summary: DesignSummary) -> Iterator[Finding]:
    done = study.candidates.filter(status=Candidate.Status.DONE)
    unscored = done.exclude(pk__in=MetricValue.objects.filter(candidate__study=study).values("candidate_id")).count()
    if unscored:
        yield Finding(WARNING, "scoring_unfinished",
                      ngettext("scoring is unfinished: %(missing)s of %(total)s finished candidates has no metric "
                               "values yet",
                               "scoring is unfinished: %(missing)s of %(total)s finished candidates have no metric "
                               "values yet", unscored)
                      % {"missing": f"{unscored:,}", "total": f"{done.count():,}"})
    if counts.get(Candidate.Status.FAILED):
        yield Finding(WARNING, "failed_candidates",
                      _("%(n)s candidate(s) failed and will not be shown")
                      % {"n": f"{counts[Candidate.Status.FAILED]:,}"})
    least = DesignMinimums()
    for group in groups:
        # Below the report's minimum the warning below says more: one warning per group.
        if least.min_participants <= group.quota < SMALL_QUOTA:
            yield Finding(WARNING, "small_quota", _("group “%(group)s” has a quota of %(quota)s (fewer than %(small)s participants)")
                          % {"group": group.name, "quota": group.quota, "small": SMALL_QUOTA})
    if summary.rated and summary.rated < study.trials_per_participant:
        yield Finding(WARNING, "fewer_trials",
                      ngettext("trials per participant is %(trials)s but each participant gets %(rated)s rated screen: "
                               "a question shows each content photo at most once and has only so many candidates; "
                               "upload more content photos for more rated screens, or lower trials per participant",
                               "trials per participant is %(trials)s but each participant gets %(rated)s rated "
                               "screens: a question shows each content photo at most once and has only so many "
                               "candidates; upload more content photos for more rated screens, or lower trials per "
                               "participant", summary.rated)
                      % {"trials": study.trials_per_participant, "rated": summary.rated})
    for q in summary.questions:
        # At exactly the minimum every comparison goes to showing each candidate that often.
        short = sorted(g for g, n in q.ratings_per_candidate.items() if n <= q.min_exposure)
        if short:
            yield Finding(WARNING, "adaptive_never_starts",
                          _("%(question)s: at full quota each candidate is shown no more than the %(min)s times per "
                            "group adaptive pairs spend on showing every candidate before choosing by information "
                            "(%(groups)s); raise the quotas or lower the minimum showings, or no pair is chosen by "
                            "information")
                          % {"question": q.label, "min": q.min_exposure, "groups": ", ".join(short)})
    for group in groups:
        if group.quota < least.min_participants:
            yield Finding(WARNING, "too_few_participants",
                          _("group “%(group)s” has a quota of %(quota)s, fewer than the %(minimum)s participants the "
                            "report needs for inference, so its results can only be described; raise the quota")
                          % {"group": group.name, "quota": group.quota, "minimum": least.min_participants})
    minimum = least.min_ratings_per_candidate
    for q in summary.questions:
        # The report's own test (studies.analysis.guards.design_counts), at full quota.
        short = [(g, n) for g, n in q.ratings_per_candidate.items() if n < minimum]
        if not short or not q.candidates:
            continue
        if not q.trials:
            yield Finding(WARNING, "too_few_ratings",
                          _("%(question)s: no screens at all, as trials per participant (%(trials)s) is fewer than the "
                            "questions, so it is never answered; raise trials per participant")
                          % {"question": q.label, "trials": study.trials_per_participant})
            continue
        values = {"question": q.label, "minimum": f"{minimum:g}", "quota": q.quota_for(minimum),
                  "ratings": ", ".join(f"{n:.1f} ({g})" for g, n in short)}
        if q.at_most:
            message = _("%(question)s: at full quota each candidate gets only %(ratings)s ratings, fewer than the "
                        "%(minimum)s the report needs for inference, so its results can only be described: raise the "
                        "quotas to at least %(quota)s participants per group, or show fewer candidates (fewer styles, "
                        "methods or seeds); more trials per participant would not help, as a participant rates each "
                        "content photo at most once per question") % values
        else:
            message = _("%(question)s: at full quota each candidate gets only %(ratings)s ratings, fewer than the "
                        "%(minimum)s the report needs for inference, so its results can only be described: raise the "
                        "quotas to at least %(quota)s participants per group, raise trials per participant (this "
                        "question gets %(trials)s of each participant's rated screens), or show fewer candidates "
                        "(fewer styles, methods or seeds)") % {**values, "trials": q.trials}
        yield Finding(WARNING, "too_few_ratings", message)
    if not study.completion_url and not study.completion_code:
        yield Finding(WARNING, "no_completion", _("there is no completion code or URL: a recruiter cannot confirm "
                                                  "who finished"))


def design_summary(study: Study, groups: list[ParticipantGroup]) -> DesignSummary:
    """What one participant sees and how often each candidate is rated at full quotas."""
    probe = groups[0] if groups else ParticipantGroup(study=study, slug="probe", pk=0)
    plans = plan_questions(study, probe)
    summary = DesignSummary()
    if not plans:
        return summary
    summary.practice = 1
    summary.rated = sum(p.per_participant for p in plans)
    summary.attention = _attention_count()
    seconds = SECONDS_AROUND_TRIALS + SECONDS_PER_SCREEN.get(plans[0].question.kind, 8)
    seconds += summary.attention * SECONDS_PER_SCREEN["attention"]
    for plan in plans:
        q = plan.question
        seconds += plan.per_participant * SECONDS_PER_SCREEN.get(q.kind, 8)
        shown = {cid for u in plan.sequence for cid in u.candidate_ids}
        size = len(plan.sequence[0].candidate_ids) if plan.sequence else 1
        ratings = {
            g.name: (g.quota * plan.per_participant * size / len(shown)) if shown else 0.0 for g in groups
        }
        summary.questions.append(QuestionSummary(
            label=str(q), kind=q.get_kind_display(), trials=plan.per_participant, units=len(plan.sequence),
            candidates=len(shown), ratings_per_candidate=ratings,
            min_exposure=q.min_exposure if q.is_adaptive else 0,
            note=(_("adaptive pairs: each candidate is shown %(min)s times in each group first, then each "
                    "participant's next pair is the most informative one given the group's answers so far (the "
                    "counts here are those of the balanced plan)") % {"min": q.min_exposure})
            if q.is_adaptive else "",
            per_trial=size,
            at_most=plan.per_participant >= min(len(plan.sequence), len({u.content_id for u in plan.sequence})),
        ))
    summary.seconds = seconds
    return summary


def check_go_live(study: Study) -> Checklist:
    """Every checklist finding of ``study`` and its design summary (reads only)."""
    counts = dict(study.candidates.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    questions = list(study.questions.order_by("order", "id"))
    background = list(study.background_questions.order_by("order", "id"))
    groups = list(study.participant_groups.select_related("culture").order_by("slug"))
    candidates = list(
        Candidate.objects.filter(study=study, status=Candidate.Status.DONE).exclude(image="").order_by("id")
    )
    summary = design_summary(study, groups)
    findings = [
        *_status(study, counts),
        *_questions_exist(study, questions),
        *_texts(study, questions, background),
        *_eligibility(study, groups, background),
        *_candidates(study, questions, candidates),
        *_warnings(study, counts, groups, summary),
    ]
    return Checklist(study=study, findings=findings, summary=summary)
