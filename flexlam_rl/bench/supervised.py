"""Action labels in pretraining, the ablation: does a head on the first token(s) put the action in the prefix?

``benchmarks/supervised_pretraining.py`` is the command line.

Each arm is a benchmark run of the library's harness (``flexlam_rl.bench``) under its own name, the scale with
``supervision`` set: ``none`` (no labels in pretraining), or ``<head>@<fraction>`` (head ``first``: the first token;
``prefix``: every budget's code; fraction 0.02: all of the translator's 2% standard labels, 0.005: a quarter of
them). Runs resume per (suite, seed) from their seed files under ``benchmarks/results/supervised_pretraining/arms``.
The report (``results.json``, key ``runs``: one object per task, arm and model) and the decisions are made by the
rules in ``PROTOCOL``, fixed on 2026-12-07 before any run of this ablation (docs/benchmarks/supervised.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import atomic_write_json, read_json
from ..data.sources import cache_root
from ..metrics import standard_error
from .run import run_benchmark, suite_key
from .spec import load_scale

OUT = Path("benchmarks/results/supervised_pretraining")
SCALES = ("supervised_small", "supervised_games", "supervised_smoke")  # the last: the tests' pipeline check
ARMS = {"none": None, "first@0.005": {"head": "first", "share": 0.25}, "first@0.02": {"head": "first"},
        "prefix@0.005": {"head": "prefix", "share": 0.25}, "prefix@0.02": {"head": "prefix"}}
PROTOCOL = {
    "date_fixed": "2026-12-07",
    "translator_labels": "the standard 2% labels of every arm; pretraining reads all of them (@0.02) or a seeded quarter (@0.005)",
    "head_rule": "the default head is the one whose @0.02 arm has the higher mean, over tasks, of FlexLAM's best-budget "
                 "translator balanced accuracy (R^2 for Box actions) divided by the all-label IDM's (seed means); ties "
                 "go to 'first' (the simpler)",
    "no_harm_rule": "DoorKey and Breakout do not get worse: for each, the chosen head's @0.02 FlexLAM best-budget balanced "
                    "accuracy is at least the 'none' arm's minus twice the pooled standard error over seeds",
    "bar": "at 2% labels, StarPilot's and BigFish's best-budget translator balanced accuracy reaches 0.85 of the all-label "
           "IDM's; on the flicker suite the first token's probe reads the action better than the distractor",
}
TASKS = {"reach_d3f": "point-reach-pixels-d3f", "doorkey": "minigrid-doorkey", "breakout": "breakout",
         "starpilot": "procgen-starpilot", "bigfish": "procgen-bigfish"}


def arm_config(scale: str, arm: str) -> Any:
    """The scale as this arm runs it: its own name (and results folder), its labels in pretraining."""
    cfg = load_scale(scale)
    return dataclasses.replace(cfg, name=f"{scale}_{arm.replace('@', '_')}", supervision=ARMS[arm])


def run(scale: str, arms: list[str], only: list[str] | None, command: str, out: Path = OUT) -> None:
    for arm in arms:
        cfg = arm_config(scale, arm)
        print(f"== {cfg.name}", flush=True)
        run_benchmark(cfg, out / "arms" / cfg.name, cache_root() / "bench", command, only=only)


def seed_files(scale: str, arm: str, out: Path = OUT) -> dict[str, list[dict[str, Any]]]:
    """Per suite, the saved seed results of one arm (only those keyed by this arm's settings)."""
    cfg = arm_config(scale, arm)
    found = {}
    for suite in cfg.suites:
        key = suite_key(cfg, suite)
        files = sorted((out / "arms" / cfg.name / "seeds").glob(f"{suite.name}_seed*.json"))
        seeds = [read_json(f, "seed result", 50 * 2**20) for f in files]
        found[suite.name] = [s for s in seeds if s["config_key"] == key]
    return found


def run_entries(suite: str, arm: str, seeds: list[dict[str, Any]], label_fraction: float) -> list[dict[str, Any]]:
    """The contract's ``runs`` objects of one suite and arm: one per model (FlexLAM, each fixed LAM)."""
    first = seeds[0]["metrics"]
    values = [s["metrics"]["values"]["equal_updates"] for s in seeds]
    balanced = "align_balanced" if first["values"]["equal_updates"].get("align_balanced") else "align"  # Box: R^2
    budgets = list(first["values"]["equal_updates"]["controllability"]["any"]["flexlam"])
    mean = lambda key, method, ks: {k: float(np.mean([np.mean(v[key]["standard" if key.startswith("align") else "any"][method][k])  # noqa: E731
                                                          for v in values])) for k in ks}
    idm = [s["metrics"]["idm_all_labels"] for s in seeds]
    common = {
        "task": TASKS.get(suite, suite), "suite": suite, "label_fraction": 0.0 if ARMS[arm] is None else
        label_fraction * ARMS[arm].get("share", 1.0), "head": "none" if ARMS[arm] is None else ARMS[arm]["head"], "arm": arm,
        "metric": "balanced_accuracy" if balanced == "align_balanced" else "r2",
        "idm_all_labels_balanced_accuracy": float(np.mean([i.get("balanced", i["score"]) for i in idm])),
        "majority_accuracy": float(np.mean([s["metrics"]["majority_rate"]["standard"] for s in seeds]))
        if "majority_rate" in first else 0.0,  # Box actions: the best constant answer's R^2
        "seeds": [s["seed"] for s in seeds],
    }
    entries = []
    for method, ks in [("flexlam", budgets)] + [(f"fixed_{k}", [k]) for k in budgets]:
        source = "flexlam" if method == "flexlam" else "fixed"
        entry = {**common, "model": method, "controllability": mean("controllability", source, ks),
                 "translator_balanced_accuracy": mean(balanced, source, ks),
                 "translator_accuracy": mean("align", source, ks)}
        best = max(entry["translator_balanced_accuracy"], key=entry["translator_balanced_accuracy"].get)
        per_seed = [float(np.mean(v[balanced]["standard"][source][best])) for v in values]
        se = standard_error(per_seed)
        entry["best_budget"] = {"k": best, "mean": float(np.mean(per_seed)), "se": se if np.isfinite(se) else None,
                                "of_idm": float(np.mean(per_seed)) / common["idm_all_labels_balanced_accuracy"]}
        if "token_probes" in first:
            probes = [s["metrics"]["token_probes"][method] for s in seeds]
            entry["token_probes"] = {target: {k: float(np.mean([p[target][k] for p in probes])) for k in probes[0][target]}
                                     for target in ("action", "distractor")}
        entries.append(entry)
    return entries


def decide(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The protocol's rules on the FlexLAM entries (only where every arm a rule reads has results)."""
    flex = {(r["suite"], r["arm"]): r for r in runs if r["model"] == "flexlam"}
    suites = sorted({s for s, _ in flex})
    out: dict[str, Any] = {"protocol": PROTOCOL}
    ratios = {head: [flex[(s, f"{head}@0.02")]["best_budget"]["of_idm"] for s in suites if (s, f"{head}@0.02") in flex]
              for head in ("first", "prefix")}
    if suites and all(len(r) == len(suites) for r in ratios.values()):
        means = {head: float(np.mean(r)) for head, r in ratios.items()}
        out["head"] = {"mean_of_idm": means, "chosen": "prefix" if means["prefix"] > means["first"] else "first"}
        chosen = out["head"]["chosen"]
        out["no_harm"] = {}
        for suite in ("doorkey", "breakout"):
            if (suite, "none") in flex and (suite, f"{chosen}@0.02") in flex:
                base, sup = flex[(suite, "none")]["best_budget"], flex[(suite, f"{chosen}@0.02")]["best_budget"]
                pooled = float(np.hypot(base["se"], sup["se"])) if base["se"] is not None and sup["se"] is not None else None
                out["no_harm"][suite] = {"none": base["mean"], "supervised": sup["mean"], "pooled_se": pooled,
                                         "holds": None if pooled is None else bool(sup["mean"] >= base["mean"] - 2 * pooled)}
        out["bar"] = {suite: {"of_idm": flex[(suite, f"{chosen}@0.02")]["best_budget"]["of_idm"],
                              "holds": flex[(suite, f"{chosen}@0.02")]["best_budget"]["of_idm"] >= 0.85}
                      for suite in ("starpilot", "bigfish") if (suite, f"{chosen}@0.02") in flex}
        probes = flex.get(("reach_d3f", f"{chosen}@0.02"), {}).get("token_probes")
        if probes:
            first = min(probes["action"], key=int)
            out["bar"]["reach_d3f_first_token"] = {"action": probes["action"][first], "distractor": probes["distractor"][first],
                                                   "holds": probes["action"][first] > probes["distractor"][first]}
    return out


def report(command: str, out: Path = OUT) -> dict[str, Any]:
    """Every saved seed of every scale and arm under ``out`` -> ``out/results.json``."""
    runs = [entry for scale in SCALES for arm in ARMS for suite, seeds in seed_files(scale, arm, out).items() if seeds
            for entry in run_entries(suite, arm, seeds, arm_config(scale, arm).label_fraction)]
    result = {"command": command, "arms": {arm: ARMS[arm] for arm in ARMS}, "runs": runs, "decisions": decide(runs)}
    atomic_write_json(out / "results.json", result)
    return result
