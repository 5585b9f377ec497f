"""When a games LAM's code collapses: the encoder at initialization and the first few hundred updates.

    python benchmarks/games_trace.py [--games pong breakout] [--variants changed changed_norm] [--steps 500] [--every 50]

Per game and variant of ``benchmarks/games.py`` (same data, LAM config and batch size as its ``recipe`` runs, seed 0):
the freshly initialized encoder's values z on held-out transitions (spread over transitions per slot, mean
magnitude), then training for ``--steps`` updates with a held-out check every ``--every`` updates (first-slot and
mean perplexity, controllability at k = 8), then the trained encoder's values. Shows whether a code starts as
one code (spread far below FSQ's bin width) and whether it ever leaves it. Writes ``trace.json`` and ``trace.md``
under ``benchmarks/results/games_recipe/``; runs are kept under the cache (``games_trace/``) and resume.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from games import VARIANTS, game_data
from games_collapse import encoder_values

from flexlam_rl import FlexLAM
from flexlam_rl.checkpoint import atomic_write_bytes, atomic_write_json
from flexlam_rl.data.sources import cache_root
from flexlam_rl.data.transitions import load_transitions
from flexlam_rl.evaluate.diagnosis import sample
from flexlam_rl.pretrain.train import TrainConfig, build_lam, lam_config_for, pretrain
from flexlam_rl.tables import at_budget, markdown_table

TRANSITIONS = 1024


def spread(z: np.ndarray) -> dict[str, float]:
    return {"spread": float(z.std(0).mean()), "magnitude": float(np.abs(z).mean())}


def trace(game: str, variant: str, steps: int, every: int, seed: int = 0) -> dict[str, Any]:
    frame_stack, overrides, train_overrides = VARIANTS[variant]
    data = load_transitions(game_data(game, frame_stack), 0.1, 0)
    lam_cfg = lam_config_for(overrides, data)
    picks = sample(len(data.heldout), TRANSITIONS, seed)
    start = spread(encoder_values(build_lam(lam_cfg, data, seed).eval(), data.heldout, picks))
    checks: list[dict[str, Any]] = []

    def on_check(step: int, report: dict[str, Any]) -> None:
        checks.append({"updates": step, "perplexity_first": float(report["code_usage"][0]),
                       "perplexity_mean": float(np.mean(report["code_usage"])),
                       "controllability_k8": float(at_budget(report["controllability"], 8))})

    run_dir = cache_root() / "games_trace" / f"{game}_{variant}_s{seed}_{steps}"
    cfg = TrainConfig(**{"steps": steps, "batch_size": 32, "seed": seed, "progress": False, "eval_every": every,
                         "eval_transitions": 512, "checkpoint_every": steps, **train_overrides})
    result = pretrain(run_dir, data, lam_cfg, cfg, on_check=on_check)
    end = spread(encoder_values(FlexLAM.load(result.lam_dir).eval(), data.heldout, picks))
    return {"game": game, "variant": variant, "seed": seed, "steps": steps, "init": start, "final": end, "checks": checks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", nargs="+", default=["pong", "breakout"])
    parser.add_argument("--variants", nargs="+", default=["changed", "changed_norm"], choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/games_recipe"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = [trace(g, v, args.steps, args.every) for g in args.games for v in args.variants]
    command = "python benchmarks/games_trace.py " + " ".join(sys.argv[1:])
    atomic_write_json(args.out / "trace.json", {"command": command, "transitions": TRANSITIONS, "runs": runs})
    rows = []
    for r in runs:
        picked = [c for c in r["checks"] if c["updates"] in (args.every, args.steps // 2, args.steps)] or r["checks"]
        rows.append([r["game"], r["variant"], f"{r['init']['spread']:.4f}", f"{r['init']['magnitude']:.3f}",
                     " / ".join(f"{c['perplexity_first']:.2f}" for c in picked),
                     " / ".join(f"{c['controllability_k8']:.2f}" for c in picked),
                     f"{r['final']['spread']:.4f}", f"{r['final']['magnitude']:.3f}"])
    marks = " / ".join(str(u) for u in (args.every, args.steps // 2, args.steps))
    table = markdown_table(["game", "variant", "z spread at init", "mean |z| at init", f"first-slot perplexity at {marks}",
                            f"controllability k=8 at {marks}", f"z spread after {args.steps}", f"mean |z| after {args.steps}"], rows)
    text = "\n".join(["# The first updates of a games LAM", "", f"`{command}`", "",
                      f"Encoder values z (as FSQ receives them) on {TRANSITIONS} held-out transitions; FSQ's bins are about "
                      "0.3 wide in z near 0, so a spread far below that is one code for every transition.", "", table, ""])
    atomic_write_bytes(args.out / "trace.md", text.encode())
    print(text)


if __name__ == "__main__":
    main()
