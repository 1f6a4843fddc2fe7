"""Checks that decide whether inference is possible, with the warning that says why not.

Below the minimums the report gives descriptive statistics only: an interval
computed from three participants or six candidates is narrower than the
truth is uncertain, however it is computed. Every other problem the data may
have (constant or missing metric values, straight-lining, tied ranks, rows
without a score) is kept in the analysis or dropped as stated, never silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .minimums import DesignMinimums


@dataclass(frozen=True)
class Shortfall:
    """One minimum of :class:`DesignMinimums` that a question x group falls short of.

    Attributes:
        what: ``participants``, ``candidates`` or ``ratings_per_candidate``.
        value: What the data have.
        minimum: What the minimum is.
    """

    what: str
    value: int | float
    minimum: int | float

    def reason(self) -> str:
        """Why inference stops, as the analysis's warning says it."""
        if self.what == "participants":
            return f"{self.value} participant(s), fewer than the minimum of {self.minimum}"
        if self.what == "candidates":
            return f"{self.value} candidate(s) rated, fewer than the minimum of {self.minimum}"
        return (f"{self.value:.1f} ratings per candidate, fewer than the minimum "
                f"of {self.minimum:g}")

    def needed(self) -> str:
        """What is missing, in the report's words."""
        if self.what == "participants":
            return (f"{self.minimum - self.value} more participant(s) "
                    f"({self.value} of {self.minimum})")
        if self.what == "candidates":
            return (f"{self.minimum - self.value} more rated candidate(s) "
                    f"({self.value} of {self.minimum})")
        return (f"more ratings per candidate (mean {self.value:.1f}, "
                f"minimum {self.minimum:g})")


def design_counts(scored: pd.DataFrame, minimums: DesignMinimums) -> pd.DataFrame:
    """Counts per question x group of scored rows and the minimums they fall short of.

    Args:
        scored: Rows with a candidate and a score (one row per rating).
        minimums: The thresholds.

    Returns:
        One row per ``question_id, group`` (sorted): ``n_participants,
        n_candidates, n_ratings, ratings_per_candidate`` and ``shortfalls``
        (a list of :class:`Shortfall`, empty when inference may run).
    """
    counts = scored.groupby(["question_id", "group"], sort=True, observed=True).agg(
        n_participants=("participant_id", "nunique"), n_candidates=("candidate_id", "nunique"),
        n_ratings=("candidate_id", "size")).reset_index()
    counts["ratings_per_candidate"] = counts["n_ratings"] / counts["n_candidates"]
    limits = (("participants", "n_participants", minimums.min_participants),
              ("candidates", "n_candidates", minimums.min_candidates),
              ("ratings_per_candidate", "ratings_per_candidate",
               minimums.min_ratings_per_candidate))
    counts["shortfalls"] = [
        [Shortfall(what, row[column].item() if hasattr(row[column], "item") else row[column],
                   minimum)
         for what, column, minimum in limits if row[column] < minimum]
        for row in counts.to_dict("records")
    ]
    return counts


@dataclass(frozen=True)
class Labels:
    """How the warnings name questions, groups and metrics.

    By default as stored (``question 4``, ``group west``, ``metric__ssim``); a
    report passes the names its reader sees (``Q1``, ``western participants``,
    ``SSIM``).
    """

    question: Callable[[object], str] = lambda q: f"question {q}"
    group: Callable[[object], str] = lambda g: f"group {g}"
    metric: Callable[[str], str] = str


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
    labels: Labels | None = None,
) -> GuardResult:
    """Run every check on the scored rows of a tidy frame (after exclusions).

    Args:
        frame: Tidy rows after exclusions (unscored rows included: they are
            counted and reported as dropped).
        metrics: Metric columns.
        minimums: Thresholds; defaults to :class:`DesignMinimums()`.
        n_rows_total: Rows after exclusions, for the dropped-rows message
            (default ``len(frame)``).
        labels: How the warnings name questions, groups and metrics; default
            :class:`Labels()` (ids and columns as stored).

    Returns:
        A :class:`GuardResult`.
    """
    limits = minimums or DesignMinimums()
    names = labels or Labels()
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
    counts = design_counts(scored, limits)
    moments = scored.groupby(["question_id", "group"], sort=True, observed=True)["score"].agg(
        ["mean", "std"])
    for row in counts.itertuples(index=False):
        q, g = row.question_id, row.group
        for shortfall in row.shortfalls:
            warnings.append(f"{names.question(q)}, {names.group(g)}: {shortfall.reason()}; "
                            "descriptive statistics only")
        if not row.shortfalls:
            eligible.add((q, g))
        rows.append({"question": q, "group": g, "n_participants": int(row.n_participants),
                     "n_candidates": int(row.n_candidates), "n_ratings": int(row.n_ratings),
                     "mean_score": float(moments.loc[(q, g), "mean"]),
                     "sd_score": float(moments.loc[(q, g), "std"]),
                     "inference": not row.shortfalls})
    skipped = set()
    for q, part in scored.groupby("question_id", sort=True, observed=True):
        per_candidate = part.groupby("candidate_id", observed=True)[metrics].first()
        for metric in metrics:
            values = per_candidate[metric]
            missing = values.isna()
            if missing.any():
                n_rows = int(part[metric].isna().sum())
                warnings.append(
                    f"metric {names.metric(metric)} is missing for {n_rows} of {len(part)} "
                    f"scored rows ({int(missing.sum())} candidate(s)) in {names.question(q)}: "
                    "those candidates "
                    "are left out of its correlations")
            present = values.dropna()
            if len(present) and present.nunique() == 1:
                skipped.add((q, metric))
                warnings.append(
                    f"metric {names.metric(metric)} is constant over the {len(present)} "
                    f"candidates of {names.question(q)}: its correlations are not computed")
        if (part["question_kind"] == "likert").all():
            ratings = part.groupby("participant_id")["score"].agg(["nunique", "size"])
            flat = ratings[(ratings["size"] >= limits.straight_lining_min_ratings)
                           & (ratings["nunique"] == 1)]
            if len(flat):
                warnings.append(
                    f"{names.question(q)}: {len(flat)} participant(s) gave the same rating to all of "
                    f"their {limits.straight_lining_min_ratings} or more ratings "
                    "(straight-lining); they are analysed; add an exclusion rule to drop them")
        ranking = part[part["question_kind"] == "ranking"]
        if len(ranking) and "rank" in ranking.columns:
            tied = ranking.groupby("response_id")["rank"].agg(
                lambda r: r.dropna().duplicated().any())
            if tied.any():
                warnings.append(
                    f"{names.question(q)}: {int(tied.sum())} ranking response(s) contain tied ranks; "
                    "tied items share their score and those responses are left out of the "
                    "Plackett-Luce fit")
    descriptive = pd.DataFrame(rows)
    return GuardResult(eligible, descriptive, skipped, warnings)


def tied_ranking_responses(frame: pd.DataFrame) -> np.ndarray:
    """Response ids of ranking responses with tied ranks."""
    ranking = frame[frame["question_kind"] == "ranking"]
    if not len(ranking):
        return np.array([])
    # A plain bool per response: on the database frame's nullable Int64 ranks ``agg`` returns
    # integers, which as a mask would be read as row labels.
    tied = ranking.groupby("response_id")["rank"].agg(lambda r: bool(r.dropna().duplicated().any())).astype(bool)
    return tied.index[tied.to_numpy()].to_numpy()
