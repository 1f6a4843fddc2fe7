"""Build a study report: analyses, figures, HTML, PDF and tidy exports.

``build_report`` works on a tidy frame and imports nothing from Django, so it
can run on synthetic data (tests, benchmarks, ``study_report --tidy``).
:func:`studies.reports.database.build_study_report` loads a study from the
database and calls it; the management command and the report worker both use
that one function.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studies.analysis import correlation, guards, mixed, pairwise, reliability, tidy
from studies.analysis._common import as_rng
from studies.reports.schema import RESULTS_SCHEMA

from .csvsafe import escape_formula_cells
from .descriptives import DESCRIPTIVE_SCHEMA, describe, group_names, question_numbers
from .document import render_html
from .pdf import PdfError, print_pdf
from .wording import adaptive_pair_totals, adaptive_pairs_text, metric_name, people

Progress = Callable[[float, str], None]
#: Candidate ids -> JPEG thumbnail bytes (those it can find).
Thumbnails = Callable[[Sequence[Any]], Mapping[Any, bytes]]
#: Kendall's tau's crossed bootstrap is O(K^2) per replicate; above this many
#: candidates per question the report gives Pearson and Spearman only.
KENDALL_MAX_CANDIDATES = 300

#: How the mixed model treats the Likert scale (``mixed_models[].scale``).
ORDINAL_CHECK = ("interval (primary: scale points treated as equally spaced); ordinal "
                 "robustness check: the same model on mid-ranks of the scores, whose direction "
                 "and p are given beside each contrast")

#: Files every report writes (relative to the output folder).
REPORT_FILES = {
    "html": "report.html",
    "pdf": "report.pdf",
    "csv": "responses.csv",
    "parquet": "responses.parquet",
    "codebook": "codebook.json",
    "results": "results.json",
    "config": "study_config.json",
    "exclusions": "exclusions.csv",
    "set_metrics_csv": "set_metrics.csv",
    "set_metrics_parquet": "set_metrics.parquet",
}


@dataclass
class ReportOptions:
    """Settings of one report run; written into ``results.json``.

    Attributes:
        n_resamples: Crossed-bootstrap replicates per interval.
        confidence_level: Interval level.
        correlation: Correlation compared between groups.
        seed: Seed of the random generator (recorded for reproducibility).
        rules: Exclusion rules.
        minimums: Least data per group and question for inference.
        alpha_levels: Krippendorff's alpha levels reported besides the one that
            fits each question kind (ordinal and interval for Likert, nominal
            for 2AFC), e.g. ``("ratio",)``.
    """

    n_resamples: int = 1000
    confidence_level: float = 0.95
    correlation: str = "spearman"
    seed: int = 0
    rules: tidy.ExclusionRules = field(default_factory=tidy.ExclusionRules)
    minimums: guards.DesignMinimums = field(default_factory=guards.DesignMinimums)
    alpha_levels: tuple[str, ...] = ()


@dataclass
class ReportResult:
    """What a report run produced.

    Attributes:
        out_dir: Output folder.
        files: Kind -> path of each file written.
        n_rows: Tidy rows before exclusions.
        n_rows_analysed: Rows after exclusions.
        n_participants: Participants analysed.
        participant_ids: Participants with rows in the exports (before exclusions), sorted.
        seconds: Wall time of the run.
        warnings: Analyses that could not run and why.
        results: The JSON-ready results (also in ``results.json``).
    """

    out_dir: Path
    files: dict[str, Path]
    n_rows: int
    n_rows_analysed: int
    n_participants: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict, repr=False)
    participant_ids: list[Any] = field(default_factory=list, repr=False)

    def summary(self) -> str:
        lines = [
            f"Report in {self.out_dir}: {self.n_rows_analysed} of {self.n_rows} rows analysed, "
            f"{self.n_participants} participants, {self.seconds:.1f} s",
        ]
        lines += [f"  {kind}: {path.name}" for kind, path in self.files.items()]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _noop(fraction: float, message: str) -> None:
    return None


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (NaN -> None)."""
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
        frame = frame.reset_index()
    return json.loads(frame.to_json(orient="records", date_format="iso", default_handler=str))


def _labels(frame: pd.DataFrame, config: dict[str, Any]) -> guards.Labels:
    """Warnings name questions, groups and metrics as the report does: "Q1", "western
    participants", "LPIPS (AlexNet)", not database ids and column names."""
    numbers = question_numbers(frame, config)
    names = group_names(frame, config)
    return guards.Labels(question=lambda q: f"Q{numbers.get(q, q)}",
                         group=lambda g: people(names.get(str(g), g)), metric=metric_name)


def _adaptive_question(config: dict[str, Any] | None, qid: Any) -> dict[str, Any] | None:
    """The configured question ``qid`` if its pairs were chosen adaptively."""
    question = next((q for q in (config or {}).get("questions", []) if q.get("id") == qid), None)
    return question if question is not None and question.get("pair_design") == "adaptive" else None


def _adaptive_pair_counts(part: pd.DataFrame) -> dict[str, int]:
    """Analysed comparisons of an adaptive question: why each pair was chosen, and how many
    showed a participant a pair they had compared before (``wording.adaptive_pairs_text``)."""
    trials = part.drop_duplicates("response_id")
    # A tidy file from elsewhere may not record why pairs were chosen.
    selection = (trials["pair_selection"].fillna("").astype(str) if "pair_selection" in trials
                 else pd.Series("", index=trials.index))
    pairs = part.groupby("response_id")["candidate_id"].agg(lambda ids: tuple(sorted(ids)))
    owners = trials.set_index("response_id")["participant_id"].reindex(pairs.index)
    repeated = pd.DataFrame({"participant": owners, "pair": pairs}).duplicated().sum()
    counts = {key: int((selection == key).sum()) for key in ("information", "exposure")}
    return {"comparisons": len(trials), **counts, "unrecorded": len(trials) - sum(counts.values()),
            "repeated": int(repeated)}


def _pair_design_note(config: dict[str, Any] | None, qid: Any, counts: dict[str, int]) -> str:
    """How the question's pairs were chosen, for the Bradley-Terry table's caption."""
    question = _adaptive_question(config, qid)
    if question is None:
        return ""
    return (
        " Design: adaptive. Each participant's next pair was chosen from the answers of their "
        "group so far (expected reduction of the strengths' posterior variance, Laplace "
        "approximation), once every candidate had been shown "
        f"{int(question.get('min_exposure') or 0)} times. {adaptive_pairs_text(counts)} "
        "The selection depends only on earlier answers, so the design is ignorable for "
        "likelihood-based inference (Rubin 1976; Berger & Wolpert 1988), but the usual "
        "intervals are only asymptotically valid after such a design (Chaudhuri & Mykland "
        "1993) and in simulations covered as little as 57-81% with many candidates. The "
        "intervals here are therefore Bayesian posterior intervals (valid whatever the "
        "design, given the model): Bradley-Terry with normally distributed strengths and a "
        "weakly informative half-Cauchy(0, 2.5) prior of their spread (Gelman 2006), "
        "computed by Hamiltonian Monte Carlo; strengths are posterior means, shrunk towards "
        "the average. In simulations their 95% intervals covered 93-97% of the true "
        "strengths under adaptive, balanced and random designs. Comparisons concentrate on "
        "close pairs, so win rates are not comparable with a balanced design's."
    )


def build_report(
    frame: pd.DataFrame,
    out_dir: str | Path,
    *,
    config: dict[str, Any] | None = None,
    set_metrics: pd.DataFrame | None = None,
    options: ReportOptions | None = None,
    progress: Progress | None = None,
    title: str = "Study report",
    thumbnails: Thumbnails | None = None,
) -> ReportResult:
    """Run every analysis on a tidy frame and write the report files.

    Args:
        frame: Tidy frame (``studies.analysis.tidy.COLUMNS``), before exclusions.
        out_dir: Folder to write into (created if needed).
        config: Frozen study configuration and provenance, written as JSON.
        set_metrics: Set metrics (``studies.analysis.tidy.SET_METRIC_COLUMNS``),
            written as their own table and shown in the report; none by default.
        options: Analysis settings; defaults to :class:`ReportOptions()`.
        progress: Called as ``progress(fraction, message)`` between stages.
        title: Report title.
        thumbnails: Loads JPEG thumbnails of the best- and worst-rated
            candidates (from storage); without it the grid shows no images.

    Returns:
        A :class:`ReportResult`.

    Raises:
        ValueError: ``set_metrics`` lacks columns of the set-metric table.
    """
    start = time.perf_counter()
    if set_metrics is None:
        set_metrics = pd.DataFrame(columns=list(tidy.SET_METRIC_COLUMNS))
    lacking = [c for c in tidy.SET_METRIC_COLUMNS if c not in set_metrics.columns]
    if lacking:
        raise ValueError(f"set_metrics lacks column(s) {', '.join(lacking)}")
    set_metrics = set_metrics[list(tidy.SET_METRIC_COLUMNS)].reset_index(drop=True)
    options = options or ReportOptions()
    progress = progress or _noop
    rng = as_rng(options.seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {kind: out / name for kind, name in REPORT_FILES.items()}
    problems: list[str] = []

    frame = frame.reset_index(drop=True)
    frozen = config or {}
    labels = _labels(frame, frozen)
    progress(0.02, "applying exclusions")
    kept, log = tidy.apply_exclusions(frame, options.rules)
    metrics = tidy.metric_columns(kept)
    scored = kept[kept["candidate_id"].notna() & kept["score"].notna()]
    checks = guards.check_study(kept, metrics, minimums=options.minimums, labels=labels)
    problems.extend(checks.warnings)
    if metrics and len(scored):
        # Typically a report built while scoring was still running: say so, or the correlations
        # silently rest on fewer candidates than were rated.
        unscored = int(scored.loc[scored[metrics].isna().all(axis=1), "candidate_id"].nunique())
        if unscored:
            problems.append(f"{unscored} of {scored['candidate_id'].nunique()} rated candidates have no metric "
                            "value (scoring unfinished when the data were read, or failed for them): they are "
                            "left out of the metric-human correlations")
    eligible = pd.MultiIndex.from_frame(scored[["question_id", "group"]]).isin(
        list(checks.eligible)) if len(scored) else np.zeros(0, bool)
    inferable = scored[eligible]
    # Paired comparisons and rankings model methods, not candidates: only the
    # participant minimum applies to them.
    enough = (checks.descriptive.loc[checks.descriptive["n_participants"]
                                     >= options.minimums.min_participants, ["question", "group"]]
              if len(checks.descriptive) else pd.DataFrame(columns=["question", "group"]))
    by_method = scored[pd.MultiIndex.from_frame(scored[["question_id", "group"]]).isin(
        list(map(tuple, enough.to_numpy())))] if len(scored) else scored
    results: dict[str, Any] = {
        "title": title,
        "options": {**asdict(options), "rules": asdict(options.rules),
                    "minimums": asdict(options.minimums)},
        "n_rows": len(frame),
        "n_rows_analysed": len(scored),
        "n_participants": int(scored["participant_id"].nunique()),
        "exclusions": _records(log.steps) if len(log.steps) else [],
        "excluded_participants": {str(k): v for k, v in log.excluded_participants.items()},
        "metrics": metrics,
        "set_metrics": _records(set_metrics) if len(set_metrics) else [],
        "descriptive": _records(checks.descriptive) if len(checks.descriptive) else [],
        "effects": [],
        "marginal_means": [],
    }

    # --- Agreement and between-group differences --------------------------
    progress(0.1, "metric-human agreement")
    if metrics and len(inferable):
        kinds = correlation.CORRELATIONS
        largest = int(inferable.groupby("question_id")["candidate_id"].nunique().max())
        if largest > KENDALL_MAX_CANDIDATES:
            kinds = tuple(k for k in kinds if k != "kendall")
            problems.append(f"Kendall's tau is not computed above {KENDALL_MAX_CANDIDATES} "
                            f"candidates per question ({largest} here; its crossed bootstrap "
                            "costs O(candidates^2) per replicate); Pearson and Spearman are given")
        agree, comp = correlation.crossed_agreement(
            inferable, metrics, correlations=kinds, compare=options.correlation,
            n_resamples=options.n_resamples, confidence_level=options.confidence_level, rng=rng,
        )
        skipped = checks.skipped_metrics
        if skipped and len(agree.table):
            keep = [(q, m) not in skipped for _, q, m, _ in agree.table.index]
            agree.table = agree.table[keep]
        if skipped and len(comp.table):
            keep = [(q, m) not in skipped for q, m, _, _ in comp.table.index]
            comp.table = comp.table[keep]
        results["agreement"] = _records(agree.table)
        progress(0.35, "group comparisons")
        if len(comp.table):
            results["group_differences"] = _records(comp.table)
    elif not metrics:
        problems.append("no metric columns: agreement skipped")
    elif not len(scored):
        problems.append("no scored responses: agreement skipped")
    else:
        problems.append("no group of any question has the data for inference (see the notes "
                        "above): agreement skipped")

    # --- Reliability --------------------------------------------------------
    progress(0.5, "reliability")
    likert = inferable[inferable["question_kind"] == "likert"]
    rel_tables = []
    fitting = {"likert": ("ordinal", "interval"), "2afc": ("nominal",)}
    for qid, part in inferable[inferable["question_kind"].isin(list(fitting))].groupby("question_id"):
        kind = part["question_kind"].iloc[0]
        levels = tuple(dict.fromkeys([*fitting[kind], *options.alpha_levels]))
        table = reliability.reliability_table(part, n_splits=100, rng=rng, levels=levels)
        if len(table):
            table.insert(0, "question", qid)
            rel_tables.append(table.reset_index())
    if rel_tables:
        rel = pd.concat(rel_tables, ignore_index=True)
        results["reliability"] = _records(rel)

    # --- Mixed model --------------------------------------------------------
    progress(0.6, "mixed models")
    results["mixed_models"] = []
    for qid, part in likert.groupby("question_id"):
        label = labels.question(qid)
        if part["score"].nunique() < 2:
            # Every rating equal: no variance to partition, no effect to estimate.
            problems.append(f"mixed model for {label} not fitted: every analysed rating is the same "
                            f"({part['score'].iloc[0]:g})")
            continue
        try:
            model = mixed.study_mixed_model(part, confidence_level=options.confidence_level)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            problems.append(f"mixed model for {label} failed: {exc}")
            continue
        ordinal = getattr(model, "ordinal", {})
        entry = {
            "question": qid, "formula": model.formula, "n_obs": model.n_obs,
            "converged": model.converged, "fit_note": model.fit_note,
            "scale": ORDINAL_CHECK,
            "random_effects": list(model.variance_components),
            "fixed_effects": _records(model.fixed),
            "variance_components": model.variance_components,
            "contrasts": {
                name: {"estimate": float(c.estimate), "se": float(c.se), "df": float(c.df),
                       "pvalue": float(c.pvalue), "p_adjusted": float(c.p_adjusted),
                       "family": c.family,
                       "ci_low": float(c.confidence_interval()[0]),
                       "ci_high": float(c.confidence_interval()[1])}
                for name, c in model.contrasts.items()
            },
        }
        for name, c in model.contrasts.items():
            low, high = c.confidence_interval()
            ranked = ordinal.get(name)
            results["effects"].append({
                "question": qid, "term": name, "family": c.family,
                "estimate": float(c.estimate), "se": float(c.se), "df": float(c.df),
                "ci_low": float(low), "ci_high": float(high), "p": float(c.pvalue),
                "p_adjusted": float(c.p_adjusted),
                "ordinal_p": float(ranked.pvalue) if ranked else None,
                "ordinal_same_direction": (bool(np.sign(ranked.estimate) == np.sign(c.estimate))
                                           if ranked else None),
            })
        for mean in model.marginal_means:
            low, high = mean.confidence_interval()
            results["marginal_means"].append({
                "question": qid, "factor": mean.factor, "level": mean.level,
                "group": mean.group, "estimate": float(mean.estimate), "se": float(mean.se),
                "df": float(mean.df), "ci_low": float(low), "ci_high": float(high),
            })
        results["mixed_models"].append(entry)

    # --- Pairwise and rankings ---------------------------------------------
    progress(0.75, "paired comparisons and rankings")
    results["bradley_terry"] = []
    for qid, part in by_method[by_method["question_kind"] == "2afc"].groupby("question_id"):
        label = labels.question(qid)
        tables = {}
        for group, gpart in part.groupby("group"):
            comparisons = _comparisons(gpart)
            if comparisons["winner"].nunique() + comparisons["loser"].nunique() < 2 or len(comparisons) == 0:
                continue
            adaptive = _adaptive_question(config, qid) is not None
            try:
                # A participant bootstrap would credit resampled participants with pairs chosen
                # from other answers; after an adaptive design the posterior is the valid interval.
                bt = (pairwise.bradley_terry_posterior(comparisons, confidence_level=options.confidence_level,
                                                       rng=rng) if adaptive else
                      pairwise.bradley_terry_bootstrap(comparisons, n_resamples=min(options.n_resamples, 500),
                                                       confidence_level=options.confidence_level, rng=rng))
            except (ValueError, pairwise.ConvergenceError) as exc:
                problems.append(f"Bradley-Terry for {label}, {labels.group(group)} failed: {exc}")
                continue
            tables[group] = bt.table
            results["bradley_terry"].append(
                {"question": qid, "group": group, "table": _records(bt.table),
                 "pair_design": "adaptive" if adaptive else "balanced", "interval": bt.interval,
                 **({"pairs": _adaptive_pair_counts(gpart)} if adaptive else {})})
        entries = [e for e in results["bradley_terry"] if e["question"] == qid]
        totals = adaptive_pair_totals(entries)
        for entry in entries:
            entry["design_note"] = _pair_design_note(config, qid, totals).strip()
    results["rankings"] = []
    for qid, part in by_method[by_method["question_kind"] == "ranking"].groupby("question_id"):
        label = labels.question(qid)
        tables = {}
        for group, gpart in part.groupby("group"):
            ranks = pairwise.mean_ranks(gpart, n_resamples=options.n_resamples,
                                        confidence_level=options.confidence_level, rng=rng)
            untied = gpart[~gpart["response_id"].isin(guards.tied_ranking_responses(gpart))]
            orders = untied.sort_values("rank").groupby("response_id")["method"].agg(list)
            try:
                ranks.table["plackett_luce"] = pairwise.plackett_luce(orders.tolist())
            except ValueError as exc:
                problems.append(f"Plackett-Luce for {label}, {labels.group(group)}: {exc}")
            tables[group] = ranks.table
            results["rankings"].append({"question": qid, "group": group,
                                        "table": _records(ranks.table)})

    # --- Descriptives the report presents beside the inference ---------------
    progress(0.8, "descriptive statistics")
    results.update(describe(
        frame, kept, scored, config=frozen, rules=options.minimums, rng=rng,
        n_resamples=options.n_resamples, confidence_level=options.confidence_level,
    ))

    # --- Files ----------------------------------------------------------------
    progress(0.85, "writing exports")
    results["warnings"] = problems
    export = frame.assign(exclusion=log.reasons.reindex(frame.index).fillna(""))
    # A metric with no value for any candidate (e.g. its weights were absent) is an
    # empty column: left out of the exports and named in the codebook instead.
    empty = [m for m in tidy.metric_columns(export) if export[m].isna().all()]
    export = export.drop(columns=empty)
    _write_tables(export, files["csv"], files["parquet"])
    _write_tables(set_metrics, files["set_metrics_csv"], files["set_metrics_parquet"])
    description = tidy.FRAME_DESCRIPTION
    if empty:
        description += (" Metrics without a value for any candidate are left out: "
                        + ", ".join(m.removeprefix(tidy.METRIC_PREFIX) for m in empty) + ".")
    files["codebook"].write_text(json.dumps(
        {"description": description,
         "columns": tidy.codebook(export),
         "set_metrics": {"description": "set_metrics.csv/.parquet: one row per method x style "
                                        "culture x set metric; method and style_culture join "
                                        "the responses' columns of the same names.",
                         "columns": tidy.set_metric_codebook()},
         "input": {"required": list(tidy.REQUIRED_INPUT), "required_by_kind":
                   {k: list(v) for k, v in tidy.REQUIRED_BY_KIND.items()},
                   "defaults": tidy.INPUT_DEFAULTS},
         "results_schema": {**RESULTS_SCHEMA, **DESCRIPTIVE_SCHEMA}},
        indent=2, ensure_ascii=False))
    escape_formula_cells(log.steps).to_csv(files["exclusions"], index=False)
    config_text = json.dumps(frozen, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    files["config"].write_text(config_text)
    results["config_sha256"] = hashlib.sha256(config_text.encode()).hexdigest()
    # The hash the study was frozen under (the admin's), unlike the file's own: the export
    # also holds wording, the changes made while live, the status and the closing date.
    results["config_hash"] = str((frozen.get("study") or {}).get("config_hash") or "")
    files["results"].write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))

    progress(0.92, "rendering HTML and PDF")
    _write_documents(files, results, thumbnails, problems)
    progress(1.0, "done")
    return ReportResult(
        out_dir=out, files=files, n_rows=len(frame), n_rows_analysed=results["n_rows_analysed"],
        n_participants=results["n_participants"], seconds=time.perf_counter() - start,
        warnings=problems, results=results,
        participant_ids=sorted(frame["participant_id"].dropna().unique().tolist()),
    )


def _write_tables(frame: pd.DataFrame, csv_path: Path, parquet_path: Path) -> None:
    """Write CSV and Parquet through Arrow (Arrow's CSV writer is several times faster
    than pandas' for a million rows); pandas if Arrow refuses a column.

    The Parquet file keeps every value as given; the CSV's text cells that a
    spreadsheet would run as a formula are escaped (:mod:`.csvsafe`).
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    safe = escape_formula_cells(frame)
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        safe_table = pa.Table.from_pandas(safe, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        safe.to_csv(csv_path, index=False)
        frame.to_parquet(parquet_path, index=False)
        return
    pq.write_table(table, parquet_path)
    pa_csv.write_csv(safe_table, csv_path)


def _comparisons(frame: pd.DataFrame) -> pd.DataFrame:
    """2AFC rows -> ``winner, loser, participant_id`` by method label."""
    trials = frame[frame["n_items"] == 2]
    winners = trials[trials["chosen"] == True]  # noqa: E712
    losers = trials[trials["chosen"] == False]  # noqa: E712
    pairs = winners[["response_id", "participant_id", "method"]].merge(
        losers[["response_id", "method"]], on="response_id", suffixes=("_w", "_l"))
    pairs = pairs[pairs["method_w"] != pairs["method_l"]]
    return pd.DataFrame({"winner": pairs["method_w"].to_numpy(), "loser": pairs["method_l"].to_numpy(),
                         "participant_id": pairs["participant_id"].to_numpy()})


def _write_documents(
    files: dict[str, Path], results: dict[str, Any], thumbnails: Thumbnails | None,
    problems: list[str],
) -> None:
    """report.html from ``results`` alone, then report.pdf printed from it."""
    wanted = [r["candidate_id"] for r in results.get("candidate_extremes", [])]
    images: Mapping[Any, bytes] = {}
    if thumbnails is not None and wanted:
        images = thumbnails(sorted(set(wanted), key=str))
    files["html"].write_text(render_html(results, thumbnails=images), encoding="utf-8")
    try:
        print_pdf(files["html"], files["pdf"])
    except PdfError as exc:
        problems.append(str(exc))
        files.pop("pdf")
