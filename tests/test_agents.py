"""SB3 agents in latent space: PPO/A2C run, evaluate, save, write a GIF."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest
from stable_baselines3 import PPO

from flexlam_rl.act.latent_bc import random_returns
from flexlam_rl.agents.train import AgentConfig, train_agent


def test_ppo_in_latent_space_learns_and_saves(cartpole_models, tmp_path) -> None:
    """4096 steps of PPO through 2 latent tokens balance CartPole well beyond random actions
    (54-97 over seeds 0-2 measured, vs about 22 for random actions and about 10 for an untrained greedy policy)."""
    cfg = AgentConfig(env="cartpole", lam_dir=str(cartpole_models["lam_dir"]), translator_dir=str(cartpole_models["translator_dir"]),
                      prefix_len=2, total_timesteps=4096, n_envs=4, eval_freq=2048, eval_episodes=5, progress_bar=False)
    result = train_agent(cfg, tmp_path / "ppo")
    model = PPO.load(result.model_path)
    assert tuple(model.action_space.nvec) == (8, 8)
    random = float(np.mean(random_returns("cartpole", 10, seed=0)))
    assert len(result.curve) == 2 and result.eval_mean_return > 1.5 * random, (result.eval_mean_return, random)
    metrics = json.loads((tmp_path / "ppo" / "agent_metrics.json").read_text())
    assert metrics["config"]["space"] == "latent" and metrics["eval_returns"]
    assert list((tmp_path / "ppo" / "tb").iterdir())


def test_a2c_and_the_raw_reference(cartpole_models, tmp_path) -> None:
    latent = train_agent(AgentConfig(env="cartpole", algo="a2c", lam_dir=str(cartpole_models["lam_dir"]), prefix_len=1,
                                     translator_dir=str(cartpole_models["translator_dir"]), total_timesteps=500, n_envs=2,
                                     eval_freq=250, eval_episodes=1, progress_bar=False), tmp_path / "a2c")
    raw = train_agent(AgentConfig(env="cartpole", space="raw", total_timesteps=1024, n_envs=2, eval_freq=512,
                                  eval_episodes=1, progress_bar=False), tmp_path / "raw")
    assert latent.model_path.is_file() and raw.model_path.is_file()
    assert PPO.load(raw.model_path).action_space.n == 2


def test_pixel_agent_writes_a_gif(pixel_models, tmp_path) -> None:
    cfg = AgentConfig(env="minigrid-empty", lam_dir=str(pixel_models["lam_dir"]), translator_dir=str(pixel_models["translator_dir"]),
                      prefix_len=1, total_timesteps=256, n_envs=2, eval_freq=256, eval_episodes=1, progress_bar=False,
                      algo_kwargs={"n_steps": 64, "batch_size": 64})
    result = train_agent(cfg, tmp_path / "pix")
    frames = iio.imread(result.gif_path, index=None)  # Pillow merges identical frames, so >= 1 frame
    assert frames.ndim == 4 and frames.shape[1:3] == (256, 256)  # 64x64 frames upscaled 4x


@pytest.mark.parametrize("kwargs, message", [({"space": "latent", "lam_dir": None}, "lam_dir"), ({"algo": "dqn"}, "algo"),
                                             ({"space": "pixels"}, "space"), ({"total_timesteps": 0}, "total_timesteps")])
def test_bad_agent_configs(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        AgentConfig(**{"lam_dir": "x", **kwargs})


def test_a_budget_the_lam_lacks_fails_before_any_env_and_episodes_keep_the_asked_length(pixel_models, tmp_path) -> None:
    from flexlam_rl.agents.train import make_vec_env
    from flexlam_rl.errors import ConfigError

    cfg = AgentConfig(env="minigrid-empty", lam_dir=str(pixel_models["lam_dir"]), prefix_len=99, progress_bar=False)
    with pytest.raises(ConfigError, match=r"prefix_len=99 is outside 1..8"):
        train_agent(cfg, tmp_path / "never")
    assert not (tmp_path / "never").exists()
    venv = make_vec_env(AgentConfig(env="cartpole", space="raw", max_episode_steps=7), 1, seed=0)
    venv.reset()
    steps, done = 0, False
    while not done:
        _, _, dones, _ = venv.step(np.zeros(1, dtype=np.int64))
        steps, done = steps + 1, bool(dones[0])
    assert steps == 7  # the limit the data was collected with, not CartPole's 500
    assert AgentConfig(lam_dir="x", algo_kwargs=None).algo_kwargs == {}  # agent.algo_kwargs: null in the config
