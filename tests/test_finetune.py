"""Acting from a latent BC policy: baselines beside its returns, and PPO fine-tuning that starts where it stands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import FAST_TRAIN, tiny_lam_config
from stable_baselines3 import PPO

from flexlam_rl import FlexLAM
from flexlam_rl.act.baselines import baseline_returns, normalized_score
from flexlam_rl.act.latent_bc import Episodes, LatentBCPolicy, LatentBCTrainConfig
from flexlam_rl.act.pipeline import LatentBCScoring, run_latent_bc
from flexlam_rl.act.wrappers import LatentActionWrapper, lam_env
from flexlam_rl.agents.finetune import LatentBCActorCritic
from flexlam_rl.agents.train import AgentConfig, make_vec_env, train_agent
from flexlam_rl.align import AlignConfig, LabelConfig, Translator, action_spec, embed_transitions, select_labels, train_translator
from flexlam_rl.data.transitions import load_transitions
from flexlam_rl.errors import ConfigError
from flexlam_rl.pretrain.train import TrainConfig, pretrain

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def doorkey_pipeline(pixel_dataset, tmp_path_factory) -> dict:
    """A tiny pixel DoorKey LAM, a translator on 100 labels and a latent BC policy (2 frames) with its metrics."""
    root = tmp_path_factory.mktemp("doorkey_pipeline")
    data = load_transitions(pixel_dataset, heldout_fraction=0.2)
    pretrain(root, data, tiny_lam_config(data), TrainConfig(steps=60, **FAST_TRAIN))
    lam = FlexLAM.load(root / "lam")
    labeled = embed_transitions(lam, data.train, select_labels(data.train, LabelConfig(count=100)))
    spec = action_spec(data.train.sources[0].action_space)
    train_translator(lam, labeled, spec, AlignConfig(steps=100, use_obs=True, hidden_dim=32)).save(root / "translator")
    bc = LatentBCTrainConfig(steps=60, frame_stack=2, check_every=20)
    metrics = run_latent_bc(root / "lam", "minigrid-doorkey", [pixel_dataset], bc, out=root / "latent_bc",
                            scoring=LatentBCScoring([1, 4], Episodes(2, 10_000, 20), gif=False))
    return {"root": root, "lam": lam, "metrics": metrics, "dataset": pixel_dataset}


def test_latent_bc_returns_come_with_random_expert_and_true_action_bc_on_the_same_episodes(doorkey_pipeline) -> None:
    metrics = doorkey_pipeline["metrics"]
    base = metrics["baselines"]
    assert base["task"] == "minigrid-doorkey" and base["episodes"] == 2 and base["max_episode_steps"] == 20
    assert base["expert"] is not None and base["expert"] > base["random"]  # the BFS planner opens the door within 20 steps
    assert base["true_action_bc"] is not None  # cloned from the same expert data's actions, scored on the same episodes
    for k, ret in metrics["returns"].items():
        assert metrics["normalized"][k] == pytest.approx((ret["mean"] - base["random"]) / (base["expert"] - base["random"]))
    assert metrics["training"]["updates"] <= 60 and metrics["frame_stack"] == 2 and metrics["head"] == "autoregressive"
    saved = json.loads((doorkey_pipeline["root"] / "latent_bc" / "config.json").read_text())
    assert saved["extra"]["lam_fingerprint"] == doorkey_pipeline["lam"].fingerprint()


def test_without_a_scripted_expert_there_is_no_normalized_score_not_a_nan() -> None:
    import gymnasium as gym

    with gym.make("Acrobot-v1", max_episode_steps=20) as env:
        base = baseline_returns(env, "Acrobot-v1", 2, seed=0)
    assert base.expert is None and base.normalized(-10.0) is None and base.to_dict()["expert_note"] == "no expert"
    assert normalized_score(5.0, 1.0, 1.0) is None and normalized_score(3.0, 1.0, 5.0) == pytest.approx(0.5)


def test_fine_tuning_starts_from_the_latent_bc_policy_and_its_translator(doorkey_pipeline, tmp_path) -> None:
    root = doorkey_pipeline["root"]
    cfg = AgentConfig(env="minigrid-doorkey", lam_dir=str(root / "lam"), prefix_len=4, init_from=str(root / "latent_bc"),
                      total_timesteps=128, n_envs=2, eval_freq=128, eval_episodes=1, max_episode_steps=20, progress_bar=False,
                      gif=False, algo_kwargs={"n_steps": 64, "batch_size": 64})
    cfg.check_lam()
    assert cfg.frame_stack == 2  # the policy's own stack
    env = make_vec_env(cfg, 1, 0)

    policy = LatentBCActorCritic(env.observation_space, env.action_space, lambda _: 1e-4, init_from=cfg.init_from,
                                 lam_dir=cfg.lam_dir, translator_dir=cfg.translator_path, prefix_len=4)
    bc = LatentBCPolicy.load(root / "latent_bc")
    obs = env.reset()  # [1, 2 * C, H, W]: the stack, channel first
    greedy, _ = policy.predict(obs, deterministic=True)
    frames = np.transpose(obs, (0, 2, 3, 1))
    lam = doorkey_pipeline["lam"]
    with LatentActionWrapper(lam_env("minigrid-doorkey", lam), lam, root / "translator", 4) as latent:
        real = latent.translation(bc.act(frames, 4), frames[..., -3:])  # latent BC's action through the translator
    assert int(greedy[0]) == int(real[0])  # before any update, the fine-tuned policy acts as latent BC does
    trainable = {name.split(".")[0] for name, p in policy.named_parameters() if p.requires_grad}
    assert trainable == {"bc", "translator", "value_net"} and not any(p.requires_grad for p in policy.embedding.parameters())
    env.close()
    result = train_agent(cfg, tmp_path / "ft")
    loaded = PPO.load(result.model_path)
    assert type(loaded.policy).__name__ == "LatentBCActorCritic" and loaded.action_space.n == 7
    assert result.baselines["expert"] is not None and result.normalized is not None
    with torch.no_grad():
        assert np.isfinite(loaded.policy.predict_values(torch.as_tensor(obs, dtype=torch.float32)).numpy()).all()


def test_a_latent_bc_policy_of_another_lam_or_a_missing_one_is_refused_before_any_env(doorkey_pipeline, pixel_models, tmp_path) -> None:
    root = doorkey_pipeline["root"]
    base = dict(env="minigrid-doorkey", prefix_len=2, progress_bar=False)
    with pytest.raises(ConfigError, match=r"agent.init_from=.*nope: no latent BC policy there"):
        AgentConfig(**base, lam_dir=str(root / "lam"), init_from=str(tmp_path / "nope")).check_lam()
    other = pixel_models["lam_dir"]  # 64x64 frames: another LAM and another frame shape (with a translator of its own)
    with pytest.raises(ConfigError, match=r"reads frames \[32, 32, 3\], but the LAM at .* reads \[64, 64, 3\]"):
        AgentConfig(**base, lam_dir=str(other), translator_dir=str(pixel_models["translator_dir"]),
                    init_from=str(root / "latent_bc")).check_lam()
    twin = tmp_path / "twin_lam"  # same shapes, other weights
    lam = FlexLAM.load(root / "lam")
    with torch.no_grad():
        lam.null_latent.add_(1.0)
    lam.save(twin)
    translator = Translator.load(root / "translator")
    translator.config.lam_fingerprint = lam.fingerprint()  # a translator aligned on the twin: only the policy mismatches
    translator.save(tmp_path / "twin_translator")
    with pytest.raises(ConfigError, match=r"cloned through the LAM .*fingerprint [0-9a-f]{16}\), not the LAM at .*twin_lam"):
        AgentConfig(**base, lam_dir=str(twin), translator_dir=str(tmp_path / "twin_translator"),
                    init_from=str(root / "latent_bc")).check_lam()
    with pytest.raises(ConfigError, match="init_from fine-tunes a latent BC policy with PPO"):
        AgentConfig(**base, lam_dir=str(root / "lam"), init_from=str(root / "latent_bc"), algo="a2c")


def test_the_acting_benchmarks_rules_pick_the_budget_and_decide_as_written() -> None:
    from flexlam_rl.bench import acting

    units = [{"returns": {"1": 1.0, "2": 3.0, "4": 3.0}}, {"returns": {"1": 2.0, "2": 1.0, "4": 1.0}}]
    assert acting.best_budget(units) == 2  # 2 and 4 tie on the mean: the smaller budget
    assert acting.holm({"a": 0.004, "b": 0.011, "c": 0.03, "d": 0.5}) == {"a": True, "b": True, "c": False, "d": False}
    seeds = range(8)
    arms = {"from_latent_bc": [{"seed": s, "auc": 5.0 + s} for s in seeds], "scratch_raw": [{"seed": s, "auc": 1.0 + s} for s in seeds],
            "scratch_latent": [{"seed": s, "auc": 6.0 + s} for s in seeds]}
    tests = acting.finetune_verdict(arms)
    assert tests["scratch_raw"]["diff"] == pytest.approx(4.0) and tests["scratch_raw"]["p_value"] == pytest.approx(2 / 256)
    assert tests["scratch_latent"]["diff"] == pytest.approx(-1.0) and tests["p_both"] == 1.0  # worse than one arm: not both


@pytest.mark.parametrize(("true_bc", "translator", "same_idm", "stage"), [
    (0.5, 0.9, 0.9, "policy"),  # cloning the true actions already misses the bar
    (1.0, 0.6, 0.7, "labels"),  # 2% labels read the action badly from the code and from the frames alike
    (1.0, 0.6, 0.95, "tokens"),  # the same labels read it from the frames, not from the code
    (1.0, 0.95, 0.95, "latent policy"),  # everything upstream reads it, cloning the tokens does not
])
def test_the_acting_report_says_which_stage_loses_a_task_that_misses_the_bar(true_bc, translator, same_idm, stage) -> None:
    from flexlam_rl.bench import acting

    task = {"normalized": {"1": 0.2, "2": 0.4}, "true_action_bc_normalized": true_bc}
    alignment = {"balanced_by_budget": {"1": translator * 0.5, "2": translator * 0.5}, "idm_all_labels_balanced": 0.5,
                 "supervised_idm_balanced": same_idm * 0.5}
    bar = acting.task_bar(task, alignment)
    assert bar["best_budget"] == 2 and bar["meets_bar"] is False and bar["loses_at"] == stage and bar["why"]
    assert bar["translator_of_idm"] == pytest.approx(translator)
    good = acting.task_bar({"normalized": {"1": 0.9}, "true_action_bc_normalized": 1.0}, alignment)
    assert good["meets_bar"] and good["loses_at"] is None
    assert acting.task_bar({"normalized": {"1": 0.9}, "true_action_bc_normalized": 1.2}, alignment)["meets_bar"] is False  # < 0.8 of it
    assert acting.task_bar({"normalized": {"1": None}, "true_action_bc_normalized": None}, alignment)["meets_bar"] is None  # no expert


def test_a_translator_aligned_on_another_lam_is_refused_in_python_and_on_the_command_line(doorkey_pipeline, tmp_path) -> None:
    import os
    import subprocess
    import sys

    root = doorkey_pipeline["root"]
    twin = FlexLAM.load(root / "lam")  # the same K, frames and action space: only the weights differ
    with torch.no_grad():
        twin.null_latent.add_(1.0)
    twin.save(tmp_path / "twin")
    with pytest.raises(ValueError, match=r"aligned on another LAM .* than this LAM"):
        LatentActionWrapper(lam_env("minigrid-doorkey", twin), twin, root / "translator", prefix_len=2)
    LatentActionWrapper(lam_env("minigrid-doorkey", doorkey_pipeline["lam"]), doorkey_pipeline["lam"], root / "translator", 2).close()
    out = subprocess.run([sys.executable, "-m", "flexlam_rl.cli.train_agent", "agent.env=minigrid-doorkey",
                          f"agent.lam_dir={tmp_path / 'twin'}", f"agent.translator_dir={root / 'translator'}", "agent.prefix_len=2",
                          f"run_dir={tmp_path / 'agent'}"], capture_output=True, text=True, env=os.environ.copy(), timeout=300,
                         cwd=tmp_path)  # outside the repository: a non-editable install's package, not the checkout's
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 2 and len(errors) == 1 and "LAM" in errors[0] and not (tmp_path / "agent").exists()
