"""Spreadsheet-safe CSV cells (no Django here, like the rest of ``studies.reports``).

A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
is run as a formula by Excel, LibreOffice and Google Sheets when the CSV is
opened (OWASP "CSV injection"): a free-text answer ``=HYPERLINK(…)`` would
become a live link. Such text cells get a leading apostrophe, which every
spreadsheet shows as text and hides. Numbers are never touched (``-0.5``
stays a number), and the Parquet export keeps the raw value.
"""

from __future__ import annotations

import numpy as np
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
        # A plain NumPy bool mask: on pandas' "string" dtypes (Python or Arrow storage)
        # ``str.startswith`` gives a nullable or string-typed result, which ``any()`` and
        # ``&`` refuse, most visibly on an empty column.
        values = series.to_numpy(dtype=object)
        risky = np.fromiter((isinstance(v, str) and v.startswith(FORMULA_PREFIXES) for v in values),
                            dtype=bool, count=len(values))
        if risky.any():
            escaped = values.copy()
            escaped[risky] = ["'" + v for v in values[risky]]
            out[column] = pd.Series(escaped, index=series.index, name=column).astype(series.dtype)
    return out
