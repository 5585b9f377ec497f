"""The one markdown-table helper: every table the CLIs print and the benchmarks write goes through it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """``| a | b |`` rows under a ``|---|`` rule; cells are ``str()``-ed, and every row must match the header."""
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"table row {list(row)} has {len(row)} cells for {len(header)} columns")  # a bug, not user input
    lines = ["| " + " | ".join(str(c) for c in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def budget_table(rows: dict[str, dict[str, Any]], budgets: Sequence[int] | None = None) -> str:
    """Held-out MSE per budget: one row per model, plus the all-null and copy references
    (``rows[name]`` as returned by :func:`flexlam_rl.evaluate.reconstruction_by_budget`)."""
    budgets = list(budgets) if budgets is not None else sorted({int(k) for r in rows.values() for k in r["mse"]})
    body = [[name, *(f"{r['mse'][k]:.5f}" if k in r["mse"] else "-" for k in budgets), f"{r['null']:.5f}", f"{r['copy']:.5f}"]
            for name, r in rows.items()]
    return markdown_table(["model", *(f"k={k}" for k in budgets), "all-null", "copy o_t"], body)
