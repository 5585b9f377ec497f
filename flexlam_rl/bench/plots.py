"""Benchmark figures: budget curves, learning curves and the variation map's heatmap (from an aggregated result)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import atomic_path
from ..tables import at_budget
from .spec import METRICS, BenchConfig


def plot_budget_curves(result: dict[str, Any], cfg: BenchConfig, path: Path, view: str = "equal_updates") -> Path:
    """Mean +- standard error per budget, FlexLAM vs fixed, one panel per (suite, metric, protocol)."""
    from ..media import pyplot

    plt = pyplot()

    summary = result["summary"][view]
    panels = [(s, m, p) for s, ms in summary.items() for m, ps in ms.items() for p in ps]
    cols = 4
    rows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, (suite, metric, protocol) in zip(axes.flat, panels):
        cell = summary[suite][metric][protocol]
        for method, style in (("flexlam", "o-"), ("fixed", "s--")):
            means = [at_budget(cell[method], k)["mean"] for k in cfg.budgets]
            ses = [0 if math.isnan(at_budget(cell[method], k)["se"]) else at_budget(cell[method], k)["se"] for k in cfg.budgets]
            ax.errorbar(cfg.budgets, means, yerr=ses, fmt=style, capsize=3, label=method)
        ax.set_xscale("log", base=2)
        ax.set_xticks(cfg.budgets, [str(k) for k in cfg.budgets])
        ax.set_title(f"{suite}: {METRICS[metric][1]}" + ("" if protocol == "any" else f"\n({protocol} labels)"), fontsize=9)
        ax.set_xlabel("token budget k")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path, suffix=".tmp.png") as tmp:  # a unique temp: parallel jobs report at once
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def plot_learning_curves(result: dict[str, Any], cfg: BenchConfig, path: Path) -> Path:
    """Held-out MSE per budget against updates and against wall seconds: FlexLAM at every k (solid) and each
    fixed LAM at its K (dashed, same colour), means over seeds."""
    from ..media import pyplot

    plt = pyplot()

    suites = list(result["learning_curves"])
    fig, axes = plt.subplots(len(suites), 2, figsize=(11, 3.6 * len(suites)), squeeze=False)
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(cfg.budgets)))
    for row, suite in zip(axes, suites):
        curves = result["learning_curves"][suite]
        for x_key, ax in zip(("updates", "wall_s"), row):
            for colour, k in zip(colours, cfg.budgets):
                for name, style in (("flexlam", "-"), (f"fixed_{k}", "--")):
                    points = [p for p in curves.get(name, []) if str(k) in p["mse"] or k in p["mse"]]
                    if points:
                        ax.plot([p[x_key] for p in points], [at_budget(p["mse"], k) for p in points], style, color=colour,
                                label=f"{'FlexLAM' if name == 'flexlam' else 'fixed'} k={k}")
            ax.set_yscale("log")
            ax.set_xlabel("updates" if x_key == "updates" else "wall seconds (updates x the model's mean s/update)")
            ax.set_ylabel("held-out next-frame MSE")
            ax.set_title(f"{suite}")
            ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def plot_gap_heatmap(result: dict[str, Any], cfg: BenchConfig, path: Path, view: str = "equal_updates") -> Path:
    """FlexLAM minus fixed (signed so that > 0 means FlexLAM is better) over suites (variation levels) x label
    runs (the label-scarcity dial), one panel per (metric, budget); ``*`` marks cells whose 95% CI excludes 0."""
    from ..media import pyplot

    plt = pyplot()

    suites = [s.name for s in cfg.suites if s.name in result["seeds_done"]]
    runs = [run[0] for run in cfg.label_runs()]
    metrics = ["align", "bc_return"]
    cells = {(c["suite"], c["metric"], c["protocol"], c["k"]): c for c in result["claims"] if c["view"] == view}
    fig, axes = plt.subplots(len(metrics), len(cfg.budgets), figsize=(3.2 * len(cfg.budgets) + 1, 0.5 * len(suites) * 2 + 2.5),
                             squeeze=False)
    for row, metric in enumerate(metrics):
        for col, k in enumerate(cfg.budgets):
            ax = axes[row][col]
            values = np.full((len(suites), len(runs)), np.nan)
            for i, suite in enumerate(suites):
                for j, run in enumerate(runs):
                    c = cells.get((suite, metric, run, k))
                    if c is not None:
                        values[i, j] = c["diff"] if c["higher_is_better"] else -c["diff"]
                        mark = "*" if c["verdict_adjusted"] in ("better", "worse") else ""
                        ax.text(j, i, f"{values[i, j]:+.2f}{mark}", ha="center", va="center", fontsize=7)
            bound = max(float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0, 1e-6)
            ax.imshow(values, cmap="RdBu", vmin=-bound, vmax=bound, aspect="auto")
            ax.set_xticks(range(len(runs)), runs, rotation=45, ha="right", fontsize=7)
            ax.set_yticks(range(len(suites)), suites if col == 0 else [""] * len(suites), fontsize=8)
            ax.set_title(f"{METRICS[metric][1]}, k={k}", fontsize=8)
    fig.suptitle("FlexLAM minus fixed (> 0: FlexLAM better; * 95% CI excludes 0)", fontsize=9)
    fig.tight_layout()
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
