"""Linear mixed models of ratings (REML) and the in-group contrast.

The study model is ``score ~ method * style_culture * group`` with crossed
random intercepts for participant and content image. statsmodels' MixedLM fits
crossed effects only as variance components of one all-encompassing group,
which already takes seconds at a few thousand rows; :func:`fit_crossed_lmm`
therefore fits the same REML criterion from sufficient statistics
(:mod:`studies.analysis.crossed`) and handles millions of rows.
:func:`fit_lmm` wraps statsmodels for other designs (e.g. random slopes) and
is the reference the crossed fitter is tested against.

The in-group contrast asks whether participants rate their own culture's
styles higher than other groups rate those same styles: for each group g with
an own culture c(g), ``mean_m mu(m, c(g), g) - mean_m mean_{g' != g} mu(m, c(g), g')``,
averaged over such groups; a linear combination of fixed effects, so its
standard error comes from their covariance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from patsy import build_design_matrices
from scipy import linalg, stats

from ._common import ConfidenceInterval, check_confidence_level
from .crossed import crossed_lmm_arrays, fit_crossed


@dataclass
class Contrast:
    """A named linear contrast of fixed effects."""

    name: str
    estimate: float
    se: float
    confidence_level: float = 0.95

    @property
    def statistic(self) -> float:
        return self.estimate / self.se if self.se > 0 else float("nan")

    @property
    def pvalue(self) -> float:
        return float(2.0 * stats.norm.sf(abs(self.statistic)))

    def confidence_interval(self, confidence_level: float | None = None) -> ConfidenceInterval:
        level = check_confidence_level(confidence_level or self.confidence_level)
        half = stats.norm.ppf(0.5 + level / 2.0) * self.se
        return ConfidenceInterval(self.estimate - half, self.estimate + half)


@dataclass
class MixedModelResult:
    """Fixed effects, variance components and contrasts of a REML mixed model.

    Attributes:
        fixed: Indexed by term: ``estimate, se, z, pvalue, ci_low, ci_high``.
        variance_components: Name -> variance (``residual`` included).
        formula: Fixed-effects formula.
        n_obs: Rows used.
        n_groups: Participants (or the grouping factor's levels) used.
        converged: Optimiser convergence flag.
        fit_note: How the data were reduced before fitting, if at all.
        contrasts: Named contrasts, e.g. ``in_group``.
        random_covariance: Full random-effects covariance (for random slopes).
    """

    fixed: pd.DataFrame
    variance_components: dict[str, float]
    formula: str
    n_obs: int
    n_groups: int
    converged: bool
    fit_note: str = ""
    contrasts: dict[str, Contrast] = field(default_factory=dict)
    random_covariance: pd.DataFrame | None = None
    confidence_level: float = 0.95

    def confidence_interval(self, confidence_level: float | None = None) -> pd.DataFrame:
        """Wald intervals ``ci_low, ci_high`` of the fixed effects."""
        level = check_confidence_level(confidence_level or self.confidence_level)
        half = stats.norm.ppf(0.5 + level / 2.0) * self.fixed["se"]
        return pd.DataFrame(
            {"ci_low": self.fixed["estimate"] - half, "ci_high": self.fixed["estimate"] + half}
        )

    def summary(self) -> str:
        lines = [
            f"Linear mixed model (REML): {self.formula}",
            f"{self.n_obs} observations, {self.n_groups} groups, converged={self.converged}",
        ]
        if self.fit_note:
            lines.append(f"Note: {self.fit_note}")
        lines.append(self.fixed.to_string(float_format=lambda x: f"{x:.4f}"))
        lines.append("Variance components: " + ", ".join(
            f"{k}={v:.4f}" for k, v in self.variance_components.items()))
        for contrast in self.contrasts.values():
            low, high = contrast.confidence_interval()
            lines.append(
                f"Contrast {contrast.name}: {contrast.estimate:.4f} (se {contrast.se:.4f}, "
                f"[{low:.4f}, {high:.4f}], p={contrast.pvalue:.4g})"
            )
        return "\n".join(lines)


def fit_lmm(
    data: pd.DataFrame,
    formula: str,
    *,
    groups: str,
    re_formula: str | None = None,
    vc_formula: dict[str, str] | None = None,
    confidence_level: float = 0.95,
    fit_note: str = "",
) -> MixedModelResult:
    """Fit a linear mixed model by REML with statsmodels and tidy the output.

    Args:
        data: Long data.
        formula: Patsy fixed-effects formula, e.g. ``"Reaction ~ Days"``.
        groups: Grouping column for random effects.
        re_formula: Random-effects formula within groups (e.g. ``"~Days"``);
            default a random intercept.
        vc_formula: Variance-component formulas (for crossed or nested effects).
        confidence_level: Level of the fixed-effect intervals.
        fit_note: Text kept on the result describing any data reduction.

    Returns:
        A :class:`MixedModelResult`; variance components are named
        ``"<groups> <term>"`` for the random effects, the ``vc_formula`` keys, and
        ``residual``.
    """
    import warnings

    from statsmodels.regression.mixed_linear_model import MixedLM

    level = check_confidence_level(confidence_level)
    model = MixedLM.from_formula(
        formula, data=data, groups=groups, re_formula=re_formula, vc_formula=vc_formula
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = model.fit(reml=True)
        except np.linalg.LinAlgError:
            # A singular step of the gradient optimiser; the derivative-free
            # one is slower but does not invert along the way.
            result = model.fit(reml=True, method="powell")
    names = model.exog_names
    fe = np.asarray(result.fe_params)
    cov = np.asarray(result.cov_params())[: len(names), : len(names)]
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = fe / se
    half = stats.norm.ppf(0.5 + level / 2.0) * se
    fixed = pd.DataFrame(
        {"estimate": fe, "se": se, "z": z, "pvalue": 2 * stats.norm.sf(np.abs(z)),
         "ci_low": fe - half, "ci_high": fe + half},
        index=pd.Index(names, name="term"),
    )
    components: dict[str, float] = {}
    cov_re = pd.DataFrame(result.cov_re)
    if re_formula is not None or not vc_formula:
        for term in cov_re.index:
            components[f"{groups} {term}"] = float(cov_re.loc[term, term])
    for name, value in zip(model.exog_vc.names if vc_formula else [], np.atleast_1d(result.vcomp)):
        components[name] = float(value)
    components["residual"] = float(result.scale)
    out = MixedModelResult(
        fixed=fixed,
        variance_components=components,
        formula=formula,
        n_obs=int(result.nobs),
        n_groups=len(model.group_labels),
        converged=bool(result.converged),
        fit_note=fit_note,
        random_covariance=cov_re,
        confidence_level=level,
    )
    out._design_info = getattr(model.data, "design_info", None) or model.data.model_spec  # type: ignore[attr-defined]
    out._cov = cov  # type: ignore[attr-defined]
    return out


def fit_crossed_lmm(
    data: pd.DataFrame,
    formula: str,
    *,
    variables: list[str],
    random: list[str],
    confidence_level: float = 0.95,
) -> MixedModelResult:
    """REML fit with crossed random intercepts, scaling to millions of rows.

    Uses the sufficient-statistics REML of :mod:`studies.analysis.crossed`
    (same criterion as lme4's ``lmer(..., REML = TRUE)``); fixed-effect
    standard errors are the usual ``sigma^2 (X' V^-1 X)^-1``.

    Args:
        data: Long data without missing values in the used columns.
        formula: ``"response ~ rhs"`` patsy formula.
        variables: Every column the right-hand side uses (its distinct
            combinations form the design cells).
        random: Columns with one random intercept per level each (crossed).
        confidence_level: Level of the fixed-effect intervals.

    Returns:
        A :class:`MixedModelResult` with variance components named after
        ``random`` plus ``residual``.

    Raises:
        ValueError: No random factor given, or a singular fixed-effects design.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> subject = np.repeat(np.arange(30), 10)
        >>> y = 1.0 + rng.normal(size=30)[subject] + rng.normal(size=300)
        >>> df = pd.DataFrame({"y": y, "subject": subject, "one": 0})
        >>> fit = fit_crossed_lmm(df, "y ~ 1", variables=["one"], random=["subject"])
        >>> round(float(fit.fixed.loc["Intercept", "estimate"]), 1)
        0.8
    """
    if not random:
        raise ValueError("random must name at least one grouping column")
    level = check_confidence_level(confidence_level)
    response, rhs = (part.strip() for part in formula.split("~", 1))
    cols = list(dict.fromkeys([response, *variables, *random]))
    data = data.dropna(subset=cols)
    stats_, design_info, names = crossed_lmm_arrays(
        data, rhs, variables=variables, random=random, response=response
    )
    try:
        beta, cov, sigma2, variances, converged = fit_crossed(stats_)
    except linalg.LinAlgError as exc:
        raise ValueError(f"fixed-effects design is singular (empty cells?): {exc}") from exc
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = beta / se
    half = stats.norm.ppf(0.5 + level / 2.0) * se
    fixed = pd.DataFrame(
        {"estimate": beta, "se": se, "z": z, "pvalue": 2 * stats.norm.sf(np.abs(z)),
         "ci_low": beta - half, "ci_high": beta + half},
        index=pd.Index(names, name="term"),
    )
    components = {name: float(v) for name, v in zip(random, variances)}
    components["residual"] = float(sigma2)
    out = MixedModelResult(
        fixed=fixed, variance_components=components, formula=formula,
        n_obs=int(stats_.n), n_groups=int(stats_.n_first), converged=converged,
        confidence_level=level,
    )
    out._design_info = design_info  # type: ignore[attr-defined]
    out._cov = cov  # type: ignore[attr-defined]
    return out


def study_mixed_model(
    frame: pd.DataFrame,
    *,
    score: str = "score",
    method: str = "method",
    culture: str = "style_culture",
    group: str = "group",
    group_culture: str = "group_culture",
    participant: str = "participant_id",
    content: str = "content_id",
    confidence_level: float = 0.95,
) -> MixedModelResult:
    """``score ~ method * style_culture * group`` with crossed random intercepts.

    Random intercepts for participant and content image; REML. Adds the
    ``in_group`` contrast (see module docstring) when at least one group has an
    own culture that appears among the style cultures and is also rated by
    another group.

    Args:
        frame: Long frame of one question's Likert scores.
        score: Response column; the other keywords name the factor columns.
        confidence_level: Level of the intervals.

    Returns:
        A :class:`MixedModelResult`.

    Raises:
        ValueError: Fewer than two participants or no variation in a factor.
    """
    cols = [score, method, culture, group, participant, content]
    data = frame.dropna(subset=cols)[cols + ([group_culture] if group_culture in frame else [])]
    if data[participant].nunique() < 2:
        raise ValueError("mixed model needs at least two participants")
    variables = [c for c in (method, culture, group) if data[c].nunique() > 1]
    if not variables:
        raise ValueError("mixed model needs variation in method, style culture or group")
    formula = f"{score} ~ " + " * ".join(f"C({c})" for c in variables)
    result = fit_crossed_lmm(
        data.rename(columns={participant: "participant", content: "content"})
        if participant != "participant" or content != "content" else data,
        formula,
        variables=variables,
        random=["participant", "content"],
        confidence_level=confidence_level,
    )
    contrast = _in_group_contrast(result, data, method, culture, group, group_culture)
    if contrast is not None:
        result.contrasts["in_group"] = contrast
    return result


def _design_rows(spec: object, grid: pd.DataFrame) -> np.ndarray:
    """Fixed-effects design rows of ``grid`` under the fitted formula's coding."""
    from patsy import DesignInfo

    if isinstance(spec, DesignInfo):
        return np.asarray(build_design_matrices([spec], grid)[0])
    return np.asarray(spec.get_model_matrix(grid))  # formulaic ModelSpec


def _in_group_contrast(
    result: MixedModelResult, data: pd.DataFrame, method: str, culture: str, group: str,
    group_culture: str,
) -> Contrast | None:
    if group_culture not in data.columns:
        return None
    own = data.drop_duplicates(group).set_index(group)[group_culture].dropna().to_dict()
    methods = sorted(data[method].unique())
    cultures = set(data[culture].unique())
    groups = sorted(data[group].unique())
    present = set(map(tuple, data[[method, culture, group]].drop_duplicates().to_numpy()))
    cells, weights = [], []
    used_groups = 0
    for g, c in own.items():
        others = [h for h in groups if h != g]
        if c not in cultures or not others:
            continue
        needed = [(m, c, h) for m in methods for h in [g, *others]]
        if not all(cell in present for cell in needed):
            continue
        used_groups += 1
        for m in methods:
            cells.append((m, c, g))
            weights.append(1.0 / len(methods))
            for h in others:
                cells.append((m, c, h))
                weights.append(-1.0 / (len(methods) * len(others)))
    if not used_groups:
        return None
    grid = pd.DataFrame(cells, columns=[method, culture, group])
    grid["score"] = 0.0
    design = _design_rows(result._design_info, grid)  # type: ignore[attr-defined]
    vector = (np.asarray(weights)[:, None] * design).sum(axis=0) / used_groups
    estimate = float(vector @ result.fixed["estimate"].to_numpy())
    se = float(np.sqrt(vector @ result._cov @ vector))  # type: ignore[attr-defined]
    return Contrast("in_group", estimate, se, result.confidence_level)
