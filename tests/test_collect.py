"""flexlam-collect writes real local Minari datasets, atomically."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import minari
import numpy as np
import pytest

from flexlam_rl.config import Episodes
from flexlam_rl.data import collect as collect_module
from flexlam_rl.data.collect import collect_dataset
from flexlam_rl.data.sources import minari_root


def test_collected_dataset_is_a_real_minari_dataset(pixel_dataset: str) -> None:
    assert pixel_dataset in minari.list_local_datasets()
    dataset = minari.load_dataset(pixel_dataset)
    assert dataset.total_episodes == 8
    episode = dataset[0]
    assert episode.observations.shape[1:] == (32, 32, 3)
    assert len(episode.observations) == len(episode.actions) + 1
    env = dataset.recover_environment()
    obs, _ = env.reset(seed=0)  # episode 0 was reset with the collection seed 0
    assert np.array_equal(obs, episode.observations[0])


def test_dataset_loads_in_a_fresh_process(pixel_dataset: str) -> None:
    code = (
        f"import json, minari; d = minari.load_dataset({pixel_dataset!r}); "
        "print(json.dumps([d.total_episodes, d.total_steps, list(d.observation_space.shape)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True)
    episodes, steps, shape = json.loads(out.stdout.strip().splitlines()[-1])
    assert episodes == 8 and steps > 8 and shape == [32, 32, 3]


def test_invalid_id_fails_before_touching_disk(isolated_roots) -> None:
    before = set(minari_root().rglob("*")) if minari_root().exists() else set()
    for bad in ["no-version", "../escape-v0", "a b/c-v0", ""]:
        with pytest.raises(ValueError, match="Invalid Minari dataset id"):
            collect_dataset(bad, "cartpole", "random", Episodes(1, 0))
    after = set(minari_root().rglob("*")) if minari_root().exists() else set()
    assert after == before


def test_existing_id_is_refused_unless_overwrite(vector_dataset: str) -> None:
    with pytest.raises(FileExistsError, match="overwrite"):
        collect_dataset(vector_dataset, "cartpole", "random", Episodes(1, 0))


def test_crash_mid_collection_leaves_nothing_behind(isolated_roots, monkeypatch) -> None:
    real = collect_module.run_episodes

    def crash_after_two(*args, **kwargs):
        for i, episode in enumerate(real(*args, **kwargs)):
            if i == 2:
                raise RuntimeError("simulated crash")
            yield episode

    monkeypatch.setattr(collect_module, "run_episodes", crash_after_two)
    monkeypatch.setattr(collect_module, "FLUSH_EVERY", 1)  # each episode written as it ends: the crash comes mid-dataset
    with pytest.raises(RuntimeError, match="simulated crash"):
        collect_dataset("test/crash/random-v0", "cartpole", "random", Episodes(5, 0))
    assert not (minari_root() / "test/crash/random-v0").exists()
    assert not [p for p in minari_root().iterdir() if p.name.startswith(".flexlam-tmp")]
    assert "test/crash/random-v0" not in minari.list_local_datasets()  # listing still works


def test_overwrite_replaces_dataset(isolated_roots) -> None:
    collect_dataset("test/over/random-v0", "cartpole", "random", Episodes(2, 0))
    collect_dataset("test/over/random-v0", "cartpole", "random", Episodes(3, 1), overwrite=True)
    assert minari.load_dataset("test/over/random-v0").total_episodes == 3


def test_frames_stored_raw_by_an_older_minari_load_in_a_newer_one(isolated_roots) -> None:
    """The procgen extra resolves Minari 0.5.3 (numpy<2), which records no ``jpeg_encoding``; 0.5.4+ would take such
    a dataset's raw frames for JPEG. A dataset collected in one environment must load in the other."""
    import shutil

    from conftest import TINY_PIXELS

    from flexlam_rl.data.sources import cache_root
    from flexlam_rl.data.transitions import load_transitions

    dataset_id = collect_dataset("test/doorkey/older-writer-v0", "minigrid-doorkey", "random", Episodes(2, 0, 10),
                                 preprocess=TINY_PIXELS).dataset_id
    meta_path = minari_root() / dataset_id / "data" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    assert meta["jpeg_encoding"] is False  # recorded whichever Minari wrote it
    expected = load_transitions(dataset_id, heldout_fraction=0.0).train.__getitems__([0, 5])["obs"]
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k != "jpeg_encoding"}))  # as 0.5.3 leaves it
    shutil.rmtree(cache_root() / "datasets")  # read the dataset again, not the frame cache
    again = load_transitions(dataset_id, heldout_fraction=0.0).train.__getitems__([0, 5])["obs"]
    assert np.array_equal(again, expected) and expected.std() > 0
