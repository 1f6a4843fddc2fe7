"""Simulated studies with a known truth: the report finds a real difference, and
the between-group test keeps its nominal error rate when there is none."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from studies.analysis.correlation import compare_groups
from studies.analysis.simulate import likert_moments, simulate_study, study_truth
from studies.analysis.tidy import ExclusionRules, apply_exclusions
from studies.reports import ReportOptions, build_report
from studies.reports.wording import banner_lines, methods_paragraphs

GROUPS = {"western": "western-oil", "chinese": "chinese-ink"}


def test_report_finds_metric_tracking_one_group_only(tmp_path):
    """The metric tracks western participants' taste (w = 0.9) and not chinese (w = 0)."""
    frame = simulate_study(
        weights={"western": 0.9, "chinese": 0.0}, own_culture=GROUPS,
        n_participants=16, likert_trials=30, afc_trials=8, in_group_effect=0.5, rng=11,
    )
    result = build_report(frame, tmp_path, options=ReportOptions(n_resamples=200))
    results = json.loads((tmp_path / "results.json").read_text())
    agreement = pd.DataFrame(results["agreement"]).set_index(
        ["group", "question", "metric", "correlation"])
    western = agreement.loc[("western", 1, "metric__tracked", "spearman")]
    chinese = agreement.loc[("chinese", 1, "metric__tracked", "spearman")]
    assert western["ci_low"] > 0.3
    assert chinese["ci_low"] < 0.0 < chinese["ci_high"] or abs(chinese["statistic"]) < 0.25
    differences = pd.DataFrame(results["group_differences"]).set_index(["question", "metric"])
    tracked = differences.loc[(1, "metric__tracked")]
    assert tracked["p_adjusted"] < 0.05
    assert tracked["r_b"] > tracked["r_a"]  # group_b = western (sorted names)
    assert differences.loc[(1, "metric__noise"), "p_adjusted"] > 0.05
    in_group = results["mixed_models"][0]["contrasts"]["in_group"]
    assert in_group["ci_low"] < 0.5 < in_group["ci_high"] and in_group["pvalue"] < 0.01
    assert result.n_rows_analysed == result.n_rows  # simulated data has nothing to exclude
    assert {r["group"] for r in results["bradley_terry"]} == {"western", "chinese"}


def _null_studies(rng: np.random.Generator, reps: int, n_per_group: int, n_candidates: int,
                  trials: int) -> pd.DataFrame:
    """``reps`` independent small studies, one per ``question_id``, with no group difference:
    both groups' scores follow the same taste, half of which the metric tracks."""
    n_p = 2 * n_per_group
    rep = np.repeat(np.arange(reps), n_p * trials)
    participant = np.repeat(np.arange(reps * n_p), trials)
    group = np.where((participant % n_p) < n_per_group, "a", "b")
    local = rng.integers(n_candidates, size=participant.size)
    candidate = rep * n_candidates + local
    q = rng.normal(size=reps * n_candidates)
    u = rng.normal(size=reps * n_candidates)
    taste = 0.5 * q + np.sqrt(0.75) * u
    leniency = rng.normal(scale=0.5, size=reps * n_p)
    score = taste[candidate] + leniency[participant] + rng.normal(size=participant.size)
    metric = q + rng.normal(scale=0.3, size=q.size)
    return pd.DataFrame({
        "question_id": rep, "participant_id": participant, "group": group,
        "candidate_id": candidate, "score": score, "metric__m": metric[candidate],
    })


@pytest.fixture(scope="module")
def null_table() -> pd.DataFrame:
    """300 small null studies (see :func:`_null_studies`), one crossed-bootstrap call."""
    frame = _null_studies(np.random.default_rng(2024), 300, 6, 20, 20)
    return compare_groups(frame, ["metric__m"], n_resamples=99, rng=1).table


def test_null_false_positive_rate_is_at_most_nominal(null_table):
    """Both groups share one taste: p < .05 in at most about 5% of 300 simulated studies.

    Each study is small (6 participants per group, 20 candidates, 20 ratings each)
    and is a separate question of one frame, so one call tests them all; the
    crossed bootstrap uses 99 replicates. A binomial 99% range for
    300 draws at 5% is about 2%-9%.
    """
    assert len(null_table) == 300
    rate = float((null_table["p"] < 0.05).mean())
    fisher_rate = float((null_table["fisher_p"] < 0.05).mean())
    assert rate <= 0.09, rate
    # Fisher's test ignores that both correlations share the metric: conservative.
    assert fisher_rate <= 0.09, fisher_rate


@pytest.mark.xfail(strict=True, reason=(
    "known: with 6 participants per group and 20 candidates the crossed bootstrap test "
    "is conservative (0.3 % rejections for Spearman, 1.7 % for Pearson, instead of about "
    "5 %): the bootstrap SD of the difference exceeds its sampling SD by about 30 % "
    "(Spearman) and 10 % (Pearson), mostly from the floor max(V_cand, V_part) on the "
    "corrected variance 2 V_cand + 2 V_part - V_both, which binds in about 45 % of these "
    "studies; without the floor the estimate is unstable (8 % rejections). The "
    "participant permutation test it replaced held the 2 % lower bound but is invalid "
    "when groups' tastes differ"))
def test_null_false_positive_rate_is_not_conservative(null_table):
    rate = float((null_table["p"] < 0.05).mean())
    assert 0.02 <= rate, rate


def test_exclusions_are_recorded_not_silent():
    frame = simulate_study(n_participants=4, likert_trials=10, rng=0)
    frame.loc[frame["participant_id"] == 0, "participant_status"] = "expired"
    frame.loc[frame["participant_id"] == 1, "attention_failures"] = 3
    frame.loc[frame.index[50:53], "rt_ms"] = 100.0
    frame.loc[frame.index[60], "is_practice"] = True
    kept, log = apply_exclusions(frame, ExclusionRules(max_attention_failures=1, min_rt_ms=300))
    steps = log.steps.set_index("rule")["rows_removed"]
    assert steps["more than one failed attention check"] == 10
    assert steps["session not completed"] == 10
    assert steps["practice trial"] == 1
    assert steps["response faster than 300 ms"] == 3
    assert len(kept) == len(frame) - 24 == log.n_rows_out
    assert set(log.excluded_participants) == {0, 1}
    assert (log.reasons != "").sum() == 24
    with pytest.raises(KeyError):
        apply_exclusions(frame.drop(columns=["rt_ms"]))


def test_report_states_an_adaptive_pair_design(tmp_path):
    """The Bradley-Terry section says when a question's pairs were chosen adaptively, and why the
    estimates stay valid."""
    frame = simulate_study(
        weights={"western": 0.5, "chinese": 0.5}, own_culture=GROUPS,
        n_participants=6, likert_trials=4, afc_trials=8, rng=3,
    )
    is_afc = frame["question_kind"] == "2afc"
    afc = int(frame.loc[is_afc, "question_id"].iloc[0])
    # Why each pair was chosen, as the study records it: the first trials of each group spent on
    # showing every candidate, the rest by information; one trial's record missing.
    responses = frame.loc[is_afc].drop_duplicates("response_id")
    early = responses.groupby("group")["trial_position"].transform(lambda p: p < p.quantile(0.3))
    selection = np.where(early, "exposure", "information")
    selection[0] = ""
    frame.loc[is_afc, "pair_selection"] = frame.loc[is_afc, "response_id"].map(
        dict(zip(responses["response_id"], selection)))
    # Independently: comparisons that showed a participant a pair they had compared before.
    pairs = frame.loc[is_afc].groupby("response_id").agg(
        participant=("participant_id", "first"), pair=("candidate_id", lambda ids: frozenset(ids)))
    repeats = int(sum(n - 1 for n in Counter(zip(pairs["participant"], pairs["pair"])).values()))
    config = {"questions": [{"id": afc, "kind": "2afc", "pair_design": "adaptive", "min_exposure": 3}]}
    build_report(frame, tmp_path, config=config, options=ReportOptions(n_resamples=50))
    html = (tmp_path / "report.html").read_text()
    assert "Design: adaptive" in html and "shown 3 times" in html and "Rubin 1976" in html
    results = json.loads((tmp_path / "results.json").read_text())
    assert {r["pair_design"] for r in results["bradley_terry"]} == {"adaptive"}
    counted = {key: sum(r["pairs"][key] for r in results["bradley_terry"])
               for key in ("comparisons", "information", "exposure", "unrecorded", "repeated")}
    assert counted == {"comparisons": len(responses), "information": int((selection == "information").sum()),
                       "exposure": int((selection == "exposure").sum()), "unrecorded": 1, "repeated": repeats}
    assert (f"Of the {counted['comparisons']} analysed comparisons, {counted['information']} were chosen as "
            f"the most informative pair and {counted['exposure']} to show every candidate the minimum "
            "number of times (1 not recorded).") in html
    assert repeats and f"{repeats} comparisons showed a participant a pair they had already compared" in html
    # The participant bootstrap is not valid after an adaptive design: posterior intervals instead.
    assert {r["interval"] for r in results["bradley_terry"]} == {"posterior"}
    assert "posterior intervals" in html and "Chaudhuri &amp; Mykland 1993" in html


def test_small_adaptive_study_is_worded_as_the_reader_sees_it(tmp_path):
    """Too few participants for any interval: the Method still names the adaptive pair design
    (the Bradley-Terry table that carries its caption is left out), counts generated and rated
    candidates apart, leaves blank method parameters out; warnings name questions, groups and
    metrics as the report does and say why agreement was not estimated."""
    frame = simulate_study(weights={"western": 0.5, "chinese": 0.5}, own_culture=GROUPS,
                           n_participants=3, likert_trials=4, afc_trials=6, rng=3)
    frame["question_id"] = frame["question_id"].map({1: 4, 2: 5})  # database ids, not numbers
    frame = frame.rename(columns={"metric__tracked": "metric__lpips-alex"})
    frame.loc[frame["candidate_id"] == frame["candidate_id"].iloc[0], "metric__lpips-alex"] = np.nan
    rated = sorted(frame["candidate_id"].unique().tolist())
    config = {
        "study": {"trials_per_participant": 10},
        "participant_groups": [{"slug": "chinese", "name": "Chinese participants"},
                               {"slug": "western", "name": "western"}],
        "questions": [{"id": 4, "kind": "likert", "order": 1},
                      {"id": 5, "kind": "2afc", "order": 2, "pair_design": "adaptive",
                       "min_exposure": 3}],
        "methods": [{"label": m, "method": m, "params": {"alpha": 0.6, "levels": "",
                                                         "level_alphas": None}}
                    for m in sorted(frame["method"].unique())],
        "candidates": ([{"id": c, "status": "done"} for c in rated]
                       + [{"id": 10_000 + c, "status": "done"} for c in rated]
                       + [{"id": 20_000, "status": "failed"}]),
    }
    result = build_report(frame, tmp_path, config=config, options=ReportOptions(n_resamples=50))
    results = result.results
    assert results["bradley_terry"] == [] and "Bradley–Terry strengths by method" not in (
        tmp_path / "report.html").read_text()
    design = next(p for p in methods_paragraphs(results) if p.startswith("Design."))
    assert (f"The study generated {2 * len(rated)} images (candidates) with " in design
            and f"{len(rated)} of which were rated or compared" in design)
    assert "alpha = 0.6" in design and "levels =" not in design and "level_alphas" not in design
    assert "Pairs of question 2 were chosen adaptively" in design
    assert "at least 3 times" in design and "Rubin 1976" in design and "posterior intervals" in design
    assert "balanced over candidates within each group" in design  # question 1, the rating
    assert "balanced over pairs" not in design
    banner = " ".join(banner_lines(results))
    assert "participants participants" not in banner
    assert "Chinese participants: needs" in banner and "western participants: needs" in banner
    warnings = result.warnings
    assert ("Q1, Chinese participants: 3 participant(s), fewer than the minimum of 5; "
            "descriptive statistics only") in warnings
    assert any(w.startswith("Q2, western participants: ") for w in warnings)
    assert not any("question 4" in w or "question 5" in w or "metric__" in w for w in warnings)
    assert any(w.startswith("metric LPIPS (AlexNet) is missing for ") for w in warnings)
    assert ("no group of any question has the data for inference (see the notes above): "
            "agreement skipped") in warnings
    assert not any("no metric columns" in w for w in warnings)


def test_truth_of_the_uncorrected_agreement_is_the_mean_of_k_ratings():
    """``likert_moments`` is the mean and variance of one simulated rating (checked by
    drawing ratings), and the correlation with a mean of k ratings rises with k towards
    the correlation with the expected rating, Pearson as r * sqrt(rel_k)."""
    gen = np.random.default_rng(5)
    appeal = np.array([-2.5, -0.4, 0.0, 1.1, 3.0])
    mean, variance = likert_moments(appeal, participant_sd=0.5, noise_sd=1.0, scale_points=7)
    latent = appeal[:, None] + gen.normal(scale=0.5, size=(5, 200_000)) + gen.normal(
        size=(5, 200_000))
    ratings = np.clip(np.rint(4 + latent), 1, 7)
    np.testing.assert_allclose(mean, ratings.mean(axis=1), atol=0.01)
    np.testing.assert_allclose(variance, ratings.var(axis=1), rtol=0.02)
    ks = (1.0, 4.0, 16.0)
    truth = study_truth(weights={"western": 0.8, "chinese": 0.3}, ratings_per_candidate=ks,
                        n_population=100_000)
    for g in ("western", "chinese"):
        rel = truth["reliability"][g]
        assert 0.0 < rel < 1.0
        for kind, full in (("pearson", truth["agreement"]), ("spearman", truth["spearman"])):
            curve = [truth["agreement_at_k"][(g, "metric__tracked", kind, k)] for k in ks]
            target = full[(g, "metric__tracked")]
            assert 0.1 < curve[0] < curve[1] < curve[2] < target, (g, kind, curve, target)
        for k in ks:
            assert truth["agreement_at_k"][(g, "metric__tracked", "pearson", k)] == pytest.approx(
                truth["agreement"][(g, "metric__tracked")] * np.sqrt(k * rel / (1 + (k - 1) * rel)))
        assert abs(truth["agreement_at_k"][(g, "metric__noise", "spearman", 4.0)]) < 0.01
