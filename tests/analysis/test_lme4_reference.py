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
from scipy import stats

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
means <- function(grid, factor, level, group) {
  g <- as.data.frame(grid)
  list(factor = rep(factor, nrow(g)), level = as.character(level(g)),
       group = as.character(group(g)), estimate = g$emmean, se = g$SE, df = g$df)
}
m_method <- means(emm, "method", function(g) g$method, function(g) rep("", nrow(g)))
m_group <- means(emmeans(m, ~ group, lmer.df = "satterthwaite"), "group",
                 function(g) g$group, function(g) g$group)
m_mg <- means(emmeans(m, ~ method * group, lmer.df = "satterthwaite"), "method",
              function(g) g$method, function(g) g$group)
# Ratings of each group's own culture's styles by that group and by the other group.
sg <- emmeans(m, ~ style_culture * group, lmer.df = "satterthwaite")
cells <- paste(as.data.frame(sg)$style_culture, as.data.frame(sg)$group)
own <- cells %in% c("chinese-ink chinese", "western-oil western")
other <- cells %in% c("chinese-ink western", "western-oil chinese")
halves <- as.data.frame(contrast(sg, method = list(
  own_chinese = 1 * (cells == "chinese-ink chinese"),
  other_chinese = 1 * (cells == "chinese-ink western"),
  own_western = 1 * (cells == "western-oil western"),
  other_western = 1 * (cells == "western-oil chinese"),
  own_all = own / 2, other_all = other / 2)))
cat(toJSON(list(
  vc = setNames(as.list(vc$vcov), vc$grp),
  method = list(contrast = as.character(pairs_m$contrast), estimate = pairs_m$estimate,
                se = pairs_m$SE, df = pairs_m$df),
  inter = list(estimate = inter$estimate, se = inter$SE, df = inter$df),
  means = Map(c, m_method, m_group, m_mg),
  in_group = list(label = as.character(halves$contrast), estimate = halves$estimate,
                  se = halves$SE, df = halves$df)
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
    """Variance components (REML), estimated marginal means, method contrasts of
    them with their SEs and Satterthwaite df, and method x group interaction
    contrasts agree with lmer + lmerTest + emmeans on the same data."""
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

    # Estimated marginal means: per method, per group, per method within group.
    mine = {(m.factor, m.level, m.group or ""): m for m in ours.marginal_means}
    expected = reference["means"]
    assert len(expected["estimate"]) == 3 + 2 + 6
    for i, key in enumerate(zip(expected["factor"], expected["level"], expected["group"])):
        mean = mine[key]
        assert mean.estimate == pytest.approx(expected["estimate"][i], abs=1e-4), key
        assert mean.se == pytest.approx(expected["se"][i], rel=1e-2), key
        assert mean.df == pytest.approx(expected["df"][i], rel=5e-2), key
    # Own-culture styles rated by their own group and by the other group, per group and
    # averaged; their difference is the in-group contrast.
    halves = reference["in_group"]
    for label, estimate, se, df in zip(halves["label"], halves["estimate"], halves["se"],
                                       halves["df"]):
        which, group = label.split("_")
        mean = mine[("in_group", "own group" if which == "own" else "other groups",
                     "" if group == "all" else group)]
        assert mean.estimate == pytest.approx(estimate, abs=1e-4), label
        assert mean.se == pytest.approx(se, rel=1e-2), label
        assert mean.df == pytest.approx(df, rel=5e-2), label
        low, high = mean.confidence_interval()
        assert (high - low) / 2 == pytest.approx(stats.t.ppf(0.975, df) * se, rel=1e-2), label
    own, other = mine[("in_group", "own group", "")], mine[("in_group", "other groups", "")]
    assert own.estimate - other.estimate == pytest.approx(ours.contrasts["in_group"].estimate,
                                                          abs=1e-10)
