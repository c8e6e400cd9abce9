"""Result rows and the table printed at the end (plain text and Markdown)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Row:
    scenario: str
    metric: str
    par: float | None
    base: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.par is None or not self.base:
            return None
        return self.par / self.base


def fmt(x: float | None) -> str:
    if x is None:
        return "—"
    if float(x).is_integer() and abs(x) < 1e9:
        return f"{int(x):,}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def cells(row: Row) -> list[str]:
    ratio = "—" if row.ratio is None else f"{row.ratio:.2f}"
    return [row.scenario, row.metric, fmt(row.par), fmt(row.base), ratio, row.note]


HEAD = ["scenario", "metric", "PAR", "baseline", "ratio", "note"]


def text_table(rows: list[Row]) -> str:
    table = [HEAD] + [cells(r) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEAD))]
    lines = []
    for n, r in enumerate(table):
        lines.append("  ".join(c.ljust(w) if i < 2 or i == 5 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEAD) + " |", "| --- | --- | ---: | ---: | ---: | --- |"]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def save(rows: list[Row], facts: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        {"facts": facts, "rows": [dict(asdict(r), ratio=r.ratio) for r in rows]}, indent=2))
    (out / "results.md").write_text(markdown_table(rows) + "\n")
