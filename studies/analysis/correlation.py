"""Metric-human agreement and its comparison between participant groups.

Every interval here resamples participants, never single responses: the
ratings of one person are correlated, and resampling responses would treat
them as independent and give intervals that are too narrow.

The core trick is algebraic: a participant bootstrap or a permutation of
participants between groups only changes how participants' per-candidate
sums and counts are weighted, so every replicate's per-candidate mean score is
``(w @ sums) / (w @ counts)`` for a weight matrix ``w``; all replicates come
out of one matrix product.

References:
    Fisher, R. A. (1921). On the "probable error" of a coefficient of correlation
    deduced from a small sample. Metron, 1, 3-32.
    Cohen, J., & Cohen, P. (1983). Applied multiple regression/correlation
    analysis for the behavioral sciences, formula 2.8.5.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from ._common import (
    ConfidenceInterval,
    as_rng,
    bootstrap_weights,
    check_confidence_level,
)

CORRELATIONS = ("pearson", "spearman", "kendall")

# Bootstrap replicates processed per chunk for Kendall's tau: each chunk holds
# (chunk x pairs) sign products, so this bounds memory to about 8 bytes x 2e6.
_KENDALL_CELLS_PER_CHUNK = 2_000_000
# Above this many candidates the O(K^2) pairwise form loses to scipy's
# O(K log K) algorithm run once per replicate.
_KENDALL_MAX_PAIRWISE_K = 150


# --------------------------------------------------------------------------
# Fisher r-to-z
# --------------------------------------------------------------------------


def fisher_z(r: float | np.ndarray) -> float | np.ndarray:
    """Fisher's variance-stabilising transform ``atanh(r)``.

    Example:
        >>> round(float(fisher_z(0.5)), 4)
        0.5493
    """
    return np.arctanh(np.clip(r, -1.0 + 1e-15, 1.0 - 1e-15))


def correlation_interval(
    r: float, n: int, *, confidence_level: float = 0.95
) -> ConfidenceInterval:
    """Fisher-z interval for a Pearson correlation from ``n`` pairs (``n > 3``).

    Raises:
        ValueError: ``n <= 3``.
    """
    if n <= 3:
        raise ValueError(f"n must exceed 3 for a Fisher interval, got {n}")
    level = check_confidence_level(confidence_level)
    half = stats.norm.ppf(0.5 + level / 2.0) / np.sqrt(n - 3)
    z = fisher_z(r)
    return ConfidenceInterval(float(np.tanh(z - half)), float(np.tanh(z + half)))


def compare_independent(r1: float, n1: int, r2: float, n2: int) -> tuple[float, float]:
    """Fisher r-to-z test that two correlations from independent samples are equal.

    ``z = (atanh r1 - atanh r2) / sqrt(1/(n1-3) + 1/(n2-3))``, referred to the
    standard normal (Cohen & Cohen 1983, formula 2.8.5).

    Args:
        r1: Correlation in sample 1, in ``[-1, 1]``.
        n1: Size of sample 1 (``> 3``).
        r2: Correlation in sample 2, in ``[-1, 1]``.
        n2: Size of sample 2 (``> 3``).

    Returns:
        ``(z, p)`` with the two-sided p-value.

    Raises:
        ValueError: A correlation outside ``[-1, 1]`` or a sample size ``<= 3``.

    Example:
        >>> z, p = compare_independent(0.61, 100, 0.35, 100)
        >>> round(z, 2), round(p, 3)
        (2.39, 0.017)
    """
    for name, r in (("r1", r1), ("r2", r2)):
        if not -1.0 <= r <= 1.0:
            raise ValueError(f"{name} must lie in [-1, 1], got {r}")
    for name, n in (("n1", n1), ("n2", n2)):
        if n <= 3:
            raise ValueError(f"{name} must exceed 3, got {n}")
    z = (fisher_z(r1) - fisher_z(r2)) / np.sqrt(1.0 / (n1 - 3) + 1.0 / (n2 - 3))
    return float(z), float(2.0 * stats.norm.sf(abs(z)))


# --------------------------------------------------------------------------
# Vectorised correlations of many replicates against one fixed vector
# --------------------------------------------------------------------------


def _masked_pearson(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Pearson r of each row of ``y`` (B, K) with the matching row of ``x`` (B, K),
    over entries finite in both; NaN with fewer than 3 such entries."""
    mask = np.isfinite(y) & np.isfinite(x)
    count = mask.sum(axis=1)
    y0 = np.where(mask, y, 0.0)
    x0 = np.where(mask, x, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        yc = np.where(mask, y0 - (y0.sum(axis=1) / count)[:, None], 0.0)
        xc = np.where(mask, x0 - (x0.sum(axis=1) / count)[:, None], 0.0)
        r = (yc * xc).sum(axis=1) / np.sqrt((yc**2).sum(axis=1) * (xc**2).sum(axis=1))
    r[count < 3] = np.nan
    return r


def _masked_kendall(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Kendall tau-b of each row of ``y`` (B, K) with ``x`` (K,), skipping NaN in ``y``."""
    k = x.shape[0]
    i, j = np.triu_indices(k, 1)
    sx = np.sign(x[i] - x[j])
    out = np.empty(y.shape[0])
    chunk = max(1, _KENDALL_CELLS_PER_CHUNK // max(1, len(i)))
    for start in range(0, y.shape[0], chunk):
        block = y[start : start + chunk]
        diff = block[:, i] - block[:, j]
        valid = np.isfinite(diff)
        sy = np.sign(np.where(valid, diff, 0.0))
        concordance = sy @ sx
        untied_x = (valid & (sx != 0)).sum(axis=1)
        untied_y = np.count_nonzero(sy, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + chunk] = concordance / np.sqrt(untied_x * untied_y)
        present = np.isfinite(block).sum(axis=1)
        out[start : start + chunk][present < 3] = np.nan
    return out


def _looped_kendall(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Kendall tau-b per row with scipy (O(K log K) each), skipping NaN in ``y``."""
    out = np.full(y.shape[0], np.nan)
    complete = np.isfinite(y).all(axis=1)
    for row in range(y.shape[0]):
        if complete[row]:
            out[row] = stats.kendalltau(y[row], x).statistic
        else:
            mask = np.isfinite(y[row])
            if mask.sum() >= 3:
                out[row] = stats.kendalltau(y[row, mask], x[mask]).statistic
    return out


def correlate_rows(y: np.ndarray, x: np.ndarray, kind: str) -> np.ndarray:
    """Correlation of each row of ``y`` with ``x``, skipping NaN entries row by row.

    Fully vectorised: bootstrap replicates in which some candidates received no
    rating are handled with masks, not a Python loop.

    Args:
        y: ``(B, K)`` replicate scores (NaN = candidate absent in that replicate).
        x: ``(K,)`` fixed scores (e.g. a metric).
        kind: ``"pearson"``, ``"spearman"`` or ``"kendall"``.

    Returns:
        ``(B,)`` correlations (NaN where fewer than 3 pairs or no variation).

    Raises:
        ValueError: Unknown ``kind``.
    """
    if kind not in CORRELATIONS:
        raise ValueError(f"kind must be one of {CORRELATIONS}, got {kind!r}")
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))
    x = np.asarray(x, dtype=np.float64)
    keep = np.isfinite(x)
    y, x = y[:, keep], x[keep]
    if x.shape[0] < 3:
        return np.full(y.shape[0], np.nan)
    if kind == "kendall":
        if x.shape[0] <= _KENDALL_MAX_PAIRWISE_K:
            return _masked_kendall(y, x)
        return _looped_kendall(y, x)
    xs = np.broadcast_to(x, y.shape)
    if kind == "spearman":
        missing = ~np.isfinite(y)
        if missing.any():
            # Ranks among the candidates present in each replicate.
            xs = np.where(missing, np.nan, xs)
            y = stats.rankdata(y, axis=1, nan_policy="omit")
            xs = stats.rankdata(xs, axis=1, nan_policy="omit")
        else:
            y = stats.rankdata(y, axis=1)
            xs = np.broadcast_to(stats.rankdata(x), y.shape)
    return _masked_pearson(y, xs)


# --------------------------------------------------------------------------
# Participant x candidate sufficient statistics
# --------------------------------------------------------------------------


@dataclass
class ScoreTable:
    """Per-participant sums and counts of scores per candidate.

    Attributes:
        participants: Participant ids, in row order ``(P,)``.
        candidates: Candidate ids, in column order ``(K,)``.
        sums: ``(P, K)`` sum of scores.
        counts: ``(P, K)`` number of scores.
    """

    participants: np.ndarray
    candidates: np.ndarray
    sums: np.ndarray
    counts: np.ndarray

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, *, participant: str = "participant_id",
        candidate: str = "candidate_id", score: str = "score",
        candidates: np.ndarray | None = None,
    ) -> ScoreTable:
        """Build from a long frame (one row per score); rows with NaN score are skipped."""
        frame = frame[frame[score].notna()]
        p_codes, p_ids = pd.factorize(frame[participant], sort=True)
        if candidates is None:
            c_codes, c_ids = pd.factorize(frame[candidate], sort=True)
            c_ids = np.asarray(c_ids)
        else:
            c_ids = np.asarray(candidates)
            c_codes = pd.Index(c_ids).get_indexer(frame[candidate])
            if (c_codes < 0).any():
                raise ValueError("frame has candidates outside the given candidate list")
        shape = (len(p_ids), len(c_ids))
        flat = p_codes.astype(np.int64) * shape[1] + c_codes
        size = shape[0] * shape[1]
        sums = np.bincount(flat, weights=frame[score].to_numpy(np.float64), minlength=size)
        counts = np.bincount(flat, minlength=size).astype(np.float64)
        return cls(np.asarray(p_ids), c_ids, sums.reshape(shape), counts.reshape(shape))

    def means(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Per-candidate mean score; with ``weights (B, P)`` one row per replicate."""
        with np.errstate(invalid="ignore", divide="ignore"):
            if weights is None:
                return self.sums.sum(axis=0) / self.counts.sum(axis=0)
            return (weights @ self.sums) / (weights @ self.counts)


# --------------------------------------------------------------------------
# Agreement per group x question x metric
# --------------------------------------------------------------------------


@dataclass
class AgreementResult:
    """Correlations between automatic metrics and mean human scores.

    Attributes:
        table: One row per ``group, question, metric, correlation`` with
            ``statistic, ci_low, ci_high, n_candidates, n_participants,
            n_responses``; intervals are participant-bootstrap percentile intervals.
        confidence_level: Level of the stored intervals.
        n_resamples: Bootstrap replicates per cell.
        distributions: Bootstrap replicates keyed by the row's index tuple.
    """

    table: pd.DataFrame
    confidence_level: float
    n_resamples: int
    distributions: dict[tuple, np.ndarray] = field(default_factory=dict, repr=False)

    def confidence_interval(self, confidence_level: float | None = None) -> pd.DataFrame:
        """``ci_low, ci_high`` per row, recomputed from the stored replicates."""
        level = check_confidence_level(confidence_level or self.confidence_level)
        tail = (1.0 - level) / 2.0 * 100.0
        rows = {}
        for key, dist in self.distributions.items():
            finite = dist[np.isfinite(dist)]
            rows[key] = (
                np.percentile(finite, [tail, 100 - tail]) if finite.size else [np.nan, np.nan]
            )
        out = pd.DataFrame.from_dict(rows, orient="index", columns=["ci_low", "ci_high"])
        out.index = pd.MultiIndex.from_tuples(out.index, names=self.table.index.names)
        return out

    def summary(self) -> str:
        return (
            f"Metric-human agreement, {self.confidence_level:.0%} participant-bootstrap "
            f"intervals ({self.n_resamples} resamples)\n"
            + self.table.to_string(float_format=lambda x: f"{x:.3f}")
        )


def metric_agreement(
    frame: pd.DataFrame,
    metrics: list[str],
    *,
    group: str = "group",
    question: str = "question_id",
    participant: str = "participant_id",
    candidate: str = "candidate_id",
    score: str = "score",
    correlations: tuple[str, ...] = CORRELATIONS,
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    rng: np.random.Generator | int | None = None,
) -> AgreementResult:
    """Spearman, Kendall tau-b and Pearson between each metric and mean human score.

    For each ``group x question`` the human score of a candidate is the mean of
    its scores; each metric is correlated with it over candidates. Intervals are
    percentile intervals of a bootstrap that resamples participants (with all
    their responses) within the group.

    Args:
        frame: Long frame, one row per scored candidate, with the named columns
            and one column per metric (constant within a candidate).
        metrics: Metric column names.
        group: Participant-group column.
        question: Question column.
        participant: Participant id column.
        candidate: Candidate id column.
        score: Human score column (higher = better).
        correlations: Subset of ``("pearson", "spearman", "kendall")``.
        n_resamples: Bootstrap replicates per ``group x question``.
        confidence_level: Interval level.
        rng: Generator or seed.

    Returns:
        An :class:`AgreementResult`.

    Raises:
        KeyError: A named column is missing.
    """
    level = check_confidence_level(confidence_level)
    needed = [group, question, participant, candidate, score, *metrics]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise KeyError(f"frame lacks column(s) {missing}")
    gen = as_rng(rng)
    tail = (1.0 - level) / 2.0 * 100.0
    metric_by_candidate = frame.groupby(candidate, sort=True)[list(metrics)].first()
    rows, dists = [], {}
    for (g, q), part in frame.groupby([group, question], sort=True, observed=True):
        table = ScoreTable.from_frame(
            part, participant=participant, candidate=candidate, score=score
        )
        if table.counts.size == 0:
            continue
        point = table.means()
        weights = bootstrap_weights(len(table.participants), n_resamples, gen)
        replicates = table.means(weights)
        metric_values = metric_by_candidate.loc[table.candidates]
        n_responses = int(table.counts.sum())
        for metric in metrics:
            x = metric_values[metric].to_numpy(np.float64)
            n_pairs = int((np.isfinite(x) & np.isfinite(point)).sum())
            for kind in correlations:
                estimate = float(correlate_rows(point[None, :], x, kind)[0])
                dist = correlate_rows(replicates, x, kind)
                finite = dist[np.isfinite(dist)]
                low, high = (
                    np.percentile(finite, [tail, 100 - tail]) if finite.size else (np.nan, np.nan)
                )
                key = (g, q, metric, kind)
                dists[key] = dist
                rows.append({
                    "group": g, "question": q, "metric": metric, "correlation": kind,
                    "statistic": estimate, "ci_low": float(low), "ci_high": float(high),
                    "n_candidates": n_pairs, "n_participants": len(table.participants),
                    "n_responses": n_responses,
                })
    columns = ["group", "question", "metric", "correlation"]
    out = pd.DataFrame(rows)
    out = out.set_index(columns) if rows else out
    return AgreementResult(out, level, n_resamples, dists)


# --------------------------------------------------------------------------
# Between groups
# --------------------------------------------------------------------------


@dataclass
class GroupComparisonResult:
    """Differences of metric-human correlations between pairs of groups.

    Attributes:
        table: One row per ``question, metric, group_a, group_b`` with ``r_a, r_b,
            n_a, n_b`` (candidates), ``difference`` (r_a - r_b), ``fisher_z,
            fisher_p`` (independent-samples Fisher test on Pearson r),
            ``perm_p`` (participant permutation test on the chosen correlation),
            and Holm / Benjamini-Hochberg adjusted ``perm_p`` across metrics
            within each question and group pair.
        correlation: Correlation used by the permutation test.
        n_permutations: Permutations per comparison.
    """

    table: pd.DataFrame
    correlation: str
    n_permutations: int
    alpha: float = 0.05

    def confidence_interval(self, confidence_level: float = 0.95) -> pd.DataFrame:
        """Interval for the difference of Pearson correlations, ``pearson_a - pearson_b``.

        Zou's (2007) method: combines the two Fisher-z intervals, so it is
        asymmetric like the correlations themselves (Psychological Methods 12(4),
        399-413, eq. 13). It assumes independent samples, as the Fisher test does.

        Returns:
            DataFrame with ``difference, ci_low, ci_high`` per row of :attr:`table`.
        """
        rows = []
        for r1, n1, r2, n2 in self.table[["pearson_a", "n_a", "pearson_b", "n_b"]].itertuples(
            index=False
        ):
            if min(n1, n2) <= 3 or not (np.isfinite(r1) and np.isfinite(r2)):
                rows.append((r1 - r2, np.nan, np.nan))
                continue
            l1, u1 = correlation_interval(r1, n1, confidence_level=confidence_level)
            l2, u2 = correlation_interval(r2, n2, confidence_level=confidence_level)
            d = r1 - r2
            rows.append((
                d,
                d - np.sqrt((r1 - l1) ** 2 + (u2 - r2) ** 2),
                d + np.sqrt((u1 - r1) ** 2 + (r2 - l2) ** 2),
            ))
        return pd.DataFrame(rows, columns=["difference", "ci_low", "ci_high"],
                            index=self.table.index)

    def significant(self, method: str = "holm") -> pd.Series:
        """Whether each comparison is significant after ``method`` (holm|bh)."""
        column = {"holm": "perm_p_holm", "bh": "perm_p_bh"}[method]
        return self.table[column] < self.alpha

    def summary(self) -> str:
        return (
            f"Differences of metric-human correlation between groups ({self.correlation}, "
            f"{self.n_permutations} participant permutations)\n"
            + self.table.to_string(float_format=lambda x: f"{x:.3f}")
        )


def compare_groups(
    frame: pd.DataFrame,
    metrics: list[str],
    *,
    group: str = "group",
    question: str = "question_id",
    participant: str = "participant_id",
    candidate: str = "candidate_id",
    score: str = "score",
    correlation: str = "spearman",
    n_permutations: int = 1000,
    alpha: float = 0.05,
    rng: np.random.Generator | int | None = None,
) -> GroupComparisonResult:
    """Test whether a metric agrees with human scores differently in two groups.

    For every question and pair of groups, and every metric:

    * Fisher's r-to-z test (:func:`compare_independent`) on the Pearson
      correlations over candidates. It assumes independent samples; both groups
      rate the same candidates against the same metric, so the two correlations
      share a variable and the test is conservative when the groups' scores
      correlate. It is reported because readers expect it.
    * A permutation test: participants (with all their responses) are shuffled
      between the two groups, keeping group sizes, and the absolute difference
      of correlations recomputed. This respects the shared candidates and the
      clustering of responses within participants.

    p-values of the permutation test are corrected across metrics (Holm and
    Benjamini-Hochberg) within each question and group pair.

    Args:
        frame: Long frame as for :func:`metric_agreement`.
        metrics: Metric column names.
        correlation: Correlation for the permutation test.
        n_permutations: Random permutations per question and group pair (shared
            across metrics, so the corrections see dependent tests correctly).
        alpha: Level for :meth:`GroupComparisonResult.significant`.
        rng: Generator or seed.

    Returns:
        A :class:`GroupComparisonResult`.
    """
    if correlation not in CORRELATIONS:
        raise ValueError(f"correlation must be one of {CORRELATIONS}, got {correlation!r}")
    gen = as_rng(rng)
    metric_by_candidate = frame.groupby(candidate, sort=True)[list(metrics)].first()
    rows = []
    for q, qpart in frame.groupby(question, sort=True, observed=True):
        groups = sorted(qpart[group].dropna().unique())
        for ga, gb in combinations(groups, 2):
            pair = qpart[qpart[group].isin([ga, gb])]
            table = ScoreTable.from_frame(
                pair, participant=participant, candidate=candidate, score=score
            )
            member = (
                pair.drop_duplicates(participant).set_index(participant)[group]
                .reindex(table.participants).to_numpy() == ga
            )
            n_in_a = int(member.sum())
            observed_a = table.means(member[None, :].astype(np.float64))
            observed_b = table.means((~member)[None, :].astype(np.float64))
            # Permuted memberships: the first n_in_a of each random order go to A.
            order = np.argsort(gen.random((n_permutations, len(member))), axis=1)
            perm_a = np.zeros((n_permutations, len(member)))
            np.put_along_axis(perm_a, order[:, :n_in_a], 1.0, axis=1)
            # Group B's sums are the totals minus group A's: half the products.
            sums_a = perm_a @ table.sums
            counts_a = perm_a @ table.counts
            with np.errstate(invalid="ignore", divide="ignore"):
                perm_means_a = sums_a / counts_a
                perm_means_b = (table.sums.sum(axis=0) - sums_a) / (
                    table.counts.sum(axis=0) - counts_a
                )
            del sums_a, counts_a
            metric_values = metric_by_candidate.loc[table.candidates]
            block = []
            for metric in metrics:
                x = metric_values[metric].to_numpy(np.float64)
                ra = float(correlate_rows(observed_a, x, correlation)[0])
                rb = float(correlate_rows(observed_b, x, correlation)[0])
                pa = float(correlate_rows(observed_a, x, "pearson")[0])
                pb = float(correlate_rows(observed_b, x, "pearson")[0])
                na = int((np.isfinite(observed_a[0]) & np.isfinite(x)).sum())
                nb = int((np.isfinite(observed_b[0]) & np.isfinite(x)).sum())
                if min(na, nb) > 3 and np.isfinite(pa) and np.isfinite(pb):
                    fz, fp = compare_independent(pa, na, pb, nb)
                else:
                    fz, fp = float("nan"), float("nan")
                diff = ra - rb
                null = correlate_rows(perm_means_a, x, correlation) - correlate_rows(
                    perm_means_b, x, correlation
                )
                null = null[np.isfinite(null)]
                exceed = int((np.abs(null) >= abs(diff) - 1e-12).sum())
                perm_p = (exceed + 1) / (len(null) + 1) if np.isfinite(diff) else float("nan")
                block.append({
                    "question": q, "metric": metric, "group_a": ga, "group_b": gb,
                    "r_a": ra, "r_b": rb, "n_a": na, "n_b": nb, "difference": diff,
                    "pearson_a": pa, "pearson_b": pb, "fisher_z": fz, "fisher_p": fp,
                    "perm_p": perm_p,
                })
            _adjust(block, "perm_p")
            _adjust(block, "fisher_p")
            rows.extend(block)
    out = pd.DataFrame(rows)
    if rows:
        out = out.set_index(["question", "metric", "group_a", "group_b"])
    return GroupComparisonResult(out, correlation, n_permutations, alpha)


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values (family-wise error).

    Written out rather than taken from statsmodels' ``multipletests``, which
    runs a full garbage collection on every call (about 0.3 s each here).

    Example:
        >>> holm(np.array([0.01, 0.04, 0.03])).round(3).tolist()
        [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    order = np.argsort(p)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg (1995) step-up adjusted p-values (false discovery rate).

    Example:
        >>> benjamini_hochberg(np.array([0.01, 0.04, 0.03])).round(3).tolist()
        [0.03, 0.04, 0.04]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def _adjust(block: list[dict], column: str) -> None:
    """Add Holm and BH adjusted copies of ``column`` to the rows of ``block``."""
    pvals = np.array([row[column] for row in block], dtype=np.float64)
    finite = np.isfinite(pvals)
    for method, suffix in ((holm, "holm"), (benjamini_hochberg, "bh")):
        adjusted = np.full(len(block), np.nan)
        if finite.any():
            adjusted[finite] = method(pvals[finite])
        for row, value in zip(block, adjusted):
            row[f"{column}_{suffix}"] = float(value)
