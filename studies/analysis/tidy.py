"""The tidy response frame: its columns, and exclusion rules applied in the open.

One row per response x shown candidate: a Likert response has one row, a 2AFC
response two (``chosen`` marks the picked one), a ranking one row per ranked
candidate (``rank`` 1 = best). ``score`` puts all kinds on a higher-is-better
scale: the Likert value, 1/0 for chosen/not chosen, and ``(n - rank)/(n - 1)``
for rankings. Metric values are columns ``metric__<name>``; metrics of a whole
set of candidates (FID, KID, ArtFID) are a table of their own
(:data:`SET_METRIC_COLUMNS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

METRIC_PREFIX = "metric__"
BACKGROUND_PREFIX = "bg__"

#: What a row of the tidy frame (``responses.csv`` and ``.parquet``) is: the codebook's
#: description of the file.
FRAME_DESCRIPTION = (
    "responses.csv/.parquet: one row per response x shown candidate. A Likert response has "
    "one row, a 2AFC response two (chosen marks the picked one), a ranking one row per ranked "
    "candidate (rank 1 = best), and a response to a screen without images (e.g. an "
    "instructed-response attention check) one row without a candidate. score puts every kind "
    "on one higher-is-better scale. metric__<name> columns hold the candidate's automatic "
    "metrics, bg__<key> columns the participant's background answers; set metrics (FID, KID, "
    "ArtFID) are in set_metrics.csv/.parquet. Excluded rows are kept, their exclusion column "
    "naming the rule that removed them. The columns are defined in studies/analysis/tidy.py."
)

#: Column -> (type, description) of the tidy frame; prefixed columns are described
#: by their prefix. The report's JSON codebook is generated from this table.
COLUMNS: dict[str, tuple[str, str]] = {
    "response_id": ("integer", "Database id of the response."),
    "trial_id": ("integer", "Database id of the trial (one screen)."),
    "participant_id": ("integer", "Database id of the participant's session (pseudonymous)."),
    "participant_hash": (
        "string",
        "Keyed hash of the recruiter id (HMAC); raw recruiter ids are never exported.",
    ),
    "participant_status": (
        "string", "Session status: consented, in_progress, completed, screened_out, expired, excluded."
    ),
    "language": ("string", "Language the participant used."),
    "attention_failures": ("integer", "Failed attention checks recorded for the participant."),
    "group": ("string", "Participant group slug (cultural group)."),
    "group_culture": ("string", "Style culture slug that counts as the group's own; empty if none."),
    "question_id": ("integer", "Database id of the question."),
    "question_kind": ("string", "likert, 2afc or ranking."),
    "dimension": ("string", "Rated dimension, e.g. style_fidelity, overall."),
    "scale_points": ("integer", "Number of Likert scale points; empty for other kinds."),
    "trial_position": ("integer", "Position of the trial in the participant's sequence (0-based)."),
    "is_practice": ("boolean", "Practice trial (never analysed)."),
    "attention_kind": ("string", "Attention-check kind, empty for ordinary trials."),
    "passed_attention": ("boolean", "Outcome of an attention check; empty for ordinary trials."),
    "pair_selection": (
        "string",
        "Adaptive 2AFC: 'exposure' if the pair was chosen to show every candidate the minimum number of "
        "times, 'information' if as the most informative pair; empty otherwise.",
    ),
    "slot": ("integer", "Display position of the item within the trial (0 = first/left)."),
    "n_items": ("integer", "Number of candidates shown in the trial."),
    "candidate_id": ("integer", "Database id of the generated image."),
    "method": ("string", "Method configuration label, e.g. 'WCT alpha=0.6'."),
    "method_name": ("string", "stylecore method name, e.g. wct, adain."),
    "content_id": ("integer", "Database id of the content photograph."),
    "content_category": ("string", "Category of the content photograph."),
    "style_id": ("integer", "Database id of the style artwork."),
    "style_culture": ("string", "Culture tag slug of the style artwork."),
    "seed": ("integer", "Random seed of the candidate."),
    "value": ("integer", "Likert rating (1..scale_points); empty for other kinds."),
    "chosen": ("boolean", "2AFC: this item was chosen; empty for other kinds."),
    "rank": ("integer", "Ranking: position given to this item, 1 = best; empty otherwise."),
    "score": (
        "number",
        "Higher-is-better score: Likert value; 2AFC 1 if chosen else 0; ranking (n-rank)/(n-1).",
    ),
    "in_group": ("boolean", "The style culture is the participant group's own culture."),
    "client_rt_ms": ("integer", "Response time measured in the browser (ms)."),
    "server_rt_ms": ("integer", "Response time measured by the server (ms)."),
    "rt_ms": ("number", "Response time used for exclusion: client time, else server time (ms)."),
    "submitted_at": ("datetime", "When the response was stored (UTC)."),
    "exclusion": ("string", "Exclusion rule that removed the row from analysis; empty if analysed."),
}

PREFIXED: dict[str, tuple[str, str]] = {
    METRIC_PREFIX: ("number", "Automatic metric value of the candidate (latest version); empty when unavailable."),
    BACKGROUND_PREFIX: ("string", "Background questionnaire answer (multiple choices joined by ';')."),
}


#: Column -> (type, description) of the set-metric table (``set_metrics.csv`` and
#: ``.parquet``): metrics of a whole set of candidates (FID, KID, ArtFID), one row
#: per method x style culture x metric. They describe no single candidate, so they
#: are not columns of the tidy frame; ``method`` and ``style_culture`` join the two.
SET_METRIC_COLUMNS: dict[str, tuple[str, str]] = {
    "method": ("string", "Method configuration label (the tidy frame's method)."),
    "method_name": ("string", "stylecore method name, e.g. wct, adain."),
    "style_culture": (
        "string",
        "Culture tag slug (the tidy frame's style_culture): the set is every finished candidate "
        "of the method whose style has this culture, compared with this culture's style images.",
    ),
    "metric": ("string", "Set metric name, e.g. fid, kid, artfid (lower is closer to the style images)."),
    "version": ("string", "Version of the metric's implementation and weights."),
    "value": ("number", "The metric over the whole set (latest version); empty when unavailable."),
    "n_candidates": ("integer", "Candidates in the set when the value was computed."),
    "unavailable_reason": ("string", "Why the value is empty; empty when there is a value."),
    "computed_at": ("datetime", "When the value was computed (UTC)."),
}


def set_metric_codebook() -> list[dict[str, str]]:
    """A codebook entry for every column of the set-metric table, in column order."""
    return [{"name": name, "type": kind, "description": text}
            for name, (kind, text) in SET_METRIC_COLUMNS.items()]


def describe_column(name: str) -> dict[str, str]:
    """Codebook entry for one column of the tidy frame.

    Raises:
        KeyError: The column is not part of the tidy frame's schema.
    """
    if name in COLUMNS:
        kind, text = COLUMNS[name]
        return {"name": name, "type": kind, "description": text}
    for prefix, (kind, text) in PREFIXED.items():
        if name.startswith(prefix):
            return {"name": name, "type": kind, "description": f"{text} ({name[len(prefix):]})"}
    raise KeyError(f"column {name!r} is not described in the tidy-frame codebook")


def codebook(frame: pd.DataFrame) -> list[dict[str, str]]:
    """A codebook entry for every column of ``frame``, in column order."""
    return [describe_column(str(c)) for c in frame.columns]


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """Names of the metric columns of ``frame``."""
    return [c for c in frame.columns if str(c).startswith(METRIC_PREFIX)]


@dataclass
class ExclusionRules:
    """Which rows and participants are left out of the analysis.

    Attributes:
        drop_practice: Leave out practice trials.
        drop_attention_trials: Leave out attention-check trials themselves (they
            measure attentiveness, not the stimuli).
        max_attention_failures: Exclude participants who failed more checks
            than this; ``None`` keeps everyone.
        min_rt_ms: Exclude responses faster than this (ms); ``None`` disables.
        require_complete: Exclude participants whose session is not completed.
    """

    drop_practice: bool = True
    drop_attention_trials: bool = True
    max_attention_failures: int | None = 0
    min_rt_ms: float | None = 300.0
    require_complete: bool = True


@dataclass
class ExclusionLog:
    """What each rule removed; nothing is removed silently.

    Attributes:
        rules: The rules applied.
        steps: One row per rule in order: ``rule, rows_removed, responses_removed,
            participants_removed, rows_left``.
        excluded_participants: Participant id -> reason.
        n_rows_in: Rows before exclusions.
        n_rows_out: Rows after exclusions.
        reasons: Per input row (same index), the rule that removed it, or "".
    """

    rules: ExclusionRules
    steps: pd.DataFrame
    excluded_participants: dict[object, str] = field(default_factory=dict)
    n_rows_in: int = 0
    n_rows_out: int = 0
    reasons: pd.Series | None = field(default=None, repr=False)

    def summary(self) -> str:
        return (
            f"Exclusions: {self.n_rows_in} rows in, {self.n_rows_out} out, "
            f"{len(self.excluded_participants)} participants excluded\n"
            + self.steps.to_string(index=False)
        )


def apply_exclusions(
    frame: pd.DataFrame, rules: ExclusionRules | None = None
) -> tuple[pd.DataFrame, ExclusionLog]:
    """Apply ``rules`` to the tidy frame and record what each one removed.

    Participant-level rules (attention failures, incomplete sessions) are
    applied before response-level ones, so each removed row is counted once
    under the first rule that removed it.

    Args:
        frame: Tidy frame (see :data:`COLUMNS`).
        rules: Exclusion rules; defaults to :class:`ExclusionRules()`.

    Returns:
        ``(kept, log)``.

    Raises:
        KeyError: A column a rule needs is missing.
        ValueError: The index of ``frame`` has duplicates.
    """
    rules = rules or ExclusionRules()
    if not frame.index.is_unique:
        raise ValueError("frame index must be unique to record exclusions per row; reset it")
    n_in = len(frame)
    steps = []
    excluded: dict[object, str] = {}
    kept = frame
    reasons = pd.Series("", index=frame.index, dtype=object)

    def record(rule: str, mask: pd.Series) -> None:
        nonlocal kept
        mask = mask.fillna(False).astype(bool)
        removed = kept[mask]
        reasons[removed.index] = rule
        steps.append({
            "rule": rule,
            "rows_removed": int(mask.sum()),
            "responses_removed": int(removed["response_id"].nunique()),
            # Participants with no rows left after this rule.
            "participants_removed": len(
                set(removed["participant_id"].unique())
                - set(kept.loc[~mask, "participant_id"].unique())
            ),
            "rows_left": int((~mask).sum()),
        })
        kept = kept[~mask]

    if rules.max_attention_failures is not None:
        failures = _attention_failures(kept)
        bad = failures[failures > rules.max_attention_failures].index
        for pid in bad:
            excluded[pid] = f"failed {int(failures[pid])} attention check(s)"
        limit = rules.max_attention_failures
        record(
            "any failed attention check" if limit == 0 else
            "more than one failed attention check" if limit == 1 else
            f"more than {limit} failed attention checks",
            kept["participant_id"].isin(bad),
        )
    if rules.require_complete:
        incomplete = kept["participant_status"] != "completed"
        pairs = kept.loc[incomplete, ["participant_id", "participant_status"]].drop_duplicates()
        for pid, status in pairs.itertuples(index=False):
            excluded.setdefault(pid, f"session {status}, not completed")
        record("session not completed", incomplete)
    if rules.drop_practice:
        record("practice trial", kept["is_practice"].fillna(False).astype(bool))
    if rules.drop_attention_trials:
        record("attention-check trial", kept["attention_kind"].fillna("").astype(str) != "")
    if rules.min_rt_ms is not None:
        record(f"response faster than {rules.min_rt_ms:g} ms", kept["rt_ms"] < rules.min_rt_ms)
    log = ExclusionLog(rules, pd.DataFrame(steps), excluded, n_in, len(kept), reasons)
    return kept, log


def _attention_failures(frame: pd.DataFrame) -> pd.Series:
    """Failed checks per participant: the larger of the stored count and failed responses."""
    stored = frame.groupby("participant_id")["attention_failures"].max().fillna(0)
    if "passed_attention" in frame.columns:
        checks = frame[frame["passed_attention"].notna()].drop_duplicates("response_id")
        failed = (checks["passed_attention"] == False).groupby(checks["participant_id"]).sum()  # noqa: E712
        stored = pd.concat([stored, failed], axis=1).max(axis=1)
    return stored.fillna(0)


#: Columns a tidy file from elsewhere (``study_report --tidy``) must have,
#: besides at least one ``metric__<name>`` column.
REQUIRED_INPUT = (
    "participant_id", "group", "question_id", "question_kind", "candidate_id", "score",
    "method", "content_id", "style_id", "style_culture",
)
#: Needed only by some question kinds.
REQUIRED_BY_KIND = {"2afc": ("chosen", "n_items"), "ranking": ("rank", "n_items")}
#: Default of every other column when a tidy file lacks it (documented in the codebook).
INPUT_DEFAULTS: dict[str, str] = {
    "response_id": "Likert: one per row; 2AFC/ranking: trial_id if present, else consecutive "
                   "blocks of n_items rows of one participant and question",
    "trial_id": "response_id",
    "participant_hash": "empty",
    "participant_status": "completed",
    "language": "empty",
    "attention_failures": "0",
    "group_culture": "empty (no in-group contrast)",
    "dimension": "empty",
    "scale_points": "empty",
    "trial_position": "row order within the participant",
    "is_practice": "false",
    "attention_kind": "empty (no attention checks)",
    "passed_attention": "empty",
    "pair_selection": "empty (not recorded)",
    "slot": "row order within the response",
    "n_items": "1 for Likert",
    "value": "score for Likert",
    "chosen": "empty",
    "rank": "empty",
    "method_name": "method",
    "content_category": "empty",
    "seed": "empty",
    "in_group": "style_culture == group_culture",
    "client_rt_ms": "empty", "server_rt_ms": "empty",
    "rt_ms": "empty (the response-time exclusion then removes nothing)",
    "submitted_at": "empty",
}


def read_tidy(path: str) -> pd.DataFrame:
    """Read a tidy CSV or Parquet file (e.g. exported, or collected with jsPsych or
    oTree) and fill every optional column with its documented default.

    Raises:
        ValueError: The file lacks required columns, has no metric column, or
            an unknown question kind.
    """
    import numpy as np

    text = str(path)
    frame = pd.read_parquet(text) if text.endswith((".parquet", ".pq")) else pd.read_csv(text)
    missing = [c for c in REQUIRED_INPUT if c not in frame.columns]
    if missing:
        raise ValueError(f"{text}: missing required column(s) {', '.join(missing)}")
    if not metric_columns(frame):
        raise ValueError(f"{text}: no metric column (named {METRIC_PREFIX}<name>)")
    kinds = set(frame["question_kind"].astype(str))
    unknown = kinds - {"likert", "2afc", "ranking"}
    if unknown:
        raise ValueError(f"{text}: unknown question_kind {sorted(unknown)}; "
                         "expected likert, 2afc or ranking")
    for kind, columns in REQUIRED_BY_KIND.items():
        lacking = [c for c in columns if kind in kinds and c not in frame.columns]
        if lacking:
            raise ValueError(f"{text}: {kind} rows need column(s) {', '.join(lacking)}")
    frame = frame.reset_index(drop=True)
    likert = frame["question_kind"].astype(str).eq("likert").to_numpy()
    n = len(frame)
    if "n_items" not in frame.columns:
        frame["n_items"] = 1
    frame["n_items"] = frame["n_items"].fillna(1).astype(int)
    if "response_id" not in frame.columns:
        if "trial_id" in frame.columns:
            frame["response_id"] = frame["trial_id"]
        else:
            position = frame.groupby(["participant_id", "question_id"]).cumcount().to_numpy()
            block = position // frame["n_items"].to_numpy()
            keys = pd.MultiIndex.from_arrays([frame["participant_id"], frame["question_id"], block])
            ids = pd.factorize(keys)[0]
            frame["response_id"] = np.where(likert, n + np.arange(n), ids)
    frame["response_id"] = pd.factorize(frame["response_id"])[0]
    defaults = {
        "trial_id": frame["response_id"], "participant_hash": "", "participant_status": "completed",
        "language": "", "attention_failures": 0, "group_culture": "", "dimension": "",
        "scale_points": pd.NA, "is_practice": False, "attention_kind": "", "pair_selection": "",
        "passed_attention": pd.array([pd.NA] * n, dtype="boolean"),
        "value": np.where(likert, frame["score"], np.nan),
        "chosen": pd.array([pd.NA] * n, dtype="boolean"),
        "rank": pd.array([pd.NA] * n, dtype="Int64"),
        "method_name": frame["method"], "content_category": "", "seed": pd.NA,
        "client_rt_ms": np.nan, "server_rt_ms": np.nan, "submitted_at": pd.NaT,
    }
    for column, value in defaults.items():
        if column not in frame.columns:
            frame[column] = value
    if "trial_position" not in frame.columns:
        frame["trial_position"] = frame.groupby("participant_id").cumcount()
    if "slot" not in frame.columns:
        frame["slot"] = frame.groupby("response_id").cumcount()
    if "in_group" not in frame.columns:
        frame["in_group"] = frame["style_culture"].astype(str) == frame["group_culture"].fillna("").astype(str)
    if "rt_ms" not in frame.columns:
        frame["rt_ms"] = pd.to_numeric(frame["client_rt_ms"], errors="coerce").fillna(
            pd.to_numeric(frame["server_rt_ms"], errors="coerce"))
    frame["group_culture"] = frame["group_culture"].fillna("")
    frame["attention_kind"] = frame["attention_kind"].fillna("")
    frame["pair_selection"] = frame["pair_selection"].fillna("")
    return frame


def read_set_metrics(path: str) -> pd.DataFrame:
    """Read a set-metric table as exported (``set_metrics.csv`` or ``.parquet``).

    Raises:
        ValueError: The file lacks columns of :data:`SET_METRIC_COLUMNS`.
    """
    text = str(path)
    strings = [c for c, (kind, _) in SET_METRIC_COLUMNS.items() if kind == "string"]
    frame = (pd.read_parquet(text) if text.endswith((".parquet", ".pq"))
             else pd.read_csv(text, dtype=dict.fromkeys(strings, str)))
    missing = [c for c in SET_METRIC_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{text}: missing set-metric column(s) {', '.join(missing)}")
    frame[strings] = frame[strings].fillna("")
    frame["computed_at"] = pd.to_datetime(frame["computed_at"], utc=True)
    return frame[list(SET_METRIC_COLUMNS)]
