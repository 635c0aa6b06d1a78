"""A table of the report: a title, headers, rows and a note (Markdown and HTML render the same)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    """One table of the report."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""
    figures: tuple[str, ...] = ()  # plot files shown right after the table
