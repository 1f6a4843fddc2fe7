"""Build a study report: analyses, figures, HTML, PDF and tidy exports.

``build_report`` works on a tidy frame and imports nothing from Django, so it
can run on synthetic data (tests, benchmarks). ``build_study_report`` loads a
study from the database through :mod:`studies.export` and calls it; the
management command and the Celery task both use that one function.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studies.analysis import correlation, mixed, pairwise, reliability, tidy
from studies.analysis._common import as_rng

from .csvsafe import escape_formula_cells

Progress = Callable[[float, str], None]

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
}


@dataclass
class ReportOptions:
    """Settings of one report run; written into ``results.json``.

    Attributes:
        n_resamples: Participant-bootstrap replicates per interval.
        n_permutations: Participant permutations per group comparison.
        confidence_level: Interval level.
        correlation: Correlation used for the between-group permutation test.
        seed: Seed of the random generator (recorded for reproducibility).
        rules: Exclusion rules.
    """

    n_resamples: int = 1000
    n_permutations: int = 1000
    confidence_level: float = 0.95
    correlation: str = "spearman"
    seed: int = 0
    rules: tidy.ExclusionRules = field(default_factory=tidy.ExclusionRules)


@dataclass
class ReportResult:
    """What a report run produced.

    Attributes:
        out_dir: Output folder.
        files: Kind -> path of each file written.
        n_rows: Tidy rows before exclusions.
        n_rows_analysed: Rows after exclusions.
        n_participants: Participants analysed.
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


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _question_label(questions: pd.DataFrame, qid: Any) -> str:
    if qid in questions.index:
        row = questions.loc[qid]
        return f"Q{qid} {row['question_kind']} · {row['dimension']}"
    return f"Q{qid}"


def _pair_design_note(config: dict[str, Any] | None, qid: Any) -> str:
    """How the question's pairs were chosen, for the Bradley-Terry table's caption."""
    question = next((q for q in (config or {}).get("questions", []) if q.get("id") == qid), None)
    if question is None or question.get("pair_design") != "adaptive":
        return ""
    return (
        " Design: adaptive. Each participant's next pair was chosen from the answers of their "
        "group so far (expected reduction of the strengths' posterior variance, Laplace "
        "approximation; every candidate shown at least "
        f"{int(question.get('min_exposure') or 0)} times, no pair repeated to a participant). "
        "The selection depends only on earlier answers, so the design is ignorable for "
        "likelihood inference (Rubin 1976) and the Bradley-Terry estimates keep their "
        "asymptotic justification under such response-adaptive designs (Hu & Rosenberger "
        "2006, ch. 4). That justification is asymptotic: in simulations with many candidates "
        "and few answers each, 95% intervals after an adaptive design covered less than "
        "95%, so read them as approximate. Comparisons concentrate on close pairs, so win "
        "rates are not comparable with a balanced design's."
    )


def build_report(
    frame: pd.DataFrame,
    out_dir: str | Path,
    *,
    config: dict[str, Any] | None = None,
    options: ReportOptions | None = None,
    progress: Progress | None = None,
    title: str = "Study report",
) -> ReportResult:
    """Run every analysis on a tidy frame and write the report files.

    Args:
        frame: Tidy frame (``studies.analysis.tidy.COLUMNS``), before exclusions.
        out_dir: Folder to write into (created if needed).
        config: Frozen study configuration and provenance, written as JSON.
        options: Analysis settings; defaults to :class:`ReportOptions()`.
        progress: Called as ``progress(fraction, message)`` between stages.
        title: Report title.

    Returns:
        A :class:`ReportResult`.
    """
    start = time.perf_counter()
    options = options or ReportOptions()
    progress = progress or _noop
    rng = as_rng(options.seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {kind: out / name for kind, name in REPORT_FILES.items()}
    problems: list[str] = []
    figures: list[tuple[str, Any]] = []  # (caption, matplotlib figure)
    sections: list[str] = []

    frame = frame.reset_index(drop=True)
    progress(0.02, "applying exclusions")
    kept, log = tidy.apply_exclusions(frame, options.rules)
    metrics = tidy.metric_columns(kept)
    questions = (
        frame.drop_duplicates("question_id").set_index("question_id")[["question_kind", "dimension"]]
        if len(frame) else pd.DataFrame(columns=["question_kind", "dimension"])
    )
    scored = kept[kept["candidate_id"].notna() & kept["score"].notna()]
    results: dict[str, Any] = {
        "title": title,
        "options": {**asdict(options), "rules": asdict(options.rules)},
        "n_rows": len(frame),
        "n_rows_analysed": len(kept),
        "n_participants": int(kept["participant_id"].nunique()),
        "exclusions": _records(log.steps) if len(log.steps) else [],
        "excluded_participants": {str(k): v for k, v in log.excluded_participants.items()},
        "metrics": metrics,
    }
    sections.append(_html_exclusions(log))

    # --- Agreement and between-group differences --------------------------
    progress(0.1, "metric-human agreement")
    from studies.reports import plots

    if metrics and len(scored):
        agree = correlation.metric_agreement(
            scored, metrics, n_resamples=options.n_resamples,
            confidence_level=options.confidence_level, rng=rng,
        )
        results["agreement"] = _records(agree.table)
        sections.append(_html_table("Metric-human agreement", agree.table.reset_index(),
            "Correlation over candidates between each metric and the mean human score "
            "(Likert value; 2AFC choice rate; ranking score), per participant group and "
            f"question. Intervals: {options.confidence_level:.0%} percentile bootstrap "
            f"resampling participants ({options.n_resamples} replicates)."))
        for qid, table in agree.table.reset_index().groupby("question"):
            label = _question_label(questions, qid)
            spearman = table[table["correlation"] == "spearman"]
            if len(spearman):
                figures.append((f"Forest plot: Spearman correlations, {label}",
                                plots.forest_plot(spearman, title=label,
                                                  level=options.confidence_level)))
            per_candidate = (
                scored[scored["question_id"] == qid]
                .groupby(["group", "candidate_id"], observed=True)
                .agg(human=("score", "mean"), **{m: (m, "first") for m in metrics})
                .reset_index()
            )
            figures.append((f"Metric vs mean human score per group, {label}",
                            plots.metric_scatter(per_candidate, metrics, title=label)))
        progress(0.35, "group comparisons")
        if scored["group"].nunique() > 1:
            comp = correlation.compare_groups(
                scored, metrics, correlation=options.correlation,
                n_permutations=options.n_permutations, rng=rng,
            )
            zou = comp.confidence_interval(options.confidence_level)
            comp.table["pearson_diff_low"] = zou["ci_low"]
            comp.table["pearson_diff_high"] = zou["ci_high"]
            results["group_differences"] = _records(comp.table)
            sections.append(_html_table("Differences between groups", comp.table.reset_index(),
                f"{options.correlation.title()} correlation per group (r_a, r_b) and difference; "
                "Fisher r-to-z on Pearson r with Zou's (2007) interval for the Pearson "
                "difference (both assume independent samples); permutation test "
                f"shuffling participants between the two groups ({options.n_permutations} "
                "permutations); Holm and Benjamini-Hochberg adjustment across metrics."))
    else:
        problems.append("no metric columns or no scored responses: agreement skipped")

    # --- Reliability --------------------------------------------------------
    progress(0.5, "reliability")
    likert = scored[scored["question_kind"] == "likert"]
    rel_tables = []
    for qid, part in likert.groupby("question_id"):
        table = reliability.reliability_table(part, n_splits=100, rng=rng)
        if len(table):
            table.insert(0, "question", qid)
            rel_tables.append(table.reset_index())
    if rel_tables:
        rel = pd.concat(rel_tables, ignore_index=True)
        results["reliability"] = _records(rel)
        sections.append(_html_table("Reliability per group", rel,
            "Krippendorff's alpha at four levels of measurement (raters = participants, "
            "units = candidates, missing allowed); split-half reliability of candidate "
            "means with Spearman-Brown (mean and 95% range over random rater splits); "
            "ICC(2,1)/ICC(2,k) only where a complete raters x candidates block exists."))

    # --- Mixed model --------------------------------------------------------
    progress(0.6, "mixed models")
    results["mixed_models"] = []
    for qid, part in likert.groupby("question_id"):
        label = _question_label(questions, qid)
        try:
            model = mixed.study_mixed_model(part, confidence_level=options.confidence_level)
        except (ValueError, np.linalg.LinAlgError) as exc:
            problems.append(f"mixed model for {label} failed: {exc}")
            continue
        entry = {
            "question": qid, "formula": model.formula, "n_obs": model.n_obs,
            "converged": model.converged, "fit_note": model.fit_note,
            "fixed_effects": _records(model.fixed),
            "variance_components": model.variance_components,
            "contrasts": {
                name: {"estimate": float(c.estimate), "se": float(c.se),
                       "pvalue": float(c.pvalue),
                       "ci_low": float(c.confidence_interval()[0]),
                       "ci_high": float(c.confidence_interval()[1])}
                for name, c in model.contrasts.items()
            },
        }
        results["mixed_models"].append(entry)
        sections.append("<h2>Mixed model: " + html.escape(label) + "</h2><pre>"
                        + html.escape(model.summary()) + "</pre>")
        cells = _cell_means(part, rng=rng, n_resamples=options.n_resamples,
                            level=options.confidence_level)
        figures.append((f"Method x style culture x group, {label}",
                        plots.interaction_plot(cells, title=label)))

    # --- Pairwise and rankings ---------------------------------------------
    progress(0.75, "paired comparisons and rankings")
    results["bradley_terry"] = []
    for qid, part in scored[scored["question_kind"] == "2afc"].groupby("question_id"):
        label = _question_label(questions, qid)
        tables = {}
        for group, gpart in part.groupby("group"):
            comparisons = _comparisons(gpart)
            if comparisons["winner"].nunique() + comparisons["loser"].nunique() < 2 or len(comparisons) == 0:
                continue
            try:
                bt = pairwise.bradley_terry_bootstrap(
                    comparisons, n_resamples=min(options.n_resamples, 500),
                    confidence_level=options.confidence_level, rng=rng,
                )
            except (ValueError, pairwise.ConvergenceError) as exc:
                problems.append(f"Bradley-Terry for {label}, group {group} failed: {exc}")
                continue
            tables[group] = bt.table
            results["bradley_terry"].append(
                {"question": qid, "group": group, "table": _records(bt.table),
                 "pair_design": "adaptive" if _pair_design_note(config, qid) else "balanced"})
        if tables:
            sections.append(_html_table(f"Bradley-Terry strengths by method: {label}",
                pd.concat(tables, names=["group"]).reset_index(),
                "Log-strength of each method (centred), participant-bootstrap intervals, "
                "win rate = share of comparisons won." + _pair_design_note(config, qid)))
            figures.append((f"Bradley-Terry strengths, {label}",
                            plots.strength_plot(tables, title=label, xlabel="log-strength")))
    results["rankings"] = []
    for qid, part in scored[scored["question_kind"] == "ranking"].groupby("question_id"):
        label = _question_label(questions, qid)
        tables = {}
        for group, gpart in part.groupby("group"):
            ranks = pairwise.mean_ranks(gpart, n_resamples=options.n_resamples,
                                        confidence_level=options.confidence_level, rng=rng)
            orders = gpart.sort_values("rank").groupby("response_id")["method"].agg(list)
            try:
                ranks.table["plackett_luce"] = pairwise.plackett_luce(orders.tolist())
            except ValueError as exc:
                problems.append(f"Plackett-Luce for {label}, group {group}: {exc}")
            tables[group] = ranks.table
            results["rankings"].append({"question": qid, "group": group,
                                        "table": _records(ranks.table)})
        if tables:
            sections.append(_html_table(f"Mean ranks by method: {label}",
                pd.concat(tables, names=["group"]).reset_index(),
                "Mean rank (1 = best) with participant-bootstrap intervals, and "
                "Plackett-Luce log-strengths (higher = better)."))
            figures.append((f"Mean ranks, {label}",
                            plots.strength_plot(tables, title=label, xlabel="mean rank (1 = best)")))

    # --- Files ----------------------------------------------------------------
    progress(0.85, "writing exports")
    results["warnings"] = problems
    export = frame.assign(exclusion=log.reasons.reindex(frame.index).fillna(""))
    _write_tables(export, files["csv"], files["parquet"])
    files["codebook"].write_text(json.dumps(
        {"description": "One row per response x shown candidate; see tidy.py.",
         "columns": tidy.codebook(export)}, indent=2, ensure_ascii=False))
    escape_formula_cells(log.steps).to_csv(files["exclusions"], index=False)
    frozen = config or {}
    config_text = json.dumps(frozen, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    files["config"].write_text(config_text)
    results["config_sha256"] = hashlib.sha256(config_text.encode()).hexdigest()
    files["results"].write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))

    progress(0.92, "rendering HTML and PDF")
    _write_pdf(files["pdf"], title, figures, results, log)
    images = [(caption, _png(fig)) for caption, fig in figures]
    files["html"].write_text(_html_page(title, results, sections, images, problems))
    progress(1.0, "done")
    return ReportResult(
        out_dir=out, files=files, n_rows=len(frame), n_rows_analysed=len(kept),
        n_participants=results["n_participants"], seconds=time.perf_counter() - start,
        warnings=problems, results=results,
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


def _cell_means(
    frame: pd.DataFrame, *, rng: np.random.Generator, n_resamples: int, level: float
) -> pd.DataFrame:
    """Mean score per group x method x style culture, participant-bootstrap interval."""
    rows = []
    tail = (1.0 - level) / 2.0 * 100.0
    for group, part in frame.groupby("group"):
        cell = part["method"].astype(str) + "\x1f" + part["style_culture"].astype(str)
        table = correlation.ScoreTable.from_frame(part.assign(_cell=cell), candidate="_cell")
        weights = correlation.bootstrap_weights(len(table.participants), n_resamples, rng)
        point = table.means()
        reps = table.means(weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanpercentile(reps, [tail, 100 - tail], axis=0)
        for key, m, lo, hi in zip(table.candidates, point, low, high):
            method, culture = str(key).split("\x1f")
            rows.append({"group": group, "method": method, "style_culture": culture,
                         "mean": m, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else f"{value:.3f}"
    return html.escape(str(value))


def _html_table(title: str, frame: pd.DataFrame, caption: str) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return (f"<h2>{html.escape(title)}</h2><p>{html.escape(caption)}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _html_exclusions(log: tidy.ExclusionLog) -> str:
    table = log.steps if len(log.steps) else pd.DataFrame({"rule": ["(none)"]})
    return _html_table("Exclusions", table,
        f"{log.n_rows_in} rows before exclusions, {log.n_rows_out} analysed; "
        f"{len(log.excluded_participants)} participants excluded. Each row counts under "
        "the first rule that removed it.")


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;font-size:12px;margin:0.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}
img{max-width:100%}figure{margin:1em 0}pre{font-size:11px;overflow-x:auto}
.warn{color:#a40}"""


def _html_page(
    title: str, results: dict[str, Any], sections: list[str], images: list[tuple[str, str]],
    problems: list[str],
) -> str:
    figs = "".join(
        f'<figure><img alt="{html.escape(c)}" src="data:image/png;base64,{b}">'
        f"<figcaption>{html.escape(c)}</figcaption></figure>"
        for c, b in images
    )
    warn = "".join(f'<p class="warn">{html.escape(p)}</p>' for p in problems)
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{results['n_rows_analysed']} of {results['n_rows']} rows analysed from "
        f"{results['n_participants']} participants. Seed {results['options']['seed']}; "
        f"configuration SHA-256 {results.get('config_sha256', '')}.</p>"
        f"{warn}{''.join(sections)}<h2>Figures</h2>{figs}</body></html>"
    )


def _write_pdf(
    path: Path, title: str, figures: list[tuple[str, Any]], results: dict[str, Any],
    log: tidy.ExclusionLog,
) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    from studies.reports import plots

    with PdfPages(path) as pdf:
        intro = (
            f"{results['n_rows_analysed']} of {results['n_rows']} rows analysed, "
            f"{results['n_participants']} participants.\n\n" + log.summary()
        )
        pages = [plots.text_page(title, intro)]
        for key, heading in (("agreement", "Metric-human agreement"),
                             ("group_differences", "Differences between groups"),
                             ("reliability", "Reliability")):
            if results.get(key):
                text = pd.DataFrame(results[key]).to_string(
                    index=False, float_format=lambda x: f"{x:.3f}", max_rows=120)
                pages.append(plots.text_page(heading, text))
        for entry in results.get("mixed_models", []):
            text = pd.DataFrame(entry["fixed_effects"]).to_string(
                index=False, float_format=lambda x: f"{x:.3f}")
            text += "\nvariance components: " + json.dumps(entry["variance_components"])
            text += "\ncontrasts: " + json.dumps(entry["contrasts"])
            if entry["fit_note"]:
                text += "\nnote: " + entry["fit_note"]
            pages.append(plots.text_page(f"Mixed model, question {entry['question']}", text))
        for page in pages:
            pdf.savefig(page)
            plt.close(page)
        for caption, fig in figures:
            fig.text(0.01, 0.005, caption, fontsize=7)
            pdf.savefig(fig)


def build_study_report(
    study_id: int, out_dir: str | Path, progress: Progress | None = None,
    *, options: ReportOptions | None = None,
) -> ReportResult:
    """Load a study from the database and write its report into ``out_dir``.

    The admin action's Celery task and ``manage.py study_report`` both call this.

    Args:
        study_id: Primary key of the study.
        out_dir: Output folder.
        progress: ``progress(fraction, message)`` callback.
        options: Analysis settings; ``rules.max_attention_failures`` defaults to
            the study's own setting.

    Raises:
        studies.models.Study.DoesNotExist: No such study.
    """
    from studies.export import study_configuration, study_frame
    from studies.models import Study

    progress = progress or _noop
    study = Study.objects.get(pk=study_id)
    if options is None:
        options = ReportOptions(rules=tidy.ExclusionRules(
            max_attention_failures=study.max_attention_failures))
    progress(0.0, "loading responses")
    frame = study_frame(study_id)
    config = study_configuration(study_id)
    return build_report(frame, out_dir, config=config, options=options, progress=progress,
                        title=f"{study.title} — study report")
