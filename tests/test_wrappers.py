"""Latent-action wrappers: env checkers, registration, batching, bad latent actions."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import gymnasium as gym
import minigrid  # noqa: F401  (registers MiniGrid ids)
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv

from flexlam_rl import FlexLAM, LatentActionVecEnv, LatentActionVectorWrapper, LatentActionWrapper, Translator, register_latent_env
from flexlam_rl.envs import TASKS


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_pixel_wrapper_on_an_unseen_minigrid_task_passes_both_checkers(pixel_models, k: int) -> None:
    raw = gym.make("MiniGrid-DoorKey-5x5-v0")  # raw dict observations; the LAM was never trained on it
    env = LatentActionWrapper(raw, pixel_models["lam_dir"], pixel_models["translator_dir"], prefix_len=k)
    assert env.action_space == gym.spaces.MultiDiscrete([8] * k)
    assert env.observation_space.shape == (64, 64, 3)
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=True)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert obs.shape == (64, 64, 3) and isinstance(reward, float) and 0 <= int(info["real_action"]) < 7


@pytest.mark.parametrize("k", [1, 2, 4])
def test_vector_wrapper_passes_both_checkers(cartpole_models, k: int) -> None:
    env = LatentActionWrapper(gym.make("CartPole-v1"), cartpole_models["lam"], cartpole_models["translator"], prefix_len=k)
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=True)


def test_wrapped_env_acts_on_the_translated_action(cartpole_models) -> None:
    lam, translator = cartpole_models["lam"], cartpole_models["translator"]
    env = LatentActionWrapper(gym.make("CartPole-v1"), lam, translator, prefix_len=2)
    obs, _ = env.reset(seed=3)
    tokens = np.array([5, 1])
    expected = translator.predict(lam.embed(tokens[None], 2), obs[None])[0]
    _, _, _, _, info = env.step(tokens)
    assert info["real_action"] == expected


@pytest.mark.parametrize("bad", [0, 9, 2.5])
def test_prefix_len_out_of_range_raises(pixel_models, bad) -> None:
    with pytest.raises(ValueError, match="prefix_len"):
        LatentActionWrapper(gym.make("MiniGrid-Empty-5x5-v0"), pixel_models["lam_dir"], pixel_models["translator_dir"], prefix_len=bad)


@pytest.mark.parametrize(
    "action, message",
    [([8, 0], r"in 0\.\.7"), ([-1, 0], r"in 0\.\.7"), ([1, 2, 3], r"shape \(2,\)"), ([0.5, 1.0], "integers"), (["a", "b"], "integers")],
)
def test_out_of_range_latent_actions_are_clear_errors(cartpole_models, action, message) -> None:
    env = LatentActionWrapper(gym.make("CartPole-v1"), cartpole_models["lam"], cartpole_models["translator"], prefix_len=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(np.array(action))


class ThreeActionCartPole(gym.ActionWrapper):
    """CartPole observations with a Discrete(3) action space: fits the LAM, not the translator."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.action_space = gym.spaces.Discrete(3)

    def action(self, action: int) -> int:
        return min(int(action), 1)


def test_translator_that_does_not_fit_the_env_is_refused(cartpole_models) -> None:
    with pytest.raises(ValueError, match="Discrete\\(2\\).*Discrete\\(3\\)"):
        LatentActionWrapper(ThreeActionCartPole(gym.make("CartPole-v1")), cartpole_models["lam"], cartpole_models["translator"], prefix_len=1)


def test_registered_latent_env_from_checkpoint_paths(cartpole_models, pixel_models) -> None:
    env = gym.make("flexlam/LatentAction-v0", env_id="cartpole", lam=str(cartpole_models["lam_dir"]),
                   translator=str(cartpole_models["translator_dir"]), prefix_len=3)
    assert env.action_space == gym.spaces.MultiDiscrete([8] * 3)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env_id = register_latent_env("test/DoorKeyLatent-v0", "MiniGrid-DoorKey-5x5-v0", pixel_models["lam_dir"],
                                 pixel_models["translator_dir"], prefix_len=2, max_episode_steps=50)
    env = gym.make(env_id)
    assert env.observation_space.shape == (64, 64, 3) and env.spec.max_episode_steps == 50


def test_gym_make_works_from_a_fresh_client_process(cartpole_models) -> None:
    code = (
        "import json, gymnasium as gym; "
        "env = gym.make('flexlam_rl:flexlam/LatentAction-v0', env_id='CartPole-v1', lam=%r, translator=%r, prefix_len=2); "
        "obs, _ = env.reset(seed=0); obs, r, term, trunc, info = env.step(env.action_space.sample()); "
        "print(json.dumps([[int(n) for n in env.action_space.nvec], float(r)]))"
    ) % (str(cartpole_models["lam_dir"]), str(cartpole_models["translator_dir"]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
    assert out.returncode == 0, out.stderr
    nvec, reward = json.loads(out.stdout.strip().splitlines()[-1])
    assert nvec == [8, 8] and reward == 1.0


def test_vec_env_translates_the_whole_batch_like_single_envs(cartpole_models) -> None:
    lam, translator = cartpole_models["lam"], cartpole_models["translator"]
    venv = LatentActionVecEnv(DummyVecEnv([lambda: gym.make("CartPole-v1")] * 4), lam, translator, prefix_len=2)
    venv.seed(0)
    obs = venv.reset()
    tokens = np.array([[0, 1], [2, 3], [4, 5], [6, 7]])
    expected = translator.predict(lam.embed(tokens, 2), obs)
    venv.step_async(tokens)
    assert np.array_equal(np.array([e.unwrapped.steps_beyond_terminated is None for e in venv.venv.envs]), np.ones(4, bool))
    venv.step_wait()
    singles = []
    for i in range(4):
        env = LatentActionWrapper(gym.make("CartPole-v1"), lam, translator, prefix_len=2)
        env.reset()
        env._last_obs = obs[i]
        singles.append(env.step(tokens[i])[4]["real_action"])
    assert np.array_equal(np.array(singles), expected)
    with pytest.raises(ValueError, match=r"shape \(4, 2\)"):
        venv.step_async(np.zeros((3, 2), dtype=int))


def test_gymnasium_vector_wrapper(cartpole_models) -> None:
    envs = gym.make_vec("CartPole-v1", num_envs=3, vectorization_mode="sync")
    env = LatentActionVectorWrapper(envs, cartpole_models["lam"], cartpole_models["translator"], prefix_len=2)
    obs, _ = env.reset(seed=0)
    obs, rewards, terminated, truncated, _ = env.step(env.action_space.sample())
    assert obs.shape == (3, 4) and rewards.shape == (3,)
    assert env.action_space.shape == (3, 2)


def test_pixel_lam_on_a_vector_env_is_a_clear_error(pixel_models) -> None:
    with pytest.raises(ValueError, match="MiniGrid env|cannot be matched"):
        LatentActionWrapper(gym.make("CartPole-v1"), pixel_models["lam_dir"], pixel_models["translator_dir"], prefix_len=1)
