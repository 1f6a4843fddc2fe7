"""Metric-human agreement and its comparison between participant groups.

Ratings are crossed: every participant rates many candidates and every
candidate is rated by many participants, and both are samples from larger
populations. Intervals therefore resample candidates *and* participants
(Owen 2007); resampling only participants treats the images as fixed and
gives intervals far too narrow for claims about images in general (Clark
1973; Judd, Westfall & Kenny 2012).

The core trick is algebraic: a participant bootstrap only changes how
participants' per-candidate sums and counts are weighted, so every replicate's
per-candidate mean score is ``(w @ sums) / (w @ counts)`` for a weight matrix
``w``; all replicates come out of one matrix product, and the candidate draw
is an index into its columns.

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
    if mask.all() and y.shape[1] >= 3:  # the usual case, without masking copies
        yc = y - y.mean(axis=1, keepdims=True)
        xc = x - x.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.einsum("ij,ij->i", yc, xc) / np.sqrt(
                np.einsum("ij,ij->i", yc, yc) * np.einsum("ij,ij->i", xc, xc))
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
# Crossed (participants x candidates) bootstrap
# --------------------------------------------------------------------------

#: Participants are pooled into at most this many random blocks before the
#: bootstrap draws them: resampling blocks of participants is the participant
#: bootstrap of block totals, and with a hundred or more blocks its variance
#: matches the participant-level one, while a million-response study costs
#: (B x 200) @ (200 x K) instead of (B x P) @ (P x K) per group.
MAX_PARTICIPANT_BLOCKS = 200
#: Random rater splits averaged for the point estimate of the noise ceiling.
NOISE_CEILING_SPLITS = 50
RESAMPLING = ("both", "participants", "candidates")


def _rowwise(y: np.ndarray, x: np.ndarray, kind: str) -> np.ndarray:
    """Correlation of each row of ``y`` (B, K) with the same row of ``x`` (B, K), NaN-aware."""
    mask = np.isfinite(y) & np.isfinite(x)
    if kind == "pearson":
        return _masked_pearson(y, x)
    if kind == "spearman":
        y = np.where(mask, y, np.nan)
        x = np.where(mask, x, np.nan)
        return _masked_pearson(stats.rankdata(y, axis=1, nan_policy="omit"),
                               stats.rankdata(x, axis=1, nan_policy="omit"))
    k = y.shape[1]
    out = np.full(y.shape[0], np.nan)
    if k > 2 * _KENDALL_MAX_PAIRWISE_K:
        for row in range(y.shape[0]):
            keep = mask[row]
            if keep.sum() >= 3:
                out[row] = stats.kendalltau(y[row, keep], x[row, keep]).statistic
        return out
    i, j = np.triu_indices(k, 1)
    chunk = max(1, _KENDALL_CELLS_PER_CHUNK // max(1, len(i)))
    y0, x0 = np.where(mask, y, 0.0), np.where(mask, x, 0.0)
    for start in range(0, y.shape[0], chunk):
        rows = slice(start, start + chunk)
        valid = mask[rows][:, i] & mask[rows][:, j]
        sy = np.sign(y0[rows][:, i] - y0[rows][:, j]) * valid
        sx = np.sign(x0[rows][:, i] - x0[rows][:, j]) * valid
        with np.errstate(invalid="ignore", divide="ignore"):
            out[rows] = (sy * sx).sum(axis=1) / np.sqrt(
                np.count_nonzero(sx, axis=1) * np.count_nonzero(sy, axis=1))
    out[mask.sum(axis=1) < 3] = np.nan
    return out


def _split_half_rows(sums_a, counts_a, sums_b, counts_b, idx) -> np.ndarray:
    """Spearman-Brown reliability of candidate means from two rater halves, per replicate."""
    with np.errstate(invalid="ignore", divide="ignore"):
        half_a = np.take_along_axis(sums_a / counts_a, idx, axis=1)
        half_b = np.take_along_axis(sums_b / counts_b, idx, axis=1)
    r = _masked_pearson(half_a, half_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2.0 * r / (1.0 + r)


@dataclass
class _GroupReplicates:
    """One group's candidate means: observed, and per replicate of each resampling scheme.

    ``schemes`` maps ``both`` / ``candidates`` / ``participants`` to
    ``(means (B, K) indexed by that scheme's candidate draw, noise ceilings (B,))``.
    """

    point: np.ndarray  # (K,)
    schemes: dict[str, tuple[np.ndarray, np.ndarray]]
    ceiling: float
    n_participants: int
    counts: np.ndarray  # (K,) ratings per candidate


def _group_replicates(
    table: ScoreTable, draws: dict[str, np.ndarray], *, gen: np.random.Generator,
) -> _GroupReplicates:
    """Replicates of one group for each scheme in ``draws`` (scheme -> candidate index (B, K))."""
    n_p = len(table.participants)
    k = table.sums.shape[1]
    point = table.means()
    # Noise ceiling of the observed means: random halves of the participants.
    order = np.argsort(gen.random((NOISE_CEILING_SPLITS, n_p)), axis=1)
    half = np.zeros((NOISE_CEILING_SPLITS, n_p))
    np.put_along_axis(half, order[:, : n_p // 2], 1.0, axis=1)
    ident = np.broadcast_to(np.arange(k), (NOISE_CEILING_SPLITS, k))
    ceiling_draws = _split_half_rows(half @ table.sums, half @ table.counts,
                                     (1 - half) @ table.sums, (1 - half) @ table.counts, ident)
    ceiling = float(np.nanmean(ceiling_draws)) if np.isfinite(ceiling_draws).any() else np.nan
    # Blocks of participants (random, at most MAX_PARTICIPANT_BLOCKS).
    n_blocks = min(n_p, MAX_PARTICIPANT_BLOCKS)
    block = gen.permutation(n_p) % n_blocks
    onehot = np.zeros((n_blocks, n_p))
    onehot[block, np.arange(n_p)] = 1.0
    sums, counts = onehot @ table.sums, onehot @ table.counts
    schemes = {}
    for scheme, idx in draws.items():
        n_resamples = idx.shape[0]
        if scheme == "candidates":
            weights = np.ones((n_resamples, n_blocks))
        else:
            weights = bootstrap_weights(n_blocks, n_resamples, gen)
        halves = (gen.random((n_resamples, n_blocks)).argsort(axis=1) < n_blocks // 2)
        w_a, w_b = weights * halves, weights * ~halves
        sums_a, counts_a = w_a @ sums, w_a @ counts
        sums_b, counts_b = w_b @ sums, w_b @ counts
        with np.errstate(invalid="ignore", divide="ignore"):
            means = (sums_a + sums_b) / (counts_a + counts_b)
        ceilings = (_split_half_rows(sums_a, counts_a, sums_b, counts_b, idx)
                    if n_blocks >= 2 else np.full(n_resamples, np.nan))
        schemes[scheme] = (np.take_along_axis(means, idx, axis=1), ceilings)
    return _GroupReplicates(point, schemes, ceiling, n_p, table.counts.sum(axis=0))


def _combine(dists: dict[str, np.ndarray], *, fisher: bool) -> np.ndarray:
    """One bootstrap distribution with the crossed design's variance.

    For a statistic of a crossed design with candidate variance A, participant
    variance B and residual E (per mean), resampling candidates only has
    variance ``A + E``, participants only ``B + E``, and both (the pigeonhole
    bootstrap) ``A + B + 3E`` (Owen 2007, section 3): it double-counts the
    residual and is conservative. ``2 V_c + 2 V_p - V_both`` is unbiased for
    the true ``A + B + E``; it is bounded below by ``max(V_c, V_p)``. The
    pigeonhole replicates are rescaled about their mean to that variance, in
    Fisher's z for correlations. With one scheme only, its replicates as they are.
    """
    if set(dists) != {"both", "candidates", "participants"}:
        return next(iter(dists.values()))
    values = {k: np.arctanh(np.clip(v, -0.999999, 0.999999)) if fisher else v
              for k, v in dists.items()}
    var = {k: np.nanvar(v) if np.isfinite(v).sum() > 1 else np.nan for k, v in values.items()}
    target = 2 * var["candidates"] + 2 * var["participants"] - var["both"]
    target = max(target, var["candidates"], var["participants"])
    both = values["both"]
    if not np.isfinite(target) or not var["both"] > 0:
        return dists["both"]
    centre = np.nanmean(both)
    scaled = centre + (both - centre) * np.sqrt(target / var["both"])
    return np.tanh(scaled) if fisher else scaled


def _disattenuate(
    r: np.ndarray | float, ceiling: np.ndarray | float, *, clip: bool = True
) -> np.ndarray:
    """``r / sqrt(ceiling)``, NaN where the ceiling is not positive; clipped to
    [-1, 1] unless ``clip`` is false (replicates are kept unclipped so their
    spread is not truncated; the interval's ends are clipped instead)."""
    r, ceiling = np.asarray(r, float), np.asarray(ceiling, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(ceiling > 0, r / np.sqrt(np.where(ceiling > 0, ceiling, 1.0)), np.nan)
    return np.clip(out, -1.0, 1.0) if clip else out


def _percentile(dist: np.ndarray, level: float) -> tuple[float, float]:
    finite = dist[np.isfinite(dist)]
    if finite.size < 2:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def _bootstrap_p(dist: np.ndarray) -> float:
    """Two-sided p of ``H0: estimand = 0`` by inverting percentile intervals."""
    finite = dist[np.isfinite(dist)]
    if finite.size < 2:
        return float("nan")
    below = (np.count_nonzero(finite <= 0) + 1) / (finite.size + 1)
    above = (np.count_nonzero(finite >= 0) + 1) / (finite.size + 1)
    return float(min(1.0, 2.0 * min(below, above)))


# --------------------------------------------------------------------------
# Agreement per group x question x metric
# --------------------------------------------------------------------------


@dataclass
class AgreementResult:
    """Correlations between automatic metrics and mean human scores.

    Two estimands, each with its own interval, both across the population of
    candidates:

    * ``disattenuated`` (the primary one): the correlation between a metric and
      the group's *expected* rating of a candidate (what infinitely many raters
      of the group would give). It is ``statistic`` divided by the square root
      of the noise ceiling (split-half reliability of the candidate means,
      Spearman-Brown); interval ``disattenuated_low, disattenuated_high``.
      All three are NaN where the noise ceiling is not positive (the rater
      halves do not order the candidates consistently: no reliability), while
      ``noise_ceiling`` keeps its raw value.
    * ``statistic``: the correlation between a metric and the mean of ``k``
      ratings of the candidate by raters of the group, ``k =
      ratings_per_candidate`` (the harmonic mean of the study's ratings per
      candidate, which sets the rater noise of its means). It is smaller than
      the first by the factor ``sqrt(reliability of a k-rating mean)``; its
      interval ``ci_low, ci_high`` covers *this* quantity, not the first, and
      a zero lies inside both or neither.

    Attributes:
        table: One row per ``group, question, metric, correlation`` with
            ``statistic, ci_low, ci_high, noise_ceiling, disattenuated,
            disattenuated_low, disattenuated_high, n_candidates,
            n_participants, n_responses, ratings_per_candidate``; intervals are
            percentile intervals of a crossed bootstrap resampling candidates
            and participants independently (Owen 2007).
        confidence_level: Level of the stored intervals.
        n_resamples: Bootstrap replicates per cell.
        resample: ``both`` (crossed), ``participants`` or ``candidates``.
        distributions: Bootstrap replicates of ``statistic`` keyed by the row's
            index tuple.
    """

    table: pd.DataFrame
    confidence_level: float
    n_resamples: int
    distributions: dict[tuple, np.ndarray] = field(default_factory=dict, repr=False)
    resample: str = "both"

    def confidence_interval(self, confidence_level: float | None = None) -> pd.DataFrame:
        """``ci_low, ci_high`` per row, recomputed from the stored replicates."""
        level = check_confidence_level(confidence_level or self.confidence_level)
        rows = {key: _percentile(dist, level) for key, dist in self.distributions.items()}
        out = pd.DataFrame.from_dict(rows, orient="index", columns=["ci_low", "ci_high"])
        out.index = pd.MultiIndex.from_tuples(out.index, names=self.table.index.names)
        return out

    def summary(self) -> str:
        how = {"both": "crossed (candidate- and participant-", "participants": "(participant-",
               "candidates": "(candidate-"}[self.resample]
        return (
            f"Metric-human agreement, {self.confidence_level:.0%} {how}bootstrap) "
            f"intervals ({self.n_resamples} resamples)\n"
            + self.table.to_string(float_format=lambda x: f"{x:.3f}")
        )


@dataclass
class GroupComparisonResult:
    """Differences of metric-human correlations between pairs of groups.

    Both groups rate the same candidates, so their correlations are dependent
    (they share the metric and the candidates). The crossed bootstrap draws one
    set of candidates for both groups and each group's participants
    independently; the difference's replicates therefore carry that dependence.

    Attributes:
        table: One row per ``question, metric, group_a, group_b`` with ``r_a,
            r_b, n_a, n_b`` (candidates), ``difference`` (r_a - r_b) with
            ``ci_low, ci_high``, ``p`` (two-sided, from the bootstrap
            distribution of the difference) and ``p_adjusted`` (Holm over the
            declared family: every metric x group pair of the question),
            ``p_bh`` (Benjamini-Hochberg, same family), the disattenuated
            difference with its interval, and ``pearson_a, pearson_b``.
        correlation: Correlation compared.
        n_resamples: Bootstrap replicates.
    """

    table: pd.DataFrame
    correlation: str
    n_resamples: int
    alpha: float = 0.05
    distributions: dict[tuple, np.ndarray] = field(default_factory=dict, repr=False)
    confidence_level: float = 0.95

    def confidence_interval(self, confidence_level: float | None = None) -> pd.DataFrame:
        """Crossed-bootstrap percentile interval of ``difference`` per row."""
        level = check_confidence_level(confidence_level or self.confidence_level)
        rows = [(self.table.loc[key, "difference"], *_percentile(self.distributions[key], level))
                for key in self.table.index]
        return pd.DataFrame(rows, columns=["difference", "ci_low", "ci_high"],
                            index=self.table.index)

    def significant(self, method: str = "holm") -> pd.Series:
        """Whether each comparison is significant after ``method`` (holm|bh)."""
        column = {"holm": "p_adjusted", "bh": "p_bh"}[method]
        return self.table[column] < self.alpha

    def summary(self) -> str:
        return (
            f"Differences of metric-human correlation between groups ({self.correlation}, "
            f"crossed bootstrap, {self.n_resamples} replicates; Holm over metrics x group "
            "pairs per question)\n" + self.table.to_string(float_format=lambda x: f"{x:.3f}")
        )


def zou_difference_interval(
    r1: float, n1: int, r2: float, n2: int, *, confidence_level: float = 0.95
) -> ConfidenceInterval:
    """Zou's (2007) interval for ``r1 - r2`` from two independent samples.

    Combines the two Fisher-z intervals (Psychological Methods 12(4), 399-413,
    eq. 13). It assumes independent samples; the report's group comparisons use
    the crossed bootstrap instead, since groups rate the same candidates.
    """
    l1, u1 = correlation_interval(r1, n1, confidence_level=confidence_level)
    l2, u2 = correlation_interval(r2, n2, confidence_level=confidence_level)
    d = r1 - r2
    return ConfidenceInterval(d - np.sqrt((r1 - l1) ** 2 + (u2 - r2) ** 2),
                              d + np.sqrt((u1 - r1) ** 2 + (r2 - l2) ** 2))


def _fisher_reference(pa, pb, x, mean_a, mean_b) -> dict[str, float]:
    """Fisher's independent-samples test on the Pearson correlations, for reference only:
    it ignores that both groups rate the same candidates (conservative when their
    means correlate, and blind to rater noise)."""
    na = int((np.isfinite(mean_a) & np.isfinite(x)).sum())
    nb = int((np.isfinite(mean_b) & np.isfinite(x)).sum())
    if min(na, nb) > 3 and np.isfinite(pa) and np.isfinite(pb):
        z, p = compare_independent(pa, na, pb, nb)
        return {"fisher_z": z, "fisher_p": p}
    return {"fisher_z": float("nan"), "fisher_p": float("nan")}


def crossed_agreement(
    frame: pd.DataFrame,
    metrics: list[str],
    *,
    group: str = "group",
    question: str = "question_id",
    participant: str = "participant_id",
    candidate: str = "candidate_id",
    score: str = "score",
    correlations: tuple[str, ...] = CORRELATIONS,
    compare: str | None = "spearman",
    n_resamples: int = 1000,
    confidence_level: float = 0.95,
    alpha: float = 0.05,
    resample: str = "both",
    rng: np.random.Generator | int | None = None,
) -> tuple[AgreementResult, GroupComparisonResult]:
    """Metric-human agreement per group and its differences between groups.

    Estimands: per group and question, the correlation across the population
    of candidates between a metric and the group's expected rating
    (``disattenuated``), and between a metric and the mean of the study's
    number of ratings per candidate (``statistic``); see
    :class:`AgreementResult`. Group differences are differences of the latter
    (``difference``) and of the former (``disattenuated_difference``). Inference units are candidates *and*
    participants (crossed): each replicate draws candidates with replacement
    (the same draw for every group of a question) and, independently within
    each group, participants with replacement (Owen 2007, "The pigeonhole
    bootstrap", Ann. Appl. Stat. 1(2)). Candidates are treated as exchangeable
    draws; metrics are taken as measured without error.

    Args:
        frame: Long frame, one row per scored candidate, with the named columns
            and one column per metric (constant within a candidate).
        metrics: Metric column names.
        correlations: Subset of ``("pearson", "spearman", "kendall")``.
        compare: Correlation compared between groups (``None``: no comparison).
        n_resamples: Bootstrap replicates per question.
        confidence_level: Interval level.
        alpha: Level for :meth:`GroupComparisonResult.significant`.
        resample: ``both`` (default), or only ``participants`` / ``candidates``
            (kept to show what each source contributes; not calibrated alone).
        rng: Generator or seed.

    Returns:
        ``(agreement, group_differences)``.

    Raises:
        KeyError: A named column is missing.
        ValueError: Unknown correlation or ``resample``.
    """
    level = check_confidence_level(confidence_level)
    needed = [group, question, participant, candidate, score, *metrics]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise KeyError(f"frame lacks column(s) {missing}")
    for kind in (*correlations, *([compare] if compare else [])):
        if kind not in CORRELATIONS:
            raise ValueError(f"correlation must be one of {CORRELATIONS}, got {kind!r}")
    if resample not in RESAMPLING:
        raise ValueError(f"resample must be one of {RESAMPLING}, got {resample!r}")
    gen = as_rng(rng)
    metric_by_candidate = frame.groupby(candidate, sort=True)[list(metrics)].first()
    kinds = tuple(dict.fromkeys([*correlations, *([compare] if compare else [])]))
    rows, dists, diff_rows, diff_dists = [], {}, [], {}
    for q, qpart in frame.groupby(question, sort=True, observed=True):
        candidates = np.asarray(pd.unique(qpart[candidate]))
        candidates.sort()
        k = len(candidates)
        identity = np.broadcast_to(np.arange(k), (n_resamples, k))
        draws = {}
        if resample in ("both", "candidates"):
            draws["candidates"] = gen.integers(k, size=(n_resamples, k))
        if resample in ("both", "participants"):
            draws["participants"] = identity
        if resample == "both":
            draws["both"] = gen.integers(k, size=(n_resamples, k))
        per_group = {}
        for g, part in qpart.groupby(group, sort=True, observed=True):
            table = ScoreTable.from_frame(part, participant=participant, candidate=candidate,
                                          score=score, candidates=candidates)
            if table.counts.sum() == 0:
                continue
            per_group[g] = _group_replicates(table, draws, gen=gen)
        metric_values = metric_by_candidate.loc[candidates]
        rank_cache: dict[tuple, np.ndarray] = {}

        def ranks(key: tuple, values: np.ndarray, cache: dict = rank_cache) -> np.ndarray:
            if key not in cache:
                cache[key] = stats.rankdata(values, axis=1)
            return cache[key]

        def complete(values: np.ndarray) -> bool:
            return bool(np.isfinite(values).all())

        # (group, metric, kind) -> estimate, disattenuated, per-scheme distributions of both
        estimates: dict[tuple, tuple[float, float, dict, dict]] = {}
        for metric in metrics:
            x = metric_values[metric].to_numpy(np.float64)
            for g, rep in per_group.items():
                paired = np.isfinite(x) & np.isfinite(rep.point)
                n_pairs = int(paired.sum())
                n_responses = int(rep.counts[np.isfinite(x)].sum())
                # The uncorrected correlation's estimand is set by this number.
                per_candidate = (float(n_pairs / np.sum(1.0 / rep.counts[paired]))
                                 if n_pairs else float("nan"))
                for kind in kinds:
                    estimate = float(_rowwise(rep.point[None, :], x[None, :], kind)[0])
                    dis = float(_disattenuate(estimate, rep.ceiling))
                    raw, dis_raw = {}, {}
                    for scheme, (means, ceilings) in rep.schemes.items():
                        if kind == "spearman" and complete(x) and complete(means):
                            # Ranks shared across groups (x) and metrics (y): rank once.
                            raw[scheme] = _masked_pearson(
                                ranks(("y", g, scheme), means),
                                ranks(("x", metric, scheme), x[draws[scheme]]))
                        else:
                            raw[scheme] = _rowwise(means, x[draws[scheme]], kind)
                        dis_raw[scheme] = _disattenuate(raw[scheme], ceilings, clip=False)
                    estimates[(g, metric, kind)] = (estimate, dis, raw, dis_raw)
                    dist = _combine(raw, fisher=True)
                    dis_dist = _combine(dis_raw, fisher=False)
                    if kind not in correlations:
                        continue
                    low, high = _percentile(dist, level)
                    dlow, dhigh = np.clip(_percentile(dis_dist, level), -1.0, 1.0)
                    if not rep.ceiling > 0:
                        # No reliability to correct by: replicates whose ceiling happens to be
                        # positive would give an interval for an estimate that does not exist.
                        dlow = dhigh = float("nan")
                    dists[(g, q, metric, kind)] = dist
                    rows.append({
                        "group": g, "question": q, "metric": metric, "correlation": kind,
                        "statistic": estimate, "ci_low": low, "ci_high": high,
                        "noise_ceiling": rep.ceiling, "disattenuated": dis,
                        "disattenuated_low": dlow, "disattenuated_high": dhigh,
                        "n_candidates": n_pairs, "n_participants": rep.n_participants,
                        "n_responses": n_responses, "ratings_per_candidate": per_candidate,
                    })
        if compare is None:
            continue
        block = []
        for ga, gb in combinations(sorted(per_group), 2):
            for metric in metrics:
                ra, da, raw_a, dis_a = estimates[(ga, metric, compare)]
                rb, db, raw_b, dis_b = estimates[(gb, metric, compare)]
                diff_dist = _combine({k: raw_a[k] - raw_b[k] for k in raw_a}, fisher=False)
                dis_diff = _combine({k: dis_a[k] - dis_b[k] for k in dis_a}, fisher=False)
                low, high = _percentile(diff_dist, level)
                dlow, dhigh = _percentile(dis_diff, level)
                x = metric_values[metric].to_numpy(np.float64)
                pa = float(_masked_pearson(per_group[ga].point[None, :], x[None, :])[0])
                pb = float(_masked_pearson(per_group[gb].point[None, :], x[None, :])[0])
                diff_dists[(q, metric, ga, gb)] = diff_dist
                block.append({
                    "question": q, "metric": metric, "group_a": ga, "group_b": gb,
                    "r_a": ra, "r_b": rb,
                    "n_a": int((np.isfinite(per_group[ga].point) & np.isfinite(x)).sum()),
                    "n_b": int((np.isfinite(per_group[gb].point) & np.isfinite(x)).sum()),
                    "difference": ra - rb, "ci_low": low, "ci_high": high,
                    "p": _bootstrap_p(diff_dist) if np.isfinite(ra - rb) else float("nan"),
                    "disattenuated_difference": da - db,
                    "disattenuated_low": dlow, "disattenuated_high": dhigh,
                    "pearson_a": pa, "pearson_b": pb,
                    **_fisher_reference(pa, pb, x, per_group[ga].point, per_group[gb].point),
                })
        _adjust(block, "p")
        for row in block:
            row["p_adjusted"] = row.pop("p_holm")
        diff_rows.extend(block)
    index = ["group", "question", "metric", "correlation"]
    agreement = pd.DataFrame(rows)
    agreement = agreement.set_index(index) if rows else agreement
    diffs = pd.DataFrame(diff_rows)
    if diff_rows:
        diffs = diffs.set_index(["question", "metric", "group_a", "group_b"])
    return (
        AgreementResult(agreement, level, n_resamples, dists, resample),
        GroupComparisonResult(diffs, compare or "", n_resamples, alpha, diff_dists, level),
    )


def metric_agreement(
    frame: pd.DataFrame, metrics: list[str], *, correlations: tuple[str, ...] = CORRELATIONS,
    n_resamples: int = 1000, confidence_level: float = 0.95, resample: str = "both",
    rng: np.random.Generator | int | None = None, **columns: str,
) -> AgreementResult:
    """Agreement only; see :func:`crossed_agreement` (``columns`` name the columns)."""
    return crossed_agreement(
        frame, metrics, correlations=correlations, compare=None, n_resamples=n_resamples,
        confidence_level=confidence_level, resample=resample, rng=rng, **columns,
    )[0]


def compare_groups(
    frame: pd.DataFrame, metrics: list[str], *, correlation: str = "spearman",
    n_resamples: int = 1000, confidence_level: float = 0.95, alpha: float = 0.05,
    rng: np.random.Generator | int | None = None, **columns: str,
) -> GroupComparisonResult:
    """Group differences only; see :func:`crossed_agreement`."""
    return crossed_agreement(
        frame, metrics, correlations=(), compare=correlation, n_resamples=n_resamples,
        confidence_level=confidence_level, alpha=alpha, rng=rng, **columns,
    )[1]


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
