"""PPO in latent-action space vs PPO on the raw actions, on a MiniGrid task: return curves.

Uses a LAM + translator made by the quickstart (or any run). The LAM was pretrained on DoorKey
only; the agent learns Empty, a task the LAM never saw.

    python benchmarks/latent_agent.py --lam-dir runs/quickstart/lam [--env minigrid-empty] [--steps 50000]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from flexlam_rl import __version__
from flexlam_rl.agents.train import AgentConfig, train_agent
from flexlam_rl.checkpoint import atomic_write_bytes, atomic_write_json
from flexlam_rl.tables import markdown_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lam-dir", type=Path, required=True)
    parser.add_argument("--env", default="minigrid-empty")
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--prefix-len", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/latent_agent"))
    args = parser.parse_args()
    runs, curves = {}, {}
    for space in ("latent", "raw"):
        cfg = AgentConfig(env=args.env, space=space, lam_dir=str(args.lam_dir), prefix_len=args.prefix_len,
                          total_timesteps=args.steps, eval_freq=5_000, eval_episodes=20, seed=args.seed, progress_bar=False)
        start = time.time()
        result = train_agent(cfg, args.out / "runs" / space)
        runs[space] = {"final_mean_return": result.eval_mean_return, "curve": result.curve, "seconds": time.time() - start}
        curves[space] = dict(result.curve)
    steps = sorted(set(curves["latent"]) | set(curves["raw"]))
    lines = [f"PPO on {args.env}, {args.steps} env steps, seed {args.seed}; mean eval return over 20 episodes",
             f"(latent: k={args.prefix_len} tokens through the translator; LAM {args.lam_dir})", "",
             markdown_table(["env steps", "latent PPO", "raw PPO"],
                            [[t, f"{curves['latent'].get(t, float('nan')):.3f}", f"{curves['raw'].get(t, float('nan')):.3f}"]
                             for t in steps])]
    summary = "\n".join(lines) + "\n"
    print(summary)
    atomic_write_json(args.out / "results.json", {
        "command": f"python benchmarks/latent_agent.py --lam-dir {args.lam_dir} --env {args.env} --steps {args.steps} "
                   f"--prefix-len {args.prefix_len} --seed {args.seed}",
        "runs": runs, "versions": {"flexlam_rl": __version__, "torch": torch.__version__, "python": platform.python_version()},
    })
    atomic_write_bytes(args.out / "results.md", summary.encode())


if __name__ == "__main__":
    main()
