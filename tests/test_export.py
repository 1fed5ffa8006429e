"""Tests for classifier/export.py: the CSV a visitor downloads."""

from __future__ import annotations

import csv
import io

from classifier import Prediction
from classifier.export import CSV_COLUMNS, ClassifiedFile, results_csv

HOPPER = ClassifiedFile(
    "hopper.jpg", [Prediction("military uniform", 0.675, 652), Prediction("suit", 0.02, 834)], "MobileNetV2"
)


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_one_row_per_prediction_with_rank_and_model() -> None:
    rows = _rows(results_csv([HOPPER, ClassifiedFile("cup, with milk.png", [Prediction("espresso", 0.5, 967)], "MobileNet")]))
    assert rows == [
        list(CSV_COLUMNS),
        ["hopper.jpg", "1", "military uniform", "0.675000", "MobileNetV2"],
        ["hopper.jpg", "2", "suit", "0.020000", "MobileNetV2"],
        ["cup, with milk.png", "1", "espresso", "0.500000", "MobileNet"],
    ]


def test_names_a_spreadsheet_would_run_as_formulas_are_made_inert() -> None:
    hostile = ClassifiedFile("=HYPERLINK(\"http://x\")", [Prediction("suit", 0.1, 834)], "MobileNetV2")
    assert _rows(results_csv([hostile]))[1][0] == "'=HYPERLINK(\"http://x\")"


def test_every_field_is_quoted_so_semicolon_spreadsheets_keep_names_whole() -> None:
    hostile = ClassifiedFile("x;=1+1;y.jpg", [Prediction("suit", 0.1, 834)], "MobileNetV2")
    text = results_csv([hostile])
    assert _rows(text)[1][0] == "x;=1+1;y.jpg"
    # Read as a spreadsheet set to ';' reads it: the quotes keep the name in one cell.
    semicolon_rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert semicolon_rows[1][0].startswith("x;=1+1;y.jpg")
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in semicolon_rows for cell in row)


def test_control_characters_never_reach_the_file() -> None:
    named = ClassifiedFile("a\x00b\x1bc\x7f.jpg", [Prediction("suit", 0.1, 834)], "MobileNetV2")
    text = results_csv([named])
    assert _rows(text)[1][0] == "abc.jpg"
    assert not any(ord(character) < 32 and character != "\n" for character in text)


def test_no_files_gives_only_the_header() -> None:
    assert _rows(results_csv([])) == [list(CSV_COLUMNS)]
