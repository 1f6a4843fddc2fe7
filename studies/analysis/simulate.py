"""Synthetic studies with a known truth, as tidy frames (for tests and benchmarks).

Each candidate has two latent features: ``q``, which the metric ``metric__tracked``
measures (with noise), and ``u``, which no metric sees. Group g's taste is
``w_g * q + sqrt(1 - w_g^2) * u``; so the true correlation between the metric
and group g's mean rating grows with ``w_g``. A second metric,
``metric__noise``, is unrelated to anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ._common import as_rng
from .tidy import COLUMNS

DEFAULT_GROUPS = {"western": "western-oil", "chinese": "chinese-ink", "japanese": "japanese-ukiyoe"}


def simulate_study(
    *,
    weights: Mapping[str, float] | None = None,
    own_culture: Mapping[str, str] | None = None,
    methods: Sequence[str] = ("adain", "gatys", "wct"),
    cultures: Sequence[str] = ("chinese-ink", "japanese-ukiyoe", "western-oil"),
    n_contents: int = 6,
    n_styles_per_culture: int = 2,
    n_participants: int = 20,
    likert_trials: int = 30,
    afc_trials: int = 0,
    in_group_effect: float = 0.0,
    participant_sd: float = 0.5,
    noise_sd: float = 1.0,
    metric_noise_sd: float = 0.3,
    scale_points: int = 7,
    rng: np.random.Generator | int | None = None,
) -> pd.DataFrame:
    """A tidy frame of a simulated study (all participants completed, no exclusions).

    Args:
        weights: Group -> ``w_g`` in ``[0, 1]``, how much the group's taste follows
            the metric-tracked feature. Default 0.8 for every group.
        own_culture: Group -> own style culture. Defaults to :data:`DEFAULT_GROUPS`
            restricted to ``weights``' groups when names match, else none.
        methods: Method labels.
        cultures: Style culture slugs.
        n_contents: Content images.
        n_styles_per_culture: Style images per culture.
        n_participants: Participants per group.
        likert_trials: Likert trials per participant (question 1).
        afc_trials: 2AFC trials per participant (question 2, same content and
            style, two different methods).
        in_group_effect: Added to the latent appeal when the style culture is the
            participant's own.
        participant_sd: SD of participant leniency (Likert only).
        noise_sd: SD of response noise on the latent scale.
        metric_noise_sd: SD of the metric's measurement noise.
        scale_points: Likert scale points.
        rng: Generator or seed.

    Returns:
        Tidy frame with the columns of ``studies.analysis.tidy.COLUMNS`` (minus
        ``exclusion``) and ``metric__tracked``, ``metric__noise``.
    """
    gen = as_rng(rng)
    weights = dict(weights or {g: 0.8 for g in DEFAULT_GROUPS})
    if own_culture is None:
        own_culture = {g: DEFAULT_GROUPS.get(g, "") for g in weights}
    groups = list(weights)
    styles = [(c, s) for c in cultures for s in range(n_styles_per_culture)]
    n_m, n_c, n_s = len(methods), n_contents, len(styles)
    k = n_m * n_c * n_s
    cand_method = np.repeat(np.arange(n_m), n_c * n_s)
    cand_content = np.tile(np.repeat(np.arange(n_c), n_s), n_m)
    cand_style = np.tile(np.arange(n_s), n_m * n_c)
    cand_culture = np.array([cultures.index(styles[s][0]) for s in cand_style])
    q = gen.normal(size=k)
    u = gen.normal(size=k)
    metric_tracked = q + gen.normal(scale=metric_noise_sd, size=k)
    metric_noise = gen.normal(size=k)

    n_p = n_participants * len(groups)
    p_group = np.repeat(np.arange(len(groups)), n_participants)
    leniency = gen.normal(scale=participant_sd, size=n_p)
    w = np.array([weights[g] for g in groups])
    own = np.array([cultures.index(own_culture[g]) if own_culture.get(g) in cultures else -1
                    for g in groups])

    def appeal(cands: np.ndarray, parts: np.ndarray) -> np.ndarray:
        g = p_group[parts]
        base = w[g] * q[cands] + np.sqrt(1.0 - w[g] ** 2) * u[cands]
        return base + in_group_effect * (cand_culture[cands] == own[g])

    frames = []
    next_response = 0
    if likert_trials:
        parts = np.repeat(np.arange(n_p), likert_trials)
        cands = gen.integers(k, size=parts.size)
        latent = appeal(cands, parts) + leniency[parts] + gen.normal(scale=noise_sd, size=parts.size)
        mid = (scale_points + 1) / 2.0
        value = np.clip(np.rint(mid + latent * (scale_points - 1) / 6.0), 1, scale_points).astype(int)
        n = parts.size
        frames.append(pd.DataFrame({
            "response_id": np.arange(n) + next_response,
            "trial_id": np.arange(n) + next_response,
            "participant_id": parts,
            "question_id": 1, "question_kind": "likert", "dimension": "overall",
            "scale_points": scale_points,
            "trial_position": np.tile(np.arange(likert_trials), n_p),
            "slot": 0, "n_items": 1, "candidate_id": cands,
            "value": value, "chosen": pd.array([pd.NA] * n, dtype="boolean"),
            "rank": pd.array([pd.NA] * n, dtype="Int64"), "score": value.astype(float),
        }))
        next_response += n
    if afc_trials:
        parts = np.repeat(np.arange(n_p), afc_trials)
        n = parts.size
        first = gen.integers(n_m, size=n)
        second = (first + gen.integers(1, n_m, size=n)) % n_m
        content = gen.integers(n_c, size=n)
        style = gen.integers(n_s, size=n)
        cand_a = first * n_c * n_s + content * n_s + style
        cand_b = second * n_c * n_s + content * n_s + style
        diff = appeal(cand_a, parts) - appeal(cand_b, parts)
        chose_a = gen.random(n) < 1.0 / (1.0 + np.exp(-diff / max(noise_sd, 1e-9)))
        ids = np.arange(n) + next_response
        both = pd.DataFrame({
            "response_id": np.concatenate([ids, ids]),
            "trial_id": np.concatenate([ids, ids]),
            "participant_id": np.concatenate([parts, parts]),
            "question_id": 2, "question_kind": "2afc", "dimension": "overall",
            "scale_points": scale_points,
            "trial_position": np.concatenate([np.tile(np.arange(afc_trials), n_p)] * 2) + likert_trials,
            "slot": np.repeat([0, 1], n), "n_items": 2,
            "candidate_id": np.concatenate([cand_a, cand_b]),
            "value": pd.array([pd.NA] * (2 * n), dtype="Int64"),
            "chosen": pd.array(np.concatenate([chose_a, ~chose_a]), dtype="boolean"),
            "rank": pd.array([pd.NA] * (2 * n), dtype="Int64"),
            "score": np.concatenate([chose_a, ~chose_a]).astype(float),
        })
        frames.append(both)
    frame = pd.concat(frames, ignore_index=True)
    pid = frame["participant_id"].to_numpy()
    cid = frame["candidate_id"].to_numpy()
    group_names = np.array(groups, dtype=object)[p_group[pid]]
    own_names = np.array([own_culture.get(g, "") for g in groups], dtype=object)[p_group[pid]]
    culture_names = np.array(cultures, dtype=object)[cand_culture[cid]]
    frame = frame.assign(
        participant_hash=np.char.add("h", pid.astype(str)),
        participant_status="completed",
        language="en",
        attention_failures=0,
        group=group_names,
        group_culture=own_names,
        is_practice=False,
        attention_kind="",
        passed_attention=pd.array([pd.NA] * len(frame), dtype="boolean"),
        method=np.array(methods, dtype=object)[cand_method[cid]],
        method_name=np.array(methods, dtype=object)[cand_method[cid]],
        content_id=cand_content[cid],
        content_category="landscape",
        style_id=cand_style[cid],
        style_culture=culture_names,
        seed=0,
        in_group=culture_names == own_names,
        client_rt_ms=gen.integers(800, 6000, size=len(frame)),
        server_rt_ms=pd.array([pd.NA] * len(frame), dtype="Int64"),
        submitted_at=pd.Timestamp("2026-01-01", tz="UTC"),
        metric__tracked=metric_tracked[cid],
        metric__noise=metric_noise[cid],
    )
    frame["rt_ms"] = frame["client_rt_ms"].astype(float)
    ordered = [c for c in COLUMNS if c in frame.columns]
    return frame[ordered + ["metric__noise", "metric__tracked"]]
