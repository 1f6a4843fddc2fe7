"""Calibration of the report's inference on simulated studies with known truths.

Usage:
    python bench/calibration.py [--studies N] [--resamples B] [--jobs J] [--scenarios a,b]
        [--only effects]

Each scenario is a crossed design (participants x candidates, candidates built
from method x content x style) simulated by ``studies.analysis.simulate``
with group-specific tastes, candidate, content, style and candidate x group
effects; its truths (``study_truth``) are computed over the population of
candidates. For every interval the report prints the script reports its
coverage of the estimand the report states for it, for every test its
rejection rate at alpha = .05 (the type-I error where the truth is null, power
where it is not), unadjusted and after the declared Holm correction. The
disattenuated agreement targets the correlation with the expected rating; the
uncorrected agreement the correlation with the mean of k ratings, k the
study's harmonic mean of ratings per candidate and group. The mixed model's
estimated marginal means are checked against the same expectations over the
population (``true_marginal_means``); ``--only effects`` runs the mixed model
alone on the same simulated studies.

Scenarios:
    planted: the metric tracks one group's taste (w = 0.8) and not the other's
        (w = 0); in-group effect 0.4 and method effects (0, 0.3, -0.3).
    null: no metric tracks any taste, each group has its own taste, no in-group
        and no method effect.
    both: the metric tracks both groups' tastes equally (w = 0.6); no
        in-group or method effect (null for group differences with non-zero
        agreement).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studies.analysis.correlation import crossed_agreement  # noqa: E402
from studies.analysis.mixed import study_mixed_model  # noqa: E402
from studies.analysis.simulate import simulate_study, study_truth  # noqa: E402

GROUPS = {"western": "western-oil", "chinese": "chinese-ink"}
METHODS = ("adain", "gatys", "wct")
COMMON = dict(
    own_culture=GROUPS, methods=METHODS, taste_correlation=0.0, candidate_sd=0.3,
    content_sd=0.3, style_sd=0.3, candidate_group_sd=0.3, participant_sd=0.5, noise_sd=1.0,
)
SCENARIOS = {
    "planted": dict(weights={"western": 0.8, "chinese": 0.0}, in_group_effect=0.4,
                    method_effects=(0.0, 0.3, -0.3)),
    "null": dict(weights={"western": 0.0, "chinese": 0.0}, in_group_effect=0.0,
                 method_effects=(0.0, 0.0, 0.0)),
    "both": dict(weights={"western": 0.6, "chinese": 0.6}, in_group_effect=0.0,
                 method_effects=(0.0, 0.0, 0.0)),
}
#: Seeds are ``1000 * study + position here``, whichever scenarios a run selects.
SCENARIO_ORDER = tuple(SCENARIOS)
DESIGN = dict(n_contents=6, n_styles_per_culture=2, n_participants=20, likert_trials=40)
CORRELATIONS = ("pearson", "spearman")
#: The correlation the report compares between groups (its default).
COMPARED = "spearman"


#: Ratings per candidate at which the uncorrected agreement's truth is tabulated
#: (interpolated at each study's own harmonic mean; the design gives about 7).
K_GRID = np.round(np.arange(2.0, 14.01, 0.25), 2)


def truths(name: str) -> dict:
    """Estimands of a scenario; exact zeros where they are zero by construction.

    ``expected``: correlation with the expected rating (the disattenuated
    agreement's estimand); ``at_k``: correlation with the mean of k ratings
    over ``K_GRID`` (the uncorrected agreement's estimand), per kind.
    """
    spec = {**COMMON, **SCENARIOS[name]}
    truth = study_truth(**spec, ratings_per_candidate=K_GRID)
    expected, at_k = {}, {}
    for group, metric in truth["agreement"]:
        zero = metric == "metric__noise" or spec["weights"][group] == 0.0
        for kind, source in (("pearson", truth["agreement"]), ("spearman", truth["spearman"])):
            expected[(group, metric, kind)] = 0.0 if zero else source[(group, metric)]
            at_k[(group, metric, kind)] = np.array(
                [0.0 if zero else truth["agreement_at_k"][(group, metric, kind, k)]
                 for k in K_GRID])
    cells = truth["cells"]
    if not any(spec["method_effects"]) and not spec["in_group_effect"]:
        cells = cells * 0.0 + float(cells.mean())  # exact symmetry: every cell equal
    contrasts = _true_contrasts(cells, spec)
    return {"expected": expected, "at_k": at_k, "contrasts": contrasts, "spec": spec,
            "marginal_means": true_marginal_means(cells, spec)}


def _at_k(truth: dict, key: tuple, k: float) -> float:
    """The uncorrected agreement's truth at ``k`` ratings per candidate."""
    return float(np.interp(k, K_GRID, truth["at_k"][key]))


def _true_contrasts(cells: pd.Series, spec: dict) -> dict[str, float]:
    """The named contrasts of ``study_mixed_model`` evaluated on the true cell means."""
    groups = sorted(spec["weights"])
    emm = cells.groupby(level="method").mean()
    out = {}
    for i, a in enumerate(METHODS):
        for b in METHODS[i + 1:]:
            out[f"method:{a}-{b}"] = float(emm[a] - emm[b])
            by_group = cells.groupby(level=["method", "group"]).mean()
            for gi, g in enumerate(groups):
                for h in groups[gi + 1:]:
                    out[f"method:{a}-{b} x group:{g}-{h}"] = float(
                        (by_group[(a, g)] - by_group[(b, g)]) - (by_group[(a, h)] - by_group[(b, h)]))
    values = []
    for g, own in spec["own_culture"].items():
        others = [h for h in groups if h != g]
        mine = np.mean([cells[(m, own, g)] for m in METHODS])
        theirs = np.mean([cells[(m, own, h)] for m in METHODS for h in others])
        values.append(mine - theirs)
    out["in_group"] = float(np.mean(values))
    return out


def true_marginal_means(cells: pd.Series, spec: dict) -> dict[tuple, float]:
    """The estimated marginal means of ``study_mixed_model`` on the true cell means:
    ``(factor, level, group) -> value`` (group None: averaged over groups)."""
    groups = sorted(spec["weights"])
    out: dict[tuple, float] = {}
    for m, value in cells.groupby(level="method").mean().items():
        out[("method", m, None)] = float(value)
    for g, value in cells.groupby(level="group").mean().items():
        out[("group", g, g)] = float(value)
    for (m, g), value in cells.groupby(level=["method", "group"]).mean().items():
        out[("method", m, g)] = float(value)
    halves = {}
    for g, own in spec["own_culture"].items():
        others = [h for h in groups if h != g]
        halves[g] = (np.mean([cells[(m, own, g)] for m in METHODS]),
                     np.mean([cells[(m, own, h)] for m in METHODS for h in others]))
        out[("in_group", "own group", g)], out[("in_group", "other groups", g)] = halves[g]
    out[("in_group", "own group", None)] = float(np.mean([a for a, _ in halves.values()]))
    out[("in_group", "other groups", None)] = float(np.mean([b for _, b in halves.values()]))
    return out


def marginal_mean_records(name: str, seed: int, truth: dict, model) -> list[dict]:
    """Coverage of each estimated marginal mean's interval, by kind of mean."""
    records = []
    for mean in model.marginal_means:
        true = truth["marginal_means"].get((mean.factor, mean.level, mean.group))
        if true is None:
            continue
        kind = {"method": "method x group" if mean.group else "method", "group": "group",
                "in_group": "in-group halves" + ("" if mean.group else " (pooled)")}[mean.factor]
        low, high = mean.confidence_interval()
        records.append({"scenario": name, "seed": seed, "kind": "interval",
                        "name": f"marginal mean {kind}", "covered": bool(low <= true <= high),
                        "width": high - low})
    return records


def run_effects(name: str, seed: int, truth: dict, n_resamples: int) -> list[dict]:
    """The mixed-model part of :func:`run_study` alone (``--only effects``): same data."""
    frame = simulate_study(**truth["spec"], **DESIGN, rng=seed)
    model = study_mixed_model(frame, ordinal_check=False)
    return contrast_records(name, seed, truth, model) + marginal_mean_records(
        name, seed, truth, model)


def run_study(name: str, seed: int, truth: dict, n_resamples: int) -> list[dict]:
    """One simulated study: a record per interval / test with the truth it targets."""
    frame = simulate_study(**truth["spec"], **DESIGN, rng=seed)
    records: list[dict] = []
    agree, diffs = crossed_agreement(
        frame, ["metric__tracked", "metric__noise"], correlations=CORRELATIONS,
        compare=COMPARED, n_resamples=n_resamples, rng=seed,
    )
    per_candidate = {}
    for (group, _, metric, kind), row in agree.table.iterrows():
        k = row["ratings_per_candidate"]
        per_candidate[(group, metric)] = k
        for what, true, low, high in (
                (f"agreement {kind}, mean of k ratings", _at_k(truth, (group, metric, kind), k),
                 row["ci_low"], row["ci_high"]),
                (f"agreement {kind} disattenuated", truth["expected"][(group, metric, kind)],
                 row["disattenuated_low"], row["disattenuated_high"])):
            records.append({"scenario": name, "seed": seed, "kind": "interval",
                            "name": f"{what} ({'zero' if true == 0 else 'non-zero'})",
                            "covered": bool(low <= true <= high), "width": high - low})
    weights = truth["spec"]["weights"]
    for (_, metric, ga, gb), row in diffs.table.iterrows():
        raw = (_at_k(truth, (ga, metric, COMPARED), per_candidate[(ga, metric)])
               - _at_k(truth, (gb, metric, COMPARED), per_candidate[(gb, metric)]))
        expected = (truth["expected"][(ga, metric, COMPARED)]
                    - truth["expected"][(gb, metric, COMPARED)])
        null = metric == "metric__noise" or weights[ga] == weights[gb]  # by construction
        for what, true, low, high in (
                ("group difference, mean of k ratings", raw, row["ci_low"], row["ci_high"]),
                ("group difference disattenuated", expected, row["disattenuated_low"],
                 row["disattenuated_high"])):
            records.append({"scenario": name, "seed": seed, "kind": "interval", "name": what,
                            "covered": bool(low <= true <= high), "width": high - low})
        for what, column in (("group difference", "p"), ("group difference (Holm)", "p_adjusted")):
            records.append({"scenario": name, "seed": seed, "kind": "test", "name": what,
                            "null": null, "rejected": bool(row[column] < 0.05)})
    try:
        model = study_mixed_model(frame, ordinal_check=False)
    except ValueError as exc:  # pragma: no cover - recorded, not hidden
        records.append({"scenario": name, "seed": seed, "kind": "error", "name": str(exc)})
        return records
    return (records + contrast_records(name, seed, truth, model)
            + marginal_mean_records(name, seed, truth, model))


def contrast_records(name: str, seed: int, truth: dict, model) -> list[dict]:
    """Coverage and rejections of the named contrasts of one fitted study."""
    records: list[dict] = []
    for contrast in model.contrasts.values():
        true = truth["contrasts"].get(contrast.name)
        if true is None:
            continue
        label = contrast.family
        # Null by construction of the latent model (the expected-rating truth
        # carries Monte Carlo error of a few thousandths).
        null = {"in_group": not truth["spec"]["in_group_effect"],
                "method": not any(truth["spec"]["method_effects"]),
                "method x group": True}[label]
        low, high = contrast.confidence_interval()
        records.append({"scenario": name, "seed": seed, "kind": "interval",
                        "name": f"contrast {label}", "covered": bool(low <= true <= high),
                        "width": high - low})
        records.append({"scenario": name, "seed": seed, "kind": "test",
                        "name": f"contrast {label}", "null": null,
                        "rejected": bool(contrast.pvalue < 0.05)})
        records.append({"scenario": name, "seed": seed, "kind": "test",
                        "name": f"contrast {label} (Holm)", "null": null,
                        "rejected": bool(contrast.p_adjusted < 0.05)})
    return records


def _worker(args: tuple) -> list[dict]:
    name, seed, truth, n_resamples, *only = args
    run = run_effects if only == ["effects"] else run_study
    return run(name, seed, truth, n_resamples)


def summarise(records: pd.DataFrame) -> pd.DataFrame:
    """Coverage / rejection rate per scenario and quantity, with binomial standard errors."""
    out = []
    for (scenario, kind, name), part in records.groupby(["scenario", "kind", "name"]):
        if kind == "interval":
            rate = part["covered"].mean()
            out.append({"scenario": scenario, "quantity": name, "measure": "coverage",
                        "rate": rate, "n": len(part), "mean_width": part["width"].mean()})
        elif kind == "test":
            for is_null, sub in part.groupby("null"):
                out.append({"scenario": scenario, "quantity": name,
                            "measure": "type-I error" if is_null else "power",
                            "rate": sub["rejected"].mean(), "n": len(sub), "mean_width": np.nan})
    table = pd.DataFrame(out)
    table["se"] = np.sqrt(table["rate"] * (1 - table["rate"]) / table["n"])
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=200, help="Studies per scenario.")
    parser.add_argument("--resamples", type=int, default=1000, help="Bootstrap replicates.")
    parser.add_argument("--jobs", type=int, default=2, help="Worker processes.")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--seed-offset", type=int, default=0,
                        help="Skip this many studies' seeds per scenario (a fresh replication).")
    parser.add_argument("--csv", type=Path, default=None,
                        help="Write every record here (rewritten every 10 studies).")
    parser.add_argument("--only", choices=["effects"], default=None,
                        help="Only the mixed model's contrasts and marginal means (no bootstrap).")
    parser.add_argument("--summarise", type=Path, default=None,
                        help="Only print the summary of a records CSV from an earlier run.")
    args = parser.parse_args(argv)
    if args.summarise:
        records = pd.read_csv(args.summarise, keep_default_na=False, na_values=[""])
        counts = records.groupby("scenario")["seed"].nunique().to_dict()
        print(f"studies per scenario: {counts}")
        pd.set_option("display.width", 160)
        print(summarise(records[records["kind"] != "error"]).to_string(
            index=False, float_format=lambda x: f"{x:.3f}"))
        return 0
    names = args.scenarios.split(",")
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; design {DESIGN}")
    start = time.perf_counter()
    jobs = []
    truth_of = {name: truths(name) for name in names}
    for i in range(args.studies):  # interleaved, so a partial run covers every scenario
        for name in names:
            jobs.append((name, 1000 * (i + 1 + args.seed_offset) + SCENARIO_ORDER.index(name), truth_of[name],
                         args.resamples, *([args.only] if args.only else [])))
    records: list[dict] = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for done, batch in enumerate(pool.map(_worker, jobs, chunksize=1), start=1):
            records.extend(batch)
            if args.csv and (done % 10 == 0 or done == len(jobs)):
                pd.DataFrame(records).to_csv(args.csv, index=False)
    frame = pd.DataFrame(records)
    errors = frame[frame["kind"] == "error"] if "kind" in frame else frame.iloc[:0]
    table = summarise(frame[frame["kind"] != "error"])
    pd.set_option("display.width", 160)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"{len(errors)} studies failed to fit; {time.perf_counter() - start:.0f} s, "
          f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
