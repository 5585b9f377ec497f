"""Latent BC: clones the IDM's tokens from action-free data and acts through the translator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flexlam_rl.act.latent_bc import (
    Episodes,
    LatentBCPolicy,
    LatentBCTrainConfig,
    evaluate_latent_bc,
    random_returns,
    rollout_returns,
    token_targets,
    train_latent_bc,
)
from flexlam_rl.act.pipeline import LatentBCScoring, run_latent_bc
from flexlam_rl.data.transitions import load_transitions
from flexlam_rl.errors import ConfigError


@pytest.mark.parametrize("head", ["autoregressive", "independent"])
def test_latent_bc_learns_the_idm_tokens_without_actions(cartpole_models, monkeypatch, head) -> None:
    lam, data = cartpole_models["lam"], cartpole_models["data"]
    for source in data.train.sources:  # prove actions are never read: remove them
        monkeypatch.setattr(source, "actions", None)
    record: dict = {}
    policy = train_latent_bc(lam, data.train, LatentBCTrainConfig(steps=300, head=head, until_plateau=False), record=record)
    assert record == {"updates": 300, "plateaued": False, "validation": None}
    obs, tokens = token_targets(lam, data.train)
    predicted = policy.act(obs, lam.num_tokens)
    majority = np.mean([np.mean(tokens[:, j] == np.bincount(tokens[:, j]).argmax()) for j in range(tokens.shape[1])])
    assert np.mean(predicted == tokens) > majority + 0.05  # better than always predicting each slot's mode
    assert policy.act(obs[:3], 2).shape == (3, 2)


@pytest.mark.parametrize("head", ["autoregressive", "regress", "independent"])
def test_latent_bc_on_expert_data_beats_a_random_policy_at_every_budget(cartpole_models, cartpole_expert_dataset, tmp_path,
                                                                        head) -> None:
    """The LAM and translator only ever saw random CartPole; cloning 3 action-free expert episodes
    through them balances the pole far longer than random actions (about 240-340 vs 26 measured)."""
    lam, translator = cartpole_models["lam"], cartpole_models["translator"]
    expert = load_transitions(cartpole_expert_dataset, heldout_fraction=0.0).train
    record: dict = {}
    policy = train_latent_bc(lam, expert, LatentBCTrainConfig(steps=300, head=head, check_every=20), record=record)
    assert record["validation"] is not None and 0 < record["updates"] <= 300  # checked on a held-out expert episode
    scores = evaluate_latent_bc(policy, lam, translator, "cartpole", [1, 4], Episodes(3, 0))
    random = float(np.mean(random_returns("cartpole", 10, seed=0)))
    assert set(scores) == {1, 4}
    assert all(s["mean"] > 4 * random for s in scores.values()), (scores, random)
    # budgets share one env, reset with each episode's seed: the returns of one env per budget
    assert {k: evaluate_latent_bc(policy, lam, translator, "cartpole", [k], Episodes(3, 0))[k] for k in (4, 1)} == scores
    shared: dict = {}  # one translation per budget, reused (memo and all) by a second evaluation: same returns
    for _ in range(2):
        assert evaluate_latent_bc(policy, lam, translator, "cartpole", [1, 4], Episodes(3, 0), translations=shared) == scores
    assert set(shared) == {1, 4} and shared[4].latents.hits > 0
    policy.save(tmp_path / "bc")
    loaded = LatentBCPolicy.load(tmp_path / "bc")
    obs = np.random.default_rng(0).normal(size=(4, 4)).astype(np.float32)
    assert torch.equal(policy(obs), loaded(obs))
    with pytest.raises(ValueError, match="1..4"):
        policy.act(obs, 5)


def test_rollout_records_frames_of_the_first_episode() -> None:
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    env.action_space.seed(0)
    frames: list = []
    returns = rollout_returns(env, lambda o: env.action_space.sample(), 2, 0, frames)
    assert len(returns) == 2 and len(frames) == int(returns[0]) + 1


def test_run_latent_bc_caps_every_scored_episode(cartpole_models, cartpole_expert_dataset, tmp_path) -> None:
    """A cap of 12 steps holds for the policy, the random floor and the GIF alike (CartPole pays 1 per step),
    so a long game (Pong, Breakout) can be scored in minutes; a cap that is not a positive integer is refused."""
    bc = LatentBCTrainConfig(steps=50)
    metrics = run_latent_bc(cartpole_models["lam_dir"], "cartpole", [cartpole_expert_dataset], bc,
                            translator_dir=cartpole_models["translator_dir"], out=tmp_path / "bc",
                            scoring=LatentBCScoring([2], Episodes(2, 10_000, 12)))
    assert metrics["max_episode_steps"] == 12 and metrics["returns"][2]["mean"] <= 12 and metrics["random"]["mean"] <= 12
    uncapped = float(np.mean(random_returns("cartpole", 2, seed=10_000)))
    assert metrics["random"]["mean"] < uncapped  # the cap cut the random floor's episodes too
    with pytest.raises(ConfigError, match=r"max_episode_steps must be a positive integer or null.*got 0"):
        run_latent_bc(cartpole_models["lam_dir"], "cartpole", [cartpole_expert_dataset], bc,
                      scoring=LatentBCScoring(episodes=Episodes(20, 10_000, 0)), translator_dir=cartpole_models["translator_dir"],
                      out=tmp_path / "never")
    assert not (tmp_path / "never").exists()
