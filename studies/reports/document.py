"""The report document: one self-contained HTML file, printed to an A4 PDF.

The document is a list of sections, each a small function of ``results.json``
(and, for the appendix, the frozen configuration). It is built the same way
whichever path produced the results (admin action, ``study_report`` from the
database or from a tidy file); only the candidate thumbnails depend on the
images being in storage.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..jsondiff import changed_entries
from . import plots
from .wording import (
    DASH,
    NO_DATA,
    NO_RELIABILITY,
    Context,
    banner_lines,
    contrast_levels,
    correction_name,
    difference_rows,
    effect_rows,
    fmt,
    fmt_ci,
    fmt_int,
    fmt_p,
    level_text,
    methods_paragraphs,
    metric_name,
    number,
    p_clause,
    params_text,
    reliable,
    set_metric_gaps,
    summary_sentences,
    term_label,
)

#: Columns of groups per agreement table; wider tables are split by group.
MAX_GROUP_COLUMNS = 3

esc = html.escape


@dataclass
class Table:
    """An APA-style table: number, title, header, body rows, note."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""
    align_left: int = 1  # leading text columns
    number: int = 0


@dataclass
class Document:
    """Numbering of tables and figures while sections are built."""

    ctx: Context
    thumbnails: Mapping[Any, bytes]
    tables: int = 0
    figures: int = 0
    parts: list[str] = field(default_factory=list)

    def table(self, table: Table) -> str:
        self.tables += 1
        table.number = self.tables
        head = "".join(f"<th>{esc(h)}</th>" for h in table.header)
        body = "".join(
            "<tr>" + "".join(
                f'<td class="{_cell_class(i, cell, table.align_left)}">{esc(cell)}</td>'
                for i, cell in enumerate(row)) + "</tr>"
            for row in table.rows)
        note = f'<p class="note"><em>Note.</em> {esc(table.note)}</p>' if table.note else ""
        return (f'<div class="apa-table"><p class="tnum">Table {table.number}</p>'
                f'<p class="ttitle">{esc(table.title)}</p><table><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>{note}</div>")

    def figure(self, body: str, caption: str) -> str:
        self.figures += 1
        return (f'<figure><div class="fig">{body}</div><figcaption><strong>Figure '
                f"{self.figures}.</strong> {esc(caption)}</figcaption></figure>")


def _cell_class(column: int, cell: str, align_left: int) -> str:
    """Leading text columns left; numbers centred on one line; long text wraps."""
    if column < align_left:
        return "l"
    return "n" if len(cell) <= 28 else "w"


def render_html(
    results: dict[str, Any],
    *,
    config: dict[str, Any] | None = None,
    thumbnails: Mapping[Any, bytes] | None = None,
    title: str | None = None,
) -> str:
    """The whole report as one self-contained HTML page (inline CSS, SVG, JPEG)."""
    ctx = Context(results)
    doc = Document(ctx, thumbnails or {})
    title = title or results.get("title") or "Study report"
    sections: list[Callable[[Document], str]] = [
        _title_block, _banner, _summary, _methods, _participants, *_question_sections(ctx),
        _reliability, _set_metrics, _appendix,
    ]
    body = "".join(section(doc) for section in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_css(title)}</style></head>"
        f'<body><main>{body}</main></body></html>'
    )


# --------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------


def _title_block(doc: Document) -> str:
    r = doc.ctx.results
    title = r.get("title") or "Study report"
    groups = list(doc.ctx.groups.values())
    who = ", ".join(f"{g['name']} {g['analysed']}" for g in groups)
    facts = [
        f"{fmt_int(r.get('n_participants'))} participants analysed" + (f" ({who})" if who else ""),
        f"{fmt_int(r.get('n_rows_analysed'))} of {fmt_int(r.get('n_rows'))} response rows",
    ]
    meta = []
    if r.get("generated_at"):
        meta.append(f"Generated {r['generated_at']}")
    if r.get("config_hash"):
        meta.append(f"frozen configuration SHA-256 {r['config_hash']}")
    elif r.get("config_sha256"):
        meta.append(f"no frozen configuration hash; study_config.json SHA-256 {r['config_sha256']}")
    meta.append(f"seed {(r.get('options') or {}).get('seed', 0)}")
    return (f'<header class="title-block"><h1>{esc(title)}</h1>'
            f'<p class="subtitle">{esc(" · ".join(facts))}</p>'
            f'<p class="meta">{esc(" · ".join(meta))}</p></header>')


def _banner(doc: Document) -> str:
    if not doc.ctx.results.get("n_rows"):
        return ('<aside class="banner" role="status"><p><strong>No data yet.</strong> '
                f"{esc(NO_DATA)}</p></aside>")
    lines = banner_lines(doc.ctx.results)
    if not lines:
        return ""
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return ('<aside class="banner" role="alert"><p><strong>Data not sufficient for the planned '
            "analysis.</strong> Where a minimum below is not met, the report gives descriptive "
            "statistics only: no intervals, tests, fitted lines or sentences.</p>"
            f"<ul>{items}</ul></aside>")


def _summary(doc: Document) -> str:
    sentences = summary_sentences(doc.ctx.results)
    cards = []
    for qid in doc.ctx.question_ids():
        items = "".join(f'<li class="{s.kind}">{esc(s.text)}</li>' for s in sentences.get(qid, []))
        if not items:
            items = ('<li class="none">No inferential result: the data are below the minimum '
                     "for this question (see the banner above).</li>")
        text = (doc.ctx.questions.get(qid) or {}).get("text")
        quote = f'<p class="qtext">“{esc(text)}”</p>' if text else ""
        cards.append(f'<section class="card"><h3>{esc(doc.ctx.question_title(qid))}</h3>{quote}'
                     f"<ul>{items}</ul></section>")
    if not cards:
        cards.append('<p class="none">No question has analysed responses yet.</p>')
    return f'<section class="summary"><h2>Summary</h2>{"".join(cards)}</section>'


def _methods(doc: Document) -> str:
    paragraphs = "".join(f"<p>{_lead(esc(p))}</p>" for p in methods_paragraphs(doc.ctx.results))
    return f'<section class="methods"><h2>Method</h2>{paragraphs}</section>'


def _lead(text: str) -> str:
    head, sep, rest = text.partition(". ")
    return f"<strong>{head}.</strong> {rest}" if sep else text


def _participants(doc: Document) -> str:
    groups = list(doc.ctx.groups.values())
    if not groups:
        return ""
    rows = [[g["name"], doc.ctx.culture_name(g["culture"]) or DASH, fmt_int(g["recruited"]),
             fmt_int(g["recruited"] - g["analysed"]), fmt_int(g["analysed"])] for g in groups]
    table = doc.table(Table("Participants per group", ["Group", "Own culture", "Recruited",
                                                        "Excluded", "Analysed"], rows,
                            "Excluded participants were removed by the rules in the Method "
                            "section; counts are participants with analysed responses.", 2))
    steps = doc.ctx.results.get("exclusions") or []
    steps_table = ""
    if steps:
        steps_table = doc.table(Table(
            "Exclusions, rule by rule",
            ["Rule", "Rows removed", "Responses removed", "Participants removed", "Rows left"],
            [[s["rule"], fmt_int(s["rows_removed"]), fmt_int(s["responses_removed"]),
              fmt_int(s["participants_removed"]), fmt_int(s["rows_left"])] for s in steps],
            "Rules apply in order; each row counts under the first rule that removed it."))
    return f'<section><h2>Participants and exclusions</h2>{table}{steps_table}</section>'


def _question_sections(ctx: Context) -> list[Callable[[Document], str]]:
    return [lambda doc, qid=qid: _question(doc, qid) for qid in ctx.question_ids()]


def _question(doc: Document, qid: Any) -> str:
    parts = [_descriptive(doc, qid), _agreement(doc, qid), _differences(doc, qid),
             _effects(doc, qid), _means(doc, qid), _pairwise(doc, qid), _candidates(doc, qid)]
    body = "".join(p for p in parts if p)
    if not body:
        body = '<p class="none">No analysable responses for this question.</p>'
    return f'<section class="question"><h2>{esc(doc.ctx.question_title(qid))}</h2>{body}</section>'


def _descriptive(doc: Document, qid: Any) -> str:
    """Counts, mean and SD per group: always there, and all there is below the minimums."""
    ctx = doc.ctx
    rows = [r for r in ctx.results.get("descriptive", []) if r.get("question") == qid]
    if not rows:
        return ""
    order = _group_order(ctx)
    rows.sort(key=lambda r: order.index(r["group"]) if r["group"] in order else len(order))
    q = ctx.questions.get(qid) or {}
    score = {"likert": "rating", "2afc": "choice rate (chosen = 1)"}.get(q.get("kind"), "score")
    body = [[ctx.group_name(r["group"]), fmt_int(r.get("n_participants")),
             fmt_int(r.get("n_candidates")), fmt_int(r.get("n_ratings")),
             fmt(r.get("mean_score")), fmt(r.get("sd_score")),
             "yes" if r.get("inference") else "no"] for r in rows]
    note = (f"M and SD of the {score} over all analysed responses of the group. Inference: "
            "whether the group has the data the intervals and tests need (see the banner).")
    return doc.table(Table(f"Descriptive statistics, {ctx.question_title(qid)}",
                           ["Group", "Participants", "Candidates", "Ratings", "M", "SD",
                            "Inference"], body, note))


def _agreement(doc: Document, qid: Any) -> str:
    ctx = doc.ctx
    rows = ctx.primary_agreement(qid)
    if not rows:
        return ""
    groups = [g for g in _group_order(ctx) if any(r["group"] == g for r in rows)]
    metrics = plots._ordered_metrics(rows)
    shown = []
    for r in rows:
        if ctx.guarded(qid, r["group"], "agreement"):
            r = {**r, "ci_low": None, "ci_high": None}
        shown.append(r)
    by = {(r["metric"], r["group"]): r for r in shown}
    guarded = [g for g in groups if ctx.guarded(qid, g, "agreement")]
    extra_cols = [c for c in ("noise_ceiling", "disattenuated") if any(c in r for r in rows)]
    html_parts = ["<h3>Metric–human agreement</h3>"]
    chunks = [groups[i:i + MAX_GROUP_COLUMNS] for i in range(0, len(groups), MAX_GROUP_COLUMNS)]
    for n_chunk, chunk in enumerate(chunks):
        header = ["Metric"] + [f"{ctx.group_name(g)} (n = {_n_for(rows, g)}) {ctx.symbol}"
                               + ("" if g in guarded else f" [{level_text(ctx.level)} CI]")
                               for g in chunk]
        body = []
        for m in metrics:
            cells = [metric_name(m)]
            for g in chunk:
                r = by.get((m, g), {})
                cell = fmt(r.get("statistic"), bounded=True)
                ci = fmt_ci(r.get("ci_low"), r.get("ci_high"), bounded=True)
                cells.append(cell if ci == DASH else f"{cell} {ci}")
            body.append(cells)
        note = (f"{ctx.correlation.title()} correlation, across candidates, between each metric "
                f"and the group's mean rating of the candidate{_per_candidate(rows, chunk)}, "
                "uncorrected: rater noise in these means makes it smaller than the agreement "
                "with the group's expected rating"
                + (" (the disattenuated table)" if any(reliable(r.get("noise_ceiling")) for r in rows)
                   else "") + ", and the interval "
                "is for this uncorrected quantity. n = participants. Metrics are "
                "ordered by their mean agreement; metrics without values are omitted.")
        rows_one = next((r for r in rows if r.get("n_candidates")), None)
        if rows_one:
            note += f" Candidates per group: {rows_one['n_candidates']}."
        if any(g in guarded for g in chunk):
            note += f" {DASH} no interval: below the minimum data for inference."
        part = f" (groups {n_chunk + 1} of {len(chunks)})" if len(chunks) > 1 else ""
        html_parts.append(doc.table(Table(
            f"Agreement of metrics with human ratings, {ctx.question_title(qid)}{part}",
            header, body, note)))
    if "disattenuated" in extra_cols:
        html_parts.append(_disattenuated(doc, qid, shown, groups, metrics))
    names = {g: ctx.group_name(g) for g in groups}
    fig = plots.forest_plot(shown, groups=groups, group_names=names,
                            metric_names={m: metric_name(m) for m in metrics},
                            symbol=ctx.symbol, level=ctx.level)
    caption = (f"Agreement ({ctx.symbol}) of each metric with mean human ratings per group, "
               f"{ctx.question_title(qid)}; bars are {level_text(ctx.level)} confidence intervals.")
    if guarded:
        caption += " Hollow markers: below the minimum data, no interval."
    html_parts.append(doc.figure(plots.to_svg(fig), caption))
    return "".join(html_parts)


def _disattenuated(doc: Document, qid: Any, rows: list[dict], groups: list[str],
                   metrics: list[str]) -> str:
    """Agreement corrected for the noise in the group's candidate means."""
    ctx = doc.ctx
    by = {(r["metric"], r["group"]): r for r in rows}
    ceilings = {g: next((r.get("noise_ceiling") for r in rows if r["group"] == g), None)
                for g in groups}
    # Without a positive ceiling there is no reliability to correct by.
    unreliable = [g for g in groups if not reliable(ceilings[g])]
    groups = [g for g in groups if g not in unreliable]
    why = (f"No disattenuated agreement for {_join_names(ctx, unreliable)}: the noise ceiling "
           f"(split-half reliability of the candidate means) is not positive; {NO_RELIABILITY}."
           if unreliable else "")
    if not groups:
        return f"<p>{esc(why)}</p>"
    header = ["Metric"] + [f"{ctx.group_name(g)} (ceiling {fmt(ceilings[g], bounded=True)})"
                           for g in groups]
    body = []
    for m in metrics:
        cells = [metric_name(m)]
        for g in groups:
            r = by.get((m, g), {})
            ci = fmt_ci(r.get("disattenuated_low"), r.get("disattenuated_high"))
            est = fmt(r.get("disattenuated"))
            cells.append(est if ci == DASH or number(r.get("disattenuated")) is None
                         else f"{est} {ci}")
        body.append(cells)
    note = (f"The primary estimand: the correlation ({ctx.symbol}) between each metric and the "
            "group's expected rating of a candidate (what infinitely many raters of the group "
            "would give), estimated as the uncorrected agreement divided by the square root "
            "of the noise ceiling, the split-half reliability of the group's candidate means "
            "(Spearman–Brown), with its own crossed-bootstrap interval. It can exceed 1 when "
            "the ceiling is low; read it beside the uncorrected values." + (" " + why if why else ""))
    return doc.table(Table(f"Disattenuated agreement, {ctx.question_title(qid)}",
                           header, body, note))


def _differences(doc: Document, qid: Any) -> str:
    ctx = doc.ctx
    rows = difference_rows(ctx, qid)
    if not rows:
        return ""
    correction = correction_name(ctx.results)
    symbol = rows[0]["symbol"]
    body = [[metric_name(r["metric"]), f"{ctx.group_name(r['group_a'])} − "
             f"{ctx.group_name(r['group_b'])}", fmt(r["estimate"]),
             fmt_ci(r["ci_low"], r["ci_high"]), fmt_p(r["p"]),
             fmt_p(r["p_adjusted"])]
            for r in sorted(rows, key=lambda r: (r["metric"], r["group_a"], r["group_b"]))]
    note = (f"{symbol}: difference in uncorrected agreement (with each group's mean rating of "
            "the candidate) between the two groups (first minus second); interval and p from "
            "the crossed bootstrap, H0: equal agreement. The declared test is p adjusted with "
            f"{correction}'s method across the metrics and group pairs of this question.")
    if symbol == "Δr":
        note += (" Pearson difference with Zou's (2007) interval; p from a permutation of "
                 "participants between the two groups.")
    if any(r["guarded"] for r in rows):
        note += f" {DASH}: not tested, a group is below the minimum data."
    table = doc.table(Table(f"Differences in agreement between groups, {ctx.question_title(qid)}",
                            ["Metric", "Groups", symbol, f"{level_text(ctx.level)} CI", "p",
                             f"p ({correction})"], body, note, 2))
    if all(r["guarded"] for r in rows):
        return f"<h3>Differences between groups</h3>{table}"
    names = {g: ctx.group_name(g) for g in ctx.groups} | {
        g: ctx.group_name(g) for r in rows for g in (r["group_a"], r["group_b"])}
    fig = plots.difference_plot(rows, group_names=names,
                                metric_names={r["metric"]: metric_name(r["metric"]) for r in rows},
                                symbol=symbol, level=ctx.level)
    figure = doc.figure(plots.to_svg(fig),
                        f"Differences in agreement between groups, {ctx.question_title(qid)}; "
                        f"bars are {level_text(ctx.level)} confidence intervals; 0 = equal "
                        "agreement.")
    return f"<h3>Differences between groups</h3>{table}{figure}"


def _effects(doc: Document, qid: Any) -> str:
    ctx = doc.ctx
    rows = effect_rows(ctx, qid)
    if not rows:
        return ""
    guarded = ctx.effects_guarded(qid)
    levels = contrast_levels(ctx)
    ordinal = any(r.get("ordinal_same_direction") is not None for r in rows)
    adjusted = any(number(r.get("p_adjusted")) is not None for r in rows)
    correction = correction_name(ctx.results)
    names = {str(g): ctx.group_name(g) for g in ctx.groups}
    body = [[term_label(str(r["term"]), levels, names), fmt(r["estimate"]),
             DASH if guarded else fmt_ci(r.get("ci_low"), r.get("ci_high")),
             DASH if guarded else fmt_p(r.get("p"))]
            + ([DASH if guarded else fmt_p(r.get("p_adjusted"))] if adjusted else [])
            + ([_ordinal_cell(r, guarded)] if ordinal else []) for r in rows]
    model = next((m for m in ctx.results.get("mixed_models", []) if m.get("question") == qid), {})
    note = ("Contrasts of estimated marginal means from the mixed model"
            + (f" ({model['formula']}; {fmt_int(model.get('n_obs'))} observations)"
               if model.get("formula") else "") + ", in scale points.")
    if model.get("scale"):
        note += f" Scale: {model['scale']}."
    if model.get("fit_note"):
        note += f" Fit: {model['fit_note']}"
    if adjusted:
        note += (f" p: unadjusted t test on Satterthwaite df; the declared test is p adjusted "
                 f"with {correction}'s method within each family (in-group; method pairs; "
                 "method × group).")
    if guarded:
        note += f" {DASH}: not estimated, data below the minimum."
    return "<h3>Contrasts</h3>" + doc.table(Table(
        f"Estimated contrasts, {ctx.question_title(qid)}",
        ["Contrast", "Estimate", f"{level_text(ctx.level)} CI", "p"]
        + ([f"p ({correction})"] if adjusted else [])
        + (["Ordinal check (ranks)"] if ordinal else []), body, note))


def _bars_caption(ctx: Context, has_ci: bool) -> str:
    """What the markers of a means plot show, for its caption."""
    return (f"bars are {level_text(ctx.level)} confidence intervals" if has_ci
            else "hollow markers: no interval, the data are below the minimum for inference")


def _ordinal_cell(row: dict[str, Any], guarded: bool) -> str:
    """The rank model's direction relative to the primary estimate, with its p."""
    same = row.get("ordinal_same_direction")
    if same is None:
        return DASH
    direction = "same direction" if same else "opposite direction"
    return direction if guarded else f"{direction}, {p_clause(row.get('ordinal_p'))}"


def _means(doc: Document, qid: Any) -> str:
    """Estimated marginal means of the mixed model (inferential) with a figure; the
    observed means follow as a descriptive table, or stand alone without a model."""
    ctx = doc.ctx
    model_rows = [r for r in ctx.results.get("marginal_means", []) if r.get("question") == qid
                  and number(r.get("estimate")) is not None]
    observed = [r for r in ctx.results.get("cell_means", []) if r.get("question") == qid
                and number(r.get("estimate")) is not None]
    if not model_rows and not observed:
        return ""
    q = ctx.questions.get(qid) or {}
    scale = "mean rating" if q.get("kind") == "likert" else "mean score"
    if not model_rows:
        return _observed_means(doc, qid, observed, scale, figure=True)
    guarded = ctx.effects_guarded(qid)
    rows = [r if not guarded and (r.get("group") is None or not ctx.guarded(qid, r["group"]))
            else {**r, "ci_low": None, "ci_high": None} for r in model_rows]
    groups = [g for g in _group_order(ctx) if any(r.get("group") == g for r in rows)]
    by = {(r["factor"], r["level"], r.get("group")): r for r in rows}
    columns = [*groups, None]

    def cells(factor: str, level: str) -> list[str]:
        out = []
        for g in columns:
            r = by.get((factor, level, g), {})
            ci, est = fmt_ci(r.get("ci_low"), r.get("ci_high")), fmt(r.get("estimate"))
            out.append(est if ci == DASH else f"{est} {ci}")
        return out

    body = []
    methods = sorted({r["level"] for r in rows if r["factor"] == "method"}, key=str)
    for v in methods:
        body.append(["Method" if v == methods[0] else "", v, *cells("method", v)])
    if any(r["factor"] == "group" for r in rows):
        body.append(["All methods", "", *[cells("group", g)[i] for i, g in enumerate(groups)],
                     DASH])
    for level, label in (("own group", "rated by the group"),
                         ("other groups", "rated by the other groups")):
        if any(r["factor"] == "in_group" and r["level"] == level for r in rows):
            body.append(["Own culture's styles" if level == "own group" else "", label,
                         *cells("in_group", level)])
    has_ci = any(number(r.get("ci_low")) is not None for r in rows)
    note = (f"Estimated marginal means of the mixed model (equal weights over the other "
            f"factors' levels) with {level_text(ctx.level)} confidence intervals on "
            "Satterthwaite degrees of freedom; scale treated as interval. All methods: the "
            "group's mean over methods and style cultures. Own culture's styles: the group's "
            "ratings of styles of its own culture beside the other groups' ratings of the same "
            "styles; the difference of the all-groups column is the in-group contrast. "
            "Inferential: candidates, contents, styles and participants are sampled factors.")
    if not has_ci:
        note = ("Estimated marginal means of the mixed model; no intervals: the data are below "
                "the minimum for inference.")
    table = doc.table(Table(f"Estimated marginal means by method, group and own culture's "
                            f"styles, {ctx.question_title(qid)}",
                            ["Factor", "Level"] + [f"{ctx.group_name(g)} M"
                                                   + ("" if ctx.guarded(qid, g) else " [CI]")
                                                   for g in groups]
                            + ["All groups M" + ("" if guarded else " [CI]")],
                            body, note, 2))
    plotted = [r for r in rows
               if r.get("group") is not None and r["factor"] in ("method", "in_group")]
    fig = plots.means_plot(plotted, groups=groups,
                           group_names={g: ctx.group_name(g) for g in groups},
                           ylabel=scale, level=ctx.level if has_ci else None)
    bars = _bars_caption(ctx, has_ci)
    figure = doc.figure(plots.to_svg(fig),
                        f"Estimated marginal means by method (left) and, for styles of each "
                        f"group's own culture, as rated by that group and by the other groups "
                        f"(right), {ctx.question_title(qid)}; {bars}.")
    parts = [f"<h3>Estimated marginal means</h3>{table}{figure}"]
    if observed:
        parts.append(_observed_means(doc, qid, observed, scale, figure=False))
    return "".join(parts)


def _observed_means(doc: Document, qid: Any, rows: list[dict[str, Any]], scale: str, *,
                    figure: bool) -> str:
    """Observed mean scores per group (descriptive: participant bootstrap only)."""
    ctx = doc.ctx
    rows = [r if not ctx.guarded(qid, r["group"]) else {**r, "ci_low": None, "ci_high": None}
            for r in rows]
    groups = [g for g in _group_order(ctx) if any(r["group"] == g for r in rows)]
    kind = "Observed means"
    body = []
    for factor, label in (("method", "Method"), ("in_group", "Style's culture")):
        part = [r for r in rows if r["factor"] == factor]
        levels = sorted({r["level"] for r in part}, key=str)
        by = {(r["level"], r["group"]): r for r in part}
        for v in levels:
            cells = [label if v == levels[0] else "", v]
            for g in groups:
                r = by.get((v, g), {})
                ci = fmt_ci(r.get("ci_low"), r.get("ci_high"))
                est = fmt(r.get("estimate"))
                cells.append(est if ci == DASH else f"{est} {ci}")
            body.append(cells)
    has_ci = any(number(r.get("ci_low")) is not None for r in rows)
    note = (f"{kind} with {level_text(ctx.level)} confidence intervals (bootstrap over "
            "participants; descriptive: candidates are not a sampled factor here, see the "
            "estimated marginal means and contrasts for inference).")
    if not has_ci:
        note = f"{kind}; no intervals: the data are below the minimum for inference."
    in_group = any(r["factor"] == "in_group" for r in rows)
    by_culture = " and by the style's culture" if in_group else ""
    table = doc.table(Table(f"{kind} by method{by_culture}, "
                            f"{ctx.question_title(qid)} (descriptive)",
                            ["Factor", "Level"] + [f"{ctx.group_name(g)} M"
                                                   + ("" if ctx.guarded(qid, g) else " [CI]")
                                                   for g in groups],
                            body, note, 2))
    if not in_group and any(g.get("culture") for g in ctx.groups.values()):
        unit = "pair" if (ctx.questions.get(qid) or {}).get("kind") == "2afc" else "response"
        table += (f"<p>Own-culture and other-culture styles are not compared for this question: "
                  f"the candidates of every {unit} had the same style, so a choice between them "
                  "says nothing about the style's culture.</p>")
    if not figure:
        return f"<h3>{kind} (descriptive)</h3>{table}"
    fig = plots.means_plot(rows, groups=groups, group_names={g: ctx.group_name(g) for g in groups},
                           ylabel=scale, level=ctx.level if has_ci else None)
    bars = _bars_caption(ctx, has_ci)
    fig_html = doc.figure(plots.to_svg(fig),
                          f"{kind} by method"
                          + (" (left) and by whether the style is from the participants' own "
                             "culture (right)" if in_group else "")
                          + f", per group, {ctx.question_title(qid)}; {bars}.")
    return f"<h3>{kind}</h3>{table}{fig_html}"


def _pairwise(doc: Document, qid: Any) -> str:
    ctx = doc.ctx
    out = []
    for key, value, xlabel, what in (
        ("bradley_terry", "strength", "log-strength (Bradley–Terry)", "Bradley–Terry strengths"),
        ("rankings", "mean_rank", "mean rank (1 = best)", "Mean ranks"),
    ):
        entries = [e for e in ctx.results.get(key, []) if e.get("question") == qid]
        tables = {}
        for e in entries:
            rows = []
            for r in e.get("table", []):
                item = r.get("item", r.get("index", r.get("method")))
                est = r.get(value, r.get("strength"))
                if number(est) is None:
                    continue
                guarded = ctx.guarded(qid, e["group"], key)
                rows.append({"item": str(item), "strength": est,
                             "ci_low": None if guarded else r.get("ci_low"),
                             "ci_high": None if guarded else r.get("ci_high"),
                             "win_rate": r.get("win_rate"), "n": r.get("n")})
            if rows:
                tables[e["group"]] = rows
        if not tables:
            continue
        groups = [g for g in _group_order(ctx) if g in tables]
        items = sorted({r["item"] for rows in tables.values() for r in rows})
        body = []
        for item in items:
            cells = [item]
            for g in groups:
                r = next((r for r in tables[g] if r["item"] == item), {})
                ci = fmt_ci(r.get("ci_low"), r.get("ci_high"))
                cell = fmt(r.get("strength"))
                if ci != DASH:
                    cell += f" {ci}"
                if number(r.get("win_rate")) is not None:
                    cell += f" ({fmt(100 * r['win_rate'], 0)} %)"
                cells.append(cell)
            body.append(cells)
        kind = ("posterior" if any(e.get("interval") == "posterior" for e in entries)
                else "bootstrap")
        note = (f"{what} per method with {level_text(ctx.level)} {kind} intervals"
                + ("; in parentheses, the share of comparisons won." if key == "bradley_terry"
                   else "."))
        # How the pairs were chosen (adaptive designs say so, with their caveat).
        design_note = next((e["design_note"] for e in entries if e.get("design_note")), "")
        if design_note:
            note += " " + design_note
        out.append(doc.table(Table(f"{what} by method, {ctx.question_title(qid)}",
                                   ["Method"] + [ctx.group_name(g) for g in groups], body, note)))
        fig = plots.strength_plot(tables, groups=groups,
                                  group_names={g: ctx.group_name(g) for g in groups},
                                  xlabel=xlabel, level=ctx.level,
                                  interval="posterior interval" if kind == "posterior" else "CI")
        out.append(doc.figure(plots.to_svg(fig), f"{what} by method and group, "
                              f"{ctx.question_title(qid)}; bars are {level_text(ctx.level)} "
                              f"{'posterior' if kind == 'posterior' else 'confidence'} intervals."))
    return ("<h3>Methods compared</h3>" + "".join(out)) if out else ""


def _candidates(doc: Document, qid: Any) -> str:
    ctx = doc.ctx
    rows = [r for r in ctx.results.get("candidate_extremes", []) if r.get("question") == qid]
    if not rows:
        return ""
    groups = [g for g in _group_order(ctx) if any(r["group"] == g for r in rows)]
    blocks = []
    missing_images = False
    for g in groups:
        tiles = []
        for end in ("best", "worst"):
            for r in sorted((r for r in rows if r["group"] == g and r["end"] == end),
                            key=lambda r: r["rank"]):
                image = doc.thumbnails.get(r["candidate_id"])
                if not doc.thumbnails:
                    img = ""  # no image at all (a tidy file): the scores alone, compactly
                    missing_images = True
                elif image:
                    src = base64.b64encode(image).decode("ascii")
                    img = f'<img alt="candidate {esc(str(r["candidate_id"]))}" ' \
                          f'src="data:image/jpeg;base64,{src}">'
                else:
                    missing_images = True
                    img = '<div class="noimg">image not in storage</div>'
                tiles.append(
                    f'<div class="tile {end}">{img}<div class="cap"><b>{end} {r["rank"]}</b> · '
                    f'M = {esc(fmt(r["mean_score"]))} (n = {r["n_ratings"]})<br>'
                    f'{esc(r["method"])} · {esc(ctx.culture_name(r["style_culture"]))}'
                    + (f' · {esc(r["content"])}' if r.get("content") else "") + '</div></div>')
        blocks.append(f'<div class="grid-row"><div class="grid-group">{esc(ctx.group_name(g))}'
                      f'</div><div class="tiles">{"".join(tiles)}</div></div>')
    caption = (f"Best- and worst-rated candidates per group, {ctx.question_title(qid)}: mean "
               "score (M) over the group's ratings (n), method, style culture and content "
               "photograph. Candidates tied in M across the two ends are at neither.")
    if missing_images:
        caption += " Images were not available to this report (e.g. built from a tidy file)."
    return "<h3>Best and worst candidates</h3>" + doc.figure(
        f'<div class="cand-grid">{"".join(blocks)}</div>', caption)


def _reliability(doc: Document) -> str:
    ctx = doc.ctx
    rows = ctx.results.get("reliability") or []
    if not rows:
        return ""
    body = []
    has_ceiling = any("noise_ceiling" in r for r in rows)
    for r in rows:
        level = "nominal" if (ctx.questions.get(r.get("question")) or {}).get("kind") == "2afc" \
            else "interval"
        alpha = r.get(f"alpha_{level}", r.get("alpha"))
        guarded = ctx.guarded(r.get("question"), r.get("group"), "reliability")
        split = _split_half_cell(r.get("split_half"))
        if not guarded and reliable(r.get("split_half")) \
                and number(r.get("split_half_low")) is not None:
            split += " " + fmt_ci(r.get("split_half_low"), r.get("split_half_high"), bounded=True)
        cells = [f"Q{(ctx.questions.get(r.get('question')) or {}).get('number', r.get('question'))}",
                 ctx.group_name(r.get("group")), fmt_int(r.get("n_raters")),
                 fmt_int(r.get("n_units")), fmt_int(r.get("n_ratings")),
                 f"{fmt(alpha, bounded=True)} ({level})", split]
        if has_ceiling:
            cells.append(_split_half_cell(r.get("noise_ceiling")))
        body.append(cells)
    ranges = any(not ctx.guarded(r.get("question"), r.get("group"), "reliability")
                 and reliable(r.get("split_half")) for r in rows)
    header = ["Question", "Group", "Raters", "Candidates", "Ratings", "Krippendorff's α",
              "Split-half [range]" if ranges else "Split-half"] \
        + (["Noise ceiling"] if has_ceiling else [])
    note = ("α at the level that fits the question type (interval for ratings, nominal for "
            "choices). Split-half: reliability of candidate means, Spearman–Brown corrected; "
            "the range covers 95 % of random rater splits.")
    if any(number(r.get(k)) is not None and not reliable(r.get(k))
           for r in rows for k in ("split_half", "noise_ceiling")):
        note += (" Negative: no reliability, the raw value in parentheses; "
                 f"{NO_RELIABILITY}. No disattenuated agreement is given for such a group.")
    return "<section><h2>Reliability</h2>" + doc.table(Table(
        "Reliability of human ratings per question and group", header, body, note, 2)) + "</section>"


def _split_half_cell(value: Any) -> str:
    """A split-half reliability; a value at or below zero is no reliability, so it is
    marked as such with the raw value beside it."""
    if number(value) is None or reliable(value):
        return fmt(value, bounded=True)
    return f"negative ({fmt(value)})"


def _join_names(ctx: Context, groups: list[str]) -> str:
    names = [ctx.group_people(g) for g in groups]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def _set_metrics(doc: Document) -> str:
    """FID, KID, ArtFID: one value per method and style culture, so beside the agreement, not in it."""
    rows = doc.ctx.results.get("set_metrics") or []
    if not rows:
        return ""
    names = sorted({r["metric"] for r in rows})
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        cells.setdefault((r["method"], r["style_culture"]), {})[r["metric"]] = r
    body = []
    for (method, culture), by_name in sorted(cells.items()):
        values = []
        for name in names:
            x = number((by_name.get(name) or {}).get("value"))
            values.append(DASH if x is None else fmt(x, 3 if abs(x) < 1 else 2))
        sizes = {r.get("n_candidates") for r in by_name.values()}
        body.append([method, doc.ctx.culture_name(culture), *values,
                     fmt_int(sizes.pop()) if len(sizes) == 1 else DASH])
    missing = set_metric_gaps(rows)
    note = ("Each value compares all finished candidates of a method whose style has the culture "
            "with that culture's style images; lower is closer. One value per set, so these "
            "metrics are not in the agreement with human ratings. Values and versions are in "
            "set_metrics.csv.")
    if missing:
        note += " " + " ".join(missing)
    return "<section><h2>Set metrics</h2>" + doc.table(Table(
        "Set metrics per method and style culture",
        ["Method", "Style culture", *[metric_name(n) for n in names], "Candidates"],
        body, note, 2)) + "</section>"


def _appendix(doc: Document) -> str:
    ctx = doc.ctx
    r = ctx.results
    config = r.get("configuration_summary") or {}
    parts = ['<section class="appendix"><h2>Appendix: configuration, live edits and fits</h2>']
    settings = config.get("study") or {}
    if settings:
        parts.append(doc.table(Table(
            "Frozen study configuration", ["Setting", "Value"],
            [[k.replace("_", " "), _short(v)] for k, v in settings.items()],
            (f"Frozen configuration SHA-256 {r['config_hash']} (as the admin shows it; fixed "
             "when the study went live). " if r.get("config_hash") else "")
            + "The full configuration, with every candidate's provenance, is in "
            f"study_config.json (file SHA-256 {r.get('config_sha256', DASH)}; the file also "
            "holds wording, the changes made while live, the status and the closing date, so "
            "its hash changes with them).", 2)))
    design = r.get("design") or {}
    if design.get("methods"):
        departures = [f"{m['label']}: {'; '.join(m['departs_from_paper'])}"
                      for m in design["methods"] if m.get("departs_from_paper")]
        parts.append(doc.table(Table(
            "Methods and their parameters", ["Label", "Method", "Parameters", "Weights", "Layers"],
            [[m["label"], m["method"], params_text(m.get("params")) or DASH,
              ", ".join(m.get("weights_used") or []) or m.get("family") or DASH,
              "; ".join(", ".join(levels) for levels in m.get("levels_used") or []) or DASH]
             for m in design["methods"]],
            "Weights and layers as the candidates' provenance records them."
            + (" Departures from the published methods: " + "; ".join(departures) + "."
               if departures else ""), 2)))
    if config.get("groups"):
        parts.append(doc.table(Table(
            "Participant groups", ["Group", "Own culture", "Quota", "Eligibility"],
            [[g.get("name", ""), ctx.culture_name(g.get("culture")) or DASH, fmt_int(g.get("quota")),
              _short(g.get("eligibility")) or DASH] for g in config["groups"]], "", 4)))
    edits = config.get("live_edits")
    if edits:
        parts.append(doc.table(Table(
            "Changes made while the study was live",
            ["When (UTC)", "By", "What", "Field", "Before", "After"],
            [row for e in edits for row in _edit_rows(e)],
            "Only wording, texts, redirects, the completion code, quotas and the closing date "
            "may change while a study is live; every change is recorded. A change inside a "
            "list or mapping (e.g. one label of a choice) is shown entry by entry, as "
            "field[position].key; long text is shown around the change, with the number of "
            "characters left out before and after.", 6)))
    elif edits is not None:
        parts.append("<p>No edits were made while the study was live.</p>")
    else:
        parts.append("<p>The configuration carries no record of changes made while live "
                     "(built from a tidy file, or exported before such records were kept).</p>")
    models = r.get("mixed_models") or []
    if models:
        parts.append(doc.table(Table(
            "Mixed-model fits", ["Question", "Model", "Observations", "Converged",
                                 "Variance components"],
            [[f"Q{(ctx.questions.get(m.get('question')) or {}).get('number', m.get('question'))}",
              m.get("formula", ""), fmt_int(m.get("n_obs")),
              "yes" if m.get("converged") else "no",
              ", ".join(f"{k} {fmt(v)}" for k, v in (m.get("variance_components") or {}).items())
              or DASH] for m in models], "Variance components in squared scale points.", 2)))
    sufficiency = r.get("sufficiency") or []
    if sufficiency:
        parts.append(doc.table(Table(
            "Data per question and group", ["Question", "Group", "Participants", "Candidates",
                                            "Ratings per candidate (mean)", "Enough for inference"],
            [[f"Q{(ctx.questions.get(s['question']) or {}).get('number', s['question'])}",
              ctx.group_name(s["group"]), fmt_int(s["n_participants"]),
              fmt_int(s["n_candidates"]), fmt(s["ratings_per_candidate"], 1),
              "yes" if s["sufficient"] else "no"] for s in sufficiency],
            "Minimums: " + ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in
                                     (r.get("sufficiency_rules") or {}).items()) + ".", 2)))
    notes = r.get("warnings") or []
    if notes:
        items = "".join(f"<li>{esc(str(w))}</li>" for w in notes)
        parts.append(f"<h3>Analysis notes</h3><ul class=\"notes\">{items}</ul>")
    parts.append("</section>")
    return "".join(parts)


def _edit_rows(edit: dict[str, Any]) -> list[list[str]]:
    """Rows of the live-changes table for one recorded change: one per entry that differs."""
    when = str(edit.get("changed_at", ""))[:19].replace("T", " ")
    by, target, name = edit.get("changed_by_name") or DASH, str(edit.get("target", "")), str(edit.get("field", ""))
    return [[when, by, target, path, before or DASH, after or DASH]
            for path, before, after in changed_entries(name, edit.get("before"), edit.get("after"))]


def _short(value: Any, limit: int = 160) -> str:
    if value is None or value == "" or value == {} or value == []:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 16] + f" (+{len(text) - limit + 16} chars)"


def _group_order(ctx: Context) -> list[str]:
    order = list(ctx.groups)
    for key in ("agreement", "cell_means", "reliability"):
        for r in ctx.results.get(key, []):
            if r.get("group") is not None and r["group"] not in order:
                order.append(r["group"])
    return order


def _per_candidate(rows: list[dict], groups: list[str]) -> str:
    """`` (k = ... ratings per candidate)``: the uncorrected agreement's estimand depends on it."""
    values = {g: number(r.get("ratings_per_candidate")) for r in rows for g in groups
              if r["group"] == g and number(r.get("ratings_per_candidate")) is not None}
    if not values:
        return ""
    low, high = min(values.values()), max(values.values())
    k = fmt(low, 1) if round(low, 1) == round(high, 1) else f"{fmt(low, 1)}–{fmt(high, 1)}"
    return f" (a mean of k = {k} ratings per candidate, harmonic mean)"


def _n_for(rows: list[dict], group: str) -> str:
    n = next((r.get("n_participants") for r in rows if r["group"] == group), None)
    return fmt_int(n)


def _css(title: str) -> str:
    running = title.replace("\\", "\\\\").replace('"', '\\"')
    return _CSS.replace("__RUNNING_TITLE__", running)


_CSS = """
@page { size: A4; margin: 20mm 20mm 22mm 20mm;
  @bottom-center { content: "Page " counter(page) " of " counter(pages);
    font: 8pt "DejaVu Sans", sans-serif; color: #555; }
  @top-right { content: "__RUNNING_TITLE__"; font: 7.5pt "DejaVu Sans", sans-serif; color: #777; } }
@page :first { @top-right { content: none; } }
:root { --ink: #1a1a1a; --rule: #222; --muted: #555; --bg-banner: #fff4e5; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); font: 10.5pt/1.45 "DejaVu Serif", Georgia, serif; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem 1.25rem 3rem; }
h1 { font: 700 20pt/1.2 "DejaVu Sans", sans-serif; margin: 0 0 .4rem; }
h2 { font: 700 13pt/1.25 "DejaVu Sans", sans-serif; margin: 1.6rem 0 .5rem;
  break-after: avoid; }
h3 { font: 700 11pt/1.25 "DejaVu Sans", sans-serif; margin: 1.1rem 0 .4rem; break-after: avoid; }
p { margin: .4rem 0; }
.title-block { border-bottom: 2px solid var(--rule); padding-bottom: .6rem; margin-bottom: 1rem; }
.subtitle { font-size: 11pt; margin: .2rem 0; }
.meta { font-size: 8.5pt; color: var(--muted); margin: .2rem 0; word-break: break-all; }
.banner { background: var(--bg-banner); border-left: 4px solid #D55E00; padding: .5rem .9rem;
  margin: 1rem 0; break-inside: avoid; }
.banner ul { margin: .3rem 0 .2rem 1.1rem; padding: 0; }
.card { border: 1px solid #ccc; border-radius: 4px; padding: .5rem .9rem; margin: .6rem 0;
  break-inside: avoid; }
.card h3 { margin-top: .2rem; }
.card ul { margin: .3rem 0; padding-left: 1.1rem; }
.card li { margin: .25rem 0; }
.card li.hedged { color: #444; }
.qtext { font-style: italic; color: var(--muted); }
.apa-table { margin: .8rem 0 1.1rem; }
.tnum { font: 700 10pt "DejaVu Sans", sans-serif; margin: 0; break-after: avoid; }
.ttitle { font-style: italic; margin: .1rem 0 .3rem; break-after: avoid; }
table { border-collapse: collapse; width: 100%; font: 8.5pt/1.35 "DejaVu Sans", sans-serif;
  font-variant-numeric: tabular-nums; }
thead { display: table-header-group; }
thead th { border-top: 1.5px solid var(--rule); border-bottom: 1px solid var(--rule);
  padding: 3px 6px; text-align: center; font-weight: 600; vertical-align: bottom; }
tbody tr:last-child td { border-bottom: 1.5px solid var(--rule); }
td { padding: 2px 6px; vertical-align: top; }
td.n { text-align: center; white-space: nowrap; }
td.l, td.w { text-align: left; }
tr { break-inside: avoid; }
.note { font-size: 8.5pt; margin: .3rem 0 0; }
figure { margin: 1rem 0 1.2rem; break-inside: avoid; }
.fig svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 9pt; margin-top: .3rem; }
.cand-grid { display: grid; gap: .5rem; }
.grid-row { display: grid; grid-template-columns: 6.5rem 1fr; gap: .5rem; align-items: center;
  break-inside: avoid; }
.grid-group { font: 700 9pt "DejaVu Sans", sans-serif; }
.tiles { display: grid; grid-template-columns: repeat(6, minmax(0, 1fr)); gap: .35rem; }
.tile { font: 7pt/1.25 "DejaVu Sans", sans-serif; }
.tile img, .noimg { width: 100%; aspect-ratio: 1; object-fit: cover; display: block;
  border: 2px solid transparent; }
.tile.best img, .tile.best .noimg { border-color: #009E73; }
.tile.worst img, .tile.worst .noimg { border-color: #D55E00; }
.noimg { background: #eee; color: #777; display: flex; align-items: center;
  justify-content: center; text-align: center; padding: .2rem; }
.cap { margin-top: .15rem; }
.none { color: var(--muted); font-style: italic; }
@media print { .methods p { text-align: justify; hyphens: auto; } }
.notes { font-size: 9pt; }
@media screen and (max-width: 48rem) {
  main { padding: 1rem .6rem; }
  .tiles { grid-template-columns: repeat(3, minmax(0, 1fr)); }
  .grid-row { grid-template-columns: 1fr; }
  .apa-table { overflow-x: auto; }
}
@media print { main { max-width: none; padding: 0; } a { color: inherit; } }
"""
