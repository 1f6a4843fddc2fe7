"""The report as a reader gets it: three studies built, printed and checked.

* a simulated study with 60 participants per group and planted effects: the
  summary states the planted effects and none of the absent ones;
* a 2-participant pilot: the data-sufficiency banner, and no interval, test or
  sentence anywhere;
* a small study in the database whose candidates are real colour transfers of
  the sample photographs to sample artworks (stylecore), stored as media, built
  by the admin's job and by ``study_report``: the same document, with
  thumbnails; and rebuilt by ``study_report --tidy`` from its own export: the
  same summary and tables.

Each is kept under ``tests/report_artifacts/`` (HTML, PDF, PNG pages).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from studies.analysis.simulate import simulate_study
from studies.reports import ReportOptions, build_report
from studies.reports.wording import summary_sentences

from .checks import assert_well_formed, keep_artifacts, scan

# 500 replicates: the bootstrap p of a group difference is at least 2/501, and
# Holm over the 6 comparisons of a question must be able to reach .05.
FAST = ReportOptions(n_resamples=500)
# Each module-level study is built once (about 20 s on 2 idle cores) and printed.
pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------
# Simulated study with known effects
# --------------------------------------------------------------------------

# western and chinese tastes follow the metric-tracked feature, japanese does
# not; every group rates its own culture's styles higher; no method effect.
PLANTED = {"western": 0.8, "chinese": 0.8, "japanese": 0.0}


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("simulated")
    frame = simulate_study(weights=PLANTED, n_participants=60, likert_trials=40, afc_trials=10,
                           in_group_effect=0.5, rng=1)
    build_report(frame, out, options=FAST, title="Simulated study, 60 per group")
    keep_artifacts("simulated-60-per-group", out)
    return out, json.loads((out / "results.json").read_text())


def test_simulated_report_is_a4_clean_and_captioned(simulated):
    out, _ = simulated
    text = assert_well_formed(out)
    assert "Page 1 of" in text
    assert "Data not sufficient" not in text


def test_sentences_state_the_planted_effects(simulated):
    _, results = simulated
    sentences = summary_sentences(results)[1]
    findings = [s for s in sentences if s.kind == "finding"]
    subjects = {subject for s in findings for subject in s.subjects}
    # The metric agrees with the ratings of both groups whose taste follows it.
    assert {"metric__tracked|western", "metric__tracked|chinese"} <= subjects
    # Its agreement is higher in each of those groups than among japanese participants.
    assert "metric__tracked|western>japanese" in subjects
    assert "metric__tracked|chinese>japanese" in subjects
    # The in-group effect, in the right direction.
    in_group = [s for s in findings if s.subjects == ("in_group",)]
    assert len(in_group) == 1 and "own culture higher" in in_group[0].text
    assert re.search(r"difference = 0\.\d\d scale points, 95 % CI \[0\.\d\d, 0\.\d\d\], Holm-adjusted p < \.001",
                     in_group[0].text)


def test_sentences_do_not_state_absent_effects(simulated):
    _, results = simulated
    for qid, sentences in summary_sentences(results).items():
        findings = [s for s in sentences if s.kind == "finding"]
        subjects = {subject for s in findings for subject in s.subjects}
        # The unrelated metric agrees with nobody.
        assert not any(s.startswith("metric__noise") for s in subjects), (qid, subjects)
        # Western and chinese tastes are planted equal.
        assert not any(re.fullmatch(r"metric__\w+\|(western>chinese|chinese>western)", s)
                       for s in subjects), (qid, subjects)
        # No method effect was planted.
        assert not any(s.startswith("method:") for s in subjects), (qid, subjects)
        hedged = " ".join(s.text for s in sentences if s.kind == "hedged")
        if qid == 1:
            assert "no clear evidence that noise agreed" in hedged


def test_summary_and_numbers_are_apa(simulated):
    out, _ = simulated
    html = (out / "report.html").read_text(encoding="utf-8")
    summary = html[html.index('class="summary"'):html.index('class="methods"')]
    # Correlations without a leading zero, true minus signs, intervals in brackets.
    assert re.search(r"ρ = \.\d\d, 95 % CI \[\.\d\d, \.\d\d\]", summary)
    assert not re.search(r"(?<!Δ)ρ = -?0\.", summary) and "-." not in summary
    cells = scan(html).cells
    assert any(re.fullmatch(r"\.\d\d \[\.\d\d, \.\d\d\]", c) for c in cells)
    assert any(c == "< .001" for c in cells)
    # Groups with their n in the agreement table's header.
    assert any(re.fullmatch(r"Western \(n = 60\) ρ \[95 % CI\]", c) for c in cells)


# --------------------------------------------------------------------------
# Two-participant pilot
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pilot(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("pilot")
    frame = simulate_study(weights={"western": 0.8, "chinese": 0.3}, n_participants=1,
                           likert_trials=20, afc_trials=5, in_group_effect=0.5, rng=2)
    build_report(frame, out, options=ReportOptions(n_resamples=100),
                 title="Pilot, two participants")
    keep_artifacts("pilot-2-participants", out)
    return out, json.loads((out / "results.json").read_text())


def test_pilot_has_banner_and_no_inference(pilot):
    out, results = pilot
    text = assert_well_formed(out)
    assert "Data not sufficient for the planned analysis" in text
    html = (out / "report.html").read_text(encoding="utf-8")
    banner = html[html.index('class="banner"'):html.index("</aside>")]
    assert "Chinese participants: needs 4 more participant(s) (1 of 5)" in banner
    assert "Western participants: needs 4 more participant(s) (1 of 5)" in banner
    assert all(s == [] for s in summary_sentences(results).values())
    # No interval and no p value in any table: only descriptive numbers.
    cells = scan(html).cells
    assert not [c for c in cells if "[" in c or "<" in c], [c for c in cells if "[" in c]
    assert "CI [" not in html
    # Descriptive statistics instead: each group's mean and SD, marked as not inferred.
    assert "Descriptive statistics, Question 1: Overall (rating, 1–7)" in html
    rows = [cells[i:i + 7] for i, c in enumerate(cells) if c in ("Chinese", "Western")
            and i + 6 < len(cells) and cells[i + 6] == "no"]
    assert len(rows) >= 2 and all(re.fullmatch(r"\d\.\d\d", r[4]) for r in rows[:2])


def test_figures_draw_no_interval_where_none_is_given():
    """A row without an interval (guarded data) is a hollow point: no error bar."""
    from matplotlib.collections import LineCollection

    from studies.reports import plots

    def forest(rows):
        fig = plots.forest_plot(rows, groups=["a", "b"], group_names={}, metric_names={},
                                symbol="ρ", level=0.95)
        return [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]

    with_ci = [{"group": "a", "metric": "m", "statistic": 0.4, "ci_low": 0.2, "ci_high": 0.6}]
    guarded = [{"group": "b", "metric": "m", "statistic": 0.4, "ci_low": None, "ci_high": None}]
    assert len(forest(with_ci)) == 1
    assert forest(guarded) == []
    assert len(forest(with_ci + guarded)) == 1


# --------------------------------------------------------------------------
# A study in the database, with images in storage
# --------------------------------------------------------------------------


def _generated(samples: Path) -> dict[tuple[int, int, str], bytes]:
    """Real candidates: stylecore's colour transfer of sample photos to sample artworks."""
    from stylecore.io import load_image, tensor_to_pil
    from stylecore.methods.color import color_transfer

    contents = sorted((samples / "content").glob("*.jpg"))[:3]
    styles = (sorted((samples / "style" / "chinese").glob("*.jpg"))[:2]
              + sorted((samples / "style" / "western").glob("*.jpg"))[:2])
    out = {}
    for c, content in enumerate(contents):
        photo = load_image(content, max_side=96)
        for s, style in enumerate(styles):
            art = load_image(style, max_side=96)
            for mode in ("reinhard", "histogram"):
                buffer = io.BytesIO()
                tensor_to_pil(color_transfer(photo, art, mode=mode, strength=0.8)).save(
                    buffer, format="PNG")
                out[(c, s, mode)] = buffer.getvalue()
    return out


def _make_db_study(images: dict[tuple[int, int, str], bytes]):
    """Two groups x 12 participants rate 24 real candidates; west follows the metric."""
    from studies.models import (
        Candidate,
        ContentImage,
        CultureTag,
        MethodConfig,
        MetricValue,
        Participant,
        ParticipantGroup,
        Question,
        Response,
        SetMetricValue,
        Study,
        StyleImage,
        Trial,
        TrialItem,
    )

    study = Study.objects.create(title="Ink and oil pilot", slug="ink-and-oil",
                                 max_attention_failures=0, trials_per_participant=24)
    ink = CultureTag.objects.create(slug="chinese-ink", name="Chinese ink")
    oil = CultureTag.objects.create(slug="western-oil", name="Western oil")
    contents = [ContentImage.objects.create(study=study, sha256=f"c{i}", category="landscape",
                                            title=f"c{i}") for i in range(3)]
    styles = [StyleImage.objects.create(study=study, sha256=f"s{i}", culture=culture,
                                        title=f"s{i}")
              for i, culture in enumerate([ink, ink, oil, oil])]
    methods = [MethodConfig.objects.create(study=study, label=label, method="color",
                                           params={"mode": mode, "strength": 0.8})
               for label, mode in (("Reinhard", "reinhard"), ("Histogram", "histogram"))]
    rng = np.random.default_rng(5)
    candidates = []
    for method in methods:
        for c, content in enumerate(contents):
            for s, style in enumerate(styles):
                cand = Candidate.objects.create(
                    study=study, content=content, style=style, method_config=method,
                    status=Candidate.Status.DONE, provenance={"seed": 0})
                image = images[(c, s, method.params["mode"])]
                cand.image.save(f"cand{cand.pk}.png", ContentFile(image), save=True)
                MetricValue.objects.create(candidate=cand, name="ssim", version="1",
                                           value=float(rng.normal()))
                MetricValue.objects.create(candidate=cand, name="lpips-alex", version="1",
                                           value=None, unavailable_reason="weights missing")
                candidates.append(cand)
    for method, fid in zip(methods, (41.5, 57.25)):
        for culture in (ink, oil):
            SetMetricValue.objects.create(study=study, method_config=method, culture=culture,
                                          name="fid", version="1", value=fid, n_images=6)
    quality = {c.pk: c.metric_values.get(name="ssim").value for c in candidates}
    likert = Question.objects.create(study=study, kind=Question.Kind.LIKERT, dimension="overall",
                                     texts={"en": "How much do you like this image?"},
                                     scale_points=7)
    groups = {"cn": ParticipantGroup.objects.create(study=study, slug="cn", name="Chinese",
                                                    culture=ink),
              "west": ParticipantGroup.objects.create(study=study, slug="west", name="Western",
                                                      culture=oil)}
    for p in range(24):
        slug = "west" if p % 2 else "cn"
        part = Participant.objects.create(
            study=study, group=groups[slug], external_id_hash=f"h{p:02d}",
            status=Participant.Status.COMPLETED)
        for position, cand in enumerate(candidates):
            trial = Trial.objects.create(participant=part, question=likert, position=position)
            TrialItem.objects.create(trial=trial, slot=0, candidate=cand)
            taste = quality[cand.pk] if slug == "west" else rng.normal()
            value = int(np.clip(np.rint(4 + 1.2 * taste + rng.normal(scale=0.8)), 1, 7))
            Response.objects.create(trial=trial, value=value, client_rt_ms=2000)
    return study


@pytest.mark.django_db
def test_database_study_same_document_by_every_path(tmp_path, settings, samples_dir):
    """Admin job and ``study_report`` give the same document; the tidy export gives the
    same summary and tables; candidate thumbnails come from storage."""
    import zipfile

    from studies.models import StudyReport
    from studies.workers.report import run_report_job

    settings.MEDIA_ROOT = tmp_path / "media"
    study = _make_db_study(_generated(samples_dir))

    by_command = tmp_path / "command"
    call_command("study_report", study.slug, "--out", str(by_command), "--resamples", "200")
    text = assert_well_formed(by_command)
    keep_artifacts("database-study", by_command)
    html = (by_command / "report.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/jpeg;base64,') == 2 * 2 * 3  # 2 groups x best/worst x 3
    assert "image not in storage" not in html
    assert "Ink and oil pilot: study report" in text
    assert "“How much do you like this image?”" in html
    # Only metrics with values: LPIPS was unavailable for every candidate, which only the
    # analysis notes say, by the metric's name.
    notes = html.index("<h3>Analysis notes</h3>")
    assert "LPIPS" not in html[:notes] and "SSIM" in html
    assert "metric LPIPS (AlexNet) is missing for" in html[notes:]
    header = (by_command / "responses.csv").read_text().splitlines()[0]
    assert "metric__ssim" in header and "lpips" not in header
    codebook = json.loads((by_command / "codebook.json").read_text())
    assert codebook["description"].endswith("left out: lpips-alex.")
    assert "Reinhard (color; mode = reinhard, strength = 0.8)" in html  # methods paragraph
    assert "Set metrics per method and style culture" in html and ">57.25<" in html

    report = StudyReport.objects.create(study=study)
    run_report_job(report.pk, options=ReportOptions(n_resamples=200,
                                                    rules=_rules(study)))
    report.refresh_from_db()
    with report.archive.open("rb") as f:
        by_job = zipfile.ZipFile(f).read("report.html").decode("utf-8")
    assert by_job == html

    # Rebuilt from the tidy export with its configuration (a re-analysis elsewhere).
    from_tidy = tmp_path / "tidy"
    call_command("study_report", "--tidy", str(by_command / "responses.parquet"),
                 "--config", str(by_command / "study_config.json"), "--out", str(from_tidy),
                 "--set-metrics", str(by_command / "set_metrics.parquet"),
                 "--title", "Ink and oil pilot: study report", "--resamples", "200")
    tidy_html = (from_tidy / "report.html").read_text(encoding="utf-8")
    assert _section(tidy_html, "summary") == _section(html, "summary")
    assert scan(tidy_html).cells == scan(html).cells


def _rules(study):
    from studies.analysis.tidy import ExclusionRules

    return ExclusionRules(max_attention_failures=study.max_attention_failures)


def _section(html: str, name: str) -> str:
    start = html.index(f'class="{name}"')
    return html[start:html.index("</section>", start)]


@pytest.mark.django_db
def test_served_report_may_style_itself_and_nothing_else(client, settings, tmp_path):
    """The report page gets its own policy: inline styles and embedded images, no script."""
    from django.contrib.auth.models import User
    from django.core.files.storage import default_storage
    from django.urls import reverse

    from studies.models import Study

    settings.MEDIA_ROOT = tmp_path / "media"
    study = Study.objects.create(title="Served", slug="served")
    name = default_storage.save(f"studies/{study.pk}/reports/report.html",
                                ContentFile(b"<!DOCTYPE html><style>p{}</style><p>x</p>"))
    client.force_login(User.objects.create_superuser("root", "root@example.org", "pw-123456789"))
    response = client.get(reverse("studies:media", args=[name]))
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox")
