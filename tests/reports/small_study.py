"""A small adaptive 2AFC study as a new researcher builds it: 2 content photographs x
2 style images x 3 methods (12 candidates), one 2AFC question with adaptive pairs after
2 showings of every candidate, 6 participants, each with 1 practice, 2 rated and 2
attention-check screens (so no pair is chosen by information); and its configuration with
every candidate's provenance."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from studies.analysis import tidy

METHODS = ("AdaIN", "WCT", "Gatys")
STYLES = (("western-oil", "Western oil painting"), ("chinese-ink", "Chinese ink"))
CONTENTS = ("harbour", "market")
WCT_DEPARTURE = ("Li et al. 2017 use relu5_1, relu4_1, relu3_1, relu2_1, relu1_1; family "
                 "vgg19-wct has offline weights only for relu3_1, relu2_1, relu1_1, so the "
                 "default runs relu3_1, relu2_1, relu1_1")


def candidates() -> list[dict]:
    """One row per candidate: id, content, style, method."""
    return [{"id": 100 + i, "content": c, "style": s, "method": m}
            for i, (m, c, s) in enumerate((m, c, s) for m in range(3) for c in range(2)
                                          for s in range(2))]


def config() -> dict:
    """The frozen configuration: 8 trials requested, an adaptive 2AFC question, and each
    candidate's provenance as the generator records it."""
    provenance = {
        0: {"family": "vgg19-cd16x", "levels": ["relu4_1"], "departs_from_paper": ""},
        1: {"family": "vgg19-wct", "levels": ["relu3_1", "relu2_1", "relu1_1"],
            "departs_from_paper": WCT_DEPARTURE},
        2: {"family": "vgg19", "levels": ["relu1_1", "relu2_1", "relu3_1", "relu4_1",
                                          "relu5_1"], "departs_from_paper": ""},
    }
    return {
        "study": {"title": "Small adaptive study", "trials_per_participant": 8},
        "participant_groups": [{"slug": "west", "name": "Western", "culture__slug": "western-oil",
                                "culture__name": "Western oil painting", "quota": 6}],
        "questions": [{"id": 1, "kind": "2afc", "dimension": "overall", "order": 0,
                       "texts": {"en": "Which image do you prefer?"},
                       "pair_design": "adaptive", "min_exposure": 2}],
        "methods": [{"id": m + 1, "label": label, "method": label.lower(), "params": {},
                     "family": "" if label != "Gatys" else "vgg19"}
                    for m, label in enumerate(METHODS)],
        "content_images": [{"id": c + 1, "title": title, "category": "city"}
                           for c, title in enumerate(CONTENTS)],
        "style_images": [{"id": s + 1, "title": f"style {s}", "culture__slug": slug,
                          "culture__name": name} for s, (slug, name) in enumerate(STYLES)],
        "candidates": [{"id": c["id"], "content_id": c["content"] + 1,
                        "style_id": c["style"] + 1, "method_config_id": c["method"] + 1,
                        "status": "done", "provenance": {"method": METHODS[c["method"]].lower(),
                                                         **provenance[c["method"]]}}
                       for c in candidates()],
    }


def frame(tmp: Path, *, seed: int = 0) -> pd.DataFrame:
    """The tidy frame, read as a tidy file is (``read_tidy``)."""
    rng = np.random.default_rng(seed)
    cands = candidates()
    by_cell = {}
    for c in cands:
        by_cell.setdefault((c["content"], c["style"]), []).append(c)
    # Every pair of methods within each content x style: 12 pairs, each candidate twice.
    pairs = [pair for cell in by_cell.values() for pair in combinations(cell, 2)]
    rows = []
    trial = 0

    def screen(pid, a, b, position, *, practice=False, attention=""):
        nonlocal trial
        trial += 1
        first = bool(rng.random() < 0.5)
        for slot, (cand, chosen) in enumerate(((a, first), (b, not first))):
            rows.append({
                "participant_id": pid, "group": "west", "group_culture": "western-oil",
                "question_id": 1, "question_kind": "2afc", "dimension": "overall",
                "trial_id": trial, "trial_position": position, "is_practice": practice,
                "attention_kind": attention, "passed_attention": True if attention else None,
                # 12 comparisons show each of the 12 candidates twice: all spent on the showings.
                "pair_selection": "" if practice or attention else "exposure",
                "slot": slot, "n_items": 2, "candidate_id": cand["id"],
                "chosen": chosen, "score": float(chosen), "method": METHODS[cand["method"]],
                "content_id": cand["content"] + 1, "style_id": cand["style"] + 1,
                "style_culture": STYLES[cand["style"]][0],
                "metric__ssim": float(rng.normal()), "client_rt_ms": 3000,
            })

    for pid in range(6):
        screen(pid, *pairs[0], 0, practice=True)
        screen(pid, *pairs[2 * pid], 1)
        screen(pid, *pairs[(2 * pid + 5) % 12], 2, attention="catch")
        screen(pid, *pairs[2 * pid + 1], 3)
        screen(pid, *pairs[(2 * pid + 7) % 12], 4, attention="catch")
    path = tmp / "small_study.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return tidy.read_tidy(str(path))
