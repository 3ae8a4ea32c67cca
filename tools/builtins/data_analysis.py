"""data_analysis: descriptive statistics of a list of numbers or of one CSV column."""

from __future__ import annotations

import csv
import io
import math
import statistics

from pydantic import BaseModel, ConfigDict, Field

from tools.registry import ToolError, register

MAX_VALUES = 100_000
MAX_CSV_CHARS = 1_000_000


class DataAnalysisArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    numbers: list[float] | None = Field(default=None, max_length=MAX_VALUES,
                                        description="The values, e.g. [3, 5.5, 9]. Give this or csv.")
    csv: str | None = Field(default=None, max_length=MAX_CSV_CHARS,
                            description="CSV text with a header row. Give this or numbers.")
    column: str | None = Field(default=None, max_length=200,
                               description="CSV column to analyse; optional when only one column is numeric.")


def _number(cell: str) -> float | None:
    try:
        value = float(cell.strip().replace(",", "")) if cell.strip() else None
    except ValueError:
        return None
    return value


def column_values(text: str, column: str | None) -> tuple[str, list[float]]:
    rows = [row for row in csv.reader(io.StringIO(text.strip())) if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise ToolError("CSV needs a header row and at least one data row")
    header, data = [cell.strip() for cell in rows[0]], rows[1:]
    if len(data) > MAX_VALUES:
        raise ToolError(f"the CSV has {len(data)} data rows, more than the {MAX_VALUES} allowed")
    if column is not None:
        if column not in header:
            raise ToolError(f"no column '{column}' (columns: {', '.join(header)})")
        index = header.index(column)
    else:
        numeric = [i for i in range(len(header)) if all(
            i < len(row) and _number(row[i]) is not None for row in data)]
        if len(numeric) != 1:
            raise ToolError(f"say which column to analyse (columns: {', '.join(header)})")
        index = numeric[0]
    values = []
    for line, row in enumerate(data, start=2):
        cell = row[index] if index < len(row) else ""
        value = _number(cell)
        if value is None:
            raise ToolError(f"row {line}, column '{header[index]}': {cell.strip()!r} is not a number")
        values.append(value)
    return header[index], values


def describe(values: list[float]) -> dict:
    if not values:
        raise ToolError("no values to analyse")
    if any(not math.isfinite(value) for value in values):
        raise ToolError("values must be finite numbers")
    ordered = sorted(values)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {
        "count": len(ordered),
        "mean": round(statistics.fmean(ordered), 10),
        "median": statistics.median(ordered),
        "stdev": round(statistics.stdev(ordered), 10) if len(ordered) >= 2 else None,
        "min": ordered[0],
        "max": ordered[-1],
        "q1": q1,
        "q3": q3,
    }


@register(name="data_analysis", args=DataAnalysisArgs, timeout_s=10.0, pure=True,
          description="Descriptive statistics (count, mean, median, sample stdev, min, max, quartiles) "
                      "of a list of numbers or of one numeric column of CSV text.")
def data_analysis(arguments: DataAnalysisArgs, context: object) -> dict:
    if (arguments.numbers is None) == (arguments.csv is None):
        raise ToolError("give either numbers or csv, not both or neither")
    if arguments.numbers is not None:
        return describe(arguments.numbers)
    name, values = column_values(arguments.csv or "", arguments.column)
    return {"column": name, **describe(values)}
