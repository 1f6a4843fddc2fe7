"""Balanced assignment of trials to participants.

Design
------
For each (participant group, question) the stimuli are cut into *units*: one
candidate for a Likert question, a pair of candidates from the same
content × style cell (different methods) for 2AFC, a set of ``n_candidates``
from one cell for ranking. The units are laid out in a fixed cyclic sequence
that interleaves contents round-robin (content order and the order inside each
content are shuffled once per group and question with a seeded generator).

A participant holds a *slot* ``s`` in their group and, for a question with
``k`` trials, gets the ``k`` consecutive units starting at ``s * k`` (modulo
the sequence length). Slots ``0 .. n-1`` therefore cover a prefix of the
repeated sequence, so every unit is used either ``floor`` or ``ceil`` of
``n * k / U`` times: counts differ by at most one. Because contents alternate
in the sequence, ``k`` consecutive units never repeat a content while ``k`` is
at most the number of contents.

Allocation is least-filled: a new participant takes the smallest slot not held
by a session in progress or completed. Stale sessions are expired after the
study's timeout (:func:`expire_stale_sessions`), which frees their slot for the
next arrival; with the group quota capping held slots, a group that reaches
its quota of completed sessions holds exactly the slots ``0 .. quota-1``.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone

from .models import (
    Candidate,
    Participant,
    ParticipantGroup,
    Question,
    Response,
    Study,
    Trial,
    TrialItem,
)

#: Scrambled foils per content image: each is made once and then served as a file.
SCRAMBLE_VARIANTS = 8

#: Statuses that hold a design slot and a place in the quota.
HOLDING_STATUSES = Participant.HOLDING


@dataclass(frozen=True)
class Unit:
    """What one trial shows: candidate ids in a fixed order, and their content id."""

    candidate_ids: tuple[int, ...]
    content_id: int


def _rng(*parts: object) -> random.Random:
    """A generator seeded from ``parts``, stable across processes (unlike ``hash``)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _done_candidates(study: Study) -> list[Candidate]:
    return list(
        Candidate.objects.filter(study=study, status=Candidate.Status.DONE)
        .exclude(image="")
        .order_by("id")
    )


def question_units(question: Question, candidates: list[Candidate]) -> list[Unit]:
    """All units of ``question`` in a canonical order (before balancing).

    Args:
        question: the question asked.
        candidates: the study's finished candidates.

    Returns:
        Likert: one unit per candidate. 2AFC: every pair of candidates that
        share content, style and seed. Ranking: every set of
        ``min(n_candidates, methods)`` candidates of one such cell (at least two).
    """
    if question.kind == Question.Kind.LIKERT:
        return [Unit((c.id,), c.content_id) for c in candidates]
    cells: dict[tuple[int, int, int], list[Candidate]] = defaultdict(list)
    for c in candidates:
        cells[(c.content_id, c.style_id, c.seed)].append(c)
    size = 2 if question.kind == Question.Kind.TWO_AFC else question.n_candidates
    units = []
    for (content_id, _style, _seed), members in sorted(cells.items()):
        n = min(size, len(members))
        if n < 2:
            continue
        for combo in itertools.combinations(sorted(m.id for m in members), n):
            units.append(Unit(combo, content_id))
    return units


def balanced_sequence(units: list[Unit], *, seed: object) -> list[Unit]:
    """Units in the cyclic order that keeps contents apart.

    Contents are interleaved round-robin, so any window of consecutive units
    no longer than the number of contents shows each content at most once
    (exactly, when every content has the same number of units).
    """
    rng = _rng("sequence", seed)
    by_content: dict[int, list[Unit]] = defaultdict(list)
    for unit in units:
        by_content[unit.content_id].append(unit)
    contents = sorted(by_content)
    rng.shuffle(contents)
    for content_id in contents:
        rng.shuffle(by_content[content_id])
    sequence = []
    for round_ in itertools.zip_longest(*(by_content[c] for c in contents)):
        sequence.extend(u for u in round_ if u is not None)
    return sequence


@dataclass
class QuestionPlan:
    """The balanced sequence of one question in one group, and trials per participant."""

    question: Question
    sequence: list[Unit]
    per_participant: int

    def units_for_slot(self, slot: int) -> list[Unit]:
        """The consecutive run of units that design slot ``slot`` receives."""
        n = len(self.sequence)
        if n == 0 or self.per_participant == 0:
            return []
        start = slot * self.per_participant
        return [self.sequence[(start + i) % n] for i in range(self.per_participant)]


def plan_questions(
    study: Study, group: ParticipantGroup, *, candidates: list[Candidate] | None = None,
    questions: list[Question] | None = None,
) -> list[QuestionPlan]:
    """The per-question plan of ``group``: sequences and how many trials each.

    ``study.trials_per_participant`` is split evenly over the questions that
    have stimuli; a question never gets more trials than it has units, nor
    more than it has distinct contents. ``candidates`` and
    ``questions`` (the study's finished candidates and its questions) are read
    when not given.
    """
    candidates = _done_candidates(study) if candidates is None else candidates
    questions = list(study.questions.order_by("order", "id")) if questions is None else questions
    built = []
    for q in questions:
        units = question_units(q, candidates)
        if units:
            built.append((q, balanced_sequence(units, seed=(study.pk, group.pk, q.pk))))
    if not built:
        return []
    total = study.trials_per_participant
    base, extra = divmod(total, len(built))
    plans = []
    for i, (q, sequence) in enumerate(built):
        k = base + (1 if i < extra else 0)
        k = min(k, len(sequence), len({u.content_id for u in sequence}))
        plans.append(QuestionPlan(q, sequence, k))
    return plans


def held_participants(group: ParticipantGroup):
    """Sessions that occupy a place in ``group`` (in progress or completed); previews hold none."""
    return Participant.objects.counted().filter(group=group, status__in=HOLDING_STATUSES)


def free_slot(group: ParticipantGroup) -> int:
    """The smallest design slot of ``group`` that no holding session uses."""
    # Unordered: the default ordering (by study, then start) would join the study table and sort for a set.
    taken = set(held_participants(group).exclude(slot=None).order_by().values_list("slot", flat=True))
    slot = 0
    while slot in taken:
        slot += 1
    return slot


def group_fill(groups: list[ParticipantGroup]) -> dict[int, int]:
    """Held places per group id (sessions in progress count, expired ones and previews do not)."""
    counts = (
        Participant.objects.counted().filter(group__in=groups, status__in=HOLDING_STATUSES)
        .order_by().values("group")
        .annotate(n=Count("id"))
    )
    fill = {g.pk: 0 for g in groups}
    fill.update({row["group"]: row["n"] for row in counts})
    return fill


def choose_group(groups: list[ParticipantGroup]) -> ParticipantGroup | None:
    """The least-filled eligible group with room left (relative to its quota), or None."""
    fill = group_fill(groups)
    open_groups = [g for g in groups if fill[g.pk] < g.quota]
    if not open_groups:
        return None
    return min(open_groups, key=lambda g: (fill[g.pk] / max(g.quota, 1), fill[g.pk], g.pk))


def _attention_count() -> int:
    return int(getattr(settings, "STYLESTUDY_ATTENTION_CHECKS", 2))


# No savepoint of its own: inside an enclosing transaction (a background submission) a failure
# rolls that back anyway, and two statements per arrival are saved.
@transaction.atomic(savepoint=False)
def build_trials(participant: Participant, plans: list[QuestionPlan], *, candidates: list[Candidate] | None = None
                 ) -> list[Trial]:
    """Create the participant's practice trial, balanced trials and attention checks (two INSERTs).

    Trials come in question blocks (shuffled inside each block); attention
    checks are placed at random positions after the first real trial. Item
    order inside a trial (2AFC sides, ranking start order) is randomised.
    """
    rng = random.Random()  # presentation order only; the design itself is seeded
    blocks = []
    for plan in plans:
        units = plan.units_for_slot(participant.slot or 0)
        rng.shuffle(units)
        blocks.append([(plan.question, u) for u in units])
    main = [t for block in blocks for t in block]

    if candidates is None:
        candidates = list(Candidate.objects.filter(study=participant.study).only("id", "content_id"))
    checks = _attention_specs(participant.study, plans, {c.id: c for c in candidates}, rng)
    for spec in checks:
        main.insert(rng.randint(1, len(main)) if main else 0, spec)

    specs: list[tuple[Trial, list[TrialItem]]] = []
    if plans:
        first = plans[0]
        practice_unit = rng.choice(first.sequence)
        specs.append(_trial_spec(participant, 0, first.question, practice_unit, rng, practice=True))
    for position, entry in enumerate(main, start=len(specs)):
        if isinstance(entry, dict):
            specs.append(_attention_trial_spec(participant, position, entry, rng))
        else:
            question, unit = entry
            specs.append(_trial_spec(participant, position, question, unit, rng))
    trials = Trial.objects.bulk_create([trial for trial, _items in specs])
    items = []
    for trial, trial_items in specs:
        for item in trial_items:
            item.trial = trial
            items.append(item)
    TrialItem.objects.bulk_create(items)
    return trials


def _trial_spec(participant, position, question, unit: Unit, rng, *, practice=False):
    trial = Trial(participant=participant, question=question, position=position, is_practice=practice)
    if question.is_adaptive and not practice:
        return trial, []  # the pair is chosen when the participant reaches it (adaptive_pairs)
    ids = list(unit.candidate_ids)
    rng.shuffle(ids)
    return trial, [TrialItem(slot=i, candidate_id=cid) for i, cid in enumerate(ids)]


def _attention_specs(study, plans, candidates, rng) -> list[dict]:
    n = _attention_count()
    if n <= 0 or not plans:
        return []
    content_ids = sorted({c.content_id for c in candidates.values()})
    likert = next((p.question for p in plans if p.question.kind == Question.Kind.LIKERT), None)
    afc = next((p.question for p in plans if p.question.kind == Question.Kind.TWO_AFC), None)
    specs = []
    for i in range(n):
        if i % 2 == 0 and content_ids:
            specs.append({"kind": Trial.AttentionKind.SCRAMBLED, "question": afc or plans[0].question,
                          "content": rng.choice(content_ids), "seed": rng.randrange(SCRAMBLE_VARIANTS)})
        else:
            question = likert or plans[0].question
            points = question.scale_points if question.kind == Question.Kind.LIKERT else 5
            specs.append({"kind": Trial.AttentionKind.INSTRUCTED, "question": question,
                          "value": rng.randint(1, max(points, 2))})
    return specs


def _attention_trial_spec(participant, position, spec, rng):
    if spec["kind"] == Trial.AttentionKind.SCRAMBLED:
        intact_slot = rng.randrange(2)
        trial = Trial(
            participant=participant, question=spec["question"], position=position,
            attention_kind=spec["kind"], expected={"choice": intact_slot},
        )
        names = {intact_slot: f"content:{spec['content']}",
                 1 - intact_slot: f"scrambled:{spec['content']}:{spec['seed']}"}
        return trial, [TrialItem(slot=s, attention_image=names[s]) for s in (0, 1)]
    trial = Trial(
        participant=participant, question=spec["question"], position=position,
        attention_kind=spec["kind"], expected={"value": spec["value"]},
    )
    return trial, []


def abandoned_hold_minutes() -> int:
    """Minutes after which a place taken by a session that answered nothing yet is given back."""
    return int(getattr(settings, "STYLESTUDY_ABANDONED_HOLD_MINUTES", 10))


def expire_abandoned_holds(*, groups: list[ParticipantGroup] | None = None, now: datetime | None = None) -> int:
    """Give back the group places of sessions that took one and never answered a trial.

    A session holds a place from its background submission on; one silent for
    :func:`abandoned_hold_minutes` without a single answer (a bot, a closed
    tab) is expired long before the study's session timeout.

    Returns:
        The number of sessions expired.
    """
    now = now or timezone.now()
    abandoned = Participant.objects.filter(
        status=Participant.Status.IN_PROGRESS, completed_at=None, group__isnull=False,
        last_seen_at__lt=now - timedelta(minutes=abandoned_hold_minutes()),
    ).exclude(Exists(Response.objects.filter(trial__participant=OuterRef("pk"))))
    if groups is not None:
        abandoned = abandoned.filter(group__in=groups)
    return abandoned.update(status=Participant.Status.EXPIRED)


def expire_stale_sessions(
    *, study: Study | None = None, groups: list[ParticipantGroup] | None = None, now: datetime | None = None
) -> int:
    """Expire unfinished sessions idle for longer than their study's timeout, and abandoned holds.

    Their design slot and quota place go to the next arrival. Meant to run
    periodically, and lazily when an arrival finds its groups full (then only
    for those ``groups``).

    Returns:
        The number of sessions expired.
    """
    now = now or timezone.now()
    expired = expire_abandoned_holds(groups=groups, now=now)
    active = Participant.objects.filter(
        status__in=(Participant.Status.CONSENTED, Participant.Status.IN_PROGRESS), completed_at=None
    )
    if study is not None:
        active = active.filter(study=study)
    if groups is not None:
        active = active.filter(group__in=groups)
    # Cheap pre-filter on the shortest timeout in use, then the exact per-study cutoff.
    shortest = Study.objects.order_by("session_timeout_minutes").values_list("session_timeout_minutes", flat=True)
    if study is not None:
        shortest = shortest.filter(pk=study.pk)
    minutes = shortest.first()
    if minutes is None:
        return expired
    candidates = active.filter(last_seen_at__lt=now - timedelta(minutes=minutes)).values_list(
        "pk", "last_seen_at", "study__session_timeout_minutes"
    )
    stale = [pk for pk, seen, timeout in candidates if seen < now - timedelta(minutes=timeout)]
    if not stale:
        return expired
    # Status re-checked in the UPDATE: a session answering right now is not expired.
    return expired + Participant.objects.filter(
        pk__in=stale,
        status__in=(Participant.Status.CONSENTED, Participant.Status.IN_PROGRESS),
        last_seen_at__lt=now - timedelta(minutes=minutes),
    ).update(status=Participant.Status.EXPIRED)


def candidate_counts(group: ParticipantGroup, *, statuses=("completed",)) -> dict[tuple[int, tuple[int, ...]], int]:
    """How often each unit (question id, candidate ids) was shown to ``group`` in real trials.

    Practice trials and attention checks are not counted.
    """
    items = (
        TrialItem.objects.filter(
            trial__participant__group=group,
            trial__participant__status__in=statuses,
            trial__participant__is_preview=False,
            trial__is_practice=False,
            trial__attention_kind="",
        )
        .values("trial_id", "trial__question_id", "candidate_id")
    )
    per_trial: dict[int, tuple[int, list[int]]] = {}
    for row in items:
        per_trial.setdefault(row["trial_id"], (row["trial__question_id"], []))[1].append(row["candidate_id"])
    counts: dict[tuple[int, tuple[int, ...]], int] = defaultdict(int)
    for question_id, ids in per_trial.values():
        counts[(question_id, tuple(sorted(ids)))] += 1
    return dict(counts)


__all__ = [
    "QuestionPlan",
    "Unit",
    "balanced_sequence",
    "build_trials",
    "candidate_counts",
    "abandoned_hold_minutes",
    "choose_group",
    "expire_abandoned_holds",
    "expire_stale_sessions",
    "free_slot",
    "plan_questions",
    "question_units",
]
