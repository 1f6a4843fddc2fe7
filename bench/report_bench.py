"""Benchmark: the whole analysis + report on a synthetic study of ~1,000,000 responses.

Usage:
    python bench/report_bench.py [--participants N] [--resamples B]

Prints wall time per stage (from the report's progress callback), total time,
peak resident memory (``resource.getrusage``), and two speed ratios against
baselines measured in the same run on the same data:

* participant bootstrap: the vectorised weighted-sum bootstrap versus a plain
  loop (resample participants, ``groupby`` mean, ``scipy.stats.spearmanr``),
  per replicate;
* crossed mixed model: the sufficient-statistics REML fitter versus
  statsmodels ``MixedLM`` with variance components, on a subsample small
  enough for statsmodels.

The default study: 3 groups x 3,334 participants, 90 Likert and 10 2AFC
responses each (1,000,200 responses, 1,100,220 tidy rows), 4 methods x 20
contents x 15 styles (1,200 candidates), two metrics.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from studies.analysis.correlation import ScoreTable, correlate_rows  # noqa: E402
from studies.analysis.simulate import simulate_study  # noqa: E402
from studies.reports import ReportOptions, build_report  # noqa: E402


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _loop_bootstrap(part: pd.DataFrame, metric: pd.Series, n: int, rng: np.random.Generator) -> float:
    """Seconds per replicate of the straightforward participant bootstrap."""
    from scipy import stats

    by_participant = dict(tuple(part.groupby("participant_id")))
    ids = np.array(list(by_participant))
    start = time.perf_counter()
    for _ in range(n):
        draw = rng.choice(ids, size=len(ids), replace=True)
        sample = pd.concat([by_participant[i] for i in draw], ignore_index=True)
        human = sample.groupby("candidate_id")["score"].mean()
        stats.spearmanr(human, metric.reindex(human.index))
    return (time.perf_counter() - start) / n


def _vector_bootstrap(part: pd.DataFrame, metric: pd.Series, n: int, rng: np.random.Generator) -> float:
    from studies.analysis._common import bootstrap_weights

    start = time.perf_counter()
    table = ScoreTable.from_frame(part)
    weights = bootstrap_weights(len(table.participants), n, rng)
    correlate_rows(table.means(weights), metric.reindex(table.candidates).to_numpy(), "spearman")
    return (time.perf_counter() - start) / n


def _mixed_ratio(frame: pd.DataFrame) -> tuple[float, float, int]:
    from studies.analysis.mixed import fit_lmm, study_mixed_model

    ids = frame["participant_id"].drop_duplicates().sample(45, random_state=0)
    sub = frame[frame["participant_id"].isin(ids) & (frame["question_kind"] == "likert")]
    start = time.perf_counter()
    ours = study_mixed_model(sub)
    t_ours = time.perf_counter() - start
    data = sub.assign(_one=1, _p=sub["participant_id"].astype(str), _c=sub["content_id"].astype(str))
    start = time.perf_counter()
    fit_lmm(data, ours.formula, groups="_one",
            vc_formula={"participant": "0 + C(_p)", "content": "0 + C(_c)"})
    return t_ours, time.perf_counter() - start, len(sub)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=3334, help="Participants per group.")
    parser.add_argument("--likert", type=int, default=90, help="Likert responses per participant.")
    parser.add_argument("--afc", type=int, default=10, help="2AFC responses per participant.")
    parser.add_argument("--resamples", type=int, default=1000, help="Bootstrap replicates.")
    parser.add_argument("--out", type=Path, default=None, help="Report folder (default: temp).")
    parser.add_argument("--skip-baselines", action="store_true", help="Only time the report.")
    args = parser.parse_args(argv)

    print(f"cpus: {os.cpu_count()}, numpy {np.__version__}, pandas {pd.__version__}")
    start = time.perf_counter()
    frame = simulate_study(
        weights={"western": 0.8, "chinese": 0.3, "japanese": 0.0},
        methods=("adain", "gatys", "wct", "feature-match"), n_contents=20, n_styles_per_culture=5,
        n_participants=args.participants, likert_trials=args.likert, afc_trials=args.afc,
        in_group_effect=0.3, rng=0,
    )
    n_responses = frame["response_id"].nunique()
    print(f"simulate: {time.perf_counter() - start:.1f} s, {n_responses:,} responses, "
          f"{len(frame):,} rows, {frame['candidate_id'].nunique():,} candidates, "
          f"peak RSS {_peak_rss_mib():.0f} MiB")

    # Wall and CPU seconds per stage: on a shared machine the wall time grows with the
    # load average, the CPU time (this process's threads, plus the PDF printer's
    # child process) much less.
    stages: list[tuple[float, float, str]] = []

    def cpu() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    def progress(fraction: float, message: str) -> None:
        stages.append((time.perf_counter(), cpu(), message))

    out = args.out or Path(tempfile.mkdtemp(prefix="report_bench_"))
    start = time.perf_counter()
    result = build_report(
        frame, out, options=ReportOptions(n_resamples=args.resamples),
        progress=progress,
    )
    total = time.perf_counter() - start
    stages.append((time.perf_counter(), cpu(), "end"))
    print(f"report: {total:.1f} s total ({stages[-1][1] - stages[0][1]:.1f} s CPU), "
          f"peak RSS {_peak_rss_mib():.0f} MiB, out {out}")
    for (t0, c0, name), (t1, c1, _) in zip(stages, stages[1:]):
        print(f"  {name:<34s} {t1 - t0:7.1f} s wall {c1 - c0:7.1f} s CPU")
    for entry in result.results.get("mixed_models", []):
        print(f"  mixed model: {entry['n_obs']:,} rows, converged={entry['converged']}, "
              f"in-group contrast {entry['contrasts'].get('in_group', {}).get('estimate', float('nan')):.3f} "
              f"(simulated latent effect 0.3)")
    sizes = {p.name: p.stat().st_size / 2**20 for p in out.iterdir()}
    print("  files: " + ", ".join(f"{k} {v:.1f} MiB" for k, v in sorted(sizes.items())))
    if result.warnings:
        print("  warnings: " + "; ".join(result.warnings))

    if not args.skip_baselines:
        rng = np.random.default_rng(1)
        part = frame[(frame["group"] == "western") & (frame["question_kind"] == "likert")]
        metric = frame.groupby("candidate_id")["metric__tracked"].first()
        loop = _loop_bootstrap(part, metric, 5, rng)
        vector = _vector_bootstrap(part, metric, 200, rng)
        print(f"bootstrap per replicate (one group, {len(part):,} rows): loop {loop * 1e3:.1f} ms, "
              f"vectorised {vector * 1e3:.2f} ms, ratio {loop / vector:.0f}x")
        ours, statsmodels_t, rows = _mixed_ratio(frame)
        print(f"crossed mixed model on {rows:,} rows: sufficient-statistics REML {ours:.2f} s, "
              f"statsmodels MixedLM {statsmodels_t:.2f} s, ratio {statsmodels_t / ours:.1f}x")
    print(f"peak RSS overall {_peak_rss_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
