"""The report's HTML read in a browser: no sideways scrolling at 1200 px, on a laptop
or a phone, and every table and figure inside the text column."""

from __future__ import annotations

import pytest

from studies.analysis.simulate import simulate_study
from studies.reports import ReportOptions, build_report

VIEWPORTS = {"desktop-1200": (1200, 900), "laptop-1366": (1366, 768), "phone-390": (390, 844)}


@pytest.fixture(scope="module")
def report_html(tmp_path_factory):
    out = tmp_path_factory.mktemp("report-layout")
    frame = simulate_study(weights={"western": 0.8, "chinese": 0.4, "japanese": 0.0},
                           n_participants=12, likert_trials=30, afc_trials=6,
                           in_group_effect=0.5, rng=4)
    build_report(frame, out, options=ReportOptions(n_resamples=100), title="Layout check")
    return out / "report.html"


@pytest.mark.parametrize("name", list(VIEWPORTS))
def test_report_fits_the_window(browser, artifacts, report_html, name):
    width, height = VIEWPORTS[name]
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(report_html.as_uri())
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    main_width = page.evaluate("document.querySelector('main').clientWidth")
    if width >= 1200:
        # At desktop widths every table fits the column without its own scrollbar.
        widest = page.evaluate(
            "Math.max(...[...document.querySelectorAll('table')].map(t => t.scrollWidth))")
        assert widest <= main_width
    widest_figure = page.evaluate(
        "Math.max(...[...document.querySelectorAll('figure')].map(f => f.scrollWidth))")
    assert widest_figure <= main_width
    page.screenshot(path=str(artifacts / f"report-{name}.png"), full_page=False)
    page.close()
