"""Random actions and the scripted expert under the settings the games benchmark scored latent BC with.

    python benchmarks/games_bench_baselines.py

``benchmarks/results/games_bench`` (2026-12-02) scored latent BC before the Atari conventions existed: no FIRE,
no no-op starts, and a step cap that counted emulator frames inside the frame skip, so its "400 steps" were 100
agent steps. This rebuilds that env exactly (the recorded-before-conventions spec, :data:`ATARI_LEGACY`, and the
cap inside the skip), plays the same episodes (every seed's reset seeds) with random actions and the scripted
expert, and writes ``benchmarks/results/games_bench/baselines.json``: what the committed latent BC returns are read
against, and their normalized scores.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import gymnasium as gym
import numpy as np

from flexlam_rl import __version__
from flexlam_rl.baselines import normalized_score
from flexlam_rl.bench.run import EVAL_SEED_BASE
from flexlam_rl.checkpoint import atomic_write_json
from flexlam_rl.envs import get_task, make_behaviour
from flexlam_rl.envs.pixels import ATARI_LEGACY, apply_preprocess, ensure_env_registered, raw_env_kwargs
from flexlam_rl.latent_bc import rollout_returns

RESULTS = Path("benchmarks/results/games_bench")


def legacy_env(task: str, frame_size: int, cap: int) -> gym.Env:
    """The env latent BC was scored in then: the cap on the raw env (frames), no FIRE, no no-op starts."""
    spec = {**get_task(task).preprocess, "frame_size": frame_size, **ATARI_LEGACY}
    env_id = get_task(task).env_id
    ensure_env_registered(env_id)
    return apply_preprocess(gym.make(env_id, max_episode_steps=cap, render_mode="rgb_array", **raw_env_kwargs(spec)), spec)


def latent_bc_means(suite: dict, task: str, seeds: list[int]) -> list[float]:
    """Every (view, labels, model, budget) mean over seeds of one task's latent BC return, from the seed files (a
    label run with one translator, the stress labels', scored only its stress task)."""
    per_cell: dict[tuple, list[float]] = {}
    for seed in seeds:
        values = json.loads((RESULTS / "seeds" / f"{suite['name']}_seed{seed}.json").read_text())["metrics"]["values"]
        for view, metrics in values.items():
            for protocol, methods in metrics["bc_return"].items():
                for method, budgets in methods.items():
                    for k, per_task in budgets.items():
                        scored = suite["tasks"] if len(per_task) == len(suite["tasks"]) else [suite["stress_task"]]
                        if task in scored:
                            per_cell.setdefault((view, protocol, method, k), []).append(per_task[scored.index(task)])
    return [float(np.mean(v)) for v in per_cell.values() if len(v) == len(seeds)]


def main() -> None:
    results = json.loads((RESULTS / "results.json").read_text())
    config = results["config"]
    out = {"command": "python benchmarks/games_bench_baselines.py", "episodes_per_seed": config["eval_episodes"],
           "seeds": config["seeds"], "tasks": {}, "versions": {"flexlam_rl": __version__, "python": platform.python_version()}}
    for suite in config["suites"]:
        for task in suite["tasks"]:
            returns: dict[str, list[float]] = {"random": [], "expert": []}
            with legacy_env(task, suite["frame_size"], suite["max_episode_steps"]) as env:
                for seed in config["seeds"]:
                    first = EVAL_SEED_BASE + seed * 1000  # the reset seeds of that seed's latent BC episodes
                    env.action_space.seed(first)
                    returns["random"] += rollout_returns(env, lambda obs: env.action_space.sample(), config["eval_episodes"], first)
                    expert = make_behaviour("expert", env.action_space, get_task(task).expert, first)
                    returns["expert"] += rollout_returns(env, lambda obs, expert=expert: expert(env), config["eval_episodes"], first)
            means = {name: float(np.mean(r)) for name, r in returns.items()}
            bc = latent_bc_means(suite, task, config["seeds"])
            normalized = [normalized_score(r, means["random"], means["expert"]) for r in bc]
            out["tasks"][task] = {"random": means["random"], "expert": means["expert"], "episodes": len(returns["random"]),
                                  "agent_steps_cap": suite["max_episode_steps"] // get_task(task).preprocess["frame_skip"],
                                  "latent_bc_range": [min(bc), max(bc)],
                                  "latent_bc_normalized_range": [min(normalized), max(normalized)]}
    atomic_write_json(RESULTS / "baselines.json", out)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
