"""Spreadsheet-safe CSV cells (no Django here, like the rest of ``studies.reports``).

A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
is run as a formula by Excel, LibreOffice and Google Sheets when the CSV is
opened (OWASP "CSV injection"): a free-text answer ``=HYPERLINK(…)`` would
become a live link. Such text cells get a leading apostrophe, which every
spreadsheet shows as text and hides. Numbers are never touched (``-0.5``
stays a number), and the Parquet export keeps the raw value.
"""

from __future__ import annotations

import pandas as pd

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

__all__ = ["FORMULA_PREFIXES", "escape_formula_cells"]


def escape_formula_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells beginning with a formula character start with ``'``.

    Example:
        >>> df = pd.DataFrame({"a": ["=1+1", "ok", None], "b": [-1.5, 2.0, 3.0]})
        >>> escape_formula_cells(df)["a"].tolist(), escape_formula_cells(df)["b"].tolist()
        (["'=1+1", 'ok', None], [-1.5, 2.0, 3.0])
    """
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
            continue
        is_text = series.map(lambda v: isinstance(v, str))
        risky = is_text & series.where(is_text, "").astype(str).str.startswith(FORMULA_PREFIXES)
        if risky.any():
            if pd.api.types.is_object_dtype(series):
                out[column] = series.where(~risky, "'" + series.where(risky, "").astype(str))
            else:
                out[column] = series.mask(risky, "'" + series.astype(str))
    return out
