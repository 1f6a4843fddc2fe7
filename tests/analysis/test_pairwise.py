"""Bradley-Terry, Plackett-Luce and win rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from studies.analysis.pairwise import (
    ConvergenceError,
    bradley_terry,
    bradley_terry_bootstrap,
    mean_ranks,
    plackett_luce,
    win_rates,
)


@pytest.fixture
def baseball(reference_dir) -> pd.DataFrame:
    data = pd.read_csv(reference_dir / "stats" / "bt_baseball_agresti.csv")
    home = pd.DataFrame({"winner": data["home.team"], "loser": data["away.team"],
                         "count": data["home.wins"]})
    away = pd.DataFrame({"winner": data["away.team"], "loser": data["home.team"],
                         "count": data["away.wins"]})
    return pd.concat([home, away], ignore_index=True)


class TestBradleyTerry:
    def test_agresti_baseball(self, baseball):
        """Agresti (2002), Categorical Data Analysis 2nd ed., Table 10.11 (1987 AL East,
        no home advantage), log-strengths relative to Baltimore: Milwaukee 1.58,
        Detroit 1.44, Toronto 1.29, New York 1.25, Boston 1.11, Cleveland 0.68;
        standard errors about 0.3 (also reproduced by R's BradleyTerry2 tests)."""
        fit = bradley_terry(baseball)
        relative = (fit["strength"] - fit.loc["Baltimore", "strength"]).round(2)
        assert relative.to_dict() == {
            "Baltimore": 0.0, "Boston": 1.11, "Cleveland": 0.68, "Detroit": 1.44,
            "Milwaukee": 1.58, "New York": 1.25, "Toronto": 1.29,
        }
        assert fit["strength"].sum() == pytest.approx(0.0, abs=1e-9)
        assert (fit["comparisons"] == 78).all()

    def test_reference_standard_errors(self, baseball):
        """SE of each team's difference from Baltimore is about 0.3 (Agresti, section 10.6)."""
        fit = bradley_terry(baseball)
        cov = fit.attrs["covariance"]
        others = [t for t in fit.index if t != "Baltimore"]
        se = [np.sqrt(cov[t][t] + cov["Baltimore"]["Baltimore"] - 2 * cov[t]["Baltimore"])
              for t in others]
        assert [round(v, 1) for v in se] == [0.3] * 6

    def test_likelihood_equations(self, baseball):
        """At the MLE each item's expected wins equal its observed wins."""
        fit = bradley_terry(baseball)
        s = fit["strength"]
        expected = {item: 0.0 for item in s.index}
        for w, lo, n in baseball.itertuples(index=False):
            p = 1 / (1 + np.exp(s[lo] - s[w]))
            expected[w] += n * p
            expected[lo] += n * (1 - p)
        for item, value in expected.items():
            assert value == pytest.approx(fit.loc[item, "wins"], abs=1e-6)

    def test_undefeated_item_needs_ridge(self):
        frame = pd.DataFrame({"winner": ["a", "a", "b"], "loser": ["b", "c", "c"]})
        with pytest.raises(ConvergenceError, match="ridge"):
            bradley_terry(frame)
        fit = bradley_terry(frame, ridge=0.1)
        assert fit["strength"].idxmax() == "a"

    def test_bad_input(self):
        with pytest.raises(KeyError, match="loser"):
            bradley_terry(pd.DataFrame({"winner": ["a"]}))
        with pytest.raises(ValueError, match="winner equals loser"):
            bradley_terry(pd.DataFrame({"winner": ["a"], "loser": ["a"]}))
        with pytest.raises(TypeError):
            bradley_terry([("a", "b")])

    def test_bootstrap_by_participant(self):
        rng = np.random.default_rng(0)
        strengths = {"x": 1.0, "y": 0.0, "z": -1.0}
        rows = []
        for p in range(40):
            for _ in range(15):
                a, b = rng.choice(list(strengths), size=2, replace=False)
                pa = 1 / (1 + np.exp(strengths[b] - strengths[a]))
                w, lo = (a, b) if rng.random() < pa else (b, a)
                rows.append({"winner": w, "loser": lo, "participant_id": p})
        result = bradley_terry_bootstrap(pd.DataFrame(rows), n_resamples=200, rng=1)
        table = result.table
        for item, truth in strengths.items():
            assert table.loc[item, "ci_low"] < truth < table.loc[item, "ci_high"]
        assert table.loc["x", "win_rate"] > table.loc["z", "win_rate"]
        assert result.confidence_interval().shape == (3, 2)


class TestWinRatesAndRankings:
    def test_win_rates(self, baseball):
        rates = win_rates(baseball)
        assert rates.loc["Milwaukee", "wins"] == 50
        assert rates.loc["Milwaukee", "win_rate"] == pytest.approx(50 / 78)

    def test_plackett_luce_on_pairs_equals_bradley_terry(self, baseball):
        """With rankings of two items Plackett-Luce is Bradley-Terry (Hunter 2004)."""
        rankings = [[w, lo] for w, lo, n in baseball.itertuples(index=False) for _ in range(n)]
        pl = plackett_luce(rankings)
        bt = bradley_terry(baseball)["strength"]
        assert np.allclose(pl.to_numpy(), bt.to_numpy(), atol=1e-6)

    def test_plackett_luce_recovers_order(self):
        rng = np.random.default_rng(0)
        worth = {"a": 2.0, "b": 1.0, "c": 0.0, "d": -1.0}
        rankings = []
        for _ in range(500):
            # Gumbel-max sampling of a Plackett-Luce ranking.
            keys = {k: v + rng.gumbel() for k, v in worth.items()}
            rankings.append(sorted(keys, key=keys.get, reverse=True))
        fit = plackett_luce(rankings)
        assert list(fit.sort_values(ascending=False).index) == ["a", "b", "c", "d"]
        assert (fit["a"] - fit["d"]) == pytest.approx(3.0, abs=0.35)

    def test_mean_ranks(self):
        frame = pd.DataFrame({
            "participant_id": [1, 1, 2, 2, 3, 3],
            "method": ["a", "b", "a", "b", "a", "b"],
            "rank": [1, 2, 1, 2, 2, 1],
        })
        result = mean_ranks(frame, n_resamples=100, rng=0)
        assert result.table.loc["a", "strength"] == pytest.approx(4 / 3)
        assert result.table.loc["a", "ci_low"] >= 1.0
