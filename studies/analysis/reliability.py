"""Inter-rater reliability: Krippendorff's alpha, Shrout-Fleiss ICCs, split-half.

References:
    Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability.
    Annenberg School for Communication, University of Pennsylvania.
    Shrout, P. E., & Fleiss, J. L. (1979). Intraclass correlations: uses in
    assessing rater reliability. Psychological Bulletin, 86(2), 420-428.
    McGraw, K. O., & Wong, S. P. (1996). Forming inferences about some
    intraclass correlation coefficients. Psychological Methods, 1(1), 30-46.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ._common import ConfidenceInterval, as_rng, check_confidence_level

LEVELS = ("nominal", "ordinal", "interval", "ratio")
ICC_FORMS = ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k")


# --------------------------------------------------------------------------
# Krippendorff's alpha
# --------------------------------------------------------------------------


def _as_matrix(data: object, name: str) -> np.ndarray:
    try:
        matrix = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric array-like (NaN = missing): {exc}") from exc
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {matrix.shape}")
    return matrix


def _distance(level: str, values: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    """Squared difference function delta^2(c, k) of Krippendorff (2011), section C."""
    c = values[:, None]
    k = values[None, :]
    if level == "nominal":
        return (c != k).astype(np.float64)
    if level == "interval":
        return (c - k) ** 2
    if level == "ratio":
        total = c + k
        with np.errstate(invalid="ignore", divide="ignore"):
            delta = ((c - k) / total) ** 2
        return np.where(total == 0, 0.0, delta)
    # ordinal: (sum of n_g for g between c and k, minus half of n_c and n_k)^2
    cum = np.cumsum(n_c)
    lo = np.minimum(np.arange(len(values))[:, None], np.arange(len(values))[None, :])
    hi = np.maximum(np.arange(len(values))[:, None], np.arange(len(values))[None, :])
    between = cum[hi] - cum[lo] + n_c[lo]
    return (between - (n_c[:, None] + n_c[None, :]) / 2.0) ** 2


def krippendorff_alpha(data: object, level: str) -> float:
    """Krippendorff's alpha for a raters x units matrix with missing values.

    Builds the coincidence matrix of pairable values (units with at least two
    values) and compares observed with expected disagreement under the
    difference function of the chosen level of measurement.

    Args:
        data: Array-like ``(R, U)``: R raters (coders) by U units; ``NaN`` marks
            a missing value. Values are numbers (codes for nominal data).
        level: ``"nominal"``, ``"ordinal"``, ``"interval"`` or ``"ratio"``
            (ratio values must be non-negative).

    Returns:
        Alpha in ``(-inf, 1]``; 1 is perfect agreement, 0 chance agreement.
        ``nan`` when fewer than two pairable values exist or all pairable values
        are equal (no variation, alpha undefined).

    Raises:
        ValueError: Unknown ``level``, ``data`` not 2-D, or negative ratio data.
        TypeError: ``data`` not numeric.

    Example:
        >>> round(krippendorff_alpha([[1, 2, 3, 3], [1, 2, 3, 4]], "nominal"), 4)
        0.6957
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    matrix = _as_matrix(data, "data")
    if level == "ratio" and np.nanmin(matrix, initial=0.0) < 0:
        raise ValueError("data: ratio-level alpha needs non-negative values")
    present = ~np.isnan(matrix)
    values, inverse = np.unique(matrix[present], return_inverse=True)
    if len(values) == 0:
        return float("nan")
    # Counts n_uv of value v in unit u (units x values).
    unit_index = np.nonzero(present)[1]
    counts = np.zeros((matrix.shape[1], len(values)))
    np.add.at(counts, (unit_index, inverse), 1.0)
    m_u = counts.sum(axis=1)
    pairable = m_u >= 2
    counts, m_u = counts[pairable], m_u[pairable]
    if counts.size == 0:
        return float("nan")
    weighted = counts / (m_u - 1.0)[:, None]
    coincidence = counts.T @ weighted - np.diag(weighted.sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    delta = _distance(level, values, n_c)
    observed = (coincidence * delta).sum()
    expected = (np.outer(n_c, n_c) * delta).sum()
    if expected == 0:
        return float("nan")
    return float(1.0 - (n - 1.0) * observed / expected)


# --------------------------------------------------------------------------
# Intraclass correlations
# --------------------------------------------------------------------------


@dataclass
class ICCResult(Mapping):
    """The six Shrout-Fleiss intraclass correlations of one targets x raters table.

    Behaves as a read-only mapping ``form -> value`` with keys ``ICC1, ICC2, ICC3,
    ICC1k, ICC2k, ICC3k``.

    Attributes:
        coefficients: The six coefficients.
        n_targets: Number of targets (rows).
        n_raters: Number of raters (columns).
        mean_squares: ``MSR`` (targets), ``MSC`` (raters), ``MSE`` (residual),
            ``MSW`` (within targets) of the two-way ANOVA.
        confidence_level: Default level for :meth:`confidence_interval` and
            :meth:`summary`.
    """

    coefficients: dict[str, float]
    n_targets: int
    n_raters: int
    mean_squares: dict[str, float]
    confidence_level: float = 0.95

    def __getitem__(self, key: str) -> float:
        return self.coefficients[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.coefficients)

    def __len__(self) -> int:
        return len(self.coefficients)

    def _f_test(self, form: str) -> tuple[float, float, float]:
        ms = self.mean_squares
        n, k = self.n_targets, self.n_raters
        if form.startswith("ICC1"):
            return ms["MSR"] / ms["MSW"], n - 1, n * (k - 1)
        return ms["MSR"] / ms["MSE"], n - 1, (n - 1) * (k - 1)

    def pvalue(self, form: str) -> float:
        """One-sided p-value of the F test of ``form`` against zero."""
        f0, df1, df2 = self._f_test(form)
        return float(stats.f.sf(f0, df1, df2))

    def confidence_interval(
        self, form: str = "ICC2", confidence_level: float | None = None
    ) -> ConfidenceInterval:
        """Exact (ICC1, ICC3) or Satterthwaite (ICC2) interval of McGraw & Wong (1996).

        Args:
            form: One of ``ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k``.
            confidence_level: Two-sided level; defaults to ``self.confidence_level``.

        Raises:
            KeyError: Unknown form.
        """
        if form not in self.coefficients:
            raise KeyError(f"form must be one of {ICC_FORMS}, got {form!r}")
        level = check_confidence_level(confidence_level or self.confidence_level)
        q = 1.0 - (1.0 - level) / 2.0
        n, k = self.n_targets, self.n_raters
        ms = self.mean_squares
        average = form.endswith("k")
        if form.startswith("ICC2"):
            icc = self.coefficients["ICC2"]
            a = k * icc / (n * (1.0 - icc))
            b = 1.0 + k * icc * (n - 1) / (n * (1.0 - icc))
            v = (a * ms["MSC"] + b * ms["MSE"]) ** 2 / (
                (a * ms["MSC"]) ** 2 / (k - 1) + (b * ms["MSE"]) ** 2 / ((n - 1) * (k - 1))
            )
            f_low = stats.f.ppf(q, n - 1, v)
            f_high = stats.f.ppf(q, v, n - 1)
            denom = k * ms["MSC"] + (k * n - k - n) * ms["MSE"]
            low = n * (ms["MSR"] - f_low * ms["MSE"]) / (f_low * denom + n * ms["MSR"])
            high = n * (f_high * ms["MSR"] - ms["MSE"]) / (denom + n * f_high * ms["MSR"])
            if average:
                low, high = low * k / (1 + low * (k - 1)), high * k / (1 + high * (k - 1))
            return ConfidenceInterval(float(low), float(high))
        f0, df1, df2 = self._f_test(form)
        f_low = f0 / stats.f.ppf(q, df1, df2)
        f_high = f0 * stats.f.ppf(q, df2, df1)
        if average:
            return ConfidenceInterval(float(1 - 1 / f_low), float(1 - 1 / f_high))
        return ConfidenceInterval(
            float((f_low - 1) / (f_low + k - 1)), float((f_high - 1) / (f_high + k - 1))
        )

    def table(self, confidence_level: float | None = None) -> pd.DataFrame:
        """One row per form: ``icc``, ``ci_low``, ``ci_high``, ``pvalue``."""
        rows = []
        for form in ICC_FORMS:
            low, high = self.confidence_interval(form, confidence_level)
            rows.append(
                {"form": form, "icc": self.coefficients[form], "ci_low": low, "ci_high": high,
                 "pvalue": self.pvalue(form)}
            )
        return pd.DataFrame(rows).set_index("form")

    def summary(self) -> str:
        """A plain-text table for people."""
        head = (
            f"Intraclass correlations (Shrout & Fleiss 1979), {self.n_targets} targets x "
            f"{self.n_raters} raters, {self.confidence_level:.0%} intervals\n"
        )
        return head + self.table().to_string(float_format=lambda x: f"{x:.3f}")


def icc(ratings: object, *, confidence_level: float = 0.95) -> ICCResult:
    """The six Shrout & Fleiss (1979) intraclass correlations.

    ``ICC1``: one-way random (each target rated by different raters);
    ``ICC2``: two-way random, absolute agreement; ``ICC3``: two-way mixed,
    consistency; the ``k`` forms are the reliabilities of the mean of k raters.

    Args:
        ratings: Array-like or DataFrame ``(N, K)``: N targets by K raters, complete
            (no missing values), ``N >= 2`` and ``K >= 2``.
        confidence_level: Default interval level kept on the result.

    Returns:
        An :class:`ICCResult` mapping form name to value.

    Raises:
        ValueError: Missing values or fewer than two targets or raters.

    Example:
        >>> r = icc([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8],
        ...          [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
        >>> round(r["ICC3"], 2)
        0.71
    """
    x = _as_matrix(ratings, "ratings")
    if np.isnan(x).any():
        raise ValueError("ratings must be complete (targets x raters, no NaN)")
    n, k = x.shape
    if n < 2 or k < 2:
        raise ValueError(f"ratings needs at least 2 targets and 2 raters, got shape {x.shape}")
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((x - grand) ** 2).sum()
    ss_error = ss_total - ss_rows - ss_cols
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = ss_error / ((n - 1) * (k - 1))
    msw = (ss_cols + ss_error) / (n * (k - 1))
    values = {
        "ICC1": (msr - msw) / (msr + (k - 1) * msw),
        "ICC2": (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n),
        "ICC3": (msr - mse) / (msr + (k - 1) * mse),
        "ICC1k": (msr - msw) / msr,
        "ICC2k": (msr - mse) / (msr + (msc - mse) / n),
        "ICC3k": (msr - mse) / msr,
    }
    return ICCResult(
        coefficients={key: float(v) for key, v in values.items()},
        n_targets=n,
        n_raters=k,
        mean_squares={"MSR": float(msr), "MSC": float(msc), "MSE": float(mse), "MSW": float(msw)},
        confidence_level=check_confidence_level(confidence_level),
    )


# --------------------------------------------------------------------------
# Split-half reliability
# --------------------------------------------------------------------------


def spearman_brown(r: float | np.ndarray, factor: float = 2.0) -> float | np.ndarray:
    """Spearman-Brown prophecy: reliability of a test ``factor`` times as long.

    Example:
        >>> round(spearman_brown(0.5), 4)
        0.6667
    """
    return factor * r / (1.0 + (factor - 1.0) * r)


@dataclass
class SplitHalfResult:
    """Random split-half reliability of mean scores per target.

    Attributes:
        statistic: Mean Spearman-Brown corrected correlation over the splits.
        half_correlation: Mean uncorrected correlation between the halves.
        n_splits: Number of random splits of the raters.
        n_targets: Targets with a score in both halves of at least one split.
        distribution: Corrected coefficient of each split ``(n_splits,)``.
    """

    statistic: float
    half_correlation: float
    n_splits: int
    n_targets: int
    distribution: np.ndarray = field(repr=False)
    confidence_level: float = 0.95

    def confidence_interval(self, confidence_level: float | None = None) -> ConfidenceInterval:
        """Percentile range of the coefficient over random splits.

        This shows how much the estimate depends on the particular split; it is
        not a sampling interval for the population reliability.
        """
        level = check_confidence_level(confidence_level or self.confidence_level)
        finite = self.distribution[np.isfinite(self.distribution)]
        if finite.size == 0:
            return ConfidenceInterval(float("nan"), float("nan"))
        tail = (1.0 - level) / 2.0 * 100.0
        low, high = np.percentile(finite, [tail, 100.0 - tail])
        return ConfidenceInterval(float(low), float(high))

    def summary(self) -> str:
        low, high = self.confidence_interval()
        return (
            f"Split-half reliability (Spearman-Brown) {self.statistic:.3f} "
            f"[split range {low:.3f}, {high:.3f}], half r={self.half_correlation:.3f}, "
            f"{self.n_splits} splits, {self.n_targets} targets"
        )


def split_half(
    ratings: object,
    *,
    n_splits: int = 200,
    rng: np.random.Generator | int | None = None,
    confidence_level: float = 0.95,
) -> SplitHalfResult:
    """Split-half reliability of per-target mean scores, over random rater splits.

    Raters are split at random into two halves; each target's mean score is
    computed in each half (ignoring missing ratings) and the halves' Pearson
    correlation is stepped up with Spearman-Brown. Averaged over ``n_splits``.

    Args:
        ratings: Array-like ``(N, K)``: N targets by K raters, ``NaN`` = not rated.
            Needs ``K >= 2``.
        n_splits: Number of random splits.
        rng: Generator or seed for the splits.
        confidence_level: Default level for the split range.

    Returns:
        A :class:`SplitHalfResult`.

    Raises:
        ValueError: Fewer than two raters.
    """
    x = _as_matrix(ratings, "ratings")
    n, k = x.shape
    if k < 2:
        raise ValueError(f"ratings needs at least 2 raters (columns), got {k}")
    gen = as_rng(rng)
    present = ~np.isnan(x)
    filled = np.where(present, x, 0.0)
    # Membership of each rater in half A for every split: (n_splits, K).
    order = np.argsort(gen.random((n_splits, k)), axis=1)
    half_a = np.zeros((n_splits, k))
    np.put_along_axis(half_a, order[:, : k // 2], 1.0, axis=1)
    half_b = 1.0 - half_a
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_a = (half_a @ filled.T) / (half_a @ present.T)
        mean_b = (half_b @ filled.T) / (half_b @ present.T)
    r = _rowwise_pearson(mean_a, mean_b)
    corrected = spearman_brown(r)
    usable = np.isfinite(mean_a) & np.isfinite(mean_b)
    return SplitHalfResult(
        statistic=float(np.nanmean(corrected)) if np.isfinite(corrected).any() else float("nan"),
        half_correlation=float(np.nanmean(r)) if np.isfinite(r).any() else float("nan"),
        n_splits=n_splits,
        n_targets=int(usable.any(axis=0).sum()),
        distribution=corrected,
        confidence_level=check_confidence_level(confidence_level),
    )


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between matching rows of ``a`` and ``b``, skipping NaN pairs."""
    mask = np.isfinite(a) & np.isfinite(b)
    count = mask.sum(axis=1)
    a0 = np.where(mask, a, 0.0)
    b0 = np.where(mask, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = a0.sum(axis=1) / count
        mb = b0.sum(axis=1) / count
        da = np.where(mask, a0 - ma[:, None], 0.0)
        db = np.where(mask, b0 - mb[:, None], 0.0)
        r = (da * db).sum(axis=1) / np.sqrt((da**2).sum(axis=1) * (db**2).sum(axis=1))
    r[count < 3] = np.nan
    return r


# --------------------------------------------------------------------------
# Long-format helpers for reports
# --------------------------------------------------------------------------


def rating_matrix(
    frame: pd.DataFrame, *, rater: str = "participant_id", unit: str = "candidate_id",
    value: str = "score",
) -> pd.DataFrame:
    """Pivot long ratings to raters x units, averaging repeated ratings of a unit.

    Raises:
        KeyError: A named column is absent.
    """
    missing = [c for c in (rater, unit, value) if c not in frame.columns]
    if missing:
        raise KeyError(f"frame lacks column(s) {missing}")
    return frame.pivot_table(index=rater, columns=unit, values=value, aggfunc="mean")


def reliability_table(
    frame: pd.DataFrame,
    *,
    by: str = "group",
    rater: str = "participant_id",
    unit: str = "candidate_id",
    value: str = "score",
    n_splits: int = 100,
    rng: np.random.Generator | int | None = None,
    levels: tuple[str, ...] = LEVELS,
) -> pd.DataFrame:
    """Krippendorff's alpha at ``levels`` and split-half reliability per ``by``.

    Pick the level that fits the question: ordinal (and interval) for Likert
    ratings, nominal for 2AFC choices; the report asks for others only on request.

    ICCs need complete targets x raters tables, which crowd-sourced designs rarely
    give; they are computed only for subsets where every rater rated every unit
    (``icc2``/``icc2k`` columns, else NaN).

    Returns:
        DataFrame indexed by ``by`` with columns ``n_raters, n_units, n_ratings,
        alpha_<level>`` for each of ``levels``, ``split_half,
        split_half_low, split_half_high, icc2, icc2k``.
    """
    gen = as_rng(rng)
    rows = []
    for key, part in frame.groupby(by, sort=True, observed=True):
        matrix = rating_matrix(part, rater=rater, unit=unit, value=value)
        data = matrix.to_numpy(dtype=np.float64)
        row: dict[str, object] = {
            by: key,
            "n_raters": matrix.shape[0],
            "n_units": matrix.shape[1],
            "n_ratings": int(np.isfinite(data).sum()),
        }
        for level in levels:
            if level == "ratio" and np.nanmin(data, initial=0.0) < 0:
                row[f"alpha_{level}"] = float("nan")
                continue
            row[f"alpha_{level}"] = krippendorff_alpha(data, level)
        if matrix.shape[0] >= 2:
            sh = split_half(data.T, n_splits=n_splits, rng=gen)
            low, high = sh.confidence_interval()
            row.update(split_half=sh.statistic, split_half_low=low, split_half_high=high)
        complete = matrix.dropna(axis=1, how="any")
        if complete.shape[0] >= 2 and complete.shape[1] >= 2:
            result = icc(complete.to_numpy().T)
            row.update(icc2=result["ICC2"], icc2k=result["ICC2k"])
        rows.append(row)
    return pd.DataFrame(rows).set_index(by) if rows else pd.DataFrame()
