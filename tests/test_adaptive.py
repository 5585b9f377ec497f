"""Adaptive token budgets: a length per transition, and agents that choose their own."""

from __future__ import annotations

import gymnasium as gym
import minigrid  # noqa: F401  (registers MiniGrid ids)
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.vec_env import DummyVecEnv

from flexlam_rl import FlexLAM, LatentActionWrapper, TokenCost
from flexlam_rl.act.wrappers import AdaptiveLatentActionWrapper
from flexlam_rl.agents import LatentActionVecEnv, VecTokenCost
from flexlam_rl.agents.train import AgentConfig, train_agent

TOLS = [0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]


def _transitions(cartpole_models: dict, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    data = cartpole_models["data"].heldout
    rows = [data[i] for i in range(min(n, len(data)))]
    return np.stack([r["obs"] for r in rows]), np.stack([r["next_obs"] for r in rows])


def test_adaptive_prefix_len_follows_its_rule_and_never_grows_with_tol(cartpole_models) -> None:
    lam: FlexLAM = cartpole_models["lam"]
    obs, next_obs = _transitions(cartpole_models)
    lengths = {tol: lam.adaptive_prefix_len(obs, next_obs, tol=tol) for tol in TOLS}
    for out in lengths.values():
        assert out.dtype == torch.int64 and out.shape == (len(obs),)
        assert int(out.min()) >= 1 and int(out.max()) <= lam.num_tokens
    for small, large in zip(TOLS, TOLS[1:]):
        assert torch.all(lengths[large] <= lengths[small]), (small, large)
    assert lengths[TOLS[0]].float().mean() > lengths[TOLS[-1]].float().mean()  # the sweep spans real choices
    assert len(torch.unique(lengths[0.1])) > 1  # transitions differ in what they need

    # the rule, recomputed one budget at a time through the public API
    x_next = lam.normalize(next_obs, "next_obs")
    tokens = lam.encode(obs, next_obs)
    errors = torch.stack([((lam.normalize(lam.decode(obs, lam.embed(tokens, k)))) - x_next).pow(2).mean(-1)
                          for k in range(1, lam.num_tokens + 1)], dim=1)
    assert torch.allclose(errors, lam.errors_by_length(obs, next_obs), rtol=1e-4, atol=1e-6)
    for tol in (0.0, 0.1, 1.0):
        want = [next(k + 1 for k in range(lam.num_tokens) if e[k] <= (1 + tol) * e[-1]) for e in lam.errors_by_length(obs, next_obs)]
        assert lengths[tol].tolist() == want


@pytest.mark.parametrize("tol", [-0.1, float("nan"), float("inf"), "0.1", None])
def test_a_bad_tol_is_a_value_error(cartpole_models, tol) -> None:
    obs, next_obs = _transitions(cartpole_models, 4)
    with pytest.raises(ValueError, match="tol"):
        cartpole_models["lam"].adaptive_prefix_len(obs, next_obs, tol=tol)


def test_per_row_embed_is_each_row_at_its_own_budget(cartpole_models) -> None:
    lam: FlexLAM = cartpole_models["lam"]
    tokens = torch.randint(0, lam.codebook_size, (5, lam.num_tokens))
    lengths = torch.tensor([1, 2, 3, 4, 1])
    mixed = lam.embed(tokens, lengths)
    for row, k in enumerate(lengths.tolist()):
        assert torch.equal(mixed[row], lam.embed(tokens[row:row + 1], k)[0])
    with pytest.raises(ValueError, match=r"prefix_len must be in 1\.\.4"):
        lam.embed(tokens, torch.tensor([0, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match="one per row"):
        lam.embed(tokens, torch.tensor([1, 2]))


def _adaptive(models: dict, env: gym.Env, token_cost: float | None = None) -> gym.Env:
    lam = models.get("lam", models.get("lam_dir"))
    translator = models.get("translator", models.get("translator_dir"))
    adaptive = AdaptiveLatentActionWrapper(env, lam, translator)
    return adaptive if token_cost is None else TokenCost(adaptive, token_cost)


def test_adaptive_wrapper_space_and_both_checkers(cartpole_models, pixel_models) -> None:
    env = _adaptive(cartpole_models, gym.make("CartPole-v1"), token_cost=0.01)
    assert env.action_space == gym.spaces.MultiDiscrete([8] * 4 + [4])
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=True)
    pixel = _adaptive(pixel_models, gym.make("MiniGrid-DoorKey-5x5-v0"))
    assert pixel.action_space == gym.spaces.MultiDiscrete([8] * 8 + [8])
    gym_check_env(pixel, skip_render_check=True)
    sb3_check_env(pixel, warn=True)


def test_adaptive_action_is_the_fixed_budget_action_at_its_length_and_pays_per_token(cartpole_models) -> None:
    """Tokens past the chosen length go through the same null_fill: the real action equals a fixed-k
    wrapper's on the first c + 1 tokens, whatever the tokens past the length are."""
    rng = np.random.default_rng(0)
    cost = 0.05
    adaptive = _adaptive(cartpole_models, gym.make("CartPole-v1"), token_cost=cost)
    fixed = {k: LatentActionWrapper(gym.make("CartPole-v1"), cartpole_models["lam"], cartpole_models["translator"], prefix_len=k)
             for k in range(1, 5)}
    obs = _transitions(cartpole_models, 64)[0]
    n = len(obs)
    actions = np.concatenate([rng.integers(0, 8, size=(n, 4)), rng.integers(0, 4, size=(n, 1))], axis=1)
    translation = adaptive.get_wrapper_attr("translation")
    got = translation(translation.validate(actions, n), obs)
    for c in range(4):
        rows = actions[:, 4] == c
        assert rows.any()
        assert np.array_equal(got[rows], fixed[c + 1].translation(actions[rows, : c + 1], obs[rows]))
        padded = actions[rows].copy()
        padded[:, c + 1 : 4] = rng.integers(0, 8, size=(int(rows.sum()), 3 - c))  # other tokens past the length
        assert np.array_equal(got[rows], translation(padded, obs[rows]))
    assert len(np.unique(got)) == 2  # both real actions occur

    for c in range(4):  # one step from the same start: the same real action, the reward less c + 1 tokens' cost
        adaptive.reset(seed=11)
        fixed[c + 1].reset(seed=11)
        tokens = rng.integers(0, 8, size=4)
        _, reward, _, _, info = adaptive.step(np.array([*tokens, c]))
        _, want_reward, _, _, want_info = fixed[c + 1].step(tokens[: c + 1])
        assert info["real_action"] == want_info["real_action"] and info["prefix_len"] == c + 1
        assert reward == pytest.approx(want_reward - cost * (c + 1))


@pytest.mark.parametrize("action, message", [
    ([0, 0, 0, 0, 4], r"length choice .* must be in 0\.\.3"), ([0, 0, 0, 0, -1], r"length choice .* must be in 0\.\.3"),
    ([0, 8, 0, 0, 1], r"tokens must be in 0\.\.7"), ([0, 0, 0, 1], r"shape \(5,\)"), ([0.5, 0, 0, 0, 1], "integers"),
])
def test_out_of_range_lengths_and_tokens_are_value_errors(cartpole_models, action, message) -> None:
    env = _adaptive(cartpole_models, gym.make("CartPole-v1"))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(np.array(action))


def test_bad_token_costs_are_refused(cartpole_models) -> None:
    with pytest.raises(ValueError, match="token_cost must be a finite number"):
        _adaptive(cartpole_models, gym.make("CartPole-v1"), token_cost=float("nan"))
    with pytest.raises(ValueError, match=r"reads info\['prefix_len'\]"):  # a price on tokens needs a latent env
        raw = TokenCost(gym.make("CartPole-v1"), 0.1)
        raw.reset(seed=0)
        raw.step(0)
    with pytest.raises(ValueError, match="token_cost needs agent.prefix_len=adaptive"):
        AgentConfig(lam_dir="x", prefix_len=2, token_cost=0.1)
    with pytest.raises(ValueError, match="'adaptive'"):
        AgentConfig(lam_dir="x", prefix_len="auto")


def test_sb3_vec_env_adaptive_matches_the_single_wrapper(cartpole_models) -> None:
    actions = np.random.default_rng(1).integers(0, 4, size=(5, 3, 5))  # 5 steps x 3 envs x (4 tokens + a length)
    actions[..., :4] = np.random.default_rng(2).integers(0, 8, size=(5, 3, 4))
    venv = VecTokenCost(LatentActionVecEnv(DummyVecEnv([lambda: gym.make("CartPole-v1")] * 3), cartpole_models["lam"],
                                           cartpole_models["translator"], prefix_len="adaptive"), 0.02)
    venv.seed(7)
    venv.reset()
    singles = [_adaptive(cartpole_models, gym.make("CartPole-v1"), token_cost=0.02) for _ in range(3)]
    for i, env in enumerate(singles):
        env.reset(seed=7 + i)
    for t in range(len(actions)):
        _, rewards, dones, infos = venv.step(actions[t])
        want = [env.step(actions[t, i]) for i, env in enumerate(singles)]
        assert not dones.any()
        assert np.allclose(rewards, [w[1] for w in want]) and [i["prefix_len"] for i in infos] == [w[4]["prefix_len"] for w in want]


def test_ppo_with_an_adaptive_budget_trains_and_reports_its_length(cartpole_models, tmp_path) -> None:
    cfg = AgentConfig(env="cartpole", lam_dir=str(cartpole_models["lam_dir"]), translator_dir=str(cartpole_models["translator_dir"]),
                      prefix_len="adaptive", token_cost=0.01, total_timesteps=512, n_envs=2, eval_freq=512, eval_episodes=2,
                      progress_bar=False, algo_kwargs={"n_steps": 128, "batch_size": 64})
    result = train_agent(cfg, tmp_path / "adaptive")
    assert 1.0 <= result.eval_mean_prefix_len <= 4.0
    from stable_baselines3 import PPO

    assert tuple(PPO.load(result.model_path).action_space.nvec) == (8, 8, 8, 8, 4)


def test_adaptive_latent_bc_clones_lengths_and_tokens_and_acts(cartpole_models, cartpole_expert_dataset, tmp_path) -> None:
    from flexlam_rl.act.latent_bc import (
        Episodes,
        LatentBCPolicy,
        LatentBCTrainConfig,
        adaptive_targets,
        evaluate_adaptive_latent_bc,
        random_returns,
        train_latent_bc,
    )
    from flexlam_rl.data.transitions import load_transitions

    lam, translator = cartpole_models["lam"], cartpole_models["translator"]
    expert = load_transitions(cartpole_expert_dataset, heldout_fraction=0.0).train
    lengths = adaptive_targets(lam, expert, tol=0.1)
    assert lengths.shape == (len(expert),) and 1 <= lengths.min() and lengths.max() <= 4
    policy = train_latent_bc(lam, expert, LatentBCTrainConfig(steps=300), tol=0.1)
    batch = expert.__getitems__(range(256))
    action = policy.act_adaptive(batch["obs"])
    assert action.shape == (256, 5) and action[:, 4].min() >= 0 and action[:, 4].max() <= 3
    majority = np.mean(lengths[:256] == np.bincount(lengths).argmax())
    assert np.mean(action[:, 4] + 1 == lengths[:256]) >= majority  # the length head is no worse than the mode
    score = evaluate_adaptive_latent_bc(policy, lam, translator, "cartpole", Episodes(3, 0))
    random = float(np.mean(random_returns("cartpole", 10, seed=0)))
    assert score["mean"] > 2 * random and 1.0 <= score["mean_tokens"] <= 4.0, (score, random)
    policy.save(tmp_path / "bc")
    assert np.array_equal(LatentBCPolicy.load(tmp_path / "bc").act_adaptive(batch["obs"]), action)
    fixed = train_latent_bc(lam, expert, LatentBCTrainConfig(steps=5))
    with pytest.raises(ValueError, match="adaptive tol"):
        fixed.act_adaptive(batch["obs"])


def test_rate_distortion_report(cartpole_models, vector_dataset, tmp_path) -> None:
    from flexlam_rl.data import DataConfig
    from flexlam_rl.evaluate.analysis import run_rate_distortion

    lam_dir = cartpole_models["lam_dir"]
    result = run_rate_distortion(lam_dir, tmp_path / "rd", fixed_dirs=[lam_dir], data=DataConfig([vector_dataset], heldout_fraction=0.2),
                                 tols=[0.0, 0.1, 1.0], limit=None)
    entry = result["tasks"]["cartpole"]
    assert [p["k"] for p in entry["truncation"]] == [1, 2, 3, 4]
    tokens = [p["tokens"] for p in entry["adaptive"]]
    assert tokens == sorted(tokens, reverse=True) and 1.0 <= tokens[-1] <= tokens[0] <= 4.0  # more tol, fewer tokens
    errors = {p["k"]: p["mse"] for p in entry["truncation"]}
    assert entry["adaptive"][0]["mse"] <= errors[4] + 1e-12  # tol 0: no worse than the full code, transition by transition
    assert sum(entry["length_hist"]) == entry["transitions"] == len(cartpole_models["data"].heldout)
    assert sum(sum(v) for v in entry["length_hist_by_action"].values()) == entry["transitions"]
    (name, point), = entry["fixed"].items()
    assert point["tokens"] == 4.0 and point["mse"] == pytest.approx(errors[4], rel=1e-5)  # the same LAM as a "fixed" one
    for figure in result["figures"]:
        assert (tmp_path / "rd" / figure.split("/")[-1]).stat().st_size > 5000
    assert (tmp_path / "rd" / "rate_distortion.json").is_file()


@pytest.mark.slow
def test_flexlam_analyze_cli(cartpole_models, vector_dataset, tmp_path) -> None:
    import os
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flexlam_rl.cli.analyze", *args], cwd=tmp_path, env=os.environ.copy(),
                              capture_output=True, text=True, timeout=300)

    usage = run()
    assert usage.returncode == 2 and "usage: flexlam-analyze {rate-distortion,token-probes}" in usage.stderr
    out = run("rate-distortion", f"lam_dir={cartpole_models['lam_dir']}", f"datasets=[{vector_dataset}]", "heldout_fraction=0.2",
              f"out={tmp_path / 'rd'}", "name=cp")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| adaptive, tol 0.1 |" in out.stdout and (tmp_path / "rd" / "cp_lengths.png").is_file()
    import shutil

    shutil.copytree(cartpole_models["lam_dir"], tmp_path / "run" / "lam")  # without out=: into the LAM's run folder
    out = run("rate-distortion", f"lam_dir={tmp_path / 'run' / 'lam'}", f"datasets=[{vector_dataset}]", "tols=[0.1]", "limit=50")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "run" / "analysis" / "rate_distortion.json").is_file() and not (tmp_path / "benchmarks").exists()
    bad = run("rate-distortion", f"lam_dir={cartpole_models['lam_dir']}", f"datasets=[{vector_dataset}]", "tols=[-1]",
              f"out={tmp_path / 'bad'}")
    assert bad.returncode == 2 and "error: tol must be a finite number >= 0" in bad.stderr
    assert not (tmp_path / "bad").exists()
    probes = run("token-probes", f"lam_dir={cartpole_models['lam_dir']}", "tasks=[cartpole]", "episodes=2", f"out={tmp_path / 'pr'}")
    assert probes.returncode == 2 and "error: Task 'cartpole' has no action-independent state" in probes.stderr
