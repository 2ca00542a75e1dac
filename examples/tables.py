"""Results tables of the examples: mean ± std cells and Markdown tables.

NumPy only (no TensorFlow), so that it is cheap to import.
"""

import math

import numpy as np

__all__ = [
    "format_mean_std",
    "format_table",
    "mean_std",
    "median_of_last",
    "print_table",
]


def mean_std(values):
    """`(mean, standard deviation)` of a list of numbers (ddof 0)."""
    values = np.asarray(values, dtype="float64")
    return float(values.mean()), float(values.std())


def format_mean_std(values, digits=1):
    """`"mean ± std"` of a list of numbers (just the value if only one)."""
    mean, std = mean_std(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def median_of_last(errors, count):
    """The median of the last `count` values (the paper's ablation metric)."""
    return float(np.median(errors[-count:]))


def _cell(value, digits):
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _line(cells, widths):
    padded = (c.ljust(w) for c, w in zip(cells, widths, strict=True))
    return "| " + " | ".join(padded) + " |"


def format_table(headers, rows, title=None, digits=2):
    """A Markdown table: `headers` a list of strings, `rows` of values.

    Floats are printed with `digits` decimals (`nan` as is); other values
    with `str`. A `title` comes first, followed by a blank line.
    """
    headers = [str(h) for h in headers]
    text = [[_cell(v, digits) for v in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in text)) if text else len(h)
        for i, h in enumerate(headers)
    ]
    lines = [title, ""] if title else []
    lines.append(_line(headers, widths))
    lines.append(_line(["-" * w for w in widths], widths))
    lines += [_line(row, widths) for row in text]
    return "\n".join(lines)


def print_table(headers, rows, title=None, digits=2):
    """Prints `format_table(...)` and a blank line."""
    print(format_table(headers, rows, title, digits), end="\n\n", flush=True)
