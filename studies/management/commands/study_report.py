"""``manage.py study_report (STUDY | --tidy FILE) --out DIR``: write a report and exports.

From a study in the database, or from a tidy CSV/Parquet file (the export's
columns; see ``studies.analysis.tidy.REQUIRED_INPUT`` and ``INPUT_DEFAULTS``),
so exported data or data collected elsewhere get the same statistics.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.analysis.tidy import ExclusionRules, read_set_metrics, read_tidy
from studies.models import Study
from studies.reports import ReportOptions, build_report
from studies.reports.database import build_study_report


class Command(BaseCommand):
    help = (
        "Analyse a study (or a tidy CSV/Parquet file with --tidy) and write report.html, "
        "report.pdf, responses.csv/.parquet, set_metrics.csv/.parquet, codebook.json, "
        "results.json, study_config.json and exclusions.csv into --out."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", nargs="?", help="Study id or slug (or use --tidy).")
        parser.add_argument("--tidy", type=Path, default=None,
                            help="Tidy CSV or Parquet file to analyse instead of a study.")
        parser.add_argument("--out", required=True, type=Path, help="Output folder (created if absent).")
        parser.add_argument("--title", default=None, help="Report title (with --tidy).")
        parser.add_argument("--config", type=Path, default=None,
                            help="With --tidy: the export's study_config.json, for group names, "
                                 "question texts, methods and the configuration appendix.")
        parser.add_argument("--set-metrics", type=Path, default=None,
                            help="With --tidy: the export's set_metrics.csv or .parquet, for the "
                                 "set-metrics table.")
        parser.add_argument("--seed", type=int, default=0, help="Seed of the resampling generator.")
        parser.add_argument("--resamples", type=int, default=1000,
                            help="Crossed-bootstrap replicates per interval.")
        parser.add_argument("--min-rt-ms", type=float, default=300.0,
                            help="Exclude responses faster than this (ms); negative disables.")
        parser.add_argument("--max-attention-failures", type=int, default=None,
                            help="Exclude participants with more failed checks (default: the "
                                 "study's setting; 0 with --tidy).")
        parser.add_argument("--keep-incomplete", action="store_true",
                            help="Analyse participants who did not complete the session.")

    def handle(self, *args: object, **options: object) -> None:
        key, tidy_path = options["study"], options["tidy"]
        if (key is None) == (tidy_path is None):
            raise CommandError("give either a study id/slug or --tidy FILE")
        study = None
        if key is not None:
            key = str(key)
            lookup = {"pk": int(key)} if key.isdigit() else {"slug": key}
            try:
                study = Study.objects.get(**lookup)
            except Study.DoesNotExist as exc:
                raise CommandError(
                    f"no study with {'id' if key.isdigit() else 'slug'} {key!r}") from exc
        max_failures = options["max_attention_failures"]
        if max_failures is None:
            max_failures = study.max_attention_failures if study else 0
        min_rt = options["min_rt_ms"]
        report_options = ReportOptions(
            n_resamples=options["resamples"],
            seed=options["seed"],
            rules=ExclusionRules(
                max_attention_failures=max_failures,
                min_rt_ms=None if min_rt is None or min_rt < 0 else min_rt,
                require_complete=not options["keep_incomplete"],
            ),
        )
        verbosity = int(options.get("verbosity", 1))

        def progress(fraction: float, message: str) -> None:
            if verbosity > 1:
                self.stderr.write(f"{fraction:4.0%} {message}")

        if study is not None:
            result = build_study_report(study.pk, options["out"], progress, options=report_options)
        else:
            if not tidy_path.is_file():
                raise CommandError(f"no such file: {tidy_path}")
            try:
                frame = read_tidy(str(tidy_path))
                set_metrics = (read_set_metrics(str(options["set_metrics"]))
                               if options["set_metrics"] is not None else None)
            except (OSError, ValueError) as exc:
                raise CommandError(str(exc)) from exc
            config = {"source": str(tidy_path)}
            if options["config"] is not None:
                try:
                    config = json.loads(Path(options["config"]).read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise CommandError(f"cannot read --config {options['config']}: {exc}") from exc
            result = build_report(
                frame, options["out"], options=report_options, progress=progress,
                config=config, set_metrics=set_metrics,
                title=options["title"] or f"{tidy_path.name} — study report",
            )
        self.stdout.write(result.summary())
