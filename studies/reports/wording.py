"""Numbers and sentences of the report, generated from ``results.json`` only.

Numbers follow APA style (7th ed., sections 6.36 and 6.44): statistics that
cannot exceed 1 (correlations, reliabilities, p) have no leading zero, other
numbers keep it; p is exact to three decimals or "< .001"; intervals are
"[low, high]"; a true minus sign. A missing value is never printed as a number:
tables show an em dash and sentences are left out.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

MINUS = "\u2212"
DASH = "\u2014"
ALPHA = 0.05

#: Display names of stylecore's metrics (anything else is shown as named).
METRIC_NAMES = {
    "ssim": "SSIM", "ssim-rgb": "SSIM (RGB)", "ms-ssim": "MS-SSIM", "psnr": "PSNR",
    "lpips-alex": "LPIPS (AlexNet)", "lpips-vgg": "LPIPS (VGG)", "st-lpips": "ST-LPIPS",
    "gram-style": "Gram style loss", "adain-style": "AdaIN style loss",
    "content": "content loss", "colorfulness": "colourfulness",
    "color-hist": "colour-histogram distance", "edge-preservation": "edge preservation",
    "recognisability-top1": "recognisability (top-1)",
    "recognisability-top5": "recognisability (top-5)",
    "fid": "FID", "kid": "KID", "artfid": "ArtFID",
}
CORRELATION_SYMBOLS = {"spearman": "ρ", "pearson": "r", "kendall": "τ"}
QUESTION_KINDS = {"likert": "rating", "2afc": "two-alternative choice", "ranking": "ranking"}
#: Last words of a group name that already say who its members are ("Chinese
#: participants", "expert raters"): such a name gets no second "participants".
PEOPLE_NOUNS = frozenset({
    "participants", "raters", "respondents", "people", "observers", "viewers", "subjects",
    "students", "experts", "users", "volunteers", "members", "adults", "speakers",
})


def number(value: Any) -> float | None:
    """A finite float, or None for anything missing (None, NaN, inf, text)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def fmt(value: Any, digits: int = 2, *, bounded: bool = False) -> str:
    """APA number: ``bounded`` drops the leading zero (|value| <= 1 statistics)."""
    x = number(value)
    if x is None:
        return DASH
    text = f"{abs(x):.{digits}f}"
    if bounded and text.startswith("0."):
        text = text[1:]
    if text.strip("0.") == "":
        return text  # no "−.00"
    return (MINUS if x < 0 else "") + text


def fmt_p(value: Any) -> str:
    """p value without "p": "< .001", ".012", "> .999"."""
    x = number(value)
    if x is None:
        return DASH
    if x < 0.001:
        return "< .001"
    if x > 0.999:
        return "> .999"
    return fmt(x, 3, bounded=True)


def p_clause(value: Any, *, label: str = "p") -> str:
    """"p < .001" or "p = .012"."""
    text = fmt_p(value)
    return f"{label} {text}" if text[0] in "<>" else f"{label} = {text}"


def fmt_ci(low: Any, high: Any, digits: int = 2, *, bounded: bool = False) -> str:
    if number(low) is None or number(high) is None:
        return DASH
    return f"[{fmt(low, digits, bounded=bounded)}, {fmt(high, digits, bounded=bounded)}]"


def fmt_int(value: Any) -> str:
    x = number(value)
    return DASH if x is None else f"{int(round(x)):,}"


def level_text(level: float) -> str:
    return f"{level * 100:g} %"


def metric_name(column: str) -> str:
    name = str(column).removeprefix("metric__")
    return METRIC_NAMES.get(name, name)


def people(name: Any) -> str:
    """A group's name as a phrase for its members: "western" -> "western participants";
    "Chinese participants" stays as it is."""
    text = str(name).strip()
    words = text.split()
    if words and words[-1].lower().strip(".,;:)") in PEOPLE_NOUNS:
        return text
    return f"{text} participants"


def fmt_plain(value: Any) -> str:
    """A setting as given, without rounding it: 1.5 -> "1.5", 2.0 -> "2"."""
    x = number(value)
    return DASH if x is None else f"{x:g}"


def params_text(params: dict[str, Any] | None) -> str:
    """``"alpha = 1.0, levels = 3"``: parameters left blank (None, "", [], {}) are left out,
    so they read as the method's defaults."""
    return ", ".join(f"{k} = {v}" for k, v in sorted((params or {}).items()) if not _blank(v))


def _blank(value: Any) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, list | tuple | dict) and not value)


def excludes_zero(low: Any, high: Any) -> bool:
    lo, hi = number(low), number(high)
    return lo is not None and hi is not None and (lo > 0 or hi < 0)


def _join(items: list[str], word: str = "and") -> str:
    if len(items) <= 2:
        return f" {word} ".join(items)
    return ", ".join(items[:-1]) + f", {word} " + items[-1]


@dataclass(frozen=True)
class Sentence:
    """One generated sentence.

    Attributes:
        text: The sentence.
        kind: ``finding`` (the interval excludes zero, or the test is
            significant after correction), ``hedged`` (it does not) or
            ``descriptive`` (no inference, e.g. reliability).
        subjects: What it is about (metric columns, contrast terms), so the
            wording can be checked against a known truth.
    """

    text: str
    kind: str
    subjects: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Metric names such as "tracked" may open a sentence.
        object.__setattr__(self, "text", self.text[:1].upper() + self.text[1:])


class Context:
    """Lookups over ``results.json`` shared by sentences, tables and figures."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.results = results
        options = results.get("options") or {}
        self.level = float(options.get("confidence_level") or 0.95)
        self.correlation = str(options.get("correlation") or "spearman")
        self.symbol = CORRELATION_SYMBOLS.get(self.correlation, "r")
        self.groups = {g["slug"]: g for g in results.get("groups", [])}
        self.questions = {q["id"]: q for q in results.get("questions", [])}
        for row in results.get("agreement", []):
            self.questions.setdefault(row.get("question"), {"id": row.get("question"),
                                                            "number": len(self.questions) + 1,
                                                            "kind": "", "dimension": "", "text": ""})
        self.guards = self._guards()

    def _guards(self) -> list[dict[str, Any]]:
        """Fired guards, from whichever record the results carry.

        ``guards`` rows (question, group, analysis, reason); the analysis's
        ``descriptive`` rows with ``inference`` false, whose reasons are its
        warnings ``"Q1, western participants: reason; descriptive statistics only"``
        (``"question 4, group west: ..."`` in older results);
        and the report's own ``sufficiency`` table.
        """
        fired = [
            {"question": g.get("question"), "group": g.get("group"),
             "analysis": g.get("analysis"), "reason": g.get("reason") or g.get("message") or ""}
            for g in self.results.get("guards", []) if isinstance(g, dict)
        ]
        warnings = [str(w) for w in self.results.get("warnings", [])]
        covered = {(r.get("question"), r.get("group"))
                   for r in self.results.get("sufficiency", []) if not r.get("sufficient", True)}
        for row in self.results.get("descriptive", []):
            if row.get("inference", True) or (row.get("question"), row.get("group")) in covered:
                continue
            # Named as stored (older results) or as the report names them.
            prefixes = (f"question {row.get('question')}, group {row.get('group')}: ",
                        f"{self.question_label(row.get('question'))}, "
                        f"{self.group_people(row.get('group'))}: ")
            reasons = [w[len(prefix):].removesuffix("; descriptive statistics only")
                       for w in warnings for prefix in prefixes if w.startswith(prefix)]
            fired.append({"question": row.get("question"), "group": row.get("group"),
                          "analysis": None,
                          "reason": "; ".join(reasons) or "below the minimum for inference"})
        for row in self.results.get("sufficiency", []):
            if not row.get("sufficient", True):
                fired.append({"question": row["question"], "group": row["group"],
                              "analysis": None, "reason": "; ".join(row.get("missing", []))})
        return fired

    def guarded(self, question: Any, group: Any = None, analysis: str | None = None) -> bool:
        """Whether a guard fired for this question (and group, and analysis)."""
        for g in self.guards:
            if g["question"] not in (None, question):
                continue
            if group is not None and g["group"] not in (None, group):
                continue
            if analysis is not None and g["analysis"] not in (None, analysis):
                continue
            return True
        return False

    def effects_guarded(self, question: Any) -> bool:
        """Model contrasts pool the groups: withheld when a guard covers the whole
        question or the model, or every group of the question is below the minimum."""
        for g in self.guards:
            if g["question"] in (None, question) and (
                    g["group"] is None or g.get("analysis") in ("effects", "mixed_models")):
                return True
        groups = {r["group"] for r in self.results.get("sufficiency", [])
                  if r.get("question") == question}
        groups |= {r["group"] for r in self.results.get("agreement", [])
                   if r.get("question") == question}
        return bool(groups) and all(self.guarded(question, g) for g in groups)

    def group_name(self, slug: Any) -> str:
        group = self.groups.get(slug)
        return group["name"] if group else str(slug)

    def culture_name(self, slug: Any) -> str:
        """A culture as the configuration names it ("Chinese ink wash"), else its slug in words."""
        if slug is None or slug == "":
            return ""
        names = self.results.get("culture_names") or {}
        return str(names.get(slug) or str(slug).replace("-", " ").replace("_", " "))

    def group_people(self, slug: Any) -> str:
        """The group's members: "western participants", "Chinese participants"."""
        return people(self.group_name(slug))

    def question_label(self, qid: Any) -> str:
        """"Q1": the question's number in the report (not its database id)."""
        return f"Q{(self.questions.get(qid) or {}).get('number', qid)}"

    def group_n(self, slug: Any) -> int | None:
        group = self.groups.get(slug)
        return group["analysed"] if group else None

    def question_title(self, qid: Any) -> str:
        q = self.questions.get(qid) or {}
        dimension = str(q.get("dimension") or "").replace("_", " ")
        kind = q.get("kind", "")
        parts = [f"Question {q.get('number', qid)}"]
        if dimension:
            parts.append(dimension.capitalize())
        detail = QUESTION_KINDS.get(kind, kind)
        if kind == "likert" and q.get("scale_points"):
            detail += f", 1–{q['scale_points']}"
        title = ": ".join(parts[:2]) if len(parts) > 1 else parts[0]
        return f"{title} ({detail})" if detail else title

    def primary_agreement(self, question: Any) -> list[dict[str, Any]]:
        """Agreement rows of the report's correlation for one question, metrics with values only."""
        rows = [r for r in self.results.get("agreement", [])
                if r.get("question") == question and r.get("correlation", self.correlation)
                == self.correlation]
        with_values = {r["metric"] for r in rows if number(r.get("statistic")) is not None}
        return [r for r in rows if r["metric"] in with_values]

    def question_ids(self) -> list[Any]:
        return sorted(self.questions, key=lambda q: self.questions[q].get("number", 0))


def estimate_clause(symbol: str, estimate: Any, low: Any, high: Any, level: float,
                    *, bounded: bool = True, p: Any = None, p_label: str = "p") -> str:
    text = f"{symbol} = {fmt(estimate, bounded=bounded)}"
    if number(low) is not None and number(high) is not None:
        text += f", {level_text(level)} CI {fmt_ci(low, high, bounded=bounded)}"
    if number(p) is not None:
        text += ", " + p_clause(p, label=p_label)
    return text


# --------------------------------------------------------------------------
# Summary sentences
# --------------------------------------------------------------------------


def summary_sentences(results: dict[str, Any]) -> dict[Any, list[Sentence]]:
    """Plain sentences per question, results first; none where a guard fired."""
    ctx = Context(results)
    out: dict[Any, list[Sentence]] = {}
    for qid in ctx.question_ids():
        sentences = (_agreement_sentences(ctx, qid) + _difference_sentences(ctx, qid)
                     + _effect_sentences(ctx, qid) + _preference_sentences(ctx, qid)
                     + _reliability_sentences(ctx, qid))
        out[qid] = sentences
    return out


def judgements(ctx: Context, qid: Any) -> str:
    """What participants gave for a question: ratings, choices or rankings."""
    kind = (ctx.questions.get(qid) or {}).get("kind")
    return {"2afc": "choices", "ranking": "rankings"}.get(kind, "ratings")


def _agreement_sentences(ctx: Context, qid: Any) -> list[Sentence]:
    """One sentence per metric: the groups whose interval excludes zero, then a hedged
    sentence for the groups (or metrics) whose interval includes it."""
    rows = [r for r in ctx.primary_agreement(qid)
            if not ctx.guarded(qid, r["group"], "agreement")]
    what = judgements(ctx, qid)
    sentences, unclear_all = [], []
    metrics = sorted({r["metric"] for r in rows},
                     key=lambda m: -max(number(r.get("statistic")) or 0.0
                                        for r in rows if r["metric"] == m))
    for metric in metrics:
        part = sorted((r for r in rows if r["metric"] == metric),
                      key=lambda r: -(number(r.get("statistic")) or 0.0))
        clear = [r for r in part if excludes_zero(r.get("ci_low"), r.get("ci_high"))]
        unclear = [r for r in part if r not in clear and number(r.get("statistic")) is not None]
        for positive in (True, False):
            same = [r for r in clear if (number(r["statistic"]) > 0) == positive]
            if not same:
                continue
            verb = "agreed with" if positive else "ran opposite to"
            whom = _join([f"{ctx.group_people(r['group'])} ("
                          + estimate_clause(ctx.symbol, r["statistic"], r["ci_low"], r["ci_high"],
                                            ctx.level) + _disattenuated_clause(r, ctx) + ")"
                          for r in same])
            sentences.append(Sentence(
                f"{metric_name(metric)} {verb} the {what} of {whom}.", "finding",
                (metric, *[f"{metric}|{r['group']}" for r in same])))
        if unclear and clear:
            whom = _join([f"{ctx.group_people(r['group'])} ("
                          + estimate_clause(ctx.symbol, r["statistic"], r.get("ci_low"),
                                            r.get("ci_high"), ctx.level) + ")" for r in unclear])
            sentences.append(Sentence(
                f"For {whom}, there was no clear evidence that "
                f"{metric_name(metric)} agreed with their {what}; the interval included zero.",
                "hedged", tuple(f"{metric}|{r['group']}" for r in unclear)))
        elif unclear:
            unclear_all.append((metric, unclear))
    if unclear_all:
        details = "; ".join(
            f"{metric_name(m)}: " + ", ".join(
                f"{ctx.group_name(r['group'])} {ctx.symbol} = {fmt(r['statistic'], bounded=True)} "
                f"{fmt_ci(r.get('ci_low'), r.get('ci_high'), bounded=True)}" for r in part)
            for m, part in unclear_all)
        names = _join([metric_name(m) for m, _ in unclear_all])
        sentences.append(Sentence(
            f"There was no clear evidence that {names} agreed with {what} in any group; every "
            f"{level_text(ctx.level)} interval included zero ({details}).", "hedged",
            tuple(m for m, _ in unclear_all)))
    return sentences


def _disattenuated_clause(row: dict[str, Any], ctx: Context) -> str:
    """``; disattenuated ρ = .., CI [..]``: the primary estimand's estimate, where there is one."""
    if number(row.get("disattenuated")) is None:
        return ""
    return "; disattenuated " + estimate_clause(
        ctx.symbol, row["disattenuated"], row.get("disattenuated_low"),
        row.get("disattenuated_high"), ctx.level)


def difference_rows(ctx: Context, qid: Any) -> list[dict[str, Any]]:
    """Group-difference rows of one question in one shape: ``metric, group_a, group_b,
    estimate, ci_low, ci_high, p, p_adjusted, symbol`` (metrics with values only).

    Reads the documented keys (``difference``, ``ci_low``, ``ci_high``, ``p``,
    ``p_adjusted``) and falls back to the older columns (Pearson difference with
    Zou's interval, permutation p and its Holm adjustment).
    """
    rows = []
    for r in ctx.results.get("group_differences", []):
        if r.get("question") != qid:
            continue
        if "ci_low" in r:
            estimate, low, high = r.get("difference"), r.get("ci_low"), r.get("ci_high")
            symbol = "Δ" + ctx.symbol
        else:
            a, b = number(r.get("pearson_a")), number(r.get("pearson_b"))
            estimate = None if a is None or b is None else a - b
            low, high = r.get("pearson_diff_low"), r.get("pearson_diff_high")
            symbol = "Δr"
        p = r.get("p", r.get("perm_p"))
        p_adjusted = r.get("p_adjusted", r.get("perm_p_holm"))
        if number(estimate) is None:
            continue
        guarded = (ctx.guarded(qid, r.get("group_a"), "group_differences")
                   or ctx.guarded(qid, r.get("group_b"), "group_differences"))
        rows.append({"metric": r["metric"], "group_a": r["group_a"], "group_b": r["group_b"],
                     "estimate": estimate, "ci_low": None if guarded else low,
                     "ci_high": None if guarded else high, "p": None if guarded else p,
                     "p_adjusted": None if guarded else p_adjusted, "symbol": symbol,
                     "guarded": guarded})
    return rows


def correction_name(results: dict[str, Any]) -> str:
    return str((results.get("options") or {}).get("correction") or "Holm")


def _difference_sentences(ctx: Context, qid: Any) -> list[Sentence]:
    rows = [r for r in difference_rows(ctx, qid) if not r["guarded"]]
    sentences = []
    correction = correction_name(ctx.results)
    label = f"{correction}-adjusted p"
    clear = [r for r in rows if excludes_zero(r["ci_low"], r["ci_high"])
             and (number(r["p_adjusted"]) is None or number(r["p_adjusted"]) < ALPHA)]
    for r in sorted(clear, key=lambda r: -abs(number(r["estimate"]))):
        sign = 1.0 if number(r["estimate"]) > 0 else -1.0
        higher, lower = (r["group_a"], r["group_b"]) if sign > 0 else (r["group_b"], r["group_a"])
        # Stated as higher minus lower, so the printed difference is positive.
        low, high = sorted((sign * number(r["ci_low"]), sign * number(r["ci_high"])))
        sentences.append(Sentence(
            f"Agreement of {metric_name(r['metric'])} with {judgements(ctx, qid)} was higher for "
            f"{ctx.group_people(higher)} than for {ctx.group_people(lower)} ("
            # A difference of correlations can exceed 1: it keeps its leading zero.
            + estimate_clause(r["symbol"], sign * number(r["estimate"]), low, high, ctx.level,
                              bounded=False, p=r["p_adjusted"], p_label=label) + ").",
            "finding", (r["metric"], f"{r['metric']}|{higher}>{lower}")))
    rest = [r for r in rows if r not in clear]
    if rest and (number(rest[0]["ci_low"]) is not None or number(rest[0]["p_adjusted"]) is not None):
        sentences.append(Sentence(
            f"{'No other' if clear else 'No'} difference in agreement between groups was clear "
            f"({len(rest)} comparison{'s' if len(rest) > 1 else ''}: each interval included zero "
            f"or the {label} was ≥ .05).", "hedged",
            tuple(f"{r['metric']}:{r['group_a']}|{r['group_b']}" for r in rest)))
    return sentences


def effect_rows(ctx: Context, qid: Any) -> list[dict[str, Any]]:
    """Named contrasts of one question: the ``effects`` rows, else the mixed model's contrasts."""
    rows = [dict(r) for r in ctx.results.get("effects", []) if r.get("question") == qid]
    if not rows:
        for model in ctx.results.get("mixed_models", []):
            if model.get("question") != qid:
                continue
            for term, c in (model.get("contrasts") or {}).items():
                rows.append({"question": qid, "term": term, "estimate": c.get("estimate"),
                             "ci_low": c.get("ci_low"), "ci_high": c.get("ci_high"),
                             "p": c.get("p", c.get("pvalue")), "se": c.get("se")})
    return [r for r in rows if number(r.get("estimate")) is not None]


def contrast_levels(ctx: Context) -> list[str]:
    """Names a contrast term can mention: methods and groups (longest first)."""
    names = {str(m.get("label")) for m in (ctx.results.get("design") or {}).get("methods", [])}
    names |= {str(r["level"]) for r in ctx.results.get("cell_means", [])
              if r.get("factor") == "method"}
    names |= {str(g) for g in ctx.groups}
    for r in ctx.results.get("effects", []):
        for part in str(r.get("term", "")).split(" x "):
            names |= set(str(part).partition(":")[2].split("-")) if "-" in part else set()
    return sorted(names, key=len, reverse=True)


def _split_pair(text: str, levels: list[str]) -> tuple[str, str]:
    """"feature-match-adain" -> ("feature-match", "adain") using the known level names."""
    for i, char in enumerate(text):
        if char == "-" and text[:i] in levels and text[i + 1:] in levels:
            return text[:i], text[i + 1:]
    a, _, b = text.partition("-")
    return a, b


def parse_term(term: str, levels: list[str]) -> list[tuple[str, str, str]]:
    """``method:a-b x group:g-h`` -> [("method", a, b), ("group", g, h)]; ``in_group`` -> []."""
    parts = []
    for piece in str(term).split(" x "):
        factor, sep, pair = piece.partition(":")
        if sep:
            parts.append((factor, *_split_pair(pair, levels)))
    return parts


def term_label(term: str, levels: list[str] | None = None,
               group_names: dict[str, str] | None = None) -> str:
    """``in_group`` -> "own culture − other cultures"; ``method:wct-adain`` -> "wct − adain";
    an interaction -> "(wct − adain) × (Chinese − Western)", groups by ``group_names``."""
    if term == "in_group":
        return f"own culture {MINUS} other cultures"
    parts = parse_term(term, levels or [])
    if not parts:
        return term.replace("_", " ")
    names = group_names or {}
    labels = [f"{names.get(a, a)} {MINUS} {names.get(b, b)}" if factor == "group"
              else f"{a} {MINUS} {b}" for factor, a, b in parts]
    return labels[0] if len(labels) == 1 else " × ".join(f"({x})" for x in labels)


def _effect_sentences(ctx: Context, qid: Any) -> list[Sentence]:
    """Significant contrasts one by one; the rest of each family in one hedged sentence."""
    if ctx.effects_guarded(qid):
        return []
    levels = contrast_levels(ctx)
    names = {str(g): ctx.group_name(g) for g in ctx.groups}
    points = "points" if (ctx.questions.get(qid) or {}).get("kind") == "likert" else "units"
    correction = correction_name(ctx.results)
    sentences, unclear, found = [], {}, set()
    for r in effect_rows(ctx, qid):
        term = str(r["term"])
        adjusted = number(r.get("p_adjusted")) is not None
        p = r.get("p_adjusted") if adjusted else r.get("p")
        clause = estimate_clause("difference", r["estimate"], r.get("ci_low"), r.get("ci_high"),
                                 ctx.level, bounded=False, p=p,
                                 p_label=f"{correction}-adjusted p" if adjusted else "p")
        clause = clause.replace(f"= {fmt(r['estimate'])}",
                                f"= {fmt(r['estimate'])} scale {points}", 1)
        significant = excludes_zero(r.get("ci_low"), r.get("ci_high")) and (
            number(p) is None or number(p) < ALPHA)
        est = number(r["estimate"])
        parts = parse_term(term, levels)
        family = str(r.get("family") or (parts[0][0] if len(parts) == 1 else
                                         " x ".join(f for f, _, _ in parts) or term))
        if not significant:
            unclear.setdefault(family, []).append(r)
            continue
        if term == "in_group":
            text = (f"Participants rated styles of their own culture "
                    f"{'higher' if est > 0 else 'lower'} than styles of other cultures ({clause}).")
        elif len(parts) == 1 and parts[0][0] == "method":
            _, a, b = parts[0]
            better, worse = (a, b) if est > 0 else (b, a)
            text = f"{better} was rated higher than {worse} ({clause})."
        elif len(parts) == 2 and parts[0][0] == "method" and parts[1][0] == "group":
            (_, a, b), (_, g, h) = parts
            more, less = (g, h) if est > 0 else (h, g)
            text = (f"The difference between {a} and {b} was larger for "
                    f"{ctx.group_people(more)} than for {ctx.group_people(less)} "
                    f"({clause}).")
        else:
            text = f"The {term_label(term, levels, names)} contrast was {fmt(est)} ({clause})."
        sentences.append(Sentence(text, "finding", (term,)))
        found.add(family)
    for family, rows in unclear.items():
        what = {"in_group": "own-culture and other-culture styles",
                "method": "methods", "method x group": "the groups' method differences"}.get(
                    family, family.replace("_", " "))
        if len(rows) == 1:
            r = rows[0]
            sentences.append(Sentence(
                f"There was no clear difference between {what} "
                f"({term_label(str(r['term']), levels, names)}: "
                + estimate_clause("difference", r["estimate"], r.get("ci_low"), r.get("ci_high"),
                                  ctx.level, bounded=False) + ").", "hedged", (str(r["term"]),)))
        else:
            lead = (f"No other contrast between {what} was clear" if family in found
                    else f"There was no clear difference between {what}")
            sentences.append(Sentence(
                f"{lead} ({len(rows)} contrasts: each interval included zero or the "
                "adjusted p was ≥ .05).", "hedged", tuple(str(r["term"]) for r in rows)))
    return sentences


def _preference_sentences(ctx: Context, qid: Any) -> list[Sentence]:
    sentences = []
    for entry in ctx.results.get("bradley_terry", []):
        if entry.get("question") != qid or ctx.guarded(qid, entry.get("group"), "bradley_terry"):
            continue
        table = [r for r in entry.get("table", []) if number(r.get("strength")) is not None]
        clear = [r for r in table if excludes_zero(r.get("ci_low"), r.get("ci_high"))]
        if not clear:
            continue
        best = max(clear, key=lambda r: r["strength"])
        interval = "posterior interval" if entry.get("interval") == "posterior" else "CI"
        if best["strength"] > 0:
            sentences.append(Sentence(
                f"{ctx.group_people(entry['group'])} preferred {best['item']} in paired "
                f"choices (log-strength {fmt(best['strength'])}, {level_text(ctx.level)} {interval} "
                f"{fmt_ci(best['ci_low'], best['ci_high'])}; won {fmt(100 * best['win_rate'], 0)} % "
                "of its comparisons).", "finding", (f"method:{best['item']}",)))
    return sentences


#: The banner of a report on a study without any response.
NO_DATA = ("This study has no responses yet: nobody has taken part, or every participant's "
           "data have been erased. There is nothing to analyse; the report gives the design and "
           "the frozen configuration only. Build it again once participants have taken part.")

#: Why a split-half value at or below zero is not shown as a reliability.
NO_RELIABILITY = ("the two random halves of the raters did not order the candidates "
                  "consistently, so the ratings are too few or too noisy for a reliability "
                  "estimate (Spearman–Brown applied to a negative correlation gives no "
                  "reliability)")


def reliable(value: Any) -> bool:
    """A split-half value that is a reliability (positive); at or below zero it is not."""
    x = number(value)
    return x is not None and x > 0


def _reliability_sentences(ctx: Context, qid: Any) -> list[Sentence]:
    rows = [r for r in ctx.results.get("reliability", []) if r.get("question") == qid
            and not ctx.guarded(qid, r.get("group"), "reliability")]
    level = "nominal" if (ctx.questions.get(qid) or {}).get("kind") == "2afc" else "interval"
    parts, negative = [], False
    for r in rows:
        alpha = r.get(f"alpha_{level}", r.get("alpha"))
        split = r.get("noise_ceiling", r.get("split_half"))
        if number(alpha) is None and number(split) is None:
            continue
        bits = []
        if number(alpha) is not None:
            bits.append(f"α = {fmt(alpha, bounded=True)}")
        if reliable(split):
            bits.append(f"split-half {fmt(split, bounded=True)}")
        elif number(split) is not None:
            bits.append("no split-half reliability (negative)")
            negative = True
        parts.append(f"{ctx.group_name(r['group'])} {', '.join(bits)}")
    if not parts:
        return []
    return [Sentence(
        f"Reliability: Krippendorff's α ({level}) between raters and the split-half reliability "
        f"of candidate means (Spearman–Brown) were: {'; '.join(parts)}."
        + (f" Negative split-half: {NO_RELIABILITY}." if negative else ""), "descriptive")]


# --------------------------------------------------------------------------
# Banner and methods paragraph
# --------------------------------------------------------------------------


def banner_lines(results: dict[str, Any]) -> list[str]:
    """One line per fired guard, saying what is missing for the planned analysis."""
    ctx = Context(results)
    lines = []
    for g in ctx.guards:
        where = []
        if g["question"] is not None:
            where.append(ctx.question_title(g["question"]))
        if g["group"] is not None:
            where.append(ctx.group_people(g["group"]))
        if g.get("analysis"):
            where.append(str(g["analysis"]).replace("_", " "))
        head = ", ".join(where) if where else "Whole study"
        lines.append(f"{head}: needs {g['reason']}." if g["reason"] and "more" in g["reason"]
                     else f"{head}: {g['reason'] or 'below the minimum for inference'}.")
    if not results.get("n_rows_analysed"):
        lines.insert(0, "No responses were analysed: nothing to estimate yet.")
    return lines


#: How a metric's reason for having no value begins (``stylecore`` and the scoring worker),
#: and the word the report gives it.
_GAP_KINDS = {"unavailable": "unavailable", "not applicable": "not applicable", "error": "failed"}
#: One stored reason may join several ("unavailable: A; unavailable: B", e.g. ArtFID's).
_GAP_SPLIT = re.compile(r"; (?=(?:unavailable|not applicable|error): )")


def set_metric_gaps(rows: list[dict[str, Any]]) -> list[str]:
    """Why set metrics have no value: one sentence per distinct reason, naming its metrics.

    A reason shared by several metrics or cells is given once, without the
    stored ``"unavailable: "`` prefix doubled into the sentence.

    Example:
        >>> set_metric_gaps([{"metric": "fid", "value": None, "unavailable_reason": "unavailable: w.pth"},
        ...                  {"metric": "kid", "value": None, "unavailable_reason": "unavailable: w.pth"}])
        ['FID and KID unavailable: w.pth.']
    """
    reasons: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        if number(row.get("value")) is not None or not row.get("unavailable_reason"):
            continue
        for part in _GAP_SPLIT.split(str(row["unavailable_reason"])):
            prefix, sep, detail = part.partition(": ")
            kind = _GAP_KINDS.get(prefix.strip().lower()) if sep else None
            key = (kind, detail.strip()) if kind else ("", part.strip())
            names = reasons.setdefault(key, [])
            name = metric_name(row.get("metric", ""))
            if name not in names:
                names.append(name)
    return [f"{_join(sorted(names))} {kind}: {detail.rstrip('.')}." if kind else
            f"{_join(sorted(names))}: {detail.rstrip('.')}."
            for (kind, detail), names in reasons.items()]


def methods_paragraphs(results: dict[str, Any]) -> list[str]:
    """Participants, design and analysis paragraphs, ready to paste and edit."""
    ctx = Context(results)
    options = results.get("options") or {}
    rules = options.get("rules") or {}
    design = results.get("design") or {}
    groups = list(ctx.groups.values())
    paragraphs = []

    # Participants.
    recruited = sum(g["recruited"] for g in groups)
    analysed = sum(g["analysed"] for g in groups)
    per_group = _join([f"{g['analysed']} {g['name']}" + (f" (of {g['recruited']})"
                                                           if g["recruited"] != g["analysed"] else "")
                       for g in groups]) if groups else "none"
    removed = [s for s in results.get("exclusions", []) if s.get("participants_removed")]
    excl = _join([f"{s['participants_removed']} for {_rule_text(s['rule'])}" for s in removed])
    text = (f"Participants. {recruited} participant{'s' if recruited != 1 else ''} took part; "
            f"{analysed} were analysed ({per_group}).")
    text += (f" Excluded by preregistered rule: {excl}." if excl else
             " No participant was excluded.")
    row_rules = [s for s in results.get("exclusions", []) if s.get("rows_removed")
                 and not s.get("participants_removed")]
    if row_rules:
        text += " Individual responses were dropped for " + _join(
            [f"{_rule_text(s['rule'])} ({s['responses_removed']} responses)" for s in row_rules]) + "."
    paragraphs.append(text)

    # Design.
    methods = design.get("methods") or []
    method_text = _join([_method_text(m) for m in methods]) if methods else "no methods"
    cultures = design.get("styles_per_culture") or {}
    culture_text = _join([f"{n} {ctx.culture_name(c)}" for c, n in cultures.items()])
    qtext = _join([_question_text(q) for q in ctx.questions.values() if q.get("kind")])
    sources = (f"{fmt_int(design.get('n_contents'))} content photographs and "
               f"{fmt_int(design.get('n_styles'))} style artworks"
               + (f" ({culture_text})" if culture_text else ""))
    judged = _judged(ctx)
    generated, shown = number(design.get("n_generated")), number(design.get("n_candidates"))
    if generated is None:
        # A tidy file knows only the candidates that appear in its responses.
        text = (f"Design. Stimuli were the {fmt_int(shown)} images (candidates) that "
                f"participants {judged} in the analysed responses, generated from {sources} "
                f"by {method_text}.")
    else:
        of = ("all of which" if generated == shown else f"{fmt_int(shown)} of which")
        text = (f"Design. The study generated {fmt_int(generated)} images (candidates) with "
                f"{method_text}, {of} were {judged} in the analysed responses; those came from "
                f"{sources}.")
    text += _departures_text(methods)
    if qtext:
        text += f" Participants answered {qtext}."
    per_participant = design.get("responses_per_participant") or {}
    if per_participant:
        text += " Each participant gave a median of " + _join(
            [f"{fmt(n, 0)} responses to question {ctx.questions.get(_key(q, ctx), {}).get('number', q)}"
             for q, n in per_participant.items()]) + "."
    text += _screens_text(design.get("screens_per_participant") or {})
    if design.get("trials_per_participant"):
        text += _balanced_text(ctx)
    text += "".join(_pair_design_text(q, ctx) for q in ctx.questions.values()
                    if q.get("kind") == "2afc")
    paragraphs.append(text)

    # Analysis.
    correction = correction_name(results)
    n_resamples = options.get("n_resamples")
    text = (
        "Analysis. Metric–human agreement was estimated per group and question as the "
        f"{ctx.correlation.title()} correlation, across candidates, between each metric and "
        "the group's mean rating of the candidate. Its primary estimand is the correlation, "
        "over the population of candidates, between the metric and the rating infinitely many "
        "raters of the group would give; it is estimated by the disattenuated agreement, the "
        "uncorrected one divided by the square root of the noise ceiling (the split-half "
        "reliability of the candidate means, Spearman–Brown). The uncorrected agreement "
        "estimates the correlation with the mean of as many ratings per candidate as the "
        "study collected (their harmonic mean, k, is given with the table), which rater noise "
        f"makes smaller; each has its own {level_text(ctx.level)} confidence interval from a "
        "crossed bootstrap resampling candidates and participants independently "
        f"({fmt_int(n_resamples)} resamples). Differences in uncorrected agreement between "
        "groups, which rate the same candidates, were tested with the same crossed bootstrap, "
        f"per question, with {correction}'s correction across metrics and group pairs. ")
    models = results.get("mixed_models") or []
    if models:
        random = _join([str(x) for x in models[0].get("random_effects") or []
                        if str(x) != "residual"])
        text += (f"Ratings were modelled with a linear mixed model ({models[0].get('formula', '')}"
                 + (f"; crossed random intercepts for {random}" if random else "")
                 + ") fitted by REML; estimated marginal means and contrasts of them are "
                 "reported with their intervals and Satterthwaite degrees of freedom, the "
                 "contrasts adjusted within each family. ")
        if models[0].get("scale"):
            text += f"Scale: {models[0]['scale']}. "
    text += ("Reliability is Krippendorff's α between raters and the split-half reliability of "
             "candidate means with the Spearman–Brown correction. ")
    rule_text = []
    if rules.get("min_rt_ms") is not None:
        rule_text.append(f"responses faster than {fmt(rules['min_rt_ms'], 0)} ms")
    failures = rules.get("max_attention_failures")
    if failures is not None:
        rule_text.append("participants failing any attention check" if failures == 0 else
                         "participants failing more than one attention check" if failures == 1
                         else f"participants failing more than {failures} attention checks")
    if rules.get("require_complete"):
        rule_text.append("incomplete sessions")
    if rule_text:
        text += "Exclusion rules: " + _join(rule_text) + ". "
    minimums = results.get("sufficiency_rules") or {}
    if minimums:
        text += (f"Intervals and tests were computed only where a group had at least "
                 f"{minimums['min_participants']} participants, {minimums['min_candidates']} "
                 f"rated candidates and a mean of {fmt_plain(minimums['min_ratings_per_candidate'])} "
                 "ratings per candidate. ")
    software = results.get("software") or {}
    if software:
        text += "Software: " + ", ".join(f"{k} {v}" for k, v in software.items()) + \
            f"; random seed {options.get('seed', 0)}."
    paragraphs.append(text.strip())
    return paragraphs


def _key(q: str, ctx: Context) -> Any:
    for qid in ctx.questions:
        if str(qid) == str(q):
            return qid
    return q


def _rule_text(rule: str) -> str:
    return rule[0].lower() + rule[1:] if rule else rule


def _judged(ctx: Context) -> str:
    """What participants did with the candidates: "rated", "compared" or both."""
    kinds = {q.get("kind") for q in ctx.questions.values() if q.get("kind")}
    rated, compared = "likert" in kinds, bool(kinds & {"2afc", "ranking"})
    return "rated or compared" if rated and compared else "compared" if compared else "rated"


#: What one trial of a balanced sequence shows, per question kind (2AFC: see
#: :func:`_pair_design_text`).
_UNITS = {"likert": "candidates", "ranking": "sets of candidates of one content and style"}


def _screens_text(screens: dict[str, list[float]]) -> str:
    """What participants were shown, from the data (the configured number of trials is
    only what was requested)."""
    def count(kind: str, one: str, many: str) -> str:
        low, median, high = screens[kind]
        noun = one if low == high == 1 else many
        if low == high:
            return f"{fmt_int(low)} {noun}"
        return f"a median of {fmt_plain(median)} {many} (range {fmt_int(low)}–{fmt_int(high)})"

    parts = [count(kind, one, many) for kind, one, many in (
        ("rated", "rated trial", "rated trials"), ("practice", "practice screen", "practice screens"),
        ("attention", "attention-check screen", "attention-check screens")) if kind in screens]
    return f" Each analysed participant saw {_join(parts)}." if parts else ""


def _balanced_text(ctx: Context) -> str:
    """Which rating and ranking questions' trials came from the balanced sequence."""
    by_unit: dict[str, list[str]] = {}
    for qid in ctx.question_ids():
        q = ctx.questions[qid]
        if q.get("kind") in _UNITS:
            by_unit.setdefault(_UNITS[q["kind"]], []).append(f"question {q.get('number')}")
    if not by_unit:
        return ""
    which = _join([q for questions in by_unit.values() for q in questions])
    over = (next(iter(by_unit)) if len(by_unit) == 1 else
            _join([f"{unit} ({_join(questions)})" for unit, questions in by_unit.items()]))
    return (f" Trials of {which} were drawn from a sequence balanced over {over} within each "
            "group, with screen positions counterbalanced.")


def adaptive_design_text(min_exposure: Any) -> str:
    """How an adaptive 2AFC question chose its pairs and why its intervals are posterior ones."""
    return (
        "each participant's next pair was selected from the answers of their group so far "
        "(expected reduction of the Bradley–Terry strengths' posterior variance, Laplace "
        f"approximation), once every candidate had been shown at least {fmt_int(min_exposure)} "
        "times in the group; left and right were random. The selection depends only on "
        "earlier answers, so the design is ignorable for likelihood-based inference (Rubin 1976; Berger & Wolpert 1988), but the usual "
        "intervals are only asymptotically valid after it (Chaudhuri & Mykland 1993): the "
        "question's Bradley–Terry strengths are therefore posterior means with Bayesian "
        "posterior intervals (normally distributed strengths, half-Cauchy(0, 2.5) prior of "
        "their spread; Gelman 2006).")


def adaptive_pair_totals(entries: list[dict[str, Any]]) -> dict[str, int]:
    """The ``pairs`` counts of Bradley-Terry entries (one per group) added up."""
    totals: Counter[str] = Counter()
    for entry in entries:
        totals.update(entry.get("pairs") or {})
    return dict(totals)


def adaptive_pairs_text(counts: dict[str, int]) -> str:
    """What the analysed comparisons of an adaptive question were: why each pair was chosen
    (``Trial.pair_selection``) and whether any participant saw a pair twice."""
    n, informative = counts.get("comparisons", 0), counts.get("information", 0)
    exposure, unrecorded, repeated = (counts.get(k, 0) for k in ("exposure", "unrecorded", "repeated"))
    if not n:
        return ""
    if unrecorded == n:
        text = "Why each pair was chosen is not recorded with these data."
    elif not informative:
        text = (f"None of the {fmt_int(n)} analysed comparisons was chosen by information: "
                f"{'all' if exposure == n else fmt_int(exposure)} were chosen to show every candidate "
                "the minimum number of times, so at this sample size the pairs are close to a "
                "balanced design.")
    else:
        text = (f"Of the {fmt_int(n)} analysed comparisons, {fmt_int(informative)} were chosen as "
                "the most informative pair"
                + (f" and {fmt_int(exposure)} to show every candidate the minimum number of times"
                   if exposure else "")
                + (f" ({fmt_int(unrecorded)} not recorded)" if unrecorded else "") + ".")
    if repeated:
        text += (f" {fmt_int(repeated)} comparison{'s' if repeated != 1 else ''} showed a "
                 "participant a pair they had already compared (the question has fewer pairs "
                 "than trials per participant).")
    else:
        text += " No participant compared the same pair twice."
    return text


def _pair_design_text(q: dict[str, Any], ctx: Context) -> str:
    """One sentence on how a 2AFC question's pairs were chosen."""
    which = f"question {q.get('number')}"
    design = q.get("pair_design")
    if design == "adaptive":
        counts = adaptive_pair_totals([e for e in ctx.results.get("bradley_terry", [])
                                       if e.get("question") == q.get("id")])
        return (f" Pairs of {which} were chosen adaptively: {adaptive_design_text(q.get('min_exposure'))}"
                + (f" {adaptive_pairs_text(counts)}" if counts else ""))
    if design == "balanced":
        return (f" Pairs of {which} followed a balanced design: pairs of candidates of one "
                "content and style by different methods, each shown equally often within each "
                "group (counts differing by at most one), screen positions counterbalanced; "
                "their strengths have participant-bootstrap intervals.")
    return f" How the pairs of {which} were chosen is not recorded with these data."


def _method_text(m: dict[str, Any]) -> str:
    inner = params_text(m.get("params"))
    label = m.get("label") or m.get("method")
    extra = []
    if m.get("method") and str(m.get("method")).lower() != str(label).lower():
        extra.append(str(m["method"]))
    if inner:
        extra.append(inner)
    weights = m.get("weights_used") or ([m["family"]] if m.get("family") else [])
    if weights:
        extra.append(f"weights {_join(weights, 'or')}"
                     + (", differing between its candidates" if len(weights) > 1 else ""))
    return f"{label} ({'; '.join(extra)})" if extra else str(label)


def _departures_text(methods: list[dict[str, Any]]) -> str:
    """Where a method, as run, departs from its published version (candidates' provenance)."""
    parts = [f"{m.get('label') or m.get('method')}: {'; '.join(m['departs_from_paper'])}"
             for m in methods if m.get("departs_from_paper")]
    return f" Departures from the published methods: {'; '.join(parts)}." if parts else ""


def _question_text(q: dict[str, Any]) -> str:
    kind = q.get("kind")
    dimension = str(q.get("dimension") or "").replace("_", " ")
    if kind == "likert":
        what = f"a {q.get('scale_points') or ''}-point rating of {dimension}".replace("a -point", "a")
    elif kind == "2afc":
        what = f"a two-alternative choice on {dimension}"
    elif kind == "ranking":
        what = f"a ranking by {dimension}"
    else:
        what = f"a {kind} question"
    text = q.get("text")
    return f"{what} (question {q.get('number')}{': “' + text + '”' if text else ''})"
