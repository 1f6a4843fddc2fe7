"""Mixed models checked against lme4's published sleepstudy fits and statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from studies.analysis.mixed import fit_crossed_lmm, fit_lmm, study_mixed_model
from studies.analysis.simulate import simulate_study


@pytest.fixture
def sleepstudy(reference_dir) -> pd.DataFrame:
    return pd.read_csv(reference_dir / "stats" / "sleepstudy.csv")


def test_sleepstudy_random_slopes(sleepstudy):
    """lme4 (Bates et al. 2015, J. Stat. Softw. 67(1), section 1 / ?sleepstudy):
    lmer(Reaction ~ Days + (Days | Subject)) by REML gives fixed effects 251.405
    (SE 6.825) and 10.467 (SE 1.546); Subject intercept variance 612.10 (SD 24.741),
    Days variance 35.07 (SD 5.922), correlation 0.066, residual 654.94 (SD 25.592)."""
    fit = fit_lmm(sleepstudy, "Reaction ~ Days", groups="Subject", re_formula="~Days")
    assert fit.fixed.loc["Intercept", "estimate"] == pytest.approx(251.405, abs=1e-3)
    assert fit.fixed.loc["Days", "estimate"] == pytest.approx(10.467, abs=1e-3)
    assert fit.fixed.loc["Intercept", "se"] == pytest.approx(6.825, abs=2e-3)
    assert fit.fixed.loc["Days", "se"] == pytest.approx(1.546, abs=2e-3)
    vc = fit.variance_components
    assert np.sqrt(vc["Subject Subject"]) == pytest.approx(24.741, abs=0.01)
    assert np.sqrt(vc["Subject Days"]) == pytest.approx(5.922, abs=0.005)
    assert np.sqrt(vc["residual"]) == pytest.approx(25.592, abs=0.005)
    cov = fit.random_covariance
    corr = cov.iloc[0, 1] / np.sqrt(cov.iloc[0, 0] * cov.iloc[1, 1])
    assert corr == pytest.approx(0.066, abs=0.002)
    low, high = fit.confidence_interval().loc["Days"]
    assert low < 10.467 < high


def test_sleepstudy_random_intercept_crossed_fitter(sleepstudy):
    """lme4: lmer(Reaction ~ Days + (1 | Subject)) by REML gives 251.405 (SE 9.747),
    10.467 (SE 0.804), Subject SD 37.12, residual SD 30.99."""
    fit = fit_crossed_lmm(sleepstudy, "Reaction ~ Days", variables=["Days"], random=["Subject"])
    assert fit.fixed.loc["Intercept", "estimate"] == pytest.approx(251.405, abs=1e-3)
    assert fit.fixed.loc["Days", "estimate"] == pytest.approx(10.467, abs=1e-3)
    assert fit.fixed.loc["Intercept", "se"] == pytest.approx(9.747, abs=2e-3)
    assert fit.fixed.loc["Days", "se"] == pytest.approx(0.804, abs=1e-3)
    assert np.sqrt(fit.variance_components["Subject"]) == pytest.approx(37.12, abs=0.01)
    assert np.sqrt(fit.variance_components["residual"]) == pytest.approx(30.99, abs=0.01)


def test_crossed_fitter_matches_statsmodels():
    """Crossed participant x content intercepts: same REML optimum as statsmodels MixedLM."""
    frame = simulate_study(
        weights={"western": 0.5, "chinese": 0.5},
        own_culture={"western": "western-oil", "chinese": "chinese-ink"},
        n_participants=8, likert_trials=25, in_group_effect=0.4, rng=3,
    )
    ours = fit_crossed_lmm(
        frame.rename(columns={"participant_id": "participant", "content_id": "content"}),
        "score ~ C(method) * C(style_culture) * C(group)",
        variables=["method", "style_culture", "group"], random=["participant", "content"],
    )
    data = frame.assign(_one=1, _p=frame["participant_id"].astype(str),
                        _c=frame["content_id"].astype(str))
    reference = fit_lmm(
        data, ours.formula, groups="_one",
        vc_formula={"participant": "0 + C(_p)", "content": "0 + C(_c)"},
    )
    assert np.allclose(ours.fixed["estimate"], reference.fixed["estimate"], atol=1e-3)
    assert np.allclose(ours.fixed["se"], reference.fixed["se"], rtol=1e-2)
    for name in ("participant", "content", "residual"):
        assert ours.variance_components[name] == pytest.approx(
            reference.variance_components[name], rel=1e-2, abs=1e-4)


def test_in_group_contrast_recovers_effect():
    """Simulated in-group advantage of 0.5 latent units = 0.5 scale points on 7 points."""
    frame = simulate_study(in_group_effect=0.5, n_participants=25, likert_trials=40, rng=7)
    fit = study_mixed_model(frame)
    contrast = fit.contrasts["in_group"]
    low, high = contrast.confidence_interval()
    assert low < 0.5 < high
    assert contrast.pvalue < 1e-3
    null = study_mixed_model(simulate_study(in_group_effect=0.0, n_participants=25,
                                            likert_trials=40, rng=8))
    assert null.contrasts["in_group"].pvalue > 0.001
    assert "in_group" in fit.summary()


def test_needs_two_participants():
    frame = simulate_study(n_participants=1, likert_trials=5, rng=0)
    frame = frame[frame["participant_id"] == 0]
    with pytest.raises(ValueError, match="two participants"):
        study_mixed_model(frame)
