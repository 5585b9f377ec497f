"""FlexLAM vs a fixed-capacity LAM (K = 8) on the quickstart data, evaluated at every budget.

The fixed LAM never sees a truncated code, so at small k it decodes a prefix it never trained on;
FlexLAM trained with nested dropout should be far better there. Same data, seed, steps.

    python benchmarks/budget_gap.py [--steps 1200] [--out benchmarks/results/budget_gap]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from flexlam_rl import FlexLAM, LAMConfig, __version__
from flexlam_rl.checkpoint import atomic_write_bytes, atomic_write_json
from flexlam_rl.config import Episodes
from flexlam_rl.data.collect import ensure_dataset
from flexlam_rl.data.transitions import load_transitions
from flexlam_rl.evaluate.reconstruction import reconstruction_by_budget
from flexlam_rl.pretrain.train import TrainConfig, pretrain
from flexlam_rl.tables import budget_table

QUICKSTART_DATA = [  # the quickstart's pretraining data (configs/quickstart.yaml)
    {"behaviour": "noisy", "epsilon": 0.5, "episodes": 150, "seed": 1000},
    {"behaviour": "random", "episodes": 20, "seed": 2000},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/budget_gap"))
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    ids = [ensure_dataset(None, "minigrid-doorkey", d["behaviour"], Episodes(d["episodes"], d["seed"]), epsilon=d.get("epsilon", 0.3))[0]
           for d in QUICKSTART_DATA]
    data = load_transitions(ids, heldout_fraction=0.1, seed=0)
    rows, timing = {}, {}
    for name, nested in (("flexlam", True), ("fixed_K8", False)):
        cfg = LAMConfig(obs_shape=list(data.obs_shape), num_tokens=8, nested_dropout=nested, preprocess=data.preprocess)
        start = time.time()
        result = pretrain(args.out / "runs" / name, data, cfg, TrainConfig(steps=args.steps, seed=args.seed, progress=False))
        timing[name] = time.time() - start
        rows[name] = reconstruction_by_budget(FlexLAM.load(result.lam_dir), data.heldout)

    table = budget_table(rows)
    gap = rows["fixed_K8"]["mse"][1] / rows["flexlam"]["mse"][1]
    summary = (f"held-out next-frame MSE, {len(data.heldout)} transitions, {args.steps} updates each, seed {args.seed}\n\n"
               f"{table}\n\nfixed K=8 at k=1 / FlexLAM at k=1 = {gap:.1f}x\n")
    print(summary)
    atomic_write_json(args.out / "results.json", {
        "command": f"python benchmarks/budget_gap.py --steps {args.steps} --seed {args.seed}",
        "datasets": ids, "steps": args.steps, "seed": args.seed, "results": rows, "train_seconds": timing,
        "fixed_over_flex_at_k1": gap, "versions": {"flexlam_rl": __version__, "torch": torch.__version__,
                                                   "python": platform.python_version()},
    })
    atomic_write_bytes(args.out / "results.md", summary.encode())


if __name__ == "__main__":
    main()
