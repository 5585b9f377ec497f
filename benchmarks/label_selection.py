"""Which transitions to label: translator quality against label count, per label-selection strategy.

    python benchmarks/label_selection.py [--scale default] [--seeds 0 1 2 ...] [--threads 1] [--out benchmarks/results/labels]

Per suite of the scale and seed: the benchmark's FlexLAM (trained, or reused from the benchmark's cache, by the same
rule), then for every strategy (``random``, ``coverage``, ``uncertainty``, ``diversity``) and label fraction
(0.25% .. 5% of the training transitions, standard protocol) a translator with the benchmark's settings, scored
on the held-out expert transitions at the full code (k = K): accuracy (MiniGrid) or R^2 (PointReach). Every
strategy is paired with ``random`` on the same seed (same LAM, same label count); cells are decided with the
benchmark's statistics (exact sign-flip test over seeds, Benjamini-Hochberg across the cells). The label saving:
per seed, the label count at which a strategy reaches random's score at 2% (interpolated on a log scale;
beyond 5% when it never does), with its interval over seeds. Each (suite, seed) is saved as it finishes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flexlam_rl.align import AlignConfig, LabelConfig, label_and_eval_sets, run_alignment
from flexlam_rl.align.strategies import STRATEGIES
from flexlam_rl.bench.report import adjust_verdicts
from flexlam_rl.bench.run import collect_suite, seed_models
from flexlam_rl.bench.spec import load_scale
from flexlam_rl.bench.stats import paired_test, verdict
from flexlam_rl.checkpoint import atomic_path, atomic_write_bytes, atomic_write_json, read_json
from flexlam_rl.sources import cache_root
from flexlam_rl.tables import markdown_table

FRACTIONS = [0.0025, 0.005, 0.01, 0.02, 0.05]
REFERENCE = 0.02  # the savings are counted against random at this fraction


def run_seed(bench: Any, suite: Any, seed: int, cache: Path) -> dict[str, Any]:
    models, data = seed_models(bench, suite, seed, cache, log=lambda msg: print(f"  [{suite.name} seed {seed}] {msg}", flush=True),
                               flexlam_only=True)  # the strategies only ever align the FlexLAM
    lam = models["flexlam"]
    ids = collect_suite(suite, bench.data_seed)
    all_ids = [i for task in suite.tasks for i in ids[task].values()]
    pool, evaluation = label_and_eval_sets(all_ids, [ids[t]["expert"] for t in suite.tasks], bench.heldout_fraction, bench.data_seed)
    align = AlignConfig(**{**bench.translator, "seed": seed})
    scores: dict[str, dict[str, float]] = {}
    for strategy in STRATEGIES:
        for fraction in FRACTIONS:
            count = max(1, round(fraction * len(data.train)))
            labels = LabelConfig(count=min(count, len(pool)), strategy=strategy, seed=seed)
            result = run_alignment(lam, pool, evaluation, labels, align, [lam.num_tokens])
            scores.setdefault(strategy, {})[f"{fraction:g}"] = result.scores[lam.num_tokens]
            print(f"  [{suite.name} seed {seed}] {strategy} {fraction:g}: {result.scores[lam.num_tokens]:.3f}", flush=True)
    return {"suite": suite.name, "seed": seed, "scores": scores, "pool": len(data.train), "metric": result.metric,
            "counts": {f"{f:g}": max(1, round(f * len(data.train))) for f in FRACTIONS}}


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
            finite = np.isfinite(needed)
            test = paired_test(needed[finite]) if finite.all() else None
            savings.append({"suite": suite, "strategy": strategy, "reference_labels": mine[0]["counts"][f"{REFERENCE:g}"],
                            "labels_to_match_random_2pct": float(needed.mean()) if finite.all() else None,
                            "ci95": list(test.ci) if test and test.ci else None, "n_seeds": len(mine),
                            "seeds_never_matching": int((~finite).sum()), "per_seed": [float(v) for v in needed]})
    adjust_verdicts(claims)
    return {"curves": curves, "claims": claims, "savings": savings}


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="default")
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/labels"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench = load_scale(args.scale)
    cache = cache_root() / "bench"
    for suite in bench.suites:
        for seed in args.seeds or bench.seeds:
            path = args.out / "per_seed" / f"{suite.name}_seed{seed}.json"
            if not path.is_file():
                atomic_write_json(path, run_seed(bench, suite, seed, cache))
    runs = [read_json(p, "seed") for p in sorted((args.out / "per_seed").glob("*.json"))]
    result = {"command": "python benchmarks/label_selection.py " + " ".join(sys.argv[1:]), "scale": args.scale,
              "fractions": FRACTIONS, **aggregate(runs)}
    atomic_write_json(args.out / "results.json", result)
    plot(result, args.out / "accuracy_vs_labels.png")
    rows = [[c["suite"], c["strategy"], c["reference_labels"],
             "never (some seed)" if c["labels_to_match_random_2pct"] is None else f"{c['labels_to_match_random_2pct']:.0f}",
             "-" if not c["ci95"] else f"[{c['ci95'][0]:.0f}, {c['ci95'][1]:.0f}]", c["n_seeds"]] for c in result["savings"]]
    text = "\n".join([f"# Label selection ({args.scale})", "", f"`{result['command']}`", "",
                      markdown_table(["suite", "strategy", "random's labels at 2%", "labels to match it", "95% CI", "seeds"], rows),
                      "", markdown_table(["suite", "strategy - random", "fraction", "diff", "verdict (adjusted)"],
                                         [[c["suite"], c["protocol"], c["k"], f"{c['diff']:+.3f}", c["verdict_adjusted"]]
                                          for c in result["claims"]]), ""])
    atomic_write_bytes(args.out / "results.md", text.encode())
    print(text)


if __name__ == "__main__":
    main()
