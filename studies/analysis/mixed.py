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

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from patsy import build_design_matrices
from scipy import linalg, stats

from ._common import ConfidenceInterval, check_confidence_level
from .correlation import holm
from .crossed import crossed_lmm_arrays, fit_crossed, satterthwaite_df


@dataclass
class Contrast:
    """A named linear contrast of fixed effects.

    With ``df`` (Satterthwaite) the statistic is referred to Student's t,
    without it to the standard normal.

    Attributes:
        name: E.g. ``in_group``, ``method:wct-adain``.
        estimate: Value of the contrast on the response scale.
        se: Its standard error.
        df: Degrees of freedom (``inf``: normal reference).
        family: Declared multiplicity family (``in_group``, ``method``,
            ``method x group``); ``p_adjusted`` is Holm within it.
        p_adjusted: Holm-adjusted p within the family.
        vector: Contrast weights on the fixed effects.
    """

    name: str
    estimate: float
    se: float
    confidence_level: float = 0.95
    df: float = float("inf")
    family: str = ""
    p_adjusted: float = float("nan")
    vector: np.ndarray | None = field(default=None, repr=False)

    @property
    def statistic(self) -> float:
        return self.estimate / self.se if self.se > 0 else float("nan")

    @property
    def pvalue(self) -> float:
        return float(2.0 * stats.t.sf(abs(self.statistic), self.df))

    def confidence_interval(self, confidence_level: float | None = None) -> ConfidenceInterval:
        level = check_confidence_level(confidence_level or self.confidence_level)
        half = stats.t.ppf(0.5 + level / 2.0, self.df) * self.se
        return ConfidenceInterval(self.estimate - half, self.estimate + half)


@dataclass
class MarginalMean:
    """An estimated marginal mean: the model's mean score of one level of a factor,
    with equal weights over the levels of the other fixed factors (emmeans' default).

    Attributes:
        factor: ``method``, ``group`` or ``in_group``.
        level: The level (a method, a group, ``own group`` / ``other groups``).
        group: The participant group it is computed within (``method`` and
            ``in_group`` per group), ``None`` when averaged over groups.
        estimate: Value on the response scale.
        se: Its standard error.
        df: Satterthwaite degrees of freedom of the interval.
        vector: Weights on the fixed effects.
    """

    factor: str
    level: str
    group: str | None
    estimate: float = float("nan")
    se: float = float("nan")
    confidence_level: float = 0.95
    df: float = float("inf")
    vector: np.ndarray | None = field(default=None, repr=False)

    def confidence_interval(self, confidence_level: float | None = None) -> ConfidenceInterval:
        level = check_confidence_level(confidence_level or self.confidence_level)
        half = stats.t.ppf(0.5 + level / 2.0, self.df) * self.se
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
        marginal_means: Estimated marginal means (:func:`study_mixed_model`).
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
    marginal_means: list[MarginalMean] = field(default_factory=list)
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
    out._stats = stats_  # type: ignore[attr-defined]
    out._variances_sorted = variances[stats_.order]  # type: ignore[attr-defined]
    return out


#: Above this many random-effect levels besides the largest factor, the dense
#: Schur complement of the full crossed fit (levels^2 memory, levels^3 per
#: evaluation) no longer fits the report's time budget; the model is then fitted
#: on candidate x group cell means (see :func:`study_mixed_model`).
MAX_DENSE_LEVELS = 1500


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
    style: str = "style_id",
    candidate: str = "candidate_id",
    confidence_level: float = 0.95,
    max_dense_levels: int = MAX_DENSE_LEVELS,
    ordinal_check: bool = True,
) -> MixedModelResult:
    """``score ~ method * style_culture * group`` with crossed random intercepts.

    The scale is treated as interval (the primary model). Fixed effects use
    effects (sum-to-zero) coding; random intercepts for participant,
    candidate, content image, style image and candidate x group (a group's
    taste for one image beyond the shared one); REML. The reported effects are
    estimated marginal means (equal weights over the other factors' levels) and
    named contrasts of them, each with Satterthwaite degrees of freedom:

    * ``in_group``: see the module docstring;
    * ``method:a-b``: difference of the two methods' marginal means;
    * ``method:a-b x group:g-h``: how much larger that difference is in group
      g than in group h.

    Holm adjustment is within each of these three families. ``marginal_means``
    holds the means themselves, with t intervals on Satterthwaite df: per
    method, per group, per method within each group, and for each group with
    an own culture its ratings of that culture's styles (``own group``) beside
    the other groups' ratings of the same styles (``other groups``), also
    averaged over such groups (their difference is ``in_group``).

    When the random factors other than the largest have more than
    ``max_dense_levels`` levels together (about a million responses), the same
    fixed effects are fitted to candidate x group mean scores with random
    intercepts for candidate, content and style; the residual then holds the
    candidate x group effect and the rater noise of each mean, and participant
    effects enter only through those means (negligible with hundreds of
    participants per group). ``fit_note`` says so.

    With ``ordinal_check`` the same model is refitted to the mid-ranks of the
    scores (an ordinal robustness check) and each contrast's rank-scale
    estimate and p are stored in ``result.ordinal``.

    Args:
        frame: Long frame of one question's Likert scores.
        score: Response column; the other keywords name the factor columns
            (``style`` and ``candidate`` may be absent: then not modelled).
        confidence_level: Level of the intervals.
        max_dense_levels: Switch to the cell-mean fit above this.
        ordinal_check: Fit the rank-based robustness check.

    Returns:
        A :class:`MixedModelResult`.

    Raises:
        ValueError: Fewer than two participants or no variation in a factor.
    """
    base = [score, method, culture, group, participant, content]
    optional = [c for c in (style, candidate) if c in frame.columns]
    cols = base + optional + ([group_culture] if group_culture in frame.columns else [])
    data = frame.dropna(subset=base + optional)[cols]
    if data[participant].nunique() < 2:
        raise ValueError("mixed model needs at least two participants")
    variables = [c for c in (method, culture, group) if data[c].nunique() > 1]
    if not variables:
        raise ValueError("mixed model needs variation in method, style culture or group")
    rhs = " * ".join(f"C({c}, Sum)" for c in variables)
    data = data.assign(_participant=data[participant], _content=data[content])
    random = {"participant": "_participant", "content": "_content"}
    if style in data.columns:
        data["_style"] = data[style]
        random["style"] = "_style"
    if candidate in data.columns:
        data["_candidate"] = data[candidate]
        random["candidate"] = "_candidate"
        if data[group].nunique() > 1:
            data["_candidate_group"] = (data[candidate].astype(str) + "|"
                                        + data[group].astype(str))
            random["candidate x group"] = "_candidate_group"
    random = {name: col for name, col in random.items() if data[col].nunique() > 1}
    levels = sorted((data[col].nunique() for col in random.values()), reverse=True)
    note = ""
    fit_data, fit_random = data, random
    if sum(levels[1:]) > max_dense_levels and "candidate" in random:
        keys = [candidate, group, method, culture, content] + ([style] if "style" in random else [])
        fit_data = (data.groupby(keys, observed=True, sort=False)[score].mean().reset_index()
                    .assign(_candidate=lambda d: d[candidate], _content=lambda d: d[content]))
        if "style" in random:
            fit_data["_style"] = fit_data[style]
        fit_random = {k: v for k, v in random.items() if k in ("candidate", "content", "style")}
        per_group = data.groupby(group)[participant].nunique()
        note = (
            f"fitted on {len(fit_data):,} candidate x group mean scores of {len(data):,} "
            f"ratings (random intercepts: {', '.join(fit_random)}; the residual holds "
            "candidate x group and rater noise; participant effects enter only through "
            f"the means, from at least {int(per_group.min()):,} participants per group), "
            "because the full crossed fit exceeds the report's time budget at this size"
        )

    def fit(response: pd.Series) -> tuple[MixedModelResult, object]:
        frame_ = fit_data.assign(_y=response)
        result, stats_ = _fit_crossed_detail(
            frame_, f"_y ~ {rhs}", variables=variables, random=list(fit_random.values()),
            names=list(fit_random), confidence_level=confidence_level)
        return result, stats_

    result, stats_ = fit(fit_data[score])
    result.formula = f"{score} ~ {rhs}"
    result.fit_note = note
    result.n_obs = len(data)
    result.n_groups = int(data[participant].nunique())
    contrasts = _named_contrasts(result, data, method, culture, group, group_culture)
    means = _marginal_means(result, data, method, culture, group, group_culture)
    _finish_contrasts(result, stats_, contrasts, means)
    if ordinal_check:
        ranks = fit_data[score].rank() if not note else _ranked_cell_means(
            data, score, fit_data, candidate, group)
        ranked, ranked_stats = fit(ranks)
        ordinal = {c.name: Contrast(c.name, 0.0, 0.0, vector=c.vector) for c in contrasts}
        for c in ordinal.values():
            c.estimate = float(c.vector @ ranked.fixed["estimate"].to_numpy())
            c.se = float(np.sqrt(c.vector @ ranked._cov @ c.vector))  # type: ignore[attr-defined]
        _finish_contrasts(ranked, ranked_stats, list(ordinal.values()))
        result.ordinal = ranked.contrasts  # type: ignore[attr-defined]
    return result


def _ranked_cell_means(data, score, fit_data, candidate, group) -> pd.Series:
    ranked = data.assign(_rank=data[score].rank())
    means = ranked.groupby([candidate, group], observed=True)["_rank"].mean()
    return pd.Series(means.reindex(pd.MultiIndex.from_frame(fit_data[[candidate, group]]))
                     .to_numpy(), index=fit_data.index)


def _fit_crossed_detail(
    data: pd.DataFrame, formula: str, *, variables: list[str], random: list[str],
    names: list[str], confidence_level: float,
) -> tuple[MixedModelResult, object]:
    """:func:`fit_crossed_lmm` keeping what Satterthwaite's df need."""
    result = fit_crossed_lmm(data, formula, variables=variables, random=random,
                             confidence_level=confidence_level)
    result.variance_components = {
        name: result.variance_components[col] for name, col in zip(names, random)
    } | {"residual": result.variance_components["residual"]}
    return result, result._stats  # type: ignore[attr-defined]


def _finish_contrasts(
    result: MixedModelResult, stats_: object, contrasts: list[Contrast],
    means: Sequence[MarginalMean] = (),
) -> None:
    """Estimates, SEs, Satterthwaite df and Holm within families; stored on ``result``.

    The marginal means get their estimates, SEs and df from the same
    Satterthwaite call (one Hessian of the REML deviance for all of them).
    """
    if not contrasts and not means:
        return
    beta = result.fixed["estimate"].to_numpy()
    cov = result._cov  # type: ignore[attr-defined]
    estimates = [*contrasts, *means]
    matrix = np.vstack([c.vector for c in estimates])
    variances = result._variances_sorted  # type: ignore[attr-defined]
    sigma2 = result.variance_components["residual"]
    dfs = satterthwaite_df(stats_, variances, sigma2, matrix)
    for c, df in zip(estimates, dfs):
        c.estimate = float(c.vector @ beta)
        c.se = float(np.sqrt(max(c.vector @ cov @ c.vector, 0.0)))
        c.df = float(df)
        c.confidence_level = result.confidence_level
    result.marginal_means = list(means)
    for family in {c.family for c in contrasts}:
        members = [c for c in contrasts if c.family == family]
        adjusted = holm(np.array([c.pvalue for c in members]))
        for c, value in zip(members, adjusted):
            c.p_adjusted = float(value)
    result.contrasts = {c.name: c for c in contrasts}


def _named_contrasts(
    result: MixedModelResult, data: pd.DataFrame, method: str, culture: str, group: str,
    group_culture: str,
) -> list[Contrast]:
    """Contrast vectors of the in-group effect, method pairs and method x group pairs."""
    from itertools import combinations

    methods, cultures, groups, grid, rows = _cell_grid(result, data, method, culture, group)
    index = {key: i for i, key in enumerate(map(tuple, grid[[method, culture, group]].to_numpy()))}

    def emm(m: object, gs: list[object]) -> np.ndarray:
        return np.mean([rows[index[(m, c, g)]] for c in cultures for g in gs], axis=0)

    out = []
    in_group = _in_group_contrast(result, data, method, culture, group, group_culture)
    if in_group is not None:
        in_group.family = "in_group"
        out.append(in_group)
    for a, b in combinations(methods, 2):
        out.append(Contrast(f"method:{a}-{b}", 0.0, 0.0, family="method",
                            vector=emm(a, groups) - emm(b, groups)))
        for g, h in combinations(groups, 2):
            vector = (emm(a, [g]) - emm(b, [g])) - (emm(a, [h]) - emm(b, [h]))
            out.append(Contrast(f"method:{a}-{b} x group:{g}-{h}", 0.0, 0.0,
                                family="method x group", vector=vector))
    return out


def _cell_grid(
    result: MixedModelResult, data: pd.DataFrame, method: str, culture: str, group: str,
) -> tuple[list, list, list, pd.DataFrame, np.ndarray]:
    """Every method x culture x group cell and its fixed-effects design row."""
    methods = sorted(data[method].unique())
    cultures = sorted(data[culture].unique())
    groups = sorted(data[group].unique())
    grid = pd.DataFrame(
        [(m, c, g) for m in methods for c in cultures for g in groups],
        columns=[method, culture, group],
    ).assign(_y=0.0)
    rows = _design_rows(result._design_info, grid)  # type: ignore[attr-defined]
    return methods, cultures, groups, grid, rows


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
    halves = _in_group_halves(result, data, method, culture, group, group_culture)
    if not halves:
        return None
    vector = np.mean([own - others for own, others in halves.values()], axis=0)
    estimate = float(vector @ result.fixed["estimate"].to_numpy())
    se = float(np.sqrt(vector @ result._cov @ vector))  # type: ignore[attr-defined]
    return Contrast("in_group", estimate, se, result.confidence_level, vector=vector)


def _in_group_halves(
    result: MixedModelResult, data: pd.DataFrame, method: str, culture: str, group: str,
    group_culture: str,
) -> dict[object, tuple[np.ndarray, np.ndarray]]:
    """Per group g with an own culture c(g): the fixed-effect weights of g's marginal mean
    for c(g)'s styles and of the other groups' mean for the same styles (equal weights
    over methods and over the other groups). Groups whose cells are not all observed,
    or whose culture has no styles, are left out."""
    if group_culture not in data.columns:
        return {}
    own = data.drop_duplicates(group).set_index(group)[group_culture].dropna().to_dict()
    methods = sorted(data[method].unique())
    cultures = set(data[culture].unique())
    groups = sorted(data[group].unique())
    present = set(map(tuple, data[[method, culture, group]].drop_duplicates().to_numpy()))
    halves = {}
    for g, c in sorted(own.items(), key=lambda item: str(item[0])):
        others = [h for h in groups if h != g]
        if c not in cultures or not others:
            continue
        if not all((m, c, h) in present for m in methods for h in [g, *others]):
            continue
        grid = pd.DataFrame([(m, c, h) for h in [g, *others] for m in methods],
                            columns=[method, culture, group]).assign(score=0.0)
        rows = _design_rows(result._design_info, grid)  # type: ignore[attr-defined]
        halves[g] = (rows[: len(methods)].mean(axis=0), rows[len(methods):].mean(axis=0))
    return halves


def _marginal_means(
    result: MixedModelResult, data: pd.DataFrame, method: str, culture: str, group: str,
    group_culture: str,
) -> list[MarginalMean]:
    """Weight vectors of the estimated marginal means (see :func:`study_mixed_model`)."""
    methods, _cultures, groups, grid, rows = _cell_grid(result, data, method, culture, group)

    def average(**fixed: object) -> np.ndarray:
        keep = np.ones(len(grid), bool)
        for column, value in fixed.items():
            keep &= (grid[column] == value).to_numpy()
        return rows[keep].mean(axis=0)

    out = [MarginalMean("method", str(m), None, vector=average(**{method: m})) for m in methods]
    out += [MarginalMean("group", str(g), str(g), vector=average(**{group: g})) for g in groups]
    out += [MarginalMean("method", str(m), str(g), vector=average(**{method: m, group: g}))
            for g in groups for m in methods]
    halves = _in_group_halves(result, data, method, culture, group, group_culture)
    for g, (own, others) in halves.items():
        out += [MarginalMean("in_group", "own group", str(g), vector=own),
                MarginalMean("in_group", "other groups", str(g), vector=others)]
    if halves:
        out += [MarginalMean("in_group", "own group", None,
                             vector=np.mean([own for own, _ in halves.values()], axis=0)),
                MarginalMean("in_group", "other groups", None,
                             vector=np.mean([o for _, o in halves.values()], axis=0))]
    return out
