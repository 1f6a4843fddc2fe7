"""Print the report's HTML to an A4 PDF with headless Chromium.

Chromium typesets the same self-contained HTML the researcher reads: text
flows across pages, table headers repeat after a page break, rows and figures
are never split, and CSS paged media (``@page`` with margin boxes) gives a
fixed A4 page with margins and "Page n of N". A matplotlib page per table
cannot flow text or break a table, which is why the PDF is not drawn with it.

Chromium is found through ``STYLESTUDY_CHROMIUM`` (a path), else on ``PATH``
(``chromium``, ``chromium-browser``, ``google-chrome``); Debian's ``chromium``
package is what ``make browser`` installs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Printing a report takes about a second; this bounds a hung browser.
PRINT_TIMEOUT_S = 120


class PdfError(RuntimeError):
    """The PDF could not be printed (no browser, or the browser failed)."""


def find_chromium() -> str | None:
    """Path of the Chromium executable, or None."""
    configured = os.environ.get("STYLESTUDY_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else shutil.which(configured)
    return next((found for name in _CANDIDATES if (found := shutil.which(name))), None)


def print_pdf(html_path: Path, pdf_path: Path) -> None:
    """Print ``html_path`` to ``pdf_path`` (A4, the page style in the HTML).

    Raises:
        PdfError: No Chromium, or it exited without writing the PDF.
    """
    # A PDF of an earlier build must never pass for this one.
    pdf_path.unlink(missing_ok=True)
    browser = find_chromium()
    if browser is None:
        raise PdfError("no Chromium to print the PDF (install Debian's chromium or set "
                       "STYLESTUDY_CHROMIUM); report.html was written")
    with tempfile.TemporaryDirectory(prefix="stylestudy-pdf-") as profile:
        command = [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions",
            "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
            "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw",
            f"--print-to-pdf={pdf_path}", Path(html_path).resolve().as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True,
                                  timeout=PRINT_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PdfError(f"Chromium failed to print the PDF: {exc}") from exc
    if not pdf_path.is_file() or pdf_path.stat().st_size == 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        raise PdfError(f"Chromium exited {done.returncode} without a PDF: {' | '.join(tail)}")
