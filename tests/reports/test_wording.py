"""Sentences, numbers and tables from ``results.json`` in its documented shape.

The analysis writes ``effects`` rows ``{question, term, estimate, ci_low,
ci_high, p}``, group differences with ``ci_low, ci_high, p, p_adjusted``,
``marginal_means`` and ``guards``; the report presents what is there and says
nothing where a guard fired.
"""

from __future__ import annotations

import re

import pandas as pd

from studies.reports.descriptives import question_numbers
from studies.reports.document import render_html
from studies.reports.wording import (
    Sentence,
    adaptive_pairs_text,
    banner_lines,
    fmt,
    fmt_ci,
    fmt_p,
    methods_paragraphs,
    people,
    summary_sentences,
)

from .checks import scan


def _results() -> dict:
    groups = [{"slug": "west", "name": "Western", "culture": "western-oil", "quota": None,
               "recruited": 40, "analysed": 38},
              {"slug": "cn", "name": "Chinese", "culture": "chinese-ink", "quota": None,
               "recruited": 41, "analysed": 40},
              {"slug": "jp", "name": "Japanese", "culture": "japanese-ukiyoe", "quota": None,
               "recruited": 6, "analysed": 5}]
    agreement = []
    for group, lpips, ssim in (("west", (0.41, 0.28, 0.52), (0.10, -0.05, 0.24)),
                               ("cn", (0.12, -0.02, 0.25), (-0.31, -0.45, -0.16)),
                               ("jp", (0.90, 0.10, 0.99), (0.80, 0.2, 0.95))):
        for metric, (r, lo, hi) in (("metric__lpips-alex", lpips), ("metric__ssim", ssim)):
            agreement.append({"group": group, "question": 7, "metric": metric,
                              "correlation": "spearman", "statistic": r, "ci_low": lo,
                              "ci_high": hi, "n_candidates": 120, "n_participants": 40})
        agreement.append({"group": group, "question": 7, "metric": "metric__fid",
                          "correlation": "spearman", "statistic": None, "ci_low": None,
                          "ci_high": None})
    return {
        "title": "Documented shape",
        "options": {"confidence_level": 0.95, "correlation": "spearman", "seed": 3},
        "n_rows": 9000, "n_rows_analysed": 8800, "n_participants": 83,
        "groups": groups,
        "questions": [{"id": 7, "number": 1, "kind": "likert", "dimension": "style_fidelity",
                       "scale_points": 7, "text": "How faithful is the style?"}],
        "agreement": agreement,
        "group_differences": [
            {"question": 7, "metric": "metric__lpips-alex", "group_a": "cn", "group_b": "west",
             "difference": -0.29, "ci_low": -0.45, "ci_high": -0.12, "p": 0.0004,
             "p_adjusted": 0.0016},
            {"question": 7, "metric": "metric__ssim", "group_a": "cn", "group_b": "west",
             "difference": -0.41, "ci_low": -0.60, "ci_high": -0.20, "p": 0.02,
             "p_adjusted": 0.08},
            {"question": 7, "metric": "metric__ssim", "group_a": "jp", "group_b": "west",
             "difference": 0.7, "ci_low": 0.3, "ci_high": 0.9, "p": 0.001, "p_adjusted": 0.004},
        ],
        "effects": [
            {"question": 7, "term": "in_group", "estimate": 0.31, "ci_low": 0.12,
             "ci_high": 0.50, "p": 0.002},
            {"question": 7, "term": "method:wct-adain", "estimate": -0.42, "ci_low": -0.7,
             "ci_high": -0.14, "p": 0.004},
            {"question": 7, "term": "method:gatys-adain", "estimate": 0.05, "ci_low": -0.2,
             "ci_high": 0.3, "p": 0.61},
        ],
        "marginal_means": [
            {"question": 7, "group": g, "factor": "method", "level": m, "estimate": e,
             "ci_low": e - 0.2, "ci_high": e + 0.2}
            for g in ("west", "cn") for m, e in (("wct", 3.9), ("adain", 4.3), ("gatys", 4.35))
        ],
        "guards": [{"question": 7, "group": "jp", "analysis": None,
                    "reason": "5 participants, fewer than the minimum of 10"}],
        "config_sha256": "ab" * 32,
    }


def test_numbers_are_apa():
    assert fmt(0.412, bounded=True) == ".41"
    assert fmt(-0.05, bounded=True) == "\u2212.05"
    assert fmt(-0.001, bounded=True) == ".00"  # no negative zero
    assert fmt(1.0, bounded=True) == "1.00"
    assert fmt(3.14159) == "3.14" and fmt(-2.5) == "\u22122.50"
    assert fmt(float("nan")) == "\u2014" and fmt(None) == "\u2014" and fmt("x") == "\u2014"
    assert fmt_p(0.0004) == "< .001" and fmt_p(0.0123) == ".012" and fmt_p(1.0) == "> .999"
    assert fmt_ci(0.28, 0.52, bounded=True) == "[.28, .52]"
    assert fmt_ci(None, 0.5) == "\u2014"


def test_sentences_from_the_documented_shape():
    sentences = summary_sentences(_results())[7]
    texts = [s.text for s in sentences]
    findings = {subject for s in sentences if s.kind == "finding" for subject in s.subjects}
    assert ("LPIPS (AlexNet) agreed with the ratings of Western participants (ρ = .41, 95 % CI "
            "[.28, .52]).") in texts
    assert ("SSIM ran opposite to the ratings of Chinese participants (ρ = \u2212.31, 95 % CI "
            "[\u2212.45, \u2212.16]).") in texts
    # Hedged where the interval includes zero.
    assert any(s.kind == "hedged" and "no clear evidence that LPIPS (AlexNet) agreed" in s.text
               and "Chinese" in s.text for s in sentences)
    # Stated as higher minus lower with the adjusted p; non-significant after
    # correction (p_adjusted .08) is not a finding even though its interval excludes 0.
    assert ("Agreement of LPIPS (AlexNet) with ratings was higher for Western participants than "
            "for Chinese participants (Δρ = 0.29, 95 % CI [0.12, 0.45], Holm-adjusted p = .002).") in texts
    assert "metric__ssim|west>cn" not in findings
    # Named contrasts.
    assert ("Participants rated styles of their own culture higher than styles of other "
            "cultures (difference = 0.31 scale points, 95 % CI [0.12, 0.50], p = .002).") in texts
    assert ("adain was rated higher than wct (difference = \u22120.42 scale points, 95 % CI "
            "[\u22120.70, \u22120.14], p = .004).") in [t[0].lower() + t[1:] for t in texts]
    assert Sentence(
        "There was no clear difference between methods (gatys − adain: difference = 0.05, "
        "95 % CI [−0.20, 0.30]).", "hedged", ("method:gatys-adain",)) in sentences
    # The guarded group is in no sentence, and neither is a metric without values.
    assert not any("Japanese" in t for t in texts)
    assert not any("FID" in t for t in texts)


def test_document_presents_guards_effects_and_marginal_means():
    html = render_html(_results())
    banner = html[html.index('class="banner"'):html.index("</aside>")]
    assert "Japanese participants: 5 participants, fewer than the minimum of 10." in banner
    cells = scan(html).cells
    # The guarded group's agreement: estimates only, no interval.
    assert "Japanese (n = 40) ρ" in cells and ".90" in cells
    assert not any(c.startswith(".90 [") for c in cells)
    # The guarded group's difference is not tested.
    assert "Japanese \u2212 Western" in cells
    # Effects table; metric without values left out of every table.
    assert "wct \u2212 adain" in cells and "own culture \u2212 other cultures" in cells
    assert not any("FID" in c for c in cells)
    assert "Estimated marginal means by method" in html
    assert "3.90 [3.70, 4.10]" in cells


def test_changes_while_live_appendix():
    results = _results()
    results["configuration_summary"] = {
        "study": {"title": "Documented shape"}, "groups": [],
        "live_edits": [{"changed_at": "2026-11-02T10:15:00+00:00", "changed_by_name": "alice",
                        "target": "question 1", "field": "texts",
                        "before": {"en": "How faithful?"},
                        "after": {"en": "How faithful is the style?"}}]}
    cells = scan(render_html(results)).cells
    assert ["2026-11-02 10:15:00", "alice", "question 1", "texts.en", "How faithful?",
            "How faithful is the style?"] == cells[cells.index("2026-11-02 10:15:00"):][:6]
    results["configuration_summary"]["live_edits"] = []
    assert "No edits were made while the study was live." in render_html(results)


def _live_edit(field: str, before, after) -> dict:
    return {"changed_at": "2026-11-02T10:15:00+00:00", "changed_by_name": "alice",
            "target": "background question cultural_background", "field": field,
            "before": before, "after": after}


def _edit_rows(results: dict) -> list[list[str]]:
    cells = scan(render_html(results)).cells
    first = cells.index("2026-11-02 10:15:00")
    rows = [cells[i:i + 6] for i in range(first, len(cells), 6)]
    return [row for row in rows if row[0] == "2026-11-02 10:15:00"]


def test_a_changed_choice_label_is_shown_by_itself():
    """A live edit of one Japanese choice label is recorded as the whole choices list; the
    table shows the one label that changed, not the list cut off before the change."""
    from studies.actions.participants import DEFAULT_BACKGROUND

    choices = [{"value": v, "labels": labels} for v, labels in DEFAULT_BACKGROUND[0][4]]
    edited = [{**c, "labels": {**c["labels"]}} for c in choices]
    edited[3]["labels"]["ja"] = "その他の文化"
    results = _results()
    results["configuration_summary"] = {"study": {"title": "Documented shape"}, "groups": [],
                                        "live_edits": [_live_edit("choices", choices, edited)]}
    assert _edit_rows(results) == [["2026-11-02 10:15:00", "alice",
                                    "background question cultural_background",
                                    "choices[3].labels.ja", "その他", "その他の文化"]]


def test_entries_added_and_removed_and_long_text_cut_around_the_change():
    long_before = "Please read carefully. " * 20 + "You may stop at any time."
    long_after = "Please read carefully. " * 20 + "You may withdraw at any time."
    results = _results()
    results["configuration_summary"] = {"study": {"title": "Documented shape"}, "groups": [], "live_edits": [
        _live_edit("choices", [{"value": "a"}], [{"value": "a"}, {"value": "b", "labels": {"en": "B"}}]),
        _live_edit("texts", {"en": {"consent": long_before, "title": "T"}},
                   {"en": {"consent": long_after, "title": "T"}, "ja": {"title": "題"}}),
        _live_edit("quota", 20, 40),
    ]}
    rows = [row[3:] for row in _edit_rows(results)]
    assert rows[0] == ["choices[1]", "—", '{"value": "b", "labels": {"en": "B"}}']
    assert rows[1][0] == "texts.en.consent"
    for text, changed in zip(rows[1][1:], ("stop", "withdraw")):
        assert text.startswith("(+") and f"You may {changed} at any time." in text
        assert len(text) < 200
    assert rows[2] == ["texts.ja", "—", '{"title": "題"}']
    assert rows[3] == ["quota", "20", "40"]


def test_pdf_without_a_browser_is_a_clear_error(tmp_path, monkeypatch):
    """No Chromium: a PdfError that says what to install; no partial PDF is left."""
    import pytest

    from studies.reports.pdf import PdfError, print_pdf

    monkeypatch.setenv("STYLESTUDY_CHROMIUM", str(tmp_path / "no-such-browser"))
    html = tmp_path / "report.html"
    html.write_text(render_html(_results()), encoding="utf-8")
    (tmp_path / "report.pdf").write_bytes(b"stale")
    with pytest.raises(PdfError, match="install Debian's chromium or set STYLESTUDY_CHROMIUM"):
        print_pdf(html, tmp_path / "report.pdf")
    assert not (tmp_path / "report.pdf").exists()


def test_report_states_each_agreement_estimand_and_the_declared_tests():
    """The uncorrected agreement is stated as the correlation with a mean of k ratings
    (k given), the disattenuated one as the primary estimand with its interval in the
    sentence, and the contrasts table gives the Holm-adjusted p as the declared test."""
    results = _results()
    for row in results["agreement"]:
        if row["statistic"] is not None:
            row.update(ratings_per_candidate=3.34 if row["group"] == "west" else 3.29,
                       disattenuated=row["statistic"] * 1.2, noise_ceiling=0.69,
                       disattenuated_low=row["ci_low"] * 1.2,
                       disattenuated_high=min(1.0, row["ci_high"] * 1.2))
    for row, adjusted in zip(results["effects"], (0.002, 0.008, 0.61)):
        row["p_adjusted"] = adjusted
    texts = [s.text for s in summary_sentences(results)[7]]
    assert ("LPIPS (AlexNet) agreed with the ratings of Western participants (ρ = .41, 95 % CI "
            "[.28, .52]; disattenuated ρ = .49, 95 % CI [.34, .62]).") in texts
    html = render_html(results)
    assert "mean rating of the candidate (a mean of k = 3.3 ratings per candidate" in html
    assert "the interval is for this uncorrected quantity" in html
    assert "The primary estimand: the correlation (ρ) between each metric and the" in html
    assert "the mean of as many ratings per candidate as the study collected" in html
    cells = scan(html).cells
    assert "p (Holm)" in cells and ".008" in cells
    assert "declared test is p adjusted with Holm" in html and "within each family" in html


def test_group_names_that_already_name_people_are_not_doubled():
    assert people("western") == "western participants"
    assert people("Chinese participants") == "Chinese participants"
    assert people("expert raters") == "expert raters"
    results = _results()
    results["groups"][0]["name"] = "Western participants"
    texts = [s.text for s in summary_sentences(results)[7]]
    assert ("LPIPS (AlexNet) agreed with the ratings of Western participants (ρ = .41, 95 % CI "
            "[.28, .52]).") in texts
    assert any("higher for Western participants than for Chinese participants" in t for t in texts)
    results["groups"][2]["name"] = "Japanese participants"
    assert banner_lines(results) == [
        "Question 1: Style fidelity (rating, 1–7), Japanese participants: 5 participants, fewer "
        "than the minimum of 10."]
    assert "participants participants" not in render_html(results)
    # An interaction names its groups as the report does, not by slug.
    results["effects"].append({"question": 7, "term": "method:wct-adain x group:cn-west",
                               "estimate": 0.1, "ci_low": -0.2, "ci_high": 0.4, "p": 0.5})
    assert any("(wct − adain) × (Chinese − Western participants)" in s.text
               for s in summary_sentences(results)[7])


def test_method_paragraph_states_designs_and_counts_as_given():
    """Generated vs rated candidates, each 2AFC question's pair design, blank parameters
    left out and minimums printed as set."""
    results = _results()
    results["questions"] += [
        {"id": 8, "number": 2, "kind": "2afc", "dimension": "overall", "text": "",
         "pair_design": "balanced", "min_exposure": None},
        {"id": 9, "number": 3, "kind": "2afc", "dimension": "overall", "text": "",
         "pair_design": "adaptive", "min_exposure": 4},
        {"id": 10, "number": 4, "kind": "2afc", "dimension": "overall", "text": ""}]
    results["design"] = {
        "n_generated": 16, "n_candidates": 8, "n_contents": 2, "n_styles": 2,
        "styles_per_culture": {"chinese-ink": 1, "western-oil": 1},
        "methods": [{"label": "AdaIN", "method": "adain", "family": "",
                     "params": {"alpha": 0.6, "levels": "", "level_alphas": [], "style": None}}],
        "trials_per_participant": 12}
    results["sufficiency_rules"] = {"min_participants": 5, "min_candidates": 10,
                                    "min_ratings_per_candidate": 1.5}
    results["options"]["rules"] = {"max_attention_failures": 0}
    participants, design, analysis = methods_paragraphs(results)
    assert ("The study generated 16 images (candidates) with AdaIN (alpha = 0.6), 8 of which "
            "were rated or compared in the analysed responses; those came from 2 content "
            "photographs and 2 style artworks (1 chinese ink and 1 western oil).") in design
    assert ("Trials of question 1 were drawn from a sequence balanced over candidates within "
            "each group") in design
    assert "Pairs of question 2 followed a balanced design" in design
    assert ("Pairs of question 3 were chosen adaptively: each participant's next pair was "
            "selected") in design and "at least 4 times" in design and "Rubin 1976" in design
    assert "How the pairs of question 4 were chosen is not recorded" in design
    assert "a mean of 1.5 ratings per candidate" in analysis
    assert "participants failing any attention check" in analysis
    html = render_html(results)
    assert "levels =" not in html and "level_alphas" not in html and "style =" not in html
    # From a tidy file only the rated candidates are known.
    del results["design"]["n_generated"]
    assert ("Stimuli were the 8 images (candidates) that participants rated or compared in "
            "the analysed responses, generated from 2 content photographs") in (
        methods_paragraphs(results)[1])


def test_method_weights_name_every_family_the_candidates_used():
    results = _results()
    results["design"] = {"methods": [
        {"label": "AdaIN", "method": "adain", "family": "", "params": {},
         "weights_used": ["vgg19-cd16x", "vgg19-other"], "levels_used": [["relu4_1"]],
         "departs_from_paper": []},
        {"label": "Gatys", "method": "gatys", "family": "vgg19", "params": {}}]}
    design = methods_paragraphs(results)[1]
    assert ("AdaIN (weights vgg19-cd16x or vgg19-other, differing between its candidates) and "
            "Gatys (weights vgg19)") in design
    assert "Departures from the published methods" not in design


def test_adaptive_pairs_say_what_the_comparisons_were():
    """An adaptive design that never left the minimum showings is not worded as chosen by
    information, and "no pair repeated" is said only when none was."""
    never = adaptive_pairs_text({"comparisons": 12, "information": 0, "exposure": 12, "unrecorded": 0,
                                 "repeated": 0})
    assert never == ("None of the 12 analysed comparisons was chosen by information: all were chosen to "
                     "show every candidate the minimum number of times, so at this sample size the pairs "
                     "are close to a balanced design. No participant compared the same pair twice.")
    mixed = adaptive_pairs_text({"comparisons": 40, "information": 28, "exposure": 12, "unrecorded": 0,
                                 "repeated": 1})
    assert mixed.startswith("Of the 40 analysed comparisons, 28 were chosen as the most informative pair "
                            "and 12 to show every candidate the minimum number of times.")
    assert mixed.endswith("1 comparison showed a participant a pair they had already compared (the question "
                          "has fewer pairs than trials per participant).")
    assert adaptive_pairs_text({"comparisons": 9, "information": 9}).startswith(
        "Of the 9 analysed comparisons, 9 were chosen as the most informative pair. No participant")
    assert adaptive_pairs_text({"comparisons": 5, "unrecorded": 5}).startswith(
        "Why each pair was chosen is not recorded with these data.")
    assert adaptive_pairs_text({}) == ""
    results = _results()
    results["questions"].append({"id": 9, "number": 2, "kind": "2afc", "dimension": "overall", "text": "",
                                 "pair_design": "adaptive", "min_exposure": 2})
    results["bradley_terry"] = [
        {"question": 9, "group": g, "pairs": {"comparisons": 6, "information": 0, "exposure": 6,
                                               "unrecorded": 0, "repeated": 0}} for g in ("west", "east")]
    design = methods_paragraphs(results)[1]
    assert "None of the 12 analysed comparisons was chosen by information" in design
    assert "no pair was repeated" not in design


def test_questions_are_numbered_as_the_study_orders_them():
    """The report's Q1, Q2 follow the configured order (as the admin's labels do), then ids;
    a tidy file without a configuration numbers by id."""
    frame = pd.DataFrame({"question_id": [10, 9, 11, 3]})
    config = {"questions": [{"id": 10, "order": 0}, {"id": 9, "order": 0}, {"id": 11, "order": 0},
                            {"id": 3, "order": 2}]}
    assert question_numbers(frame, config) == {9: 1, 10: 2, 11: 3, 3: 4}
    assert question_numbers(frame, {}) == {3: 1, 9: 2, 10: 3, 11: 4}


def test_cultures_are_named_as_configured():
    """Tables name a culture as the configuration does; without a name, its slug in words."""
    results = _results()
    results["culture_names"] = {"chinese-ink": "Chinese ink wash"}
    results["configuration_summary"] = {
        "study": {"title": "Named cultures"}, "live_edits": [],
        "groups": [{"name": "Chinese", "culture": "chinese-ink", "quota": 40, "eligibility": None}]}
    cells = scan(render_html(results)).cells
    participants = cells[cells.index("Chinese"):][:2]
    assert participants == ["Chinese", "Chinese ink wash"]
    assert "western oil" in cells and "western-oil" not in cells
    assert "chinese-ink" not in cells


def test_screens_per_participant_are_given_as_the_data_have_them():
    """Counts that differ between participants are a median with their range; kinds nobody
    saw are not mentioned; the configured number of trials is not presented as what
    participants had."""
    results = _results()
    results["design"] = {"trials_per_participant": 40,
                         "screens_per_participant": {"rated": [10, 11.5, 12], "attention": [1, 1, 1]}}
    design = methods_paragraphs(results)[1]
    assert ("Each analysed participant saw a median of 11.5 rated trials (range 10–12) and 1 "
            "attention-check screen.") in design
    assert "40" not in design and "practice" not in design


def test_strength_intervals_are_named_as_the_kind_given(monkeypatch):
    """After an adaptive design the Bradley–Terry intervals are posterior intervals: the
    figure's axis and the summary sentence say so; a bootstrap interval stays a CI."""
    from studies.reports import plots

    labels = []
    monkeypatch.setattr(plots, "to_svg", lambda fig: labels.extend(
        ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()) or "")
    table = [{"item": "AdaIN", "strength": 0.9, "ci_low": 0.2, "ci_high": 1.6, "win_rate": 0.7},
             {"item": "WCT", "strength": -0.9, "ci_low": -1.6, "ci_high": -0.2, "win_rate": 0.3}]
    for interval, shown in (("posterior", "95 % posterior interval"), ("bootstrap", "95 % CI")):
        results = _results()
        results["bradley_terry"] = [{"question": 7, "group": "west", "table": table,
                                     "interval": interval}]
        labels.clear()
        render_html(results)
        assert f"log-strength (Bradley–Terry) ({shown})" in labels
        assert any(f"log-strength 0.90, {shown} [0.20, 1.60]" in s.text
                   for s in summary_sentences(results)[7])


def test_disattenuated_table_only_for_groups_with_a_reliability():
    """A group whose noise ceiling is negative has no column in the disattenuated table,
    and the note says why; a group with a positive ceiling keeps its column."""
    results = _results()
    for r in results["agreement"]:
        ceiling = {"west": 0.64, "cn": -0.8, "jp": 0.5}[r["group"]]
        positive = ceiling > 0 and r["statistic"] is not None
        r.update(noise_ceiling=ceiling,
                 disattenuated=r["statistic"] / ceiling ** 0.5 if positive else None,
                 disattenuated_low=-0.1 if positive else None,
                 disattenuated_high=0.9 if positive else None)
    html = render_html(results)
    table = html[html.index("Disattenuated agreement"):]
    table = table[:table.index("</table>")]
    assert "Western (ceiling .64)" in table and "Chinese" not in table
    assert "No disattenuated agreement for Chinese participants" in html


def test_set_metric_note_gives_each_reason_once():
    """FID and KID store the missing Inception weights as their reason, ArtFID the same reason
    joined with its own: the note names each reason once, without "unavailable" doubled."""
    inception = ("unavailable: pt_inception-2015-12-05-6726825d.pth "
                 "(fetch with: python -m stylecore.weights fetch inception-fid)")
    lpips = "unavailable: the 'lpips' package is not installed"
    rows = [{"method": method, "style_culture": "western-oil", "metric": metric, "value": None,
             "n_candidates": 4, "unavailable_reason": reason}
            for method in ("AdaIN", "WCT")
            for metric, reason in (("fid", inception), ("kid", inception),
                                   ("artfid", f"{inception}; {lpips}"))]
    results = _results()
    results["set_metrics"] = rows
    note = re.search(r"Set metrics per method and style culture.*?<em>Note\.</em> (.*?)</p>",
                     render_html(results)).group(1)
    assert note.endswith(
        "set_metrics.csv. ArtFID, FID, and KID unavailable: pt_inception-2015-12-05-6726825d.pth "
        "(fetch with: python -m stylecore.weights fetch inception-fid). ArtFID unavailable: "
        "the &#x27;lpips&#x27; package is not installed."), note
    assert "unavailable: unavailable" not in note.lower() and note.count("pt_inception") == 1
