"""Checks every report must pass, shared by the report tests.

Each built report is also kept as a test artifact: the HTML, the PDF and its
pages as PNG (``tests/report_artifacts/<case>/``), for a person to look at.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent.parent / "report_artifacts"
A4_PT = (595.28, 841.89)


class _Scan(HTMLParser):
    """Table cells, and per <figure> how many <figcaption>s it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.figures: list[int] = []
        self._cell: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "th"):
            self._cell = []
        elif tag == "figure":
            self.figures.append(0)
        elif tag == "figcaption" and self.figures:
            self.figures[-1] += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def scan(html: str) -> _Scan:
    parser = _Scan()
    parser.feed(html)
    return parser


def pdf_page_sizes(pdf: Path) -> list[tuple[float, float]]:
    """Width and height (pt) of every page, from poppler's ``pdfinfo``."""
    pages = int(re.search(r"Pages:\s+(\d+)", _run("pdfinfo", str(pdf))).group(1))
    text = _run("pdfinfo", "-f", "1", "-l", str(pages), str(pdf))
    sizes = [(float(w), float(h)) for w, h in
             re.findall(r"Page\s+\d+ size:\s+([\d.]+) x ([\d.]+) pts", text)]
    assert len(sizes) == pages
    return sizes


def pdf_text(pdf: Path) -> str:
    return _run("pdftotext", "-layout", str(pdf), "-")


def keep_artifacts(case: str, out: Path) -> Path:
    """Copy the report into the artifacts folder and convert its pages to PNG."""
    target = ARTIFACTS / case
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in ("report.html", "report.pdf", "results.json"):
        if (out / name).exists():
            shutil.copy(out / name, target / name)
    _run("pdftoppm", "-png", "-r", "60", str(out / "report.pdf"), str(target / "page"))
    return target


def assert_well_formed(out: Path) -> str:
    """A4 on every page, no "…" or "NaN" in any table cell, one caption per figure.

    Returns the PDF's text.
    """
    sizes = pdf_page_sizes(out / "report.pdf")
    assert sizes, "the PDF has no pages"
    for number, (w, h) in enumerate(sizes, start=1):
        assert abs(w - A4_PT[0]) < 1.5 and abs(h - A4_PT[1]) < 1.5, (number, w, h)
    html = (out / "report.html").read_text(encoding="utf-8")
    parsed = scan(html)
    assert parsed.cells, "the report has no tables"
    bad = [c for c in parsed.cells if "…" in c or "..." in c or re.search(r"\bnan\b", c, re.I)
           or c in ("None", "inf", "-inf")]
    assert not bad, bad
    assert parsed.figures and all(n == 1 for n in parsed.figures), parsed.figures
    # In the printed PDF, each figure's caption is there once, numbered in order.
    text = pdf_text(out / "report.pdf")
    for k in range(1, len(parsed.figures) + 1):
        assert len(re.findall(rf"Figure {k}\.", text)) == 1, k
    assert f"Figure {len(parsed.figures) + 1}." not in text
    assert "NaN" not in text and "…" not in text
    # Self-contained: nothing is fetched from elsewhere.
    assert not re.search(r"""(src|href)=["'](https?:|//|/)""", html)
    return text


def _run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout
