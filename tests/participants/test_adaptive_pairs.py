"""Adaptive 2AFC through the real participant pages: many interleaved participants."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from studies.export import study_frame
from studies.models import Participant, Question, Response, Study, Trial, TrialItem

from .factories import make_study
from .helpers import answer_for, consent, session_url, start, submit_background

pytestmark = pytest.mark.django_db

N_PARTICIPANTS = 16
MIN_EXPOSURE = 3


def _adaptive_study():
    # Designed as a draft, then opened: a live study's questions are frozen.
    study = make_study(contents=4, methods=4, questions=("2afc",), trials=4, quota=100, attention_allowed=10,
                       status=Study.Status.DRAFT)
    question = study.questions.get()
    question.pair_design = Question.PairDesign.ADAPTIVE
    question.min_exposure = MIN_EXPOSURE
    question.full_clean()
    question.save()
    Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE)
    study.status = Study.Status.LIVE
    return study, question


def _choice(trial: Trial, strength: dict[int, float], rng: random.Random) -> int:
    """A Bradley-Terry answer: the slot of the winner, by the candidates' methods' strengths."""
    items = sorted(trial.items.select_related("candidate"), key=lambda i: i.slot)
    a, b = (strength[item.candidate.method_config_id] for item in items)
    return 0 if rng.random() < 1.0 / (1.0 + math.exp(b - a)) else 1


def test_adaptive_pairs_through_the_views_keep_every_rule():
    """Interleaved participants all finish; each gets distinct pairs, every candidate reaches the
    minimum exposure, attention checks stay mixed in, sides vary, every answer is stored once."""
    study, question = _adaptive_study()
    rng = random.Random(7)
    methods = sorted(study.method_configs.values_list("pk", flat=True))
    strength = dict(zip(methods, [-1.5, -0.5, 0.5, 1.5]))
    sessions = []
    for _ in range(N_PARTICIPANTS):
        client = Client()
        participant = consent(client, study)
        assert submit_background(client, participant).status_code == 302
        assert start(client, participant).status_code == 302
        sessions.append((client, participant))
    # Before anyone reaches them, adaptive trials hold no pair.
    assert not TrialItem.objects.filter(trial__question=question, trial__is_practice=False,
                                        trial__attention_kind="").exists()

    submitted: dict[int, dict] = {}
    active = list(sessions)
    while active:
        # Everyone looks at their current trial before anyone answers: many pairs in flight at once.
        shown = []
        for client, participant in active:
            page = client.get(session_url(participant.token))
            assert page.status_code == 200
            trial = participant.trials.filter(response__isnull=True).order_by("position").first()
            shown.append((client, participant, trial))
        active = []
        rng.shuffle(shown)
        for client, participant, trial in shown:
            if trial is None:
                continue
            data = answer_for(trial)
            if trial.question.is_adaptive and not trial.attention_kind and not trial.is_practice:
                assert trial.items.count() == 2
                data["choice"] = _choice(trial, strength, rng)
            url = reverse("studies:participant_answer", args=[participant.token, trial.position])
            assert client.post(url, data).status_code == 200  # stored: the next trial's page
            assert client.post(url, data).status_code == 302  # a double submission changes nothing
            submitted[trial.pk] = data
            active.append((client, participant))

    participants = Participant.objects.filter(study=study)
    assert participants.count() == N_PARTICIPANTS
    assert all(p.status == Participant.Status.COMPLETED for p in participants)

    # Every answer stored once, as submitted.
    responses = Response.objects.filter(trial__participant__study=study).select_related("choice")
    assert responses.count() == len(submitted) == Trial.objects.filter(participant__study=study).count()
    for response in responses:
        data = submitted[response.trial_id]
        if "choice" in data:
            assert response.choice.slot == data["choice"]
        else:
            assert response.value == data["value"]

    real = Trial.objects.filter(participant__study=study, question=question, is_practice=False, attention_kind="")
    items = TrialItem.objects.filter(trial__in=real).order_by("trial_id", "slot")
    by_trial = defaultdict(list)
    for item in items:
        by_trial[item.trial_id].append(item.candidate_id)
    assert len(by_trial) == real.count() == N_PARTICIPANTS * 4
    assert all(len(ids) == 2 and ids[0] != ids[1] for ids in by_trial.values())

    # No pair twice to the same participant (the practice pair included).
    for participant in participants:
        pairs = [frozenset(by_trial[t.pk]) for t in participant.trials.filter(pk__in=real)]
        practice = participant.trials.get(is_practice=True)
        pairs.append(frozenset(practice.items.values_list("candidate_id", flat=True)))
        assert len(pairs) == len(set(pairs)), participant.pk
        # No content twice while unseen ones remain (the practice pair's content counts as seen).
        contents = [practice.items.first().candidate.content_id] + [
            TrialItem.objects.filter(trial_id=t).first().candidate.content_id
            for t in participant.trials.filter(pk__in=real).order_by("position").values_list("pk", flat=True)]
        n_contents = study.content_images.count()
        assert len(set(contents[:n_contents])) == n_contents, (participant.pk, contents)
        # Attention checks are still mixed in, after the first trial.
        checks = participant.trials.exclude(attention_kind="")
        assert checks.count() == settings.STYLESTUDY_ATTENTION_CHECKS
        assert all(c.position > 1 for c in checks)

    # Minimum exposure per candidate in the group, and both sides used.
    exposure = Counter(cid for ids in by_trial.values() for cid in ids)
    done = study.candidates.filter(status="done").count()
    assert len(exposure) == done
    assert min(exposure.values()) >= MIN_EXPOSURE
    assert 0.25 < sum(ids[0] < ids[1] for ids in by_trial.values()) / len(by_trial) < 0.75


def test_minimum_exposure_comes_first():
    """Until every candidate has been shown the minimum number of times, each new pair includes
    a least-shown candidate with the least-shown partner; so all reach it within a few trials of
    the fewest possible (candidates x minimum / 2)."""
    study, question = _adaptive_study()
    candidates = study.candidates.count()
    fewest_trials = candidates * MIN_EXPOSURE // 2
    for _ in range(fewest_trials // 4 + 2):
        client = Client()
        participant = consent(client, study)
        submit_background(client, participant)
        start(client, participant)
        for _step in range(4 + 1 + settings.STYLESTUDY_ATTENTION_CHECKS):
            client.get(session_url(participant.token))
            trial = participant.trials.filter(response__isnull=True).order_by("position").first()
            if trial is None:
                break
            url = reverse("studies:participant_answer", args=[participant.token, trial.position])
            client.post(url, answer_for(trial))
    shown = Counter(TrialItem.objects.filter(
        trial__question=question, trial__is_practice=False, trial__attention_kind="",
    ).values_list("candidate_id", flat=True))
    assert len(shown) == candidates
    assert min(shown.values()) >= MIN_EXPOSURE

    # Each trial records why its pair was chosen: replayed in the order the pairs were stored,
    # "exposure" exactly when one of its candidates was still below the minimum, and never
    # once every candidate had reached it.
    items = TrialItem.objects.filter(trial__question=question, trial__is_practice=False, trial__attention_kind="")
    pairs = defaultdict(list)
    for trial_id, candidate_id in items.order_by("pk").values_list("trial_id", "candidate_id"):
        pairs[trial_id].append(candidate_id)
    recorded = dict(Trial.objects.filter(pk__in=pairs).values_list("pk", "pair_selection"))
    so_far = Counter({cid: 0 for cid in study.candidates.filter(status="done").values_list("pk", flat=True)})
    for trial_id, pair in pairs.items():
        below = min(so_far[cid] for cid in pair) < MIN_EXPOSURE
        assert recorded[trial_id] == ("exposure" if below else "information"), trial_id
        if min(so_far.values()) >= MIN_EXPOSURE:
            assert recorded[trial_id] == "information"
        so_far.update(pair)
    assert Counter(recorded.values())["exposure"] >= fewest_trials
    assert Counter(recorded.values())["information"] > 0
    # … and the tidy export carries it.
    exported = study_frame(study.pk).drop_duplicates("trial_id").set_index("trial_id")["pair_selection"]
    assert {t: exported[t] for t in recorded} == recorded
    assert set(exported.drop(index=list(recorded))) == {""}


def test_adaptive_is_refused_for_other_question_kinds():
    """Only 2AFC questions can choose pairs adaptively."""
    study = make_study(questions=("likert",), status=Study.Status.DRAFT)
    question = study.questions.get()
    question.pair_design = Question.PairDesign.ADAPTIVE
    with pytest.raises(ValidationError) as info:
        question.full_clean()
    assert "pair_design" in info.value.message_dict
