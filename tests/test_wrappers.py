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
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.wrappers import TimeLimit
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv

from flexlam_rl import (
    FlexLAM,
    LAMConfig,
    LatentActionVectorWrapper,
    LatentActionWrapper,
    TokenCostVector,
    Translator,
    register_latent_env,
)
from flexlam_rl.agents import LatentActionVecEnv


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
        LatentActionWrapper(ThreeActionCartPole(gym.make("CartPole-v1")), cartpole_models["lam"], cartpole_models["translator"],
                            prefix_len=1)


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


@pytest.mark.slow
def test_gym_make_works_from_a_fresh_client_process(cartpole_models) -> None:
    code = (
        "import json, gymnasium as gym; "
        "env = gym.make('flexlam_rl:flexlam/LatentAction-v0', env_id='CartPole-v1', lam={!r}, translator={!r}, prefix_len=2); "
        "obs, _ = env.reset(seed=0); obs, r, term, trunc, info = env.step(env.action_space.sample()); "
        "print(json.dumps([[int(n) for n in env.action_space.nvec], float(r)]))"
    ).format(str(cartpole_models["lam_dir"]), str(cartpole_models["translator_dir"]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ,
                         cwd=cartpole_models["lam_dir"].parent)  # a client outside the repository
    assert out.returncode == 0, out.stderr
    nvec, reward = json.loads(out.stdout.strip().splitlines()[-1])
    assert nvec == [8, 8] and reward == 1.0


def _single_env_rollout(models, seeds: list[int], tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each sub-env on its own LatentActionWrapper: observations, rewards and real actions per step."""
    obs, rewards, actions = [], [], []
    for i, seed in enumerate(seeds):
        env = LatentActionWrapper(gym.make("CartPole-v1"), models["lam"], models["translator"], prefix_len=2)
        first, _ = env.reset(seed=seed)
        steps = [env.step(tokens[t, i]) for t in range(len(tokens))]
        obs.append([first] + [s[0] for s in steps])
        rewards.append([s[1] for s in steps])
        actions.append([s[4]["real_action"] for s in steps])
    return np.array(obs).swapaxes(0, 1), np.array(rewards).T, np.array(actions).T


TOKENS = np.random.default_rng(0).integers(0, 8, size=(6, 4, 2))  # 6 steps x 4 envs x k = 2: no CartPole ends this soon


def test_sb3_vec_env_translates_exactly_like_single_env_wrappers(cartpole_models) -> None:
    want_obs, want_rewards, _ = _single_env_rollout(cartpole_models, [5, 6, 7, 8], TOKENS)
    venv = LatentActionVecEnv(DummyVecEnv([lambda: gym.make("CartPole-v1")] * 4), cartpole_models["lam"],
                              cartpole_models["translator"], prefix_len=2)
    venv.seed(5)  # sub-env i resets with 5 + i
    got_obs, got_rewards = [venv.reset()], []
    for t in range(len(TOKENS)):
        obs, rewards, dones, _ = venv.step(TOKENS[t])
        assert not dones.any()
        got_obs.append(obs)
        got_rewards.append(rewards)
    assert np.array_equal(np.array(got_obs), want_obs)  # same real actions, so the same trajectories
    assert np.array_equal(np.array(got_rewards), want_rewards)
    with pytest.raises(ValueError, match=r"shape \(4, 2\)"):
        venv.step_async(np.zeros((3, 2), dtype=int))


def test_gymnasium_vector_wrapper_translates_exactly_like_single_env_wrappers(cartpole_models) -> None:
    want_obs, want_rewards, want_actions = _single_env_rollout(cartpole_models, [5, 6, 7, 8], TOKENS)
    envs = gym.make_vec("CartPole-v1", num_envs=4, vectorization_mode="sync")
    env = LatentActionVectorWrapper(envs, cartpole_models["lam"], cartpole_models["translator"], prefix_len=2)
    assert env.single_action_space == gym.spaces.MultiDiscrete([8, 8])
    assert env.action_space == gym.vector.utils.batch_space(gym.spaces.MultiDiscrete([8, 8]), 4)
    obs, _ = env.reset(seed=[5, 6, 7, 8])
    got_obs, got_rewards = [obs], []
    for t in range(len(TOKENS)):
        obs, rewards, terminated, truncated, _ = env.step(TOKENS[t])
        assert not (terminated | truncated).any()
        got_obs.append(obs)
        got_rewards.append(rewards)
    assert np.array_equal(np.array(got_obs), want_obs)
    assert np.array_equal(np.array(got_rewards), want_rewards)
    assert set(np.unique(want_actions)) == {0, 1}  # the token draws exercise both real actions


@pytest.mark.parametrize("k", [1, 3, 8])
def test_memoized_translation_acts_exactly_like_computing_everything_fresh(pixel_models, k: int) -> None:
    """The wrapper memoizes the code latents and the o_t features of frames it has seen; the actions must not change."""
    lam, translator = FlexLAM.load(pixel_models["lam_dir"]), Translator.load(pixel_models["translator_dir"])
    with torch.no_grad():  # an untrained translator's argmax hardly moves: sharpen it so that tokens and frames matter
        for param in translator.parameters():
            param.mul_(8)
    envs = [LatentActionWrapper(gym.make("MiniGrid-Empty-8x8-v0"), lam, translator, prefix_len=k, memoize=memoize)
            for memoize in (False, True)]
    for env in envs:
        env.reset(seed=0)
    tokens = np.random.default_rng(k).integers(0, 8, size=(150, k))
    actions = [[], []]
    for t in range(len(tokens)):
        for env, acted in zip(envs, actions):
            _, _, terminated, truncated, info = env.step(tokens[t])
            acted.append(int(info["real_action"]))
            if terminated or truncated:
                env.reset(seed=t)
    assert actions[0] == actions[1] and len(set(actions[0])) > 1
    features = envs[1].translation.features
    assert features.hits > features.misses > 0  # MiniGrid revisits frames: most o_t features come from the memo


def test_pixel_lam_on_a_vector_env_is_a_clear_error(pixel_models) -> None:
    with pytest.raises(ValueError, match="MiniGrid env|cannot be matched"):
        LatentActionWrapper(gym.make("CartPole-v1"), pixel_models["lam_dir"], pixel_models["translator_dir"], prefix_len=1)


@pytest.fixture(scope="module")
def rendered_models(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An untrained LAM on rendered 32 px frames and a Box(1) translator: a Pendulum pixel pipeline."""
    from flexlam_rl.align import TranslatorConfig, action_spec

    root = tmp_path_factory.mktemp("rendered")
    torch.manual_seed(0)
    FlexLAM(LAMConfig(obs_shape=[32, 32, 3], num_tokens=4, channels=[8], hidden_dim=32, latent_dim=8,
                      preprocess={"kind": "render_rgb", "frame_size": 32})).save(root / "lam")
    Translator(TranslatorConfig(num_tokens=4, latent_dim=8, action=action_spec(gym.make("Pendulum-v1").action_space),
                                hidden_dim=16, use_obs=True, obs_shape=[32, 32, 3], obs_channels=[8])).save(root / "translator")
    return {"lam": str(root / "lam"), "translator": str(root / "translator")}


def test_rendered_pixel_envs_pass_both_checkers_with_their_render_check(rendered_models) -> None:
    """Both cases that failed the checker's re-make: gym.make of the latent id, and a wrapped rgb_array env."""
    made = gym.make("flexlam_rl:flexlam/LatentAction-v0", env_id="pendulum-pixels", prefix_len=2, **rendered_models)
    gym_check_env(made)  # no skip_render_check: the checker re-makes it per render mode
    assert made.metadata["render_modes"] == ["rgb_array"] and made.observation_space.shape == (32, 32, 3)
    wrapped = LatentActionWrapper(gym.make("Pendulum-v1", render_mode="rgb_array"), rendered_models["lam"],
                                  rendered_models["translator"], prefix_len=1)
    gym_check_env(wrapped)
    sb3_check_env(wrapped, warn=True)
    rendered = gym.make("flexlam_rl:flexlam/LatentAction-v0", env_id="pendulum-pixels", prefix_len=1, render_mode="rgb_array",
                        **rendered_models)
    rendered.reset(seed=0)
    assert rendered.render().ndim == 3


def test_minigrid_latent_env_passes_the_render_check(pixel_models) -> None:
    env = LatentActionWrapper(gym.make("MiniGrid-DoorKey-5x5-v0", render_mode="rgb_array"), pixel_models["lam_dir"],
                              pixel_models["translator_dir"], prefix_len=2)
    gym_check_env(env)
    made = gym.make("flexlam_rl:flexlam/LatentAction-v0", env_id="minigrid-empty", lam=str(pixel_models["lam_dir"]),
                    translator=str(pixel_models["translator_dir"]), prefix_len=3)
    gym_check_env(made)


def test_gymnasium_vector_form_charges_no_token_cost_on_autoreset_steps(cartpole_models) -> None:
    """Next-step autoreset: the step after an episode ends resets that sub-env and ignores its action."""
    envs = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync", wrappers=[lambda e: TimeLimit(e, 3)])
    env = TokenCostVector(LatentActionVectorWrapper(envs, cartpole_models["lam"], cartpole_models["translator"],
                                                    prefix_len="adaptive"), 0.25)
    env.reset(seed=[0, 1])
    action = np.array([[1, 2, 3, 4, 1]] * 2)  # 4 tokens: the last entry c = 1 keeps c + 1 = 2 of them
    for step in range(4):
        _, rewards, terminated, truncated, info = env.step(action)
        if step < 3:  # acting steps: CartPole's +1 minus 2 tokens x 0.25
            assert np.allclose(rewards, 0.5) and info["prefix_len"].tolist() == [2, 2] and info["_prefix_len"].all()
        else:  # both sub-envs were truncated at step 3: this step only resets them
            assert np.allclose(rewards, 0.0) and not info["_prefix_len"].any()
    assert truncated.sum() == 0
