"""Every bad input a user can hand us gets a clear error that names the problem and the fix."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from flexlam_rl import FlexLAM, LAMConfig, LatentActionWrapper
from flexlam_rl.align import LabelConfig, select_labels
from flexlam_rl.config import ConfigError, Episodes
from flexlam_rl.data.collect import collect_dataset
from flexlam_rl.data.transitions import DataError, TransitionSet, load_transitions
from flexlam_rl.evaluate.reconstruction import reconstruction_by_budget
from flexlam_rl.pretrain.train import TrainConfig, pretrain, resolve_device

IMG = LAMConfig(obs_shape=[32, 32, 3], num_tokens=4, channels=[8], hidden_dim=16, latent_dim=4)


def frames(n: int = 2, size: int = 32) -> np.ndarray:
    return np.zeros((n, size, size, 3), dtype=np.uint8)


CASES = {
    # token budgets
    "prefix_len 0": (lambda ctx: FlexLAM(IMG).embed(torch.zeros(1, 4, dtype=torch.long), 0), ValueError, "1..4"),
    "prefix_len > K": (lambda ctx: FlexLAM(IMG).embed(torch.zeros(1, 4, dtype=torch.long), 5), ValueError, "1..4"),
    "prefix_len not an integer": (lambda ctx: FlexLAM(IMG).embed(torch.zeros(1, 4, dtype=torch.long), 2.5), ValueError, "integer in 1..4"),
    "budget outside 1..K in evaluation": (lambda ctx: reconstruction_by_budget(FlexLAM(IMG), ctx["pixels"].heldout, [9]), ValueError, "outside 1..4"),
    # observations
    "observation shape mismatch": (lambda ctx: FlexLAM(IMG).encode(frames(2, 16), frames(2, 16)), ValueError, r"expects \[B, 32, 32, 3\]"),
    "observation dtype mismatch": (lambda ctx: FlexLAM(IMG).encode(frames().astype(np.float32), frames().astype(np.float32)), ValueError, "must be uint8"),
    "unbatched observation": (lambda ctx: FlexLAM(IMG).encode(frames()[0], frames()[0]), ValueError, r"obs\[None\]"),
    "tokens out of range": (lambda ctx: FlexLAM(IMG).embed(torch.full((1, 4), 99), 2), ValueError, "codebook_size"),
    # data
    "dataset id not local": (lambda ctx: load_transitions("nobody/nothing/here-v0"), DataError, "minari download"),
    "local dataset id misspelled": (lambda ctx: load_transitions(ctx["vector_id"].replace("random", "randon")), DataError,
                                    "Did you mean 'test/cartpole/random-v0'"),
    "collected id not local": (lambda ctx: load_transitions("flexlam/nothing/here-v0"), DataError,  # no hub holds it: no download advice
                               r"^(?!.*minari download).*flexlam-collect env=<task>"),
    "invalid dataset id": (lambda ctx: collect_dataset("no version", "cartpole", "random", Episodes(1, 0)), ValueError, "ending in a version"),
    "existing dataset id": (lambda ctx: collect_dataset(ctx["vector_id"], "cartpole", "random", Episodes(1, 0)), FileExistsError, "if_exists=overwrite"),
    "image LAM on vector data": (lambda ctx: pretrain(ctx["tmp"] / "r", ctx["vector"], IMG, TrainConfig(steps=1, progress=False)), ValueError, "does not match the data"),
    "datasets of different shapes": (lambda ctx: load_transitions([ctx["pixel_id"], ctx["vector_id"]]), DataError, "same preprocessing"),
    "image datasets of different sizes": (lambda ctx: load_transitions([ctx["pixel_id"], ctx["small_pixel_id"]]), DataError, r"\(32, 32, 3\).*\(16, 16, 3\)"),
    "held-out fraction of 1": (lambda ctx: load_transitions(ctx["vector_id"], heldout_fraction=1.0), DataError, r"heldout_fraction must be in \[0, 1\)"),
    # labels
    "label fraction <= 0": (lambda ctx: LabelConfig(fraction=0.0), ValueError, r"\(0, 1\]"),
    "label fraction > 1": (lambda ctx: LabelConfig(fraction=2.0), ValueError, r"\(0, 1\]"),
    "more labels than exist": (lambda ctx: select_labels(ctx["vector"].train, LabelConfig(count=10**6)), ValueError, "hold only"),
    "low-return threshold with no episodes": (lambda ctx: select_labels(ctx["vector"].train, LabelConfig(protocol="low_return", max_return=-1.0, count=1)), ValueError, "lowest episode return"),
    "labels from data without actions": (lambda ctx: select_labels(ctx["no_actions"], LabelConfig(count=1)), ValueError, "no usable actions"),
    # configs and devices
    "unknown prefix distribution": (lambda ctx: LAMConfig(obs_shape=[4], obs_dtype="float32", prefix_dist="gauss"), ConfigError, "prefix_dist must be one of"),
    "image obs stored as float": (lambda ctx: LAMConfig(obs_shape=[8, 8, 3], obs_dtype="float32"), ConfigError, "must be uint8"),
    "non-positive training steps": (lambda ctx: TrainConfig(steps=0), ValueError, "train.steps must be a positive integer"),
    # acting
    "latent action out of range in step": (lambda ctx: _step(ctx, [8, 0]), ValueError, r"in 0\.\.7"),
    "latent action of the wrong length": (lambda ctx: _step(ctx, [1, 2, 3]), ValueError, r"shape \(2,\)"),
    "translator whose actions the env lacks": (lambda ctx: LatentActionWrapper(_three_actions(), ctx["models"]["lam"], ctx["models"]["translator"], 2),
                                                ValueError, r"Discrete\(2\), but this env's action space is Discrete\(3\) \(the LAM was trained on test/cartpole/"),
    "translator that does not fit the env": (lambda ctx: LatentActionWrapper(gym.make("MountainCar-v0"), ctx["models"]["lam"], ctx["models"]["translator"], 2), ValueError, r"This env \(MountainCar-v0\) gives .* cannot be matched to the LAM's \[4\] \(trained on test/cartpole/"),
}


def _three_actions() -> gym.Env:
    """CartPole's observations with a third action: fits the LAM's frames, not its translator's actions."""
    env = gym.make("CartPole-v1")
    env.action_space = gym.spaces.Discrete(3)
    return env


def _step(ctx, action):
    env = LatentActionWrapper(gym.make("CartPole-v1"), ctx["models"]["lam"], ctx["models"]["translator"], prefix_len=2)
    env.reset(seed=0)
    return env.step(np.array(action))


@pytest.fixture(scope="module")
def ctx(pixel_dataset, vector_dataset, cartpole_models, tmp_path_factory):
    vector = load_transitions(vector_dataset, heldout_fraction=0.2)
    no_actions = TransitionSet([dataclasses.replace(s, actions=None) for s in vector.train.sources], vector.train.episodes)
    small = collect_dataset("bad/empty16/random-v0", "minigrid-empty", "random", Episodes(2, 0, 5), preprocess={"kind": "minigrid_rgb", "frame_size": 16}).dataset_id
    return {"pixels": load_transitions(pixel_dataset, heldout_fraction=0.25), "vector": vector, "no_actions": no_actions,
            "small_pixel_id": small,
            "pixel_id": pixel_dataset, "vector_id": vector_dataset, "models": cartpole_models,
            "tmp": tmp_path_factory.mktemp("bad")}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="CUDA is not available; use device=cpu"):
        resolve_device("cuda")


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(ctx, name: str) -> None:
    call, error, message = CASES[name]
    with pytest.raises(error, match=message):
        call(ctx)
