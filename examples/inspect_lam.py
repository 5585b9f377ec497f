"""What did a LAM learn? Error per budget, whether its tokens matter (controllability), an action probe, and
real vs predicted frames.

    python examples/inspect_lam.py                           # trains a tiny LAM first (under a minute)
    python examples/inspect_lam.py --lam runs/quickstart/lam --data flexlam/minigrid-doorkey/noisy50-v0
"""

import argparse
from pathlib import Path

from flexlam_rl import FlexLAM, diagnose
from flexlam_rl.config import Episodes
from flexlam_rl.data import load_transitions
from flexlam_rl.data.collect import ensure_dataset
from flexlam_rl.evaluate import reconstruction_by_budget
from flexlam_rl.evaluate.diagnosis import collapse_warning
from flexlam_rl.evaluate.inspect import prediction_figure
from flexlam_rl.pretrain.train import TrainConfig, lam_config_for, pretrain
from flexlam_rl.tables import budget_table, control_table

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--lam", type=Path, help="a LAM directory (default: train a tiny one)")
parser.add_argument("--data", help="a Minari dataset id the LAM can read")
parser.add_argument("--out", type=Path, default=Path("runs/example_inspect"))
args = parser.parse_args()

data_id = args.data
if data_id is None:
    data_id, _ = ensure_dataset("examples/doorkey32/noisy-v0", "minigrid-doorkey", "noisy", Episodes(20, 0, 50), epsilon=0.5,
                                preprocess={"kind": "minigrid_rgb", "frame_size": 32})
if args.lam is None:
    data = load_transitions(data_id)
    run = pretrain(args.out / "lam_run", data, lam_config_for({"num_tokens": 4, "channels": [8, 16], "hidden_dim": 64}, data),
                   TrainConfig(steps=200, batch_size=32, progress=False))
    args.lam = run.lam_dir
lam = FlexLAM.load(args.lam)
data = load_transitions(data_id)

print(budget_table({"held-out": reconstruction_by_budget(lam, data.heldout)}))
report = diagnose(lam, [data_id])  # own vs another transition's tokens vs none, on the pixels that change
print(control_table(report))
print("perplexity per slot:", " ".join(f"{u:.2f}" for u in report["perplexity"]), "| collapsed:", report["collapsed"])
print("action probe accuracy per budget:", {k: round(v, 3) for k, v in report.get("probe_accuracy", {}).items()})
print(collapse_warning(report, lam.config.obs_shape) or "no collapse warning")
print("real vs predicted frames:", prediction_figure(lam, data.heldout, args.out / "predictions.png"))
