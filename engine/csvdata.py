"""Points from a CSV file, read with Python's csv module: quoted fields, `,` `;` or tab separators, an optional
header row, and one message per bad row (nothing is evaluated; every cell must be a plain decimal number).

A row is `x1[, x2], label`: the inputs, then a class label (0..MAX_CLASSES-1) or a regression target.
"""

import csv
import io
import math
import re
from dataclasses import dataclass

MAX_CLASSES = 10
SEPARATORS = ("\t", ";", ",")  # tried in this order on the first row: a tab or ; file may use decimal commas
NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?$")


@dataclass(frozen=True)
class CsvPoints:
    """The good rows as [inputs..., label], the messages for bad rows (1-based line numbers), what was detected."""

    points: list[list[float]]
    errors: list[tuple[int, str]]
    separator: str
    header: tuple[str, ...] | None
    n_inputs: int

    @property
    def n_classes(self) -> int:
        """Classes seen (labels are 0..K-1); 0 when there are no points."""
        return int(max(p[-1] for p in self.points)) + 1 if self.points else 0


def _shown(value: str) -> str:
    """A cell as quoted in a message: at most 24 characters (pages render messages as text, never HTML)."""
    return repr(value if len(value) <= 24 else value[:21] + "...")


def _separator(text: str) -> str:
    """The separator of the first non-empty line: a tab or ; when one occurs there, else a comma."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return next((s for s in SEPARATORS if s in first), ",")


def _is_number(cell: str, separator: str) -> bool:
    return bool(NUMBER.match(cell if separator == "," else cell.replace(",", ".")))


def parse_points(
    text: str,
    task: str = "classification",
    n_inputs: int = 2,
    max_rows: int = 1000,
    input_limit: float = 10.0,
    target_limit: float = 1000.0,
) -> CsvPoints:
    """Rows of `n_inputs` inputs and a label; a first row with no number in it is a header.

    classification: the label is a whole number 0..9 (two classes give a binary task, more a multiclass one);
    regression: any number within +-target_limit. Inputs lie within +-input_limit. Raises ValueError('text: ...')
    when the file is not CSV at all or has more than `max_rows` rows; bad rows become messages, never exceptions.
    """
    if task not in ("classification", "regression"):
        raise ValueError("task: choose classification or regression")
    separator = _separator(text)
    names = [f"x{i + 1}" for i in range(n_inputs)] + ["label"]
    points, errors, header = [], [], None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator, skipinitialspace=True, strict=True)
    try:
        for row in reader:
            number = reader.line_num
            cells = [c.strip() for c in row]
            if not any(cells):
                continue
            if header is None and not points and not errors and not any(_is_number(c, separator) for c in cells):
                header = tuple(cells)
                continue
            if len(points) + len(errors) >= max_rows:
                raise ValueError(f"text: more than {max_rows} rows; at most {max_rows}")
            if len(cells) != len(names):
                errors.append(
                    (number, f"row {number}: expected {len(names)} values {','.join(names)}, found {len(cells)}")
                )
                continue
            values, problems = [], []
            for name, cell in zip(names, cells):
                if not _is_number(cell, separator):
                    problems.append(f"{name} {_shown(cell)} is not a number")
                    continue
                value = float(cell if separator == "," else cell.replace(",", "."))
                if not math.isfinite(value):
                    problems.append(f"{name} {_shown(cell)} is not finite")
                elif name != "label" and abs(value) > input_limit:
                    problems.append(f"{name} {cell} is outside [-{input_limit:g}, {input_limit:g}]")
                elif (
                    name == "label"
                    and task == "classification"
                    and not (value == int(value) and 0 <= value < MAX_CLASSES)
                ):
                    problems.append(f"label {_shown(cell)} must be a class 0 to {MAX_CLASSES - 1}")
                elif name == "label" and abs(value) > target_limit:
                    problems.append(f"label {cell} is outside [-{target_limit:g}, {target_limit:g}]")
                values.append(value)
            if problems:
                errors.append((number, f"row {number}: " + "; ".join(problems)))
            else:
                points.append(values)
    except csv.Error as e:
        raise ValueError(f"text: line {reader.line_num} is not valid CSV ({e})") from None
    return CsvPoints(points, errors, separator, header, n_inputs)


def targets(points: list[list[float]], task: str) -> tuple[list[list[float]], list[list[float]]]:
    """X and Y of a spec's explicit data: classification labels become a 0/1 column (2 classes) or one-hot rows."""
    X = [p[:-1] for p in points]
    labels = [p[-1] for p in points]
    if task == "regression":
        return X, [[y] for y in labels]
    k = int(max(labels)) + 1 if labels else 0
    if k <= 2:
        return X, [[float(y)] for y in labels]
    return X, [[1.0 if int(y) == j else 0.0 for j in range(k)] for y in labels]


def to_csv(X, labels, header=("x1", "x2", "label")) -> str:
    """Points as CSV text with a header row (floats written exactly, by repr); the inverse of parse_points."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for x, y in zip(X, labels):
        writer.writerow([repr(float(v)) for v in x] + [repr(float(y)) if float(y) != int(y) else str(int(y))])
    return out.getvalue()
