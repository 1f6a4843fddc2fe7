"""REML for linear mixed models with crossed random intercepts, from sufficient statistics.

Model: ``y = X beta + sum_f Z_f b_f + e`` with ``b_f ~ N(0, sigma^2 theta_f^2 I)``
and ``e ~ N(0, sigma^2 I)``, one random intercept per level of each factor f
(e.g. participant and content image, crossed).

The profiled REML criterion of Bates, Maechler, Bolker & Walker (2015, "Fitting
linear mixed-effects models using lme4", J. Stat. Softw. 67(1), section 3) needs
only ``X'X, X'y, y'y, Z'X, Z'y, Z'Z``. With every covariate categorical, ``X``
has one distinct row per design cell, so these come from cross-tabulations
and sums, built in one pass over the rows: a million ratings cost about as
much as a few thousand. The first factor (the one with most levels, usually
participants) has a diagonal ``Z'Z`` block and is eliminated by a Schur
complement, so each evaluation costs ``O(P Q (p + Q))`` for P levels of the
first factor, Q of the others and p fixed effects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import linalg, optimize

_LOG_2PI = float(np.log(2.0 * np.pi))


class CrossedStats:
    """Sufficient statistics of one data set for :func:`fit_crossed`.

    Args:
        y: Response ``(n,)``.
        cell_codes: Design-cell index of each row ``(n,)``, into ``x_cells``.
        x_cells: Fixed-effects design row of each cell ``(m, p)``.
        factors: Integer codes ``(n,)`` of each random-intercept factor; the
            factor with most levels is eliminated analytically.
    """

    def __init__(
        self, y: np.ndarray, cell_codes: np.ndarray, x_cells: np.ndarray,
        factors: list[np.ndarray],
    ) -> None:
        y = np.asarray(y, dtype=np.float64)
        n, m = len(y), x_cells.shape[0]
        self.n, self.p = n, x_cells.shape[1]
        levels = [int(f.max()) + 1 for f in factors]
        order = np.argsort(levels)[::-1]
        self.order = order
        first = factors[order[0]]
        rest = [factors[i] for i in order[1:]]
        self.n_first = levels[order[0]]
        self.rest_sizes = [levels[i] for i in order[1:]]
        offsets = np.cumsum([0, *self.rest_sizes])
        q = int(offsets[-1])
        self.q = q
        xy = np.column_stack([x_cells, np.zeros(m)])  # cell rows of [X y] (y part filled below)

        n_cell = np.bincount(cell_codes, minlength=m).astype(np.float64)
        y_cell = np.bincount(cell_codes, weights=y, minlength=m)
        self.g = np.empty((self.p + 1, self.p + 1))
        self.g[: self.p, : self.p] = x_cells.T @ (n_cell[:, None] * x_cells)
        self.g[: self.p, self.p] = self.g[self.p, : self.p] = x_cells.T @ y_cell
        self.g[self.p, self.p] = y @ y

        def cross(codes: np.ndarray, size: int) -> np.ndarray:
            """``Z_f'[X y]`` for one factor: (levels, p + 1)."""
            table = np.bincount(codes * m + cell_codes, minlength=size * m).reshape(size, m)
            out = table @ xy
            out[:, self.p] = np.bincount(codes, weights=y, minlength=size)
            return out

        self.d_first = np.bincount(first, minlength=self.n_first).astype(np.float64)
        self.zxy_first = cross(first, self.n_first)
        self.zxy_rest = np.zeros((q, self.p + 1))
        self.ztz_rest = np.zeros((q, q))
        self.n_cross = np.zeros((self.n_first, q))
        for a, codes_a in enumerate(rest):
            sa = slice(offsets[a], offsets[a + 1])
            self.zxy_rest[sa] = cross(codes_a, self.rest_sizes[a])
            self.n_cross[:, sa] = np.bincount(
                first * self.rest_sizes[a] + codes_a, minlength=self.n_first * self.rest_sizes[a]
            ).reshape(self.n_first, self.rest_sizes[a])
            for b, codes_b in enumerate(rest):
                sb = slice(offsets[b], offsets[b + 1])
                self.ztz_rest[sa, sb] = np.bincount(
                    codes_a * self.rest_sizes[b] + codes_b,
                    minlength=self.rest_sizes[a] * self.rest_sizes[b],
                ).reshape(self.rest_sizes[a], self.rest_sizes[b])
        self.rest_index = np.repeat(np.arange(len(rest)), self.rest_sizes)

    def solve(self, theta: np.ndarray) -> dict[str, object]:
        """Profiled quantities at relative standard deviations ``theta`` (first factor first)."""
        t0 = theta[0]
        t_rest = theta[1:][self.rest_index] if self.q else np.zeros(0)
        a11 = t0 * t0 * self.d_first + 1.0
        r1 = t0 * self.zxy_first
        if self.q:
            a12 = t0 * self.n_cross * t_rest[None, :]
            a22 = np.outer(t_rest, t_rest) * self.ztz_rest + np.eye(self.q)
            r2 = t_rest[:, None] * self.zxy_rest
            scaled = a12 / a11[:, None]
            schur = a22 - a12.T @ scaled
            chol = linalg.cho_factor(schur, lower=True)
            w2 = linalg.cho_solve(chol, r2 - scaled.T @ r1)
            w1 = (r1 - a12 @ w2) / a11[:, None]
            rtw = r1.T @ w1 + r2.T @ w2
            logdet_a = np.log(a11).sum() + 2.0 * np.log(np.diag(chol[0])).sum()
        else:
            rtw = r1.T @ (r1 / a11[:, None])
            logdet_a = np.log(a11).sum()
        m = self.g - rtw
        p = self.p
        chol_x = linalg.cho_factor(m[:p, :p], lower=True)
        beta = linalg.cho_solve(chol_x, m[:p, p])
        r2_pen = float(m[p, p] - m[:p, p] @ beta)
        logdet_x = 2.0 * np.log(np.diag(chol_x[0])).sum()
        dof = self.n - p
        deviance = logdet_a + logdet_x + dof * (1.0 + _LOG_2PI + np.log(r2_pen / dof))
        return {"deviance": float(deviance), "beta": beta, "sigma2": r2_pen / dof,
                "chol_x": chol_x, "logdet": float(logdet_a + logdet_x), "r2": r2_pen}

    def deviance_at(self, variances: np.ndarray, sigma2: float) -> float:
        """REML deviance (-2 log restricted likelihood) at given variance components.

        ``variances`` are the random-intercept variances in sorted order (first
        factor first), ``sigma2`` the residual variance; unlike :meth:`solve`,
        nothing is profiled out, so second derivatives give the asymptotic
        covariance of all variance parameters.
        """
        theta = np.sqrt(np.clip(variances, 0.0, None) / sigma2)
        solved = self.solve(theta)
        dof = self.n - self.p
        return solved["logdet"] + dof * (_LOG_2PI + np.log(sigma2)) + solved["r2"] / sigma2

    def cov_beta_at(self, variances: np.ndarray, sigma2: float) -> np.ndarray:
        """``sigma2 (X' V^-1 X)^-1`` at given variance components (sorted order)."""
        theta = np.sqrt(np.clip(variances, 0.0, None) / sigma2)
        solved = self.solve(theta)
        return sigma2 * linalg.cho_solve(solved["chol_x"], np.eye(self.p))


def satterthwaite_df(
    stats: CrossedStats, variances_sorted: np.ndarray, sigma2: float, contrasts: np.ndarray,
    *, rel_step: float = 1e-3,
) -> np.ndarray:
    """Satterthwaite degrees of freedom of linear contrasts ``L beta`` (rows of ``contrasts``).

    ``df = 2 v(phi)^2 / (g' A g)`` with ``v`` the contrast's variance as a function
    of the variance parameters ``phi`` (random-intercept variances and the
    residual variance), ``g`` its gradient and ``A = 2 H^-1`` the asymptotic
    covariance of ``phi`` from the Hessian ``H`` of the REML deviance
    (Satterthwaite 1946; Kuznetsova, Brockhoff & Christensen 2017, lmerTest,
    J. Stat. Softw. 82(13)). Derivatives are central differences. Variance
    components estimated at zero stay fixed there, as lmerTest's do in effect.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _satterthwaite_df(stats, variances_sorted, sigma2, contrasts, rel_step)


def _satterthwaite_df(
    stats: CrossedStats, variances_sorted: np.ndarray, sigma2: float, contrasts: np.ndarray,
    rel_step: float,
) -> np.ndarray:
    contrasts = np.atleast_2d(contrasts)
    phi_all = np.append(np.asarray(variances_sorted, float), sigma2)
    free = np.flatnonzero(phi_all > 1e-8 * max(sigma2, 1e-12))
    free = np.union1d(free, [len(phi_all) - 1])
    steps = rel_step * phi_all[free]

    def point(delta: dict[int, float]) -> np.ndarray:
        phi = phi_all.copy()
        for j, d in delta.items():
            phi[free[j]] += d
        return phi

    def dev(delta: dict[int, float]) -> float:
        phi = point(delta)
        return stats.deviance_at(phi[:-1], phi[-1])

    k = len(free)
    f0 = dev({})
    hess = np.empty((k, k))
    plus = [dev({i: steps[i]}) for i in range(k)]
    minus = [dev({i: -steps[i]}) for i in range(k)]
    for i in range(k):
        hess[i, i] = (plus[i] - 2 * f0 + minus[i]) / steps[i] ** 2
        for j in range(i + 1, k):
            hess[i, j] = hess[j, i] = (
                dev({i: steps[i], j: steps[j]}) - dev({i: steps[i], j: -steps[j]})
                - dev({i: -steps[i], j: steps[j]}) + dev({i: -steps[i], j: -steps[j]})
            ) / (4 * steps[i] * steps[j])
    cov_phi = 2.0 * np.linalg.pinv(hess)
    base = contrasts @ stats.cov_beta_at(phi_all[:-1], sigma2) @ contrasts.T
    v = np.diag(base)
    grad = np.empty((len(contrasts), k))
    for i in range(k):
        up = point({i: steps[i]})
        down = point({i: -steps[i]})
        cov_up = stats.cov_beta_at(up[:-1], up[-1])
        cov_down = stats.cov_beta_at(down[:-1], down[-1])
        grad[:, i] = (np.einsum("ij,jk,ik->i", contrasts, cov_up, contrasts)
                      - np.einsum("ij,jk,ik->i", contrasts, cov_down, contrasts)) / (2 * steps[i])
    denom = np.einsum("ci,ij,cj->c", grad, cov_phi, grad)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = 2.0 * v**2 / denom
    return np.clip(np.where(np.isfinite(df), df, stats.n - stats.p), 1.0, stats.n - stats.p)


def fit_crossed(
    stats: CrossedStats, *, starts: tuple[float, ...] = (1.0, 0.3)
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, bool]:
    """Minimise the REML criterion over ``theta >= 0``.

    Returns:
        ``(beta, cov_beta, sigma2, variances, converged)`` where ``variances`` are
        the random-intercept variances in the caller's factor order (the sorted
        order is ``variances[stats.order]``).
    """
    from threadpoolctl import threadpool_limits

    k = 1 + len(stats.rest_sizes)

    def objective(theta: np.ndarray) -> float:
        try:
            return stats.solve(theta)["deviance"]
        except (linalg.LinAlgError, ValueError, FloatingPointError):
            return np.inf

    best = None
    # The matrices are small (levels x fixed effects); BLAS threads only add
    # synchronisation cost, several-fold on a busy machine.
    with threadpool_limits(limits=1, user_api="blas"):
        for start in starts:
            res = optimize.minimize(
                objective, np.full(k, start), method="L-BFGS-B", bounds=[(0.0, 1e3)] * k,
            )
            if best is None or res.fun < best.fun:
                best = res
    theta = best.x
    solved = stats.solve(theta)
    sigma2 = solved["sigma2"]
    cov = sigma2 * linalg.cho_solve(solved["chol_x"], np.eye(stats.p))
    variances_sorted = sigma2 * theta**2
    variances = np.empty(k)
    variances[stats.order] = variances_sorted
    return solved["beta"], cov, sigma2, variances, bool(best.success)


def crossed_lmm_arrays(
    data: pd.DataFrame, formula_rhs: str, *, variables: list[str], random: list[str],
    response: str,
) -> tuple[CrossedStats, object, list[str]]:
    """Build :class:`CrossedStats` from a frame and a patsy right-hand side.

    Distinct combinations of ``variables`` (every variable the formula uses)
    form the design cells, so categorical designs stay small whatever the
    number of rows.

    Returns:
        ``(stats, design_info, column_names)``.
    """
    from patsy import dmatrix

    cell_codes, cells = _factorize_rows(data[variables])
    design = dmatrix(formula_rhs, cells, return_type="dataframe")
    if len(design) != len(cells):
        raise ValueError("design has missing values in the fixed-effect variables")
    factors = [pd.factorize(data[name], sort=True)[0] for name in random]
    stats = CrossedStats(
        data[response].to_numpy(np.float64), cell_codes, design.to_numpy(), factors
    )
    return stats, design.design_info, list(design.columns)


def _factorize_rows(frame: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Codes of each row's combination of values, and the distinct combinations."""
    codes = np.zeros(len(frame), dtype=np.int64)
    for col in frame.columns:
        col_codes, uniques = pd.factorize(frame[col], sort=True)
        codes = codes * len(uniques) + col_codes
    unique_codes, cell_codes = np.unique(codes, return_inverse=True)
    first_rows = np.unique(cell_codes, return_index=True)[1]
    cells = frame.iloc[first_rows].reset_index(drop=True)
    return cell_codes.astype(np.int64), cells
