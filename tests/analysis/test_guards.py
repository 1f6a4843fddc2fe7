"""Each guard fires with its exact warning, and inference stops below the minimums."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from studies.analysis.guards import (
    DesignMinimums,
    check_study,
    design_counts,
    tied_ranking_responses,
)
from studies.analysis.simulate import simulate_study
from studies.analysis.tidy import REQUIRED_INPUT, read_tidy
from studies.reports import ReportOptions, build_report

GROUPS = {"western": "western-oil", "chinese": "chinese-ink"}


@pytest.fixture
def study() -> pd.DataFrame:
    return simulate_study(weights={"western": 0.8, "chinese": 0.2}, own_culture=GROUPS,
                          n_participants=8, likert_trials=30, rng=4)


def test_tiny_group_gets_descriptives_and_a_warning(study, tmp_path):
    """A group of 3 participants gets no interval, only counts, mean and SD."""
    chinese = study.loc[study["group"] == "chinese", "participant_id"].unique()[:3]
    keep = study["participant_id"].isin(chinese) | (study["group"] == "western")
    result = build_report(study[keep], tmp_path, options=ReportOptions(n_resamples=50))
    # The report names questions and groups as its reader sees them.
    assert ("Q1, Chinese participants: 3 participant(s), fewer than the minimum of 5; "
            "descriptive statistics only") in result.warnings
    results = json.loads((tmp_path / "results.json").read_text())
    assert {row["group"] for row in results["agreement"]} == {"western"}
    descriptive = pd.DataFrame(results["descriptive"]).set_index("group")
    assert descriptive.loc["chinese", "n_participants"] == 3
    assert not descriptive.loc["chinese", "inference"] and descriptive.loc["western", "inference"]


def test_too_few_candidates_and_ratings_per_candidate(study):
    few = study[study["candidate_id"] < 6]
    warnings = check_study(few, ["metric__tracked"], minimums=DesignMinimums()).warnings
    rated = few[few["group"] == "western"]["candidate_id"].nunique()
    assert rated < 10
    assert (f"question 1, group western: {rated} candidate(s) rated, fewer than the minimum "
            "of 10; descriptive statistics only") in warnings
    sparse = check_study(study, ["metric__tracked"],
                         minimums=DesignMinimums(min_ratings_per_candidate=5)).warnings
    per_candidate = 240 / study[study["group"] == "chinese"]["candidate_id"].nunique()
    assert (f"question 1, group chinese: {per_candidate:.1f} ratings per candidate, fewer than "
            "the minimum of 5; descriptive statistics only") in sparse


def test_constant_metric_is_named_and_not_correlated(study, tmp_path):
    result = build_report(study.assign(metric__flat=1.0), tmp_path,
                          options=ReportOptions(n_resamples=50))
    n_candidates = study["candidate_id"].nunique()
    assert (f"metric flat is constant over the {n_candidates} candidates of Q1: "
            "its correlations are not computed") in result.warnings
    agreement = pd.DataFrame(result.results["agreement"])
    assert "metric__flat" not in set(agreement["metric"])
    assert np.isfinite(agreement["statistic"]).all()


def test_missing_metric_values_and_unscored_rows_are_counted(study, tmp_path):
    frame = study.copy()
    missing = frame["candidate_id"].isin([3, 7])
    frame.loc[missing, "metric__tracked"] = np.nan
    frame.loc[frame.index[:5], "score"] = np.nan
    result = build_report(frame, tmp_path, options=ReportOptions(n_resamples=50))
    n_missing = int((missing & frame["score"].notna()).sum())
    assert (f"metric tracked is missing for {n_missing} of {len(frame) - 5} scored rows "
            "(2 candidate(s)) in Q1: those candidates are left out of its "
            "correlations") in result.warnings
    assert (f"5 of {len(frame)} rows after exclusions have no score or no candidate and are "
            "not analysed") in result.warnings
    assert result.n_rows_analysed == len(frame) - 5
    agreement = pd.DataFrame(result.results["agreement"])
    tracked = agreement[agreement["metric"] == "metric__tracked"]
    scored = frame[frame["score"].notna()]
    expected = scored[scored["metric__tracked"].notna()].groupby("group")["candidate_id"].nunique()
    assert (tracked.set_index("group")["n_candidates"] == expected.reindex(tracked["group"])).all()


def test_straight_lining_participants_are_reported(study):
    frame = study.copy()
    frame.loc[frame["participant_id"].isin([0, 9]), "score"] = 4.0
    warnings = check_study(frame, ["metric__tracked"]).warnings
    assert ("question 1: 2 participant(s) gave the same rating to all of their 5 or more "
            "ratings (straight-lining); they are analysed; add an exclusion rule to drop "
            "them") in warnings


def test_identical_ratings_fit_no_mixed_model(study, tmp_path):
    """Every rating the same: a specific warning instead of a solver error or an exception."""
    result = build_report(study.assign(score=4.0), tmp_path, options=ReportOptions(n_resamples=50))
    assert "mixed model for Q1 not fitted: every analysed rating is the same (4)" in result.warnings
    assert not any("failed" in w for w in result.warnings if w.startswith("mixed model"))
    assert json.loads((tmp_path / "results.json").read_text())["mixed_models"] == []


@pytest.mark.parametrize("rank_dtype", ["int64", "Int64", "float64"])
def test_tied_ranks_are_reported_and_left_out_of_plackett_luce(rank_dtype):
    """Ranks as a tidy file gives them (int or float) and as the database export does (nullable Int64)."""
    rows = []
    for response in range(12):
        ranks = [1, 1, 3] if response < 2 else [1 + (response + i) % 3 for i in range(3)]
        for slot, rank in enumerate(ranks):
            rows.append({"participant_id": response % 6, "group": "g", "question_id": 3,
                         "question_kind": "ranking", "response_id": response,
                         "candidate_id": slot, "rank": rank, "score": (3 - rank) / 2,
                         "metric__m": float(slot)})
    frame = pd.DataFrame(rows).astype({"rank": rank_dtype})
    warnings = check_study(frame, ["metric__m"]).warnings
    assert ("question 3: 2 ranking response(s) contain tied ranks; tied items share their "
            "score and those responses are left out of the Plackett-Luce fit") in warnings
    assert sorted(tied_ranking_responses(frame)) == [0, 1]


def test_study_report_from_a_tidy_file(study, tmp_path, capsys):
    """A CSV with only the required columns (plus a metric) gives the whole report."""
    csv = tmp_path / "elsewhere.csv"
    study[list(REQUIRED_INPUT) + ["metric__tracked", "group_culture"]].to_csv(csv, index=False)
    out = tmp_path / "report"
    call_command("study_report", "--tidy", str(csv), "--out", str(out), "--resamples", "50")
    assert "report.html" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["n_rows_analysed"] == len(study)
    for key in ("agreement", "group_differences", "mixed_models", "reliability", "warnings",
                "effects"):
        assert key in results, key
    terms = {row["term"] for row in results["effects"]}
    assert "in_group" in terms and "method:adain-gatys" in terms
    for row in results["effects"]:
        assert {"question", "term", "estimate", "ci_low", "ci_high", "p", "p_adjusted"} <= set(row)
    codebook = json.loads((out / "codebook.json").read_text())
    assert "effects" in codebook["results_schema"]
    with pytest.raises(CommandError, match="missing required column"):
        study.drop(columns=["style_id"]).to_csv(csv, index=False)
        call_command("study_report", "--tidy", str(csv), "--out", str(out))
    with pytest.raises(CommandError, match="either a study"):
        call_command("study_report", "--out", str(out))


def test_read_tidy_fills_documented_defaults(study, tmp_path):
    path = tmp_path / "minimal.parquet"
    study[list(REQUIRED_INPUT) + ["metric__tracked"]].to_parquet(path)
    frame = read_tidy(str(path))
    assert (frame["participant_status"] == "completed").all()
    assert frame["response_id"].nunique() == len(frame)  # one Likert response per row
    assert (frame["group_culture"] == "").all() and not frame["in_group"].any()


def test_one_shortfall_rule_gives_the_warning_and_the_report_wording(study):
    """The analysis's warnings and the report's sufficiency rows come from the same
    counts: each shortfall in both wordings, nothing where the minimums are met."""
    few = study[(study["candidate_id"] < 6)
                & ~((study["group"] == "chinese")
                    & ~study["participant_id"].isin(study.loc[study["group"] == "chinese",
                                                              "participant_id"].unique()[:2]))]
    rules = DesignMinimums(min_ratings_per_candidate=40)
    counts = design_counts(few, rules).set_index("group")
    chinese, western = counts.loc["chinese"], counts.loc["western"]
    assert chinese["n_participants"] == 2
    assert western["n_participants"] == few.loc[few["group"] == "western",
                                                "participant_id"].nunique() >= 5
    n_c = int(western["n_candidates"])
    per = western["n_ratings"] / n_c
    assert [s.what for s in western["shortfalls"]] == ["candidates", "ratings_per_candidate"]
    assert [s.reason() for s in western["shortfalls"]] == [
        f"{n_c} candidate(s) rated, fewer than the minimum of 10",
        f"{per:.1f} ratings per candidate, fewer than the minimum of 40"]
    assert [s.needed() for s in western["shortfalls"]] == [
        f"{10 - n_c} more rated candidate(s) ({n_c} of 10)",
        f"more ratings per candidate (mean {per:.1f}, minimum 40)"]
    assert chinese["shortfalls"][0].needed() == "3 more participant(s) (2 of 5)"
    warnings = check_study(few, ["metric__tracked"], minimums=rules).warnings
    for g, row in counts.iterrows():
        for s in row["shortfalls"]:
            assert f"question 1, group {g}: {s.reason()}; descriptive statistics only" in warnings
    assert design_counts(study, DesignMinimums())["shortfalls"].map(len).eq(0).all()
