"""Action labels during pretraining: the labels are the translator's, the head learns the action, resume is exact,
and bad settings fail before anything is written."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import tiny_lam_config

from flexlam_rl import FlexLAM
from flexlam_rl.align import AlignConfig, LabelConfig, align_lam
from flexlam_rl.align.labels import label_pool, select_labels
from flexlam_rl.config import ConfigError
from flexlam_rl.data import DataError, TransitionData, load_transitions
from flexlam_rl.errors import FlexLAMWarning
from flexlam_rl.metrics import majority_rate
from flexlam_rl.pretraining import run_pretraining
from flexlam_rl.supervision import SupervisionConfig, pretraining_labels
from flexlam_rl.train import TrainConfig, pretrain

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
                        heldout_fraction=0.1, supervised_idm=False, out=tmp_path / "tr")
    assert same["pretraining_labels"] == {"labels": record["labels"], "same": True}
    with pytest.warns(FlexLAMWarning, match="this translator's labels are others"):
        _, other = align_lam(tmp_path / "run" / "lam", LabelConfig(fraction=0.05, seed=3), AlignConfig(steps=20),
                             heldout_fraction=0.1, supervised_idm=False, out=tmp_path / "tr2")
    assert other["pretraining_labels"]["same"] is False


@pytest.mark.parametrize("head", ["first", "prefix"])
def test_a_supervised_run_resumes_exactly(pixels, tmp_path, head: str) -> None:
    sup = SupervisionConfig(fraction=0.1, head=head, tokens=2)
    cfg, train = tiny_lam_config(pixels), TrainConfig(steps=8, checkpoint_every=4, **FAST)
    straight = pretrain(tmp_path / "straight", pixels, cfg, train, supervision=sup)

    def kill(step: int, loss: float) -> None:
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pretrain(tmp_path / "resumed", pixels, cfg, train, on_step=kill, supervision=sup)
    resumed = pretrain(tmp_path / "resumed", pixels, cfg, train, supervision=sup)
    assert resumed.resumed_from == 4
    a, b = FlexLAM.load(straight.lam_dir).state_dict(), FlexLAM.load(resumed.lam_dir).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight.history[-1]["action_loss"] == resumed.history[-1]["action_loss"] > 0  # same labeled batches
    unsupervised = pretrain(tmp_path / "plain", pixels, cfg, train)
    assert not torch.equal(FlexLAM.load(unsupervised.lam_dir).state_dict()["null_latent"], a["null_latent"])
    with pytest.raises(ValueError, match="different 'supervision'|supervision"):  # other labels: another run
        pretrain(tmp_path / "resumed", pixels, cfg, train, supervision=dataclasses.replace(sup, seed=5))


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
