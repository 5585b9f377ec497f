"""Which transitions to label: translator quality against label count, per label-selection strategy.

``benchmarks/label_selection.py`` is the command line.

Per suite of the scale and seed: the benchmark's FlexLAM (trained, or reused from the benchmark's cache, by the same
rule), then for every strategy (``random``, ``coverage``, ``uncertainty``, ``diversity``) and label fraction
(0.25% .. 5% of the training transitions, standard protocol) a translator with the benchmark's settings, scored
on the held-out expert transitions at the full code (k = K): accuracy (MiniGrid) or R^2 (PointReach). Every
strategy is paired with ``random`` on the same seed (same LAM, same label count); cells are decided with the
benchmark's statistics (exact sign-flip test over seeds, Benjamini-Hochberg across the cells). The label saving:
per seed, the label count at which a strategy reaches random's score at 2% (interpolated on a log scale;
beyond 5% when it never does); its median over seeds with an order-statistic interval (a seed that never
catches up has no finite count, so no mean exists, but it still ranks). Each (suite, seed) is saved as it finishes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..align import (
    AlignConfig,
    AlignOptions,
    LabelConfig,
    action_spec,
    embed_transitions,
    label_and_eval_sets,
    run_alignment,
    select_labels,
    train_translator,
)
from ..align.strategies import STRATEGIES
from ..checkpoint import atomic_path
from ..tables import markdown_table
from .report import adjust_verdicts
from .run import collect_suite, label_count, seed_models
from .stats import median_interval, paired_test, verdict

FRACTIONS = [0.0025, 0.005, 0.01, 0.02, 0.05]
REFERENCE = 0.02  # the savings are counted against random at this fraction


def seed_setup(bench: Any, suite: Any, seed: int, cache: Path) -> tuple[Any, Any, Any, Any, AlignConfig]:
    """The seed's FlexLAM (the strategies only ever align it), its data, the label pool, the scored set, the
    translator settings: the benchmark's, so a strategy is judged on the LAM the benchmark judges."""
    models, data = seed_models(bench, suite, seed, cache, log=lambda msg: print(f"  [{suite.name} seed {seed}] {msg}", flush=True),
                               flexlam_only=True)
    ids = collect_suite(suite, bench.data_seed)
    all_ids = [i for task in suite.tasks for i in ids[task].values()]
    pool, evaluation = label_and_eval_sets(all_ids, [ids[t]["expert"] for t in suite.tasks], bench.heldout_fraction, bench.data_seed)
    return models["flexlam"], data, pool, evaluation, AlignConfig(**{**bench.translator, "seed": seed})


def run_seed(bench: Any, suite: Any, seed: int, cache: Path) -> dict[str, Any]:
    lam, data, pool, evaluation, align = seed_setup(bench, suite, seed, cache)
    scores: dict[str, dict[str, float]] = {}
    for strategy in STRATEGIES:
        for fraction in FRACTIONS:
            labels = LabelConfig(count=min(label_count(fraction, len(data.train)), len(pool)), strategy=strategy, seed=seed)
            result = run_alignment(lam, pool, evaluation, labels, align, AlignOptions([lam.num_tokens]))
            scores.setdefault(strategy, {})[f"{fraction:g}"] = result.scores[lam.num_tokens]
            print(f"  [{suite.name} seed {seed}] {strategy} {fraction:g}: {result.scores[lam.num_tokens]:.3f}", flush=True)
    return {"suite": suite.name, "seed": seed, "scores": scores, "pool": len(data.train), "metric": result.metric,
            "counts": {f"{f:g}": label_count(f, len(data.train)) for f in FRACTIONS}}


def measure_cost(bench: Any, suite: Any, seed: int, cache: Path) -> list[dict[str, Any]]:
    """Seconds to pick 2% labels with each strategy, beside the translator fit those labels feed (one run, so
    the ratio holds on a noisy machine; run it alone)."""
    lam, data, pool, _, align = seed_setup(bench, suite, seed, cache)
    count = min(label_count(REFERENCE, len(data.train)), len(pool))
    spec = action_spec(pool.sources[int(pool.source_index[0])].action_space)
    rows = []
    for strategy in STRATEGIES:
        start = time.perf_counter()
        chosen = select_labels(pool, LabelConfig(count=count, strategy=strategy, seed=seed), lam=lam)
        select_s = time.perf_counter() - start
        start = time.perf_counter()
        train_translator(lam, embed_transitions(lam, pool, chosen), spec, align)
        fit_s = time.perf_counter() - start
        batch = pool.__getitems__(chosen)  # what was picked: how many labels went to frames that do not change
        unchanged = float(np.mean([np.array_equal(a, b) for a, b in zip(batch["obs"], batch["next_obs"])]))
        rows.append({"suite": suite.name, "strategy": strategy, "labels": count, "select_s": select_s, "fit_s": fit_s,
                     "select_over_fit": select_s / fit_s, "unchanged_frame_share": unchanged, "seed": seed,
                     "threads": torch.get_num_threads()})
        print(f"  [{suite.name} seed {seed}] cost {strategy}: select {select_s:.2f} s, fit {fit_s:.2f} s", flush=True)
    return rows


def labels_to_match(scores: dict[str, float], counts: dict[str, int], target: float) -> float:
    """The label count (log-interpolated) at which ``scores`` first reaches ``target``; inf when it never does."""
    xs = [np.log(counts[f"{f:g}"]) for f in FRACTIONS]
    ys = [scores[f"{f:g}"] for f in FRACTIONS]
    if ys[0] >= target:
        return float(np.exp(xs[0]))
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if y1 >= target > y0:
            return float(np.exp(x0 + (target - y0) / (y1 - y0) * (x1 - x0)))
    return float("inf")


def _finite(value: float) -> float | None:
    """JSON has no infinity: None stands for "never, within 5% labels"."""
    return float(value) if np.isfinite(value) else None


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    curves, claims, savings = [], [], []
    for suite in dict.fromkeys(r["suite"] for r in runs):
        mine = sorted((r for r in runs if r["suite"] == suite), key=lambda r: r["seed"])
        for strategy in STRATEGIES:
            for fraction in FRACTIONS:
                key = f"{fraction:g}"
                values = np.array([r["scores"][strategy][key] for r in mine])
                test = paired_test(values)
                curves.append({"suite": suite, "strategy": strategy, "fraction": fraction, "mean": float(values.mean()),
                               "ci95": list(test.ci) if test.ci else None, "n_seeds": len(mine)})
                if strategy != "random":
                    diff = paired_test(values - np.array([r["scores"]["random"][key] for r in mine]))
                    claims.append({"view": "labels", "suite": suite, "metric": "align", "protocol": strategy, "k": key,
                                   "diff": diff.mean, "ci95": list(diff.ci) if diff.ci else None, "half_width": diff.half_width,
                                   "p_value": diff.p_value if len(mine) > 1 else None, "verdict": verdict(diff, True),
                                   "n_seeds": len(mine), "higher_is_better": True, "secondary": False})
            needed = np.array([labels_to_match(r["scores"][strategy], r["counts"], r["scores"]["random"][f"{REFERENCE:g}"])
                               for r in mine])
            median, ci = median_interval(needed)  # a seed that never catches up ranks last (+inf): no mean exists
            savings.append({"suite": suite, "strategy": strategy, "reference_labels": mine[0]["counts"][f"{REFERENCE:g}"],
                            "labels_to_match_random_2pct": _finite(median),
                            "ci95": [_finite(v) for v in ci] if ci else None, "n_seeds": len(mine),
                            "seeds_never_matching": int((~np.isfinite(needed)).sum()), "per_seed": [_finite(v) for v in needed]})
    adjust_verdicts(claims)
    return {"curves": curves, "claims": claims, "savings": savings}


def plot(result: dict[str, Any], path: Path) -> None:
    from ..media import pyplot

    plt = pyplot()

    suites = list(dict.fromkeys(c["suite"] for c in result["curves"]))
    fig, axes = plt.subplots(1, len(suites), figsize=(5 * len(suites), 3.6), squeeze=False)
    for ax, suite in zip(axes[0], suites):
        for strategy in STRATEGIES:
            rows = [c for c in result["curves"] if c["suite"] == suite and c["strategy"] == strategy]
            ax.plot([100 * c["fraction"] for c in rows], [c["mean"] for c in rows], "o-", label=strategy)
        ax.set_xscale("log")
        ax.set_xlabel("labeled transitions (% of training transitions)")
        ax.set_ylabel("translator accuracy / R^2 (k = K)")
        ax.set_title(f"{suite} ({result['curves'][0]['n_seeds']} seeds, mean)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def report(result: dict[str, Any], scale: str) -> str:
    reference = "more than 5%"
    rows = [[c["suite"], c["strategy"], c["reference_labels"],
             reference if c["labels_to_match_random_2pct"] is None else f"{c['labels_to_match_random_2pct']:.0f}",
             "-" if not c["ci95"] else "[" + ", ".join(reference if v is None else f"{v:.0f}" for v in c["ci95"]) + "]",
             c["seeds_never_matching"], c["n_seeds"]] for c in result["savings"]]
    lines = [f"# Label selection ({scale})", "", f"`{result['command']}`", "",
             "Labels each strategy needs to reach random's translator score at 2% labels: median over seeds, "
             "95% order-statistic interval (\"more than 5%\": it never catches up within the 5% labels tried).", "",
             markdown_table(["suite", "strategy", "random's labels at 2%", "labels to match it (median)", "95% CI",
                             "seeds never matching", "seeds"], rows), "",
             "Each strategy minus random at each label fraction (exact sign-flip test over seeds, Benjamini-Hochberg "
             "across these cells):", "",
             markdown_table(["suite", "strategy - random", "fraction", "diff", "95% CI", "verdict (adjusted)"],
                            [[c["suite"], c["protocol"], c["k"], f"{c['diff']:+.3f}",
                              "-" if not c["ci95"] else f"[{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}]", c["verdict_adjusted"]]
                             for c in result["claims"]]), ""]
    if result.get("cost"):
        cost = result["cost"]
        lines += [f"Cost of picking the labels at 2% (`{cost['command']}`, one seed, {cost['rows'][0]['threads']} thread(s), "
                  "machine otherwise idle), beside the translator fit they feed:", "",
                  markdown_table(["suite", "strategy", "labels", "select (s)", "translator fit (s)", "select / fit",
                                  "labels on unchanged frames"],
                                 [[r["suite"], r["strategy"], r["labels"], f"{r['select_s']:.2f}", f"{r['fit_s']:.2f}",
                                   f"{r['select_over_fit']:.2f}", f"{r['unchanged_frame_share']:.0%}"] for r in cost["rows"]]), ""]
    return "\n".join(lines)
