"""Reliability coefficients checked against published values and an outside implementation."""

from __future__ import annotations

import numpy as np
import pytest

from studies.analysis.reliability import (
    icc,
    krippendorff_alpha,
    reliability_table,
    spearman_brown,
    split_half,
)

NAN = np.nan
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C:
# 4 observers x 12 units, values 1-5, with missing data.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]
# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = [
    [9, 2, 5, 8],
    [6, 1, 3, 2],
    [8, 4, 6, 8],
    [7, 1, 2, 6],
    [10, 5, 6, 9],
    [6, 2, 4, 7],
]


class TestKrippendorffAlpha:
    @pytest.mark.parametrize(
        ("level", "published"),
        [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
    )
    def test_published_example_with_missing_data(self, level, published):
        """Krippendorff (2011) reports alpha = .743 / .815 / .849 / .797 for this matrix."""
        assert krippendorff_alpha(KRIPPENDORFF_2011, level) == pytest.approx(published, abs=5e-4)

    def test_nominal_exact_fraction(self):
        """The nominal value is 1 - 10 * 4/34 ... = 0.743421..., as the worked example derives."""
        assert krippendorff_alpha(KRIPPENDORFF_2011, "nominal") == pytest.approx(
            0.7434210526, abs=1e-9
        )

    @pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
    def test_matches_krippendorff_package(self, level):
        """Agrees with the `krippendorff` package (Castro) on random sparse data."""
        krippendorff = pytest.importorskip("krippendorff")
        rng = np.random.default_rng(3)
        truth = rng.integers(1, 6, size=40)
        data = np.clip(truth + rng.integers(-1, 2, size=(7, 40)), 1, 5).astype(float)
        data[rng.random(data.shape) < 0.3] = np.nan
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
        assert krippendorff_alpha(data, level) == pytest.approx(expected, abs=1e-10)

    def test_perfect_agreement_is_one(self):
        assert krippendorff_alpha([[1, 2, 3, 4], [1, 2, 3, 4]], "interval") == pytest.approx(1.0)

    def test_bad_input(self):
        with pytest.raises(ValueError, match="level"):
            krippendorff_alpha(KRIPPENDORFF_2011, "cardinal")
        with pytest.raises(ValueError, match="2-D"):
            krippendorff_alpha([1, 2, 3], "nominal")
        with pytest.raises(ValueError, match="non-negative"):
            krippendorff_alpha([[-1, 2], [1, 2]], "ratio")

    def test_no_pairable_values_is_nan(self):
        assert np.isnan(krippendorff_alpha([[1, NAN], [NAN, 2]], "nominal"))


class TestICC:
    def test_shrout_fleiss_table_2(self):
        """Shrout & Fleiss (1979), Table 2: .17, .29, .71, .44, .62, .91."""
        result = icc(SHROUT_FLEISS)
        published = {"ICC1": 0.17, "ICC2": 0.29, "ICC3": 0.71,
                     "ICC1k": 0.44, "ICC2k": 0.62, "ICC3k": 0.91}
        assert set(result) == set(published)
        for form, value in published.items():
            assert round(result[form], 2) == value, form

    def test_shrout_fleiss_mean_squares(self):
        """Table 1 of Shrout & Fleiss: BMS 11.24, JMS 32.49, EMS 1.02, WMS 6.26."""
        ms = icc(SHROUT_FLEISS).mean_squares
        assert ms["MSR"] == pytest.approx(11.24, abs=0.005)
        assert ms["MSC"] == pytest.approx(32.49, abs=0.005)
        assert ms["MSE"] == pytest.approx(1.02, abs=0.005)
        assert ms["MSW"] == pytest.approx(6.26, abs=0.005)

    def test_intervals_contain_estimate_and_match_mcgraw_wong(self):
        """Intervals (McGraw & Wong 1996 formulas) as pingouin reports for this data set."""
        result = icc(SHROUT_FLEISS)
        expected = {"ICC1": (-0.133, 0.723), "ICC2": (0.019, 0.761), "ICC3": (0.342, 0.946),
                    "ICC1k": (-0.884, 0.912), "ICC2k": (0.071, 0.927), "ICC3k": (0.676, 0.986)}
        for form, (low, high) in expected.items():
            ci = result.confidence_interval(form)
            assert ci.low == pytest.approx(low, abs=1e-3)
            assert ci.high == pytest.approx(high, abs=1e-3)
            assert ci.low < result[form] < ci.high
        assert "ICC3k" in result.summary()

    def test_bad_input(self):
        with pytest.raises(ValueError, match="complete"):
            icc([[1, 2], [3, NAN]])
        with pytest.raises(ValueError, match="at least 2"):
            icc([[1, 2, 3]])


class TestSplitHalf:
    def test_spearman_brown(self):
        assert spearman_brown(0.5) == pytest.approx(2 / 3)
        assert spearman_brown(0.5, factor=3) == pytest.approx(0.75)

    def test_recovers_known_reliability(self):
        """True-score variance 1, rater noise 1, 10 raters: mean reliability is 10/11."""
        rng = np.random.default_rng(0)
        ratings = rng.normal(size=(400, 1)) + rng.normal(size=(400, 10))
        result = split_half(ratings, n_splits=50, rng=1)
        assert result.statistic == pytest.approx(10 / 11, abs=0.02)
        low, high = result.confidence_interval()
        assert low <= result.statistic <= high

    def test_missing_ratings_allowed(self):
        rng = np.random.default_rng(0)
        ratings = rng.normal(size=(200, 1)) + rng.normal(size=(200, 12))
        ratings[rng.random(ratings.shape) < 0.4] = np.nan
        assert 0.7 < split_half(ratings, n_splits=30, rng=2).statistic < 0.95

    def test_reliability_table_per_group(self):
        import pandas as pd

        rng = np.random.default_rng(0)
        rows = []
        for group, noise in (("calm", 0.3), ("noisy", 3.0)):
            truth = rng.normal(size=20)
            for rater in range(8):
                for unit in range(20):
                    value = np.clip(np.rint(4 + truth[unit] + rng.normal(scale=noise)), 1, 7)
                    rows.append({"group": group, "participant_id": f"{group}{rater}",
                                 "candidate_id": unit, "score": value})
        table = reliability_table(pd.DataFrame(rows), n_splits=20, rng=0)
        assert table.loc["calm", "alpha_interval"] > table.loc["noisy", "alpha_interval"]
        assert table.loc["calm", "split_half"] > table.loc["noisy", "split_half"]
        assert table.loc["calm", "icc2"] > table.loc["noisy", "icc2"]
