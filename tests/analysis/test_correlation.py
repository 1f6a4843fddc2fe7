"""Fisher r-to-z, metric-human agreement and group comparisons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from studies.analysis.correlation import (
    benjamini_hochberg,
    compare_groups,
    compare_independent,
    correlate_rows,
    correlation_interval,
    crossed_agreement,
    fisher_z,
    holm,
    metric_agreement,
)


class TestFisher:
    def test_textbook_example(self):
        """Lane, HyperStat Online, "Tests of differences between independent Pearson
        correlations": QSAT-GPA r = .61 for 100 engineering and r = .35 for 100
        humanities majors gives z = 2.40, p = 0.016 (table-rounded z' values; the
        unrounded computation gives 2.39 and 0.0168)."""
        z, p = compare_independent(0.61, 100, 0.35, 100)
        assert z == pytest.approx(2.40, abs=0.01)
        assert p == pytest.approx(0.016, abs=0.001)

    def test_fisher_table_values(self):
        """Fisher's z' table: r = .5 -> .549, r = .9 -> 1.472."""
        assert fisher_z(0.5) == pytest.approx(0.5493, abs=1e-4)
        assert fisher_z(0.9) == pytest.approx(1.4722, abs=1e-4)

    def test_symmetric_and_null(self):
        z, p = compare_independent(0.3, 50, 0.3, 80)
        assert z == 0.0 and p == pytest.approx(1.0)
        z1, _ = compare_independent(0.2, 40, 0.6, 40)
        z2, _ = compare_independent(0.6, 40, 0.2, 40)
        assert z1 == pytest.approx(-z2)

    def test_interval(self):
        """Fisher interval of r = .5, n = 50: (0.257, 0.683)."""
        low, high = correlation_interval(0.5, 50)
        assert (low, high) == pytest.approx((0.2574, 0.6832), abs=1e-3)

    def test_bad_input(self):
        with pytest.raises(ValueError, match="r1"):
            compare_independent(1.5, 10, 0.2, 10)
        with pytest.raises(ValueError, match="n2"):
            compare_independent(0.1, 10, 0.2, 3)


class TestCorrelateRows:
    @pytest.mark.parametrize(
        ("kind", "reference"),
        [("pearson", stats.pearsonr), ("spearman", stats.spearmanr), ("kendall", stats.kendalltau)],
    )
    def test_matches_scipy_with_ties_and_missing(self, kind, reference):
        rng = np.random.default_rng(0)
        x = rng.integers(0, 5, 30).astype(float)
        y = rng.normal(size=(4, 30))
        y[1] = np.round(y[1])
        y[2, [3, 8]] = np.nan
        got = correlate_rows(y, x, kind)
        for row, value in zip(y, got):
            keep = np.isfinite(row)
            assert value == pytest.approx(reference(row[keep], x[keep])[0], abs=1e-12)


def _long_frame(rng, *, n_participants, n_candidates, weight, repeats=1, group="g"):
    """Scores driven by a latent that the metric tracks with strength ``weight``."""
    q = rng.normal(size=n_candidates)
    u = rng.normal(size=n_candidates)
    taste = weight * q + np.sqrt(1 - weight**2) * u
    rows = []
    for p in range(n_participants):
        lenient = rng.normal(scale=0.5)
        for _ in range(repeats):
            for c in range(n_candidates):
                rows.append({"group": group, "question_id": 1, "participant_id": f"{group}{p}",
                             "candidate_id": c, "metric__m": q[c],
                             "score": taste[c] + lenient + rng.normal()})
    return pd.DataFrame(rows)


class TestMetricAgreement:
    def test_point_estimates_match_scipy(self):
        rng = np.random.default_rng(1)
        frame = _long_frame(rng, n_participants=10, n_candidates=25, weight=0.7)
        result = metric_agreement(frame, ["metric__m"], n_resamples=200, rng=0)
        human = frame.groupby("candidate_id")["score"].mean()
        metric = frame.groupby("candidate_id")["metric__m"].first()
        table = result.table.xs(("g", 1, "metric__m"))
        assert table.loc["spearman", "statistic"] == pytest.approx(stats.spearmanr(human, metric)[0])
        assert table.loc["kendall", "statistic"] == pytest.approx(stats.kendalltau(human, metric)[0])
        assert table.loc["pearson", "statistic"] == pytest.approx(stats.pearsonr(human, metric)[0])
        assert (table["n_candidates"] == 25).all() and (table["n_participants"] == 10).all()
        assert (table["ci_low"] <= table["statistic"]).all()
        assert (table["statistic"] <= table["ci_high"]).all()
        assert "participant-bootstrap" in result.summary()

    def test_bootstrap_resamples_participants_not_responses(self):
        """With one participant, resampling participants always redraws the same person,
        so the interval has zero width; a response-level bootstrap would not."""
        rng = np.random.default_rng(2)
        frame = _long_frame(rng, n_participants=1, n_candidates=15, weight=0.5, repeats=4)
        table = metric_agreement(frame, ["metric__m"], n_resamples=100, rng=0,
                                 resample="participants").table
        assert np.allclose(table["ci_low"], table["statistic"])
        assert np.allclose(table["ci_high"], table["statistic"])

    def test_interval_widens_with_participant_clustering(self):
        """Same number of responses, fewer participants: wider participant-bootstrap interval."""
        rng = np.random.default_rng(3)
        many = _long_frame(rng, n_participants=40, n_candidates=20, weight=0.6)
        few = _long_frame(rng, n_participants=4, n_candidates=20, weight=0.6, repeats=10)
        width = {}
        for name, frame in (("many", many), ("few", few)):
            t = metric_agreement(frame, ["metric__m"], correlations=("pearson",),
                                 n_resamples=300, rng=0, resample="participants").table
            width[name] = float((t["ci_high"] - t["ci_low"]).iloc[0])
        assert width["few"] > width["many"]

    def test_recomputed_interval_matches_stored(self):
        rng = np.random.default_rng(4)
        frame = _long_frame(rng, n_participants=8, n_candidates=12, weight=0.5)
        result = metric_agreement(frame, ["metric__m"], n_resamples=150, rng=0)
        recomputed = result.confidence_interval()
        assert np.allclose(recomputed["ci_low"], result.table["ci_low"])
        narrower = result.confidence_interval(0.5)
        assert (narrower["ci_low"] >= recomputed["ci_low"] - 1e-12).all()

    def test_missing_column(self):
        with pytest.raises(KeyError, match="metric__x"):
            metric_agreement(pd.DataFrame({"score": [1.0]}), ["metric__x"])


class TestCompareGroups:
    def test_finds_difference_and_corrects(self):
        rng = np.random.default_rng(5)
        frame = pd.concat([
            _long_frame(rng, n_participants=15, n_candidates=30, weight=0.95, group="a"),
            _long_frame(rng, n_participants=15, n_candidates=30, weight=0.0, group="b"),
        ])
        # Same candidates, same metric for both groups.
        frame["metric__m"] = frame.groupby("candidate_id")["metric__m"].transform("first")
        frame["metric__noise"] = frame["candidate_id"].map(dict(enumerate(rng.normal(size=30))))
        result = compare_groups(frame, ["metric__m", "metric__noise"], n_resamples=300, rng=0)
        row = result.table.loc[(1, "metric__m", "a", "b")]
        assert row["r_a"] > row["r_b"]
        assert row["p"] < 0.01 and row["p_adjusted"] < 0.05
        assert row["p_adjusted"] >= row["p"] and row["p_bh"] >= row["p"]
        assert row["fisher_z"] > 0
        assert result.significant("holm").loc[(1, "metric__m", "a", "b")]
        ci = result.confidence_interval().loc[(1, "metric__m", "a", "b")]
        assert 0 < ci["ci_low"] < ci["difference"] < ci["ci_high"]


def test_zou_interval_matches_cocor():
    """R package cocor (Diedenhofen & Musch 2015), cocor.indep.groups(r1.jk = .60,
    r2.hm = .65, n1 = 2700, n2 = 2700): Zou's (2007) 95% interval for r1 - r2 is
    (-0.0826, -0.0175), and Fisher's z = -3.0168, p = 0.0026."""
    import studies.analysis.correlation as corr

    low, high = corr.zou_difference_interval(0.6, 2700, 0.65, 2700)
    assert low == pytest.approx(-0.0826, abs=1e-4)
    assert high == pytest.approx(-0.0175, abs=1e-4)
    z, p = compare_independent(0.6, 2700, 0.65, 2700)
    assert z == pytest.approx(-3.0168, abs=1e-4)
    assert p == pytest.approx(0.0026, abs=1e-4)


def test_multiplicity_corrections_match_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(0).uniform(size=25) ** 3
    assert np.allclose(holm(p), multipletests(p, method="holm")[1])
    assert np.allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1])


def test_kendall_large_k_path_matches_pairwise_path():
    """Above the pairwise-size limit, the per-replicate scipy path gives the same values."""
    import studies.analysis.correlation as corr

    rng = np.random.default_rng(9)
    x = rng.normal(size=60)
    y = rng.normal(size=(5, 60)) + x
    y[2, :7] = np.nan
    pairwise = corr.correlate_rows(y, x, "kendall")
    looped = corr._looped_kendall(y, x)
    assert np.allclose(pairwise, looped, equal_nan=True)


def test_no_disattenuated_interval_without_a_positive_noise_ceiling(tmp_path):
    """Rater halves that order the candidates in opposite ways give a negative split-half
    correlation: the noise ceiling keeps that raw value, and neither a disattenuated
    estimate nor an interval for one is given."""
    from tests.reports import small_study

    frame = small_study.frame(tmp_path)
    rated = frame[~frame["is_practice"] & (frame["attention_kind"] == "")]
    agree, _ = crossed_agreement(rated, ["metric__ssim"], compare=None, n_resamples=200, rng=0)
    table = agree.table
    assert (table["noise_ceiling"] < 0).all()
    assert table[["disattenuated", "disattenuated_low", "disattenuated_high"]].isna().all().all()
