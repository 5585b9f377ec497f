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
from flexlam_rl.act.baselines import normalized_score
from flexlam_rl.act.latent_bc import rollout_returns
from flexlam_rl.bench.report import latent_bc_cells, saved_seeds
from flexlam_rl.bench.run import EVAL_SEED_BASE
from flexlam_rl.checkpoint import atomic_write_json
from flexlam_rl.envs import get_task, make_behaviour
from flexlam_rl.envs.pixels import ATARI_LEGACY, apply_preprocess, ensure_env_registered, raw_env_kwargs

RESULTS = Path("benchmarks/results/games_bench")


def legacy_env(task: str, frame_size: int, cap: int) -> gym.Env:
    """The env latent BC was scored in then: the cap on the raw env (frames), no FIRE, no no-op starts."""
    spec = {**get_task(task).preprocess, "frame_size": frame_size, **ATARI_LEGACY}
    env_id = get_task(task).env_id
    ensure_env_registered(env_id)
    return apply_preprocess(gym.make(env_id, max_episode_steps=cap, render_mode="rgb_array", **raw_env_kwargs(spec)), spec)


def main() -> None:
    results = json.loads((RESULTS / "results.json").read_text())
    config = results["config"]
    per_seed, _ = saved_seeds(RESULTS, results["suite_keys"])
    runs = {suite: [seeds[s] for s in sorted(seeds)] for suite, seeds in per_seed.items()}
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
            bc = latent_bc_cells(runs[suite["name"]], suite["tasks"], suite["stress_task"], task)
            normalized = [normalized_score(r, means["random"], means["expert"]) for r in bc]
            out["tasks"][task] = {"random": means["random"], "expert": means["expert"], "episodes": len(returns["random"]),
                                  "agent_steps_cap": suite["max_episode_steps"] // get_task(task).preprocess["frame_skip"],
                                  "latent_bc_range": [min(bc), max(bc)],
                                  "latent_bc_normalized_range": [min(normalized), max(normalized)]}
    atomic_write_json(RESULTS / "baselines.json", out)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
