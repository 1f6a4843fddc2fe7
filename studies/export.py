"""The one place where database rows become analysis data.

``study_frame`` builds the tidy response frame described in
``studies.analysis.tidy.COLUMNS`` with a fixed number of queries (no per-row
queries); ``study_set_metrics`` the table of set metrics (FID, KID, ArtFID)
per method and style culture; ``study_configuration`` gathers the frozen study
configuration and every candidate's provenance. Raw recruiter ids are not
stored, and only their keyed hash is exported. Researchers' preview sessions
are never exported.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from studies.analysis.tidy import (
    BACKGROUND_PREFIX,
    COLUMNS,
    METRIC_PREFIX,
    SET_METRIC_COLUMNS,
)
from studies.models import (
    BackgroundQuestion,
    Candidate,
    ContentImage,
    LiveEdit,
    MethodConfig,
    MetricValue,
    Participant,
    ParticipantGroup,
    Question,
    Response,
    SetMetricValue,
    Study,
    StyleImage,
    TrialItem,
)

_ITEM_FIELDS = {
    "id": "item_id",
    "slot": "slot",
    "candidate_id": "candidate_id",
    "trial_id": "trial_id",
    "trial__position": "trial_position",
    "trial__is_practice": "is_practice",
    "trial__attention_kind": "attention_kind",
    "trial__pair_selection": "pair_selection",
    "trial__question_id": "question_id",
    "trial__participant_id": "participant_id",
    "trial__response__id": "response_id",
    "trial__response__value": "value",
    "trial__response__choice_id": "choice_item_id",
    "trial__response__ranking": "ranking",
    "trial__response__client_rt_ms": "client_rt_ms",
    "trial__response__server_rt_ms": "server_rt_ms",
    "trial__response__passed_attention": "passed_attention",
    "trial__response__submitted_at": "submitted_at",
}


def _frame(queryset: Any, fields: dict[str, str]) -> pd.DataFrame:
    rows = list(queryset.values_list(*fields))
    return pd.DataFrame(rows, columns=list(fields.values()))


def study_frame(study_id: int) -> pd.DataFrame:
    """The tidy frame of one study: one row per response x shown item.

    Args:
        study_id: Primary key of the study.

    Returns:
        DataFrame with the columns of ``studies.analysis.tidy.COLUMNS`` plus
        ``metric__<name>`` and ``bg__<key>`` columns. Empty (with columns) when
        no responses exist.

    Raises:
        Study.DoesNotExist: No such study.
    """
    Study.objects.only("id").get(pk=study_id)
    items = _frame(
        TrialItem.objects.filter(
            trial__participant__study_id=study_id, trial__participant__is_preview=False,
            trial__response__isnull=False,
        ),
        _ITEM_FIELDS,
    )
    # Responses to trials without any item (e.g. an instructed-response check).
    bare = _bare_responses(study_id)
    if len(bare):
        # All-NA columns (e.g. no candidate) would make concat guess dtypes.
        frame = pd.concat([items, bare.dropna(axis=1, how="all")], ignore_index=True)
    else:
        frame = items

    participants = _frame(
        Participant.objects.counted().filter(study_id=study_id),
        {
            "id": "participant_id",
            "external_id_hash": "participant_hash",
            "status": "participant_status",
            "language": "language",
            "attention_failures": "attention_failures",
            "group__slug": "group",
            "group__culture__slug": "group_culture",
            "background": "background",
        },
    )
    questions = _frame(
        Question.objects.filter(study_id=study_id),
        {"id": "question_id", "kind": "question_kind", "dimension": "dimension",
         "scale_points": "scale_points"},
    )
    candidates = _frame(
        Candidate.objects.filter(study_id=study_id),
        {
            "id": "candidate_id",
            "method_config__label": "method",
            "method_config__method": "method_name",
            "content_id": "content_id",
            "content__category": "content_category",
            "style_id": "style_id",
            "style__culture__slug": "style_culture",
            "seed": "seed",
        },
    )
    frame = (
        frame.merge(participants, on="participant_id", how="left")
        .merge(questions, on="question_id", how="left")
        .merge(candidates, on="candidate_id", how="left")
    )
    frame = _derive(frame)
    frame = frame.join(_background_columns(frame.pop("background"), study_id))
    frame = frame.merge(_metric_columns(study_id), on="candidate_id", how="left")
    ordered = [c for c in COLUMNS if c in frame.columns]
    extra = sorted(c for c in frame.columns if c.startswith((METRIC_PREFIX, BACKGROUND_PREFIX)))
    return frame[ordered + extra].sort_values(
        ["participant_id", "trial_position", "slot"], na_position="last"
    ).reset_index(drop=True)


def _bare_responses(study_id: int) -> pd.DataFrame:
    fields = {
        "trial_id": "trial_id",
        "trial__position": "trial_position",
        "trial__is_practice": "is_practice",
        "trial__attention_kind": "attention_kind",
        "trial__pair_selection": "pair_selection",
        "trial__question_id": "question_id",
        "trial__participant_id": "participant_id",
        "id": "response_id",
        "value": "value",
        "choice_id": "choice_item_id",
        "ranking": "ranking",
        "client_rt_ms": "client_rt_ms",
        "server_rt_ms": "server_rt_ms",
        "passed_attention": "passed_attention",
        "submitted_at": "submitted_at",
    }
    qs = Response.objects.filter(
        trial__participant__study_id=study_id, trial__participant__is_preview=False, trial__items__isnull=True
    )
    return _frame(qs, fields)


def _derive(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``n_items, chosen, rank, score, in_group, rt_ms`` and tidy dtypes."""
    frame = frame.copy()
    frame["n_items"] = frame.groupby("trial_id")["slot"].transform("count").astype("Int64")
    kind = frame["question_kind"]
    two_afc = kind == Question.Kind.TWO_AFC
    ranking = kind == Question.Kind.RANKING
    likert = kind == Question.Kind.LIKERT
    chosen = pd.Series(pd.NA, index=frame.index, dtype="boolean")
    chosen[two_afc] = (frame.loc[two_afc, "choice_item_id"] == frame.loc[two_afc, "item_id"])
    frame["chosen"] = chosen
    ranks = [
        _rank_of(slot, order) if is_rank else np.nan
        for slot, order, is_rank in zip(frame["slot"], frame["ranking"], ranking)
    ]
    frame["rank"] = pd.array(ranks, dtype="Float64").astype("Int64")
    score = pd.Series(np.nan, index=frame.index, dtype="float64")
    score[likert] = frame.loc[likert, "value"].astype("float64")
    score[two_afc] = frame.loc[two_afc, "chosen"].astype("float64")
    n = frame["n_items"].astype("float64")
    rank = frame["rank"].astype("float64")
    score[ranking] = ((n - rank) / (n - 1.0))[ranking]
    frame["score"] = score
    frame["in_group"] = (
        frame["style_culture"].notna() & (frame["style_culture"] == frame["group_culture"])
    )
    frame["rt_ms"] = frame["client_rt_ms"].astype("float64").fillna(
        frame["server_rt_ms"].astype("float64")
    )
    frame["value"] = frame["value"].astype("Int64")
    for col in ("candidate_id", "content_id", "style_id", "seed", "slot", "client_rt_ms",
                "server_rt_ms", "scale_points"):
        frame[col] = frame[col].astype("Int64")
    # Questions stored before other formats left the scale size empty still carry the default.
    frame["scale_points"] = frame["scale_points"].mask(~likert)
    frame["passed_attention"] = frame["passed_attention"].astype("boolean")
    frame["attention_kind"] = frame["attention_kind"].fillna("")
    frame["group_culture"] = frame["group_culture"].fillna("")
    frame["participant_hash"] = frame["participant_hash"].fillna("")
    return frame.drop(columns=["item_id", "choice_item_id", "ranking"])


def _rank_of(slot: object, order: object) -> float:
    """1-based position of ``slot`` in a best-to-worst list of slots."""
    if not isinstance(order, list) or slot is None or pd.isna(slot):
        return np.nan
    try:
        return float(order.index(int(slot)) + 1)
    except ValueError:
        return np.nan


def _background_columns(background: pd.Series, study_id: int) -> pd.DataFrame:
    keys = list(
        BackgroundQuestion.objects.filter(study_id=study_id).values_list("key", flat=True)
    )
    seen = {k for answers in background.dropna() for k in (answers or {})}
    columns = {}
    for key in keys + sorted(seen - set(keys)):
        values = [
            _flatten((answers or {}).get(key)) if isinstance(answers, dict) else None
            for answers in background
        ]
        columns[f"{BACKGROUND_PREFIX}{key}"] = pd.Series(values, index=background.index, dtype="string")
    return pd.DataFrame(columns, index=background.index)


def _flatten(answer: object) -> str | None:
    if answer is None:
        return None
    if isinstance(answer, list | tuple):
        return ";".join(str(a) for a in answer)
    return str(answer)


def _metric_columns(study_id: int) -> pd.DataFrame:
    """Latest version of each metric per candidate, one column per metric name."""
    values = _frame(
        MetricValue.objects.filter(candidate__study_id=study_id),
        {"candidate_id": "candidate_id", "name": "name", "version": "version",
         "value": "value", "computed_at": "computed_at"},
    )
    if values.empty:
        return pd.DataFrame({"candidate_id": pd.Series(dtype="Int64")})
    values = values.sort_values("computed_at").drop_duplicates(["candidate_id", "name"], keep="last")
    wide = values.pivot(index="candidate_id", columns="name", values="value").astype("float64")
    wide.columns = [f"{METRIC_PREFIX}{name}" for name in wide.columns]
    wide = wide.reset_index()
    wide["candidate_id"] = wide["candidate_id"].astype("Int64")
    return wide


def study_set_metrics(study_id: int) -> pd.DataFrame:
    """The set metrics of one study: one row per method x style culture x metric.

    Only the latest version of each metric is kept (as for per-candidate
    metrics); a value that could not be computed is a row with an empty
    ``value`` and its ``unavailable_reason``.

    Returns:
        DataFrame with the columns of ``studies.analysis.tidy.SET_METRIC_COLUMNS``,
        sorted by method, style culture and metric. Empty (with columns) when
        no set metric was computed.

    Raises:
        Study.DoesNotExist: No such study.
    """
    Study.objects.only("id").get(pk=study_id)
    values = _frame(
        SetMetricValue.objects.filter(study_id=study_id),
        {"method_config__label": "method", "method_config__method": "method_name",
         "culture__slug": "style_culture", "name": "metric", "version": "version", "value": "value",
         "n_images": "n_candidates", "unavailable_reason": "unavailable_reason",
         "computed_at": "computed_at"},
    )
    values = values.sort_values("computed_at").drop_duplicates(
        ["method", "style_culture", "metric"], keep="last")
    values = values.astype({"value": "float64", "n_candidates": "Int64"})
    values["computed_at"] = pd.to_datetime(values["computed_at"], utc=True)
    return values.sort_values(["method", "style_culture", "metric"])[
        list(SET_METRIC_COLUMNS)].reset_index(drop=True)


# --------------------------------------------------------------------------
# Frozen configuration and provenance
# --------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def study_configuration(study_id: int) -> dict[str, Any]:
    """The study's frozen configuration and every candidate's provenance, as JSON data.

    Includes study settings, culture tags, participant groups (eligibility and
    quotas), background and rating questions, method configurations, image
    metadata (hash, source, licence) and candidates (inputs, seed, status,
    provenance). Participant data is not included.

    Raises:
        Study.DoesNotExist: No such study.
    """
    study = Study.objects.get(pk=study_id)
    study_fields = [
        "id", "title", "slug", "description", "status", "languages", "default_language",
        "texts", "image_size", "seeds", "trials_per_participant", "session_timeout_minutes",
        "max_attention_failures", "config_hash", "created_at", "live_at", "closed_at",
    ]
    config: dict[str, Any] = {"study": {f: getattr(study, f) for f in study_fields}}
    config["participant_groups"] = list(
        ParticipantGroup.objects.filter(study_id=study_id).values(
            "id", "slug", "name", "culture__slug", "culture__name", "eligibility", "quota"
        )
    )
    config["background_questions"] = list(
        BackgroundQuestion.objects.filter(study_id=study_id).values(
            "id", "key", "kind", "texts", "choices", "required", "order"
        )
    )
    config["questions"] = list(
        Question.objects.filter(study_id=study_id).values(
            "id", "kind", "dimension", "texts", "scale_points", "scale_labels", "n_candidates",
            "show_style", "show_content", "order", "pair_design", "min_exposure",
        )
    )
    config["methods"] = list(
        MethodConfig.objects.filter(study_id=study_id).values(
            "id", "label", "method", "params", "family", "training_run_id"
        )
    )
    image_fields = ("id", "sha256", "width", "height", "title", "source", "license", "original_filename")
    config["content_images"] = list(
        ContentImage.objects.filter(study_id=study_id).values(*image_fields, "category")
    )
    config["style_images"] = list(
        StyleImage.objects.filter(study_id=study_id).values(
            *image_fields, "culture__slug", "culture__name", "artist", "year"
        )
    )
    config["candidates"] = list(
        Candidate.objects.filter(study_id=study_id).values(
            "id", "content_id", "style_id", "method_config_id", "seed", "status", "image",
            "provenance", "attempts", "seconds", "created_at", "finished_at",
        )
    )
    # Changes made while live (wording, redirects, quotas, closing date): who, when, before/after.
    config["changes_while_live"] = list(
        LiveEdit.objects.filter(study_id=study_id).order_by("changed_at", "id").values(
            "changed_at", "changed_by_name", "target", "field", "before", "after"
        )
    )
    config["metrics"] = list(
        MetricValue.objects.filter(candidate__study_id=study_id)
        .values("name", "version").distinct().order_by("name", "version")
    )
    return _jsonable(config)
