"""``manage.py study_report STUDY --out DIR``: write a study's report and exports."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from studies.analysis.tidy import ExclusionRules
from studies.models import Study
from studies.reports import ReportOptions, build_study_report


class Command(BaseCommand):
    help = (
        "Analyse a study and write report.html, report.pdf, responses.csv/.parquet, "
        "codebook.json, results.json, study_config.json and exclusions.csv into --out."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="Study id or slug.")
        parser.add_argument("--out", required=True, type=Path, help="Output folder (created if absent).")
        parser.add_argument("--seed", type=int, default=0, help="Seed of the resampling generator.")
        parser.add_argument("--resamples", type=int, default=1000,
                            help="Participant-bootstrap replicates per interval.")
        parser.add_argument("--permutations", type=int, default=1000,
                            help="Participant permutations per group comparison.")
        parser.add_argument("--min-rt-ms", type=float, default=300.0,
                            help="Exclude responses faster than this (ms); negative disables.")
        parser.add_argument("--keep-incomplete", action="store_true",
                            help="Analyse participants who did not complete the session.")

    def handle(self, *args: object, **options: object) -> None:
        key = str(options["study"])
        lookup = {"pk": int(key)} if key.isdigit() else {"slug": key}
        try:
            study = Study.objects.get(**lookup)
        except Study.DoesNotExist as exc:
            raise CommandError(f"no study with {'id' if key.isdigit() else 'slug'} {key!r}") from exc
        min_rt = options["min_rt_ms"]
        report_options = ReportOptions(
            n_resamples=options["resamples"],
            n_permutations=options["permutations"],
            seed=options["seed"],
            rules=ExclusionRules(
                max_attention_failures=study.max_attention_failures,
                min_rt_ms=None if min_rt is None or min_rt < 0 else min_rt,
                require_complete=not options["keep_incomplete"],
            ),
        )
        verbosity = int(options.get("verbosity", 1))

        def progress(fraction: float, message: str) -> None:
            if verbosity > 1:
                self.stderr.write(f"{fraction:4.0%} {message}")

        result = build_study_report(study.pk, options["out"], progress, options=report_options)
        self.stdout.write(result.summary())
