"""Results as CSV, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from classifier.model import Prediction

__all__ = ["CSV_COLUMNS", "ClassifiedFile", "results_csv"]

CSV_COLUMNS: Final[tuple[str, ...]] = ("file name", "rank", "label", "probability", "model")

# A cell starting with one of these is run as a formula by spreadsheet programs.
_FORMULA_STARTS: Final[tuple[str, ...]] = ("=", "+", "-", "@", "\t", "\r")
# Control characters (NUL above all) have no place in a file name shown in a spreadsheet.
_CONTROL_CHARACTERS: Final[re.Pattern[str]] = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class ClassifiedFile:
    """One file's predictions and the model that made them."""

    name: str
    predictions: Sequence[Prediction]
    model: str


def results_csv(files: Iterable[ClassifiedFile]) -> str:
    """One row per prediction: file name, rank (1 = most probable), label, probability, model.

    Parameters
    ----------
    files
        The classified files, in the order to list them.

    Returns
    -------
    str
        CSV text with a header row.  Every field is quoted, so a spreadsheet
        that splits on ``;`` or ``,`` keeps each name in one cell; names that
        would run as formulas are prefixed with ``'``, and control characters
        are removed.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_COLUMNS)
    for file in files:
        for rank, prediction in enumerate(file.predictions, start=1):
            writer.writerow(
                (_inert(file.name), rank, prediction.label, f"{prediction.probability:.6f}", file.model)
            )
    return buffer.getvalue()


def _inert(cell: str) -> str:
    cell = _CONTROL_CHARACTERS.sub("", cell)
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell
