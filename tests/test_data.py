"""Minari episodes -> transitions: exact frames, splits by episode, deterministic batches."""

from __future__ import annotations

import minari
import numpy as np
import pytest
import torch

from flexlam_rl.data.transitions import DataError, StepBatchSampler, load_transitions, split_episodes


def test_transitions_are_consecutive_frames_with_actions(pixel_dataset: str) -> None:
    data = load_transitions(pixel_dataset, heldout_fraction=0.25, seed=0)
    dataset = minari.load_dataset(pixel_dataset)
    episodes = {ep.id: ep for ep in dataset.iterate_episodes()}
    train = data.train
    for i in [0, 7, len(train) - 1]:
        item = train[i]
        ep = episodes[int(train.episode_index[i])]
        t = int(train.frame_index[i] - train.sources[0].frame_starts[train.episode_index[i]])
        assert np.array_equal(item["obs"], ep.observations[t])
        assert np.array_equal(item["next_obs"], ep.observations[t + 1])
        assert item["action"] == ep.actions[t]
    assert len(data.train) + len(data.heldout) == dataset.total_steps
    picks = np.array([len(train) - 1, 0, 7])
    assert np.array_equal(train.actions(picks), train.__getitems__(picks)["action"])  # no frames read for actions

    from flexlam_rl import FlexLAM, LAMConfig

    lam = FlexLAM(LAMConfig(obs_shape=list(train.obs_shape), channels=[8], hidden_dim=16))
    batch = train.__getitems__(picks)  # the set read a batch at a time encodes as the same transitions in memory
    assert torch.equal(lam.encode_set(train, picks, batch_size=2), lam.encode_many(batch["obs"], batch["next_obs"]))
    for bad in ([len(train)], [0, -1]):  # past the end, or negative (numpy would read from the end): named, not IndexError
        with pytest.raises(DataError, match=f"in 0..{len(train) - 1}"):
            train.actions(bad)
        with pytest.raises(DataError, match="range\\(len\\(data\\)\\)"):
            lam.encode_set(train, bad)


def test_split_is_by_episode_and_disjoint(pixel_dataset: str) -> None:
    data = load_transitions(pixel_dataset, heldout_fraction=0.25, seed=3)
    train_eps, held_eps = set(data.train.episodes), set(data.heldout.episodes)
    assert train_eps and held_eps and not train_eps & held_eps
    assert len(train_eps | held_eps) == 8 and len(held_eps) == 2
    assert set(np.unique(data.heldout.episode_index)) == {e for _, e in held_eps}
    assert split_episodes(data.train.sources, 0.25, 3) == (sorted(train_eps), sorted(held_eps))


def test_validation_split_comes_out_of_training_episodes_and_leaves_the_heldout_split_alone(pixel_dataset: str) -> None:
    plain = load_transitions(pixel_dataset, heldout_fraction=0.25, seed=3)
    data = load_transitions(pixel_dataset, heldout_fraction=0.25, seed=3, validation_fraction=0.2)
    train, held, val = set(data.train.episodes), set(data.heldout.episodes), set(data.validation.episodes)
    assert held == set(plain.heldout.episodes)  # the scored split does not move
    assert val and not val & train and not val & held and train | val == set(plain.train.episodes)
    assert data.checks is data.validation and plain.checks is plain.heldout and plain.validation is None
    again = load_transitions(pixel_dataset, heldout_fraction=0.25, seed=3, validation_fraction=0.2)
    assert again.validation.episodes == data.validation.episodes  # a function of the ids, fractions and seed
    with pytest.raises(DataError, match=r"validation_fraction must be in \[0, 1\)"):
        load_transitions(pixel_dataset, validation_fraction=1.0)


def test_image_frames_are_memory_mapped(pixel_dataset: str) -> None:
    data = load_transitions(pixel_dataset)
    frames = data.train.sources[0].frames
    assert isinstance(frames, np.memmap) and frames.dtype == np.uint8
    assert data.obs_shape == (32, 32, 3) and data.is_image
    assert data.preprocess["kind"] == "minigrid_rgb"


def test_vector_datasets_use_the_same_path(vector_dataset: str) -> None:
    data = load_transitions(vector_dataset)
    assert data.obs_shape == (4,) and not data.is_image
    batch = data.train.__getitems__([0, 1, 2])
    assert batch["obs"].dtype == np.float32 and batch["action"].dtype == np.int64
    mean, std = data.obs_stats()
    assert mean.shape == (4,) and (std > 0).all()


def test_step_batches_are_a_function_of_seed_and_step() -> None:
    full = list(StepBatchSampler(50, 16, seed=1, start_step=0, num_steps=10))
    resumed = list(StepBatchSampler(50, 16, seed=1, start_step=6, num_steps=4))
    assert full[6:] == resumed
    first_epoch = [i for batch in full[:3] for i in batch][:50]
    assert sorted(first_epoch[:48]) != first_epoch[:48]  # shuffled
    assert len(set(first_epoch)) == len(first_epoch)  # no repeats inside an epoch
    assert full != list(StepBatchSampler(50, 16, seed=2, start_step=0, num_steps=10))


def test_missing_dataset_says_how_to_create_it() -> None:
    with pytest.raises(DataError, match="flexlam-collect"):
        load_transitions("test/does-not/exist-v0")


def test_mixed_observation_shapes_are_refused(pixel_dataset: str, vector_dataset: str) -> None:
    with pytest.raises(DataError, match="disagree on observation shape"):
        load_transitions([pixel_dataset, vector_dataset])


def test_a_datasets_split_does_not_depend_on_what_is_loaded_beside_it(pixel_dataset: str, vector_dataset: str) -> None:
    from flexlam_rl.config import Episodes
    from flexlam_rl.data.collect import collect_dataset

    other = collect_dataset("test/doorkey/other-v0", "minigrid-doorkey", "random", Episodes(4, 9, 10),
                            preprocess={"kind": "minigrid_rgb", "frame_size": 32}).dataset_id
    alone = load_transitions(pixel_dataset, heldout_fraction=0.25, seed=1)
    second = load_transitions([other, pixel_dataset], heldout_fraction=0.25, seed=1)
    held_alone = {e for _, e in alone.heldout.episodes}
    held_second = {e for s, e in second.heldout.episodes if second.heldout.sources[s].source_id == pixel_dataset}
    assert held_alone == held_second and held_alone
