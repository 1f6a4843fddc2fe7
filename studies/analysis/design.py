"""Adaptive choice of paired comparisons: the most informative pair next.

Estimand: the Bradley-Terry log-strengths ``s`` of ``n`` items,
``P(i beats j) = 1 / (1 + exp(s_j - s_i))``. The current knowledge about
``s`` is a Gaussian (Laplace) approximation of the posterior under an
independent ``N(0, prior_sd^2)`` prior: its mode and the inverse Hessian of
the negative log-posterior there (:func:`fit_posterior`). The next pair is
chosen among the allowed ones (:func:`choose_pair`) by one of two criteria:

* ``"variance"`` (default, :func:`variance_reduction`): the expected drop of
  the summed posterior variance of the centred strengths after one answer, a
  greedy A-optimal design; it targets the mean interval width directly;
* ``"information"`` (:func:`information_gain`): the mutual information between
  the outcome ``y`` and ``s``, ``I(y; s) = H(E[p]) - E[H(p)]`` with
  ``p = sigmoid(s_i - s_j)`` and ``s_i - s_j ~ N(m, v)`` under the posterior.
  It equals the expected Kullback-Leibler divergence from the current
  posterior to the one after the answer, the criterion of ASAP (Mikhailiuk et
  al. 2020).

The posterior is refitted in batches: answers not yet folded in, and pairs
shown but not yet answered (other participants' screens), are *pending*.
Each pending comparison shrinks the variance of its pair's difference as an
answer would (``1/v + p(1 - p)`` per comparison), so concurrent choices from
one stale posterior spread over pairs instead of piling onto the same one.

Validity of the analysis: the selection depends only on earlier answers (and
on chance), so the design is ignorable for likelihood inference (Rubin 1976):
the Bradley-Terry likelihood of the answers is the same function of the
strengths as under a fixed design, and the maximum-likelihood estimate with
its observed-information (Wald) intervals keeps its usual asymptotic
justification under such response-adaptive designs (Hu & Rosenberger 2006,
ch. 4). That justification is asymptotic, and ``bench/active_pairs.py``
shows it can fail in finite samples: comparisons concentrated on close pairs
stretch the estimated differences, and 95 % Wald intervals covered 0.93-0.96
with the defaults at 20-50 items but 0.73 at 200 items with 40 comparisons
per item (re-comparing one pair until it looks decided, like optional
stopping, makes it worse: 0.56-0.85 without the repeat limit). The Laplace
posterior itself is unaffected by the design (a Bayesian analysis conditions
on the answers), which is why the selection may rely on it.

References:
    Mikhailiuk, A., Wilmot, C., Perez-Ortiz, M., Yue, D., & Mantiuk, R. K.
    (2020). Active sampling for pairwise comparisons via approximate message
    passing and information gain maximization (ASAP). ICPR 2020.
    Houlsby, N., Huszar, F., Ghahramani, Z., & Lengyel, M. (2011). Bayesian
    active learning for classification and preference learning. arXiv:1112.5745.
    Chen, X., Bennett, P. N., Collins-Thompson, K., & Horvitz, E. (2013).
    Pairwise ranking aggregation in a crowdsourced setting (Crowd-BT). WSDM.
    Rubin, D. B. (1976). Inference and missing data. Biometrika, 63, 581-592.
    Hu, F., & Rosenberger, W. F. (2006). The Theory of Response-Adaptive
    Randomization in Clinical Trials. Wiley.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import special

from ._common import as_rng, check_confidence_level

#: Grid of the information-gain table over (|mean|, sd) of a difference:
#: bilinear interpolation on it is within 1e-3 nats of the exact value
#: (checked in the tests) and keeps a choice among 200 items' 19,900 pairs
#: to a few milliseconds.
_TABLE_STEP = 0.05
_TABLE_MAX_MEAN = 16.0
_TABLE_MAX_SD = 8.0


@dataclass
class PairPosterior:
    """Gaussian approximation of the posterior of Bradley-Terry log-strengths.

    Attributes:
        mean: ``(n,)`` posterior mode of the log-strengths (not centred: the
            prior pins the scale's origin at zero).
        covariance: ``(n, n)`` inverse Hessian of the negative log-posterior
            at the mode.
        n_comparisons: Answers the fit used.
        prior_sd: Standard deviation of the independent Gaussian prior.
    """

    mean: np.ndarray
    covariance: np.ndarray = field(repr=False)
    n_comparisons: int = 0
    prior_sd: float = 2.0

    @property
    def n_items(self) -> int:
        return len(self.mean)

    def centred(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of the centred strengths ``s - mean(s)``."""
        n = self.n_items
        centre = np.eye(n) - 1.0 / n
        return centre @ self.mean, centre @ self.covariance @ centre

    def _centred_square(self) -> np.ndarray:
        """``S C S`` (cached): inner products of the covariance's centred columns."""
        if getattr(self, "_square", None) is None:
            column_sums = self.covariance.sum(axis=1)
            self._square = self.covariance @ self.covariance - np.outer(column_sums, column_sums) / self.n_items
        return self._square

    def confidence_interval(self, confidence_level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed credible interval of each centred strength, ``(low, high)``."""
        level = check_confidence_level(confidence_level)
        mean, cov = self.centred()
        half = special.ndtri(0.5 + level / 2.0) * np.sqrt(np.clip(np.diag(cov), 0.0, None))
        return mean - half, mean + half

    def summary(self) -> str:
        low, high = self.confidence_interval()
        mean, _ = self.centred()
        lines = [f"Bradley-Terry posterior (Laplace), {self.n_items} items, "
                 f"{self.n_comparisons} comparisons, prior sd {self.prior_sd:g}"]
        lines += [f"{i:>5d} {m:8.3f} [{lo:8.3f}, {hi:8.3f}]"
                  for i, (m, lo, hi) in enumerate(zip(mean, low, high))]
        return "\n".join(lines)


def prior_posterior(n_items: int, *, prior_sd: float = 2.0) -> PairPosterior:
    """The posterior before any answer: independent ``N(0, prior_sd^2)``."""
    if n_items < 2:
        raise ValueError(f"n_items must be at least 2, got {n_items}")
    if not prior_sd > 0:
        raise ValueError(f"prior_sd must be positive, got {prior_sd!r}")
    return PairPosterior(np.zeros(n_items), np.eye(n_items) * prior_sd**2, 0, float(prior_sd))


def fit_posterior(
    n_items: int,
    winners: np.ndarray,
    losers: np.ndarray,
    *,
    prior_sd: float = 2.0,
    start: PairPosterior | None = None,
    max_iter: int = 50,
    tol: float = 1e-8,
) -> PairPosterior:
    """Laplace approximation of the Bradley-Terry posterior from all answers so far.

    Newton's method on the log-posterior (BT log-likelihood plus an independent
    Gaussian prior); with ``prior_sd = 1 / sqrt(ridge)`` the mode is the
    ridge-penalised estimate of :func:`studies.analysis.pairwise.bradley_terry`
    up to centring.

    Args:
        n_items: Number of items; labels are ``0 .. n_items - 1``.
        winners, losers: Integer arrays, one entry per answer.
        prior_sd: Standard deviation of the prior of each log-strength.
        start: An earlier posterior to start Newton from (a batched update).
        max_iter: Newton iterations.
        tol: Stop when no strength moves by more than this.

    Returns:
        A :class:`PairPosterior`.

    Raises:
        ValueError: Bad labels, mismatched lengths or a self-comparison.

    Example:
        >>> post = fit_posterior(2, np.array([0, 0, 1]), np.array([1, 1, 0]), prior_sd=100.0)
        >>> round(float(post.mean[0] - post.mean[1]), 3)  # log(2/1)
        0.693
    """
    prior = prior_posterior(n_items, prior_sd=prior_sd)
    winners = np.asarray(winners, dtype=np.int64).ravel()
    losers = np.asarray(losers, dtype=np.int64).ravel()
    if winners.shape != losers.shape:
        raise ValueError(f"winners and losers differ in length: {len(winners)} vs {len(losers)}")
    if len(winners) == 0:
        return prior
    if min(winners.min(), losers.min()) < 0 or max(winners.max(), losers.max()) >= n_items:
        raise ValueError(f"item labels must lie in 0..{n_items - 1}")
    if np.any(winners == losers):
        raise ValueError("a comparison has the same item as winner and loser")
    wins = np.bincount(winners * n_items + losers, minlength=n_items * n_items).reshape(n_items, n_items)
    games = (wins + wins.T).astype(np.float64)
    total_wins = wins.sum(axis=1).astype(np.float64)
    precision = 1.0 / prior_sd**2
    theta = np.zeros(n_items) if start is None or start.n_items != n_items else start.mean.copy()
    for _ in range(max_iter):
        p = special.expit(theta[:, None] - theta[None, :])  # P(i beats j)
        grad = total_wins - (games * p).sum(axis=1) - precision * theta
        weight = games * p * p.T
        hessian = np.diag(weight.sum(axis=1) + precision) - weight
        step = np.linalg.solve(hessian, grad)
        theta += step
        if np.max(np.abs(step)) < tol:
            break
    p = special.expit(theta[:, None] - theta[None, :])
    weight = games * p * p.T
    hessian = np.diag(weight.sum(axis=1) + precision) - weight
    covariance = np.linalg.inv(hessian)
    return PairPosterior(theta, covariance, len(winners), float(prior_sd))


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    return -special.xlogy(p, p) - special.xlogy(1.0 - p, 1.0 - p)


def _exact_gain(mean: np.ndarray, sd: np.ndarray, *, nodes: int = 96) -> np.ndarray:
    """``H(E[sigmoid(d)]) - E[H(sigmoid(d))]``, ``d ~ N(mean, sd^2)``, by Gauss-Hermite."""
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    d = mean[..., None] + sd[..., None] * x
    p = special.expit(d)
    # Entropy of sigmoid(d) in a form that stays exact in the tails.
    entropy = np.logaddexp(0.0, d) - d * p
    return _binary_entropy(p @ w) - entropy @ w


@lru_cache(maxsize=1)
def _gain_table() -> np.ndarray:
    means = np.arange(0.0, _TABLE_MAX_MEAN + _TABLE_STEP / 2, _TABLE_STEP)
    sds = np.arange(0.0, _TABLE_MAX_SD + _TABLE_STEP / 2, _TABLE_STEP)
    grid_mean, grid_sd = np.meshgrid(means, sds, indexing="ij")
    return np.clip(_exact_gain(grid_mean, grid_sd), 0.0, None)


def _interpolated_gain(mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    table = _gain_table()
    # The gain is symmetric in the mean; beyond the table it is clipped to the edge.
    u = np.clip(np.abs(mean), 0.0, _TABLE_MAX_MEAN) / _TABLE_STEP
    v = np.clip(sd, 0.0, _TABLE_MAX_SD) / _TABLE_STEP
    i = np.minimum(u.astype(np.int64), table.shape[0] - 2)
    j = np.minimum(v.astype(np.int64), table.shape[1] - 2)
    fu, fv = u - i, v - j
    return ((1 - fu) * (1 - fv) * table[i, j] + fu * (1 - fv) * table[i + 1, j]
            + (1 - fu) * fv * table[i, j + 1] + fu * fv * table[i + 1, j + 1])


def all_pairs(n_items: int) -> np.ndarray:
    """Every unordered pair ``(i, j)``, ``i < j``, as an ``(n(n-1)/2, 2)`` array."""
    first, second = np.triu_indices(n_items, 1)
    return np.column_stack([first, second])


def information_gain(
    posterior: PairPosterior,
    pairs: np.ndarray | None = None,
    *,
    pending: np.ndarray | None = None,
) -> np.ndarray:
    """Expected information (nats) one more answer on each pair gives about the strengths.

    Args:
        posterior: The current :class:`PairPosterior`.
        pairs: ``(m, 2)`` item indices; every pair by default.
        pending: ``(m,)`` comparisons of each pair already shown or answered
            but not yet in ``posterior`` (default none).

    Returns:
        ``(m,)`` mutual information between the answer and the strengths.
    """
    pairs = all_pairs(posterior.n_items) if pairs is None else np.asarray(pairs, dtype=np.int64)
    first, second = pairs[:, 0], pairs[:, 1]
    cov = posterior.covariance
    mean = posterior.mean[first] - posterior.mean[second]
    var = np.clip(cov[first, first] + cov[second, second] - 2.0 * cov[first, second], 1e-12, None)
    if pending is not None:
        p = special.expit(mean)
        var = 1.0 / (1.0 / var + np.asarray(pending, dtype=np.float64) * p * (1.0 - p))
    return _interpolated_gain(mean, np.sqrt(var))


def variance_reduction(
    posterior: PairPosterior,
    pairs: np.ndarray | None = None,
    *,
    pending: np.ndarray | None = None,
) -> np.ndarray:
    """Expected reduction of the summed posterior variance of the centred strengths per answer.

    The Laplace update of one answer on pair ``(i, j)`` with ``d = e_i - e_j``
    and Fisher weight ``w = p (1 - p)`` removes ``w |C S d|^2 / (1 + w v)``
    from the trace of the centred covariance (``v = d' S d``); ``k`` pending
    answers on the same pair scale ``S d`` by ``1 / (1 + k w v)``. Greedy
    A-optimal design: it targets the mean interval width directly.

    Args:
        posterior: The current :class:`PairPosterior`.
        pairs: ``(m, 2)`` item indices; every pair by default.
        pending: ``(m,)`` comparisons per pair not yet in ``posterior``.

    Returns:
        ``(m,)`` expected reduction (log-strength units squared).
    """
    pairs = all_pairs(posterior.n_items) if pairs is None else np.asarray(pairs, dtype=np.int64)
    first, second = pairs[:, 0], pairs[:, 1]
    cov = posterior.covariance
    spread = posterior._centred_square()
    mean = posterior.mean[first] - posterior.mean[second]
    var = np.clip(cov[first, first] + cov[second, second] - 2.0 * cov[first, second], 1e-12, None)
    norm = np.clip(spread[first, first] + spread[second, second] - 2.0 * spread[first, second], 0.0, None)
    # Fisher weight averaged over the posterior of the difference (probit approximation).
    p = special.expit(mean / np.sqrt(1.0 + np.pi * var / 8.0))
    w = p * (1.0 - p)
    if pending is not None:
        shrink = 1.0 + np.asarray(pending, dtype=np.float64) * w * var
        norm = norm / shrink**2
        var = var / shrink
    return w * norm / (1.0 + w * var)


def choose_pair(
    posterior: PairPosterior,
    *,
    allowed: np.ndarray | None = None,
    exposure: np.ndarray | None = None,
    min_exposure: int = 0,
    pending: np.ndarray | None = None,
    counts: np.ndarray | None = None,
    max_repeats: int | None = 1,
    exclude: np.ndarray | None = None,
    avoid: np.ndarray | None = None,
    slack: float = 0.3,
    criterion: str = "variance",
    rng: np.random.Generator | int | None = None,
) -> tuple[int, int] | None:
    """The next pair to show, in random left/right order, or None if none is allowed.

    Rules, in order: pairs in ``exclude`` are never chosen (already shown to
    this participant); pairs in ``avoid`` are dropped while others remain (e.g.
    a content the participant has seen); no pair is compared more than
    ``max_repeats`` times before every remaining pair has been compared that
    often; while any item of the remaining pairs has been shown fewer than
    ``min_exposure`` times, only pairs of a least-shown item with the least-shown
    partner available are considered; among those, a pair is drawn uniformly from those within
    ``slack`` (relative) of the largest :func:`information_gain`.

    The repeat limit and the random draw keep the maximum-likelihood analysis
    closer to calibrated (see the module docstring for the coverage measured).
    The random draw also spreads concurrent choices made from one posterior.

    Args:
        posterior: Current :class:`PairPosterior`.
        allowed: ``(m, 2)`` pairs that may be compared; every pair by default.
        exposure: ``(n,)`` times each item was shown (answered or on screen).
        min_exposure: Minimum showings of every item before information gain rules.
        pending: ``(m,)`` comparisons per allowed pair not yet in ``posterior``.
        counts: ``(m,)`` comparisons per allowed pair so far (answered or on
            screen); needed for ``max_repeats``.
        max_repeats: Comparisons per pair before all others are compared as
            often (None: no limit).
        exclude: ``(m,)`` booleans, pairs that must not be chosen.
        avoid: ``(m,)`` booleans, pairs chosen only when nothing else is left.
        slack: Relative tolerance defining near-best pairs (0 = argmax).
        rng: Generator or seed (ties, near-best draw, left/right order).

    Returns:
        ``(left, right)`` item indices, or None when every pair is excluded.
    """
    gen = as_rng(rng)
    n = posterior.n_items
    pairs = all_pairs(n) if allowed is None else np.asarray(allowed, dtype=np.int64).reshape(-1, 2)
    m = len(pairs)
    if m == 0:
        return None
    if pairs.min() < 0 or pairs.max() >= n:
        raise ValueError(f"allowed pairs must index items 0..{n - 1}")
    if not slack >= 0:
        raise ValueError(f"slack must be non-negative, got {slack!r}")
    keep = np.ones(m, dtype=bool) if exclude is None else ~np.asarray(exclude, dtype=bool)
    if avoid is not None:
        preferred = keep & ~np.asarray(avoid, dtype=bool)
        if preferred.any():
            keep = preferred
    if not keep.any():
        return None
    if max_repeats is not None and counts is not None:
        counts = np.asarray(counts)
        keep &= counts < max(max_repeats, counts[keep].min() + 1)
    if min_exposure > 0 and exposure is not None:
        exposure = np.asarray(exposure)
        least = np.minimum(exposure[pairs[:, 0]], exposure[pairs[:, 1]])
        floor = least[keep].min()
        if floor < min_exposure:
            # Pair the least-shown items with each other first: warm-up takes the fewest comparisons.
            keep &= least == floor
            most = np.maximum(exposure[pairs[:, 0]], exposure[pairs[:, 1]])
            keep &= most == most[keep].min()
    index = np.flatnonzero(keep)
    scores = {"information": information_gain, "variance": variance_reduction}
    if criterion not in scores:
        raise ValueError(f"criterion must be one of {sorted(scores)}, got {criterion!r}")
    gain = scores[criterion](posterior, pairs[index], pending=None if pending is None else np.asarray(pending)[index])
    near_best = index[gain >= gain.max() * (1.0 - slack)]
    first, second = pairs[gen.choice(near_best)]
    return (int(first), int(second)) if gen.random() < 0.5 else (int(second), int(first))


__all__ = [
    "PairPosterior",
    "all_pairs",
    "choose_pair",
    "fit_posterior",
    "information_gain",
    "prior_posterior",
]
