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
                "chol_x": chol_x}


def fit_crossed(
    stats: CrossedStats, *, starts: tuple[float, ...] = (1.0, 0.3)
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, bool]:
    """Minimise the REML criterion over ``theta >= 0``.

    Returns:
        ``(beta, cov_beta, sigma2, variances, converged)`` where ``variances`` are
        the random-intercept variances in the caller's factor order.
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
