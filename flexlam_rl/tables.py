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
    (``rows[name]`` as returned by :func:`flexlam_rl.evaluate.reconstruction.reconstruction_by_budget`)."""
    budgets = list(budgets) if budgets is not None else sorted({int(k) for r in rows.values() for k in r["mse"]})
    body = [[name, *(f"{at_budget(r['mse'], k):.5f}" if at_budget(r["mse"], k) is not None else "-" for k in budgets),
             f"{r['null']:.5f}", f"{r['copy']:.5f}"] for name, r in rows.items()]
    return markdown_table(["model", *(f"k={k}" for k in budgets), "all-null", "copy o_t"], body)


def control_table(report: dict[str, Any]) -> str:
    """What the tokens do per budget (a :func:`flexlam_rl.evaluate.diagnosis.controllability` report): next-frame error on
    the changed pixels with the transition's own tokens and with another transition's, the controllability
    score, and the whole-frame error with own tokens."""
    budgets = sorted(int(k) for k in report["controllability"])
    changed, whole = report["mse_changed"], report["mse"]
    rows = [["changed px, own tokens", *(f"{at_budget(changed, k)['own']:.5f}" for k in budgets), f"{report['null_changed']:.5f}"],
            ["changed px, shuffled tokens", *(f"{at_budget(changed, k)['shuffled']:.5f}" for k in budgets), ""],
            ["controllability", *(f"{at_budget(report['controllability'], k):.2f}" for k in budgets), ""],
            ["whole frame, own tokens", *(f"{at_budget(whole, k)['own']:.5f}" for k in budgets), f"{report['null']:.5f}"]]
    return markdown_table(["next-frame MSE", *(f"k={k}" for k in budgets), "all-null"], rows)


def at_budget(table: dict, k: int) -> Any:
    """``table[k]`` whether its keys are ints or, read back from JSON, strings; None when absent."""
    return table.get(k, table.get(str(k)))
