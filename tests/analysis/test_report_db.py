"""Tidy export and the study report on a small study built in the database."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from studies.analysis.guards import DesignMinimums
from studies.analysis.tidy import COLUMNS, SET_METRIC_COLUMNS
from studies.export import study_configuration, study_frame, study_set_metrics
from studies.models import (
    BackgroundQuestion,
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
from studies.reports import REPORT_FILES, ReportOptions, build_report
from studies.reports.database import build_study_report
from tests.reports.checks import keep_artifacts

RAW_RECRUITER_SESSION = "RAW-SESSION-5f2c"
RAW_RECRUITER_STUDY = "RAW-STUDY-77ab"


def _make_study() -> Study:
    study = Study.objects.create(title="Ink vs oil", slug="ink-vs-oil", max_attention_failures=0)
    ink = CultureTag.objects.create(slug="chinese-ink", name="Chinese ink")
    oil = CultureTag.objects.create(slug="western-oil", name="Western oil")
    contents = [
        ContentImage.objects.create(study=study, sha256=f"c{i}", category="landscape", title=f"c{i}")
        for i in range(3)
    ]
    styles = [
        StyleImage.objects.create(study=study, sha256=f"s{i}", culture=culture, title=f"s{i}")
        for i, culture in enumerate([ink, oil])
    ]
    methods = [
        MethodConfig.objects.create(study=study, label=label, method=label.lower())
        for label in ("WCT", "AdaIN")
    ]
    candidates = []
    for m, method in enumerate(methods):
        for c, content in enumerate(contents):
            for s, style in enumerate(styles):
                cand = Candidate.objects.create(
                    study=study, content=content, style=style, method_config=method,
                    status=Candidate.Status.DONE, provenance={"weights_sha256": "abc", "seed": 0},
                )
                MetricValue.objects.create(candidate=cand, name="quality", version="1",
                                           value=float(m * 6 + c * 2 + s))
                candidates.append(cand)
    BackgroundQuestion.objects.create(study=study, key="cultural_background", texts={"en": "?"})
    likert = Question.objects.create(study=study, kind=Question.Kind.LIKERT, dimension="overall",
                                     texts={"en": "Rate"}, scale_points=7)
    afc = Question.objects.create(study=study, kind=Question.Kind.TWO_AFC, dimension="overall",
                                  texts={"en": "Which?"})
    groups = {
        "cn": ParticipantGroup.objects.create(study=study, slug="cn", name="Chinese", culture=ink),
        "west": ParticipantGroup.objects.create(study=study, slug="west", name="Western", culture=oil),
    }
    for p in range(8):
        slug = "cn" if p % 2 else "west"
        status = Participant.Status.COMPLETED
        failures = 0
        if p == 6:
            status = Participant.Status.IN_PROGRESS
        if p == 7:
            failures = 2
        part = Participant.objects.create(
            study=study, group=groups[slug], external_id_hash=f"hash{p:02d}",
            recruiter_session_id=RAW_RECRUITER_SESSION, recruiter_study_id=RAW_RECRUITER_STUDY,
            status=status, attention_failures=failures,
            background={"cultural_background": [slug, "other"] if p == 0 else slug},
        )
        position = 0
        for i, cand in enumerate(candidates):
            trial = Trial.objects.create(participant=part, question=likert, position=position,
                                         is_practice=(i == 0))
            position += 1
            TrialItem.objects.create(trial=trial, slot=0, candidate=cand)
            # Ratings follow the metric for the western group, reverse it for the other.
            step = i * 6 // (len(candidates) - 1)
            value = 1 + step if slug == "west" else 7 - step
            Response.objects.create(trial=trial, value=value,
                                    client_rt_ms=150 if i == 1 else 2000)
        for a, b in [(0, 6), (1, 7), (2, 8)]:
            trial = Trial.objects.create(participant=part, question=afc, position=position)
            position += 1
            first = TrialItem.objects.create(trial=trial, slot=0, candidate=candidates[a])
            TrialItem.objects.create(trial=trial, slot=1, candidate=candidates[b])
            Response.objects.create(trial=trial, choice=first, client_rt_ms=1500)
        check = Trial.objects.create(participant=part, question=likert, position=position,
                                     attention_kind=Trial.AttentionKind.INSTRUCTED, expected=7)
        Response.objects.create(trial=check, value=7, passed_attention=p != 7, client_rt_ms=900)
    return study


def _add_set_metrics(study: Study) -> None:
    """FID of both methods for Chinese ink (two versions of WCT's), one unavailable KID."""
    ink = CultureTag.objects.get(slug="chinese-ink")
    wct, adain = (MethodConfig.objects.get(study=study, label=label) for label in ("WCT", "AdaIN"))
    old = SetMetricValue.objects.create(study=study, method_config=wct, culture=ink, name="fid",
                                        version="1", value=999.0, n_images=2)
    SetMetricValue.objects.filter(pk=old.pk).update(computed_at=old.computed_at - dt.timedelta(days=1))
    SetMetricValue.objects.create(study=study, method_config=wct, culture=ink, name="fid",
                                  version="2", value=123.25, n_images=3)
    SetMetricValue.objects.create(study=study, method_config=adain, culture=ink, name="fid",
                                  version="2", value=87.5, n_images=3)
    SetMetricValue.objects.create(study=study, method_config=adain, culture=ink, name="kid",
                                  version="1", value=None, n_images=3,
                                  unavailable_reason="weights not installed")


@pytest.mark.django_db
class TestSetMetrics:
    def test_one_row_per_method_culture_and_metric_latest_version(self):
        study = _make_study()
        _add_set_metrics(study)
        other = Study.objects.create(title="Other", slug="other")
        foreign = MethodConfig.objects.create(study=other, label="WCT", method="wct")
        SetMetricValue.objects.create(study=other, method_config=foreign, name="fid", version="2",
                                      culture=CultureTag.objects.get(slug="western-oil"), value=1.0)
        table = study_set_metrics(study.pk)
        assert list(table.columns) == list(SET_METRIC_COLUMNS)
        assert table[["method", "style_culture", "metric", "version"]].values.tolist() == [
            ["AdaIN", "chinese-ink", "fid", "2"], ["AdaIN", "chinese-ink", "kid", "1"],
            ["WCT", "chinese-ink", "fid", "2"]]
        assert table["value"].tolist()[0] == 87.5 and table["value"].tolist()[2] == 123.25
        assert pd.isna(table["value"].iloc[1]) and table["unavailable_reason"].iloc[1] == "weights not installed"
        assert table["n_candidates"].tolist() == [3, 3, 3] and table["method_name"].iloc[0] == "adain"

    def test_empty_table_keeps_its_columns_and_unknown_study_is_refused(self):
        study = _make_study()
        table = study_set_metrics(study.pk)
        assert table.empty and list(table.columns) == list(SET_METRIC_COLUMNS)
        with pytest.raises(Study.DoesNotExist):
            study_set_metrics(10**9)

    def test_report_refuses_a_set_metric_table_without_its_columns(self, tmp_path):
        frame = study_frame(_make_study().pk)
        with pytest.raises(ValueError, match="set_metrics lacks column.*style_culture"):
            build_report(frame, tmp_path, set_metrics=pd.DataFrame({"method": ["WCT"], "metric": ["fid"]}))


@pytest.mark.django_db
class TestStudyFrame:
    def test_columns_rows_and_derived_values(self, django_assert_max_num_queries):
        study = _make_study()
        with django_assert_max_num_queries(12):
            frame = study_frame(study.pk)
        # 8 participants x (12 Likert + 3 x 2 2AFC items + 1 item-less check)
        assert len(frame) == 8 * (12 + 6 + 1)
        assert set(COLUMNS) - {"exclusion"} <= set(frame.columns)
        assert "metric__quality" in frame.columns and "bg__cultural_background" in frame.columns
        afc = frame[frame["question_kind"] == "2afc"]
        assert afc.groupby("response_id")["chosen"].sum().eq(1).all()
        assert afc.loc[afc["chosen"] == True, "slot"].eq(0).all()  # noqa: E712
        likert = frame[(frame["question_kind"] == "likert") & frame["candidate_id"].notna()]
        assert (likert["score"] == likert["value"].astype(float)).all()
        first = frame[frame["participant_id"] == frame["participant_id"].min()]
        assert set(first["bg__cultural_background"]) == {"west;other"}
        assert frame["in_group"].any() and not frame["in_group"].all()

    def test_no_raw_recruiter_ids(self):
        study = _make_study()
        frame = study_frame(study.pk)
        text = frame.to_csv() + json.dumps(study_configuration(study.pk))
        assert RAW_RECRUITER_SESSION not in text
        assert RAW_RECRUITER_STUDY not in text
        assert set(frame["participant_hash"]) == {f"hash{p:02d}" for p in range(8)}

    def test_unknown_study(self):
        with pytest.raises(Study.DoesNotExist):
            study_frame(10**9)


@pytest.mark.django_db
class TestStudyReport:
    def test_writes_every_file_and_records_exclusions(self, tmp_path):
        study = _make_study()
        _add_set_metrics(study)
        calls = []
        result = build_study_report(
            study.pk, tmp_path, lambda f, m: calls.append((f, m)),
            # Three analysed participants per group: below the default minimum of five.
            options=ReportOptions(n_resamples=50, minimums=DesignMinimums(min_participants=3)),
        )
        for name in REPORT_FILES.values():
            assert (tmp_path / name).stat().st_size > 0, name
        assert calls[0][0] == 0.0 and calls[-1][0] == 1.0
        results = json.loads((tmp_path / "results.json").read_text())
        rules = {step["rule"]: step for step in results["exclusions"]}
        assert rules["any failed attention check"]["participants_removed"] == 1
        assert rules["session not completed"]["participants_removed"] == 1
        assert rules["practice trial"]["rows_removed"] == 6
        assert rules["response faster than 300 ms"]["rows_removed"] == 6
        assert result.n_participants == 6
        exported = pd.read_parquet(tmp_path / "responses.parquet")
        assert len(exported) == result.n_rows  # excluded rows are exported, marked
        assert (exported["exclusion"] != "").sum() == result.n_rows - result.n_rows_analysed
        codebook = json.loads((tmp_path / "codebook.json").read_text())
        assert [c["name"] for c in codebook["columns"]] == list(exported.columns)
        # The file's rows are described in the codebook itself; a module is named by its path.
        assert codebook["description"].startswith("responses.csv/.parquet: one row per response")
        text = (tmp_path / "codebook.json").read_text()
        assert text.count("tidy.py") == text.count("studies/analysis/tidy.py") == 1
        # Set metrics: their own table and codebook entry, never columns of the responses.
        assert not [c for c in exported.columns if "fid" in c or "kid" in c]
        set_table = pd.read_parquet(tmp_path / "set_metrics.parquet")
        assert list(set_table.columns) == [c["name"] for c in codebook["set_metrics"]["columns"]]
        assert set_table.drop(columns="computed_at").equals(
            study_set_metrics(study.pk).drop(columns="computed_at"))
        assert pd.read_csv(tmp_path / "set_metrics.csv")["value"].tolist()[::2] == [87.5, 123.25]
        assert [r["metric"] for r in results["set_metrics"]] == ["fid", "kid", "fid"]
        config = json.loads((tmp_path / "study_config.json").read_text())
        assert len(config["candidates"]) == 12
        assert config["candidates"][0]["provenance"]["weights_sha256"] == "abc"
        # Ratings follow the metric in "west" and oppose it in "cn".
        agreement = pd.DataFrame(results["agreement"])
        likert = agreement[(agreement["correlation"] == "spearman") & (agreement["question"] == 1)]
        by_group = likert.set_index("group")["statistic"]
        assert by_group["west"] > 0 > by_group["cn"]
        html = (tmp_path / "report.html").read_text()
        # Figures are inline SVG (vector in the HTML and the printed PDF).
        assert "<figure><div class=\"fig\"><svg" in html and "<table>" in html
        assert "Set metrics per method and style culture" in html
        assert "<td class=\"n\">123.25</td>" in html and "weights not installed" in html
        # Cultures as the configuration names them, in every table.
        assert results["culture_names"] == {"chinese-ink": "Chinese ink", "western-oil": "Western oil"}
        assert html.count('<td class="l">Chinese ink</td>') == 4  # participants, two set-metric rows, appendix
        assert "chinese-ink" not in html.split("<body")[-1]
        assert "2 style artworks (1 Chinese ink and 1 Western oil)" in html
        assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")

    def test_study_without_responses(self, tmp_path):
        study = Study.objects.create(title="Empty", slug="empty")
        result = build_study_report(study.pk, tmp_path,
                                    options=ReportOptions(n_resamples=20))
        assert result.n_rows == 0
        assert any("agreement skipped" in w for w in result.warnings)
        assert (tmp_path / "report.html").is_file() and (tmp_path / "responses.csv").is_file()

    def test_ranking_responses_from_the_database(self, tmp_path):
        """Rankings as the database exports them (nullable integer ranks) give mean ranks and a
        Plackett-Luce fit per group."""
        study = _make_study()
        ranking = Question.objects.create(study=study, kind=Question.Kind.RANKING, dimension="overall",
                                          texts={"en": "Order"}, n_candidates=3)
        candidates = list(Candidate.objects.filter(study=study).order_by("pk"))
        for p in range(10):
            group = ParticipantGroup.objects.get(study=study, slug="cn" if p % 2 else "west")
            part = Participant.objects.create(study=study, group=group, external_id_hash=f"rank{p:02d}",
                                              status=Participant.Status.COMPLETED,
                                              background={"cultural_background": group.slug})
            for t in range(4):
                trial = Trial.objects.create(participant=part, question=ranking, position=t)
                for slot in range(3):
                    TrialItem.objects.create(trial=trial, slot=slot, candidate=candidates[(3 * t + slot + p) % 12])
                Response.objects.create(trial=trial, ranking=[1, 0, 2] if (p + t) % 3 else [0, 2, 1],
                                        client_rt_ms=2500)
        assert study_frame(study.pk)["rank"].dtype == "Int64"
        result = build_study_report(study.pk, tmp_path, options=ReportOptions(n_resamples=20))
        rankings = json.loads((tmp_path / "results.json").read_text())["rankings"]
        assert {entry["group"] for entry in rankings} == {"cn", "west"}
        assert all(row["plackett_luce"] is not None for entry in rankings for row in entry["table"])
        assert not [w for w in result.warnings if "Plackett-Luce" in w]

    def test_unscored_candidates_are_named(self, tmp_path):
        """A report built while scoring is unfinished says how many rated candidates lack metrics."""
        study = _make_study()
        MetricValue.objects.filter(candidate__in=Candidate.objects.filter(study=study).order_by("pk")[:3]).delete()
        result = build_study_report(study.pk, tmp_path, options=ReportOptions(n_resamples=20))
        note = ("3 of 12 rated candidates have no metric value (scoring unfinished when the data were read, "
                "or failed for them): they are left out of the metric-human correlations")
        assert note in result.warnings
        assert note in (tmp_path / "report.html").read_text()

    def test_study_whose_participants_were_erased(self, tmp_path):
        """Questions, candidates and groups but no response (erased, or nobody took part yet):
        the exports keep their columns and the report says plainly there are no data."""
        study = _make_study()
        Participant.objects.filter(study=study).delete()
        result = build_study_report(study.pk, tmp_path, options=ReportOptions(n_resamples=20))
        assert (result.n_rows, result.n_participants) == (0, 0)
        assert "participant_id" in pd.read_csv(tmp_path / "responses.csv").columns
        html = (tmp_path / "report.html").read_text()
        assert "<strong>No data yet.</strong> This study has no responses yet" in html
        assert "Data not sufficient" not in html
        assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")
        keep_artifacts("empty-study", tmp_path)

    def test_header_gives_the_frozen_configuration_hash(self, tmp_path):
        """The header's hash is the one the study was frozen under (the admin's); the export
        file's own hash, which changes with a wording edit, is labelled as the file's."""
        import re

        from studies.actions import compute_config_hash
        from studies.models import LiveEdit

        study = _make_study()
        Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE,
                                                 config_hash=compute_config_hash(study))
        study.refresh_from_db()
        headers, files = [], []
        for run in ("before", "after"):
            if run == "after":
                LiveEdit.objects.create(study=study, target="question 1", field="texts.en",
                                        before="Rate", after="Rate the image")
            out = tmp_path / run
            result = build_study_report(study.pk, out, options=ReportOptions(n_resamples=20))
            html = (out / "report.html").read_text()
            headers.append(re.search(r'<p class="meta">(.*?)</p>', html).group(1))
            files.append(result.results["config_sha256"])
            assert result.results["config_hash"] == study.config_hash
            assert f"frozen configuration SHA-256 {study.config_hash}" in headers[-1]
            assert f"file SHA-256 {files[-1]}" in html
        assert headers[0] == headers[1] and files[0] != files[1]
        assert files[0] not in headers[0]

    def test_management_command(self, tmp_path, capsys):
        study = _make_study()
        _add_set_metrics(study)
        call_command("study_report", study.slug, "--out", str(tmp_path), "--resamples", "50")
        assert "report.html" in capsys.readouterr().out
        assert (tmp_path / "report.html").is_file()
        # The export bundle re-analysed elsewhere keeps its set metrics.
        again = tmp_path / "again"
        call_command("study_report", "--tidy", str(tmp_path / "responses.parquet"), "--out", str(again),
                     "--set-metrics", str(tmp_path / "set_metrics.csv"), "--resamples", "50")
        first, second = (json.loads((d / "results.json").read_text())["set_metrics"] for d in (tmp_path, again))
        assert len(first) == 3 and second == first
        with pytest.raises(CommandError, match="missing set-metric column"):
            call_command("study_report", "--tidy", str(tmp_path / "responses.parquet"), "--out",
                         str(again), "--set-metrics", str(tmp_path / "exclusions.csv"))
        with pytest.raises(CommandError, match="no study"):
            call_command("study_report", "missing-slug", "--out", str(tmp_path))

    def test_background_job_keeps_the_report_in_storage(self, settings, tmp_path):
        """The admin's report job zips every file into storage and records a summary; rerunning is a no-op."""
        import zipfile

        from studies.models import StudyReport
        from studies.workers.report import run_report_job

        settings.MEDIA_ROOT = tmp_path / "media"
        report = StudyReport.objects.create(study=_make_study())

        options = ReportOptions(n_resamples=50)
        assert run_report_job(report.pk, options=options) == StudyReport.Status.DONE

        report.refresh_from_db()
        with report.archive.open("rb") as f:
            names = set(zipfile.ZipFile(f).namelist())
        assert set(REPORT_FILES.values()) <= names
        assert report.summary["participants"] == 6 and report.progress == 1.0
        archive = report.archive.name
        assert run_report_job(report.pk) == StudyReport.Status.DONE
        report.refresh_from_db()
        assert report.archive.name == archive


@pytest.mark.django_db
class TestReportJobFailures:
    """A build that raises fails its report at once with the error; only a dead worker is swept."""

    def _job(self, monkeypatch, exc):
        from studies.models import StudyReport

        def broken(*args, **kwargs):
            raise exc

        monkeypatch.setattr("studies.workers.report.build_study_report", broken)
        return StudyReport.objects.create(study=_make_study())

    def test_an_exception_fails_the_report_with_its_message(self, monkeypatch, admin_client):
        from django.urls import reverse

        from studies.lifecycle.reports import sweep_stale_reports
        from studies.models import StudyReport
        from studies.workers.report import run_report_job

        report = self._job(monkeypatch, TypeError("Cannot perform reduction 'any' with string dtype"))
        assert run_report_job(report.pk) == StudyReport.Status.FAILED
        report.refresh_from_db()
        assert report.error == "TypeError: Cannot perform reduction 'any' with string dtype"
        assert report.message == "failed: " + report.error and report.attempts == 1
        assert report.finished_at is not None and report.claim
        # Nothing left running for the sweep to take for a dead worker and build again.
        assert sweep_stale_reports(stale_after=0) == []
        report.refresh_from_db()
        assert report.status == StudyReport.Status.FAILED and report.attempts == 1
        listing = admin_client.get(reverse("admin:studies_studyreport_changelist")).content.decode()
        page = admin_client.get(reverse("admin:studies_studyreport_change", args=[report.pk])).content.decode()
        for html in (listing, page):
            assert "TypeError: Cannot perform reduction &#x27;any&#x27; with string dtype" in html

    def test_a_transient_error_hands_the_report_back_for_the_retry(self, monkeypatch):
        from django.db import OperationalError

        from studies.models import StudyReport
        from studies.workers.report import run_report_job

        report = self._job(monkeypatch, OperationalError("server closed the connection"))
        with pytest.raises(OperationalError):
            run_report_job(report.pk)
        report.refresh_from_db()
        assert report.status == StudyReport.Status.QUEUED and report.claim == ""
        assert report.error == "interrupted (OperationalError: server closed the connection); re-queued"
