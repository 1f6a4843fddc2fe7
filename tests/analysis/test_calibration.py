"""Reduced calibration suite (the full one is ``bench/calibration.py``): simulated
studies with known truths, crossed participants x candidates, group-specific tastes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from studies.analysis.correlation import crossed_agreement
from studies.analysis.mixed import study_mixed_model
from studies.analysis.simulate import simulate_study, study_truth

GROUPS = {"western": "western-oil", "chinese": "chinese-ink"}
CROSSED = dict(own_culture=GROUPS, taste_correlation=0.0, candidate_sd=0.3, content_sd=0.3,
               style_sd=0.3, candidate_group_sd=0.3)


def _many_studies(n: int, **spec) -> pd.DataFrame:
    """``n`` independent small studies as the questions of one frame (own candidates each)."""
    frames = []
    for i in range(n):
        frame = simulate_study(**CROSSED, **spec, n_contents=4, n_styles_per_culture=2,
                               n_participants=12, likert_trials=24, rng=500 + i)
        frames.append(frame.assign(question_id=i, candidate_id=frame["candidate_id"] + 1000 * i,
                                   participant_id=frame["participant_id"] + 1000 * i))
    return pd.concat(frames, ignore_index=True)


def test_agreement_intervals_and_group_test_are_calibrated_under_the_null():
    """No metric tracks any taste and each group has its own taste: the crossed
    intervals cover 0 in about 95% of 2 x 2 x 60 intervals, and the group-difference
    test rejects in at most about 5% of 120 tests. The participant-only bootstrap
    of the old report, on the same data, covers far less (images treated as fixed)."""
    frame = _many_studies(60, weights={"western": 0.0, "chinese": 0.0})
    metrics = ["metric__tracked", "metric__noise"]
    agree, diffs = crossed_agreement(frame, metrics, correlations=("pearson",),
                                     compare="pearson", n_resamples=300, rng=0)
    covered = (agree.table["ci_low"] <= 0) & (0 <= agree.table["ci_high"])
    assert len(covered) == 240
    assert 0.90 <= covered.mean() <= 0.99, covered.mean()
    rejected = (diffs.table["p"] < 0.05).mean()
    assert len(diffs.table) == 120 and rejected <= 0.09, rejected
    fixed = crossed_agreement(frame, metrics, correlations=("pearson",), compare=None,
                              n_resamples=300, resample="participants", rng=0)[0]
    fixed_covered = ((fixed.table["ci_low"] <= 0) & (0 <= fixed.table["ci_high"])).mean()
    assert fixed_covered < 0.75, fixed_covered


def test_mixed_model_contrasts_keep_their_level_with_no_method_effect():
    """No method effect and no in-group effect planted: method contrasts (Satterthwaite
    t) reject in about 5% of 3 x 16 tests and their intervals cover 0; a model without
    the candidate effects (participant and content only) rejects far more often."""
    rejected, covered, naive = [], [], []
    for seed in range(16):
        frame = simulate_study(weights={"western": 0.5, "chinese": 0.5}, **CROSSED,
                               n_contents=4, n_styles_per_culture=2, n_participants=12,
                               likert_trials=24, rng=900 + seed)
        model = study_mixed_model(frame, ordinal_check=False)
        for contrast in model.contrasts.values():
            if contrast.family == "method":
                low, high = contrast.confidence_interval()
                rejected.append(contrast.pvalue < 0.05)
                covered.append(low <= 0 <= high)
        old = study_mixed_model(frame.drop(columns=["candidate_id", "style_id"]),
                                ordinal_check=False)
        naive += [c.pvalue < 0.05 for c in old.contrasts.values() if c.family == "method"]
    assert len(rejected) == 48
    assert np.mean(rejected) <= 0.125, np.mean(rejected)
    assert np.mean(covered) >= 0.875
    assert np.mean(naive) > np.mean(rejected) + 0.1, (np.mean(naive), np.mean(rejected))


def test_marginal_means_cover_the_population_means():
    """Method and in-group effects planted: the estimated marginal means of each method
    (over groups and within each group) cover the expected rating over the population
    of candidates, contents, styles and participants in about 95% of 12 x 9 intervals
    (correlated within a study, hence the wide band)."""
    spec = dict(weights={"western": 0.5, "chinese": 0.5}, **CROSSED, in_group_effect=0.4,
                method_effects=(0.0, 0.3, -0.3))
    cells = study_truth(**spec, n_population=100_000)["cells"]
    truth = {(m, None): v for m, v in cells.groupby(level="method").mean().items()}
    truth |= dict(cells.groupby(level=["method", "group"]).mean().items())
    covered = []
    for seed in range(12):
        frame = simulate_study(**spec, n_contents=4, n_styles_per_culture=2, n_participants=12,
                               likert_trials=24, rng=700 + seed)
        for mean in study_mixed_model(frame, ordinal_check=False).marginal_means:
            if mean.factor == "method":
                low, high = mean.confidence_interval()
                covered.append(low <= truth[(mean.level, mean.group)] <= high)
    assert len(covered) == 12 * 9
    assert 0.88 <= np.mean(covered) <= 0.995, np.mean(covered)


def test_each_agreement_interval_covers_its_own_estimand():
    """The metric tracks the western group's taste (w = 0.8). The uncorrected intervals
    (Pearson and Spearman, 2 x 50 studies) cover the correlation with the mean of k
    ratings (k = the study's harmonic mean of ratings per candidate, about 3 here) in
    about 95% of cases, and the correlation with the expected rating far less often,
    since rater noise attenuates it; the disattenuated intervals cover the latter."""
    grid = np.arange(2.0, 8.01, 0.25)
    truth = study_truth(weights={"western": 0.8, "chinese": 0.0}, **CROSSED,
                        ratings_per_candidate=grid, n_population=100_000)
    frame = _many_studies(50, weights={"western": 0.8, "chinese": 0.0})
    agree = crossed_agreement(frame, ["metric__tracked"], correlations=("pearson", "spearman"),
                              compare=None, n_resamples=300, rng=2)[0]
    rows = agree.table.xs(("western", "metric__tracked"), level=("group", "metric"))
    assert len(rows) == 100 and rows["ratings_per_candidate"].between(2.0, 6.0).all()
    at_k, expected = [], []
    for (_, kind), row in rows.iterrows():
        curve = [truth["agreement_at_k"][("western", "metric__tracked", kind, k)] for k in grid]
        at_k.append(np.interp(row["ratings_per_candidate"], grid, curve))
        source = truth["agreement"] if kind == "pearson" else truth["spearman"]
        expected.append(source[("western", "metric__tracked")])
    at_k, expected = np.array(at_k), np.array(expected)
    assert (at_k < expected - 0.05).all()  # attenuated by rater noise
    low, high = rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy()
    own = np.mean((low <= at_k) & (at_k <= high))
    other = np.mean((low <= expected) & (expected <= high))
    dis = np.mean((rows["disattenuated_low"] <= expected) & (expected <= rows["disattenuated_high"]))
    assert 0.89 <= own <= 0.995, own
    assert 0.89 <= dis <= 0.995, dis
    assert other < own - 0.1, (other, own)
