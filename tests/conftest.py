"""Shared fixtures: a private Minari root and cache, tiny real datasets collected once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

TINY_PIXELS = {"kind": "minigrid_rgb", "frame_size": 32}
TINY_LAM = {"channels": [8, 16], "hidden_dim": 64, "latent_dim": 8, "num_tokens": 4, "fsq_levels": [4]}


@pytest.fixture(scope="session", autouse=True)
def isolated_roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Never touch ~/.minari or ~/.cache: every test sees fresh temp roots."""
    root = tmp_path_factory.mktemp("roots")
    saved = {k: os.environ.get(k) for k in ("MINARI_DATASETS_PATH", "FLEXLAM_RL_CACHE")}
    os.environ["MINARI_DATASETS_PATH"] = str(root / "minari")
    os.environ["FLEXLAM_RL_CACHE"] = str(root / "cache")
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def pixel_dataset(isolated_roots: Path) -> str:
    """Noisy-expert DoorKey episodes at 32x32: ~200 transitions with every action kind."""
    from flexlam_rl.collect import collect_dataset

    return collect_dataset(
        "test/doorkey/noisy-v0", "minigrid-doorkey", "noisy", num_episodes=8, seed=0, epsilon=0.5,
        max_episode_steps=30, preprocess=TINY_PIXELS,
    ).dataset_id


@pytest.fixture(scope="session")
def vector_dataset(isolated_roots: Path) -> str:
    from flexlam_rl.collect import collect_dataset

    return collect_dataset("test/cartpole/random-v0", "cartpole", "random", num_episodes=10, seed=0).dataset_id


def tiny_lam_config(data, **overrides):
    from flexlam_rl.config import LAMConfig

    values = dict(TINY_LAM, obs_shape=list(data.obs_shape), obs_dtype="uint8" if data.is_image else "float32",
                  preprocess=data.preprocess)
    values.update(overrides)
    return LAMConfig.from_dict(values)
