"""Adaptive vs balanced vs random pair selection: comparisons needed for a target precision.

    python bench/active_pairs.py                          # 20, 50, 200 items, full repetitions
    python bench/active_pairs.py --items 20 --reps 5      # quick look

Simulation with known truth: ``n`` items with Bradley-Terry log-strengths drawn
from ``N(0, spread^2)``; each comparison's outcome is drawn from the model.
The designs spend the same budget (``per-item`` comparisons per item on
average):

* ``random``: each comparison an independent uniformly random pair;
* ``balanced``: round-robin rounds (every item once per round, circle method,
  rounds and labels shuffled) so every item is compared equally often;
* ``adaptive``: :func:`studies.analysis.design.choose_pair` with the study's
  defaults (expected reduction of the centred strengths' posterior variance on
  the Laplace posterior, refitted every ``batch`` answers, n/16 but at least 5;
  answers since the last refit count as pending, as screens of concurrent
  participants would);
* ``adaptive-width``: the same with ``criterion="width"``, the expected drop of
  the mean posterior sd (the mean interval width) instead of the summed variance;
* ``adaptive-information``: the same with ``criterion="information"``, the
  expected information gain of ASAP (Mikhailiuk et al. 2020);
* ``adaptive-capped``: the earlier default (no pair repeated before every pair
  was compared, near-best pairs within 30 %);
* ``oracle``: the adaptive rule choosing from the true strengths (Fisher
  weights at the truth, ``fisher_weight="at_mean"``): what the greedy rule
  reaches when it need not learn them (its precision is read from the design
  width only: its choices depend on the truth, so its answers are not
  ignorable and mislead any fit);
* ``bound`` (not a simulation): :func:`studies.analysis.design.optimal_design`
  at the repetitions' true strengths (the same for every design), the continuous design with the
  smallest mean design width for a budget; the share of the budget at which
  its width, averaged over those strengths, equals the balanced design's at
  its full budget. No design whatsoever needs fewer comparisons for that width.

At checkpoints: Spearman rho of the ridge-0.01 estimate with the truth; the
mean width of 95 % intervals of the centred strengths and their coverage of the
centred truth, for (a) Wald intervals of the ridge-0.01 fit, (b) the Laplace
posterior with the prior sd estimated from the answers, (c) at the full budget
only, posterior intervals from draws of the exact posterior with the prior sd
integrated out (what the report prints after an adaptive design), and (d) the design width (Fisher information
at the truth). Printed per number of items: comparisons (median over
repetitions) until rho >= 0.9; the share of the budget after which the mean
width stays at or below the balanced design's at its full budget (the claim
is adaptive <= 50 %); coverage at the full budget; milliseconds per adaptive
choice, per refit and per posterior sample.

``--bound-only`` skips the simulations and prints the bound alone (the balanced
design's width needs only its pairs, not their outcomes): seconds per spread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# One BLAS thread: on a few busy cores multithreaded 200 x 200 solves are 25x slower.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy import optimize, special, stats  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studies.analysis import design  # noqa: E402

#: Adaptive variants: choose_pair options and the prior of the selection's posterior.
#: The first is what the study uses.
ADAPTIVE = {
    "adaptive": {"criterion": "variance", "max_repeats": None, "slack": 0.05, "prior_sd": 2.0},
    "adaptive-width": {"criterion": "width", "max_repeats": None, "slack": 0.05, "prior_sd": 2.0},
    "adaptive-capped": {"criterion": "variance", "max_repeats": 1, "slack": 0.3, "prior_sd": 2.0},
    "adaptive-information": {"criterion": "information", "max_repeats": None, "slack": 0.05, "prior_sd": 2.0},
}
#: "oracle": the adaptive default choosing from the true strengths (a posterior centred on
#: them, with the Fisher information of the comparisons so far at the truth, and each pair's
#: Fisher weight at the truth): the greedy rule without the cost of learning the strengths.
DESIGNS = ("random", "balanced", *ADAPTIVE, "oracle")
#: Prior sd of the Wald intervals' fit, ridge = 1 / sd^2 = 0.01 as the report's bootstrap fits.
WALD_PRIOR_SD = 10.0
Z95 = stats.norm.ppf(0.975)
#: Columns of evaluate()'s output.
MEASURES = ("rho", "wald_width", "wald_cover", "laplace_width", "laplace_cover", "posterior_width",
            "posterior_cover", "design_width")


def round_robin(n: int, rng: np.random.Generator):
    """Endless rounds of a round-robin tournament (circle method); each round pairs every item once."""
    m = n if n % 2 == 0 else n + 1  # a bye for odd n
    while True:
        labels = rng.permutation(m)
        rounds = rng.permutation(m - 1)
        for r in rounds:
            ring = [(r + k) % (m - 1) for k in range(m - 1)]
            matches = [(m - 1, ring[0])] + [(ring[k], ring[-k]) for k in range(1, m // 2)]
            for a, b in rng.permutation(np.array(matches)):
                a, b = labels[a], labels[b]
                if a < n and b < n:
                    yield int(a), int(b)


def evaluate(truth: np.ndarray, spread: float, winners: list[int], losers: list[int], *, draws: int,
             rng: np.random.Generator, timings: dict) -> np.ndarray:
    """One row of MEASURES; the posterior draws (slow) only when ``draws`` > 0.

    ``design_width``: the mean 95 % width the comparisons made would give if the
    strengths were known to lie near the truth (Fisher information at the truth,
    prior sd = spread): the design's precision without estimation noise, also
    defined for the oracle, whose own answers mislead an empirical-Bayes fit.
    """
    n = len(truth)
    w, lo = np.array(winners), np.array(losers)
    centred_truth = truth - truth.mean()
    out = np.full(len(MEASURES), np.nan)
    wald = design.fit_posterior(n, w, lo, prior_sd=WALD_PRIOR_SD)
    mean, cov = wald.centred()
    half = Z95 * np.sqrt(np.clip(np.diag(cov), 0.0, None))
    out[0] = stats.spearmanr(mean, truth).statistic
    out[1], out[2] = np.mean(2 * half), np.mean(np.abs(mean - centred_truth) <= half)
    laplace = design.fit_posterior(n, w, lo, prior_sd="empirical", start=wald)
    low, high = laplace.confidence_interval()
    out[3], out[4] = np.mean(high - low), np.mean((centred_truth >= low) & (centred_truth <= high))
    out[7] = design_width(truth, spread, w, lo)
    if draws:
        t0 = time.perf_counter()
        sample = design.sample_hierarchical_posterior(n, w, lo, n_draws=draws, rng=rng)
        timings.setdefault("posterior draws", []).append(time.perf_counter() - t0)
        low, high = sample.confidence_interval()
        out[5], out[6] = np.mean(high - low), np.mean((centred_truth >= low) & (centred_truth <= high))
    return out


def oracle_posterior(truth: np.ndarray, spread: float, winners: np.ndarray, losers: np.ndarray):
    """Posterior centred on the truth with the Fisher information at the truth (prior sd = spread)."""
    n = len(truth)
    games = np.bincount(winners * n + losers, minlength=n * n).reshape(n, n)
    games = (games + games.T).astype(np.float64)
    p = special.expit(truth[:, None] - truth[None, :])
    weight = games * p * p.T
    precision = np.diag(weight.sum(axis=1) + 1.0 / spread**2) - weight
    return design.PairPosterior(truth.copy(), np.linalg.inv(precision), len(winners), spread)


def design_width(truth: np.ndarray, spread: float, first: np.ndarray, second: np.ndarray) -> float:
    """Mean 95 % width of the centred strengths from comparisons of ``first[k]`` with ``second[k]``."""
    _, cov = oracle_posterior(truth, spread, first, second).centred()
    return float(np.mean(2 * Z95 * np.sqrt(np.diag(cov))))


def bound_share(truths: list[np.ndarray], spread: float, budget: int, target: float, timings: dict) -> float:
    """Share of ``budget`` at which the optimal design's width, averaged over ``truths``, is ``target``.

    inf if even the full budget does not reach it.
    """
    starts: dict[int, np.ndarray] = {}

    def excess(share: float) -> float:
        widths = []
        for k, truth in enumerate(truths):
            t0 = time.perf_counter()
            found = design.optimal_design(truth, share * budget, prior_sd=spread, start=starts.get(k))
            timings.setdefault("optimal design", []).append(time.perf_counter() - t0)
            if not found.converged:
                raise RuntimeError(f"optimal design did not converge: gap {found.gap:.2g}")
            starts[k] = found.weights
            widths.append(found.interval_width())
        return float(np.mean(widths)) - target

    if excess(1.0) > 0:
        return float("inf")
    return float(optimize.brentq(excess, 0.02, 1.0, xtol=1e-3))


def simulate(truth: np.ndarray, design_name: str, *, budget: int, checkpoints: np.ndarray, spread: float,
             batch: int, min_exposure: int, draws: int, rng: np.random.Generator, timings: dict) -> np.ndarray:
    """``(len(checkpoints), len(MEASURES))`` at each checkpoint (posterior draws at the last)."""
    n = len(truth)
    winners: list[int] = []
    losers: list[int] = []
    out = np.empty((len(checkpoints), len(MEASURES)))
    pairs = design.all_pairs(n)
    code_of = np.full((n, n), -1, dtype=np.int64)
    code_of[pairs[:, 0], pairs[:, 1]] = np.arange(len(pairs))
    pending = np.zeros(len(pairs))
    counts = np.zeros(len(pairs))
    exposure = np.zeros(n)
    options = ADAPTIVE.get(design_name, ADAPTIVE["adaptive"])
    posterior = design.prior_posterior(n)
    schedule = round_robin(n, rng)
    next_check = 0
    for step in range(1, budget + 1):
        if design_name == "random":
            a, b = rng.choice(n, 2, replace=False)
        elif design_name == "balanced":
            a, b = next(schedule)
        else:
            if step > 1 and (step - 1) % batch == 0:
                t0 = time.perf_counter()
                if design_name == "oracle":
                    posterior = oracle_posterior(truth, spread, np.array(winners), np.array(losers))
                else:
                    posterior = design.fit_posterior(n, np.array(winners), np.array(losers), start=posterior,
                                                     prior_sd=options["prior_sd"])
                timings.setdefault("refit", []).append(time.perf_counter() - t0)
                pending[:] = 0
            t0 = time.perf_counter()
            a, b = design.choose_pair(posterior, exposure=exposure, min_exposure=min_exposure,
                                      pending=pending, counts=counts, max_repeats=options["max_repeats"],
                                      slack=options["slack"], criterion=options["criterion"],
                                      fisher_weight="at_mean" if design_name == "oracle" else "predictive",
                                      rng=rng)
            timings.setdefault(design_name, []).append(time.perf_counter() - t0)
            pending[code_of[min(a, b), max(a, b)]] += 1
            counts[code_of[min(a, b), max(a, b)]] += 1
        exposure[[a, b]] += 1
        if rng.random() < special.expit(truth[a] - truth[b]):
            winners.append(a), losers.append(b)
        else:
            winners.append(b), losers.append(a)
        while next_check < len(checkpoints) and step == checkpoints[next_check]:
            # The oracle's posterior is not reported (its answers are not ignorable): no draws.
            final = next_check == len(checkpoints) - 1 and design_name != "oracle"
            out[next_check] = evaluate(truth, spread, winners, losers, draws=draws if final else 0, rng=rng,
                                       timings=timings)
            next_check += 1
    return out


def first_reaching(values: np.ndarray, checkpoints: np.ndarray, target: float, *, below: bool) -> float:
    """First checkpoint from which on ``values`` stays at ``target`` or better (inf if never).

    "Stays": an empirical-Bayes fit of few answers can estimate a tiny prior sd
    and briefly give narrow intervals long before the data support them.
    """
    slack = 1e-9 * abs(target)  # the balanced curve ends exactly on its own target
    hit = values <= target + slack if below else values >= target - slack
    if not hit[-1]:
        return float("inf")
    misses = np.flatnonzero(~hit)
    return float(checkpoints[misses[-1] + 1 if len(misses) else 0])


def run(n: int, args, spread: float, rng: np.random.Generator) -> dict:
    budget = args.per_item * n // 2
    checkpoints = np.unique(np.linspace(budget / args.checkpoints, budget, args.checkpoints).round().astype(int))
    batch = args.batch or max(5, n // 16)
    reps = args.reps or {20: 60, 50: 20, 200: 6}.get(n, 6)
    timings: dict[str, list[float]] = {}
    # Every design meets the same true strengths (common random numbers: smaller differences show).
    truths = [rng.normal(0.0, spread, n) for _ in range(reps)]
    curves = {}
    for name in args.designs:
        curves[name] = np.stack([
            simulate(truth, name, budget=budget, checkpoints=checkpoints, spread=spread, batch=batch,
                     min_exposure=args.min_exposure, draws=args.draws, rng=rng, timings=timings)
            for truth in truths
        ])  # (reps, checkpoints, measures)
    col = {m: k for k, m in enumerate(MEASURES)}
    target = {m: curves["balanced"][:, -1, col[m]].mean() for m in ("wald_width", "laplace_width", "design_width")}
    # Fisher information per comparison of a uniformly drawn pair relative to an even one
    # (p = 1/2): no design saves more than this share by comparing only even pairs.
    d = rng.normal(0.0, spread * np.sqrt(2.0), 200_000)
    information_share = float(np.mean(special.expit(d) * special.expit(-d)) / 0.25)
    rows = {}
    for name, c in curves.items():
        row = {m: c[:, -1, col[m]].mean() for m in MEASURES}
        row["to_rho"] = float(np.median([first_reaching(r, checkpoints, args.rho, below=False)
                                         for r in c[:, :, col["rho"]]]))
        for m in target:
            row[f"to_{m}"] = first_reaching(c[:, :, col[m]].mean(axis=0), checkpoints, target[m], below=True)
        rows[name] = row
    bound = bound_share(truths, spread, budget, target["design_width"], timings)
    return {"n": n, "budget": budget, "reps": reps, "batch": batch, "step": checkpoints[0], "target": target,
            "rows": rows, "bound": bound, "information_share": information_share,
            "ms": {k: (1000 * statistics.median(v), 1000 * float(np.percentile(v, 99)))
                   for k, v in timings.items()}}


def _share(share: float) -> str:
    return "> 100%" if np.isinf(share) else f"{share:.1%}"


def bound_only(n: int, args, spread: float, rng: np.random.Generator) -> str:
    """The bound row alone: balanced designs need only their pairs for the design width."""
    budget = args.per_item * n // 2
    reps = args.reps or {20: 60, 50: 20, 200: 6}.get(n, 6)
    truths, widths, timings = [], [], {}
    for _ in range(reps):
        truth = rng.normal(0.0, spread, n)
        schedule = round_robin(n, rng)
        pairs = np.array([next(schedule) for _ in range(budget)])
        truths.append(truth)
        widths.append(design_width(truth, spread, pairs[:, 0], pairs[:, 1]))
    share = bound_share(truths, spread, budget, float(np.mean(widths)), timings)
    return (f"spread {spread}, {n} items, {reps} repetitions: balanced design width {np.mean(widths):.3f}, "
            f"optimal design reaches it with {_share(share)} of the budget "
            f"({1000 * statistics.median(timings['optimal design']):.0f} ms per solve)")


def report(result: dict, rho: float) -> str:
    b = result["budget"]
    t = result["target"]
    lines = [
        f"\n{result['n']} items, budget {b} comparisons ({2 * b // result['n']} per item), "
        f"{result['reps']} repetitions, adaptive refit every {result['batch']} answers, "
        f"checkpoints every {result['step']} comparisons",
        f"balanced width at full budget: posterior (Laplace) {t['laplace_width']:.3f}, Wald {t['wald_width']:.3f}, "
        f"design {t['design_width']:.3f}; Fisher information of a random pair relative to an even pair: "
        f"{result['information_share']:.0%}",
        f"| design | rho at budget | comparisons to rho >= {rho} (median) | posterior width at budget "
        "| share of budget to balanced width: posterior | Wald | design "
        "| coverage: posterior draws | Laplace | Wald |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["rows"].items():
        estimated = name != "oracle"  # the oracle's choices depend on the truth: not ignorable
        shares = [("> 100%" if np.isinf(r[f"to_{m}"]) else f"{r[f'to_{m}'] / b:.0%}")
                  if estimated or m == "design_width" else "-"
                  for m in ("laplace_width", "wald_width", "design_width")]
        cover = [f"{r[m]:.3f}" if estimated else "-" for m in ("posterior_cover", "laplace_cover", "wald_cover")]
        width = f"{r['posterior_width']:.3f}" if estimated else "-"
        lines.append(f"| {name} | {r['rho']:.3f} | {r['to_rho']:.0f} | {width} | "
                     + " | ".join(shares + cover) + " |")
    lines.append(f"| bound | - | - | - | - | - | {_share(result['bound'])} | - | - | - |")
    for name, (median, p99) in result["ms"].items():
        lines.append(f"{name}: median {median:.2f} ms, p99 {p99:.2f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[20, 50, 200], help="numbers of items")
    parser.add_argument("--reps", type=int, default=0, help="repetitions (default 60 / 20 / 6 by size)")
    parser.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=DESIGNS,
                        help="designs to simulate (balanced is the reference and always needed)")
    parser.add_argument("--draws", type=int, default=1000, help="posterior draws at the full budget")
    parser.add_argument("--per-item", type=int, default=40, help="budget: comparisons per item")
    parser.add_argument("--spread", type=float, nargs="+", default=[1.5, 3.0], help="sds of the true log-strengths")
    parser.add_argument("--batch", type=int, default=0,
                        help="answers per posterior refit (default n/16, at least 5, as the study)")
    parser.add_argument("--min-exposure", type=int, default=2, help="adaptive: showings per item first")
    parser.add_argument("--checkpoints", type=int, default=40, help="evaluations along the budget")
    parser.add_argument("--rho", type=float, default=0.9, help="Spearman target")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--bound-only", action="store_true", help="only the optimal design's share of the budget")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    if "balanced" not in args.designs:
        parser.error("--designs must include balanced (the reference)")
    print(f"min exposure {args.min_exposure}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    for spread in args.spread:
        for n in args.items:
            if args.bound_only:
                print(bound_only(n, args, spread, rng), flush=True)
                continue
            t0 = time.perf_counter()
            print(f"\n## spread {spread}", end="")
            print(report(run(n, args, spread, rng), args.rho))
            print(f"({time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.2f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
