"""Video files as action-free pretraining data, and clear errors for unusable ones."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import FAST_TRAIN, tiny_lam_config

from flexlam_rl import FlexLAM
from flexlam_rl.data.transitions import load_transitions
from flexlam_rl.data.video import VideoError
from flexlam_rl.envs import TASKS
from flexlam_rl.pretrain.train import TrainConfig, pretrain


def _record_gif(path: Path, seed: int, steps: int = 12) -> None:
    env = TASKS["minigrid-empty"].make()
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    frames = [obs]
    for _ in range(steps):
        obs, *_ = env.step(env.action_space.sample())
        frames.append(obs)
    iio.imwrite(path, np.stack(frames)[:, :, 8:56], duration=100, loop=0)  # non-square: cropped back to square


def test_a_folder_of_gifs_pretrains_a_lam(tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    for seed in range(3):
        _record_gif(tmp_path / "videos" / f"ep{seed}.gif", seed)
    data = load_transitions("video:" + str(tmp_path / "videos"), heldout_fraction=0.34)
    assert data.obs_shape == (64, 64, 3) and not data.train.has_actions
    assert len(data.train.sources[0].episode_lengths) == 3
    result = pretrain(tmp_path / "run", data, tiny_lam_config(data), TrainConfig(steps=5, **FAST_TRAIN))
    assert FlexLAM.load(result.lam_dir).config.obs_shape == [64, 64, 3]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: (p / "empty.gif").write_bytes(b""), "is empty"),
        (lambda p: (p / "corrupt.gif").write_bytes(b"GIF89a" + bytes(range(256)) * 4), "Cannot decode video"),
        (lambda p: (p / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4096)), "Cannot decode video"),
        (lambda p: iio.imwrite(p / "one.gif", np.zeros((1, 16, 16, 3), np.uint8)), "needs at least 2"),
    ],
)
def test_unusable_videos_are_clear_errors(tmp_path: Path, make, message: str) -> None:
    make(tmp_path)
    (video,) = [p for p in tmp_path.iterdir() if p.is_file()]
    with pytest.raises(VideoError, match=message):
        load_transitions("video:" + str(video))


def test_missing_video_sources(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="does not exist"):
        load_transitions("video:" + str(tmp_path / "nope.mp4"))
    with pytest.raises(VideoError, match="holds no video files"):
        load_transitions("video:" + str(tmp_path))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(VideoError, match="not a video file"):
        load_transitions("video:" + str(tmp_path / "notes.txt"))


def test_video_frame_size_is_configurable_and_checked(tmp_path: Path) -> None:
    _record_gif(tmp_path / "ep.gif", seed=0, steps=4)
    data = load_transitions("video:" + str(tmp_path / "ep.gif"), heldout_fraction=0.0, video_frame_size=32)
    assert data.obs_shape == (32, 32, 3)
    assert len(data.train) == len(iio.imread(tmp_path / "ep.gif")) - 1  # GIF writers may merge repeated frames
    with pytest.raises(ValueError, match="video_frame_size must be an integer in 8..512"):
        load_transitions("video:" + str(tmp_path / "ep.gif"), video_frame_size=4)
