"""Preprocessing as part of the data spec: recorded with data and LAMs, re-applied wherever a LAM meets an env."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import FAST_TRAIN, tiny_lam_config

from flexlam_rl import FlexLAM, LAMConfig, LatentActionWrapper
from flexlam_rl.envs import apply_preprocess, get_task, preprocessed_shape, validate_preprocess
from flexlam_rl.errors import DataError, FlexLAMError
from flexlam_rl.evaluate.diagnosis import collapse_warning

STACKED = {"kind": "render_rgb", "frame_size": 24, "grayscale": True, "fit": "crop", "frame_stack": 2}


def test_spec_defaults_kind_names_and_clear_errors() -> None:
    assert validate_preprocess("render_rgb") == {"kind": "render_rgb", "frame_size": 64, "grayscale": False, "fit": "stretch",
                                                 "frame_skip": 1, "frame_stack": 1}
    atari = validate_preprocess({"kind": "atari"})
    assert atari["frame_skip"] == 4 and atari["grayscale"] is True and validate_preprocess(None) == {"kind": "identity"}
    assert preprocessed_shape(STACKED) == (24, 24, 2) and preprocessed_shape("minigrid_rgb") == (64, 64, 3)
    for bad, message in [("foo", "Unknown preprocess kind 'foo'"), ({"kind": "render_rgb", "fit": "zoom"}, "fit must be one of"),
                         ({"kind": "image", "frame_stack": 0}, "frame_stack must be an integer"),
                         ({"kind": "render_rgb", "frame_stack": 6}, "more than 16 channels"),
                         ({"kind": "minigrid_rgb", "colour": "red"}, "Unknown preprocess keys"), (7, "kind name")]:
        with pytest.raises(FlexLAMError, match=message):
            validate_preprocess(bad)


def test_crop_grayscale_and_stack_give_the_advertised_frames() -> None:
    env = apply_preprocess(gym.make("CartPole-v1", render_mode="rgb_array"), STACKED)
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (24, 24, 2) and obs.dtype == np.uint8
    nxt, *_ = env.step(1)
    assert np.array_equal(nxt[..., 0], obs[..., 1])  # the stack shifts: the newest frame is the last channel
    wide = apply_preprocess(gym.make("CartPole-v1", render_mode="rgb_array"), {"kind": "render_rgb", "frame_size": 24})
    wide.reset(seed=0)
    cropped = apply_preprocess(gym.make("CartPole-v1", render_mode="rgb_array"), {"kind": "render_rgb", "frame_size": 24,
                                                                                  "fit": "crop"})
    cropped.reset(seed=0)
    assert not np.array_equal(wide.step(0)[0], cropped.step(0)[0])  # crop keeps the aspect: a different view


def test_preprocessing_is_recorded_and_reapplied_on_a_raw_env(isolated_roots, tmp_path) -> None:
    from flexlam_rl.align import AlignConfig, LabelConfig, action_spec, label_and_eval_sets, run_alignment
    from flexlam_rl.config import Episodes
    from flexlam_rl.data.collect import collect_dataset
    from flexlam_rl.data.transitions import load_transitions
    from flexlam_rl.pretrain.train import TrainConfig, pretrain

    dataset_id = collect_dataset("prep/cartpole/random-v0", "cartpole-pixels", "random", Episodes(3, 0, 20), preprocess=STACKED).dataset_id
    data = load_transitions(dataset_id, heldout_fraction=0.34)
    assert data.obs_shape == (24, 24, 2) and validate_preprocess(data.preprocess) == validate_preprocess(STACKED)
    result = pretrain(tmp_path / "run", data, tiny_lam_config(data), TrainConfig(steps=3, **FAST_TRAIN))
    lam = FlexLAM.load(result.lam_dir)
    assert validate_preprocess(lam.config.preprocess) == validate_preprocess(STACKED)  # recorded in the LAM's config
    pool, evaluation = label_and_eval_sets([dataset_id], [dataset_id], 0.34, 0)
    translator = run_alignment(lam, pool, evaluation, LabelConfig(count=5), AlignConfig(steps=2, use_obs=True)).translator
    assert translator.config.action == action_spec(gym.make("CartPole-v1").action_space)
    env = LatentActionWrapper(gym.make("CartPole-v1", render_mode="rgb_array"), lam, translator, prefix_len=2)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (24, 24, 2)  # the raw env got the LAM's crop, grayscale and stack
    made = gym.make("flexlam_rl:flexlam/LatentAction-v0", env_id="CartPole-v1", lam=str(result.lam_dir),
                    translator=str(_saved(translator, tmp_path)), prefix_len=1)
    assert made.reset(seed=0)[0].shape == (24, 24, 2)


def _saved(translator, tmp_path: Path) -> Path:
    translator.save(tmp_path / "translator")
    return tmp_path / "translator"


def test_large_frames_and_collapsed_codes_get_warnings_that_name_the_fix() -> None:
    from flexlam_rl import LAMConfig
    from flexlam_rl.pretrain.pipeline import large_frame_warning

    big = large_frame_warning(LAMConfig(obs_shape=[210, 160, 3]))
    assert big and "210x160" in big and "frame_size" in big
    assert large_frame_warning(LAMConfig(obs_shape=[64, 64, 3])) is None
    dead = collapse_warning({"code_usage": [1.0, 3.5, 1.02], "controllability": {1: 0.3, 2: 0.4, 3: 0.4}})
    assert dead and "Slots [1, 3]" in dead and "collapsed" not in dead  # dead slots, but the tokens matter
    collapsed = collapse_warning({"code_usage": [1.0, 1.0, 1.0]}, frame_shape=[96, 128, 3])
    assert collapsed and "every slot emits a single code" in collapsed and "(96x128)" in collapsed and "frame_size 64" in collapsed
    ignored = collapse_warning({"code_usage": [3.0, 3.0], "controllability": {1: 0.01, 2: 0.03}}, [64, 64, 1])
    assert ignored and "remove 3%" in ignored and "lam=games" in ignored and "train.lr" in ignored
    assert "frame_size" not in ignored  # 64x64 frames are what the recipe uses: not named as a cause
    assert collapse_warning({"code_usage": [3.0], "controllability": {1: 0.5}}) is None


def test_the_collapse_warning_is_taken_back_when_a_later_check_finds_the_code_used() -> None:
    """Pong's code looked collapsed at 500 updates and was used by 3000: the first warning must not stand alone."""
    from flexlam_rl.evaluate.diagnosis import CollapseWatch

    watch = CollapseWatch(after=500)
    unused = {"code_usage": [3.0, 3.0], "controllability": {1: 0.0, 2: 0.01}}
    used = {"code_usage": [3.0, 3.0], "controllability": {1: 0.3, 2: 0.51}}
    assert watch.update(250, unused, [64, 64, 1]) is None  # still warming up
    first = watch.update(500, unused, [64, 64, 1])
    assert first.startswith("step 500: The LAM's code has collapsed") and "lam=games" in first
    assert watch.update(750, unused) is None  # said once
    cleared = watch.update(1000, used)
    assert cleared.startswith("step 1000: the code no longer looks collapsed") and "up to 51%" in cleared and "step 500" in cleared
    assert watch.update(1250, unused) is None and watch.update(1500, used) is None  # one warning, one retraction
    quiet = CollapseWatch(after=500)
    assert quiet.update(500, used) is None and quiet.update(750, used) is None  # a used code: nothing to say


def test_sdl_prints_nothing_for_headless_rendering(isolated_roots) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SDL_", "XDG_", "DISPLAY", "WAYLAND"))}
    out = subprocess.run([sys.executable, "-m", "flexlam_rl.cli.collect", "env=pendulum-pixels", "behaviour=random", "episodes=1",
                          "max_episode_steps=5", "dataset_id=prep/sdl/random-v0"], env=env, capture_output=True, text=True,
                         timeout=120, cwd=isolated_roots)  # outside the repository: the installed package
    assert out.returncode == 0, out.stderr
    assert "XDG_RUNTIME_DIR" not in out.stderr and "error" not in out.stderr.lower()


def test_a_second_writer_is_refused_at_once(vector_dataset: str, tmp_path: Path) -> None:
    from flexlam_rl.data.transitions import load_transitions
    from flexlam_rl.pretrain.train import TrainConfig, pretrain

    code = (f"import time; from pathlib import Path; from flexlam_rl.pretrain.runs import writer_lock\n"
            f"with writer_lock(Path({str(tmp_path / 'run')!r})):\n    print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ.copy(), cwd=tmp_path)
    try:
        assert holder.stdout.readline().strip() == "locked"
        data = load_transitions(vector_dataset, heldout_fraction=0.2)
        start = time.time()
        with pytest.raises(FlexLAMError, match=rf"being trained by another process \(pid {holder.pid} "):
            pretrain(tmp_path / "run", data, tiny_lam_config(data), TrainConfig(steps=2, **FAST_TRAIN))
        assert time.time() - start < 5  # refused at once, not after a wait
    finally:
        holder.kill()
        holder.wait()
    assert pretrain(tmp_path / "run", data, tiny_lam_config(data), TrainConfig(steps=2, **FAST_TRAIN)).step == 2  # the lock died


def test_raising_steps_extends_a_finished_run(vector_dataset: str, tmp_path: Path) -> None:
    from flexlam_rl.data.transitions import load_transitions
    from flexlam_rl.pretrain.train import TrainConfig, pretrain

    data = load_transitions(vector_dataset, heldout_fraction=0.2)
    pretrain(tmp_path / "run", data, tiny_lam_config(data), TrainConfig(steps=10, checkpoint_every=5, **FAST_TRAIN))
    with pytest.warns(UserWarning, match="continuing a 10-step run as a 20-step one"):
        longer = pretrain(tmp_path / "run", data, tiny_lam_config(data), TrainConfig(steps=20, checkpoint_every=5, **FAST_TRAIN))
    assert longer.resumed_from == 10 and longer.step == 20


@pytest.mark.slow
def test_atari_end_to_end_from_the_command_line(tmp_path: Path) -> None:
    """collect -> pretrain -> align -> latent BC -> PPO in latent space on Breakout, every stage a CLI (tiny)."""
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")

    def cli(module: str, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", f"flexlam_rl.cli.{module}", *args], cwd=tmp_path, env=os.environ.copy(),
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        return out.stdout

    small = "preprocess={kind: atari, frame_size: 32, grayscale: true, frame_skip: 4}"
    cli("collect", "env=breakout", "behaviour=random", "episodes=2", small, "dataset_id=atari/breakout/random-v0")
    cli("collect", "env=breakout", "behaviour=expert", "episodes=2", "max_episode_steps=100", small,
        "dataset_id=atari/breakout/expert-v0")
    pretrain = cli("pretrain", "data.datasets=[atari/breakout/random-v0]", "lam=games", "lam.channels=[8,16]", "lam.hidden_dim=32",
                   "lam.num_tokens=4", "train.steps=4", "train.batch_size=16", "train.progress=false", "train.eval_every=2",
                   f"run_dir={tmp_path / 'run'}")
    assert "k=4" in pretrain and "step 2: checked MSE per k" in pretrain and "controllability per k" in pretrain
    check = next(line for line in pretrain.splitlines() if line.startswith("step 4: checked MSE"))
    assert " transitions) | controllability per k " in check and " of them)" in check  # what each number read
    assert "| controllability |" in pretrain  # the final diagnostic table
    held_row = next(line for line in pretrain.splitlines() if line.startswith("| lam") or line.startswith("| games"))
    lam = FlexLAM.load(tmp_path / "run" / "lam")
    assert lam.config.obs_shape == [32, 32, 1] and validate_preprocess(lam.config.preprocess)["kind"] == "atari"
    assert (tmp_path / "run" / "predictions.png").is_file()
    align = cli("align", f"lam_dir={tmp_path / 'run' / 'lam'}", "labels.count=20", "translator.steps=5", "translator.hidden_dim=16")
    assert "labels" in align and "accuracy" in align
    bc = cli("latent_bc", f"lam_dir={tmp_path / 'run' / 'lam'}", "env=breakout", "expert_datasets=[atari/breakout/expert-v0]",
             "bc.steps=3", "episodes=1", "budgets=[1,4]", "max_episode_steps=60")
    assert "| return |" in bc and "(at most 60 steps each)" in bc
    agent = cli("train_agent", "agent.env=breakout", f"agent.lam_dir={tmp_path / 'run' / 'lam'}", "agent.prefix_len=2",
                "agent.total_timesteps=64", "agent.n_envs=2", "agent.eval_freq=64", "agent.eval_episodes=1",
                "agent.progress_bar=false", "agent.algo_kwargs={n_steps: 32, batch_size: 32}", "agent.max_episode_steps=60",
                f"run_dir={tmp_path / 'agent'}")
    assert (tmp_path / "agent" / "model.zip").is_file() and "final eval mean return" in agent
    inspect = cli("inspect", f"run_dir={tmp_path / 'run'}")
    assert "step 4 of 4" in inspect and "atari/breakout/random-v0" in inspect and "predictions" in inspect
    assert held_row.split("|")[2:] == next(line for line in inspect.splitlines() if line.startswith("| held-out")).split("|")[2:]
    usage = next(line for line in pretrain.splitlines() if line.startswith("code usage"))
    assert usage.split(":")[1].split("(")[0].strip() in inspect  # the same held-out code usage, not a training window's


def test_get_task_takes_a_preprocess_variant() -> None:
    task = get_task("breakout", {"kind": "atari", "frame_size": 32, "grayscale": True})
    assert task.name != "breakout" and task.preprocess["frame_size"] == 32


@pytest.mark.parametrize("channels", [1, 2, 3, 6])
def test_prediction_figures_and_gifs_show_any_frame_stack(channels: int, tmp_path: Path) -> None:
    """Grayscale, stacked grayscale (2 channels), RGB and stacked RGB frames: the newest frame is drawn."""
    from flexlam_rl.evaluate.inspect import prediction_figure
    from flexlam_rl.media import rgb_frame, write_gif

    frames = np.random.default_rng(0).integers(0, 256, size=(6, 16, 16, channels), dtype=np.uint8)
    assert rgb_frame(frames[0]).shape == (16, 16, 3)
    assert np.array_equal(rgb_frame(frames[0])[..., 0], frames[0][..., -1] if channels % 3 else frames[0][..., -3])
    lam = FlexLAM(LAMConfig(obs_shape=[16, 16, channels], channels=[8], num_tokens=2, fsq_levels=[4],
                            preprocess={"kind": "image", "frame_size": 16, "grayscale": channels in (1, 2),
                                        "frame_stack": {1: 1, 2: 2, 3: 1, 6: 2}[channels]}))

    class Transitions:  # the two things prediction_figure reads from a TransitionSet
        def __len__(self) -> int:
            return 5

        def __getitems__(self, idx):
            return {"obs": frames[np.asarray(idx)], "next_obs": frames[np.asarray(idx) + 1]}

    assert prediction_figure(lam, Transitions(), tmp_path / "p.png").stat().st_size > 1000
    assert write_gif(list(frames), tmp_path / "g.gif").stat().st_size > 100
    import imageio.v3 as iio

    from flexlam_rl.evaluate.inspect import code_strip

    titled = {code: {code % 2: 0.75, 1 - code % 2: 0.25} for code in range(lam.codebook_size)}
    strip = iio.imread(code_strip(lam, Transitions(), tmp_path / "codes.png", first_token=titled, names=["LEFT", "RIGHT"]))
    plain = iio.imread(code_strip(lam, Transitions(), tmp_path / "plain.png", count=1))
    assert strip.shape[1] > 4 * 16 and plain.shape[0] < strip.shape[0]  # a column per code (4) and o_t, a row per frame


def test_prediction_gif_plays_one_heldout_episode_with_a_row_per_method(pixel_dataset: str, tmp_path: Path) -> None:
    """Each frame: rows (methods) of [real o_t+1, prediction per budget], over the first held-out episode only."""
    from flexlam_rl.data.transitions import load_transitions
    from flexlam_rl.evaluate.inspect import prediction_frames, prediction_gif
    from flexlam_rl.media import rgb_frame

    data = load_transitions([pixel_dataset], heldout_fraction=0.25, seed=0)
    held = data.heldout
    first = np.nonzero((held.source_index == held.source_index[0]) & (held.episode_index == held.episode_index[0]))[0]
    assert len(first) < len(held)  # the set holds more than one episode: only the first is played
    torch.manual_seed(0)
    flex = FlexLAM(LAMConfig(obs_shape=list(data.obs_shape), channels=[8], num_tokens=4, fsq_levels=[4], preprocess=data.preprocess))
    fixed = FlexLAM(LAMConfig(obs_shape=list(data.obs_shape), channels=[8], num_tokens=2, fsq_levels=[4], preprocess=data.preprocess))
    frames = prediction_frames([[(flex, 1), (flex, 2), (flex, 4)], [(fixed, 2)]], held, steps=100)
    size = data.obs_shape[0]
    assert frames.shape == (len(first), 2 * size + 2, 4 * size + 3 * 2, 3)  # 2 rows; real + 3 budgets, 2-px gaps
    t = len(first) - 1
    real = rgb_frame(held[int(first[t])]["next_obs"])
    assert np.array_equal(frames[t, :size, :size], real) and np.array_equal(frames[t, size + 2 :, :size], real)
    assert (frames[t, size + 2 :, 2 * size + 4 :] == 255).all()  # the shorter row is padded white
    item = held[int(first[t])]
    pred = flex.decode(item["obs"][None], flex.embed(flex.encode(item["obs"][None], item["next_obs"][None]), 2))[0].numpy()
    assert np.array_equal(frames[t, :size, 2 * size + 4 : 3 * size + 4], rgb_frame(np.clip(np.rint(pred), 0, 255).astype(np.uint8)))
    assert prediction_frames([[(flex, 1)]], held, steps=3).shape[0] == 3
    assert prediction_gif([[(flex, 1)]], held, tmp_path / "p.gif").stat().st_size > 1000
    assert prediction_gif([[(flex, 1)]], held.subset_episodes([]), tmp_path / "r.gif") is None
    other = FlexLAM(LAMConfig(obs_shape=[16, 16, 3], channels=[8], num_tokens=2, fsq_levels=[4]))
    with pytest.raises(DataError, match=r"expects \[16, 16, 3\]; use data collected with the same preprocessing"):
        prediction_gif([[(other, 1)]], held, tmp_path / "s.gif")
    assert not (tmp_path / "s.gif").exists()
    from flexlam_rl import diagnose

    with pytest.raises(DataError, match=r"the LAM \(in memory\)"):  # a LAM never saved: still the clear refusal
        diagnose(other, [pixel_dataset])
