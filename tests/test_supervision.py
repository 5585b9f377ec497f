"""Action labels during pretraining: the labels are the translator's, the head learns the action, resume is exact,
and bad settings fail before anything is written."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_lam_config

from flexlam_rl import FlexLAM
from flexlam_rl.align import AlignConfig, AlignData, AlignOptions, LabelConfig, align_lam
from flexlam_rl.align.labels import label_pool, select_labels
from flexlam_rl.config import ConfigError
from flexlam_rl.data.transitions import DataError, TransitionData, load_transitions
from flexlam_rl.errors import FlexLAMWarning
from flexlam_rl.metrics import majority_rate
from flexlam_rl.pretrain.pipeline import run_pretraining
from flexlam_rl.pretrain.supervision import SupervisionConfig, pretraining_labels
from flexlam_rl.pretrain.train import TrainConfig, pretrain

FAST = dict(batch_size=16, lr=3e-3, warmup_steps=5, progress=False, eval_every=10_000, log_every=5)


@pytest.fixture(scope="module")
def pixels(pixel_dataset: str) -> TransitionData:
    return load_transitions(pixel_dataset, heldout_fraction=0.1, seed=0)


def test_the_labels_are_the_ones_the_translator_selects(pixels) -> None:
    cfg = SupervisionConfig(fraction=0.1, seed=0)
    labels = pretraining_labels(pixels, cfg)
    pool = label_pool(pixels.train.sources, 0.1, 0)
    picked = select_labels(pool, LabelConfig(fraction=0.1, seed=0))
    assert sorted(pixels.train.names(labels.rows)) == sorted(pool.names(picked))  # same split seed: every label trains
    assert labels.record["labels"] == labels.record["labels_trained_on"] == len(picked) == round(0.1 * len(pool))
    other = pretraining_labels(pixels, dataclasses.replace(cfg, seed=1))
    assert other.record["label_digest"] != labels.record["label_digest"]
    quarter = pretraining_labels(pixels, dataclasses.replace(cfg, share=0.25))  # a subset of the same labels
    assert quarter.record["label_digest"] == labels.record["label_digest"]
    assert set(quarter.rows) < set(labels.rows) and len(quarter.rows) == round(0.25 * len(labels.rows))
    split = pretraining_labels(pixels, dataclasses.replace(cfg, seed=1, split_seed=0))  # the bench splits by its data seed
    picked = select_labels(pool, LabelConfig(fraction=0.1, seed=1))
    assert sorted(pixels.train.names(split.rows)) == sorted(pool.names(picked))


def test_supervised_pretraining_learns_the_action_and_the_translator_reuses_its_labels(vector_dataset, tmp_path) -> None:
    """CartPole: two actions a transition shows (the cart's velocity change). The head on the first token learns them
    from 5% labels; flexlam-align with the same label settings uses exactly those transitions."""
    data = load_transitions(vector_dataset, heldout_fraction=0.1, seed=0)
    sup = SupervisionConfig(fraction=0.05, seed=0, weight=1.0)
    train = TrainConfig(steps=200, **{**FAST, "eval_every": 100})
    metrics = run_pretraining(tmp_path / "run", data, tiny_lam_config(data, num_tokens=4), train, supervision=sup)
    record = metrics["supervision"]
    chance = majority_rate(data.heldout.actions(np.arange(len(data.heldout))))
    assert record["action_head"] > max(0.9, chance + 0.3), (record, chance)
    lam = FlexLAM.load(tmp_path / "run" / "lam")
    assert lam.extra["supervision"]["label_digest"] == record["label_digest"]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["supervision"] == record

    _, same = align_lam(tmp_path / "run" / "lam", LabelConfig(fraction=0.05, seed=0), AlignConfig(steps=20),
                        AlignData(heldout_fraction=0.1), options=AlignOptions(), out=tmp_path / "tr")
    assert same["pretraining_labels"] == {"labels": record["labels"], "same": True}
    with pytest.warns(FlexLAMWarning, match="this translator's labels are others"):
        _, other = align_lam(tmp_path / "run" / "lam", LabelConfig(fraction=0.05, seed=3), AlignConfig(steps=20),
                             AlignData(heldout_fraction=0.1), options=AlignOptions(), out=tmp_path / "tr2")
    assert other["pretraining_labels"]["same"] is False


def straight_and_killed(pixels: TransitionData, tmp_path: Path, sup: SupervisionConfig, steps: int, kill_at: int):
    """A supervised run trained straight through, and the same run killed at update ``kill_at`` under ``resumed``
    (checkpoints every 4 updates): (LAM config, train config, the straight run)."""
    cfg, train = tiny_lam_config(pixels), TrainConfig(steps=steps, checkpoint_every=4, **FAST)
    straight = pretrain(tmp_path / "straight", pixels, cfg, train, supervision=sup)

    def kill(step: int, loss: float) -> None:
        if step == kill_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pretrain(tmp_path / "resumed", pixels, cfg, train, on_step=kill, supervision=sup)
    return cfg, train, straight


def same_weights(a_dir: Path, b_dir: Path) -> bool:
    a, b = FlexLAM.load(a_dir).state_dict(), FlexLAM.load(b_dir).state_dict()
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("head", ["first", "prefix"])
def test_a_supervised_run_resumes_exactly(pixels, tmp_path, head: str) -> None:
    sup = SupervisionConfig(fraction=0.1, head=head, tokens=2)
    cfg, train, straight = straight_and_killed(pixels, tmp_path, sup, steps=8, kill_at=6)
    resumed = pretrain(tmp_path / "resumed", pixels, cfg, train, supervision=sup)
    assert resumed.resumed_from == 4
    assert same_weights(straight.lam_dir, resumed.lam_dir)
    a = FlexLAM.load(straight.lam_dir).state_dict()
    assert straight.history[-1]["action_loss"] == resumed.history[-1]["action_loss"] > 0  # same labeled batches
    unsupervised = pretrain(tmp_path / "plain", pixels, cfg, train)
    assert not torch.equal(FlexLAM.load(unsupervised.lam_dir).state_dict()["null_latent"], a["null_latent"])
    with pytest.raises(ValueError, match="different 'supervision'|supervision"):  # other labels: another run
        pretrain(tmp_path / "resumed", pixels, cfg, train, supervision=dataclasses.replace(sup, seed=5))


def test_a_damaged_action_head_sets_its_checkpoint_aside_and_the_run_resumes_from_the_one_before(pixels, tmp_path) -> None:
    sup = SupervisionConfig(fraction=0.1, tokens=2)
    cfg, train, straight = straight_and_killed(pixels, tmp_path, sup, steps=12, kill_at=10)
    (tmp_path / "resumed/checkpoints/step_00000008/action_head.safetensors").write_bytes(b"junk")
    resumed = pretrain(tmp_path / "resumed", pixels, cfg, train, supervision=sup)
    assert resumed.resumed_from == 4 and (tmp_path / "resumed/checkpoints/damaged-step_00000008").is_dir()
    assert same_weights(straight.lam_dir, resumed.lam_dir)


@pytest.mark.parametrize("values, match", [
    ({"fraction": 0.0}, r"supervision.fraction must be in \(0, 1\]"),
    ({"fraction": 1.5}, r"supervision.fraction must be in \(0, 1\]"),
    ({"fraction": 0.1, "head": "last"}, "supervision.head must be one of"),
    ({"fraction": 0.1, "count": 5}, "not both"),
    ({"fraction": 0.1, "weight": 0}, "supervision.weight"),
])
def test_bad_supervision_settings_are_one_line_errors(values, match) -> None:
    with pytest.raises(ConfigError, match=match):
        SupervisionConfig.from_dict(values)


def test_supervision_on_data_without_actions_fails_before_anything_is_written(pixels, tmp_path) -> None:
    bare = dataclasses.replace(pixels.train.sources[0], actions=None)
    data = TransitionData(type(pixels.train)([bare], pixels.train.episodes), pixels.heldout, pixels.dataset_ids)
    with pytest.raises(DataError, match="needs actions.*supervision.fraction=null"):
        pretrain(tmp_path / "run", data, tiny_lam_config(pixels), TrainConfig(steps=2, **FAST),
                 supervision=SupervisionConfig(fraction=0.1))
    with pytest.raises(ConfigError, match="supervision.tokens=9 is more than the LAM's 4 tokens"):
        pretrain(tmp_path / "run", pixels, tiny_lam_config(pixels), TrainConfig(steps=2, **FAST),
                 supervision=SupervisionConfig(fraction=0.1, tokens=9))
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_ablation_runs_each_arm_through_the_harness_with_the_translators_labels(tmp_path) -> None:
    """benchmarks/supervised_pretraining.py at its smoke scale: an arm without labels and one with the head on the first
    token; the supervised LAMs were pretrained on exactly the labels their translators get, and the report carries the
    contract's keys for every model."""
    from flexlam_rl.align.labels import label_digest
    from flexlam_rl.bench import supervised as ablation
    from flexlam_rl.bench.run import SeedWork, seed_models
    from flexlam_rl.data.sources import cache_root

    ablation.run("supervised_smoke", ["none", "first@0.02"], None, "test", tmp_path)
    result = ablation.report("test", tmp_path)
    runs = {(r["arm"], r["model"]): r for r in result["runs"]}
    assert set(runs) == {(arm, model) for arm in ("none", "first@0.02") for model in ("flexlam", "fixed_1", "fixed_2")}
    for r in runs.values():
        assert {"task", "label_fraction", "head", "model", "controllability", "translator_balanced_accuracy",
                "idm_all_labels_balanced_accuracy", "majority_accuracy", "seeds"} <= set(r)
        assert set(r["controllability"]) == ({"1", "2"} if r["model"] == "flexlam" else {r["model"][-1]})
    assert runs[("none", "flexlam")]["label_fraction"] == 0.0 and runs[("first@0.02", "flexlam")]["head"] == "first"
    assert "token_probes" in runs[("first@0.02", "flexlam")]
    assert set(result["decisions"]) == {"protocol"}  # the head rule reads both heads' arms: no decision from one

    cfg = ablation.arm_config("supervised_smoke", "first@0.02")
    models, _ = seed_models(cfg, cfg.suites[0], 0, cache_root() / "bench", print)  # what the run trained, from its cache
    work = SeedWork.prepare(cfg, cfg.suites[0], 0, print)
    group = work.groups[0]
    translator_labels = select_labels(group.pool, work.label_config(group, "standard", group.label_count, 0.25))
    for lam in models.values():
        assert lam.extra["supervision"]["label_digest"] == label_digest(group.pool, translator_labels)
