"""Tables for the command-line clients, drawn by rich: columns sized to their contents,
numbers right-aligned, never wrapped (a pipe or a file gets whole lines too)."""

from __future__ import annotations

import io
from collections.abc import Sequence

_WIDE = 100_000  # columns of the virtual terminal: a row is never wrapped


def render(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="")
    for i, header in enumerate(headers):
        numeric = bool(rows) and all(_is_number(row[i]) for row in rows)
        table.add_column(Text(header), justify="right" if numeric else "left", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(_cell(value)) for value in row))  # Text: no markup in ids
    out = io.StringIO()
    Console(file=out, width=_WIDE, color_system=None, highlight=False).print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines() if line.strip())


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
