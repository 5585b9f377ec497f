"""Latent BC: clones the IDM's tokens from action-free data and acts through the translator."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from flexlam_rl.latent_bc import LatentBCPolicy, LatentBCTrainConfig, evaluate_latent_bc, rollout_returns, token_targets, train_latent_bc
from flexlam_rl.wrappers import LatentActionWrapper


def test_latent_bc_learns_the_idm_tokens_without_actions(cartpole_models, monkeypatch) -> None:
    lam, data = cartpole_models["lam"], cartpole_models["data"]
    for source in data.train.sources:  # prove actions are never read: remove them
        monkeypatch.setattr(source, "actions", None)
    policy = train_latent_bc(lam, data.train, LatentBCTrainConfig(steps=300))
    obs, tokens = token_targets(lam, data.train)
    predicted = policy(obs).argmax(-1).numpy()
    majority = np.mean([np.mean(tokens[:, j] == np.bincount(tokens[:, j]).argmax()) for j in range(tokens.shape[1])])
    assert np.mean(predicted == tokens) > majority + 0.05  # better than always predicting each slot's mode
    assert policy.act(obs[:3], 2).shape == (3, 2)


def test_latent_bc_scored_by_return_at_every_budget(cartpole_models, tmp_path) -> None:
    lam, translator, data = cartpole_models["lam"], cartpole_models["translator"], cartpole_models["data"]
    policy = train_latent_bc(lam, data.train, LatentBCTrainConfig(steps=50))
    scores = evaluate_latent_bc(policy, lambda k: LatentActionWrapper(gym.make("CartPole-v1"), lam, translator, k), [1, 4], 3, 0)
    assert set(scores) == {1, 4} and all(s["mean"] >= 8 for s in scores.values())  # CartPole pays 1 per step
    policy.save(tmp_path / "bc")
    loaded = LatentBCPolicy.load(tmp_path / "bc")
    obs = np.random.default_rng(0).normal(size=(4, 4)).astype(np.float32)
    assert torch.equal(policy(obs), loaded(obs))
    with pytest.raises(ValueError, match="1..4"):
        policy.act(obs, 5)


def test_rollout_records_frames_of_the_first_episode() -> None:
    env = gym.make("CartPole-v1")
    env.action_space.seed(0)
    frames: list = []
    returns = rollout_returns(env, lambda o: env.action_space.sample(), 2, 0, frames)
    assert len(returns) == 2 and len(frames) == int(returns[0]) + 1
