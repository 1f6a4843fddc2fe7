"""Adaptive vs balanced vs random pair selection: comparisons needed for a target precision.

    python bench/active_pairs.py                          # 20, 50, 200 items, full repetitions
    python bench/active_pairs.py --items 20 --reps 5      # quick look

Simulation with known truth: ``n`` items with Bradley-Terry log-strengths drawn
from ``N(0, spread^2)``; each comparison's outcome is drawn from the model.
Three designs spend the same budget (``per-item`` comparisons per item on
average):

* ``random``: each comparison an independent uniformly random pair;
* ``balanced``: round-robin rounds (every item once per round, circle method,
  rounds and labels shuffled) so every item is compared equally often;
* ``adaptive``: :func:`studies.analysis.design.choose_pair` (expected
  information gain on the Laplace posterior) with the posterior refitted every
  ``batch`` answers; answers since the last refit count as pending, as screens
  of concurrent participants would.

At checkpoints the ridge-0.01 Bradley-Terry estimate (as the report fits it)
gives the Spearman correlation with the truth, the mean width of the 95 %
Wald intervals of the centred strengths, and their coverage of the centred
truth. Printed per number of items: comparisons (median over repetitions)
until Spearman rho >= 0.9; comparisons until the mean interval width reaches
the balanced design's width at its full budget (as a share of that budget:
the claim is adaptive <= 50 %); coverage at full budget; milliseconds per
adaptive choice and per refit.
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
from scipy import special, stats  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studies.analysis import design  # noqa: E402

#: Adaptive variants: (criterion, max_repeats); the first is choose_pair's default.
ADAPTIVE = {
    "adaptive": ("variance", 1),
    "adaptive-uncapped": ("variance", None),
    "information-uncapped": ("information", None),
}
DESIGNS = ("random", "balanced", *ADAPTIVE)
#: Prior sd of the estimate evaluated, ridge = 1 / sd^2 = 0.01 as in the report's fits.
EVAL_PRIOR_SD = 10.0


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


def evaluate(truth: np.ndarray, winners: list[int], losers: list[int]) -> tuple[float, float, float]:
    n = len(truth)
    post = design.fit_posterior(n, np.array(winners), np.array(losers), prior_sd=EVAL_PRIOR_SD)
    mean, cov = post.centred()
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    half = stats.norm.ppf(0.975) * se
    centred_truth = truth - truth.mean()
    covered = np.mean(np.abs(mean - centred_truth) <= half)
    rho = stats.spearmanr(mean, truth).statistic
    return float(rho), float(np.mean(2 * half)), float(covered)


def simulate(n: int, design_name: str, *, budget: int, checkpoints: np.ndarray, spread: float,
             batch: int, min_exposure: int, slack: float, rng: np.random.Generator, timings: dict) -> np.ndarray:
    """``(len(checkpoints), 3)``: rho, mean CI width, coverage at each checkpoint."""
    truth = rng.normal(0.0, spread, n)
    winners: list[int] = []
    losers: list[int] = []
    out = np.empty((len(checkpoints), 3))
    pairs = design.all_pairs(n)
    code_of = np.full((n, n), -1, dtype=np.int64)
    code_of[pairs[:, 0], pairs[:, 1]] = np.arange(len(pairs))
    pending = np.zeros(len(pairs))
    counts = np.zeros(len(pairs))
    exposure = np.zeros(n)
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
                posterior = design.fit_posterior(n, np.array(winners), np.array(losers), start=posterior)
                timings.setdefault("refit", []).append(time.perf_counter() - t0)
                pending[:] = 0
            criterion, max_repeats = ADAPTIVE[design_name]
            t0 = time.perf_counter()
            a, b = design.choose_pair(posterior, exposure=exposure, min_exposure=min_exposure,
                                      pending=pending, counts=counts, max_repeats=max_repeats,
                                      slack=slack, criterion=criterion, rng=rng)
            timings.setdefault(design_name, []).append(time.perf_counter() - t0)
            pending[code_of[min(a, b), max(a, b)]] += 1
            counts[code_of[min(a, b), max(a, b)]] += 1
        exposure[[a, b]] += 1
        if rng.random() < special.expit(truth[a] - truth[b]):
            winners.append(a), losers.append(b)
        else:
            winners.append(b), losers.append(a)
        while next_check < len(checkpoints) and step == checkpoints[next_check]:
            out[next_check] = evaluate(truth, winners, losers)
            next_check += 1
    return out


def first_reaching(values: np.ndarray, checkpoints: np.ndarray, target: float, *, below: bool) -> float:
    """First checkpoint at which ``values`` reaches ``target`` (inf if never)."""
    slack = 1e-9 * abs(target)  # the balanced curve ends exactly on its own target
    hit = values <= target + slack if below else values >= target - slack
    return float(checkpoints[np.argmax(hit)]) if hit.any() else float("inf")


def run(n: int, args, spread: float, rng: np.random.Generator) -> dict:
    budget = args.per_item * n // 2
    checkpoints = np.unique(np.linspace(budget / args.checkpoints, budget, args.checkpoints).round().astype(int))
    batch = args.batch or max(5, n // 2)
    reps = args.reps or {20: 40, 50: 10, 200: 2}.get(n, 2)
    timings: dict[str, list[float]] = {}
    curves = {}
    for name in DESIGNS:
        curves[name] = np.stack([
            simulate(n, name, budget=budget, checkpoints=checkpoints, spread=spread, batch=batch,
                     min_exposure=args.min_exposure, slack=args.slack, rng=rng, timings=timings)
            for _ in range(reps)
        ])  # (reps, checkpoints, 3)
    target_width = curves["balanced"][:, -1, 1].mean()
    # Fisher information per comparison of a uniformly drawn pair relative to an even one
    # (p = 1/2): no design saves more than this share by comparing only even pairs.
    d = rng.normal(0.0, spread * np.sqrt(2.0), 200_000)
    information_share = float(np.mean(special.expit(d) * special.expit(-d)) / 0.25)
    rows = {}
    for name, c in curves.items():
        to_rho = [first_reaching(r, checkpoints, args.rho, below=False) for r in c[:, :, 0]]
        mean_width = c[:, :, 1].mean(axis=0)
        to_width = first_reaching(mean_width, checkpoints, target_width, below=True)
        rows[name] = {
            "rho_at_budget": c[:, -1, 0].mean(),
            "to_rho": float(np.median(to_rho)),
            "width_at_budget": mean_width[-1],
            "to_width": to_width,
            "coverage": c[:, -1, 2].mean(),
        }
    return {"n": n, "budget": budget, "reps": reps, "batch": batch, "step": checkpoints[0],
            "target_width": target_width, "rows": rows, "information_share": information_share,
            "choose_ms": {k: (1000 * statistics.median(v), 1000 * float(np.percentile(v, 99)))
                          for k, v in timings.items() if k != "refit"},
            "refit_ms": 1000 * statistics.median(timings.get("refit", [float("nan")]))}


def report(result: dict, rho: float) -> str:
    b = result["budget"]
    lines = [
        f"\n{result['n']} items, budget {b} comparisons ({2 * b // result['n']} per item), "
        f"{result['reps']} repetitions, adaptive refit every {result['batch']} answers, "
        f"checkpoints every {result['step']} comparisons",
        f"target width (balanced, full budget): {result['target_width']:.3f}; Fisher information of a "
        f"random pair relative to an even pair: {result['information_share']:.0%}",
        f"| design | Spearman rho at budget | comparisons to rho >= {rho} (median) | mean 95% CI width "
        "at budget | comparisons to balanced width | share of budget | coverage at budget |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in result["rows"].items():
        share = r["to_width"] / b
        lines.append(
            f"| {name} | {r['rho_at_budget']:.3f} | {r['to_rho']:.0f} | {r['width_at_budget']:.3f} | "
            f"{r['to_width']:.0f} | {share:.0%} | {r['coverage']:.3f} |"
        )
    for name, (median, p99) in result["choose_ms"].items():
        lines.append(f"{name} choice: median {median:.2f} ms, p99 {p99:.2f} ms")
    lines.append(f"posterior refit: median {result['refit_ms']:.1f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[20, 50, 200], help="numbers of items")
    parser.add_argument("--reps", type=int, default=0, help="repetitions (default 100 / 40 / 10 by size)")
    parser.add_argument("--per-item", type=int, default=40, help="budget: comparisons per item")
    parser.add_argument("--spread", type=float, nargs="+", default=[1.5, 3.0], help="sds of the true log-strengths")
    parser.add_argument("--batch", type=int, default=0, help="answers per posterior refit (default n/2)")
    parser.add_argument("--min-exposure", type=int, default=2, help="adaptive: showings per item first")
    parser.add_argument("--slack", type=float, default=0.3, help="adaptive: near-best tolerance")
    parser.add_argument("--checkpoints", type=int, default=40, help="evaluations along the budget")
    parser.add_argument("--rho", type=float, default=0.9, help="Spearman target")
    parser.add_argument("--seed", type=int, default=20261130)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"min exposure {args.min_exposure}, slack {args.slack}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    for spread in args.spread:
        for n in args.items:
            t0 = time.perf_counter()
            print(f"\n## spread {spread}", end="")
            print(report(run(n, args, spread, rng), args.rho))
            print(f"({time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.2f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
