"""Pixel wrappers, named tasks and scripted experts on real environments."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from flexlam_rl.envs import TASKS, apply_preprocess, get_task, make_behaviour


def _episode_return(task_name: str, behaviour: str, seed: int, **kwargs) -> tuple[float, int]:
    task = get_task(task_name)
    env = task.make()
    policy = make_behaviour(behaviour, env.action_space, task.expert, seed, **kwargs)
    env.reset(seed=seed)
    total, steps, done = 0.0, 0, False
    while not done:
        _, reward, terminated, truncated, _ = env.step(policy(env))
        total, steps, done = total + reward, steps + 1, terminated or truncated
    env.close()
    return total, steps


@pytest.mark.parametrize("name", ["minigrid-empty", "minigrid-doorkey", "minigrid-fourrooms", "minigrid-lavagap", "minigrid-unlock"])
def test_minigrid_expert_solves_task(name: str) -> None:
    returns = [_episode_return(name, "expert", seed)[0] for seed in range(3)]
    assert min(returns) > 0.5, returns  # MiniGrid pays 1 - 0.9 * steps / max_steps on success


def test_random_behaviour_is_low_return() -> None:
    expert = np.mean([_episode_return("minigrid-doorkey", "expert", s)[0] for s in range(3)])
    random = np.mean([_episode_return("minigrid-doorkey", "random", s)[0] for s in range(3)])
    assert random < expert - 0.5


def test_classic_control_experts() -> None:
    assert _episode_return("cartpole", "expert", 0)[1] >= 400
    assert _episode_return("pendulum", "expert", 0)[0] > -400  # random torques score about -1200
    assert _episode_return("mountaincar", "expert", 0)[1] < 200  # reaches the flag before the time limit


@pytest.mark.parametrize("name", ["minigrid-doorkey", "pendulum-pixels"])
def test_pixel_tasks_give_fixed_frames_and_pass_env_checker(name: str) -> None:
    env = TASKS[name].make()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    env.action_space.seed(0)
    frames = [env.step(env.action_space.sample())[0] for _ in range(10)]
    assert any(not np.array_equal(obs, f) for f in frames)  # the pixels show the dynamics
    check_env(env, skip_render_check=True)


def test_registered_ids_work_with_gym_make() -> None:
    env = gym.make("flexlam/minigrid-doorkey-v0")
    assert env.observation_space.shape == (64, 64, 3)
    env.close()


def test_any_gymnasium_id_is_a_task() -> None:
    task = get_task("Acrobot-v1")
    env = task.make()
    assert env.observation_space.shape == (6,)
    with pytest.raises(ValueError, match="Unknown env"):
        get_task("NoSuchEnv-v9")


def test_minigrid_preprocess_on_wrong_env_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="MiniGrid env"):
        apply_preprocess(gym.make("CartPole-v1"), {"kind": "minigrid_rgb", "frame_size": 64})
    with pytest.raises(ValueError, match="render_mode"):
        apply_preprocess(gym.make("CartPole-v1"), {"kind": "render_rgb", "frame_size": 64})
    with pytest.raises(ValueError, match="preprocess kind"):
        apply_preprocess(gym.make("CartPole-v1"), {"kind": "sepia"})


def test_expert_behaviour_without_expert_is_a_clear_error() -> None:
    env = gym.make("Acrobot-v1")
    with pytest.raises(ValueError, match="behaviour=random"):
        make_behaviour("expert", env.action_space, None, seed=0)
