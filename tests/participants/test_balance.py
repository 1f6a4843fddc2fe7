"""Balanced assignment: simulated participants, with dropouts, end within ±1 per candidate and group."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import timedelta

import pytest
from django.utils import timezone

from studies.actions.participants import (
    RecruiterInfo,
    do_complete,
    do_consent,
    do_record_response,
    do_submit_background,
    next_trial,
)
from studies.assignment import (
    candidate_counts,
    expire_stale_sessions,
    plan_questions,
    question_units,
)
from studies.models import Candidate, Participant, ParticipantGroup, Question

from .factories import BACKGROUND_POST, make_study
from .helpers import answer_for

pytestmark = pytest.mark.django_db


def _answer(participant, trial):
    from studies.actions.participants import Answer

    data = answer_for(trial)
    if "ranking" in data:
        return Answer(ranking=[int(x) for x in data["ranking"].split(",")])
    return Answer(value=data.get("value"), choice=data.get("choice"))


def _simulate(study, *, seed: int, dropout: float) -> None:
    """Arrivals until every group has its quota of completed sessions.

    Active sessions progress in random interleaving; a dropout answers part of
    its trials, goes silent, and is expired by the periodic job.
    """
    rng = random.Random(seed)
    groups = list(study.participant_groups.all())
    quota = {g.slug: g.quota for g in groups}
    completed: Counter = Counter()
    active: list[tuple[int, str]] = []
    for _step in range(5000):
        if completed == quota and not active:
            return
        if active and rng.random() < 0.6:
            pid, slug = entry = rng.choice(active)
            participant = Participant.objects.get(pk=pid)
            if participant.completed_at is not None:  # its last answer finished the session
                completed[slug] += 1
                active.remove(entry)
                continue
            if rng.random() < dropout / 4:
                # Goes silent mid-study; the periodic job expires the session later.
                Participant.objects.filter(pk=pid).update(last_seen_at=timezone.now() - timedelta(hours=3))
                active.remove(entry)
                if rng.random() < 0.5:
                    expire_stale_sessions()
                continue
            trial = next_trial(participant)
            if trial is None:
                do_complete(participant)
                completed[slug] += 1
                active.remove(entry)
            else:
                do_record_response(participant, trial.position, _answer(participant, trial))
            continue
        held = Counter(
            Participant.objects.filter(study=study, status__in=Participant.HOLDING).values_list("group__slug", flat=True)
        )
        open_groups = [slug for slug in quota if held[slug] < quota[slug]]
        if not open_groups:
            expire_stale_sessions()  # the periodic job catches up with silent dropouts
            continue
        slug = rng.choice(open_groups)
        participant = do_consent(study, RecruiterInfo(), language="en")
        participant = do_submit_background(participant, dict(BACKGROUND_POST, cultural_background=slug))
        assert participant.status == Participant.Status.IN_PROGRESS
        active.append((participant.pk, slug))
    raise AssertionError("simulation did not finish")


def test_counts_per_candidate_within_one_after_dropouts():
    """Every unit (Likert candidate, 2AFC pair, ranking set) is shown to each group within ±1 of the others."""
    # Quota × trials exceeds the units, so the design wraps round at least once.
    study = make_study(contents=3, methods=4, trials=6, quota=6)
    study.participant_groups.filter(slug="japanese").delete()  # two groups keep the run short
    _simulate(study, seed=2, dropout=0.6)
    assert Participant.objects.filter(study=study, status="expired").exists(), "simulation had no dropouts"
    candidates = list(Candidate.objects.filter(study=study))
    for group in ParticipantGroup.objects.filter(study=study):
        assert Participant.objects.filter(group=group, status="completed").count() == group.quota
        counts = candidate_counts(group)
        for question in study.questions.all():
            units = question_units(question, candidates)
            per_unit = [counts.get((question.pk, tuple(sorted(u.candidate_ids))), 0) for u in units]
            assert max(per_unit) - min(per_unit) <= 1, (group.slug, question.kind, sorted(Counter(per_unit).items()))
            assert sum(per_unit) > 0
        # Likert: per candidate, explicitly.
        likert = study.questions.get(kind=Question.Kind.LIKERT)
        per_candidate = Counter()
        for (qid, ids), n in counts.items():
            if qid == likert.pk:
                per_candidate[ids[0]] += n
        values = [per_candidate.get(c.pk, 0) for c in candidates]
        assert max(values) - min(values) <= 1


def test_no_content_repeats_within_a_question():
    """A participant never sees the same content twice in one question."""
    study = make_study(contents=4, methods=3, trials=24, quota=20)
    for i in range(8):
        p = do_consent(study, RecruiterInfo(), language="en")
        p = do_submit_background(p, dict(BACKGROUND_POST, cultural_background="western"))
        seen = defaultdict(list)
        for trial in p.trials.filter(is_practice=False, attention_kind="").prefetch_related("items__candidate"):
            contents = {item.candidate.content_id for item in trial.items.all()}
            assert len(contents) == 1
            seen[trial.question_id].append(contents.pop())
        for question_id, contents in seen.items():
            assert len(contents) == len(set(contents)), (i, question_id, contents)
            assert len(contents) == 4  # 8 trials per question asked, capped by the number of contents


def test_ineligible_and_full_groups_screen_out():
    """No matching group: 'ineligible'; matching group at quota: 'full'."""
    study = make_study(quota=1)
    p = do_submit_background(do_consent(study, RecruiterInfo(), language="en"),
                             dict(BACKGROUND_POST, cultural_background="other"))
    assert (p.status, p.screenout_reason) == ("screened_out", "ineligible")
    first = do_submit_background(do_consent(study, RecruiterInfo(), language="en"), BACKGROUND_POST)
    assert first.status == "in_progress"
    p = do_submit_background(do_consent(study, RecruiterInfo(), language="en"), BACKGROUND_POST)
    assert (p.status, p.screenout_reason) == ("screened_out", "full")


def test_stale_session_frees_its_slot_and_quota():
    """An idle session past the timeout expires; the next arrival gets its slot and trial list."""
    study = make_study(quota=1)
    first = do_submit_background(do_consent(study, RecruiterInfo(), language="en"), BACKGROUND_POST)
    units = sorted(first.trials.filter(is_practice=False, attention_kind="").values_list("items__candidate", flat=True))
    assert expire_stale_sessions() == 0
    Participant.objects.filter(pk=first.pk).update(last_seen_at=timezone.now() - timedelta(minutes=61))
    second = do_submit_background(do_consent(study, RecruiterInfo(), language="en"), BACKGROUND_POST)
    first.refresh_from_db()
    assert first.status == "expired"
    assert second.status == "in_progress" and second.slot == first.slot == 0
    again = sorted(second.trials.filter(is_practice=False, attention_kind="").values_list("items__candidate", flat=True))
    assert again == units


def test_trials_split_over_questions():
    """The trial budget is split evenly over questions that have stimuli."""
    study = make_study(trials=6)
    group = study.participant_groups.get(slug="chinese")
    plans = plan_questions(study, group)
    assert [p.per_participant for p in plans] == [2, 2, 2]
    assert [len(p.sequence) for p in plans] == [12, 12, 4]


def test_eligibility_rules_lists_multi_and_ranges():
    """A group's rule needs every key: any listed value, any of a multiple choice, or a number in range."""
    group = ParticipantGroup(eligibility={"cultural_background": ["chinese", "japanese"], "languages": ["zh"],
                                          "years_abroad": {"max": 5}})
    ok = {"cultural_background": "chinese", "languages": ["en", "zh"], "years_abroad": 2}
    assert group.accepts(ok) is True
    assert group.accepts({**ok, "cultural_background": "western"}) is False
    assert group.accepts({**ok, "languages": ["en"]}) is False
    assert group.accepts({**ok, "years_abroad": 9}) is False
    assert group.accepts({k: v for k, v in ok.items() if k != "years_abroad"}) is False
    assert ParticipantGroup(eligibility={}).accepts({}) is True
