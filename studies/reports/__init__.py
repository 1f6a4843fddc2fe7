"""Study reports: HTML and PDF with figures, tidy CSV/Parquet exports, codebook, config."""

from .build import (
    REPORT_FILES,
    ReportOptions,
    ReportResult,
    build_report,
    build_study_report,
)

__all__ = [
    "REPORT_FILES",
    "ReportOptions",
    "ReportResult",
    "build_report",
    "build_study_report",
]
