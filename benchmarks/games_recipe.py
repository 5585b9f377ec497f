"""Why does the LAM collapse on games, and what fixes it? An ablation on Atari and Procgen, one seed.

    python benchmarks/games_recipe.py [--games breakout pong procgen-coinrun] [--variants base changed stack stack_changed]
                                      [--steps 3000] [--threads 1] [--out benchmarks/results/games_recipe]

Per game, action-labelled data is collected once (Atari: an epsilon-0.5 noised scripted expert; Procgen: random
actions held about 4 steps), then per variant one FlexLAM (K = 8) is trained for ``--steps`` updates and scored on
held-out episodes: code usage per slot, controllability per budget (:func:`flexlam_rl.diagnose.controllability`),
a probe from tokens to the true action, and the translator's accuracy from 2% labels at its best budget against a
supervised IDM trained on the same labels. Variants (LAM configs; frames 64x64, Atari grayscale):

- ``base``: the default LAM (whole-frame MSE);
- ``changed``: + the MSE on the pixels that change, weight 1 (``lam.change_weight=1``);
- ``stack``: two stacked frames as o_t, the newest frame predicted (``preprocess frame_stack: 2``, ``lam.predict_newest``);
- ``stack_changed``: both.

Each (game, variant) is saved under ``<out>/runs/`` as it finishes, so a rerun resumes; the table is rebuilt from
everything saved.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flexlam_rl.align import AlignConfig, LabelConfig, label_and_eval_sets, run_alignment
from flexlam_rl.bench.cache import train_cached
from flexlam_rl.checkpoint import atomic_write_bytes, atomic_write_json, read_json
from flexlam_rl.collect import ensure_dataset
from flexlam_rl.data import load_transitions
from flexlam_rl.diagnose import action_probe, controllability, sample
from flexlam_rl.envs import get_task
from flexlam_rl.sources import cache_root
from flexlam_rl.tables import at_budget, markdown_table
from flexlam_rl.train import TrainConfig, lam_config_for

# game -> (behaviour, episodes, epsilon, max episode steps) of the LAM's action-free (here: labelled) data
GAME_DATA = {
    "breakout": ("noisy", 40, 0.5, 400), "pong": ("noisy", 40, 0.5, 400), "freeway": ("noisy", 40, 0.5, 400),
    "procgen-coinrun": ("sticky", 60, 0.0, 300), "procgen-bigfish": ("sticky", 160, 0.0, 300),
    "procgen-starpilot": ("sticky", 160, 0.0, 300), "procgen-maze": ("sticky", 60, 0.0, 300),
}
VARIANTS = {  # name -> (frame_stack, LAM overrides)
    "base": (1, {}),
    "changed": (1, {"change_weight": 1.0}),
    "stack": (2, {"predict_newest": True}),
    "stack_changed": (2, {"predict_newest": True, "change_weight": 1.0}),
}
LABEL_FRACTION = 0.02
BUDGETS = [1, 2, 4, 8]
ALIGN = {"steps": 2000, "batch_size": 128, "use_obs": True}


def game_data(game: str, frame_stack: int) -> str:
    """Collect (or reuse) a game's data at this frame stack; returns its dataset id."""
    behaviour, episodes, epsilon, max_steps = GAME_DATA[game]
    preprocess = dict(get_task(game).preprocess, frame_stack=frame_stack)
    dataset_id = f"games-recipe/{game}-stack{frame_stack}/{behaviour}-{episodes}ep-v0"
    ensure_dataset(dataset_id, game, behaviour, num_episodes=episodes, seed=0, epsilon=epsilon or 0.3,
                   max_episode_steps=max_steps, preprocess=preprocess)
    return dataset_id


def run_one(game: str, variant: str, steps: int, seed: int, cache: Path) -> dict[str, Any]:
    frame_stack, overrides = VARIANTS[variant]
    dataset_id = game_data(game, frame_stack)
    data = load_transitions(dataset_id, 0.1, 0)
    lam_cfg = lam_config_for(overrides, data)
    train_cfg = TrainConfig(steps=steps, batch_size=32, seed=seed, progress=False, eval_every=10**9)
    start = time.time()
    trained = train_cached(data, lam_cfg, train_cfg, cache)
    lam = trained.lam
    picks = sample(len(data.heldout), 1024, seed)
    report = controllability(lam, data.heldout, BUDGETS, picks)
    probe = action_probe(lam, data.train, data.heldout, picks, BUDGETS, seed)
    pool, evaluation = label_and_eval_sets([dataset_id], [dataset_id], 0.1, 0)
    labels = LabelConfig(count=max(1, round(LABEL_FRACTION * len(pool))), seed=seed)
    aligned = run_alignment(lam, pool, evaluation, labels, AlignConfig(**ALIGN, seed=seed), BUDGETS, supervised_idm=True)
    best = max(aligned.scores, key=aligned.scores.get)
    return {"game": game, "variant": variant, "seed": seed, "steps": steps, "frame_stack": frame_stack, "lam": lam_cfg.to_dict(),
            "train_wall_s": trained.info["wall_s"], "total_wall_s": time.time() - start, "transitions": len(data.train),
            "perplexity": report["code_usage"], "controllability": report["controllability"], "probe": next(iter(probe.values())),
            "mse": report["mse"], "mse_changed": report["mse_changed"], "null_changed": report["null_changed"],
            "copy_changed": report["copy_changed"], "changed_fraction": report["changed_fraction"],
            "translator": aligned.scores, "best_k": best, "translator_best": aligned.scores[best],
            "idm": aligned.supervised_idm, "labels": len(aligned.labels)}


def table(runs: list[dict[str, Any]]) -> str:
    rows = []
    for r in runs:
        ratio = r["translator_best"] / r["idm"] if r["idm"] else float("nan")
        rows.append([r["game"], r["variant"], f"{min(r['perplexity']):.2f} / {np.mean(r['perplexity']):.2f}",
                     " ".join(f"{at_budget(r['controllability'], k):.2f}" for k in BUDGETS),
                     f"{at_budget(r['probe'], 8):.3f}", f"{r['translator_best']:.3f} (k={r['best_k']})", f"{r['idm']:.3f}",
                     f"{ratio:.2f}", f"{r['train_wall_s'] / 60:.1f}"])
    return markdown_table(["game", "variant", "perplexity min / mean", "controllability k=1 2 4 8", "probe acc. k=8",
                           "translator best", "IDM", "translator / IDM", "train min"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", nargs="+", default=["breakout", "pong", "procgen-coinrun"], choices=sorted(GAME_DATA))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/games_recipe"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cache = cache_root() / "games_recipe"
    for game in args.games:
        for variant in args.variants:
            path = args.out / "runs" / f"{game}_{variant}_s{args.seed}_{args.steps}.json"
            if path.is_file():
                continue
            print(f"{game} {variant} ...", flush=True)
            atomic_write_json(path, run_one(game, variant, args.steps, args.seed, cache))
    runs = [read_json(p, "run") for p in sorted((args.out / "runs").glob("*.json"))]
    order = {v: i for i, v in enumerate(VARIANTS)}
    runs.sort(key=lambda r: (r["game"], order[r["variant"]]))
    command = "python benchmarks/games_recipe.py " + " ".join(sys.argv[1:])
    atomic_write_json(args.out / "results.json", {"command": command, "runs": runs})
    text = "\n".join([f"# Games recipe ablation ({len(runs)} runs, one seed)", "", f"`{command}`", "", table(runs), ""])
    atomic_write_bytes(args.out / "results.md", text.encode())
    print(text)
    print(json.dumps({"saved": str(args.out)}))


if __name__ == "__main__":
    main()
