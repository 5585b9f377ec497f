"""The variation dials: distractor tasks, label-scarcity protocols, the gap heatmap, token probes."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import run_bench
from gymnasium.utils.env_checker import check_env

from flexlam_rl import FlexLAM, LAMConfig
from flexlam_rl.bench.spec import load_scale
from flexlam_rl.envs import get_task


@pytest.mark.parametrize("name", ["point-reach-pixels-d1", "point-reach-pixels-d3", "point-reach-pixels-d3f", "minigrid-dynamic"])
def test_distractor_tasks_pass_the_env_checker_and_their_expert_beats_random(name: str) -> None:
    env = get_task(name).make()
    if name.startswith("point-reach"):
        check_env(env.unwrapped)  # the raw PointReach variant, render check included
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (64, 64, 3)
    from flexlam_rl.envs.experts import make_behaviour

    def mean_return(behaviour: str) -> float:
        policy = make_behaviour(behaviour, env.action_space, get_task(name).expert, seed=0)
        total = 0.0
        for i in range(6):
            env.reset(seed=100 + i)
            done = False
            while not done:
                _, reward, terminated, truncated, _ = env.step(policy(env))
                total += reward
                done = terminated or truncated
        return total / 6

    assert mean_return("expert") > mean_return("random") + 0.3


def test_distractors_move_whatever_the_action() -> None:
    """Two runs with different actions from one start: the agent differs, the distractors and flicker do not."""
    runs = []
    for action in ([1.0, 0.0], [-1.0, 0.0]):
        env = gym.make("flexlam/PointReachD3F-v0", render_mode="rgb_array")
        _, info = env.reset(seed=3)
        states = [info["distractors"]]
        for _ in range(5):
            obs, _, _, _, info = env.step(np.array(action, np.float32))
            states.append(info["distractors"])
        runs.append((obs, np.stack(states), info["flicker"], env.render()))
    (obs_a, dots_a, flicker_a, frame_a), (obs_b, dots_b, flicker_b, frame_b) = runs
    assert not np.allclose(obs_a[:2], obs_b[:2])  # the agent went two ways
    assert np.array_equal(dots_a, dots_b) and flicker_a == flicker_b  # the distractors did not care
    assert np.abs(np.diff(dots_a, axis=0)).max() > 0.01 and dots_a.min() >= 0 and dots_a.max() <= 1
    assert frame_a.shape == (64, 64, 3) and (frame_a == [70, 120, 240]).all(-1).sum() > 10  # the dots are drawn
    with pytest.raises(ValueError, match="distractors must be an integer"):
        gym.make("flexlam/PointReach-v0", distractors=-1)


def test_distractor_tasks_collect_as_minari_datasets(isolated_roots) -> None:
    import minari

    from flexlam_rl.config import Episodes
    from flexlam_rl.data.collect import collect_dataset

    for name in ("point-reach-pixels-d1", "minigrid-dynamic"):
        stats = collect_dataset(f"test/{name}/noisy-v0", name, "noisy", Episodes(2, 0, 10), epsilon=0.5,
                                preprocess={**get_task(name).preprocess, "frame_size": 16})
        dataset = minari.load_dataset(stats.dataset_id)
        assert dataset.total_episodes == 2 and dataset.observation_space.shape == (16, 16, 3)
        env = dataset.recover_environment()
        assert env.reset(seed=0)[0].shape == (16, 16, 3)


def test_label_runs_name_each_dial_setting() -> None:
    default = load_scale("default")
    assert [r[0] for r in default.label_runs()] == ["standard", "low_return"]
    variation = load_scale("variation")
    names = [r[0] for r in variation.label_runs()]
    assert names[:5] == ["standard@0.0025", "standard@0.005", "standard@0.01", "standard@0.02", "standard@0.05"]
    assert names[5:] == ["low_return@q0.1", "low_return@q0.25", "low_return@q0.5"]
    assert {r[1] for r in variation.label_runs()} == {"standard", "low_return"}
    assert [s.name for s in variation.suites] == ["reach_d0", "reach_d1", "reach_d3f", "minigrid_static", "minigrid_dynamic"]
    with pytest.raises(ValueError, match="label fractions must be in"):
        load_scale("variation", ["scale.label_fractions=[0.0,0.1]"])


def test_gap_map_counts_label_runs_per_level_metric_and_budget() -> None:
    from flexlam_rl.bench.report import gap_map, gap_map_table

    cfg = load_scale("variation_smoke")
    runs = [r[0] for r in cfg.label_runs()]
    verdicts = ["better", "worse", "tie"]
    claims = [{"view": "equal_updates", "suite": "reach_d1", "metric": "align", "protocol": run, "k": k,
               "verdict_adjusted": verdicts[i] if k == 1 else "tie", "secondary": False} for i, run in enumerate(runs) for k in cfg.budgets]
    claims += [{"view": "equal_updates", "suite": "reach_d1", "metric": "mse", "protocol": "any", "k": 1, "verdict_adjusted": "worse",
                "secondary": False},  # label-free metrics are not on the map
               {"view": "equal_updates", "suite": "reach_d1", "metric": "ppo_return", "protocol": runs[0], "k": 1,
                "verdict_adjusted": "worse", "secondary": True},
               {"view": "equal_updates", "suite": "minigrid_dynamic", "metric": "align", "protocol": runs[0], "k": 2,
                "verdict_adjusted": "pending", "secondary": False}]  # one seed: no verdict yet, nothing counted
    mapped = gap_map(claims)
    assert mapped["equal_updates"]["reach_d1"] == {"align": {1: {"better": 1, "tie": 1, "worse": 1},
                                                             **{k: {"better": 0, "tie": 3, "worse": 0} for k in cfg.budgets[1:]}}}
    assert mapped["equal_updates"]["minigrid_dynamic"]["align"][2] == {"better": 0, "tie": 0, "worse": 0}
    table = gap_map_table({"gap_map": mapped}, cfg, "equal_updates")
    assert "| reach_d1 | translator accuracy / R^2 | 1 / 1 / 1 | 0 / 3 / 0 |" in table


def test_token_probes_find_the_distractor_and_the_action(tmp_path: Path) -> None:
    """A LAM that was never trained still has tokens; the probe machinery must score held-out episodes,
    and a probe on a target that the features fully determine must score near 1."""
    from flexlam_rl.evaluate.probes import combine_probes, fit_probe, probe_rollouts, token_probe_figure, token_probes

    lam = FlexLAM(LAMConfig(obs_shape=[16, 16, 3], channels=[8, 16], num_tokens=4, fsq_levels=[4],
                            preprocess={"kind": "render_rgb", "frame_size": 16}))
    rollouts = probe_rollouts("point-reach-pixels-d1", lam, episodes=6)
    assert rollouts["distractor"].shape == (len(rollouts["obs"]), 3) and rollouts["action"].shape[1] == 2
    dots = rollouts["distractor"][:, :2]
    assert np.abs(dots).max() <= 0.06 + 1e-6  # one random-walk step per transition
    result = token_probes(lam, rollouts, fixed={"fixed K=4": lam}, budgets=[1, 4])
    assert set(result["flexlam"]["action"]) == {1, 4} and result["action_metric"] == "R^2"
    assert result["fixed K=4"]["action"][4] == pytest.approx(result["flexlam"]["action"][4])  # the same model, the same probe
    train = rollouts["episode"] < 4
    features = np.eye(5, dtype=np.float32)[np.arange(len(train)) % 5]
    assert fit_probe(features, np.arange(len(train)) % 5, train, discrete=True) == 1.0  # determined targets are found
    assert fit_probe(features, (np.arange(len(train)) % 5).astype(float), train, discrete=False) > 0.99
    # many categories, few rows each, and a target of pure noise: a memorizing probe scores far below 0;
    # early stopping on validation rows keeps it near the truth (the features say nothing: R^2 ~ 0)
    rng = np.random.default_rng(0)
    unique, noise = np.eye(150, dtype=np.float32)[rng.integers(0, 150, size=600)], rng.normal(size=600)
    fit, valid = np.arange(600) < 300, (np.arange(600) >= 300) & (np.arange(600) < 400)
    assert fit_probe(unique, noise, fit, discrete=False, valid=valid) > -0.05
    assert fit_probe(unique, noise, fit | valid, discrete=False) < -0.1
    token_probe_figure({"point-reach-pixels-d1": result}, tmp_path / "probes.png")
    assert (tmp_path / "probes.png").stat().st_size > 5000
    # seeds combine into their mean and spread, and the figure draws them
    other = token_probes(lam, rollouts, fixed={"fixed K=4": lam}, budgets=[1, 4], seed=1)
    both = combine_probes([result, other])
    assert both["seeds"] == 2 and both["action_metric"] == "R^2" and both["transitions"] == [len(rollouts["obs"])] * 2
    for name, k in (("flexlam", 1), ("flexlam", 4), ("fixed K=4", 4)):
        pair = [result[name]["distractor"][k], other[name]["distractor"][k]]
        assert both[name]["distractor"][k] == pytest.approx(np.mean(pair))
        assert both["sd"][name]["distractor"][k] == pytest.approx(np.std(pair))
    assert max(both["sd"]["flexlam"]["action"].values()) > 0  # the probe seed matters, so the spread is real
    token_probe_figure({"point-reach-pixels-d1": both}, tmp_path / "probes_seeds.png")
    assert (tmp_path / "probes_seeds.png").stat().st_size > 5000
    from flexlam_rl.errors import DataError

    with pytest.raises(DataError, match="2 probe episodes are too few"):
        token_probes(lam, {key: value[rollouts["episode"] < 2] for key, value in rollouts.items()}, budgets=[1])
    with pytest.raises(DataError, match="no action-independent state"):
        probe_rollouts("point-reach-pixels", lam, episodes=2)


@pytest.mark.slow
@pytest.mark.timeout(900)  # about 45 s on an idle 2-core machine
def test_variation_smoke_scale_writes_the_gap_heatmap(tmp_path: Path) -> None:
    out = tmp_path / "variation"
    run = run_bench("scale=variation_smoke", f"out_dir={out}", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((out / "results.json").read_text())
    assert result["seeds_done"] == {"minigrid_dynamic": [0, 1], "reach_d1": [0, 1]}
    protocols = {c["protocol"] for c in result["claims"] if c["metric"] == "align"}
    assert protocols == {"standard@0.02", "standard@0.1", "low_return@q0.5"}
    assert (out / "gap_heatmap.png").stat().st_size > 10_000
    for suite in ("minigrid_dynamic", "reach_d1"):  # two seeds: every label run of every budget has a verdict on the map
        for counts in result["gap_map"]["equal_updates"][suite]["align"].values():
            assert sum(counts.values()) == 3
    assert "## The gap map" in (out / "results.md").read_text()

    # the analyses after a run reuse what it trained (nothing retrained: the cache answers)
    from flexlam_rl.bench.run import seed_models
    from flexlam_rl.data.sources import cache_root
    from flexlam_rl.evaluate.probes import probe_rollouts, token_probes

    cfg = load_scale("variation_smoke")
    models, data = seed_models(cfg, cfg.suites[1], 0, cache_root() / "bench", log=lambda msg: None)
    assert sorted(models) == ["fixed_1", "fixed_2", "flexlam"] and models["flexlam"].config.nested_dropout
    assert all(str(cache_root() / "bench") in str(lam.source_path) for lam in models.values())
    alone, _ = seed_models(cfg, cfg.suites[1], 0, cache_root() / "bench", log=lambda msg: None, flexlam_only=True)
    assert list(alone) == ["flexlam"] and alone["flexlam"].source_path == models["flexlam"].source_path  # same cache key
    probes = token_probes(models["flexlam"], probe_rollouts("minigrid-dynamic", models["flexlam"], episodes=4),
                          {"fixed K=2": models["fixed_2"]}, budgets=[1, 2])
    assert probes["action_metric"] == "accuracy" and set(probes["flexlam"]["action"]) == {1, 2}
    assert set(probes["fixed K=2"]["action"]) == {2} and probes["held_out"] > 0  # each fixed LAM probed at its own K
