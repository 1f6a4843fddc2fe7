"""Adaptive 2AFC: the next pair is chosen when the participant reaches the trial.

A question with ``pair_design = adaptive`` gets its trials built at background
submission like any other, but without items. When the participant reaches
such a trial, :func:`do_assign_pair` chooses the pair from the group's answers
so far with :func:`studies.analysis.design.choose_pair` and stores it, with
why it was chosen (``Trial.pair_selection``: to reach the minimum showings,
or as the most informative pair; reports count both). The
group's posterior is kept in the cache and refitted once enough new answers
arrived (a batched update); until then the newer answers and the pairs on
other participants' screens count as pending, so concurrent arrivals spread
over pairs. A stale posterior only costs a little efficiency: every answer is
stored once in the database, which stays the only record.

Rules kept (see ``choose_pair``): a pair is never shown twice to one
participant (the practice pair only if nothing else is left), nor a content
twice while unseen ones remain; every candidate is shown
``Question.min_exposure`` times in the group before information decides;
left/right order is random; attention checks are placed as before.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from django.core.cache import cache
from django.db import IntegrityError, transaction

from .analysis import design
from .assignment import _done_candidates, question_units
from .models import Participant, Question, Trial, TrialItem

#: Answers between two refits of a group's posterior: at least this many …
MIN_REFIT_BATCH = 5
#: … or this share of the number of candidates (refitting 200 candidates takes 3-30 ms; refitting
#: every n/16 instead of n/4 answers saves up to 4 % of the comparisons, bench/README.md).
REFIT_BATCH_PER_CANDIDATE = 1 / 16
#: Statuses whose unanswered trials are on someone's screen (in flight).
ACTIVE_STATUSES = (Participant.Status.CONSENTED, Participant.Status.IN_PROGRESS)


def is_adaptive_trial(trial: Trial) -> bool:
    """Whether ``trial`` shows a pair chosen adaptively (its question loaded; no query)."""
    return trial.question.is_adaptive and not trial.attention_kind and not trial.is_practice


def _cache_key(group_id: int, question_id: int) -> str:
    return f"stylestudy:adaptive-pairs:{group_id}:{question_id}"


def _posterior(group_id, question_id, candidate_ids, winners, losers, answered_per_pair):
    """The group's cached posterior, refitted when enough new answers arrived.

    Returns:
        ``(posterior, answered_per_pair at fit time)``.
    """
    key = _cache_key(group_id, question_id)
    cached = cache.get(key)
    batch = max(MIN_REFIT_BATCH, int(REFIT_BATCH_PER_CANDIDATE * len(candidate_ids)))
    if (
        cached is not None
        and cached["candidate_ids"] == candidate_ids
        and len(winners) - cached["posterior"].n_comparisons < batch
    ):
        return cached["posterior"], cached["answered"]
    start = cached["posterior"] if cached is not None and cached["candidate_ids"] == candidate_ids else None
    posterior = design.fit_posterior(len(candidate_ids), np.asarray(winners), np.asarray(losers), start=start)
    cache.set(key, {"candidate_ids": candidate_ids, "posterior": posterior, "answered": answered_per_pair},
              timeout=24 * 3600)
    return posterior, answered_per_pair


class ChosenPair(NamedTuple):
    """An adaptive trial's pair and why it was chosen (a ``Trial.PairSelection`` value)."""

    left: int
    right: int
    selection: str


def choose_next_pair(trial: Trial, *, rng: np.random.Generator | None = None) -> ChosenPair | None:
    """The pair of candidate ids for ``trial``'s participant, or None if no pair is left."""
    participant = trial.participant
    question: Question = trial.question
    candidates = _done_candidates(participant.study)
    units = question_units(question, candidates)
    if not units:
        return None
    candidate_ids = tuple(sorted({cid for u in units for cid in u.candidate_ids}))
    index = {cid: i for i, cid in enumerate(candidate_ids)}
    pairs = np.array([[index[a], index[b]] for a, b in (u.candidate_ids for u in units)], dtype=np.int64)
    pair_of = {(int(a), int(b)): k for k, (a, b) in enumerate(pairs)}
    contents = np.array([u.content_id for u in units])

    rows = TrialItem.objects.filter(
        trial__participant__group_id=participant.group_id,
        trial__question=question,
        trial__attention_kind="",
        candidate__isnull=False,
    ).values_list(
        "trial_id", "candidate_id", "trial__participant_id", "trial__participant__status",
        "trial__is_practice", "trial__response__id", "trial__response__choice__candidate_id",
    )
    trials: dict[int, dict] = {}
    for trial_id, cid, pid, status, practice, response_id, winner in rows:
        entry = trials.setdefault(trial_id, {"ids": [], "pid": pid, "status": status, "practice": practice,
                                             "answered": response_id is not None, "winner": winner})
        entry["ids"].append(cid)

    m = len(pairs)
    exposure = np.zeros(len(candidate_ids))
    counts = np.zeros(m)
    answered = np.zeros(m)
    in_flight = np.zeros(m)
    exclude = np.zeros(m, dtype=bool)
    practice_pair = np.zeros(m, dtype=bool)
    winners, losers = [], []
    seen_contents = set()
    for entry in trials.values():
        ids = [index.get(cid) for cid in entry["ids"]]
        if len(ids) != 2 or None in ids:
            continue
        k = pair_of.get((min(ids), max(ids)))
        if k is None:
            continue
        if entry["pid"] == participant.pk:
            seen_contents.add(contents[k])
            (practice_pair if entry["practice"] else exclude)[k] = True
        if entry["practice"]:
            continue
        if entry["answered"] and entry["status"] != Participant.Status.EXCLUDED and entry["winner"] is not None:
            winner = index[entry["winner"]]
            winners.append(winner)
            losers.append(ids[0] if ids[1] == winner else ids[1])
            answered[k] += 1
        elif not entry["answered"] and entry["status"] in ACTIVE_STATUSES:
            in_flight[k] += 1
        else:
            continue
        counts[k] += 1
        exposure[ids] += 1
    avoid = np.isin(contents, list(seen_contents))

    posterior, answered_at_fit = _posterior(
        participant.group_id, question.pk, candidate_ids, winners, losers, answered
    )
    pending = in_flight + np.clip(answered - np.asarray(answered_at_fit), 0, None)
    options = dict(allowed=pairs, exposure=exposure, min_exposure=question.min_exposure,
                   pending=pending, counts=counts, rng=rng)
    # Strict first; then the practice pair, then any pair again, rather than no trial at all
    # (only when the design has fewer pairs than the participant has trials).
    chosen = (
        design.choose_pair(posterior, exclude=exclude | practice_pair, avoid=avoid, **options)
        or design.choose_pair(posterior, exclude=exclude, avoid=avoid | practice_pair, **options)
        or design.choose_pair(posterior, avoid=avoid | practice_pair | exclude, **options)
    )
    if chosen is None:
        return None
    # choose_pair keeps to pairs of least-shown candidates while any is below the minimum, so
    # the chosen pair itself tells which rule picked it.
    below_minimum = exposure[list(chosen)].min() < question.min_exposure
    selection = Trial.PairSelection.EXPOSURE if below_minimum else Trial.PairSelection.INFORMATION
    return ChosenPair(candidate_ids[chosen[0]], candidate_ids[chosen[1]], selection)


def do_assign_pair(trial: Trial, *, rng: np.random.Generator | None = None) -> bool:
    """Choose and store the pair of an adaptive trial the participant has reached.

    Runs once per trial: under the participant's row lock, a trial that has
    its items already (another tab, a resent request) is left as it is. A
    participant who has seen every allowed pair gets one again rather than no
    trial (only when the design has fewer pairs than trials).

    Returns:
        True if this call stored the pair.
    """
    if TrialItem.objects.filter(trial_id=trial.pk).exists():
        return False  # the usual case on a reload: no lock taken
    try:
        with transaction.atomic():
            Participant.objects.select_for_update().filter(pk=trial.participant_id).first()
            if TrialItem.objects.filter(trial_id=trial.pk).exists():
                return False
            chosen = choose_next_pair(trial, rng=rng)
            if chosen is None:
                return False
            TrialItem.objects.bulk_create(
                TrialItem(trial_id=trial.pk, slot=slot, candidate_id=cid)
                for slot, cid in enumerate((chosen.left, chosen.right))
            )
            Trial.objects.filter(pk=trial.pk).update(pair_selection=chosen.selection)
            trial.pair_selection = chosen.selection
    except IntegrityError:
        return False  # a concurrent request stored this trial's pair first
    return True


__all__ = ["ChosenPair", "choose_next_pair", "do_assign_pair", "is_adaptive_trial"]
