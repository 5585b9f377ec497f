"""Procgen as a Gymnasium env and a data source (``pip install ".[procgen]"``; the suite's last tier runs these)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("procgen", reason='needs pip install ".[procgen]" (the README test command runs these in .venv-procgen)')

import gymnasium as gym  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402

import flexlam_rl  # noqa: E402,F401  (registers flexlam/<task>-v0, as for any Gymnasium plugin)

pytestmark = pytest.mark.procgen


@pytest.mark.parametrize("game", ["coinrun", "bigfish", "starpilot"])
def test_procgen_tasks_pass_the_env_checker_with_its_render_check(game: str) -> None:
    env = gym.make(f"flexlam/procgen-{game}-v0")
    check_env(env.unwrapped)  # the raw env, render check included
    check_env(env)
    assert env.observation_space.shape == (64, 64, 3) and env.action_space.n == 15
    assert len(env.unwrapped.get_action_meanings()) == 15 and env.unwrapped.get_action_meanings()[4] == "NOOP"
    assert env.render() is None and gym.make(f"flexlam/procgen-{game}-v0", render_mode="rgb_array").reset(seed=0)[0].shape == (64, 64, 3)


def test_episodes_end_on_their_last_frame_and_the_next_level_starts_on_reset() -> None:
    env = gym.make("flexlam/Procgen-coinrun-v0", distribution_mode="easy", num_levels=5, start_level=3)
    obs, info = env.reset(seed=0)
    assert 3 <= info["level_seed"] < 8  # the level set asked for
    same, _ = gym.make("flexlam/Procgen-coinrun-v0", num_levels=5, start_level=3).reset(seed=0)
    assert np.array_equal(obs, same)  # reset(seed) decides the level sequence
    rng = np.random.default_rng(0)
    for _ in range(3000):
        last = obs
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(15)))
        assert not truncated
        if terminated:
            break
    assert terminated and np.array_equal(obs, last)  # no jump to the next level inside a transition
    with pytest.raises(Exception, match="call reset"):
        env.step(0)
    first, _ = env.reset()
    assert first.shape == (64, 64, 3)
    with pytest.raises(Exception, match="num_levels must be a non-negative integer"):
        gym.make("flexlam/Procgen-coinrun-v0", num_levels=-1)


def test_collect_writes_exact_frames_from_the_command_line(isolated_roots) -> None:
    import subprocess
    import sys

    from flexlam_rl.data.transitions import load_transitions

    out = subprocess.run([sys.executable, "-m", "flexlam_rl.cli.collect", "env=procgen-coinrun", "behaviour=random", "episodes=3",
                          "max_episode_steps=40"], capture_output=True, text=True, timeout=300, cwd=isolated_roots)
    assert out.returncode == 0, out.stderr
    data = load_transitions("flexlam/procgen-coinrun/random-v0", heldout_fraction=0.0)
    assert data.obs_shape == (64, 64, 3) and data.train.has_actions
    env = gym.make("flexlam/procgen-coinrun-v0", max_episode_steps=40)  # replay episode 0: same frames, bit for bit
    from flexlam_rl.envs import make_behaviour

    policy = make_behaviour("random", env.action_space, None, seed=0)
    frames = [env.reset(seed=0)[0]]
    done = False
    while not done:
        obs, _, terminated, truncated, _ = env.step(policy(env))
        frames.append(obs)
        done = terminated or truncated
    assert np.array_equal(np.stack(frames), data.train.sources[0].frames[: len(frames)])
