"""The participant's path through a study: consent, background, trials, completion.

Views validate input and call one function here; each function makes its
change atomically. Nothing here logs personal data.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..access import pseudonymise
from ..adaptive_pairs import do_assign_pair, is_adaptive_trial
from ..assignment import (
    build_trials,
    choose_group,
    expire_stale_sessions,
    free_slot,
    plan_questions,
)
from ..models import (
    BackgroundQuestion,
    Candidate,
    Participant,
    ParticipantGroup,
    Response,
    Study,
    Trial,
)
from ..participant_sql import (
    Upcoming,
    insert_response,
    participant_with_study,
    shown_items_of,
    upcoming_trials,
)

logger = logging.getLogger(__name__)


class StudyNotOpen(Exception):
    """The study does not accept participants (not live)."""


@dataclass(frozen=True)
class RecruiterInfo:
    """What a recruiter link carries; ``external_id`` is never stored in clear."""

    recruiter: str = ""
    external_id: str = ""
    study_id: str = ""
    session_id: str = ""

    @classmethod
    def from_params(cls, params) -> RecruiterInfo:
        """Read ``PROLIFIC_PID``/``participant_label``, ``STUDY_ID`` and ``SESSION_ID``."""
        pid = (params.get("PROLIFIC_PID") or "").strip()[:200]
        label = (params.get("participant_label") or "").strip()[:200]
        return cls(
            recruiter="prolific" if pid else ("label" if label else ""),
            external_id=pid or label,
            study_id=(params.get("STUDY_ID") or "").strip()[:100],
            session_id=(params.get("SESSION_ID") or "").strip()[:100],
        )


def check_study_open(study: Study, *, preview: bool = False) -> None:
    """Raise :class:`StudyNotOpen` unless ``study`` is live (or previewed by its staff before closing).

    A study without finished stimuli is never open: there would be nothing to show.
    """
    is_open = study.accepts_participants or (preview and study.status != Study.Status.CLOSED)
    if not is_open:
        raise StudyNotOpen(study.slug)
    # A yes is remembered on the instance: a consent asks in the view and again in the action
    # (the consent views read it with the study: ``participant_sql.study_for_entry``).
    if not getattr(study, "_has_stimuli", False):
        study._has_stimuli = study.candidates.filter(status=Candidate.Status.DONE).exclude(image="").exists()
        if not study._has_stimuli:
            raise StudyNotOpen(study.slug)


def find_returning_participant(study: Study, recruiter: RecruiterInfo) -> Participant | None:
    """The session started earlier with the same recruiter id, if any."""
    if not recruiter.external_id:
        return None
    return Participant.objects.filter(study=study, external_id_hash=pseudonymise(study, recruiter.external_id)).first()


def do_consent(study: Study, recruiter: RecruiterInfo, *, language: str, preview: bool = False) -> Participant:
    """Start a session for a participant who consented; returns an existing one for a known recruiter id.

    A ``preview`` session (one of the study's researchers trying it out) is
    marked as such: it is in no export, analysis or quota.

    Raises:
        StudyNotOpen: the study is not live (``preview``: closed).
    """
    check_study_open(study, preview=preview)
    hashed = pseudonymise(study, recruiter.external_id) if recruiter.external_id else ""
    now = timezone.now()
    try:
        with transaction.atomic():
            return Participant.objects.create(
                study=study,
                external_id_hash=hashed,
                recruiter=recruiter.recruiter,
                recruiter_study_id=recruiter.study_id,
                recruiter_session_id=recruiter.session_id,
                language=language,
                is_preview=preview,
                status=Participant.Status.CONSENTED,
                consented_at=now,
                started_at=now,
                last_seen_at=now,
            )
    except IntegrityError:
        # Two tabs consented at once with the same recruiter id: one session.
        existing = find_returning_participant(study, recruiter)
        if existing is None:
            raise
        return existing


def do_set_language(participant: Participant, language: str) -> None:
    """Switch the participant's interface language (one of the study's languages)."""
    if language in (participant.study.languages or []) and language != participant.language:
        participant.language = language
        Participant.objects.filter(pk=participant.pk).update(language=language)


def do_submit_background(participant: Participant, answers: dict) -> Participant:
    """Store background answers, place the participant in a group and build their trials.

    A participant no group accepts, or whose eligible groups are all full, is
    screened out (``screenout_reason`` ``ineligible`` or ``full``). The place
    in a group is taken here, not at consent.

    Only the groups that accept this participant are locked, and only while a
    group and design slot are chosen and the trials written: the design is
    planned before, so arrivals for other groups never wait, and arrivals for
    the same group wait for a few short statements each. A full group first
    gives back abandoned and timed-out places.
    """
    study = participant.study
    groups = list(study.participant_groups.order_by("pk"))
    eligible_ids = [g.pk for g in groups if g.accepts(answers)]
    plans: dict[int, list] = {}
    candidates: list[Candidate] = []
    if eligible_ids:
        # Only what the design uses: a study has thousands of candidates, every arrival reads them.
        candidates = list(
            Candidate.objects.filter(study=study, status=Candidate.Status.DONE).exclude(image="").order_by("id")
            .only("id", "content_id", "style_id", "seed")
        )
        questions = list(study.questions.order_by("order", "id"))
        plans = {g.pk: plan_questions(study, g, candidates=candidates, questions=questions)
                 for g in groups if g.pk in eligible_ids}
    with transaction.atomic():
        participant = Participant.objects.select_for_update().get(pk=participant.pk)
        participant.study = study
        if participant.group_id is not None or participant.status != Participant.Status.CONSENTED:
            return participant  # submitted twice: the first answer stands
        participant.background = answers
        # Lock the eligible groups (in pk order, so two arrivals never deadlock) to keep quotas exact.
        eligible = list(ParticipantGroup.objects.select_for_update().filter(pk__in=eligible_ids).order_by("pk"))
        group = choose_group(eligible) if eligible else None
        if group is None and eligible and expire_stale_sessions(groups=eligible):
            group = choose_group(eligible)
        if group is None and participant.is_preview and eligible:
            group = eligible[0]  # a preview takes no place, so a full group still shows its trials
        if group is None:
            participant.status = Participant.Status.SCREENED_OUT
            participant.screenout_reason = "full" if eligible else "ineligible"
            participant.save(update_fields=["background", "status", "screenout_reason"])
            return participant
        participant.group = group
        # A preview holds no design slot: it never takes a real participant's trial list.
        participant.slot = None if participant.is_preview else free_slot(group)
        participant.status = Participant.Status.IN_PROGRESS
        participant.last_seen_at = timezone.now()
        participant.save(update_fields=["background", "group", "slot", "status", "last_seen_at"])
        build_trials(participant, plans[group.pk], candidates=candidates)
    return participant


def do_read_instructions(participant: Participant) -> None:
    """Mark the instructions as read (the practice trial comes next)."""
    if participant.instructions_read_at is None:
        participant.instructions_read_at = participant.last_seen_at = timezone.now()
        Participant.objects.filter(pk=participant.pk, instructions_read_at=None).update(
            instructions_read_at=participant.instructions_read_at, last_seen_at=participant.last_seen_at
        )


def next_trial(participant: Participant) -> Trial | None:
    """The first trial without a response, or None when all are answered."""
    return (
        participant.trials.filter(response__isnull=True)
        .select_related("question")
        .prefetch_related("items")
        .order_by("position")
        .first()
    )


#: Only what a trial's image view needs from its items and their candidates.
TRIAL_ITEM_FIELDS = ("id", "trial_id", "slot", "candidate_id", "attention_image",
                "candidate__id", "candidate__content_id", "candidate__style_id", "candidate__image")


@dataclass(frozen=True)
class TrialState:
    """Where a participant is in their trials: the current one, the one after it, progress.

    ``current`` and ``following`` come with their question and ``shown_items``.
    """

    current: Trial | None
    following: Trial | None
    total: int
    done: int


def trial_state(participant: Participant, upcoming: Upcoming | None = None) -> TrialState:
    """The participant's current trial, the next one (to preload) and progress, in one query.

    ``upcoming``: the participant's next trials and progress
    (:func:`~studies.participant_sql.upcoming_trials`), when already read (no query).
    An adaptive 2AFC trial gets its pair when it becomes current (two more queries).
    """
    if upcoming is None:
        upcoming = upcoming_trials(participant, 2)
    current, following = (upcoming.trials + [None, None])[:2]
    if current is not None and not current.shown_items and is_adaptive_trial(current):
        do_assign_pair(current)  # its pair is chosen now that the participant reached it
        current.shown_items = shown_items_of(current)
    return TrialState(current, following, upcoming.total, upcoming.done)


#: Activity (``last_seen_at``, minutes-scale timeouts) is recorded at most this often by pages and answers.
_SEEN_RESOLUTION = timedelta(seconds=60)


def do_show_trial(trial: Trial, participant: Participant | None = None) -> None:
    """Record when a trial was first shown (the server-side response-time origin) and the activity."""
    now = timezone.now()
    if trial.shown_at is None:
        trial.shown_at = now
        Trial.objects.filter(pk=trial.pk, shown_at=None).update(shown_at=now)
    if participant is None or participant.last_seen_at is None or now - participant.last_seen_at > _SEEN_RESOLUTION:
        Participant.objects.filter(pk=trial.participant_id).update(last_seen_at=now)


@dataclass(frozen=True)
class Answer:
    """A validated answer: exactly one of ``value``, ``choice`` (slot) or ``ranking`` (slots)."""

    value: int | None = None
    choice: int | None = None
    ranking: list[int] | None = None
    client_rt_ms: int | None = None


class InvalidAnswer(Exception):
    """The submission does not answer the current trial (raised by a validator, carries its form)."""

    def __init__(self, trial: Trial, errors) -> None:
        super().__init__("invalid answer")
        self.trial, self.errors = trial, errors


def _attention_passed(trial: Trial, answer: Answer) -> bool | None:
    if not trial.attention_kind:
        return None
    expected = trial.expected or {}
    if "value" in expected:
        return answer.value == expected["value"]
    if "choice" in expected:
        return answer.choice == expected["choice"]
    return None


#: Sessions that may still answer (excluded participants may finish).
_ANSWERING = (Participant.Status.CONSENTED, Participant.Status.IN_PROGRESS, Participant.Status.EXCLUDED)


def do_record_response(
    participant: Participant | str, position: int, answer: Answer | Callable[[Trial], Answer]
) -> Response | None:
    """Save the answer to the participant's trial at ``position`` exactly once.

    Only the current trial (the first without a response) can be answered:
    the check runs under the participant's row lock, with the trial loaded
    once. A repeated or early submission (double click, back button, resent
    form) returns None and changes nothing. A failed attention check is
    counted; past the study's allowance the participant is flagged
    ``excluded`` (they may finish, and their design slot goes to the next
    arrival). The last answer also finishes the session (as :func:`do_complete`).
    A stored answer records the participant's activity (``last_seen_at``, to the
    minute); these writes ride in the response's statement on PostgreSQL.

    Args:
        participant: the participant, or their token.
        position: the trial answered.
        answer: the validated answer, or a validator called with the locked
            current trial that returns it (or raises :class:`InvalidAnswer`).

    Returns:
        The stored response, or None if nothing was stored. Its
        ``upcoming`` are the participant's next trials and progress as read
        under the lock (:func:`~studies.participant_sql.upcoming_trials`;
        participant and study loaded), this answer counted: the next page is
        built from them (:func:`trial_state`) without a second read. That
        page's trial is marked shown in the answer's transaction.

    Raises:
        Participant.DoesNotExist: no such participant.
        Trial.DoesNotExist: the participant has no trial at ``position``.
        InvalidAnswer: from the validator.
    """
    now = timezone.now()
    who = {"token": participant} if isinstance(participant, str) else {"pk": participant.pk}
    try:
        with transaction.atomic():
            # The participant's row lock (of=self: the study row stays unlocked): concurrent
            # answers of one participant queue here, and the trials are read after it.
            person = participant_with_study(for_update=True, **who)
            if person.completed_at is not None or person.status not in _ANSWERING:
                return None
            # The current trial to validate against, and what the next page needs
            # (``upcoming``, see Returns): the one after it, and the one after that to preload.
            upcoming = upcoming_trials(person, 3)
            trial = upcoming.trials[0] if upcoming.trials else None
            if trial is None or trial.position != position:
                if not Trial.objects.filter(participant_id=person.pk, position=position).exists():
                    raise Trial.DoesNotExist
                return None  # already answered, or not reached yet
            if callable(answer):
                answer = answer(trial)
            choice_id = None
            if answer.choice is not None:
                choice_id = next((item.id for item in trial.shown_items if item.slot == answer.choice), None)
            server_rt = None
            if trial.shown_at is not None:
                server_rt = max(0, int((now - trial.shown_at).total_seconds() * 1000))
            passed = _attention_passed(trial, answer)
            following = upcoming.trials[1] if len(upcoming.trials) > 1 else None
            changed = {}
            if person.last_seen_at is None or now - person.last_seen_at > _SEEN_RESOLUTION:
                person.last_seen_at = changed["last_seen_at"] = now
            if passed is False:
                changed.update(_count_attention_failure(person))
            if following is None:
                changed.update(_finish(person))  # the last answer: finished under the same lock
            response = insert_response(
                trial_id=trial.pk,
                value=answer.value,
                choice_id=choice_id,
                ranking=answer.ranking,
                client_rt_ms=answer.client_rt_ms,
                server_rt_ms=server_rt,
                passed_attention=passed,
                submitted_at=now,
                # The response is the next trial's page: shown now, recorded in this commit.
                shown=(following, now) if following is not None and following.shown_at is None else None,
                participant=(person, changed),
            )
            response.trial = trial
    except IntegrityError:
        return None  # stored by a request that did not take the lock first
    response.upcoming = Upcoming(upcoming.trials[1:], upcoming.total, upcoming.done + (0 if trial.is_practice else 1))
    return response


def _count_attention_failure(participant: Participant) -> dict:
    """Count a failed attention check of a locked participant (excluded past the study's allowance):
    set on the instance, and returned as ``{attname: value}`` for the caller to store."""
    participant.attention_failures += 1
    fields = {"attention_failures": participant.attention_failures}
    if (
        participant.attention_failures > participant.study.max_attention_failures
        and participant.status != Participant.Status.EXCLUDED
    ):
        participant.status = fields["status"] = Participant.Status.EXCLUDED
        logger.info("participant %s excluded after failed attention checks", participant.pk)
    return fields


def do_complete(participant: Participant) -> Participant:
    """Finish a session whose trials are all answered: completion code and time."""
    with transaction.atomic():
        # of=("self",): the study row stays unlocked, or every completion would queue on it.
        participant = Participant.objects.select_for_update(of=("self",)).select_related("study").get(
            pk=participant.pk)
        if participant.completed_at is not None or next_trial(participant) is not None:
            return participant
        participant.save(update_fields=list(_finish(participant)))
    return participant


def _finish(participant: Participant) -> dict:
    """Completion time and code of a locked participant whose trials are all answered: set on the
    instance, and returned as ``{attname: value}`` for the caller to store."""
    participant.completed_at = timezone.now()
    participant.completion_code = participant.study.completion_code or secrets.token_hex(4).upper()
    if participant.status != Participant.Status.EXCLUDED:
        participant.status = Participant.Status.COMPLETED
    return {name: getattr(participant, name) for name in ("completed_at", "completion_code", "status")}


def completion_redirect_url(participant: Participant) -> str:
    """The recruiter's completion URL, with ``{code}`` replaced by the completion code."""
    url = participant.study.completion_url
    return url.replace("{code}", quote(participant.completion_code)) if url else ""


def screenout_redirect_url(study: Study) -> str:
    """The recruiter's screen-out URL (may be empty)."""
    return study.screenout_url


#: A standard background questionnaire (researchers may edit or replace it).
DEFAULT_BACKGROUND = [
    ("cultural_background", BackgroundQuestion.Kind.CHOICE, True, {
        "en": "Which cultural background do you identify with most?",
        "zh-hans": "您最认同哪种文化背景？",
        "ja": "最も共感する文化的背景はどれですか？",
    }, [
        ("western", {"en": "Western (Europe, the Americas, Oceania)", "zh-hans": "西方（欧洲、美洲、大洋洲）",
                     "ja": "西洋（ヨーロッパ、アメリカ大陸、オセアニア）"}),
        ("chinese", {"en": "Chinese", "zh-hans": "中国", "ja": "中国"}),
        ("japanese", {"en": "Japanese", "zh-hans": "日本", "ja": "日本"}),
        ("other", {"en": "Other", "zh-hans": "其他", "ja": "その他"}),
    ]),
    ("country_grew_up", BackgroundQuestion.Kind.TEXT, True, {
        "en": "In which country did you grow up?", "zh-hans": "您在哪个国家长大？", "ja": "どの国で育ちましたか？",
    }, []),
    ("languages", BackgroundQuestion.Kind.MULTI, True, {
        "en": "Which languages do you speak fluently?", "zh-hans": "您能流利使用哪些语言？",
        "ja": "流暢に話せる言語はどれですか？",
    }, [
        ("en", {"en": "English", "zh-hans": "英语", "ja": "英語"}),
        ("zh", {"en": "Chinese", "zh-hans": "中文", "ja": "中国語"}),
        ("ja", {"en": "Japanese", "zh-hans": "日语", "ja": "日本語"}),
        ("other", {"en": "Other", "zh-hans": "其他", "ja": "その他"}),
    ]),
    ("years_abroad", BackgroundQuestion.Kind.NUMBER, True, {
        "en": "How many years have you lived in countries other than the one you grew up in?",
        "zh-hans": "您在成长国家以外的国家生活了多少年？",
        "ja": "育った国以外の国に何年住んだことがありますか？",
    }, []),
    ("art_training", BackgroundQuestion.Kind.CHOICE, True, {
        "en": "How much training in visual art have you had?", "zh-hans": "您接受过多少视觉艺术方面的训练？",
        "ja": "美術の訓練をどの程度受けましたか？",
    }, [
        ("none", {"en": "None", "zh-hans": "没有", "ja": "なし"}),
        ("some", {"en": "Some (courses, hobby)", "zh-hans": "一些（课程、爱好）", "ja": "少し（講座・趣味）"}),
        ("professional", {"en": "Professional or degree", "zh-hans": "专业或学位", "ja": "専門・学位"}),
    ]),
    ("age_band", BackgroundQuestion.Kind.CHOICE, True, {
        "en": "Your age", "zh-hans": "您的年龄", "ja": "年齢",
    }, [
        ("18-24", {"en": "18–24", "zh-hans": "18–24岁", "ja": "18–24歳"}),
        ("25-34", {"en": "25–34", "zh-hans": "25–34岁", "ja": "25–34歳"}),
        ("35-44", {"en": "35–44", "zh-hans": "35–44岁", "ja": "35–44歳"}),
        ("45-54", {"en": "45–54", "zh-hans": "45–54岁", "ja": "45–54歳"}), ("55+", {"en": "55 or over", "zh-hans": "55岁及以上", "ja": "55歳以上"}),
        ("na", {"en": "Prefer not to say", "zh-hans": "不愿透露", "ja": "回答しない"}),
    ]),
]


def do_add_default_background_questions(study: Study) -> list[BackgroundQuestion]:
    """Add the standard background questionnaire to ``study`` (keys that exist are kept)."""
    created = []
    existing = set(study.background_questions.values_list("key", flat=True))
    for order, (key, kind, required, texts, choices) in enumerate(DEFAULT_BACKGROUND, start=1):
        if key in existing:
            continue
        created.append(BackgroundQuestion.objects.create(
            study=study, key=key, kind=kind, required=required, texts=texts, order=order,
            choices=[{"value": v, "labels": labels} for v, labels in choices],
        ))
    return created


__all__ = [
    "TRIAL_ITEM_FIELDS",
    "Answer",
    "InvalidAnswer",
    "TrialState",
    "RecruiterInfo",
    "StudyNotOpen",
    "check_study_open",
    "completion_redirect_url",
    "do_add_default_background_questions",
    "do_complete",
    "do_consent",
    "do_read_instructions",
    "do_record_response",
    "do_set_language",
    "do_show_trial",
    "do_submit_background",
    "find_returning_participant",
    "next_trial",
    "screenout_redirect_url",
    "trial_state",
]
