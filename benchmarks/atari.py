"""Atari end to end from the command line: collect -> pretrain -> align -> latent BC -> PPO on Breakout.

    python benchmarks/atari.py [--lam default|games] [--workdir /tmp/atari] [--out DIR]

Every stage is the CLI a user would type (``pip install "flexlam-rl[atari]"``), run in a private
Minari root and cache under ``--workdir``; the script times each and reads what it reports: code
usage and held-out error per budget (pretrain), translator accuracy per budget (align), latent BC
return per budget against random actions, PPO return in latent space. Frames are the task default:
``AtariPreprocessing`` at 64x64 grayscale, frame skip 4.

``--lam default`` (the default: what made ``benchmarks/results/atari``, the first run on a game, whose code
collapsed) pretrains the default LAM for 1500 updates and scores uncapped episodes; ``--lam games`` runs the
data guide's commands (``lam=games``, 3000 updates of batch 32, scored episodes capped at 400 steps) into
``benchmarks/results/atari_games``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from flexlam_rl.bench.experiment import Experiment
from flexlam_rl.tables import markdown_table

DATA = "data.datasets=[atari/breakout/noisy-v0]"
COLLECT = {
    "collect noisy (40 episodes, epsilon 0.5)": ("collect", ["env=breakout", "behaviour=noisy", "epsilon=0.5", "episodes=40",
                                                            "max_episode_steps=400", "dataset_id=atari/breakout/noisy-v0"]),
    "collect expert (10 episodes)": ("collect", ["env=breakout", "behaviour=expert", "episodes=10", "max_episode_steps=400",
                                                 "dataset_id=atari/breakout/expert-v0"]),
}
# per --lam: the pretraining overrides, and the cap on scored episodes (None: the task's own 2000-step limit)
LAMS: dict[str, tuple[list[str], int | None]] = {
    "default": ([DATA, "train.steps=1500"], None),
    "games": ([DATA, "lam=games", "train.steps=3000", "train.batch_size=32"], 400),
}


def stages(lam: str) -> dict[str, tuple[str, list[str]]]:
    """Each stage's name and CLI overrides ({run}, {work}: folders under --workdir)."""
    pretrain, cap = LAMS[lam]
    steps = next(a.split("=")[1] for a in pretrain if a.startswith("train.steps="))
    bc_cap = [f"max_episode_steps={cap}"] if cap else []
    ppo_cap = [f"agent.max_episode_steps={cap}"] if cap else []
    return {
        **COLLECT,
        f"pretrain (FlexLAM K=8, {steps} updates)": ("pretrain", [*pretrain, "train.progress=false", "run_dir={run}"]),
        "align (2% labels)": ("align", ["lam_dir={run}/lam"]),
        "latent BC (expert data, 10 episodes)": ("latent_bc", ["lam_dir={run}/lam", "env=breakout",
                                                               "expert_datasets=[atari/breakout/expert-v0]", "episodes=10",
                                                               "budgets=[1,2,4,8]", "gif=false", *bc_cap]),
        "PPO in latent space (k=2, 20k steps)": ("train_agent", ["agent.env=breakout", "agent.lam_dir={run}/lam",
                                                                 "agent.prefix_len=2", "agent.total_timesteps=20000",
                                                                 "agent.eval_freq=10000", "agent.eval_episodes=5",
                                                                 "agent.progress_bar=false", "agent.gif=false", *ppo_cap,
                                                                 "run_dir={work}/agent"]),
    }


def _per_k(values: dict[str, float], fmt: str) -> str:
    return ", ".join(f"k={k}: {fmt.format(v)}" for k, v in values.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lam", choices=sorted(LAMS), default="default")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/flexlam-atari"))
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/atari[_games]")
    args = parser.parse_args()
    out_dir = args.out or Path("benchmarks/results/atari" + ("" if args.lam == "default" else f"_{args.lam}"))
    command = "python benchmarks/atari.py" + ("" if args.lam == "default" else f" --lam {args.lam}")
    work = args.workdir.resolve()
    run = work / "run"
    env = {**os.environ, "MINARI_DATASETS_PATH": str(work / "minari"), "FLEXLAM_RL_CACHE": str(work / "cache")}
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for name, (module, overrides) in stages(args.lam).items():
        argv = [a.format(run=run, work=work) for a in overrides]
        start = time.time()
        out = subprocess.run([sys.executable, "-m", f"flexlam_rl.cli.{module}", *argv], cwd=work, env=env,
                             capture_output=True, text=True)
        rows.append({"stage": name, "command": f"flexlam-{module.replace('_', '-')} " + " ".join(overrides),
                     "wall_s": time.time() - start, "stdout": out.stdout[-4000:]})
        print(f"{name}: {rows[-1]['wall_s']:.0f} s", flush=True)
        if out.returncode != 0:
            raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
    pretrain = json.loads((run / "metrics.json").read_text())
    align = json.loads((run / "align_metrics.json").read_text())
    bc = json.loads((run / "latent_bc_metrics.json").read_text())
    agent = json.loads((work / "agent" / "agent_metrics.json").read_text())
    result = {"command": command, "stages": [{k: v for k, v in r.items() if k != "stdout"} for r in rows],
              "code_usage": pretrain["heldout"]["code_usage"], "heldout_mse": pretrain["heldout"]["mse"],
              "null_mse": pretrain["heldout"]["null"], "copy_mse": pretrain["heldout"]["copy"],
              "lam": pretrain["lam"], "transitions_note": rows[2]["stdout"].splitlines()[0] if rows[2]["stdout"] else "",
              "align": {"metric": align["metric"], "by_budget": align["by_budget"], "labels": align["labels"],
                        "supervised_idm": align.get("supervised_idm")},
              "latent_bc": {"returns": bc["returns"], "random": bc["random"]},
              "ppo": {"eval_mean_return": agent["eval_mean_return"], "curve": agent["curve"]}}
    lines = ["# Atari (Breakout) end to end from the CLIs", "", f"`{command}`", "",
             markdown_table(["stage", "wall s", "command"], [[r["stage"], f"{r['wall_s']:.0f}", f"`{r['command']}`"] for r in rows]), "",
             f"Held-out next-frame MSE per k: {', '.join(f'{k}: {v:.5f}' for k, v in result['heldout_mse'].items())} "
             f"(all-null {result['null_mse']:.5f}, copy o_t {result['copy_mse']:.5f})", "",
             f"Code usage (perplexity per slot, V = 8): {' '.join(f'{u:.2f}' for u in result['code_usage'])}", "",
             f"Translator {align['metric']} per k ({align['labels']} labels): {_per_k(align['by_budget'], '{:.3f}')}; "
             f"supervised IDM {align.get('supervised_idm', 0):.3f}", "",
             f"Latent BC return per k: {_per_k({k: v['mean'] for k, v in bc['returns'].items()}, '{:.1f}')}; "
             f"random actions {bc['random']['mean']:.1f}", "",
             f"PPO in latent space (k = 2, 20k steps): eval return {agent['eval_mean_return']:.1f} "
             f"(curve {agent['curve']})", ""]
    Experiment(out_dir, "benchmarks/atari.py").write(result, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
