"""Is FlexLAM undertrained? FlexLAM vs fixed K=2 and K=8 at 1000 and 3000 updates, one seed.

Same data, labels (2%) and translator settings as ``flexlam-bench scale=default``; reuses its LAM cache.

    python benchmarks/training_length.py reach 0

prints held-out MSE and translator R^2 / accuracy per budget and writes
benchmarks/results/training_length/<suite>_seed<seed>.json.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

from flexlam_rl.align import AlignConfig, LabelConfig, label_and_eval_sets, run_alignment
from flexlam_rl.bench import collect_suite, lam_variants, load_scale
from flexlam_rl.bench.cache import train_cached
from flexlam_rl.checkpoint import atomic_write_json
from flexlam_rl.data import load_transitions
from flexlam_rl.evaluate import reconstruction_by_budget
from flexlam_rl.sources import cache_root
from flexlam_rl.train import TrainConfig

MODELS = ("flexlam", "fixed_2", "fixed_8")


def main(suite_name: str, seed: int) -> None:
    torch.set_num_threads(1)
    cfg = load_scale("default")
    suite = next(s for s in cfg.suites if s.name == suite_name)
    ids = collect_suite(suite, cfg.data_seed)
    all_ids = [i for task in suite.tasks for i in ids[task].values()]
    data = load_transitions(all_ids, cfg.heldout_fraction, cfg.data_seed)
    pool, eval_set = label_and_eval_sets(all_ids, [ids[t]["expert"] for t in suite.tasks], cfg.heldout_fraction, cfg.data_seed)
    labels = LabelConfig(count=max(1, round(cfg.label_fraction * len(data.train))), seed=seed)
    variants = lam_variants(replace(cfg, budgets=[2, 8]), data.obs_shape, data.is_image, data.preprocess)
    out = {}
    for steps in (1000, 3000):
        train_cfg = TrainConfig(**{**cfg.train, "seed": seed, "progress": False, "steps": steps})
        for name in MODELS:
            lam, info = train_cached(data, variants[name], train_cfg, cache_root() / "bench")
            budgets = cfg.budgets if name == "flexlam" else [lam.num_tokens]
            mse = reconstruction_by_budget(lam, data.heldout)["mse"]
            scores = run_alignment(lam, pool, eval_set, labels, AlignConfig(**{**cfg.translator, "seed": seed}), budgets).scores
            row = {"mse": {k: mse[k] for k in budgets}, "align": scores, "train_s": info["wall_time_s"]}
            out[f"{name}_{steps}"] = row
            print(suite.name, steps, name, {k: f"{v:.5f}" for k, v in row["mse"].items()},
                  {k: round(v, 3) for k, v in scores.items()}, flush=True)
    atomic_write_json(Path(__file__).resolve().parent / "results" / "training_length" / f"{suite.name}_seed{seed}.json",
                      json.loads(json.dumps(out, default=str)))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
