"""Adaptive choice of paired comparisons: the most informative pair next.

Estimand: the Bradley-Terry log-strengths ``s`` of ``n`` items,
``P(i beats j) = 1 / (1 + exp(s_j - s_i))``. The current knowledge about
``s`` is a Gaussian (Laplace) approximation of the posterior under an
independent ``N(0, prior_sd^2)`` prior: its mode and the inverse Hessian of
the negative log-posterior there (:func:`fit_posterior`). The next pair is
chosen among the allowed ones (:func:`choose_pair`) by one of three criteria:

* ``"variance"`` (default, :func:`variance_reduction`): the expected drop of
  the summed posterior variance of the centred strengths after one answer, a
  greedy A-optimal design;
* ``"width"`` (:func:`width_reduction`): the expected drop of the mean
  posterior sd, i.e. of the mean interval width; within 3 % of the budget
  of ``"variance"`` either way in bench/active_pairs.py, no consistent gain,
  so not the default;
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

:func:`optimal_design` gives the benchmark a bound: the continuous design
that minimises the mean posterior sd of the centred strengths when the
strengths are known. No selection rule, adaptive or not, reaches a precision
with fewer comparisons than that design at the true strengths.

Validity of the analysis: the selection depends only on earlier answers (and
on chance), so the design is ignorable for likelihood-based inference (Rubin
1976; the likelihood principle, Berger & Wolpert 1988): the Bradley-Terry
likelihood of the answers is the same function of the strengths as under a
fixed design, and a Bayesian posterior is exactly the one a fixed design with
the same pairs and answers would give. Frequentist Wald intervals of the
maximum-likelihood estimate keep only their asymptotic justification
(Chaudhuri & Mykland 1993), and ``bench/active_pairs.py`` shows that with
many items and few comparisons each this is not enough: selecting close
pairs by the current estimates stretches the estimated spread, and 95 % Wald
intervals covered 0.57-0.81 of the true strengths at 200 items with 40
comparisons per item (a bias-corrected, Firth-penalised estimate did not
help: 0.69). Posterior intervals under a normal prior of the strengths with a
weakly informative prior of its sd (:func:`sample_hierarchical_posterior`,
a random-effects Bradley-Terry model), computed from draws of the exact
posterior, stay calibrated under every design (coverage in bench/README.md);
that is what reports give after an adaptive design, and say so.

References:
    Mikhailiuk, A., Wilmot, C., Perez-Ortiz, M., Yue, D., & Mantiuk, R. K.
    (2020). Active sampling for pairwise comparisons via approximate message
    passing and information gain maximization (ASAP). ICPR 2020.
    Houlsby, N., Huszar, F., Ghahramani, Z., & Lengyel, M. (2011). Bayesian
    active learning for classification and preference learning. arXiv:1112.5745.
    Chen, X., Bennett, P. N., Collins-Thompson, K., & Horvitz, E. (2013).
    Pairwise ranking aggregation in a crowdsourced setting (Crowd-BT). WSDM.
    Rubin, D. B. (1976). Inference and missing data. Biometrika, 63, 581-592.
    Berger, J. O., & Wolpert, R. L. (1988). The Likelihood Principle, 2nd ed.
    IMS Lecture Notes 6.
    Gelman, A. (2006). Prior distributions for variance parameters in
    hierarchical models. Bayesian Analysis, 1, 515-534.
    Chaudhuri, P., & Mykland, P. A. (1993). Nonlinear experiments: optimal
    design and inference based on likelihood. JASA, 88, 538-546.
    Kiefer, J., & Wolfowitz, J. (1960). The equivalence of two extremum
    problems. Canadian Journal of Mathematics, 12, 363-366.
    Silvey, S. D., Titterington, D. M., & Torsney, B. (1978). An algorithm for
    optimal designs on a finite design space. Communications in Statistics A,
    7, 1379-1389.
    Neal, R. M. (2011). MCMC using Hamiltonian dynamics. In Handbook of Markov
    Chain Monte Carlo, ch. 5. Chapman & Hall.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import optimize, special

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

    def _width_square(self) -> np.ndarray:
        """:func:`_sd_weighted_square` of the covariance (cached)."""
        if getattr(self, "_width", None) is None:
            self._width = _sd_weighted_square(self.covariance)[1]
        return self._width

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


def _check_answers(n_items: int, winners: np.ndarray, losers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    winners = np.asarray(winners, dtype=np.int64).ravel()
    losers = np.asarray(losers, dtype=np.int64).ravel()
    if winners.shape != losers.shape:
        raise ValueError(f"winners and losers differ in length: {len(winners)} vs {len(losers)}")
    if len(winners) and (min(winners.min(), losers.min()) < 0 or max(winners.max(), losers.max()) >= n_items):
        raise ValueError(f"item labels must lie in 0..{n_items - 1}")
    if np.any(winners == losers):
        raise ValueError("a comparison has the same item as winner and loser")
    return winners, losers


def empirical_prior_sd(
    n_items: int,
    winners: np.ndarray,
    losers: np.ndarray,
    *,
    bounds: tuple[float, float] = (0.05, 20.0),
) -> float:
    """Prior sd of the log-strengths that maximises the marginal likelihood (empirical Bayes).

    The strengths are modelled as draws from ``N(0, sd^2)`` (a random-effects
    Bradley-Terry model); the marginal likelihood of the answers is integrated
    over them with the Laplace approximation and maximised over ``log sd``
    within ``bounds``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> truth = rng.normal(0.0, 1.5, 40)
        >>> i, j = rng.integers(0, 40, (2, 4000))
        >>> i, j = i[i != j], j[i != j]
        >>> won = rng.random(len(i)) < special.expit(truth[i] - truth[j])
        >>> sd = empirical_prior_sd(40, np.where(won, i, j), np.where(won, j, i))
        >>> 1.0 < sd < 2.2
        True
    """
    winners, losers = _check_answers(n_items, winners, losers)
    if not 0 < bounds[0] < bounds[1]:
        raise ValueError(f"bounds must be 0 < low < high, got {bounds!r}")
    fits: list[PairPosterior] = []

    def negative_log_marginal(log_sd: float) -> float:
        value, post = _log_marginal(n_items, winners, losers, float(np.exp(log_sd)),
                                    start=fits[-1] if fits else None)
        fits.append(post)
        return -value

    found = optimize.minimize_scalar(negative_log_marginal, bounds=np.log(bounds), method="bounded",
                                     options={"xatol": 0.01})
    return float(np.exp(found.x))


def _log_marginal(n_items: int, winners: np.ndarray, losers: np.ndarray, sd: float, *,
                  start: PairPosterior | None = None) -> tuple[float, PairPosterior]:
    """Laplace approximation of ``log p(answers | prior sd)`` (up to a constant), and the fit."""
    post = fit_posterior(n_items, winners, losers, prior_sd=sd, start=start)
    diff = post.mean[winners] - post.mean[losers]
    log_likelihood = -np.logaddexp(0.0, -diff).sum()
    log_det_cov = np.linalg.slogdet(post.covariance)[1]
    value = log_likelihood - post.mean @ post.mean / (2.0 * sd**2) - n_items * np.log(sd) + 0.5 * log_det_cov
    return float(value), post


def fit_posterior(
    n_items: int,
    winners: np.ndarray,
    losers: np.ndarray,
    *,
    prior_sd: float | str = 2.0,
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
        prior_sd: Standard deviation of the prior of each log-strength, or
            ``"empirical"`` for :func:`empirical_prior_sd` of these answers.
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
    winners, losers = _check_answers(n_items, winners, losers)
    if isinstance(prior_sd, str):
        if prior_sd != "empirical":
            raise ValueError(f"prior_sd must be a number or 'empirical', got {prior_sd!r}")
        prior_sd = empirical_prior_sd(n_items, winners, losers) if len(winners) else 2.0
    prior = prior_posterior(n_items, prior_sd=prior_sd)
    if len(winners) == 0:
        return prior
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


@dataclass
class PosteriorSample:
    """Draws from the Bradley-Terry posterior of the centred log-strengths.

    Estimand: ``s - mean(s)`` under the model of :func:`fit_posterior` (prior
    ``N(0, prior_sd^2)`` per log-strength). Intervals are equal-tailed
    posterior (credible) intervals: a statement about the strengths given the
    answers, valid whatever rule chose the pairs as long as it used only
    earlier answers (the likelihood principle).

    Attributes:
        draws: ``(n_draws, n)`` centred log-strengths.
        prior_sd: The prior's standard deviation.
        acceptance: Share of accepted Hamiltonian Monte Carlo proposals.
        n_comparisons: Answers used.
    """

    draws: np.ndarray = field(repr=False)
    prior_sd: float
    acceptance: float
    n_comparisons: int

    @property
    def mean(self) -> np.ndarray:
        return self.draws.mean(axis=0)

    @property
    def sd(self) -> np.ndarray:
        return self.draws.std(axis=0, ddof=1)

    def confidence_interval(self, confidence_level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed posterior interval of each centred strength, ``(low, high)``."""
        level = check_confidence_level(confidence_level)
        tail = (1.0 - level) / 2.0
        low, high = np.quantile(self.draws, [tail, 1.0 - tail], axis=0)
        return low, high


def sample_posterior(
    posterior: PairPosterior,
    winners: np.ndarray,
    losers: np.ndarray,
    *,
    n_draws: int = 2000,
    n_warmup: int = 300,
    leapfrog_steps: int = 5,
    rng: np.random.Generator | int | None = None,
) -> PosteriorSample:
    """Hamiltonian Monte Carlo draws from the exact Bradley-Terry posterior.

    The Laplace approximation (:func:`fit_posterior`) is too narrow for items
    far from the rest (their posterior is skewed: an item that wins nearly
    every comparison is bounded below, not above); in ``bench/active_pairs.py``
    its 95 % intervals covered a few per cent less than the draws' of true
    strengths drawn from the prior. The Laplace fit preconditions the sampler (it
    samples ``z`` with ``s = mode + L z``, ``L L' = covariance``), so a fixed
    step size works for any number of items.

    Args:
        posterior: Laplace fit of the same answers (its mode, covariance and prior).
        winners, losers: The answers the posterior was fitted to.
        n_draws: Draws kept.
        n_warmup: Draws discarded first.
        leapfrog_steps: Leapfrog steps per proposal.
        rng: Generator or seed.

    Returns:
        A :class:`PosteriorSample`.
    """
    n = posterior.n_items
    winners, losers = _check_answers(n, winners, losers)
    if n_draws < 2 or n_warmup < 0 or leapfrog_steps < 1:
        raise ValueError("need n_draws >= 2, n_warmup >= 0 and leapfrog_steps >= 1")
    gen = as_rng(rng)
    # One term per (winner, loser) combination: weight = times it happened.
    codes, times = np.unique(winners * n + losers, return_counts=True)
    first, second = codes // n, codes % n
    precision = 1.0 / posterior.prior_sd**2
    factor = np.linalg.cholesky(posterior.covariance)
    mode = posterior.mean

    def log_density_and_gradient(z: np.ndarray) -> tuple[float, np.ndarray]:
        theta = mode + factor @ z
        diff = theta[first] - theta[second]
        value = -(times * np.logaddexp(0.0, -diff)).sum() - 0.5 * precision * theta @ theta
        residual = times * special.expit(-diff)
        grad = np.bincount(first, residual, minlength=n) - np.bincount(second, residual, minlength=n)
        return value, factor.T @ (grad - precision * theta)

    # Step size for a standard normal target in whitened coordinates, shrinking
    # slowly with dimension (acceptance ~0.9 from 20 to 200 items).
    step = 2.4 / (n ** 0.25 * np.sqrt(leapfrog_steps))
    z = np.zeros(n)
    value, grad = log_density_and_gradient(z)
    draws = np.empty((n_draws, n))
    accepted = 0
    for it in range(n_warmup + n_draws):
        eps = step * gen.uniform(0.8, 1.2)
        momentum = gen.standard_normal(n)
        z_new, p_new = z.copy(), momentum + 0.5 * eps * grad
        for k in range(leapfrog_steps):
            z_new = z_new + eps * p_new
            value_new, grad_new = log_density_and_gradient(z_new)
            if k < leapfrog_steps - 1:
                p_new = p_new + eps * grad_new
        p_new = p_new + 0.5 * eps * grad_new
        log_ratio = value_new - value - 0.5 * (p_new @ p_new - momentum @ momentum)
        if np.log(gen.random()) < log_ratio:
            z, value, grad = z_new, value_new, grad_new
            accepted += it >= n_warmup
        if it >= n_warmup:
            draws[it - n_warmup] = mode + factor @ z
    draws -= draws.mean(axis=1, keepdims=True)
    return PosteriorSample(draws, posterior.prior_sd, accepted / n_draws, len(winners))


def sample_hierarchical_posterior(
    n_items: int,
    winners: np.ndarray,
    losers: np.ndarray,
    *,
    hyperprior_scale: float = 2.5,
    n_draws: int = 2000,
    n_warmup: int = 100,
    rng: np.random.Generator | int | None = None,
) -> PosteriorSample:
    """Posterior draws of the centred strengths with the prior's sd integrated out.

    Model: ``s_i ~ N(0, sd^2)`` independently, ``sd ~ half-Cauchy(0,
    hyperprior_scale)`` (a weakly informative prior for a scale, Gelman 2006).
    The posterior of ``sd`` is computed on a grid of 30 log-spaced values from
    0.05 to 20 (Laplace marginal likelihood of each); each value gets its share
    of the draws, sampled by :func:`sample_posterior` given that value. With
    many items this is the empirical-Bayes posterior (:func:`empirical_prior_sd`);
    with few, the uncertainty about the spread is kept rather than a spread
    estimated from three or four strengths, which can be near zero and would
    shrink every interval to nothing.

    Returns:
        A :class:`PosteriorSample`; its ``prior_sd`` is the posterior mean of ``sd``.
    """
    winners, losers = _check_answers(n_items, winners, losers)
    if not hyperprior_scale > 0:
        raise ValueError(f"hyperprior_scale must be positive, got {hyperprior_scale!r}")
    if n_draws < 2:
        raise ValueError(f"n_draws must be at least 2, got {n_draws}")
    gen = as_rng(rng)
    sds = np.geomspace(0.05, 20.0, 30)
    fits, log_weight = [], np.empty(len(sds))
    for k, sd in enumerate(sds[::-1]):  # from wide to narrow: each fit starts from the last
        value, post = _log_marginal(n_items, winners, losers, float(sd), start=fits[-1] if fits else None)
        fits.append(post)
        # Half-Cauchy density times the log-grid's Jacobian (d sd = sd d log sd).
        log_weight[k] = value - np.log1p((sd / hyperprior_scale) ** 2) + np.log(sd)
    fits, sds = fits[::-1], sds
    log_weight = log_weight[::-1]
    weight = np.exp(log_weight - log_weight.max())
    weight /= weight.sum()
    share = gen.multinomial(n_draws, weight)
    parts = [sample_posterior(fits[k], winners, losers, n_draws=max(int(share[k]), 2), n_warmup=n_warmup,
                              rng=gen)
             for k in np.flatnonzero(share)]
    draws = np.concatenate([part.draws[:share[k]] for part, k in zip(parts, np.flatnonzero(share))])
    acceptance = float(np.average([part.acceptance for part in parts], weights=share[share > 0]))
    return PosteriorSample(draws, float(weight @ sds), acceptance, len(winners))


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


def _fisher_weight(mean: np.ndarray, var: np.ndarray, fisher_weight: str) -> np.ndarray:
    """``p (1 - p)`` of each pair's difference ``d ~ N(mean, var)``.

    ``"predictive"``: ``p`` averaged over the posterior of ``d`` (probit
    approximation), the variance of the predicted answer: a pair whose order is
    still uncertain counts as informative. ``"at_mean"``: ``p`` at the mean,
    for strengths that are known (the benchmark's oracle); with the posterior's
    uncertainty, far pairs of uncertain items would look far more informative
    than they are (a 74-fold overestimate for a difference of 6.4 with variance
    30), and a greedy rule at known strengths then misses the optimal design by
    a wide margin (bench/README.md).
    """
    if fisher_weight == "predictive":
        p = special.expit(mean / np.sqrt(1.0 + np.pi * var / 8.0))
    elif fisher_weight == "at_mean":
        p = special.expit(mean)
    else:
        raise ValueError(f"fisher_weight must be 'predictive' or 'at_mean', got {fisher_weight!r}")
    return p * (1.0 - p)


def _rank_one_reduction(posterior: PairPosterior, square: np.ndarray, pairs, pending, fisher_weight) -> np.ndarray:
    """Expected drop of a variance criterion from one more comparison of each pair.

    ``square`` is the criterion's covariance sandwich ``C M C`` (``M``: centring
    for the summed variance, ``1 / (2 n sd)`` weights for the mean sd). One
    comparison adds ``w a a^T`` to the precision (``a = e_i - e_j``, ``w`` its
    Fisher weight, :func:`_fisher_weight`), which lowers the criterion by ``w
    a^T square a / (1 + w a^T C a)``. Pending comparisons (chosen, not
    answered) are applied first.
    """
    pairs = all_pairs(posterior.n_items) if pairs is None else np.asarray(pairs, dtype=np.int64)
    first, second = pairs[:, 0], pairs[:, 1]
    cov = posterior.covariance
    mean = posterior.mean[first] - posterior.mean[second]
    var = np.clip(cov[first, first] + cov[second, second] - 2.0 * cov[first, second], 1e-12, None)
    norm = np.clip(square[first, first] + square[second, second] - 2.0 * square[first, second], 0.0, None)
    w = _fisher_weight(mean, var, fisher_weight)
    if pending is not None:
        shrink = 1.0 + np.asarray(pending, dtype=np.float64) * w * var
        norm = norm / shrink**2
        var = var / shrink
    return w * norm / (1.0 + w * var)


def variance_reduction(
    posterior: PairPosterior,
    pairs: np.ndarray | None = None,
    *,
    pending: np.ndarray | None = None,
    fisher_weight: str = "predictive",
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
        fisher_weight: ``"predictive"`` (default): ``p`` averaged over the
            posterior of the difference; ``"at_mean"``: at the posterior mean,
            for known strengths.

    Returns:
        ``(m,)`` expected reduction (log-strength units squared).
    """
    return _rank_one_reduction(posterior, posterior._centred_square(), pairs, pending, fisher_weight)


@dataclass
class OptimalDesign:
    """A continuous design of paired comparisons optimal for the mean interval width.

    Estimand and criterion as in :func:`optimal_design`: ``weights[k]``
    comparisons of ``pairs[k]`` (a real number: the share of the budget times
    the budget) minimise the mean posterior sd of the centred strengths.

    Attributes:
        pairs: ``(m, 2)`` the candidate pairs.
        weights: ``(m,)`` comparisons per pair, summing to ``budget``.
        mean_sd: The criterion at ``weights``: mean posterior sd of ``s - mean(s)``.
        gap: Frank-Wolfe duality gap at ``weights``: an upper bound of
            ``mean_sd`` minus the optimum (the criterion is convex).
        converged: Whether ``gap <= tol * mean_sd`` was reached.
        n_iter: Multiplicative updates made.
        budget: Total comparisons.
        prior_sd: The prior's standard deviation.
    """

    pairs: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)
    mean_sd: float
    gap: float
    converged: bool
    n_iter: int
    budget: float
    prior_sd: float

    def interval_width(self, confidence_level: float = 0.95) -> float:
        """Mean width of the equal-tailed normal intervals of the centred strengths."""
        level = check_confidence_level(confidence_level)
        return float(2.0 * special.ndtri(0.5 + level / 2.0) * self.mean_sd)


def _sd_weighted_square(covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centred sds and ``S C D C S / 2n``, ``D = diag(1 / sd)``.

    A rank-one precision update ``w d d'`` lowers the mean centred sd by
    ``w d' (S C D C S / 2n) d`` to first order (``(C S d)_i^2 / (2 sd_i)`` per item).
    """
    centred_rows = covariance - covariance.mean(axis=0)  # C S
    sd = np.sqrt(np.clip(np.diag(centred_rows) - centred_rows.mean(axis=1), 1e-300, None))  # diag(C S C)
    scaled = centred_rows / np.sqrt(sd)[:, None]
    return sd, scaled.T @ scaled / (2.0 * len(sd))


def _design_criterion(weights, first, second, fisher, n, precision):
    """Mean centred posterior sd and its decrease per comparison on each pair (negative gradient)."""
    wq = weights * fisher
    hessian = np.zeros((n, n))
    hessian[first, second] = hessian[second, first] = -wq
    hessian[np.diag_indices(n)] = np.bincount(first, wq, n) + np.bincount(second, wq, n) + precision
    sd, inner = _sd_weighted_square(np.linalg.inv(hessian))
    decrease = fisher * (inner[first, first] + inner[second, second] - 2.0 * inner[first, second])
    return float(sd.mean()), decrease


def optimal_design(
    strengths: np.ndarray,
    budget: float,
    *,
    prior_sd: float = 2.0,
    pairs: np.ndarray | None = None,
    start: np.ndarray | None = None,
    tol: float = 1e-4,
    max_iter: int = 20_000,
) -> OptimalDesign:
    """The pair weights that minimise the mean interval width if the strengths were known.

    Estimand: the centred Bradley-Terry log-strengths ``s - mean(s)``.
    Criterion: the mean over items of their posterior sd under the prior
    ``N(0, prior_sd^2)`` and the Fisher information of the comparisons at
    ``strengths``, ``F(w) = sum_k w_k p_k (1 - p_k) d_k d_k'`` with
    ``d_k = e_a - e_b`` for pair ``k = (a, b)``: the locally optimal
    continuous design (Chaudhuri & Mykland 1993) for a budget of ``budget``
    comparisons. At the true strengths it bounds what any design can reach
    for the precision bench/active_pairs.py measures (its "design width");
    no rule that must learn the strengths does better.

    The criterion is convex in ``w`` (``1 / e' (F + P)^-1 e`` is concave in
    ``F``), so a design is optimal exactly when the equivalence condition
    (Kiefer & Wolfowitz 1960) holds: no pair decreases the criterion faster
    than the design's average. The multiplicative algorithm
    ``w_k <- w_k g_k / mean_w(g)`` (``g``: the decrease per comparison on each
    pair; Silvey, Titterington & Torsney 1978) runs until that holds within
    ``tol``: the duality gap ``budget * max(g) - w . g``, an upper bound of
    the distance to the optimum, at most ``tol * mean_sd``.

    Args:
        strengths: ``(n,)`` log-strengths the design is optimal at.
        budget: Total comparisons (positive; need not be whole).
        prior_sd: Standard deviation of the independent prior of each strength.
        pairs: ``(m, 2)`` pairs that may be compared; every pair by default.
        start: ``(m,)`` weights to start from (e.g. the design for a nearby
            budget); rescaled to ``budget``. Equal weights by default.
        tol: Relative duality gap to stop at.
        max_iter: Updates before giving up (``converged`` is then False).

    Returns:
        An :class:`OptimalDesign`.

    Raises:
        ValueError: Non-finite strengths, fewer than two items, a budget or
            prior sd that is not positive, bad pairs or start weights.

    Example:
        >>> equal = optimal_design(np.zeros(4), 60.0, prior_sd=3.0)
        >>> np.round(equal.weights, 2)  # equal strengths: every pair alike
        array([10., 10., 10., 10., 10., 10.])
        >>> spread = optimal_design(np.array([-4.0, -1.0, 1.0, 4.0]), 60.0, prior_sd=3.0)
        >>> bool(spread.weights[2] < 1.0)  # pair (0, 3): almost sure, not worth a comparison
        True
    """
    strengths = np.asarray(strengths, dtype=np.float64)
    if strengths.ndim != 1 or len(strengths) < 2 or not np.all(np.isfinite(strengths)):
        raise ValueError("strengths must be a 1-d array of at least 2 finite values")
    n = len(strengths)
    if not budget > 0 or not np.isfinite(budget):
        raise ValueError(f"budget must be positive, got {budget!r}")
    if not prior_sd > 0 or not np.isfinite(prior_sd):
        raise ValueError(f"prior_sd must be positive and finite, got {prior_sd!r}")
    pairs = all_pairs(n) if pairs is None else np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs) == 0 or pairs.min() < 0 or pairs.max() >= n or np.any(pairs[:, 0] == pairs[:, 1]):
        raise ValueError(f"pairs must be distinct items in 0..{n - 1}")
    if start is None:
        weights = np.full(len(pairs), budget / len(pairs))
    else:
        weights = np.asarray(start, dtype=np.float64)
        if weights.shape != (len(pairs),) or not np.all(weights >= 0) or not weights.sum() > 0:
            raise ValueError(f"start must be {len(pairs)} non-negative weights, not all zero")
        # A pair at zero weight would stay there: every pair keeps a little.
        weights = budget * (0.999 * weights / weights.sum() + 0.001 / len(pairs))
    first, second = pairs[:, 0], pairs[:, 1]
    p = special.expit(strengths[first] - strengths[second])
    fisher = p * (1.0 - p)
    precision = 1.0 / prior_sd**2
    for n_iter in range(max_iter + 1):
        mean_sd, decrease = _design_criterion(weights, first, second, fisher, n, precision)
        average = weights @ decrease
        gap = budget * decrease.max() - average
        if gap <= tol * mean_sd or n_iter == max_iter:
            break
        weights = weights * decrease * (budget / average)
        weights *= budget / weights.sum()
    return OptimalDesign(pairs, weights, mean_sd, float(gap), bool(gap <= tol * mean_sd), n_iter,
                         float(budget), float(prior_sd))


def width_reduction(
    posterior: PairPosterior,
    pairs: np.ndarray | None = None,
    *,
    pending: np.ndarray | None = None,
    fisher_weight: str = "predictive",
) -> np.ndarray:
    """Expected reduction of the mean posterior sd of the centred strengths per answer.

    As :func:`variance_reduction`, but each item's variance drop is weighted
    by ``1 / (2 n sd_i)``: the first-order drop of the mean sd, hence of the
    mean interval width, the criterion of :func:`optimal_design`. Items with
    wide intervals count less than under the summed variance. Arguments as
    :func:`variance_reduction`.

    Returns:
        ``(m,)`` expected reduction (log-strength units).
    """
    return _rank_one_reduction(posterior, posterior._width_square(), pairs, pending, fisher_weight)


def choose_pair(
    posterior: PairPosterior,
    *,
    allowed: np.ndarray | None = None,
    exposure: np.ndarray | None = None,
    min_exposure: int = 0,
    pending: np.ndarray | None = None,
    counts: np.ndarray | None = None,
    max_repeats: int | None = None,
    exclude: np.ndarray | None = None,
    avoid: np.ndarray | None = None,
    slack: float = 0.05,
    criterion: str = "variance",
    fisher_weight: str = "predictive",
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
    ``slack`` (relative) of the best value of ``criterion``.

    The random draw spreads concurrent choices made from one posterior (with
    ``pending``). A repeat limit spreads comparisons like a balanced design;
    it costs precision and is off by default (posterior intervals stay
    calibrated without it, see the module docstring).

    Args:
        posterior: Current :class:`PairPosterior`.
        allowed: ``(m, 2)`` pairs that may be compared; every pair by default.
        exposure: ``(n,)`` times each item was shown (answered or on screen).
        min_exposure: Minimum showings of every item before information gain rules.
        pending: ``(m,)`` comparisons per allowed pair not yet in ``posterior``.
        counts: ``(m,)`` comparisons per allowed pair so far (answered or on
            screen); needed for ``max_repeats``.
        max_repeats: Comparisons per pair before all others are compared as
            often (None, the default: no limit).
        exclude: ``(m,)`` booleans, pairs that must not be chosen.
        avoid: ``(m,)`` booleans, pairs chosen only when nothing else is left.
        slack: Relative tolerance defining near-best pairs (0 = argmax).
        criterion: ``"variance"``, ``"width"`` or ``"information"`` (module docstring).
        fisher_weight: For ``"variance"`` and ``"width"``: ``"predictive"``
            (default) or ``"at_mean"`` when ``posterior.mean`` is the truth
            (:func:`variance_reduction`).
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
    scores = {"information": information_gain, "variance": variance_reduction, "width": width_reduction}
    if criterion not in scores:
        raise ValueError(f"criterion must be one of {sorted(scores)}, got {criterion!r}")
    options = {"pending": None if pending is None else np.asarray(pending)[index]}
    if criterion != "information":
        options["fisher_weight"] = fisher_weight
    elif fisher_weight != "predictive":
        raise ValueError("the information criterion needs the posterior's uncertainty (fisher_weight='predictive')")
    gain = scores[criterion](posterior, pairs[index], **options)
    near_best = index[gain >= gain.max() * (1.0 - slack)]
    first, second = pairs[gen.choice(near_best)]
    return (int(first), int(second)) if gen.random() < 0.5 else (int(second), int(first))


__all__ = [
    "PairPosterior",
    "OptimalDesign",
    "PosteriorSample",
    "all_pairs",
    "choose_pair",
    "empirical_prior_sd",
    "fit_posterior",
    "information_gain",
    "optimal_design",
    "prior_posterior",
    "sample_hierarchical_posterior",
    "sample_posterior",
    "variance_reduction",
    "width_reduction",
]
