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
from scipy import stats
from scipy.special import ndtr

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
    taste_correlation: float = 1.0,
    method_effects: Sequence[float] | None = None,
    candidate_sd: float = 0.0,
    content_sd: float = 0.0,
    style_sd: float = 0.0,
    candidate_group_sd: float = 0.0,
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
        taste_correlation: Correlation between the groups' unseen taste
            components ``u_g`` (1: one shared ``u``, 0: each group its own taste).
        method_effects: Latent effect of each method (default none).
        candidate_sd: SD of an extra candidate effect shared by all groups.
        content_sd: SD of a content-image effect (shared by its candidates).
        style_sd: SD of a style-image effect.
        candidate_group_sd: SD of a candidate x group effect.
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
    latent = _candidate_latents(
        gen, k, n_groups=len(groups), n_contents=n_c, n_styles=n_s,
        cand_content=cand_content, cand_style=cand_style,
        taste_correlation=taste_correlation, candidate_sd=candidate_sd, content_sd=content_sd,
        style_sd=style_sd, candidate_group_sd=candidate_group_sd,
        metric_noise_sd=metric_noise_sd,
    )
    metric_tracked, metric_noise = latent["metric__tracked"], latent["metric__noise"]

    n_p = n_participants * len(groups)
    p_group = np.repeat(np.arange(len(groups)), n_participants)
    leniency = gen.normal(scale=participant_sd, size=n_p)
    w = np.array([weights[g] for g in groups])
    own = np.array([cultures.index(own_culture[g]) if own_culture.get(g) in cultures else -1
                    for g in groups])
    effects = np.zeros(n_m) if method_effects is None else np.asarray(method_effects, float)
    if effects.shape != (n_m,):
        raise ValueError(f"method_effects needs one value per method ({n_m})")
    appeal_table = _appeal_table(latent, w, own, cand_culture, effects[cand_method],
                                 in_group_effect)

    def appeal(cands: np.ndarray, parts: np.ndarray) -> np.ndarray:
        return appeal_table[cands, p_group[parts]]

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
        pair_selection="",
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


def _candidate_latents(
    gen: np.random.Generator, k: int, *, n_groups: int, n_contents: int, n_styles: int,
    cand_content: np.ndarray, cand_style: np.ndarray, taste_correlation: float,
    candidate_sd: float, content_sd: float, style_sd: float, candidate_group_sd: float,
    metric_noise_sd: float,
) -> dict[str, np.ndarray]:
    """Latent features of ``k`` candidates (the metric sees ``q`` only)."""
    if not 0.0 <= taste_correlation <= 1.0:
        raise ValueError("taste_correlation must lie in [0, 1]")
    q = gen.normal(size=k)
    u = gen.normal(size=k)
    metric_tracked = q + gen.normal(scale=metric_noise_sd, size=k)
    metric_noise = gen.normal(size=k)
    # Extra draws only when asked for, so default studies keep their random streams.
    u_groups = np.repeat(u[:, None], n_groups, axis=1)
    if taste_correlation < 1.0:
        own_u = gen.normal(size=(k, n_groups))
        u_groups = np.sqrt(taste_correlation) * u_groups + np.sqrt(1 - taste_correlation) * own_u
    shared = np.zeros(k)
    if candidate_sd:
        shared += candidate_sd * gen.normal(size=k)
    if content_sd:
        shared += content_sd * gen.normal(size=n_contents)[cand_content]
    if style_sd:
        shared += style_sd * gen.normal(size=n_styles)[cand_style]
    candidate_group = (candidate_group_sd * gen.normal(size=(k, n_groups))
                       if candidate_group_sd else np.zeros((k, n_groups)))
    return {"q": q, "u_groups": u_groups, "shared": shared, "candidate_group": candidate_group,
            "metric__tracked": metric_tracked, "metric__noise": metric_noise}


def _appeal_table(
    latent: dict[str, np.ndarray], w: np.ndarray, own: np.ndarray, cand_culture: np.ndarray,
    method_effect: np.ndarray, in_group_effect: float,
) -> np.ndarray:
    """Latent appeal of each candidate to each group ``(K, G)``."""
    base = w[None, :] * latent["q"][:, None] + np.sqrt(1.0 - w**2)[None, :] * latent["u_groups"]
    in_group = cand_culture[:, None] == own[None, :]
    return (base + in_group_effect * in_group + latent["shared"][:, None]
            + latent["candidate_group"] + method_effect[:, None])


def expected_likert(
    appeal: np.ndarray, *, participant_sd: float, noise_sd: float, scale_points: int,
) -> np.ndarray:
    """Expected Likert value of a candidate with latent ``appeal`` over raters.

    The simulated rating is ``clip(round(mid + (appeal + leniency + noise) * s))``
    with ``s = (scale_points - 1) / 6``; its expectation over normal leniency and
    noise is ``1 + sum_j P(rating >= j + 1)``, a sum of normal CDFs.
    """
    return likert_moments(appeal, participant_sd=participant_sd, noise_sd=noise_sd,
                          scale_points=scale_points)[0]


def likert_moments(
    appeal: np.ndarray, *, participant_sd: float, noise_sd: float, scale_points: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of one rating of a candidate with latent ``appeal``, by a
    rater drawn at random (leniency and noise), exactly from the rating model:
    ``E R = 1 + sum_j P(R >= j + 1)`` and ``E R^2 = 1 + sum_j (2 j + 1) P(R >= j + 1)``.
    """
    mid = (scale_points + 1) / 2.0
    step = (scale_points - 1) / 6.0
    sd = np.hypot(participant_sd, noise_sd) * step
    centre = mid + np.asarray(appeal, float) * step
    mean = np.ones_like(centre)
    square = np.ones_like(centre)
    for j in range(1, scale_points):
        at_least = ndtr((centre - (j + 0.5)) / sd)
        mean = mean + at_least
        square = square + (2 * j + 1) * at_least
    return mean, square - mean**2


def study_truth(
    *,
    weights: Mapping[str, float],
    own_culture: Mapping[str, str] | None = None,
    methods: Sequence[str] = ("adain", "gatys", "wct"),
    cultures: Sequence[str] = ("chinese-ink", "japanese-ukiyoe", "western-oil"),
    in_group_effect: float = 0.0,
    participant_sd: float = 0.5,
    noise_sd: float = 1.0,
    metric_noise_sd: float = 0.3,
    scale_points: int = 7,
    taste_correlation: float = 1.0,
    method_effects: Sequence[float] | None = None,
    candidate_sd: float = 0.0,
    content_sd: float = 0.0,
    style_sd: float = 0.0,
    candidate_group_sd: float = 0.0,
    ratings_per_candidate: Sequence[float] = (),
    n_population: int = 400_000,
    rng: np.random.Generator | int | None = 12345,
) -> dict[str, object]:
    """The estimands of a :func:`simulate_study` design, over the population of candidates.

    Monte Carlo over ``n_population`` candidates, each with a fresh content and
    style image (the marginal distribution of one candidate), and expected Likert
    ratings and single-rating variances computed exactly from the rating model.

    Besides the correlation with the expected rating (infinitely many raters),
    the correlation with the mean of ``k`` ratings for each ``k`` in
    ``ratings_per_candidate``: the estimand of the uncorrected agreement of a
    study with ``k`` ratings per candidate (the harmonic mean, when the number
    varies: the noise variance of a mean of ``n`` ratings is ``W / n``). For
    Pearson it is exact, ``r * sqrt(rel_k)`` with ``rel_k = var E / (var E + W / k)``
    (``W`` the mean single-rating variance about the expected rating); for
    Spearman the mean of ``k`` ratings is drawn as the expected rating plus a
    normal error of that candidate's variance ``W(appeal) / k``.

    Args:
        ratings_per_candidate: Values of ``k`` for ``agreement_at_k``.

    Returns:
        ``{"agreement": {(group, metric): Pearson r between the metric and the
        group's expected rating}, "spearman": the same with Spearman's rho,
        "reliability": {group: reliability of one rating (var E / (var E + W))},
        "agreement_at_k": {(group, metric, kind, k): correlation (kind pearson or
        spearman) between the metric and the mean of k ratings}, "cells": Series
        of expected ratings by (method, style_culture, group)}``.
    """
    gen = as_rng(rng)
    groups = list(weights)
    if own_culture is None:
        own_culture = {g: DEFAULT_GROUPS.get(g, "") for g in weights}
    k = n_population
    cand_method = gen.integers(len(methods), size=k)
    cand_culture = gen.integers(len(cultures), size=k)
    latent = _candidate_latents(
        gen, k, n_groups=len(groups), n_contents=k, n_styles=k,
        cand_content=np.arange(k), cand_style=np.arange(k),
        taste_correlation=taste_correlation, candidate_sd=candidate_sd, content_sd=content_sd,
        style_sd=style_sd, candidate_group_sd=candidate_group_sd, metric_noise_sd=metric_noise_sd,
    )
    w = np.array([weights[g] for g in groups])
    own = np.array([list(cultures).index(own_culture[g]) if own_culture.get(g) in cultures
                    else -1 for g in groups])
    effects = np.zeros(len(methods)) if method_effects is None else np.asarray(method_effects, float)
    appeal = _appeal_table(latent, w, own, cand_culture, effects[cand_method], in_group_effect)
    expected, within = likert_moments(appeal, participant_sd=participant_sd,
                                      noise_sd=noise_sd, scale_points=scale_points)
    agreement, spearman, reliability, at_k = {}, {}, {}, {}
    errors = gen.normal(size=expected.shape)  # one draw for every k: smooth in k
    metric_ranks = {name: stats.rankdata(latent[name]) for name in ("metric__tracked",
                                                                     "metric__noise")}
    for gi, g in enumerate(groups):
        var_expected = float(np.var(expected[:, gi]))
        mean_within = float(np.mean(within[:, gi]))
        reliability[g] = var_expected / (var_expected + mean_within)
        expected_ranks = stats.rankdata(expected[:, gi])
        for name, x in metric_ranks.items():
            agreement[(g, name)] = float(np.corrcoef(latent[name], expected[:, gi])[0, 1])
            spearman[(g, name)] = float(np.corrcoef(x, expected_ranks)[0, 1])
        for n in ratings_per_candidate:
            attenuation = np.sqrt(var_expected / (var_expected + mean_within / n))
            mean_of_n = stats.rankdata(expected[:, gi] + np.sqrt(within[:, gi] / n) * errors[:, gi])
            for name, x in metric_ranks.items():
                at_k[(g, name, "pearson", n)] = agreement[(g, name)] * attenuation
                at_k[(g, name, "spearman", n)] = float(np.corrcoef(x, mean_of_n)[0, 1])
    cells = pd.DataFrame(expected, columns=groups).assign(
        method=np.asarray(methods, dtype=object)[cand_method],
        style_culture=np.asarray(cultures, dtype=object)[cand_culture],
    ).melt(id_vars=["method", "style_culture"], var_name="group", value_name="expected")
    return {"agreement": agreement, "spearman": spearman, "reliability": reliability,
            "agreement_at_k": at_k,
            "cells": cells.groupby(["method", "style_culture", "group"])["expected"].mean()}
