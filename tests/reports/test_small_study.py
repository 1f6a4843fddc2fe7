"""The report of a small adaptive 2AFC study (``small_study``): what it says must be true
of these data, which are too few for most of the planned statistics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studies.reports import ReportOptions, build_report
from studies.reports.descriptives import _candidate_extremes, one_culture_per_response
from studies.reports.wording import methods_paragraphs, summary_sentences

from . import small_study
from .checks import scan

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[str, dict]:
    out = tmp_path_factory.mktemp("small")
    frame = small_study.frame(Path(out))
    build_report(frame, out, config=small_study.config(), options=ReportOptions(n_resamples=200),
                 title="Small adaptive study")
    return (out / "report.html").read_text(encoding="utf-8"), json.loads(
        (out / "results.json").read_text())


def test_sessions_are_described_as_shown_not_as_configured(report):
    html, results = report
    design = methods_paragraphs(results)[1]
    assert "8 trials" not in html
    assert ("Each analysed participant saw 2 rated trials, 1 practice screen, and 2 "
            "attention-check screens.") in design


def test_adaptive_pairs_that_never_left_the_showings_are_not_called_informative(report):
    html, results = report
    design = methods_paragraphs(results)[1]
    assert ("None of the 12 analysed comparisons was chosen by information: all were chosen to show "
            "every candidate the minimum number of times") in design
    assert "No participant compared the same pair twice." in design
    assert "None of the 12 analysed comparisons" in html


def test_weights_and_layers_are_those_the_candidates_ran_with(report):
    """The configuration leaves AdaIN's and WCT's weights to the method's default; the
    candidates' provenance names them, and WCT's departure from the paper."""
    html, results = report
    design = methods_paragraphs(results)[1]
    assert "AdaIN (weights vgg19-cd16x), WCT (weights vgg19-wct), and Gatys (weights vgg19)" in design
    assert f"Departures from the published methods: WCT: {small_study.WCT_DEPARTURE}." in design
    cells = scan(html).cells
    row = cells[cells.index("WCT", cells.index("Layers")):][:5]
    assert row == ["WCT", "wct", "—", "vgg19-wct", "relu3_1, relu2_1, relu1_1"], row


def test_negative_split_half_is_no_reliability_and_nothing_is_derived_from_it(report):
    html, results = report
    assert results["reliability"][0]["split_half"] < 0  # the raw estimate is kept
    cells = scan(html).cells
    row = cells[cells.index("Q1", cells.index("Split-half")):][:7]
    assert re.fullmatch(r"negative \(−\d\.\d\d\)", row[6]), row
    assert "Disattenuated agreement" not in html
    assert not [c for c in cells if "[−1.00, 1.00]" in c]
    assert "No disattenuated agreement for Western participants" in html
    sentence = summary_sentences(results)[1][-1].text
    assert "no split-half reliability (negative)" in sentence and "too few or too noisy" in sentence


def test_choices_between_one_style_are_not_compared_by_culture(report):
    """Both images of a 2AFC pair share their style: no own- vs other-culture means (they are
    one half by construction), and the report says why where they would be."""
    html, results = report
    assert {r["factor"] for r in results["cell_means"]} == {"method"}
    assert "own culture" not in scan(html).cells
    assert "the candidates of every pair had the same style" in html
    assert "by the style's culture" not in html and "own culture (right)" not in html


def test_ratings_and_mixed_sets_keep_the_culture_comparison():
    """One candidate per response (ratings), or sets mixing cultures, keep own vs other."""
    likert = pd.DataFrame({"response_id": [1, 2], "style_culture": ["a", "b"]})
    mixed = pd.DataFrame({"response_id": [1, 1, 1], "style_culture": ["a", "a", "b"]})
    one = pd.DataFrame({"response_id": [1, 1, 2, 2], "style_culture": ["a", "a", "b", "b"]})
    assert not one_culture_per_response(likert)
    assert not one_culture_per_response(mixed)
    assert one_culture_per_response(one)


def test_best_and_worst_never_share_a_mean_and_name_the_content():
    means = [1.0, 0.5, 0.5, 0.5, 0.5, 0.0]
    scored = pd.DataFrame({
        "question_id": 1, "group": "west", "candidate_id": np.repeat(range(6), 2),
        "score": np.repeat(means, 2), "method": "WCT", "style_culture": "western-oil",
        "content_id": np.repeat([1, 2, 1, 2, 1, 2], 2), "style_id": 1})
    config = {"content_images": [{"id": 1, "title": "harbour"}]}
    rows = _candidate_extremes(scored, config)
    assert [(r["end"], r["mean_score"], r["content"]) for r in rows] == [
        ("best", 1.0, "harbour"), ("worst", 0.0, "content 2")]
    assert _candidate_extremes(scored.assign(score=0.5), config) == []


def test_candidate_tiles_name_the_content(report):
    html, results = report
    tiles = re.findall(r'<div class="cap">(.*?)</div></div>', html)
    assert tiles and all(t.endswith(("· harbour", "· market")) for t in tiles)
    assert "style culture and content photograph" in html
