"""Checks that decide whether inference is possible, with the warning that says why not.

Below the minimums the report gives descriptive statistics only: an interval
computed from three participants or six candidates is narrower than the
truth is uncertain, however it is computed. Every other problem the data may
have (constant or missing metric values, straight-lining, tied ranks, rows
without a score) is kept in the analysis or dropped as stated, never silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class DesignMinimums:
    """Per group and question, the least data inference is attempted on.

    Attributes:
        min_participants: Participants. The participant bootstrap has only
            ``C(2n-1, n)`` distinct resamples (126 for n = 5), and a variance
            component estimated from fewer levels is mostly noise.
        min_candidates: Distinct candidates rated: the unit of the
            correlations; below ten a correlation's interval spans most of
            ``[-1, 1]`` and the candidate bootstrap is coarse.
        min_ratings_per_candidate: Mean ratings per candidate; at least two
            so that most candidates have two or more raters, as the noise ceiling
            (split halves of the raters) needs.
        straight_lining_min_ratings: A participant with at least this many
            ratings in a question, all identical, is reported as straight-lining.
    """

    min_participants: int = 5
    min_candidates: int = 10
    min_ratings_per_candidate: float = 1.5
    straight_lining_min_ratings: int = 5


@dataclass
class GuardResult:
    """What the checks found.

    Attributes:
        eligible: ``(question, group)`` pairs with enough data for inference.
        descriptive: One row per ``question, group`` with counts, mean and SD of
            the scores and whether inference ran (``inference``).
        skipped_metrics: ``(question, metric)`` pairs whose correlations are not
            computed (constant metric).
        warnings: Human-readable warnings, one per finding.
    """

    eligible: set[tuple[object, object]]
    descriptive: pd.DataFrame
    skipped_metrics: set[tuple[object, str]] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


def check_study(
    frame: pd.DataFrame,
    metrics: list[str],
    *,
    minimums: DesignMinimums | None = None,
    n_rows_total: int | None = None,
) -> GuardResult:
    """Run every check on the scored rows of a tidy frame (after exclusions).

    Args:
        frame: Tidy rows after exclusions (unscored rows included: they are
            counted and reported as dropped).
        metrics: Metric columns.
        minimums: Thresholds; defaults to :class:`DesignMinimums()`.
        n_rows_total: Rows after exclusions, for the dropped-rows message
            (default ``len(frame)``).

    Returns:
        A :class:`GuardResult`.
    """
    limits = minimums or DesignMinimums()
    warnings: list[str] = []
    total = len(frame) if n_rows_total is None else n_rows_total
    usable = frame["candidate_id"].notna() & frame["score"].notna()
    dropped = int((~usable).sum())
    if dropped:
        warnings.append(
            f"{dropped} of {total} rows after exclusions have no score or no candidate "
            "and are not analysed")
    scored = frame[usable]
    rows, eligible = [], set()
    for (q, g), part in scored.groupby(["question_id", "group"], sort=True, observed=True):
        n_p = part["participant_id"].nunique()
        n_c = part["candidate_id"].nunique()
        per_candidate = len(part) / n_c if n_c else 0.0
        reasons = []
        if n_p < limits.min_participants:
            reasons.append(f"{n_p} participant(s), fewer than the minimum of "
                           f"{limits.min_participants}")
        if n_c < limits.min_candidates:
            reasons.append(f"{n_c} candidate(s) rated, fewer than the minimum of "
                           f"{limits.min_candidates}")
        if per_candidate < limits.min_ratings_per_candidate:
            reasons.append(f"{per_candidate:.1f} ratings per candidate, fewer than the minimum "
                           f"of {limits.min_ratings_per_candidate:g}")
        for reason in reasons:
            warnings.append(f"question {q}, group {g}: {reason}; descriptive statistics only")
        if not reasons:
            eligible.add((q, g))
        rows.append({"question": q, "group": g, "n_participants": n_p, "n_candidates": n_c,
                     "n_ratings": len(part), "mean_score": float(part["score"].mean()),
                     "sd_score": float(part["score"].std()), "inference": not reasons})
    skipped = set()
    for q, part in scored.groupby("question_id", sort=True, observed=True):
        per_candidate = part.groupby("candidate_id", observed=True)[metrics].first()
        for metric in metrics:
            values = per_candidate[metric]
            missing = values.isna()
            if missing.any():
                n_rows = int(part[metric].isna().sum())
                warnings.append(
                    f"metric {metric} is missing for {n_rows} of {len(part)} scored rows "
                    f"({int(missing.sum())} candidate(s)) in question {q}: those candidates "
                    "are left out of its correlations")
            present = values.dropna()
            if len(present) and present.nunique() == 1:
                skipped.add((q, metric))
                warnings.append(
                    f"metric {metric} is constant over the {len(present)} candidates of "
                    f"question {q}: its correlations are not computed")
        if (part["question_kind"] == "likert").all():
            ratings = part.groupby("participant_id")["score"].agg(["nunique", "size"])
            flat = ratings[(ratings["size"] >= limits.straight_lining_min_ratings)
                           & (ratings["nunique"] == 1)]
            if len(flat):
                warnings.append(
                    f"question {q}: {len(flat)} participant(s) gave the same rating to all of "
                    f"their {limits.straight_lining_min_ratings} or more ratings "
                    "(straight-lining); they are analysed; add an exclusion rule to drop them")
        ranking = part[part["question_kind"] == "ranking"]
        if len(ranking) and "rank" in ranking.columns:
            tied = ranking.groupby("response_id")["rank"].agg(
                lambda r: r.dropna().duplicated().any())
            if tied.any():
                warnings.append(
                    f"question {q}: {int(tied.sum())} ranking response(s) contain tied ranks; "
                    "tied items share their score and those responses are left out of the "
                    "Plackett-Luce fit")
    descriptive = pd.DataFrame(rows)
    return GuardResult(eligible, descriptive, skipped, warnings)


def tied_ranking_responses(frame: pd.DataFrame) -> np.ndarray:
    """Response ids of ranking responses with tied ranks."""
    ranking = frame[frame["question_kind"] == "ranking"]
    if not len(ranking):
        return np.array([])
    tied = ranking.groupby("response_id")["rank"].agg(lambda r: r.dropna().duplicated().any())
    return tied[tied].index.to_numpy()
