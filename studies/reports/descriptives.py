"""Descriptive blocks of ``results.json`` that the report presents beside the inference.

Counts per group and question, data sufficiency against stated minimums, observed
means per method and in-group/out-group, the best- and worst-rated candidates,
and software versions. Everything here is computed from the tidy frame once, so
the rendering in :mod:`studies.reports.document` reads ``results.json`` only.
"""

from __future__ import annotations

import platform
import warnings
from typing import Any

import numpy as np
import pandas as pd

from studies.analysis import correlation, tidy
from studies.analysis.guards import DesignMinimums, design_counts

#: The keys :func:`describe` adds to ``results.json`` (joined to the analysis's
#: schema in ``codebook.json``).
DESCRIPTIVE_SCHEMA: dict[str, str] = {
    "questions": "Per question: id, number (its position in the study, as the admin labels it "
                 "Q1, Q2, ...; from a tidy file, the order of ids), kind, dimension, "
                 "scale_points, text (English wording when configured), pair_design (2AFC: "
                 "balanced or adaptive; null when not configured) and min_exposure (adaptive "
                 "2AFC: showings of every candidate per group before pairs were chosen by "
                 "information).",
    "groups": "Per participant group: slug, name, culture (own style culture), quota, "
              "recruited (participants with any row), analysed (after exclusions).",
    "design": "n_generated (candidates the study generated; null without a configuration), "
              "n_candidates (candidates in analysed responses) and the contents and styles "
              "(per culture) of those, methods with their parameters and weights (configured, and "
              "weights_used, levels_used and departs_from_paper as their candidates' provenance "
              "records them), seeds, "
              "image size, trials per participant (as configured), screens_per_participant "
              "(what each analysed participant was shown: rated, practice and attention-check "
              "screens, each as min, median and max over participants), median responses per "
              "participant and question, metric versions.",
    "sufficiency": "Per question and group: participants, candidates, ratings per candidate, "
                   "responses, sufficient (the analysis's minimums met) and missing (what "
                   "is needed, in words).",
    "sufficiency_rules": "The minimums the sufficiency rows were checked against.",
    "cell_means": "Observed mean score per question, group and level of a factor (method; "
                  "in_group: own culture / other cultures, left out where every response "
                  "compares candidates of one style culture) with participant-bootstrap "
                  "ci_low/ci_high (descriptive) and n_participants.",
    "candidate_extremes": "Per question and group, the best- and worst-rated candidates: "
                          "end, rank, candidate_id, mean_score, n_ratings, method, "
                          "style_culture, content (title of the content photograph), metric "
                          "values; candidates tied across the two ends are at neither.",
    "software": "Versions of Python and the numerical libraries.",
    "configuration_summary": "What the report's appendix lists of the frozen configuration, "
                             "and live_edits: the changes made while live (null when the "
                             "configuration carries no such record).",
}

#: Replicates of the participant bootstrap behind the observed means' intervals:
#: descriptive intervals for a figure, where 400 replicates put the 2.5 and 97.5
#: percentiles within a few hundredths of their limit and cost a third of 1000.
DESCRIPTIVE_RESAMPLES = 400

#: Best and worst candidates shown per question and group.
EXTREMES_PER_END = 3


def describe(
    frame: pd.DataFrame,
    kept: pd.DataFrame,
    scored: pd.DataFrame,
    *,
    config: dict[str, Any],
    rules: DesignMinimums,
    rng: np.random.Generator,
    n_resamples: int,
    confidence_level: float,
) -> dict[str, Any]:
    """The descriptive parts of the results (keys of ``results.json``).

    Args:
        frame: Tidy frame before exclusions.
        kept: Rows after exclusions.
        scored: Analysed rows with a candidate and a score.
        config: Frozen study configuration (may be empty for a tidy file).
        rules: The analysis's minimums for inference, per group and question.
        rng: Random generator for the participant bootstrap of observed means.
        n_resamples: Bootstrap replicates.
        confidence_level: Interval level.

    Returns:
        ``questions``, ``groups``, ``design``, ``sufficiency``, ``cell_means``,
        ``candidate_extremes``, ``software``, ``configuration_summary`` and
        ``culture_names``.
    """
    # Only the columns used below: each groupby pass then copies a few columns,
    # not the whole tidy frame (a million rows in the benchmark).
    wanted = ["question_id", "question_kind", "group", "group_culture", "participant_id",
              "response_id", "candidate_id", "score", "method", "style_culture", "content_id",
              "style_id", "in_group", *tidy.metric_columns(scored)]
    scored = scored[[c for c in wanted if c in scored.columns]]
    return {
        "questions": _questions(frame, config),
        "groups": _groups(frame, kept, config),
        "design": {**_design(scored, config), "screens_per_participant": _screens(frame, scored)},
        "sufficiency": _sufficiency(scored, rules),
        "sufficiency_rules": {
            "min_participants": rules.min_participants,
            "min_candidates": rules.min_candidates,
            "min_ratings_per_candidate": rules.min_ratings_per_candidate,
        },
        "cell_means": _cell_means(scored, rng=rng, n_resamples=min(n_resamples, DESCRIPTIVE_RESAMPLES),
                                  level=confidence_level),
        "candidate_extremes": _candidate_extremes(scored, config),
        "software": software_versions(),
        "configuration_summary": _configuration_summary(config),
        "culture_names": culture_names(config),
    }


#: Study settings the appendix lists (the rest is in study_config.json).
_SETTINGS = ("title", "slug", "status", "languages", "default_language", "image_size", "seeds",
             "trials_per_participant", "session_timeout_minutes", "max_attention_failures",
             "config_hash", "live_at", "closed_at")


def _configuration_summary(config: dict[str, Any]) -> dict[str, Any]:
    """What the appendix shows of the frozen configuration, and the live-edit audit.

    ``live_edits`` is None when the configuration carries no audit (a tidy
    file, or a configuration exported before the audit existed), else the
    configuration's ``changes_while_live`` records (``changed_at,
    changed_by_name, target, field, before, after``), oldest first.
    """
    study = config.get("study") or {}
    return {
        "study": {k: study[k] for k in _SETTINGS if study.get(k) not in (None, "", [])},
        "groups": [
            {"name": g.get("name") or g.get("slug"), "culture": g.get("culture__slug") or "",
             "quota": g.get("quota"), "eligibility": g.get("eligibility")}
            for g in config.get("participant_groups", [])
        ],
        "live_edits": config.get("changes_while_live"),
    }


def culture_names(config: dict[str, Any]) -> dict[str, str]:
    """Culture slug -> its configured name, from the groups and the style images."""
    rows = [*config.get("participant_groups", []), *config.get("style_images", [])]
    return {str(r["culture__slug"]): str(r["culture__name"]) for r in rows
            if r.get("culture__slug") and r.get("culture__name")}


def question_numbers(frame: pd.DataFrame, config: dict[str, Any]) -> dict[Any, int]:
    """Question id -> its number in the report (1, 2, ...).

    With a configuration, the question's position in the study, as participants
    meet them and as the admin labels them (``order``, then id); questions the
    configuration does not list follow. From a tidy file alone, the order of ids.
    """
    ids = [_plain(q) for q in frame["question_id"].dropna().unique()] if len(frame) else []
    configured = sorted(config.get("questions", []), key=lambda q: (
        q.get("order") or 0, str(type(q.get("id"))), q.get("id")))
    numbers = {q.get("id"): n for n, q in enumerate(configured, start=1)}
    extra = sorted((q for q in ids if q not in numbers), key=lambda q: (str(type(q)), q))
    numbers.update({q: n for n, q in enumerate(extra, start=len(numbers) + 1)})
    return {q: numbers[q] for q in ids}


def _questions(frame: pd.DataFrame, config: dict[str, Any]) -> list[dict[str, Any]]:
    configured = {q.get("id"): q for q in config.get("questions", [])}
    rows = []
    if not len(frame):
        return rows
    numbers = question_numbers(frame, config)
    first = frame.drop_duplicates("question_id").dropna(subset=["question_id"])
    for row in first.itertuples(index=False):
        qid = _plain(row.question_id)
        known = configured.get(qid, {})
        texts = known.get("texts") or {}
        text = texts.get("en") or next(iter(texts.values()), "") if texts else ""
        scale = getattr(row, "scale_points", None)
        kind = str(row.question_kind)
        # How the pairs were chosen: known from the configuration only (None from a tidy file).
        design = known.get("pair_design") if kind == "2afc" else None
        rows.append({
            "id": qid,
            "number": numbers[qid],
            "kind": kind,
            "dimension": str(row.dimension) if pd.notna(row.dimension) else "",
            "scale_points": int(scale) if scale is not None and pd.notna(scale) else None,
            "text": str(text),
            "pair_design": design or None,
            "min_exposure": int(known.get("min_exposure") or 0) if design == "adaptive" else None,
        })
    return sorted(rows, key=lambda q: q["number"])


def group_names(frame: pd.DataFrame, config: dict[str, Any]) -> dict[str, str]:
    """Group slug -> the name the report uses (configured, else the slug in words)."""
    configured = {g.get("slug"): g.get("name") for g in config.get("participant_groups", [])}
    slugs = frame["group"].dropna().unique() if len(frame) else []
    return {str(slug): str(configured.get(slug)
                           or str(slug).replace("-", " ").replace("_", " ").title())
            for slug in slugs}


def _groups(frame: pd.DataFrame, kept: pd.DataFrame, config: dict[str, Any]) -> list[dict[str, Any]]:
    configured = {g.get("slug"): g for g in config.get("participant_groups", [])}
    if not len(frame):
        return []
    names = group_names(frame, config)
    recruited = frame.groupby("group", observed=True)["participant_id"].nunique()
    analysed = kept.groupby("group", observed=True)["participant_id"].nunique()
    cultures = frame.groupby("group", observed=True)["group_culture"].first() \
        if "group_culture" in frame.columns else pd.Series(dtype=object)
    rows = []
    for slug in sorted(recruited.index, key=str):
        known = configured.get(slug, {})
        culture = cultures.get(slug, "")
        rows.append({
            "slug": str(slug),
            "name": names[str(slug)],
            "culture": "" if culture is None or pd.isna(culture) else str(culture),
            "quota": known.get("quota"),
            "recruited": int(recruited.get(slug, 0)),
            "analysed": int(analysed.get(slug, 0)),
        })
    return rows


def _design(scored: pd.DataFrame, config: dict[str, Any]) -> dict[str, Any]:
    methods = config.get("methods") or [
        {"label": str(m), "method": str(m), "params": {}, "family": ""}
        for m in sorted(scored["method"].dropna().unique(), key=str)
    ] if len(scored) else config.get("methods", [])
    cultures = (scored.drop_duplicates("style_id").groupby("style_culture", observed=True).size()
                if len(scored) else pd.Series(dtype=int))
    per_participant = (scored.drop_duplicates("response_id")
                       .groupby(["question_id", "participant_id"], observed=True).size()
                       .groupby("question_id").median() if len(scored) else pd.Series(dtype=float))
    study = config.get("study", {})
    generated = config.get("candidates")
    return {
        "n_generated": (sum(1 for c in generated if c.get("status", "done") == "done")
                        if isinstance(generated, list) else None),
        "n_candidates": int(scored["candidate_id"].nunique()) if len(scored) else 0,
        "n_contents": int(scored["content_id"].nunique()) if len(scored) else 0,
        "n_styles": int(scored["style_id"].nunique()) if len(scored) else 0,
        "styles_per_culture": {str(k): int(v) for k, v in cultures.items()},
        "methods": [
            {"label": m.get("label", ""), "method": m.get("method", ""),
             "params": m.get("params") or {}, "family": m.get("family") or "",
             **_used(config, m.get("id"))}
            for m in methods
        ],
        "seeds": study.get("seeds"),
        "image_size": study.get("image_size"),
        "trials_per_participant": study.get("trials_per_participant"),
        "responses_per_participant": {str(_plain(k)): float(v) for k, v in per_participant.items()},
        "metrics_versions": config.get("metrics", []),
    }


def _used(config: dict[str, Any], method_config_id: Any) -> dict[str, list]:
    """What a method's finished candidates record in their provenance: the weight families
    (``weights_used``), layer lists (``levels_used``) and departures from the published
    method they ran with. A configuration that leaves the weights to the method's default
    names no family; the candidates do."""
    weights, levels, departures = [], [], []
    for c in config.get("candidates") or []:
        if c.get("method_config_id") != method_config_id or c.get("status", "done") != "done":
            continue
        provenance = c.get("provenance") or {}
        for found, value in ((weights, provenance.get("family")), (levels, provenance.get("levels")),
                             (departures, provenance.get("departs_from_paper"))):
            if value and value not in found:
                found.append(value)
    return {"weights_used": sorted(weights), "levels_used": levels, "departs_from_paper": departures}


def _screens(frame: pd.DataFrame, scored: pd.DataFrame) -> dict[str, list[float]]:
    """Screens each analysed participant was shown, by kind: ``[min, median, max]`` over
    participants (kinds nobody saw are left out). The configured number of trials is a
    request; sessions can end up with fewer or more screens."""
    if not len(scored):
        return {}
    shown = frame[frame["participant_id"].isin(scored["participant_id"].unique())]
    practice = shown["is_practice"].fillna(False).astype(bool)
    attention = shown["attention_kind"].fillna("").astype(str) != ""
    out = {}
    for kind, rows in (("rated", shown[~practice & ~attention]), ("practice", shown[practice]),
                       ("attention", shown[~practice & attention])):
        per = (rows.groupby("participant_id")["trial_id"].nunique()
               .reindex(shown["participant_id"].unique(), fill_value=0))
        if per.any():
            out[kind] = [float(per.min()), float(per.median()), float(per.max())]
    return out


def _sufficiency(scored: pd.DataFrame, rules: DesignMinimums) -> list[dict[str, Any]]:
    """Counts per question x group, and what is missing to reach the analysis's minimums
    (:func:`studies.analysis.guards.design_counts`, in the reader's words)."""
    if not len(scored):
        return []
    counts = design_counts(scored, rules)
    responses = scored.groupby(["question_id", "group"], observed=True, sort=True)[
        "response_id"].nunique()
    return [{
        "question": _plain(row.question_id), "group": str(row.group),
        "n_participants": int(row.n_participants), "n_candidates": int(row.n_candidates),
        "ratings_per_candidate": float(row.ratings_per_candidate),
        "n_responses": int(responses.loc[(row.question_id, row.group)]),
        "sufficient": not row.shortfalls, "missing": [s.needed() for s in row.shortfalls],
    } for row in counts.itertuples(index=False)]


def _cell_means(
    scored: pd.DataFrame, *, rng: np.random.Generator, n_resamples: int, level: float
) -> list[dict[str, Any]]:
    """Observed mean score per question x group x (method | in-group), participant bootstrap.

    Rows: ``question, group, factor ("method" or "in_group"), level, estimate,
    ci_low, ci_high, n_participants``.
    """
    rows: list[dict[str, Any]] = []
    tail = (1.0 - level) / 2.0 * 100.0
    factors = {"method": lambda p: p["method"].astype(str)}
    if "in_group" in scored.columns and scored["group_culture"].fillna("").astype(str).ne("").any():
        factors["in_group"] = lambda p: np.where(p["in_group"].fillna(False).astype(bool),
                                                 "own culture", "other cultures")
    for (qid, group), part in scored.groupby(["question_id", "group"], observed=True, sort=True):
        slim = part[["participant_id", "score"]]
        weights = None  # one draw of participants for both factors (the same people)
        for factor, levels in factors.items():
            if factor == "in_group" and one_culture_per_response(part):
                continue
            table = correlation.ScoreTable.from_frame(slim.assign(_cell=levels(part)),
                                                      candidate="_cell")
            if table.counts.size == 0:
                continue
            if weights is None:
                weights = correlation.bootstrap_weights(len(table.participants), n_resamples, rng)
            point = table.means()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                low, high = np.nanpercentile(table.means(weights), [tail, 100 - tail], axis=0)
            for key, m, lo, hi in zip(table.candidates, point, low, high):
                rows.append({"question": _plain(qid), "group": str(group), "factor": factor,
                             "level": str(key), "estimate": _finite(m), "ci_low": _finite(lo),
                             "ci_high": _finite(hi), "n_participants": len(table.participants)})
    return rows


def one_culture_per_response(part: pd.DataFrame) -> bool:
    """Every response compares candidates of one style culture (2AFC pairs share their style):
    their scores are relative to each other, so own-culture and other-culture styles both
    average one half and comparing them says nothing."""
    per_response = part.groupby("response_id")["style_culture"]
    return bool((per_response.size() > 1).all() and (per_response.nunique() == 1).all())


def _candidate_extremes(scored: pd.DataFrame, config: dict[str, Any]) -> list[dict[str, Any]]:
    """Best- and worst-rated candidates per question x group (mean score, n ratings).

    The two ends never share a mean: candidates tied across them are at neither end, so
    with many ties fewer (or no) candidates are shown."""
    rows: list[dict[str, Any]] = []
    if not len(scored):
        return rows
    titles = {c.get("id"): c.get("title") for c in config.get("content_images", [])}
    metrics = tidy.metric_columns(scored)
    info = scored.groupby("candidate_id")[["method", "style_culture", "content_id", "style_id",
                                           *metrics]].first()
    for (qid, group), part in scored.groupby(["question_id", "group"], observed=True, sort=True):
        means = part.groupby("candidate_id")["score"].agg(["mean", "size"])
        # Rank only candidates rated more than once when there are enough of them:
        # a single rating puts a candidate at either end by chance.
        multiple = means[means["size"] >= 2]
        if len(multiple) >= 2 * EXTREMES_PER_END:
            means = multiple
        ordered = means.sort_values(["mean", "size"], ascending=[False, False])
        n = min(EXTREMES_PER_END, len(ordered) // 2)
        best, worst = ordered.head(n), ordered.tail(n).iloc[::-1]
        tied = set(best["mean"]) & set(worst["mean"])
        for end, chosen in (("best", best), ("worst", worst)):
            chosen = chosen[~chosen["mean"].isin(tied)]
            for rank, (cid, row) in enumerate(chosen.iterrows(), start=1):
                meta = info.loc[cid]
                rows.append({
                    "question": _plain(qid), "group": str(group), "end": end, "rank": rank,
                    "candidate_id": _plain(cid), "mean_score": float(row["mean"]),
                    "n_ratings": int(row["size"]), "method": str(meta["method"]),
                    "style_culture": str(meta["style_culture"]),
                    "content": str(titles.get(_plain(meta["content_id"]))
                                   or f"content {_plain(meta['content_id'])}"),
                    "metrics": {m: _finite(meta[m]) for m in metrics},
                })
    return rows


def software_versions() -> dict[str, str]:
    """Versions of the interpreter and the numerical libraries the analysis used."""
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for name in ("stylestudy", "numpy", "scipy", "pandas", "statsmodels", "matplotlib",
                 "krippendorff"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return versions


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars (JSON keys and equality with config ids)."""
    return value.item() if isinstance(value, np.generic) else value
