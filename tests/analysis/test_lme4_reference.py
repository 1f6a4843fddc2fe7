"""The study's crossed mixed model against R: lme4/lmerTest (REML, Satterthwaite) and emmeans.

Runs R when ``Rscript`` with lme4, lmerTest and emmeans is installed (``make test``
installs them); skips otherwise, and fails under CI.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from studies.analysis.mixed import study_mixed_model
from studies.analysis.simulate import simulate_study
from tests.conftest import require

R_SCRIPT = r"""
suppressMessages({library(lme4); library(lmerTest); library(emmeans); library(jsonlite)})
options(contrasts = c("contr.sum", "contr.poly"))
d <- read.csv(commandArgs(TRUE)[1])
for (v in c("method", "style_culture", "group", "participant_id", "candidate_id",
            "content_id", "style_id")) d[[v]] <- factor(d[[v]])
d$candidate_group <- interaction(d$candidate_id, d$group, drop = TRUE)
m <- lmer(score ~ method * style_culture * group + (1 | participant_id) + (1 | candidate_id) +
            (1 | content_id) + (1 | style_id) + (1 | candidate_group), data = d, REML = TRUE)
vc <- as.data.frame(VarCorr(m))
emm <- emmeans(m, ~ method, lmer.df = "satterthwaite")
pairs_m <- as.data.frame(pairs(emm, adjust = "none"))
inter <- as.data.frame(contrast(emmeans(m, ~ method * group, lmer.df = "satterthwaite"),
                                interaction = c("pairwise", "pairwise")))
cat(toJSON(list(
  vc = setNames(as.list(vc$vcov), vc$grp),
  method = list(contrast = as.character(pairs_m$contrast), estimate = pairs_m$estimate,
                se = pairs_m$SE, df = pairs_m$df),
  inter = list(estimate = inter$estimate, se = inter$SE, df = inter$df)
), digits = 10, auto_unbox = TRUE))
"""


def _have_r() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(
        ["Rscript", "-e", "suppressMessages({library(lmerTest); library(emmeans); library(jsonlite)})"],
        capture_output=True, timeout=120,
    )
    return probe.returncode == 0


def test_crossed_model_matches_lmertest_and_emmeans(tmp_path):
    """Variance components (REML), method contrasts of estimated marginal means with
    their SEs and Satterthwaite df, and method x group interaction contrasts agree
    with lmer + lmerTest + emmeans on the same data."""
    require(_have_r(), "Rscript with lme4, lmerTest, emmeans and jsonlite is not installed")
    frame = simulate_study(
        weights={"western": 0.7, "chinese": 0.2},
        own_culture={"western": "western-oil", "chinese": "chinese-ink"},
        n_participants=10, likert_trials=30, in_group_effect=0.4, n_contents=4,
        n_styles_per_culture=2, candidate_sd=0.3, content_sd=0.3, style_sd=0.3,
        candidate_group_sd=0.3, method_effects=(0.0, 0.4, -0.2), taste_correlation=0.3, rng=21,
    )
    csv = tmp_path / "study.csv"
    frame.to_csv(csv, index=False)
    script = tmp_path / "fit.R"
    script.write_text(R_SCRIPT)
    run = subprocess.run(["Rscript", str(script), str(csv)], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    reference = json.loads(run.stdout)

    ours = study_mixed_model(frame, ordinal_check=False)
    vc = ours.variance_components
    names = {"participant": "participant_id", "candidate": "candidate_id",
             "content": "content_id", "style": "style_id",
             "candidate x group": "candidate_group", "residual": "Residual"}
    for mine, theirs in names.items():
        assert vc[mine] == pytest.approx(reference["vc"][theirs], rel=2e-2, abs=2e-3), mine

    method = reference["method"]
    for label, estimate, se, df in zip(method["contrast"], method["estimate"], method["se"],
                                       method["df"]):
        a, b = (part.strip() for part in label.split(" - "))
        contrast = ours.contrasts[f"method:{a}-{b}"]
        assert contrast.estimate == pytest.approx(estimate, abs=1e-4)
        assert contrast.se == pytest.approx(se, rel=1e-2)
        assert contrast.df == pytest.approx(df, rel=5e-2)
    inter = [c for c in ours.contrasts.values() if c.family == "method x group"]
    assert len(inter) == len(reference["inter"]["estimate"]) == 3
    # emmeans orders method pairs as pairs() does and the groups alphabetically, as we do.
    for contrast, estimate, se, df in zip(inter, *(reference["inter"][k]
                                                   for k in ("estimate", "se", "df"))):
        assert contrast.estimate == pytest.approx(estimate, abs=1e-4)
        assert contrast.se == pytest.approx(se, rel=1e-2)
        assert contrast.df == pytest.approx(df, rel=5e-2)
    assert np.isfinite([c.pvalue for c in ours.contrasts.values()]).all()
