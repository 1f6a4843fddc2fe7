"""The report of a small adaptive 2AFC study (``small_study``): what it says must be true
of these data, which are too few for most of the planned statistics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studies.reports import ReportOptions, build_report
from studies.reports.wording import methods_paragraphs

from . import small_study

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
