"""Is FlexLAM undertrained? FlexLAM vs fixed K=2 and K=8 at 1000 and 3000 updates, one seed.

Same data, labels (2%) and translator settings as ``flexlam-bench scale=default``; reuses its LAM cache.
    MINARI_DATASETS_PATH=... FLEXLAM_RL_CACHE=... python benchmarks/training_length.py reach 0
prints held-out MSE and translator R^2 / accuracy per budget and writes
benchmarks/results/training_length/<suite>_seed<seed>.json.
"""
import json
import os
import sys

import numpy as np
import torch
from pathlib import Path
from hydra import compose, initialize_config_dir
from flexlam_rl.cli.bench import bench_config_from
from flexlam_rl.bench import collect_suite, _subset, train_cached
from flexlam_rl.data import load_transitions
from flexlam_rl.evaluate import reconstruction_by_budget
from flexlam_rl.align import (AlignConfig, LabelConfig, action_spec, alignment_by_budget, embed_transitions,
                              select_labels, train_translator)
from flexlam_rl.train import TrainConfig
from flexlam_rl import LAMConfig

torch.set_num_threads(1)
with initialize_config_dir(str(Path(__file__).resolve().parents[1] / "configs"), version_base="1.3"):
    c = compose("bench", overrides=["scale=default"])
cfg = bench_config_from(c.scale, "default")
suite = [s for s in cfg.suites if s.name == sys.argv[1]][0]
seed = int(sys.argv[2])
ids = collect_suite(suite, 0)
all_ids = [i for t in suite.tasks for i in ids[t].values()]
data = load_transitions(all_ids, cfg.heldout_fraction, cfg.data_seed)
src = {d: i for i, d in enumerate(all_ids)}
eval_set = _subset(data.heldout, {src[ids[t]["expert"]] for t in suite.tasks})
spec = action_spec(data.train.sources[0].action_space)
count = max(1, round(cfg.label_fraction * len(data.train)))
labels = select_labels(data.train, LabelConfig(count=count, seed=seed))
base = dict(obs_shape=list(data.obs_shape), obs_dtype="uint8", preprocess=data.preprocess, **cfg.lam)
out = {}
for steps in [1000, 3000]:
    tc = TrainConfig(**{**cfg.train, "seed": seed, "progress": False, "steps": steps})
    for name, lc in [("flexlam", LAMConfig(**base, num_tokens=8, nested_dropout=True)),
                     ("fixed_2", LAMConfig(**base, num_tokens=2, nested_dropout=False)),
                     ("fixed_8", LAMConfig(**base, num_tokens=8, nested_dropout=False))]:
        lam, info = train_cached(data, lc, tc, Path(os.environ["FLEXLAM_RL_CACHE"]) / "bench")
        mse = reconstruction_by_budget(lam, data.heldout)["mse"]
        L, E = embed_transitions(lam, data.train, labels), embed_transitions(lam, eval_set, np.arange(len(eval_set)))
        ks = [1, 2, 4, 8] if name == "flexlam" else [lam.num_tokens]
        tr = train_translator(lam, L, spec, AlignConfig(**{**cfg.translator, "seed": seed}))
        al = alignment_by_budget(lam, tr, E, ks)
        row = {"mse": {k: mse[k] for k in ks}, "align": al, "train_s": info["wall_time_s"]}
        out[f"{name}_{steps}"] = row
        print(suite.name, steps, name, {k: f"{v:.5f}" for k, v in row["mse"].items()}, {k: round(v, 3) for k, v in al.items()}, flush=True)
dest = Path(__file__).resolve().parent / "results" / "training_length" / f"{suite.name}_seed{seed}.json"
dest.parent.mkdir(parents=True, exist_ok=True)
dest.write_text(json.dumps(out, indent=1, default=str))
