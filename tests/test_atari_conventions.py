"""Atari as RL users know it: FIRE on reset and after a lost life, no-op starts, sticky actions, whole games when
scored and lost lives ending training episodes, a step cap in agent steps, and records that keep old data apart."""

from __future__ import annotations

import pytest
from conftest import TINY_LAM

from flexlam_rl import FlexLAM, LAMConfig
from flexlam_rl.act.wrappers import lam_env
from flexlam_rl.config import Episodes
from flexlam_rl.data.collect import collect_dataset, ensure_dataset
from flexlam_rl.envs import get_task
from flexlam_rl.envs.pixels import ATARI_LEGACY, end_episodes_on_life_loss, recorded_preprocess, validate_preprocess
from flexlam_rl.errors import DataError

pytest.importorskip("ale_py")
pytest.importorskip("cv2")

SMALL = {"kind": "atari", "frame_size": 32, "grayscale": True, "frame_skip": 4}


def _noop_game(env, seed: int, limit: int) -> tuple[int, bool, list[int]]:
    """Steps of NOOP until the game ends or ``limit``: (steps, ended, lives seen)."""
    env.reset(seed=seed)
    lives = []
    for step in range(1, limit + 1):
        _, _, terminated, truncated, _ = env.step(0)
        lives.append(env.unwrapped.ale.lives())
        if terminated or truncated:
            return step, True, lives
    return limit, False, lives


def test_fire_on_reset_and_after_each_lost_life_plays_a_whole_game() -> None:
    # NOOP only: Breakout's ball is served by FIRE, so without the conventions nothing ever happens; with them the
    # ball is served at the reset and after every lost life, and the game ends after its 5 lives, in one episode
    with get_task("breakout", SMALL).make(max_episode_steps=2000) as env:
        steps, ended, lives = _noop_game(env, 0, 2000)
        assert ended and steps < 2000 and lives[-1] == 0 and sorted(set(lives)) == [0, 1, 2, 3, 4, 5]
    legacy = {**SMALL, **ATARI_LEGACY}
    with get_task("breakout", legacy).make(max_episode_steps=300) as env:
        steps, ended, lives = _noop_game(env, 0, 300)
        assert not ended or steps == 300  # truncated by the cap, no life ever lost
        assert set(lives) == {5}


def test_a_lost_life_ends_a_training_episode_and_its_reset_goes_on_with_the_game() -> None:
    with end_episodes_on_life_loss(get_task("breakout", SMALL).make(max_episode_steps=2000)) as env:
        steps, ended, lives = _noop_game(env, 0, 2000)
        assert ended and lives[-1] == 4  # the first lost life ends the episode
        env.reset()
        assert env.unwrapped.ale.lives() == 4  # the game went on: same game, one life fewer
        _, _, terminated, _, _ = env.step(0)
        assert not terminated
    with get_task("cartpole").make() as plain:
        assert end_episodes_on_life_loss(plain) is plain  # not an Atari env: unchanged


def test_noop_starts_depend_on_the_seed_and_sticky_actions_are_alev5s() -> None:
    with get_task("pong", SMALL).make() as env:
        frames = set()
        for seed in range(6):
            env.reset(seed=seed)
            frames.add(env.unwrapped.ale.getEpisodeFrameNumber())
        assert len(frames) > 1 and min(frames) >= 1  # 1..30 no-op frames (and FIRE) before the first observation
        assert env.unwrapped.ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
    no_sticky = {**SMALL, "sticky": 0.0, "noop_max": 0}
    with get_task("pong", no_sticky).make() as env:
        env.reset(seed=0)
        assert env.unwrapped.ale.getFloat("repeat_action_probability") == 0.0


def test_the_step_cap_counts_agent_steps_for_a_lams_env_as_for_the_tasks_own(tmp_path) -> None:
    preprocess = validate_preprocess(get_task("breakout", SMALL).preprocess)
    lam = FlexLAM(LAMConfig.from_dict({**TINY_LAM, "obs_shape": [32, 32, 1], "obs_dtype": "uint8", "preprocess": preprocess}))
    for env in (lam_env("breakout", lam, max_episode_steps=40), get_task("breakout", SMALL).make(max_episode_steps=40)):
        with env:
            env.reset(seed=1)
            env.action_space.seed(0)
            steps, truncated = 0, False
            while steps < 200 and not truncated:
                _, _, terminated, truncated, _ = env.step(env.action_space.sample())
                steps += 1
                assert not terminated
            assert steps == 40 and truncated  # 40 agent steps (160 frames), not 40 frames


def test_records_made_before_the_conventions_keep_their_meaning_and_old_data_is_not_reused(tmp_path, monkeypatch) -> None:
    old = {"kind": "atari", "frame_size": 64, "grayscale": True, "frame_skip": 4}
    assert validate_preprocess(recorded_preprocess(old))["fire_reset"] is False
    assert validate_preprocess(recorded_preprocess(old))["noop_max"] == 0
    assert validate_preprocess(old)["fire_reset"] is True and validate_preprocess("atari")["noop_max"] == 30  # a request
    lam_cfg = LAMConfig.from_dict({**TINY_LAM, "obs_shape": [64, 64, 1], "obs_dtype": "uint8", "preprocess": old})
    assert lam_cfg.preprocess["fire_reset"] is False  # a LAM trained on such data reads the same
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    legacy = {**SMALL, **ATARI_LEGACY}
    collect_dataset("t/breakout/random-v0", "breakout", "random", Episodes(1, 0, 20), preprocess=legacy)
    assert ensure_dataset("t/breakout/random-v0", "breakout", "random", Episodes(1, 0, 20), preprocess=legacy)[1] is None
    with pytest.raises(DataError, match=r"fire_reset.*re-collect it .*if_exists=overwrite"):
        ensure_dataset("t/breakout/random-v0", "breakout", "random", Episodes(1, 0, 20), preprocess=SMALL)
