"""Power of the primary-endpoint protocol (configs/scale/primary.yaml), simulated at the seed SDs of the committed
exploration seeds (benchmarks/results/default, seeds 0-9): only their spreads are read, never their means.

    python benchmarks/primary_power.py [--out benchmarks/results/primary/power.json]

Per cell (suite, labels, metric, k) and per primary endpoint (the mean over budgets): the SD of the seed-paired
FlexLAM minus fixed differences (view "each to its own plateau"), the simulated power of the non-inferiority test
against the metric's margin when the true difference is zero, of the primary endpoint's two-sided test when the true
difference equals the margin (at Holm's first-step level over the endpoints: the least it gets), and the fewest seeds
that reach 0.8 (none below 40: not reachable here).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from flexlam_rl.bench.spec import load_scale
from flexlam_rl.bench.stats import LEVEL, power, seeds_for_power
from flexlam_rl.checkpoint import atomic_write_json, read_json

CANDIDATES = (10, 16, 20, 24, 30, 40)


def seed_differences(per_seed: dict, view: str, metric: str, labels: str, k: str) -> np.ndarray:
    """Each seed's FlexLAM minus fixed difference at budget ``k`` (tasks averaged)."""
    cell = lambda v, m: float(np.mean(v[view][metric][labels][m][k]))  # noqa: E731
    return np.array([cell(v, "flexlam") - cell(v, "fixed") for _, v in sorted(per_seed.items(), key=lambda kv: int(kv[0]))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--explore", type=Path, default=Path("benchmarks/results/default/results.json"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/primary/power.json"))
    args = parser.parse_args()
    cfg = load_scale("primary")
    explore = read_json(args.explore, "exploration results", max_bytes=200_000_000)
    n = len(cfg.seeds)
    holm_first = 1 - (1 - LEVEL) / len(cfg.primary)
    cells, endpoints = [], []
    for suite, per_seed in explore["per_seed"].items():
        for metric, margin in cfg.margins.items():
            for labels in cfg.protocols:
                by_k = {k: seed_differences(per_seed, "equal_updates", metric, labels, str(k)) for k in cfg.budgets}
                for k, diffs in by_k.items():
                    sd = float(diffs.std(ddof=1))
                    cells.append({"suite": suite, "labels": labels, "metric": metric, "k": k, "sd": sd, "margin": margin,
                                  "power_noninferiority": {str(c): power(sd, c, margin=margin) for c in CANDIDATES},
                                  "seeds_for_0.8": seeds_for_power(sd, margin=margin, candidates=CANDIDATES)})
                sd = float(np.mean(list(by_k.values()), axis=0).std(ddof=1))
                endpoints.append({"endpoint": f"{suite}/{labels}/{metric}", "sd": sd, "margin": margin,
                                  "power_difference_at_margin": {str(c): power(sd, c, effect=margin, level=holm_first)
                                                                 for c in CANDIDATES},
                                  "power_noninferiority": {str(c): power(sd, c, margin=margin) for c in CANDIDATES}})
    result = {"command": "python benchmarks/primary_power.py", "explore": str(args.explore), "seeds_chosen": n,
              "holm_first_step_level": 1 - holm_first, "candidates": list(CANDIDATES), "cells": cells, "endpoints": endpoints}
    atomic_write_json(args.out, result)
    for e in endpoints:
        print(f"{e['endpoint']:32s} sd {e['sd']:.3f} margin {e['margin']}: difference power "
              + " ".join(f"{c}:{p:.2f}" for c, p in e["power_difference_at_margin"].items())
              + " | NI " + " ".join(f"{c}:{p:.2f}" for c, p in e["power_noninferiority"].items()))
    reach = [c for c in cells if c["power_noninferiority"][str(n)] >= 0.8]
    print(f"per-budget non-inferiority cells with power >= 0.8 at {n} seeds: {len(reach)} of {len(cells)}")


if __name__ == "__main__":
    main()
