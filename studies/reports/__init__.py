"""Study reports: HTML and PDF with figures, tidy CSV/Parquet exports, codebook, config.

Imports nothing from Django; a study in the database goes through
:mod:`studies.reports.database`.
"""

from .build import (
    REPORT_FILES,
    ReportOptions,
    ReportResult,
    build_report,
)

__all__ = [
    "REPORT_FILES",
    "ReportOptions",
    "ReportResult",
    "build_report",
]
