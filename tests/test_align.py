"""Translator and label protocols on real (small) data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import FAST_TRAIN, tiny_lam_config

from flexlam_rl import FlexLAM, Translator
from flexlam_rl.align import (
    AlignConfig,
    LabelConfig,
    action_spec,
    alignment_by_budget,
    check_action_space_fits,
    embed_transitions,
    select_labels,
    supervised_idm_score,
    train_supervised_idm,
    train_translator,
)
from flexlam_rl.config import Episodes
from flexlam_rl.data.collect import collect_dataset
from flexlam_rl.data.transitions import load_transitions
from flexlam_rl.pretrain.train import TrainConfig, pretrain


def test_one_translator_serves_every_budget_on_cartpole(cartpole_models) -> None:
    lam, translator, data = cartpole_models["lam"], cartpole_models["translator"], cartpole_models["data"]
    evaluation = embed_transitions(lam, data.heldout, np.arange(len(data.heldout)))
    scores = alignment_by_budget(lam, translator, evaluation)
    assert set(scores) == {1, 2, 3, 4}
    assert min(scores.values()) > 0.8  # chance is 0.5: the tokens carry the push direction
    idm = train_supervised_idm(lam, embed_transitions(lam, data.train, np.arange(100)), action_spec(data.train.sources[0].action_space),
                               AlignConfig(steps=200))
    assert supervised_idm_score(idm, evaluation) > 0.8


@pytest.mark.slow
def test_translator_regresses_box_actions_on_pendulum(isolated_roots, tmp_path) -> None:
    collect_dataset("test/pendulum/random-v0", "pendulum", "random", Episodes(5, 0))
    data = load_transitions("test/pendulum/random-v0", heldout_fraction=0.2)
    result = pretrain(tmp_path / "run", data, tiny_lam_config(data, num_tokens=4, fsq_levels=[8], hidden_dim=128),
                      TrainConfig(steps=1500, **{**FAST_TRAIN, "batch_size": 64}))
    lam = FlexLAM.load(result.lam_dir)
    spec = action_spec(data.train.sources[0].action_space)
    translator = train_translator(lam, embed_transitions(lam, data.train, select_labels(data.train, LabelConfig(count=100))),
                                  spec, AlignConfig(steps=500, use_obs=False))
    r2 = alignment_by_budget(lam, translator, embed_transitions(lam, data.heldout, np.arange(len(data.heldout))))
    assert r2[4] > 0.7, r2  # about 0.95 measured; torques are within [-2, 2]
    pred = translator.predict(lam.embed(torch.zeros(5, 4, dtype=torch.long), 4))
    assert pred.shape == (5, 1) and np.all(np.abs(pred) <= 2.0)


def test_per_budget_translator(cartpole_models) -> None:
    lam, data = cartpole_models["lam"], cartpole_models["data"]
    labeled = embed_transitions(lam, data.train, np.arange(100))
    spec = action_spec(data.train.sources[0].action_space)
    per_k = train_translator(lam, labeled, spec, AlignConfig(steps=100, train_prefix=2))
    assert per_k.config.train_prefix == 2
    with pytest.raises(ValueError, match="1..4"):
        train_translator(lam, labeled, spec, AlignConfig(steps=1, train_prefix=5))


def test_translator_save_load_round_trip(cartpole_models, tmp_path) -> None:
    lam, translator = cartpole_models["lam"], cartpole_models["translator"]
    translator.save(tmp_path / "t")
    loaded = Translator.load(tmp_path / "t")
    latent = lam.embed(torch.randint(0, 8, (16, 4)), 3)
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    assert torch.equal(translator(latent, obs), loaded(latent, obs))


def test_standard_labels_fraction_and_count(cartpole_models) -> None:
    pool = cartpole_models["data"].train
    idx = select_labels(pool, LabelConfig(fraction=0.1, seed=1))
    assert len(idx) == round(0.1 * len(pool)) and len(set(idx.tolist())) == len(idx)
    assert not np.array_equal(idx, select_labels(pool, LabelConfig(fraction=0.1, seed=2)))
    assert len(select_labels(pool, LabelConfig(count=7))) == 7


def test_low_return_labels_come_only_from_low_return_episodes(cartpole_models) -> None:
    pool = cartpole_models["data"].train
    idx = select_labels(pool, LabelConfig(protocol="low_return", quantile=0.3, count=5))
    returns = {(s, e): pool.sources[s].episode_returns[e] for s, e in pool.episodes}
    cutoff = np.quantile(list(returns.values()), 0.3)
    chosen = {(int(pool.source_index[i]), int(pool.episode_index[i])) for i in idx}
    assert all(returns[ep] <= cutoff for ep in chosen)
    assert max(returns.values()) > cutoff  # the cut really excludes episodes


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fraction": 0.0}, r"fraction must be in \(0, 1\]"),
        ({"fraction": 1.5}, r"fraction must be in \(0, 1\]"),
        ({"count": 0}, "count must be a positive integer"),
        ({"protocol": "magic"}, "protocol must be one of"),
        ({"quantile": 0.0}, r"quantile must be in \(0, 1\]"),
    ],
)
def test_bad_label_configs_are_clear_errors(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        LabelConfig(**kwargs)


def test_more_labels_than_exist_is_a_clear_error(cartpole_models) -> None:
    pool = cartpole_models["data"].train
    with pytest.raises(ValueError, match="hold only"):
        select_labels(pool, LabelConfig(count=len(pool) + 1))
    with pytest.raises(ValueError, match="low-return episodes hold only"):
        select_labels(pool, LabelConfig(protocol="low_return", quantile=0.05, count=len(pool)))


def test_action_space_mismatch_is_a_clear_error() -> None:
    import gymnasium as gym

    spec = action_spec(gym.spaces.Discrete(2))
    check_action_space_fits(spec, gym.spaces.Discrete(2))
    with pytest.raises(ValueError, match="Discrete\\(2\\)"):
        check_action_space_fits(spec, gym.spaces.Discrete(3))
    with pytest.raises(ValueError, match="does not fit"):
        check_action_space_fits(spec, gym.spaces.Dict({"a": gym.spaces.Discrete(2)}))


def test_a_fixed_lams_translator_trains_at_its_full_budget(cartpole_models) -> None:
    data = cartpole_models["data"]
    fixed = FlexLAM(tiny_lam_config(data, num_tokens=2, fsq_levels=[8], nested_dropout=False))
    labeled = embed_transitions(fixed, data.train, np.arange(64))
    spec = action_spec(data.train.sources[0].action_space)
    assert train_translator(fixed, labeled, spec, AlignConfig(steps=2)).config.train_prefix == 2
    assert train_translator(cartpole_models["lam"], embed_transitions(cartpole_models["lam"], data.train, np.arange(64)),
                            spec, AlignConfig(steps=2)).config.train_prefix is None


def test_alignment_reads_its_accuracy_against_the_majority_rate_balanced_and_an_all_label_ceiling(cartpole_models) -> None:
    from flexlam_rl.align import AlignOptions, run_alignment
    from flexlam_rl.metrics import balanced_accuracy, majority_rate

    lam, data = cartpole_models["lam"], cartpole_models["data"]
    said: list[str] = []
    result = run_alignment(lam, data.train, data.heldout, LabelConfig(count=30), AlignConfig(steps=100),
                           AlignOptions([1, 4], supervised_idm=True, idm_ceiling=True, log=said.append))
    quiet = run_alignment(lam, data.train, data.heldout, LabelConfig(count=30), AlignConfig(steps=100), AlignOptions([1, 4]))
    assert quiet.scores == result.scores  # progress lines change nothing
    progress = [line for line in said if "/100 updates, training loss" in line]
    assert [line.split(":")[0].strip() for line in progress] == ["translator"] * 10 + ["supervised IDM"] * 10 + ["all-label IDM"] * 10
    assert progress[0].startswith("  translator: 10/100 updates") and progress[9].startswith("  translator: 100/100 updates")
    truth = result.info["eval_actions"]
    assert result.majority_rate == pytest.approx(majority_rate(truth)) and 0.5 <= result.majority_rate < 0.7  # two actions
    assert result.eval_classes == 2 and set(result.balanced) == {1, 4}
    assert result.supervised_idm_balanced == pytest.approx(balanced_accuracy(result.info["supervised_idm_pred"], truth))
    assert result.idm_all_labels is not None and result.idm_all_labels >= result.supervised_idm - 0.05  # every label vs 30
    assert all(0 <= v <= 1 for v in result.balanced.values())
