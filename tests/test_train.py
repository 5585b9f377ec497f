"""Pretraining: the loss really moves, checkpoints resume exactly, budgets are evaluated."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_lam_config

from flexlam_rl import FlexLAM
from flexlam_rl.data import load_transitions
from flexlam_rl.evaluate import reconstruction_by_budget
from flexlam_rl.runs import latest_checkpoint
from flexlam_rl.train import TrainConfig, pretrain

FAST = dict(batch_size=16, lr=3e-3, warmup_steps=5, progress=False, eval_every=10_000, log_every=5)


@pytest.fixture(scope="module")
def pixels(pixel_dataset: str):
    return load_transitions(pixel_dataset, heldout_fraction=0.25, seed=0)


def test_training_beats_the_copy_baseline(pixels, tmp_path) -> None:
    result = pretrain(tmp_path / "run", pixels, tiny_lam_config(pixels), TrainConfig(steps=150, **FAST))
    lam = FlexLAM.load(result.lam_dir)
    report = reconstruction_by_budget(lam, pixels.train)
    assert report["mse"][4] < 0.75 * report["copy"]  # tokens explain what changed (about 0.53 measured)
    assert report["mse"][1] < report["copy"]
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert len(result.code_usage) == 4 and max(result.code_usage) > 1.0


def test_checkpoints_and_exact_resume(pixels, tmp_path) -> None:
    cfg = tiny_lam_config(pixels)
    straight = pretrain(tmp_path / "straight", pixels, cfg, TrainConfig(steps=12, checkpoint_every=4, **FAST))

    class Crash(Exception):
        pass

    def crash_at_9(step: int, loss: float) -> None:
        if step == 9:
            raise Crash

    with pytest.raises(Crash):
        pretrain(tmp_path / "resumed", pixels, cfg, TrainConfig(steps=12, checkpoint_every=4, **FAST), on_step=crash_at_9)
    assert latest_checkpoint(tmp_path / "resumed").name == "step_00000008"
    FlexLAM.load(tmp_path / "resumed" / "lam")  # the run dir still loads after the crash
    resumed = pretrain(tmp_path / "resumed", pixels, cfg, TrainConfig(steps=12, checkpoint_every=4, **FAST))
    assert resumed.resumed_from == 8 and resumed.step == straight.step == 12
    a, b = FlexLAM.load(straight.lam_dir).state_dict(), FlexLAM.load(resumed.lam_dir).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(list((tmp_path / "straight" / "checkpoints").glob("step_*"))) == 2  # keep_checkpoints


def test_restart_with_a_different_config_is_refused(pixels, tmp_path) -> None:
    pretrain(tmp_path / "run", pixels, tiny_lam_config(pixels), TrainConfig(steps=4, checkpoint_every=2, **FAST))
    with pytest.raises(ValueError, match="different 'lam' config"):
        pretrain(tmp_path / "run", pixels, tiny_lam_config(pixels, num_tokens=2), TrainConfig(steps=4, **FAST))


def test_vector_lam_trains_on_cartpole(vector_dataset: str, tmp_path) -> None:
    data = load_transitions(vector_dataset, heldout_fraction=0.2)
    cfg = tiny_lam_config(data, num_tokens=4, fsq_levels=[8])
    result = pretrain(tmp_path / "vec", data, cfg, TrainConfig(steps=150, **FAST))
    report = reconstruction_by_budget(FlexLAM.load(result.lam_dir), data.heldout)
    assert report["mse"][4] < 0.5 * report["copy"]
    assert torch.allclose(FlexLAM.load(result.lam_dir).obs_std, torch.as_tensor(data.obs_stats()[1], dtype=torch.float32))


@pytest.mark.slow
def test_fixed_lam_is_worse_than_flexlam_on_an_untrained_prefix(pixels, tmp_path) -> None:
    """The point of the method, in miniature: a fixed K-token LAM never learned short prefixes."""
    steps = TrainConfig(steps=150, **FAST)
    flex = pretrain(tmp_path / "flex", pixels, tiny_lam_config(pixels), steps)
    fixed = pretrain(tmp_path / "fixed", pixels, tiny_lam_config(pixels, nested_dropout=False), steps)
    flex_k1 = reconstruction_by_budget(FlexLAM.load(flex.lam_dir), pixels.heldout, [1])["mse"][1]
    fixed_k1 = reconstruction_by_budget(FlexLAM.load(fixed.lam_dir), pixels.heldout, [1])["mse"][1]
    assert flex_k1 < fixed_k1
